/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * access-policy.c: the roles, the loading of access.conf and the decision
 * (see access-policy.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libconfig.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/access-policy.h"
#include "config/conf-file.h"
#include "util/fileio.h"

#define NAME_MAX_BYTES 256u
#define NSS_BUFFER_MAX (1024u * 1024u)
#define NO_ID UINT32_MAX /* (uid_t) -1 and (gid_t) -1 mean "no id" to the kernel */

static const char *const role_names[_ACCESS_ROLE_MAX] = {
        [ACCESS_ROLE_ANYONE] = "anyone",
        [ACCESS_ROLE_READER] = "reader",
        [ACCESS_ROLE_ATTEST] = "attest",
        [ACCESS_ROLE_ATTEST_BIRTH] = "attest-birth",
        [ACCESS_ROLE_SENSOR_BROKER] = "sensor-broker",
        [ACCESS_ROLE_ADMIN] = "admin",
};

/* What each role implies directly; access_role_closure() follows the chain. */
static const unsigned role_implies[_ACCESS_ROLE_MAX] = {
        [ACCESS_ROLE_READER] = 0,
        [ACCESS_ROLE_ATTEST] = ACCESS_ROLE_BIT(ACCESS_ROLE_READER),
        [ACCESS_ROLE_ATTEST_BIRTH] = ACCESS_ROLE_BIT(ACCESS_ROLE_ATTEST),
        [ACCESS_ROLE_SENSOR_BROKER] = ACCESS_ROLE_BIT(ACCESS_ROLE_READER),
        [ACCESS_ROLE_ADMIN] = ACCESS_ROLE_BIT(ACCESS_ROLE_READER) | ACCESS_ROLE_BIT(ACCESS_ROLE_ATTEST) |
                              ACCESS_ROLE_BIT(ACCESS_ROLE_ATTEST_BIRTH) |
                              ACCESS_ROLE_BIT(ACCESS_ROLE_SENSOR_BROKER),
};

const char *access_role_to_string(AccessRole r) {
        if (r < 0 || r >= _ACCESS_ROLE_MAX)
                return NULL;
        return role_names[r];
}

AccessRole access_role_from_string(const char *s) {
        if (!s)
                return _ACCESS_ROLE_INVALID;
        for (AccessRole r = ACCESS_ROLE_READER; r < _ACCESS_ROLE_MAX; r++)
                if (strcmp(s, role_names[r]) == 0)
                        return r;
        return _ACCESS_ROLE_INVALID;
}

unsigned access_role_closure(unsigned mask) {
        unsigned prev;

        mask &= ACCESS_ROLE_BIT(_ACCESS_ROLE_MAX) - 1u;
        do {
                prev = mask;
                for (AccessRole r = 0; r < _ACCESS_ROLE_MAX; r++)
                        if (mask & ACCESS_ROLE_BIT(r))
                                mask |= role_implies[r];
        } while (mask != prev);
        return mask;
}

/* ---- the policy ---- */

int access_policy_new(AccessPolicy **ret) {
        AccessPolicy *p = calloc(1, sizeof(AccessPolicy));

        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

AccessPolicy *access_policy_free(AccessPolicy *p) {
        if (!p)
                return NULL;
        free(p->path);
        free(p->grants);
        free(p);
        return NULL;
}

static const AccessGrant *find_grant(const AccessPolicy *p, AccessPrincipal kind, uint32_t id) {
        for (size_t i = 0; p && i < p->n_grants; i++)
                if (p->grants[i].kind == kind && p->grants[i].id == id)
                        return &p->grants[i];
        return NULL;
}

int access_policy_add(AccessPolicy *p, AccessPrincipal kind, uint32_t id, unsigned roles, unsigned line,
                      unsigned *ret_line) {
        const AccessGrant *old;
        AccessGrant *g;

        if (!p || id == NO_ID || roles == 0 || (roles & ACCESS_ROLE_BIT(ACCESS_ROLE_ANYONE)) ||
            (roles & ~(ACCESS_ROLE_BIT(_ACCESS_ROLE_MAX) - 1u)))
                return -EINVAL;
        old = find_grant(p, kind, id);
        if (old) {
                if (ret_line)
                        *ret_line = old->line;
                return -EEXIST;
        }
        if (p->n_grants >= ACCESS_GRANTS_MAX)
                return -E2BIG;
        g = reallocarray(p->grants, p->n_grants + 1, sizeof(AccessGrant));
        if (!g)
                return -ENOMEM;
        p->grants = g;
        p->grants[p->n_grants++] = (AccessGrant) { .kind = kind, .id = id, .roles = roles, .line = line };
        return 0;
}

unsigned access_roles(const AccessPolicy *p, uid_t uid, const gid_t *gids, size_t n_gids) {
        const AccessGrant *g;
        unsigned mask = 0;

        if (uid == 0)
                mask |= ACCESS_ROLE_BIT(ACCESS_ROLE_ADMIN);
        if (uid != (uid_t) NO_ID) {
                g = find_grant(p, ACCESS_PRINCIPAL_USER, uid);
                if (g)
                        mask |= g->roles;
        }
        for (size_t i = 0; gids && i < n_gids; i++) {
                if (gids[i] == (gid_t) NO_ID)
                        continue;
                g = find_grant(p, ACCESS_PRINCIPAL_GROUP, gids[i]);
                if (g)
                        mask |= g->roles;
        }
        return access_role_closure(mask) | ACCESS_ROLE_BIT(ACCESS_ROLE_ANYONE);
}

bool access_check(const AccessPolicy *p, uid_t uid, const gid_t *gids, size_t n_gids, AccessRole needed) {
        if (needed < 0 || needed >= _ACCESS_ROLE_MAX)
                return false;
        return access_roles(p, uid, gids, n_gids) & ACCESS_ROLE_BIT(needed);
}

bool access_check_job(const AccessPolicy *p, uid_t uid, const gid_t *gids, size_t n_gids, uid_t job_owner) {
        if (uid == job_owner && uid != (uid_t) NO_ID)
                return true;
        return access_check(p, uid, gids, n_gids, ACCESS_ROLE_ADMIN);
}

/* ---- loading ---- */

typedef struct Loader {
        const char *path;
        AccessPolicy *policy;
        Diag *diag;
} Loader;

static const char *kind_name(AccessPrincipal kind) {
        return kind == ACCESS_PRINCIPAL_USER ? "user" : "group";
}

/* 0 and the id, -ESRCH if there is no such name, another -errno on failure. */
static int resolve_name(AccessPrincipal kind, const char *name, uint32_t *ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 1024;

        for (;;) {
                struct passwd pw, *pwr = NULL;
                struct group gr, *grr = NULL;
                char *b;
                int e;

                b = realloc(buf, size);
                if (!b)
                        return -ENOMEM;
                buf = b;
                if (kind == ACCESS_PRINCIPAL_USER)
                        e = getpwnam_r(name, &pw, buf, size, &pwr);
                else
                        e = getgrnam_r(name, &gr, buf, size, &grr);
                if (e == ERANGE && size < NSS_BUFFER_MAX) {
                        size *= 2;
                        continue;
                }
                /* getpwnam_r(3): ENOENT, ESRCH, EBADF and EPERM may also mean "not found". */
                if (e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM) {
                        if (pwr) {
                                *ret = pwr->pw_uid;
                                return 0;
                        }
                        if (grr) {
                                *ret = grr->gr_gid;
                                return 0;
                        }
                        return -ESRCH;
                }
                return -e;
        }
}

/* The id of a grant's user or group setting s: a quoted name resolved now, or a number. */
static int principal_id(Loader *l, AccessPrincipal kind, const config_setting_t *s, uint32_t *ret) {
        const char *what = kind_name(kind), *name;
        unsigned line = (unsigned) config_setting_source_line(s);
        int64_t v;
        int r;

        switch (config_setting_type(s)) {
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                (void) conf_setting_integer(s, &v);
                break;
        case CONFIG_TYPE_STRING:
                name = config_setting_get_string(s);
                if (name[0] == '\0')
                        return conf_fail(l->diag, l->path, line, "%s must not be empty", what);
                if (strlen(name) > NAME_MAX_BYTES)
                        return conf_fail(l->diag, l->path, line, "%s name is longer than %u bytes", what,
                                         NAME_MAX_BYTES);
                if (conf_text_has_control_char(name) || !conf_text_is_valid_utf8(name))
                        return conf_fail(l->diag, l->path, line,
                                         "%s name contains a control character or is not valid UTF-8", what);
                r = resolve_name(kind, name, ret);
                if (r == -ESRCH)
                        return conf_fail(l->diag, l->path, line,
                                         "no %s named '%s' on this system; create it, fix the name%s", what,
                                         name,
                                         name[strspn(name, "0123456789")] == '\0'
                                                 ? ", or write the numeric id without quotes"
                                                 : ", or give its numeric id");
                if (r < 0)
                        return conf_fail(l->diag, l->path, line, "cannot look up the %s '%s': %s", what,
                                         name, strerror(-r));
                return 0;
        default:
                return conf_fail(l->diag, l->path, line, "%s must be a name in quotes or a numeric id", what);
        }
        if (v < 0 || v >= NO_ID)
                return conf_fail(l->diag, l->path, line, "%s id %lld is out of range (0..%u)", what,
                                 (long long) v, NO_ID - 1u);
        *ret = (uint32_t) v;
        return 0;
}

static int grant_roles(Loader *l, const config_setting_t *s, unsigned *ret) {
        unsigned line = (unsigned) config_setting_source_line(s), mask = 0;
        int n = config_setting_length(s);

        if ((config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST) ||
            n == 0)
                return conf_fail(l->diag, l->path, line,
                                 "roles must be a non-empty list of roles, e.g. roles = [ \"reader\" ];");
        for (int i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned) i);
                const char *v;
                AccessRole r;

                if (config_setting_type(e) != CONFIG_TYPE_STRING)
                        return conf_fail(l->diag, l->path, line,
                                         "roles must hold role names in quotes, e.g. [ \"reader\" ]");
                v = config_setting_get_string(e);
                r = access_role_from_string(v);
                if (r < 0)
                        return conf_fail(l->diag, l->path, line,
                                         "unknown role '%.*s'; the roles are reader, attest, attest-birth, "
                                         "sensor-broker and admin",
                                         (int) NAME_MAX_BYTES, conf_text_is_valid_utf8(v) ? v : "(not UTF-8)");
                if (mask & ACCESS_ROLE_BIT(r))
                        return conf_fail(l->diag, l->path, line, "role '%s' is listed twice", v);
                mask |= ACCESS_ROLE_BIT(r);
        }
        *ret = mask;
        return 0;
}

static int load_grant(Loader *l, const config_setting_t *g) {
        const config_setting_t *who = NULL, *roles = NULL;
        unsigned line = (unsigned) config_setting_source_line(g), mask, prev = 0;
        AccessPrincipal kind = ACCESS_PRINCIPAL_USER;
        uint32_t id;
        int r;

        if (config_setting_type(g) != CONFIG_TYPE_GROUP)
                return conf_fail(l->diag, l->path, line,
                                 "each grant must be a group: { user = \"name\"; roles = [ \"reader\" ]; }");
        for (int i = 0; i < config_setting_length(g); i++) {
                const config_setting_t *s = config_setting_get_elem(g, (unsigned) i);
                const char *name = config_setting_name(s);
                unsigned sline = (unsigned) config_setting_source_line(s);

                if (strcmp(name, "roles") == 0)
                        roles = s;
                else if (strcmp(name, "user") == 0 || strcmp(name, "group") == 0) {
                        if (who)
                                return conf_fail(
                                        l->diag, l->path, sline,
                                        "a grant names both a user and a group; write one grant for each");
                        who = s;
                        kind = name[0] == 'u' ? ACCESS_PRINCIPAL_USER : ACCESS_PRINCIPAL_GROUP;
                } else
                        return conf_fail(l->diag, l->path, sline,
                                         "unknown key '%s' in a grant; a grant has user or group, and roles",
                                         name);
        }
        if (!who)
                return conf_fail(l->diag, l->path, line, "a grant names neither a user nor a group");
        if (!roles)
                return conf_fail(l->diag, l->path, line, "a grant has no roles = [ ... ];");

        r = principal_id(l, kind, who, &id);
        if (r < 0)
                return r;
        r = grant_roles(l, roles, &mask);
        if (r < 0)
                return r;
        r = access_policy_add(l->policy, kind, id, mask, line, &prev);
        if (r == -EEXIST && config_setting_type(who) == CONFIG_TYPE_STRING)
                return conf_fail(
                        l->diag, l->path, line,
                        "%s '%s' (%cid %u) already has a grant at line %u; give each user and group one grant",
                        kind_name(kind), config_setting_get_string(who), kind_name(kind)[0], id, prev);
        if (r == -EEXIST)
                return conf_fail(l->diag, l->path, line,
                                 "%s %u already has a grant at line %u; give each user and group one grant",
                                 kind_name(kind), id, prev);
        if (r == -E2BIG)
                return conf_fail(l->diag, l->path, line, "more than %u grants", ACCESS_GRANTS_MAX);
        if (r < 0)
                return diag_set(l->diag, r, "out of memory");
        return 0;
}

static int load_root(Loader *l, const config_setting_t *root) {
        const config_setting_t *grants = NULL;

        for (int i = 0; i < config_setting_length(root); i++) {
                const config_setting_t *s = config_setting_get_elem(root, (unsigned) i);

                if (strcmp(config_setting_name(s), "grants") != 0)
                        return conf_fail(l->diag, l->path, (unsigned) config_setting_source_line(s),
                                         "unknown setting '%s'; the file holds only grants = ( ... );",
                                         config_setting_name(s));
                grants = s;
        }
        if (!grants)
                return 0;
        if (config_setting_type(grants) != CONFIG_TYPE_LIST)
                return conf_fail(
                        l->diag, l->path, (unsigned) config_setting_source_line(grants),
                        "grants must be a list: grants = ( { user = \"name\"; roles = [ \"reader\" ]; } );");
        for (int i = 0; i < config_setting_length(grants); i++) {
                int r = load_grant(l, config_setting_get_elem(grants, (unsigned) i));

                if (r < 0)
                        return r;
        }
        return 0;
}

/* Opens path and checks that only owner can change what it says. */
static int open_checked(const char *path, uid_t owner, int *ret_fd, Diag *d) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno == ENOENT)
                        return diag_set(d, -ENOENT, "%s: no such file", path);
                return diag_set(d, -errno, "%s: cannot open: %m", path);
        }
        if (fstat(fd, &st) < 0)
                return diag_set(d, -errno, "%s: cannot stat: %m", path);
        if (!S_ISREG(st.st_mode))
                return diag_set(d, -EINVAL, "%s: not a regular file", path);
        if (st.st_uid != owner)
                return diag_set(d, -EACCES,
                                "%s: owned by uid %u, not %u; the file grants access to the device's keys, so it "
                                "must belong to uid %u (chown)",
                                path, (unsigned) st.st_uid, (unsigned) owner, (unsigned) owner);
        if (st.st_mode & (S_IWGRP | S_IWOTH))
                return diag_set(d, -EACCES,
                                "%s: mode %04o lets group or others write it, and so grant themselves any role; "
                                "chmod go-w %s",
                                path, (unsigned) (st.st_mode & 07777), path);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int access_policy_load(const char *path, uid_t owner, AccessPolicy **ret, Diag *d) {
        _cleanup_(access_policy_freep) AccessPolicy *p = NULL;
        _cleanup_(conf_destroyp) config_t *lc = NULL;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *text = NULL;
        config_t lcfg;
        size_t len;
        Loader l;
        int r;

        if (!path || !ret)
                return diag_set(d, -EINVAL, "access_policy_load: no path given");
        r = open_checked(path, owner, &fd, d);
        if (r < 0)
                return r;
        r = read_fd_bounded(fd, ACCESS_FILE_MAX, &text, &len);
        if (r == -EFBIG)
                return diag_set(d, r, "%s: larger than %u bytes, refusing to parse it", path, ACCESS_FILE_MAX);
        if (r < 0)
                return diag_set(d, r, "%s: cannot read: %s", path, read_file_strerror(r));

        config_init(&lcfg);
        lc = &lcfg;
        r = conf_file_parse(path, text, len, lc, d);
        if (r < 0)
                return r;

        r = access_policy_new(&p);
        if (r < 0)
                return diag_set(d, r, "out of memory");
        l = (Loader) { .path = path, .policy = p, .diag = d };
        r = load_root(&l, config_root_setting(lc));
        if (r < 0)
                return r;
        p->path = strdup(path);
        if (!p->path)
                return diag_set(d, -ENOMEM, "out of memory");
        *ret = TAKE_PTR(p);
        return 0;
}
