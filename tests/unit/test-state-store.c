/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-state-store.c: the state directory checks, file name validation, and the
 * status record's format, escaping and parser, in temporary directories under /tmp.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf() */
#endif
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "test-tmpdir.h"

#include "store/state-store.h"
#include "store/status-file.h"

typedef struct Fixture {
        char base[64]; /* the temp dir; the store is created inside */
        char *dir;     /* base/state */
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        assert_non_null(test_tmpdir_new(f->base, sizeof(f->base), "state-store"));
        assert_true(asprintf(&f->dir, "%s/state", f->base) > 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        assert_int_equal(test_tmpdir_remove(f->base), 0);
        free(f->dir);
        free(f);
        return 0;
}

static void test_open_creates(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *slashed = NULL;
        StateStore *s = NULL;
        struct stat st;
        Diag d = {};
        mode_t old;

        /* A reader must not create it. */
        assert_int_equal(state_store_open_existing(f->dir, &s, &d), -ENOENT);
        assert_null(s);
        assert_non_null(strstr(d.text, f->dir));
        assert_int_equal(stat(f->dir, &st), -1);

        old = umask(0022);
        assert_int_equal(state_store_open(f->dir, &s, &d), 0);
        umask(old);
        assert_non_null(s);
        assert_string_equal(state_store_path(s), f->dir);
        assert_int_equal(stat(f->dir, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0750);
        s = state_store_free(s);
        assert_null(s);

        /* Existing now; a trailing slash is dropped, not used to follow anything. */
        assert_true(asprintf(&slashed, "%s//", f->dir) > 0);
        assert_int_equal(state_store_open_existing(slashed, &s, &d), 0);
        assert_string_equal(state_store_path(s), f->dir);
        state_store_free(s);

        assert_null(state_store_free(NULL));
}

static void test_open_refuses(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *real = NULL, *file = NULL, *noparent = NULL;
        StateStore *s = NULL;
        Diag d = {};
        int fd;

        assert_true(asprintf(&real, "%s/real", f->base) > 0);
        assert_int_equal(mkdir(real, 0750), 0);

        /* A symlink to a perfectly good directory. */
        assert_int_equal(symlink(real, f->dir), 0);
        assert_int_equal(state_store_open(f->dir, &s, &d), -ELOOP);
        assert_null(s);
        assert_non_null(strstr(d.text, f->dir));
        assert_non_null(strstr(d.text, "symlink"));
        assert_int_equal(state_store_open_existing(f->dir, &s, &d), -ELOOP);
        assert_int_equal(unlink(f->dir), 0);

        /* A dangling symlink must not make us create its target. */
        assert_int_equal(symlink("nowhere", f->dir), 0);
        assert_int_equal(state_store_open(f->dir, &s, &d), -ELOOP);
        assert_int_equal(unlink(f->dir), 0);

        /* A regular file. */
        assert_true(asprintf(&file, "%s/file", f->base) > 0);
        fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(state_store_open(file, &s, &d), -ENOTDIR);
        assert_non_null(strstr(d.text, file));

        /* Group- and other-writable directories. */
        assert_int_equal(chmod(real, 0770), 0);
        assert_int_equal(state_store_open(real, &s, &d), -EPERM);
        assert_non_null(strstr(d.text, real));
        assert_non_null(strstr(d.text, "0770"));
        assert_int_equal(chmod(real, 0757), 0);
        assert_int_equal(state_store_open(real, &s, &d), -EPERM);
        assert_non_null(strstr(d.text, "0757"));
        assert_int_equal(chmod(real, 0755), 0);
        assert_int_equal(state_store_open(real, &s, &d), 0);
        state_store_free(s);
        s = NULL;

        /* Parents are not created. */
        assert_true(asprintf(&noparent, "%s/a/b", f->base) > 0);
        assert_int_equal(state_store_open(noparent, &s, &d), -ENOENT);
        assert_non_null(strstr(d.text, "parent"));

        assert_int_equal(state_store_open("", &s, &d), -EINVAL);
        assert_int_equal(state_store_open(NULL, &s, &d), -EINVAL);
        assert_null(s);
}

static void test_save_load_remove(void **state) {
        Fixture *f = *state;
        _cleanup_(state_store_freep) StateStore *s = NULL;
        _cleanup_free_ char *path = NULL;
        char *data = (char *) 0x1;
        struct stat st;
        Diag d = {};
        size_t len;

        assert_int_equal(state_store_open(f->dir, &s, &d), 0);

        assert_int_equal(state_store_load(s, STATE_OPERATIONAL_CERT, 1024, &data, &len, &d), -ENOENT);
        assert_ptr_equal(data, (char *) 0x1);
        assert_non_null(strstr(d.text, STATE_OPERATIONAL_CERT));
        assert_false(state_store_exists(s, STATE_OPERATIONAL_CERT));
        assert_false(state_store_exists(s, "../etc"));
        assert_false(state_store_exists(NULL, STATE_OPERATIONAL_CERT));

        assert_int_equal(state_store_save(s, STATE_OPERATIONAL_CERT, "PEM one", 7, STATE_FILE_MODE, &d), 0);
        assert_true(state_store_exists(s, STATE_OPERATIONAL_CERT));
        assert_int_equal(state_store_save(s, STATE_OPERATIONAL_CERT, "PEM two!", 8, STATE_FILE_MODE, &d), 0);
        assert_true(asprintf(&path, "%s/%s", f->dir, STATE_OPERATIONAL_CERT) > 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);

        assert_int_equal(state_store_load(s, STATE_OPERATIONAL_CERT, 1024, &data, &len, &d), 0);
        assert_int_equal(len, 8);
        assert_string_equal(data, "PEM two!");
        free(data);

        assert_int_equal(state_store_load(s, STATE_OPERATIONAL_CERT, 7, &data, &len, &d), -EFBIG);
        assert_non_null(strstr(d.text, "larger than 7 bytes"));

        assert_int_equal(state_store_remove(s, STATE_OPERATIONAL_CERT, &d), 0);
        assert_int_equal(state_store_load(s, STATE_OPERATIONAL_CERT, 1024, &data, &len, &d), -ENOENT);
        assert_int_equal(state_store_remove(s, STATE_OPERATIONAL_CERT, &d), 0);

        /* A symlink planted in the directory is neither read nor replaced. */
        assert_int_equal(symlink("/etc/passwd", path), 0);
        assert_int_equal(state_store_load(s, STATE_OPERATIONAL_CERT, 1 << 20, &data, &len, &d), -ELOOP);
        assert_int_equal(state_store_save(s, STATE_OPERATIONAL_CERT, "x", 1, 0640, &d), -ELOOP);
        assert_non_null(strstr(d.text, "symlink"));
        assert_true(state_store_exists(s, STATE_OPERATIONAL_CERT)); /* the link itself, not its target */
        /* Removing it is fine: that only unlinks the symlink itself. */
        assert_int_equal(state_store_remove(s, STATE_OPERATIONAL_CERT, &d), 0);
        assert_int_equal(access("/etc/passwd", F_OK), 0);
}

static void touch_at(int dfd, const char *name) {
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, "x", 1), 1);
        close(fd);
}

static bool exists_at(int dfd, const char *name) {
        struct stat st;

        return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* What a crash between writing and renaming leaves (".#name.XXXXXX") is
 * removed; nothing else: other names, symlinks (nor their targets),
 * directories, other users' files. */
static void test_remove_temporaries(void **state) {
        Fixture *f = *state;
        _cleanup_(state_store_freep) StateStore *s = NULL;
        _cleanup_free_ char *outside = NULL;
        static const char *const stale[] = { ".#operational.pem.AbC123", ".#status.zzzzzz", ".#x.000000" };
        static const char *const kept[] = {
                "operational.pem",
                ".#operational.pem",
                ".#operational.pem.AbC12",
                ".#operational.pem.AbC1234",
                ".#.AbC123",
                ".#status.Ab-123",
                "#status.AbC123",
                ".operational.pem.AbC123",
        };
        unsigned removed = 99;
        Diag d = {};
        int dfd;

        assert_int_equal(state_store_open(f->dir, &s, &d), 0);
        dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);

        assert_int_equal(state_store_remove_temporaries(s, &removed, &d), 0);
        assert_int_equal(removed, 0);

        for (size_t i = 0; i < ELEMENTSOF(stale); i++)
                touch_at(dfd, stale[i]);
        for (size_t i = 0; i < ELEMENTSOF(kept); i++)
                touch_at(dfd, kept[i]);
        /* A symlink with a temp name, to a file outside: neither is removed. */
        assert_true(asprintf(&outside, "%s/outside", f->base) > 0);
        assert_int_equal(close(open(outside, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)), 0);
        assert_int_equal(symlinkat(outside, dfd, ".#birth.pem.QWERTY"), 0);
        /* A directory with a temp name, and a file in it. */
        assert_int_equal(mkdirat(dfd, ".#status.dirdir", 0700), 0);
        assert_int_equal(mkdirat(dfd, ".#status.dirdir/.#status.AbC123", 0700), 0);
        /* Another user's file (as root only: nobody else can give a file away). */
        if (geteuid() == 0) {
                touch_at(dfd, ".#status.NoBody");
                assert_int_equal(fchownat(dfd, ".#status.NoBody", 65534, 65534, AT_SYMLINK_NOFOLLOW), 0);
        }

        assert_int_equal(state_store_remove_temporaries(s, &removed, &d), 0);
        assert_int_equal(removed, ELEMENTSOF(stale));
        for (size_t i = 0; i < ELEMENTSOF(stale); i++)
                assert_false(exists_at(dfd, stale[i]));
        for (size_t i = 0; i < ELEMENTSOF(kept); i++)
                assert_true(exists_at(dfd, kept[i]));
        assert_true(exists_at(dfd, ".#birth.pem.QWERTY"));
        assert_int_equal(access(outside, F_OK), 0);
        assert_true(exists_at(dfd, ".#status.dirdir/.#status.AbC123"));
        if (geteuid() == 0)
                assert_true(exists_at(dfd, ".#status.NoBody"));
        close(dfd);
}

/* Root writing into a directory of another user (fleetidctl into fleetidd's
 * state directory): the file is that user's as soon as it has its name. */
static void test_save_gives_to_owner(void **state) {
        Fixture *f = *state;
        _cleanup_(state_store_freep) StateStore *s = NULL;
        _cleanup_free_ char *path = NULL;
        struct stat st;
        Diag d = {};

        if (geteuid() != 0) {
                skip(); /* only root can give a file away */
                return;
        }
        assert_int_equal(state_store_open(f->dir, &s, &d), 0);
        assert_int_equal(chown(f->dir, 65534, 65534), 0);
        assert_int_equal(state_store_save(s, STATE_OPERATIONAL_CERT, "PEM", 3, STATE_FILE_MODE, &d), 0);
        assert_true(asprintf(&path, "%s/%s", f->dir, STATE_OPERATIONAL_CERT) > 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_uid, 65534);
        assert_int_equal(st.st_gid, 65534);
        assert_int_equal(st.st_mode & 07777, 0640);
}

static void test_list(void **state) {
        Fixture *f = *state;
        _cleanup_(state_store_freep) StateStore *s = NULL;
        char **names = NULL;
        unsigned n = 99;
        Diag d = {};

        assert_int_equal(state_store_open(f->dir, &s, &d), 0);
        assert_int_equal(state_store_list(s, 10, &names, &n, &d), 0);
        assert_int_equal(n, 0);
        state_store_names_free(names, n);

        assert_int_equal(state_store_save(s, "b", "1", 1, 0640, &d), 0);
        assert_int_equal(state_store_save(s, "a", "2", 1, 0640, &d), 0);
        assert_int_equal(state_store_save(s, "c", "3", 1, 0640, &d), 0);
        {
                int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                assert_true(dfd >= 0);
                touch_at(dfd, ".#a.AbC123"); /* a temporary file: not listed */
                touch_at(dfd, ".hidden");
                close(dfd);
        }
        assert_int_equal(state_store_list(s, 3, &names, &n, &d), 0);
        assert_int_equal(n, 3);
        assert_string_equal(names[0], "a"); /* sorted */
        assert_string_equal(names[1], "b");
        assert_string_equal(names[2], "c");
        state_store_names_free(names, n);

        names = NULL;
        assert_int_equal(state_store_list(s, 2, &names, &n, &d), -E2BIG);
        assert_null(names);
        if (!strstr(d.text, "holds more than 2 files"))
                fail_msg("diag \"%s\"", d.text);
        assert_int_equal(state_store_list(NULL, 2, &names, &n, &d), -EINVAL);
}

static void test_name_validation(void **state) {
        static const char *const bad[] = {
                "", ".", "..", ".hidden", ".#status.abc123", "a/b", "/abs", "../escape", "dir/",
        };
        Fixture *f = *state;
        _cleanup_(state_store_freep) StateStore *s = NULL;
        char longname[NAME_MAX + 2];
        char *data = NULL;
        Diag d = {};
        size_t len;

        assert_int_equal(state_store_open(f->dir, &s, &d), 0);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_false(state_store_name_valid(bad[i]));
                assert_int_equal(state_store_save(s, bad[i], "x", 1, 0640, &d), -EINVAL);
                assert_int_equal(state_store_load(s, bad[i], 10, &data, &len, &d), -EINVAL);
                assert_int_equal(state_store_remove(s, bad[i], &d), -EINVAL);
        }
        assert_false(state_store_name_valid(NULL));
        assert_int_equal(state_store_save(s, NULL, "x", 1, 0640, &d), -EINVAL);

        memset(longname, 'n', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        assert_false(state_store_name_valid(longname));
        longname[NAME_MAX] = '\0';
        assert_true(state_store_name_valid(longname));
        /* The temp name is shortened to fit; the final name is written as given. */
        assert_int_equal(state_store_save(s, longname, "long", 4, 0640, &d), 0);
        assert_int_equal(state_store_load(s, longname, 10, &data, &len, &d), 0);
        assert_string_equal(data, "long");
        free(data);

        assert_true(state_store_name_valid(STATE_OPERATIONAL_CERT));
        assert_true(state_store_name_valid(STATE_BIRTH_CERT));
        assert_true(state_store_name_valid(STATE_TRUST_ANCHORS));
        assert_true(state_store_name_valid(STATE_STATUS));
        assert_true(state_store_name_valid("a.b-c_d"));
}

static void assert_records_equal(const StatusRecord *a, const StatusRecord *b) {
        assert_true(streq_ptr(a->state, b->state));
        assert_true(streq_ptr(a->last_error, b->last_error));
        assert_true(streq_ptr(a->est_url, b->est_url));
        assert_true(streq_ptr(a->write_error, b->write_error));
        assert_true(a->updated == b->updated);
        assert_true(a->last_success == b->last_success);
        assert_true(a->next_attempt == b->next_attempt);
        assert_true(a->last_attempt == b->last_attempt);
        assert_true(a->renew_due == b->renew_due);
        assert_true(a->cacerts_checked == b->cacerts_checked);
        assert_true(a->cacerts_next == b->cacerts_next);
        assert_int_equal(a->renew_requests, b->renew_requests);
        assert_int_equal(a->renew_answered, b->renew_answered);
        assert_int_equal(a->failures, b->failures);
        assert_true(a->valid_until == b->valid_until);
        assert_int_equal(a->tpm_lockout, b->tpm_lockout);
        assert_int_equal(a->birth_key_da, b->birth_key_da);
}

static void test_status_format_exact(void **state) {
        StatusRecord r = {
                .state = (char *) "waiting-retry",
                .last_error = (char *) "EST server returned 503:\nbusy \\ retry\tlater \x01\x7f caf\xc3\xa9",
                .updated = 1700000000,
                .last_success = 0,
                .next_attempt = 1700000030,
                .last_attempt = 1699999970,
                .renew_due = 1700000020,
                .cacerts_checked = 1699990000,
                .cacerts_next = 1700076400,
                .renew_requests = 2,
                .renew_answered = 1,
                .failures = 3,
                .est_url = (char *) "https://est.example.com/.well-known/est",
                .write_error = (char *) "Could not write /var/lib/fleetid/status: No space left on device",
                .valid_until = 1707776000,
                .tpm_lockout = 1,
                .birth_key_da = 1,
        };
        _cleanup_free_ char *text = NULL;

        assert_int_equal(status_record_format(&r, &text), 0);
        assert_string_equal(
                text,
                "state=waiting-retry\n"
                "last_error=EST server returned 503:\\nbusy \\\\ retry\\x09later \\x01\\x7f caf\\xc3\\xa9\n"
                "failures=3\n"
                "updated=1700000000\n"
                "last_success=0\n"
                "next_attempt=1700000030\n"
                "last_attempt=1699999970\n"
                "renew_due=1700000020\n"
                "cacerts_checked=1699990000\n"
                "cacerts_next=1700076400\n"
                "renew_requests=2\n"
                "renew_answered=1\n"
                "est_url=https://est.example.com/.well-known/est\n"
                "write_error=Could not write /var/lib/fleetid/status: No space left on device\n"
                "valid_until=1707776000\n"
                "tpm_lockout=1\n"
                "birth_key_da=1\n");
        free(TAKE_PTR(text));

        /* Absent strings are left out, not written empty. */
        r.last_error = NULL;
        r.est_url = NULL;
        r.write_error = NULL;
        assert_int_equal(status_record_format(&r, &text), 0);
        assert_null(strstr(text, "last_error"));
        assert_null(strstr(text, "est_url"));
        assert_null(strstr(text, "write_error"));
}

static void test_status_roundtrip(void **state) {
        char all_bytes[256];
        StatusRecord r = {
                .state = (char *) "enrolled",
                .last_error = all_bytes,
                .updated = UINT64_MAX,
                .last_success = 1,
                .next_attempt = 18446744073709551614ull,
                .cacerts_checked = 2,
                .cacerts_next = UINT64_MAX - 2,
                .failures = UINT_MAX,
                .est_url = (char *) "",
                .write_error = (char *) "disk full\nreally",
                .valid_until = UINT64_MAX - 3,
                .tpm_lockout = 1,
        }, p = {};
        _cleanup_free_ char *text = NULL;
        Diag d = {};

        /* Every byte value except NUL survives the trip, in one line. */
        for (int i = 0; i < 255; i++)
                all_bytes[i] = (char) (i + 1);
        all_bytes[255] = '\0';

        assert_int_equal(status_record_format(&r, &text), 0);
        for (const char *c = text; *c; c++)
                assert_true(*c == '\n' || (*c >= 0x20 && *c < 0x7f));
        assert_int_equal(status_record_parse(text, strlen(text), &p, &d), 0);
        assert_records_equal(&r, &p);
        status_record_done(&p);
        assert_null(p.state);

        /* Minimal record: absent values stay zero/NULL. */
        assert_int_equal(status_record_parse("state=unprovisioned", 19, &p, &d), 0);
        assert_string_equal(p.state, "unprovisioned");
        assert_null(p.last_error);
        assert_null(p.est_url);
        assert_true(p.updated == 0 && p.last_success == 0 && p.next_attempt == 0);
        assert_int_equal(p.failures, 0);
        status_record_done(&p);
}

static void test_status_parse_tolerant(void **state) {
        static const char text[] = "# written by fleetidd\n"
                                   "\n"
                                   "state=enrolling\n"
                                   "future_key=whatever \\q is not checked here\n"
                                   "failures=0\n"
                                   "last_error=\\xC3\\xA9=ok\n"
                                   "est_url=https://x/=y"; /* no final newline */
        StatusRecord p = {};
        Diag d = {};

        assert_int_equal(status_record_parse(text, strlen(text), &p, &d), 0);
        assert_string_equal(p.state, "enrolling");
        assert_string_equal(p.last_error, "\xc3\xa9=ok");
        assert_string_equal(p.est_url, "https://x/=y");
        status_record_done(&p);

        /* Only len bytes count: the text need not be NUL-terminated. */
        assert_int_equal(status_record_parse("state=failedXXX", 12, &p, &d), 0);
        assert_string_equal(p.state, "failed");
        status_record_done(&p);
}

static void test_status_parse_malformed(void **state) {
        static const struct {
                const char *text;
                const char *diag;
        } bad[] = {
                { "state=enrolled\nno equals sign\n", "line 2 has no '='" },
                { "state=enrolled\nfailures=12a\n", "line 2: failures=" },
                { "state=enrolled\nfailures=-1\n", "not a number" },
                { "state=enrolled\nfailures= 1\n", "not a number" },
                { "state=enrolled\nfailures=\n", "not a number" },
                { "state=enrolled\nfailures=4294967296\n", "not a number" },
                { "state=enrolled\nupdated=18446744073709551616\n", "not a number" },
                { "state=enrolled\nlast_error=a\\qb\n", "bad escape" },
                { "state=enrolled\nlast_error=a\\x4\n", "bad escape" },
                { "state=enrolled\nlast_error=a\\xzz\n", "bad escape" },
                { "state=enrolled\nlast_error=a\\x00b\n", "bad escape" },
                { "state=enrolled\nlast_error=trailing\\\n", "bad escape" },
                { "state=enrolled\nstate=failed\n", "given twice" },
                { "State=enrolled\n", "invalid key" },
                { "=enrolled\n", "invalid key" },
                { "failures=1\n", "no state=" },
                { "state=\n", "no state=" },
                { "", "no state=" },
        };
        StatusRecord p = { .state = (char *) "untouched" };
        _cleanup_free_ char *longline = NULL;
        Diag d = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                diag_clear(&d);
                assert_int_equal(status_record_parse(bad[i].text, strlen(bad[i].text), &p, &d), -EBADMSG);
                if (!strstr(d.text, bad[i].diag))
                        fail_msg("case %zu: diag \"%s\" lacks \"%s\"", i, d.text, bad[i].diag);
                assert_string_equal(p.state, "untouched");
        }

        /* Embedded NUL. */
        assert_int_equal(status_record_parse("state=en\0rolled\n", 16, &p, &d), -EBADMSG);
        assert_non_null(strstr(d.text, "NUL"));

        /* A line of exactly STATUS_LINE_MAX bytes passes, one more does not. */
        longline = malloc(STATUS_LINE_MAX + 2);
        assert_non_null(longline);
        memcpy(longline, "state=", 6);
        memset(longline + 6, 'a', STATUS_LINE_MAX - 6);
        longline[STATUS_LINE_MAX] = '\0';
        assert_int_equal(status_record_parse(longline, STATUS_LINE_MAX, &p, &d), 0);
        assert_int_equal(strlen(p.state), STATUS_LINE_MAX - 6);
        status_record_done(&p);
        longline[STATUS_LINE_MAX] = 'a';
        longline[STATUS_LINE_MAX + 1] = '\0';
        assert_int_equal(status_record_parse(longline, STATUS_LINE_MAX + 1, &p, &d), -EBADMSG);
        assert_non_null(strstr(d.text, "longer than"));
}

static void test_status_format_refuses(void **state) {
        StatusRecord r = {};
        _cleanup_free_ char *text = NULL, *huge = NULL;

        assert_int_equal(status_record_format(&r, &text), -EINVAL);
        r.state = (char *) "";
        assert_int_equal(status_record_format(&r, &text), -EINVAL);

        /* 2000 newlines escape to 4000 bytes plus the key: over the line bound. */
        huge = malloc(2100);
        assert_non_null(huge);
        memset(huge, '\n', 2099);
        huge[2099] = '\0';
        r.state = (char *) "failed";
        r.last_error = huge;
        assert_int_equal(status_record_format(&r, &text), -EINVAL);
        assert_null(text);
}

static void test_status_save_load(void **state) {
        Fixture *f = *state;
        _cleanup_(state_store_freep) StateStore *s = NULL;
        StatusRecord r = {
                .state = (char *) "failed",
                .last_error = (char *) "certificate does not match the TPM key",
                .failures = 7,
                .est_url = (char *) "https://est.example.com/.well-known/est/gw",
        }, p = {};
        _cleanup_free_ char *path = NULL;
        struct stat st;
        Diag d = {};
        time_t before = time(NULL);

        assert_int_equal(state_store_open(f->dir, &s, &d), 0);
        assert_int_equal(status_record_load(s, &p, &d), -ENOENT);

        assert_int_equal(status_record_save(s, &r, &d), 0);
        assert_true(asprintf(&path, "%s/%s", f->dir, STATE_STATUS) > 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);

        assert_int_equal(status_record_load(s, &p, &d), 0);
        /* updated = 0 means "now". */
        assert_true(p.updated >= (uint64_t) before && p.updated <= (uint64_t) time(NULL));
        r.updated = p.updated;
        assert_records_equal(&r, &p);
        status_record_done(&p);

        /* A corrupt file names itself in the Diag. */
        assert_int_equal(state_store_save(s, STATE_STATUS, "garbage\n", 8, 0640, &d), 0);
        assert_int_equal(status_record_load(s, &p, &d), -EBADMSG);
        assert_non_null(strstr(d.text, path));
        assert_non_null(strstr(d.text, "no '='"));

        r.state = NULL;
        assert_int_equal(status_record_save(s, &r, &d), -EINVAL);
}

/* A subdirectory with its files goes; a symlink at the name is removed, not
 * followed; a directory below is refused; absent is no error. */
static void test_remove_dir(void **state) {
        Fixture *f = *state;
        _cleanup_(state_store_freep) StateStore *s = NULL;
        char path[512], outside[256];
        int lock = -1, dfd;
        Diag d = {};

        assert_int_equal(state_store_open(f->dir, &s, &d), 0);
        assert_int_equal(state_store_remove_dir(s, "sensors", &d), 0); /* absent */

        snprintf(path, sizeof(path), "%s/sensors", f->dir);
        assert_int_equal(mkdir(path, 0750), 0);
        dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        touch_at(dfd, "s1");
        touch_at(dfd, ".#s2.AbC123");
        close(dfd);
        assert_int_equal(state_store_remove_dir(s, "sensors", &d), 0);
        assert_false(state_store_exists(s, "sensors"));

        /* a symlink to a directory outside: the link goes, the target and its file stay */
        snprintf(outside, sizeof(outside), "%s/outside", f->base);
        assert_int_equal(mkdir(outside, 0750), 0);
        dfd = open(outside, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        touch_at(dfd, "keep");
        close(dfd);
        assert_int_equal(symlink(outside, path), 0);
        assert_int_equal(state_store_remove_dir(s, "sensors", &d), 0);
        assert_false(state_store_exists(s, "sensors"));
        snprintf(path, sizeof(path), "%s/keep", outside);
        assert_int_equal(access(path, F_OK), 0);

        /* a directory below: refused, the subdirectory stays */
        snprintf(path, sizeof(path), "%s/jobs", f->dir);
        assert_int_equal(mkdir(path, 0750), 0);
        snprintf(path, sizeof(path), "%s/jobs/deeper", f->dir);
        assert_int_equal(mkdir(path, 0750), 0);
        assert_true(state_store_remove_dir(s, "jobs", &d) < 0);
        assert_true(state_store_exists(s, "jobs"));

        /* the lock is one process's at a time, and ends with its descriptor */
        assert_int_equal(state_store_lock(s, &lock, &d), 0);
        assert_true(lock >= 0);
        {
                int other = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                assert_int_equal(flock(other, LOCK_EX | LOCK_NB), -1);
                assert_int_equal(errno, EWOULDBLOCK);
                close(lock);
                assert_int_equal(flock(other, LOCK_EX | LOCK_NB), 0);
                close(other);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open_creates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_open_refuses, setup, teardown),
                cmocka_unit_test_setup_teardown(test_save_load_remove, setup, teardown),
                cmocka_unit_test_setup_teardown(test_name_validation, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove_temporaries, setup, teardown),
                cmocka_unit_test_setup_teardown(test_save_gives_to_owner, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove_dir, setup, teardown),
                cmocka_unit_test(test_status_format_exact),
                cmocka_unit_test(test_status_roundtrip),
                cmocka_unit_test(test_status_parse_tolerant),
                cmocka_unit_test(test_status_parse_malformed),
                cmocka_unit_test(test_status_format_refuses),
                cmocka_unit_test_setup_teardown(test_status_save_load, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
