/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * state-store.h: the daemon's state directory (default /var/lib/fleetid).
 *
 * One directory, held open by an O_DIRECTORY fd, with a few well-known plain
 * files in it. Every write is atomic (see util/fileio.h), every read bounded,
 * and no file name ever reaches outside the directory or follows a symlink.
 * docs/state-directory.md describes the files, their modes and the protocol.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util/diag.h"

typedef struct StateStore StateStore;

/* Opens (creating with 0750 if missing, parents must exist) the directory. Refuses a
 * symlink (-ELOOP), a non-directory (-ENOTDIR), or a directory writable by
 * group/other (-EPERM, Diag says which path and which mode). Keeps an O_DIRECTORY fd. */
int state_store_open(const char *dir, StateStore **ret, Diag *d);

/* Same checks, but never creates: -ENOENT if the directory is missing. For readers
 * such as fleetidctl, which must not leave traces behind. */
int state_store_open_existing(const char *dir, StateStore **ret, Diag *d);

StateStore *state_store_free(StateStore *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(StateStore *, state_store_free);

/* Atomically replaces name with data, file mode mode. Written by root into a
 * directory of another owner, the file is that owner's before it takes its
 * name. */
int state_store_save(StateStore *s, const char *name, const void *data, size_t len, mode_t mode, Diag *d);

/* Reads name whole, NUL-terminated, at most max bytes (-EFBIG beyond).
 * -ENOENT if absent (the Diag is filled then too). */
int state_store_load(StateStore *s, const char *name, size_t max, char **ret, size_t *ret_len, Diag *d);

/* Whether name exists (as anything: a file that cannot be read exists too). */
bool state_store_exists(StateStore *s, const char *name);

/* lstat() of name (never following a symlink): which file it is now, so that
 * a reader can tell whether it changed (every write replaces the file, so a
 * new inode). -errno, -ENOENT if absent. */
int state_store_stat(StateStore *s, const char *name, struct stat *ret);

/* Removes name; succeeds if it is absent already. */
int state_store_remove(StateStore *s, const char *name, Diag *d);

/* Removes the subdirectory name with the files in it, one level: a
 * directory below it fails the call (-EISDIR; files listed before it are
 * gone, the rest stays). Succeeds if name is absent already. A symlink at
 * name is removed, never followed. */
int state_store_remove_dir(StateStore *s, const char *name, Diag *d);

/* Waits for, and takes, an exclusive lock of the directory (flock on a
 * descriptor of its own, so that a forked child's lock ends with the child):
 * *ret_fd holds it until closed. For steps that two processes must not run
 * at once (a factory reset's wipe by fleetidctl and by fleetidd). */
int state_store_lock(StateStore *s, int *ret_fd, Diag *d);

/* Gives name to the directory's owner and group, when the caller (root) is
 * not that owner: a file root writes for the daemon stays readable by it. */
int state_store_give_to_owner(StateStore *s, const char *name, Diag *d);

/* Removes the temporary files of the write protocol (".#name.XXXXXX", see
 * util/fileio.h) that an interrupted write left in the directory: only regular
 * files owned by the effective user, never following a symlink; anything else
 * with such a name stays. Only for the directory's single writer, at its start:
 * another process's write in progress would lose its temporary file.
 * *ret_removed (may be NULL) counts the files removed, also on failure. */
int state_store_remove_temporaries(StateStore *s, unsigned *ret_removed, Diag *d);

/* The names of the files in the directory that state_store_name_valid()
 * accepts (temporary files and other dot files are left out), sorted, as a
 * malloc()ed array of *ret_n malloc()ed strings (free with
 * state_store_names_free()). Entries of any type are listed: the reader of
 * each refuses what is not a regular file. -E2BIG if there are more than max. */
int state_store_list(StateStore *s, unsigned max, char ***ret, unsigned *ret_n, Diag *d);
void state_store_names_free(char **names, unsigned n);

/* The directory path as given to state_store_open(). */
const char *state_store_path(StateStore *s);

/* Names must be plain file names: non-empty, at most NAME_MAX bytes, no '/', not
 * starting with '.' (which also excludes "." and ".." and the ".#name.XXXXXX" temp
 * files). The functions above return -EINVAL for anything else. */
bool state_store_name_valid(const char *name);

/* Well-known names */
#define STATE_OPERATIONAL_CERT "operational.pem"    /* LDevID leaf + chain, PEM, 0640 */
#define STATE_BIRTH_CERT "birth.pem"                /* copy of the IDevID cert (+chain), PEM, 0640 */
#define STATE_TRUST_ANCHORS "est-trust-anchors.pem" /* the EST CA certs fleetid trusts, 0640 */
#define STATE_STATUS "status"                       /* status-file, 0640 */
#define STATE_DAEMON_PID "fleetidd.pid"             /* the running daemon, for fleetidctl renew, 0640 */
#define STATE_TPM_FINGERPRINT "tpm-fingerprint"     /* the TPM enrolled with: SRK and EK names, 0640 */
#define STATE_TRUST_GENERATION "trust-generation"   /* D-Bus TrustGeneration, decimal, 0640 */
#define STATE_KEYS_CREATED "operational-keys"       /* hashes of the operational keys fleetid made, 0640 */

#define STATE_DIR_MODE 0750
#define STATE_FILE_MODE 0640
