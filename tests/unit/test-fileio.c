/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-fileio.c: bounded reads and atomic replacement, against real files in a
 * temporary directory under /tmp.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf() */
#endif
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/resource.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "test-tmpdir.h"

#include "util/fileio.h"
#include "util/macro.h"

typedef struct Fixture {
        char dir[64];
        int dfd;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        assert_non_null(test_tmpdir_new(f->dir, sizeof(f->dir), "fileio"));
        f->dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->dfd >= 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        close(f->dfd);
        chmod(f->dir, 0700);
        assert_int_equal(test_tmpdir_remove(f->dir), 0);
        free(f);
        return 0;
}

/* Number of entries in the fixture directory, "." and ".." excluded. */
static unsigned count_entries(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        unsigned n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

static void assert_file(int dfd, const char *name, const char *content, mode_t mode) {
        _cleanup_free_ char *data = NULL;
        struct stat st;
        size_t len;

        assert_int_equal(read_file_bounded_at(dfd, name, 1 << 20, &data, &len), 0);
        assert_int_equal(len, strlen(content));
        assert_string_equal(data, content);
        assert_int_equal(fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, mode);
}

static void test_write_creates_and_replaces(void **state) {
        Fixture *f = *state;
        struct stat before, after;
        mode_t old_umask;

        /* The mode is exact, whatever the umask says. */
        old_umask = umask(0077);
        assert_int_equal(write_file_atomic_at(f->dfd, "a", "first\n", 6, 0644), 0);
        umask(old_umask);
        assert_file(f->dfd, "a", "first\n", 0644);
        assert_int_equal(fstatat(f->dfd, "a", &before, 0), 0);

        assert_int_equal(write_file_atomic_at(f->dfd, "a", "second, longer\n", 15, 0600), 0);
        assert_file(f->dfd, "a", "second, longer\n", 0600);
        assert_int_equal(fstatat(f->dfd, "a", &after, 0), 0);
        /* Replaced by rename, not rewritten in place. */
        assert_true(before.st_ino != after.st_ino);

        /* Shrinking to nothing works too. */
        assert_int_equal(write_file_atomic_at(f->dfd, "a", NULL, 0, 0640), 0);
        assert_file(f->dfd, "a", "", 0640);

        /* No temp file is left behind after success. */
        assert_int_equal(count_entries(f->dir), 1);
}

static void test_write_path_forms(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *abs = NULL;

        assert_int_equal(mkdirat(f->dfd, "sub", 0700), 0);
        assert_int_equal(write_file_atomic_at(f->dfd, "sub/x", "in sub", 6, 0600), 0);
        assert_file(f->dfd, "sub/x", "in sub", 0600);

        assert_true(asprintf(&abs, "%s/sub/y", f->dir) > 0);
        assert_int_equal(write_file_atomic(abs, "abs", 3, 0640), 0);
        assert_file(f->dfd, "sub/y", "abs", 0640);

        assert_int_equal(write_file_atomic_at(f->dfd, "", "x", 1, 0600), -EINVAL);
        assert_int_equal(write_file_atomic_at(f->dfd, NULL, "x", 1, 0600), -EINVAL);
        assert_int_equal(write_file_atomic_at(f->dfd, "sub/", "x", 1, 0600), -EINVAL);
        assert_int_equal(write_file_atomic_at(f->dfd, "sub/..", "x", 1, 0600), -EINVAL);
        assert_int_equal(write_file_atomic_at(f->dfd, ".", "x", 1, 0600), -EINVAL);
        assert_int_equal(write_file_atomic_at(f->dfd, "y", NULL, 1, 0600), -EINVAL);
        assert_int_equal(write_file_atomic_at(f->dfd, "missing/y", "x", 1, 0600), -ENOENT);
        assert_int_equal(count_entries(f->dir), 1);
}

static void test_write_refuses_symlink(void **state) {
        Fixture *f = *state;
        char target[128];
        ssize_t n;

        assert_int_equal(write_file_atomic_at(f->dfd, "target", "precious", 8, 0600), 0);
        assert_int_equal(symlinkat("target", f->dfd, "link"), 0);

        assert_int_equal(write_file_atomic_at(f->dfd, "link", "evil", 4, 0644), -ELOOP);
        assert_file(f->dfd, "target", "precious", 0600);
        n = readlinkat(f->dfd, "link", target, sizeof(target));
        assert_int_equal(n, 6);
        assert_memory_equal(target, "target", 6);

        /* A dangling symlink must not lead to a file being created elsewhere. */
        assert_int_equal(symlinkat("nowhere", f->dfd, "dangling"), 0);
        assert_int_equal(write_file_atomic_at(f->dfd, "dangling", "evil", 4, 0644), -ELOOP);
        assert_int_equal(faccessat(f->dfd, "nowhere", F_OK, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(errno, ENOENT);
        assert_int_equal(count_entries(f->dir), 3);
}

static void test_write_failure_after_temp_cleans_up(void **state) {
        Fixture *f = *state;

        /* rename() of a file over a directory fails only after the temp file has
         * been written, linked and synced: it must disappear again. */
        assert_int_equal(mkdirat(f->dfd, "isdir", 0700), 0);
        assert_int_equal(write_file_atomic_at(f->dfd, "isdir", "data", 4, 0600), -EISDIR);
        assert_int_equal(count_entries(f->dir), 1);
}

static void test_write_failure_mid_write_keeps_old(void **state) {
        Fixture *f = *state;
        struct rlimit saved, small;
        struct sigaction ign = { .sa_handler = SIG_IGN }, old_sa;
        char big[4096];
        int r;

        assert_int_equal(write_file_atomic_at(f->dfd, "f", "old", 3, 0640), 0);

        /* Exceeding RLIMIT_FSIZE makes write() fail with EFBIG halfway through. */
        memset(big, 'x', sizeof(big));
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
        small = saved;
        small.rlim_cur = 100;
        assert_int_equal(sigaction(SIGXFSZ, &ign, &old_sa), 0);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
        r = write_file_atomic_at(f->dfd, "f", big, sizeof(big), 0600);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
        assert_int_equal(sigaction(SIGXFSZ, &old_sa, NULL), 0);

        assert_int_equal(r, -EFBIG);
        assert_file(f->dfd, "f", "old", 0640);
        assert_int_equal(count_entries(f->dir), 1);
}

/* Runs write_file_atomic_at(dfd, name) where the directory is not writable for
 * the caller; as root, in a child that gave up root for "nobody" first. */
static int write_unprivileged(int dfd, const char *name, const char *data) {
        int status;
        pid_t pid;

        if (geteuid() != 0)
                return write_file_atomic_at(dfd, name, data, strlen(data), 0640);

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int r;

                if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(100);
                r = write_file_atomic_at(dfd, name, data, strlen(data), 0640);
                _exit(r < 0 && -r < 100 ? -r : 101);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        return -WEXITSTATUS(status);
}

static void test_write_readonly_dir(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *ro = NULL;

        assert_int_equal(mkdirat(f->dfd, "ro", 0700), 0);
        assert_int_equal(write_file_atomic_at(f->dfd, "ro/f", "old", 3, 0640), 0);
        assert_int_equal(fchmodat(f->dfd, "ro", 0555, 0), 0);

        assert_int_equal(write_unprivileged(f->dfd, "ro/f", "new"), -EACCES);

        assert_int_equal(fchmodat(f->dfd, "ro", 0700, 0), 0);
        assert_file(f->dfd, "ro/f", "old", 0640);
        assert_true(asprintf(&ro, "%s/ro", f->dir) > 0);
        assert_int_equal(count_entries(ro), 1);
}

static void test_read_bounded(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *path = NULL, *big = NULL;
        char *data = (char *) 0x1, *sentinel = (char *) 0x1;
        size_t len = 77;

        assert_int_equal(write_file_atomic_at(f->dfd, "ten", "0123456789", 10, 0600), 0);

        /* Exactly max is fine, one more is refused and leaves *ret alone. */
        assert_int_equal(read_file_bounded_at(f->dfd, "ten", 10, &data, &len), 0);
        assert_int_equal(len, 10);
        assert_string_equal(data, "0123456789");
        free(data);
        data = sentinel;
        assert_int_equal(read_file_bounded_at(f->dfd, "ten", 9, &data, &len), -EFBIG);
        assert_ptr_equal(data, sentinel);
        assert_int_equal(read_file_bounded_at(f->dfd, "ten", 0, &data, &len), -EFBIG);

        /* ret_len is optional. */
        assert_int_equal(read_file_bounded_at(f->dfd, "ten", 100, &data, NULL), 0);
        assert_string_equal(data, "0123456789");
        free(data);

        /* Empty file. */
        assert_int_equal(write_file_atomic_at(f->dfd, "empty", "", 0, 0600), 0);
        assert_int_equal(read_file_bounded_at(f->dfd, "empty", 0, &data, &len), 0);
        assert_int_equal(len, 0);
        assert_string_equal(data, "");
        free(data);

        /* A file larger than the initial buffer, through the path variant. */
        big = malloc(100000);
        assert_non_null(big);
        for (size_t i = 0; i < 100000; i++)
                big[i] = (char) ('a' + i % 26);
        assert_int_equal(write_file_atomic_at(f->dfd, "big", big, 100000, 0600), 0);
        assert_true(asprintf(&path, "%s/big", f->dir) > 0);
        assert_int_equal(read_file_bounded(path, 100000, &data, &len), 0);
        assert_int_equal(len, 100000);
        assert_memory_equal(data, big, 100000);
        assert_int_equal(data[100000], '\0');
        free(data);
        assert_int_equal(read_file_bounded(path, 99999, &data, &len), -EFBIG);

        assert_int_equal(read_file_bounded_at(f->dfd, "absent", 10, &data, &len), -ENOENT);
}

static void test_read_size_unknown(void **state) {
        _cleanup_free_ char *data = NULL;
        size_t len;

        /* /proc files claim size 0: the bound must hold while reading, not via stat. */
        assert_int_equal(read_file_bounded("/proc/self/status", 16, &data, &len), -EFBIG);
        assert_int_equal(read_file_bounded("/proc/self/status", 1 << 20, &data, &len), 0);
        assert_true(len > 16);
        assert_int_equal(strlen(data), len);
        assert_non_null(strstr(data, "Name:"));
}

static void test_read_refuses_special(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *path = NULL;
        char *data = NULL;
        size_t len;

        assert_int_equal(write_file_atomic_at(f->dfd, "real", "content", 7, 0600), 0);
        assert_int_equal(symlinkat("real", f->dfd, "link"), 0);

        /* The _at variant refuses the symlink, the path variant follows it. */
        assert_int_equal(read_file_bounded_at(f->dfd, "link", 100, &data, &len), -ELOOP);
        assert_true(asprintf(&path, "%s/link", f->dir) > 0);
        assert_int_equal(read_file_bounded(path, 100, &data, &len), 0);
        assert_string_equal(data, "content");
        free(data);

        assert_int_equal(mkdirat(f->dfd, "d", 0700), 0);
        assert_int_equal(read_file_bounded_at(f->dfd, "d", 100, &data, &len), -EISDIR);

        /* Must neither block on open() nor read from a FIFO. */
        assert_int_equal(mkfifoat(f->dfd, "fifo", 0600), 0);
        assert_int_equal(read_file_bounded_at(f->dfd, "fifo", 100, &data, &len), -EBADFD);

        assert_int_equal(read_file_bounded("/dev/null", 100, &data, &len), -EBADFD);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_write_creates_and_replaces, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_path_forms, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_refuses_symlink, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_failure_after_temp_cleans_up, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_failure_mid_write_keeps_old, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_readonly_dir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_bounded, setup, teardown),
                cmocka_unit_test(test_read_size_unknown),
                cmocka_unit_test_setup_teardown(test_read_refuses_special, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
