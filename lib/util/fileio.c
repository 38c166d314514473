/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* O_TMPFILE, AT_EMPTY_PATH, asprintf() */
#endif
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "util/fileio.h"
#include "util/macro.h"

/* Temp names are ".#<name>.<6 random chars>"; the name part is cut to fit NAME_MAX. */
#define TEMP_PREFIX ".#"
#define TEMP_RANDOM_CHARS 6
#define TEMP_ATTEMPTS 64

/* Buffers may hold secrets (password files): wipe before giving memory back. */
static void wipe_free(char *p, size_t n) {
        if (!p)
                return;
        explicit_bzero(p, n);
        free(p);
}

int read_fd_bounded(int fd, size_t max, char **ret, size_t *ret_len) {
        struct stat st;
        size_t cap, n = 0;
        char *buf;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;

        /* Leave room so that max + 1 bytes can be read and recognised as too many. */
        if (max > SIZE_MAX / 4)
                max = SIZE_MAX / 4;
        if (st.st_size > 0 && (uintmax_t) st.st_size > max)
                return -EFBIG;

        /* st_size is a hint only (files in /proc say 0, files may grow meanwhile);
         * cap is the number of data bytes that fit, always at least 1. */
        cap = st.st_size > 0 ? (size_t) st.st_size + 1 : (max + 1 < 4096 ? max + 1 : 4096);
        buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                ssize_t k;

                if (n == cap) {
                        size_t ncap;
                        char *nbuf;

                        if (n > max) {
                                wipe_free(buf, cap + 1);
                                return -EFBIG;
                        }
                        ncap = cap * 2 < max + 1 ? cap * 2 : max + 1;
                        nbuf = malloc(ncap + 1);
                        if (!nbuf) {
                                wipe_free(buf, cap + 1);
                                return -ENOMEM;
                        }
                        memcpy(nbuf, buf, n);
                        wipe_free(buf, cap + 1);
                        buf = nbuf;
                        cap = ncap;
                }

                k = read(fd, buf + n, cap - n);
                if (k < 0) {
                        int r = -errno;

                        if (r == -EINTR)
                                continue;
                        wipe_free(buf, cap + 1);
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }

        if (n > max) {
                wipe_free(buf, cap + 1);
                return -EFBIG;
        }

        buf[n] = '\0';
        *ret = buf;
        if (ret_len)
                *ret_len = n;
        return 0;
}

static int read_file_bounded_flags(int dirfd, const char *name, int flags, size_t max, char **ret,
                                   size_t *ret_len) {
        _cleanup_close_ int fd = -1;

        if (isempty(name) || !ret)
                return -EINVAL;

        /* O_NONBLOCK so that a FIFO planted at the path cannot block us; it is
         * refused by read_fd_bounded() and changes nothing for regular files. */
        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | flags);
        if (fd < 0)
                return -errno;

        return read_fd_bounded(fd, max, ret, ret_len);
}

int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_len) {
        return read_file_bounded_flags(AT_FDCWD, path, 0, max, ret, ret_len);
}

int read_file_bounded_at(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len) {
        return read_file_bounded_flags(dirfd, name, O_NOFOLLOW, max, ret, ret_len);
}

const char *read_file_strerror(int r) {
        switch (r) {
        case -EBADFD:
                return "not a regular file (a FIFO, device or socket)";
        case -EISDIR:
                return "is a directory, not a regular file";
        default:
                return strerror(-r);
        }
}

static int write_all(int fd, const void *data, size_t len) {
        const char *p = data;

        while (len > 0) {
                ssize_t k = write(fd, p, len);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                p += k;
                len -= (size_t) k;
        }
        return 0;
}

/* Gives the temp file its final mode and content, durably. */
static int fill_temp(int fd, const void *data, size_t len, mode_t mode) {
        int r;

        if (fchmod(fd, mode & 07777) < 0)
                return -errno;
        r = write_all(fd, data, len);
        if (r < 0)
                return r;
        if (fsync(fd) < 0)
                return -errno;
        return 0;
}

static void random_chars(char *out, size_t n) {
        static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        static unsigned counter;
        unsigned char rnd[TEMP_RANDOM_CHARS];
        size_t i;

        /* Uniqueness is enforced by O_EXCL/linkat's EEXIST; randomness only keeps
         * retries rare. Never block on the entropy pool for that at early boot. */
        if (n > sizeof(rnd))
                n = sizeof(rnd);
        if (getrandom(rnd, n, GRND_NONBLOCK) != (ssize_t) n) {
                struct timespec ts;
                uint64_t x;

                clock_gettime(CLOCK_MONOTONIC, &ts);
                x = (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 30) ^ ((uint64_t) getpid() << 16) ^
                    (uint64_t) ++counter * 0x9E3779B97F4A7C15ull;
                for (i = 0; i < n; i++, x >>= 8)
                        rnd[i] = (unsigned char) x;
        }
        for (i = 0; i < n; i++)
                out[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
}

static int temp_name(const char *base, char **ret) {
        size_t room = NAME_MAX - strlen(TEMP_PREFIX) - 1 - TEMP_RANDOM_CHARS;
        size_t blen = strlen(base);
        char *t;

        if (blen > room)
                blen = room;
        if (asprintf(&t, TEMP_PREFIX "%.*s.XXXXXX", (int) blen, base) < 0)
                return -ENOMEM;
        random_chars(t + strlen(t) - TEMP_RANDOM_CHARS, TEMP_RANDOM_CHARS);
        *ret = t;
        return 0;
}

bool write_atomic_temp_name(const char *name) {
        static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        size_t n, prefix = strlen(TEMP_PREFIX);

        /* TEMP_PREFIX, at least one byte of the target's name, '.', the random part. */
        if (!name || strncmp(name, TEMP_PREFIX, prefix) != 0)
                return false;
        n = strlen(name);
        if (n < prefix + 1 + 1 + TEMP_RANDOM_CHARS || n > NAME_MAX)
                return false;
        if (name[n - TEMP_RANDOM_CHARS - 1] != '.')
                return false;
        return strspn(name + n - TEMP_RANDOM_CHARS, alphabet) == TEMP_RANDOM_CHARS;
}

/* Gives the anonymous O_TMPFILE fd a temporary name in dfd, returned in *ret_name.
 * -EOPNOTSUPP if neither /proc nor CAP_DAC_READ_SEARCH is available for that. */
static int link_tmpfile(int fd, int dfd, const char *base, char **ret_name) {
        char proc[sizeof("/proc/self/fd/") + 3 * sizeof(int)];

        snprintf(proc, sizeof(proc), "/proc/self/fd/%i", fd);

        for (int i = 0; i < TEMP_ATTEMPTS; i++) {
                _cleanup_free_ char *t = NULL;
                int r;

                r = temp_name(base, &t);
                if (r < 0)
                        return r;

                /* linkat() cannot replace, hence a temp name and a rename() after. */
                if (linkat(AT_FDCWD, proc, dfd, t, AT_SYMLINK_FOLLOW) >= 0) {
                        *ret_name = TAKE_PTR(t);
                        return 0;
                }
                if (errno == ENOENT) {
                        /* No /proc: AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH. */
                        if (linkat(fd, "", dfd, t, AT_EMPTY_PATH) >= 0) {
                                *ret_name = TAKE_PTR(t);
                                return 0;
                        }
                        if (errno == ENOENT || errno == EPERM)
                                return -EOPNOTSUPP;
                }
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

/* Writes into an anonymous O_TMPFILE and links it under a temp name.
 * -EOPNOTSUPP means "not possible here, use a named temp file instead". */
static int write_via_tmpfile(int dfd, const char *base, const void *data, size_t len, mode_t mode,
                             char **ret_name) {
        _cleanup_close_ int fd = -1;
        int r;

        fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0) {
                /* EISDIR: kernel without O_TMPFILE; EOPNOTSUPP: file system without it. */
                if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
                        return -EOPNOTSUPP;
                return -errno;
        }

        r = fill_temp(fd, data, len, mode);
        if (r < 0)
                return r; /* close() discards the anonymous file */

        /* On -EOPNOTSUPP the content is written in vain, but redoing it through a
         * named temp file is the simplest correct fallback for that rare setup. */
        return link_tmpfile(fd, dfd, base, ret_name);
}

static int write_via_named_temp(int dfd, const char *base, const void *data, size_t len, mode_t mode,
                                char **ret_name) {
        _cleanup_free_ char *t = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        for (int i = 0;; i++) {
                free(t);
                t = NULL;
                r = temp_name(base, &t);
                if (r < 0)
                        return r;
                fd = openat(dfd, t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
                if (fd >= 0)
                        break;
                if (errno != EEXIST || i + 1 >= TEMP_ATTEMPTS)
                        return -errno;
        }

        r = fill_temp(fd, data, len, mode);
        if (r < 0) {
                (void) unlinkat(dfd, t, 0);
                return r;
        }
        *ret_name = TAKE_PTR(t);
        return 0;
}

static int write_atomic_in_dir(int dfd, const char *base, const void *data, size_t len, mode_t mode,
                               uid_t uid, gid_t gid) {
        _cleanup_free_ char *t = NULL;
        struct stat st;
        int r;

        /* rename() would replace a symlink rather than follow it, but a symlink
         * where we keep a file means someone else has been here: refuse. */
        if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                if (S_ISLNK(st.st_mode))
                        return -ELOOP;
        } else if (errno != ENOENT)
                return -errno;

        r = write_via_tmpfile(dfd, base, data, len, mode, &t);
        if (r == -EOPNOTSUPP)
                r = write_via_named_temp(dfd, base, data, len, mode, &t);
        if (r < 0)
                return r;
        /* Its owner before it takes the name: a crash between the two must not
         * leave the name with an owner its reader cannot read. */
        if ((uid != (uid_t) -1 || gid != (gid_t) -1) && fchownat(dfd, t, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
                r = -errno;
                (void) unlinkat(dfd, t, 0);
                return r;
        }

        if (renameat(dfd, t, dfd, base) < 0) {
                r = -errno;
                (void) unlinkat(dfd, t, 0);
                return r;
        }

        /* The rename itself must reach the disk, or a crash could bring back the
         * old name (or neither). The new content is in place already if this fails. */
        if (fsync(dfd) < 0)
                return -errno;
        return 0;
}

int write_file_atomic_owned_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                               uid_t uid, gid_t gid) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int dfd = -1;
        const char *slash, *base;

        if (isempty(name) || (!data && len > 0))
                return -EINVAL;

        slash = strrchr(name, '/');
        if (slash) {
                base = slash + 1;
                dir = slash == name ? strdup("/") : strndup(name, (size_t) (slash - name));
                if (!dir)
                        return -ENOMEM;
        } else
                base = name;

        if (isempty(base) || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
                return -EINVAL;

        /* Our own fd even without a directory part: it is needed for fsync(),
         * and AT_FDCWD cannot be fsync()ed. */
        dfd = openat(dirfd, dir ?: ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;

        return write_atomic_in_dir(dfd, base, data, len, mode, uid, gid);
}

int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode) {
        return write_file_atomic_owned_at(dirfd, name, data, len, mode, (uid_t) -1, (gid_t) -1);
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        return write_file_atomic_at(AT_FDCWD, path, data, len, mode);
}
