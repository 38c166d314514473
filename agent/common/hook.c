/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/child-watch.h"
#include "common/hook.h"
#include "common/log.h"
#include "common/message-ids.h"

#define USEC_PER_SEC 1000000ULL
#define HOOK_EVENT_NAME_MAX 64

typedef enum HookStage {
        HOOK_RUNNING,
        HOOK_TERM_SENT, /* timed out, SIGTERM sent to the group */
        HOOK_KILL_SENT, /* and SIGKILL after the grace period */
} HookStage;

typedef struct Hook Hook;
struct Hook {
        HookSet *set;
        Hook *prev, *next;
        char *program;
        char *event;
        pid_t pid; /* also the process group */
        unsigned timeout_sec;
        HookStage stage;
        ChildWatch *child;
        sd_event_source *timer;
};

struct HookSet {
        Hook *hooks;
        unsigned n_running;
        unsigned max_running;
        hook_done_t on_done;
        void *userdata;
};

static void posix_spawn_file_actions_destroyp(posix_spawn_file_actions_t **p) {
        if (*p)
                posix_spawn_file_actions_destroy(*p);
}

static void posix_spawnattr_destroyp(posix_spawnattr_t **p) {
        if (*p)
                posix_spawnattr_destroy(*p);
}

/* "SIGTERM"; the number for a signal without a name. */
static const char *signal_name(int sig, char *buf, size_t size) {
        const char *abbrev = sigabbrev_np(sig);

        if (abbrev)
                snprintf(buf, size, "SIG%s", abbrev);
        else
                snprintf(buf, size, "signal %d", sig);
        return buf;
}

/* Frees h, unlinked from its set. The process must have been reaped, or be
 * about to be reaped (inside its exit callback, child-watch.h). */
static void hook_free(Hook *h) {
        if (!h)
                return;
        if (h->set) {
                if (h->prev)
                        h->prev->next = h->next;
                else
                        h->set->hooks = h->next;
                if (h->next)
                        h->next->prev = h->prev;
                h->set->n_running--;
        }
        child_watch_free(h->child);
        sd_event_source_disable_unref(h->timer);
        free(h->program);
        free(h->event);
        free(h);
}

int hook_set_new(unsigned max_running, HookSet **ret) {
        HookSet *s;

        if (max_running == 0)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->max_running = max_running;
        *ret = s;
        return 0;
}

HookSet *hook_set_free(HookSet *set) {
        if (!set)
                return NULL;
        while (set->hooks) {
                Hook *h = set->hooks;
                pid_t pid = h->pid;

                /* Still alive or a zombie, not reaped: the group ID is ours. */
                (void) kill(-pid, SIGKILL);
                log_warning("hook %s for event %s (pid %d) still running at exit: killed", h->program,
                            h->event, (int) pid);
                hook_free(h);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        free(set);
        return NULL;
}

void hook_set_on_done(HookSet *set, hook_done_t handler, void *userdata) {
        set->on_done = handler;
        set->userdata = userdata;
}

unsigned hook_set_running(const HookSet *set) {
        return set->n_running;
}

static int on_hook_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Hook *h = userdata;

        if (h->stage == HOOK_RUNNING) {
                log_warning("hook %s for event %s (pid %d) still running after its timeout of %u s: sending "
                            "SIGTERM to its process group",
                            h->program, h->event, (int) h->pid, h->timeout_sec);
                (void) kill(-h->pid, SIGTERM);
                h->stage = HOOK_TERM_SENT;
                if (sd_event_source_set_time_relative(s, HOOK_KILL_GRACE_SEC * USEC_PER_SEC) >= 0 &&
                    sd_event_source_set_enabled(s, SD_EVENT_ONESHOT) >= 0)
                        return 0;
                /* cannot wait for the grace period: no grace */
        }
        log_warning("hook %s for event %s (pid %d) did not exit %u s after SIGTERM: sending SIGKILL to its "
                    "process group",
                    h->program, h->event, (int) h->pid, (unsigned) HOOK_KILL_GRACE_SEC);
        (void) kill(-h->pid, SIGKILL);
        h->stage = HOOK_KILL_SENT;
        return 0;
}

static void on_hook_exit(ChildWatch *cw, const siginfo_t *si, void *userdata) {
        Hook *h = userdata;
        HookSet *set = h->set;
        HookResult result = {
                .event = h->event,
                .program = h->program,
                .pid = h->pid,
                .code = si->si_code,
                .status = si->si_status,
                .timed_out = h->stage != HOOK_RUNNING,
        };
        char sig[32];

        /* The program is a zombie until this returns, so its process group
         * cannot have been reused: end whatever it left behind. Not if it
         * was reaped elsewhere: its pid, the group's id, may be another's now. */
        if (si->si_code != CHILD_WATCH_REAPED_ELSEWHERE)
                (void) kill(-h->pid, SIGKILL);

        if (si->si_code == CLD_EXITED && si->si_status == 0)
                log_info("hook %s for event %s (pid %d) succeeded", h->program, h->event, (int) h->pid);
        else if (si->si_code == CLD_EXITED)
                log_struct(LOG_WARNING, 0, FLEETID_MESSAGE_HOOK_FAILED,
                           "hook %s for event %s (pid %d) failed with exit status %d", h->program, h->event,
                           (int) h->pid, si->si_status);
        else if (si->si_code == CHILD_WATCH_REAPED_ELSEWHERE)
                log_struct(LOG_WARNING, 0, FLEETID_MESSAGE_HOOK_FAILED,
                           "hook %s for event %s (pid %d) ended with its exit status lost to another waiter",
                           h->program, h->event, (int) h->pid);
        else if (result.timed_out)
                log_struct(LOG_WARNING, 0, FLEETID_MESSAGE_HOOK_FAILED,
                           "hook %s for event %s (pid %d) was killed (%s) after its timeout of %u s",
                           h->program, h->event, (int) h->pid, signal_name(si->si_status, sig, sizeof(sig)),
                           h->timeout_sec);
        else
                log_struct(LOG_WARNING, 0, FLEETID_MESSAGE_HOOK_FAILED,
                           "hook %s for event %s (pid %d) was killed by %s%s", h->program, h->event,
                           (int) h->pid, signal_name(si->si_status, sig, sizeof(sig)),
                           si->si_code == CLD_DUMPED ? " (core dumped)" : "");

        if (set->on_done)
                set->on_done(set, &result, set->userdata);
        hook_free(h);
}

static bool event_name_valid(const char *name) {
        size_t n = strlen(name);

        if (n == 0 || n > HOOK_EVENT_NAME_MAX)
                return false;
        return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* "FLEETID_KEY=VALUE", KEY from [A-Z0-9_], not FLEETID_EVENT, bounded. */
static bool detail_valid(const char *kv) {
        const char *eq = strchr(kv, '=');
        size_t klen;

        if (!eq || strlen(kv) > HOOK_ENV_ENTRY_MAX || strncmp(kv, "FLEETID_", 8) != 0)
                return false;
        klen = (size_t) (eq - kv);
        if (klen == 8 || strspn(kv, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != klen)
                return false;
        return !(klen == strlen("FLEETID_EVENT") && strncmp(kv, "FLEETID_EVENT", klen) == 0);
}

static int sigchld_blocked(void) {
        sigset_t cur;

        if (sigprocmask(SIG_BLOCK, NULL, &cur) < 0)
                return -errno;
        return sigismember(&cur, SIGCHLD);
}

/* posix_spawn() attributes and file actions for the hygiene described in hook.h. */
static int spawn_setup(posix_spawnattr_t *attr, posix_spawn_file_actions_t *fa) {
        sigset_t none, all;
        int r;

        sigemptyset(&none);
        sigfillset(&all);
        r = posix_spawnattr_setflags(attr,
                                     POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (r == 0)
                r = posix_spawnattr_setpgroup(attr, 0);
        if (r == 0)
                r = posix_spawnattr_setsigmask(attr, &none);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(attr, &all);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(fa, STDERR_FILENO, STDOUT_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_addchdir_np(fa, "/");
        if (r == 0)
                r = posix_spawn_file_actions_addclosefrom_np(fa, STDERR_FILENO + 1);
        return -r;
}

int hook_run(sd_event *e, const char *program, unsigned timeout_sec, const char *event_name, char **env,
             HookSet *set) {
        _cleanup_(posix_spawn_file_actions_destroyp) posix_spawn_file_actions_t *fa = NULL;
        _cleanup_(posix_spawnattr_destroyp) posix_spawnattr_t *attr = NULL;
        posix_spawn_file_actions_t fa_storage;
        posix_spawnattr_t attr_storage;
        _cleanup_free_ char *event_var = NULL;
        _cleanup_free_ char **envp = NULL;
        char *argv[3];
        size_t n = 0;
        Hook *h;
        int r;

        if (!program || program[0] != '/')
                return log_error_errno(EINVAL,
                                       "hook for event %s not run: the program \"%s\" is not an absolute path",
                                       strempty(event_name), strempty(program));
        if (!event_name || !event_name_valid(event_name))
                return log_error_errno(EINVAL, "hook %s not run: invalid event name \"%s\"", program,
                                       strempty(event_name));
        if (timeout_sec == 0)
                return log_error_errno(EINVAL, "hook %s for event %s not run: the timeout is 0", program,
                                       event_name);
        for (; env && env[n]; n++) {
                if (n >= HOOK_ENV_MAX)
                        return log_error_errno(E2BIG, "hook %s for event %s not run: more than %u details",
                                               program, event_name, (unsigned) HOOK_ENV_MAX);
                if (!detail_valid(env[n]))
                        return log_error_errno(
                                EINVAL,
                                "hook %s for event %s not run: detail %zu (\"%.*s\") is not "
                                "FLEETID_<A-Z0-9_>=VALUE of at most %u bytes, or is FLEETID_EVENT",
                                program, event_name, n + 1, (int) strcspn(env[n], "="), env[n],
                                (unsigned) HOOK_ENV_ENTRY_MAX);
        }

        if (set->n_running >= set->max_running) {
                log_warning("hook %s for event %s dropped: %u hooks are still running", program, event_name,
                            set->n_running);
                return -EBUSY;
        }
        /* It runs with the daemon's identity (its TPM keys, its password
         * file): only root or that identity may have put it there. */
        {
                struct stat st;

                if (stat(program, &st) < 0)
                        return log_error_errno(errno, "hook %s for event %s cannot be run: %m", program,
                                               event_name);
                if (!S_ISREG(st.st_mode))
                        return log_error_errno(EINVAL, "hook %s for event %s not run: not a regular file",
                                               program, event_name);
                if (st.st_uid != 0 && st.st_uid != geteuid())
                        return log_error_errno(
                                EACCES,
                                "hook %s for event %s not run: owned by uid %u, neither root nor "
                                "fleetidd's uid %u; it would run with fleetidd's access to the "
                                "TPM keys (chown)",
                                program, event_name, (unsigned) st.st_uid, (unsigned) geteuid());
                if (st.st_mode & (S_IWGRP | S_IWOTH))
                        return log_error_errno(EACCES,
                                               "hook %s for event %s not run: mode %04o lets group or others "
                                               "write it; chmod go-w %s",
                                               program, event_name, (unsigned) (st.st_mode & 07777), program);
        }
        r = sigchld_blocked();
        if (r <= 0)
                return log_error_errno(r < 0 ? r : EBUSY,
                                       "hook %s for event %s not run: SIGCHLD must be blocked to watch it",
                                       program, event_name);

        if (asprintf(&event_var, "FLEETID_EVENT=%s", event_name) < 0) {
                event_var = NULL;
                return log_error_errno(ENOMEM, "hook %s for event %s not run: out of memory", program,
                                       event_name);
        }
        envp = calloc(n + 3, sizeof(char *));
        if (!envp)
                return log_error_errno(ENOMEM, "hook %s for event %s not run: out of memory", program,
                                       event_name);
        envp[0] = (char *) "PATH=" HOOK_PATH;
        envp[1] = event_var;
        for (size_t i = 0; i < n; i++)
                envp[2 + i] = env[i];

        h = calloc(1, sizeof(*h));
        if (!h)
                return log_error_errno(ENOMEM, "hook %s for event %s not run: out of memory", program,
                                       event_name);
        h->program = strdup(program);
        h->event = strdup(event_name);
        h->timeout_sec = timeout_sec;
        if (!h->program || !h->event) {
                hook_free(h);
                return log_error_errno(ENOMEM, "hook %s for event %s not run: out of memory", program,
                                       event_name);
        }

        r = -posix_spawnattr_init(&attr_storage);
        if (r == 0) {
                attr = &attr_storage;
                r = -posix_spawn_file_actions_init(&fa_storage);
        }
        if (r == 0) {
                fa = &fa_storage;
                r = spawn_setup(attr, fa);
        }
        if (r < 0) {
                hook_free(h);
                return log_error_errno(r, "hook %s for event %s not run: cannot set up the process: %m",
                                       program, event_name);
        }

        argv[0] = h->program;
        argv[1] = h->event;
        argv[2] = NULL;
        /* glibc's posix_spawn() returns only after the exec succeeded or failed,
         * so a missing program is reported here. */
        r = -posix_spawn(&h->pid, program, fa, attr, argv, envp);
        if (r < 0) {
                hook_free(h);
                return log_struct(LOG_WARNING, r, FLEETID_MESSAGE_HOOK_FAILED,
                                  "hook %s for event %s cannot be run: %m", program, event_name);
        }

        r = child_watch_new(e, h->pid, "hook-exit", on_hook_exit, h, &h->child);
        if (r >= 0)
                r = sd_event_add_time_relative(e, &h->timer, CLOCK_MONOTONIC, timeout_sec * USEC_PER_SEC, 0,
                                               on_hook_timer, h);
        if (r < 0) {
                pid_t pid = h->pid;

                (void) kill(-pid, SIGKILL);
                hook_free(h);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                return log_error_errno(r, "hook %s for event %s (pid %d) cannot be watched, killed it: %m",
                                       program, event_name, (int) pid);
        }

        h->set = set;
        h->next = set->hooks;
        if (set->hooks)
                set->hooks->prev = h;
        set->hooks = h;
        set->n_running++;
        log_info("hook %s for event %s started (pid %d)", program, event_name, (int) h->pid);
        return 0;
}
