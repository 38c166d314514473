/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fileio.h: bounded whole-file reads and crash-safe atomic file replacement.
 *
 * Readers never trust a file's size: they refuse anything larger than the bound
 * the caller gives. Writers never leave a half-written file behind: the content
 * goes to a temporary file in the same directory, is fsync()ed, and is renamed
 * over the target, then the directory itself is fsync()ed. A reader therefore
 * sees either the old content or the new one, before and after a power cut.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Reads a whole regular file, refusing more than max bytes (-EFBIG), NUL-terminated.
 * Follows symlinks. -EISDIR for a directory, -EBADFD for any other non-regular
 * file (FIFO, device, socket). *ret_len (may be NULL) excludes the NUL. */
int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_len);

/* Same for a file already open (read from its current offset to the end). */
int read_fd_bounded(int fd, size_t max, char **ret, size_t *ret_len);

/* The text for an error of the readers above: "not a regular file" for
 * -EBADFD (a FIFO, device or socket), "is a directory" for -EISDIR, else
 * strerror(). */
const char *read_file_strerror(int r);

/* Same for a file relative to a directory fd (AT_FDCWD allowed), O_NOFOLLOW:
 * a symlink at the last component gives -ELOOP. */
int read_file_bounded_at(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len);

/* Atomic replace of dirfd/name: create a temp file in the same dir (O_TMPFILE+linkat if
 * available, else a name ".#name.XXXXXX" opened with O_CLOEXEC|O_EXCL), fchmod to
 * mode, write all, fsync, rename over name, fsync the directory. On any failure the temp
 * is unlinked and the old file is untouched. Never follows a symlink at name: an
 * existing symlink there is refused with -ELOOP. name may contain '/'; the directory
 * part is then resolved relative to dirfd. */
int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/* The same, the file given to uid:gid (-1: unchanged) before it is renamed
 * into place. */
int write_file_atomic_owned_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                               uid_t uid, gid_t gid);
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Whether name (a file name, no directory) has the form of the temporary files
 * write_file_atomic*() creates: ".#<name>.XXXXXX", X from [a-zA-Z0-9]. Only a
 * crash between creating and renaming one leaves it behind. */
bool write_atomic_temp_name(const char *name);
