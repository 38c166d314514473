/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/state-store.h"
#include "util/fileio.h"

struct StateStore {
        char *path;
        int fd;
};

bool state_store_name_valid(const char *name) {
        return !isempty(name) && name[0] != '.' && !strchr(name, '/') && strlen(name) <= NAME_MAX;
}

static int check_name(StateStore *s, const char *name, Diag *d) {
        if (!s)
                return diag_set(d, -EINVAL, "No state directory open");
        if (!state_store_name_valid(name))
                return diag_set(
                        d, -EINVAL,
                        "Invalid state file name \"%s\": must be a plain file name not starting with '.'",
                        strempty(name));
        return 0;
}

/* Tells apart why open(O_DIRECTORY|O_NOFOLLOW) said ENOTDIR: Linux says so for a symlink too. */
static int diag_not_dir(const char *path, Diag *d) {
        struct stat st;

        if (lstat(path, &st) >= 0 && S_ISLNK(st.st_mode))
                return diag_set(d, -ELOOP,
                                "State directory %s is a symlink; refusing to use it "
                                "(configure the real directory instead)",
                                path);
        return diag_set(d, -ENOTDIR, "State directory %s is not a directory", path);
}

static int state_store_open_internal(const char *dir, bool create, StateStore **ret, Diag *d) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        StateStore *s;
        struct stat st;
        size_t n;

        if (isempty(dir))
                return diag_set(d, -EINVAL, "No state directory given");

        /* A trailing slash would make the kernel follow a symlink at the last component. */
        path = strdup(dir);
        if (!path)
                return -ENOMEM;
        for (n = strlen(path); n > 1 && path[n - 1] == '/'; n--)
                path[n - 1] = '\0';

        if (create && mkdir(path, STATE_DIR_MODE) < 0 && errno != EEXIST) {
                int r = -errno;

                if (r == -ENOENT)
                        return diag_set(
                                d, r,
                                "Could not create state directory %s: its parent directory does not exist",
                                path);
                return diag_set(d, r, "Could not create state directory %s: %s", path, strerror(-r));
        }

        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;

                if (r == -ENOTDIR || r == -ELOOP)
                        return diag_not_dir(path, d);
                if (r == -ENOENT)
                        return diag_set(d, r, "State directory %s does not exist", path);
                return diag_set(d, r, "Could not open state directory %s: %s", path, strerror(-r));
        }

        if (fstat(fd, &st) < 0)
                return diag_set(d, -errno, "Could not stat state directory %s: %s", path, strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return diag_set(d, -ENOTDIR, "State directory %s is not a directory", path);
        if (st.st_mode & (S_IWGRP | S_IWOTH))
                return diag_set(d, -EPERM,
                                "State directory %s has mode %04o, writable by group or others; "
                                "refusing to use it (fix with: chmod go-w %s)",
                                path, (unsigned) (st.st_mode & 07777), path);

        s = malloc(sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (StateStore) {
                .path = TAKE_PTR(path),
                .fd = TAKE_FD(fd),
        };
        *ret = s;
        return 0;
}

int state_store_open(const char *dir, StateStore **ret, Diag *d) {
        return state_store_open_internal(dir, true, ret, d);
}

int state_store_open_existing(const char *dir, StateStore **ret, Diag *d) {
        return state_store_open_internal(dir, false, ret, d);
}

StateStore *state_store_free(StateStore *s) {
        if (!s)
                return NULL;
        closep(&s->fd);
        free(s->path);
        free(s);
        return NULL;
}

const char *state_store_path(StateStore *s) {
        return s ? s->path : NULL;
}

int state_store_save(StateStore *s, const char *name, const void *data, size_t len, mode_t mode, Diag *d) {
        uid_t uid = (uid_t) -1;
        gid_t gid = (gid_t) -1;
        struct stat st;
        int r;

        r = check_name(s, name, d);
        if (r < 0)
                return r;
        /* Written by root (fleetidctl) into a directory of another owner
         * (fleetidd's user): the file is the directory owner's from the
         * moment it has its name, never root's (fleetidd could not read it
         * after a crash before a later chown). Only root may give files away. */
        if (fstat(s->fd, &st) < 0)
                return diag_set(d, -errno, "Could not stat %s: %s", s->path, strerror(errno));
        if (geteuid() == 0 && st.st_uid != 0) {
                uid = st.st_uid;
                gid = st.st_gid;
        }

        r = write_file_atomic_owned_at(s->fd, name, data, len, mode, uid, gid);
        if (r == -ELOOP)
                return diag_set(d, r, "%s/%s is a symlink; refusing to replace it", s->path, name);
        if (r < 0)
                return diag_set(d, r, "Could not write %s/%s: %s; the previous content, if any, is unchanged",
                                s->path, name, strerror(-r));
        return 0;
}

int state_store_load(StateStore *s, const char *name, size_t max, char **ret, size_t *ret_len, Diag *d) {
        int r;

        r = check_name(s, name, d);
        if (r < 0)
                return r;

        r = read_file_bounded_at(s->fd, name, max, ret, ret_len);
        switch (r) {
        case 0:
                return 0;
        case -ENOENT:
                return diag_set(d, r, "%s/%s does not exist", s->path, name);
        case -EFBIG:
                return diag_set(d, r, "%s/%s is larger than %zu bytes; refusing to read it", s->path, name,
                                max);
        case -ELOOP:
                return diag_set(d, r, "%s/%s is a symlink; refusing to follow it", s->path, name);
        case -EISDIR:
        case -EBADFD:
                return diag_set(d, r, "%s/%s is not a regular file", s->path, name);
        default:
                return diag_set(d, r, "Could not read %s/%s: %s", s->path, name, strerror(-r));
        }
}

bool state_store_exists(StateStore *s, const char *name) {
        struct stat st;

        return s && state_store_name_valid(name) && fstatat(s->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

int state_store_stat(StateStore *s, const char *name, struct stat *ret) {
        if (!s || !state_store_name_valid(name))
                return -EINVAL;
        return fstatat(s->fd, name, ret, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

int state_store_remove(StateStore *s, const char *name, Diag *d) {
        int r;

        r = check_name(s, name, d);
        if (r < 0)
                return r;

        if (unlinkat(s->fd, name, 0) < 0) {
                r = -errno;
                if (r == -ENOENT)
                        return 0;
                return diag_set(d, r, "Could not remove %s/%s: %s", s->path, name, strerror(-r));
        }
        /* Make the removal durable, like every write. */
        if (fsync(s->fd) < 0)
                return diag_set(d, -errno, "Could not sync %s after removing %s: %s", s->path, name,
                                strerror(errno));
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir)

/* A listing of the directory on an fd of its own: readdir()'s position is per
 * open file description, and s->fd stays untouched. */
static int open_listing(StateStore *s, DIR **ret, Diag *d) {
        DIR *dir;
        int fd, r;

        fd = openat(s->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return diag_set(d, -errno, "Could not list %s: %s", s->path, strerror(errno));
        dir = fdopendir(fd);
        if (!dir) {
                r = -errno;
                close(fd);
                return diag_set(d, r, "Could not list %s: %s", s->path, strerror(-r));
        }
        *ret = dir;
        return 0;
}

int state_store_remove_dir(StateStore *s, const char *name, Diag *d) {
        _cleanup_(closedirp) DIR *dir = NULL;
        struct dirent *de;
        int fd, r;

        r = check_name(s, name, d);
        if (r < 0)
                return r;
        fd = openat(s->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                if (errno == ENOTDIR || errno == ELOOP) /* a symlink or a file: the name goes */
                        return state_store_remove(s, name, d);
                return diag_set(d, -errno, "Could not open %s/%s: %s", s->path, name, strerror(errno));
        }
        dir = fdopendir(fd);
        if (!dir) {
                r = -errno;
                close(fd);
                return diag_set(d, r, "Could not list %s/%s: %s", s->path, name, strerror(-r));
        }
        while ((errno = 0, de = readdir(dir))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (unlinkat(dirfd(dir), de->d_name, 0) < 0)
                        return diag_set(d, errno == EISDIR ? -EISDIR : -errno, "Could not remove %s/%s/%s: %s",
                                        s->path, name, de->d_name, strerror(errno));
        }
        if (errno != 0)
                return diag_set(d, -errno, "Could not list %s/%s: %s", s->path, name, strerror(errno));
        if (unlinkat(s->fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return diag_set(d, -errno, "Could not remove %s/%s: %s", s->path, name, strerror(errno));
        if (fsync(s->fd) < 0)
                return diag_set(d, -errno, "Could not sync %s after removing %s: %s", s->path, name,
                                strerror(errno));
        return 0;
}

int state_store_lock(StateStore *s, int *ret_fd, Diag *d) {
        int fd;

        fd = openat(s->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return diag_set(d, -errno, "Could not open %s: %s", s->path, strerror(errno));
        while (flock(fd, LOCK_EX) < 0)
                if (errno != EINTR) {
                        int r = -errno;

                        close(fd);
                        return diag_set(d, r, "Could not lock %s: %s", s->path, strerror(-r));
                }
        *ret_fd = fd;
        return 0;
}

int state_store_give_to_owner(StateStore *s, const char *name, Diag *d) {
        struct stat st;
        int r;

        r = check_name(s, name, d);
        if (r < 0)
                return r;
        if (fstat(s->fd, &st) < 0)
                return diag_set(d, -errno, "Could not stat %s: %s", s->path, strerror(errno));
        if (st.st_uid == geteuid())
                return 0;
        if (fchownat(s->fd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                return diag_set(d, -errno, "Could not give %s/%s to the directory's owner: %s", s->path,
                                name, strerror(errno));
        return 0;
}

int state_store_remove_temporaries(StateStore *s, unsigned *ret_removed, Diag *d) {
        _cleanup_(closedirp) DIR *dir = NULL;
        unsigned removed = 0;
        struct dirent *de;
        int r = 0;

        if (ret_removed)
                *ret_removed = 0;
        if (!s)
                return diag_set(d, -EINVAL, "No state directory open");

        r = open_listing(s, &dir, d);
        if (r < 0)
                return r;

        for (;;) {
                struct stat st;

                errno = 0;
                de = readdir(dir);
                if (!de) {
                        if (errno != 0)
                                r = diag_set(d, -errno, "Could not list %s: %s", s->path, strerror(errno));
                        break;
                }
                if (!write_atomic_temp_name(de->d_name))
                        continue;
                if (fstatat(s->fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue; /* gone meanwhile */
                if (!S_ISREG(st.st_mode) || st.st_uid != geteuid())
                        continue;
                /* unlinkat() removes the name itself: no link is followed. */
                if (unlinkat(s->fd, de->d_name, 0) < 0) {
                        if (errno != ENOENT && r == 0)
                                r = diag_set(d, -errno, "Could not remove %s/%s: %s", s->path, de->d_name,
                                             strerror(errno));
                        continue;
                }
                removed++;
        }

        if (removed > 0 && fsync(s->fd) < 0 && r == 0)
                r = diag_set(d, -errno, "Could not sync %s after removing temporary files: %s", s->path,
                             strerror(errno));
        if (ret_removed)
                *ret_removed = removed;
        return r;
}

void state_store_names_free(char **names, unsigned n) {
        if (!names)
                return;
        for (unsigned i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int state_store_list(StateStore *s, unsigned max, char ***ret, unsigned *ret_n, Diag *d) {
        _cleanup_(closedirp) DIR *dir = NULL;
        char **names = NULL;
        unsigned n = 0;
        struct dirent *de;
        int r = 0;

        if (!s)
                return diag_set(d, -EINVAL, "No state directory open");
        r = open_listing(s, &dir, d);
        if (r < 0)
                return r;
        names = calloc((size_t) max + 1, sizeof(char *));
        if (!names)
                return diag_set(d, -ENOMEM, "out of memory");

        for (;;) {
                errno = 0;
                de = readdir(dir);
                if (!de) {
                        if (errno != 0)
                                r = diag_set(d, -errno, "Could not list %s: %s", s->path, strerror(errno));
                        break;
                }
                if (!state_store_name_valid(de->d_name))
                        continue;
                if (n == max) {
                        r = diag_set(d, -E2BIG, "%s holds more than %u files", s->path, max);
                        break;
                }
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = diag_set(d, -ENOMEM, "out of memory");
                        break;
                }
                n++;
        }
        if (r < 0) {
                state_store_names_free(names, n);
                return r;
        }
        qsort(names, n, sizeof(char *), compare_names);
        *ret = names;
        *ret_n = n;
        return 0;
}
