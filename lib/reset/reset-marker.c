/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reset/reset-marker.h"

static const char *const phase_names[_RESET_PHASE_MAX] = {
        [RESET_PHASE_WIPE] = "wipe",
        [RESET_PHASE_ENROLL] = "enroll",
};

const char *reset_phase_to_string(ResetPhase p) {
        return p >= 0 && p < _RESET_PHASE_MAX ? phase_names[p] : NULL;
}

void reset_marker_done(ResetMarker *m) {
        if (!m)
                return;
        free(m->old_serial);
        free(m->old_issuer);
        *m = (ResetMarker) {};
}

/* One line of printable ASCII: anything else becomes '?' (the values are for the log). */
/* The old certificate's serial and issuer are for the log: one line of
 * printable ASCII, cut to RESET_TEXT_MAX bytes ("..." at the end), since a
 * CA's name can run to kilobytes and the marker must stay within
 * RESET_MARKER_MAX, or no reset could be recorded. */
#define RESET_TEXT_MAX 256

static char *one_line_ascii(const char *s) {
        size_t n = strnlen(s, RESET_TEXT_MAX + 1);
        char *t = strndup(s, n > RESET_TEXT_MAX ? RESET_TEXT_MAX : n);

        for (char *p = t; p && *p; p++)
                if (*p < 0x20 || *p > 0x7e)
                        *p = '?';
        if (t && n > RESET_TEXT_MAX)
                memcpy(t + RESET_TEXT_MAX - 3, "...", 3);
        return t;
}

int reset_marker_format(const ResetMarker *m, char **ret, size_t *ret_len) {
        _cleanup_free_ char *serial = NULL, *issuer = NULL;
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        if (m->phase < 0 || m->phase >= _RESET_PHASE_MAX || m->n_keys > RESET_KEYS_MAX)
                return -EINVAL;
        if ((m->old_serial && !(serial = one_line_ascii(m->old_serial))) ||
            (m->old_issuer && !(issuer = one_line_ascii(m->old_issuer))))
                return -ENOMEM;
        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "version=1\nphase=%s\nuid=%u\nrequested=%" PRIu64 "\nenroll=%s\nowner=%s\n",
                reset_phase_to_string(m->phase), (unsigned) m->uid, m->requested, m->enroll ? "yes" : "no",
                m->owner[0] ? m->owner : "none");
        if (serial)
                fprintf(f, "old_serial=%s\n", serial);
        if (issuer)
                fprintf(f, "old_issuer=%s\n", issuer);
        for (unsigned i = 0; i < m->n_keys; i++)
                fprintf(f, "key=%s\n", m->keys[i]);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        if (len > RESET_MARKER_MAX) {
                free(buf);
                return -E2BIG;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

static bool hash_valid(const char *v) {
        if (strncmp(v, "sha256:", 7) != 0 || strlen(v) != 7 + 64)
                return false;
        return v[7 + strspn(v + 7, "0123456789abcdef")] == '\0';
}

static int parse_u64(const char *v, uint64_t *ret) {
        char *end;
        unsigned long long x;

        if (v[0] < '0' || v[0] > '9')
                return -EINVAL;
        errno = 0;
        x = strtoull(v, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *ret = x;
        return 0;
}

static int parse_line(ResetMarker *m, const char *key, const char *v, unsigned *seen) {
        uint64_t x;

        /* One bit per known key that may appear once. */
        static const char *const once[] = { "version", "phase", "uid",        "requested",
                                            "enroll",  "owner", "old_serial", "old_issuer" };
        for (unsigned i = 0; i < ELEMENTSOF(once); i++)
                if (strcmp(key, once[i]) == 0) {
                        if (*seen & (1u << i))
                                return -EEXIST;
                        *seen |= 1u << i;
                }
        if (strcmp(key, "version") == 0)
                return strcmp(v, "1") == 0 ? 0 : -EPROTONOSUPPORT;
        if (strcmp(key, "phase") == 0) {
                for (ResetPhase p = 0; p < _RESET_PHASE_MAX; p++)
                        if (strcmp(v, phase_names[p]) == 0) {
                                m->phase = p;
                                return 0;
                        }
                return -EINVAL;
        }
        if (strcmp(key, "uid") == 0) {
                if (parse_u64(v, &x) < 0 || x > UINT32_MAX)
                        return -EINVAL;
                m->uid = (uid_t) x;
                return 0;
        }
        if (strcmp(key, "requested") == 0)
                return parse_u64(v, &m->requested);
        if (strcmp(key, "enroll") == 0) {
                if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
                        return -EINVAL;
                m->enroll = strcmp(v, "yes") == 0;
                return 0;
        }
        if (strcmp(key, "owner") == 0) {
                if (strcmp(v, "none") == 0) {
                        m->owner[0] = '\0';
                        return 0;
                }
                if (!hash_valid(v))
                        return -EINVAL;
                snprintf(m->owner, sizeof(m->owner), "%s", v);
                return 0;
        }
        if (strcmp(key, "old_serial") == 0 || strcmp(key, "old_issuer") == 0) {
                char **dst = key[4] == 's' ? &m->old_serial : &m->old_issuer;

                *dst = strdup(v);
                return *dst ? 0 : -ENOMEM;
        }
        if (strcmp(key, "key") == 0) {
                if (m->n_keys >= RESET_KEYS_MAX)
                        return -E2BIG;
                if (!hash_valid(v))
                        return -EINVAL;
                snprintf(m->keys[m->n_keys++], RESET_HASH_SIZE, "%s", v);
                return 0;
        }
        return 0; /* an unknown key: a newer fleetid's; ignored */
}

int reset_marker_parse(const char *text, size_t len, ResetMarker *ret, Diag *d) {
        _cleanup_free_ char *copy = NULL;
        ResetMarker m = { .phase = _RESET_PHASE_INVALID };
        unsigned seen = 0, line = 0;
        char *p, *nl;
        int r = 0;

        if (len > RESET_MARKER_MAX || memchr(text, '\0', len))
                return diag_set(d, -EBADMSG, "the factory reset marker is too long or holds a NUL byte");
        /* Not strndup(): text need not end with a NUL. */
        copy = malloc(len + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, text, len);
        copy[len] = '\0';
        for (p = copy; *p; p = nl ? nl + 1 : p + strlen(p)) {
                char *eq;

                nl = strchr(p, '\n');
                if (nl)
                        *nl = '\0';
                line++;
                if (!*p)
                        continue;
                eq = strchr(p, '=');
                if (!eq) {
                        r = -EBADMSG;
                        break;
                }
                *eq = '\0';
                r = parse_line(&m, p, eq + 1, &seen);
                if (r < 0)
                        break;
                if (!nl)
                        break;
        }
        if (r == -ENOMEM) {
                reset_marker_done(&m);
                return r;
        }
        if (r < 0) {
                reset_marker_done(&m);
                return diag_set(d, -EBADMSG, "the factory reset marker is damaged at line %u", line);
        }
        if (m.phase == _RESET_PHASE_INVALID || !(seen & 1u)) {
                reset_marker_done(&m);
                return diag_set(d, -EBADMSG, "the factory reset marker has no version or phase");
        }
        *ret = m;
        return 0;
}

int reset_marker_load(StateStore *s, ResetMarker *ret, Diag *d) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        r = state_store_load(s, RESET_MARKER, RESET_MARKER_MAX, &text, &len, d);
        if (r < 0)
                return r;
        r = reset_marker_parse(text, len, ret, d);
        if (r < 0)
                return diag_prefix(d, r, "%s/%s", state_store_path(s), RESET_MARKER);
        return 0;
}

int reset_marker_save(StateStore *s, const ResetMarker *m, Diag *d) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        r = reset_marker_format(m, &text, &len);
        if (r < 0)
                return diag_set(d, r, "cannot write the factory reset marker: %s", strerror(-r));
        r = state_store_save(s, RESET_MARKER, text, len, STATE_FILE_MODE, d);
        if (r < 0)
                return r;
        return state_store_give_to_owner(s, RESET_MARKER, d);
}

bool reset_marker_has_key(const ResetMarker *m, const char *spki_hash) {
        for (unsigned i = 0; i < m->n_keys; i++)
                if (strcmp(m->keys[i], spki_hash) == 0)
                        return true;
        return false;
}

bool reset_marker_same_asking(const ResetMarker *a, const ResetMarker *b) {
        return a->uid == b->uid && a->requested == b->requested && a->enroll == b->enroll &&
               streq_ptr(a->owner, b->owner);
}

bool reset_marker_same_request(const ResetMarker *a, const ResetMarker *b) {
        return a->phase == b->phase && reset_marker_same_asking(a, b);
}
