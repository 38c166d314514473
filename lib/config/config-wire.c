/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config-keys.h"
#include "config/config-wire.h"
#include "util/macro.h"

#define WIRE_MAGIC 0x47464346u /* "FCFG" */
#define WIRE_NULL UINT32_MAX   /* the length of a string that is not set */

/* FNV-1a over what decides the wire form: each key's group, name, kind,
 * place in struct Config and bounds, and the struct's size. Another build
 * with the same number of keys but another table gets another value. */
static uint64_t mix(uint64_t h, const void *p, size_t n) {
        const uint8_t *b = p;

        for (size_t i = 0; i < n; i++)
                h = (h ^ b[i]) * 0x100000001b3ULL;
        return h;
}

uint64_t config_wire_layout(void) {
        uint64_t h = 0xcbf29ce484222325ULL, size = sizeof(Config);

        for (size_t i = 0; i < config_n_key_specs; i++) {
                const KeySpec *k = &config_key_specs[i];
                uint64_t v[4] = { (uint64_t) k->kind, (uint64_t) k->offset, k->min, k->max };

                h = mix(h, k->group, strlen(k->group) + 1);
                h = mix(h, k->name, strlen(k->name) + 1);
                h = mix(h, v, sizeof(v));
        }
        return mix(h, &size, sizeof(size));
}

typedef struct Writer {
        FILE *f;
} Writer;

static void put_u32(Writer *w, uint32_t v) {
        (void) fwrite(&v, sizeof(v), 1, w->f);
}

static void put_u64(Writer *w, uint64_t v) {
        (void) fwrite(&v, sizeof(v), 1, w->f);
}

static void put_string(Writer *w, const char *s) {
        size_t n = s ? strlen(s) : 0;

        put_u32(w, s ? (uint32_t) n : WIRE_NULL);
        if (n > 0)
                (void) fwrite(s, n, 1, w->f);
}

static void *field(const Config *c, const KeySpec *k) {
        return (uint8_t *) c + k->offset;
}

int config_to_wire(const Config *c, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        Writer w;

        w.f = open_memstream(&buf, &size);
        if (!w.f)
                return -ENOMEM;
        put_u32(&w, WIRE_MAGIC);
        put_u32(&w, (uint32_t) config_n_key_specs);
        put_u64(&w, config_wire_layout());
        for (size_t i = 0; i < config_n_key_specs; i++) {
                const KeySpec *k = &config_key_specs[i];

                switch (k->kind) {
                case KIND_STRING:
                        put_string(&w, *(char **) field(c, k));
                        break;
                case KIND_UINT:
                case KIND_ENUM_SET:
                        put_u32(&w, *(unsigned *) field(c, k));
                        break;
                case KIND_PERSISTENT:
                case KIND_NV_INDEX:
                        put_u32(&w, *(uint32_t *) field(c, k));
                        break;
                case KIND_ENUM:
                        put_u32(&w, (uint32_t) * (int *) field(c, k));
                        break;
                case KIND_BOOL:
                        put_u32(&w, *(bool *) field(c, k) ? 1 : 0);
                        break;
                }
        }
        put_string(&w, c->path);
        put_u32(&w, (uint32_t) c->n_dropins);
        for (size_t i = 0; i < c->n_dropins; i++) {
                put_string(&w, c->dropins[i].path);
                put_string(&w, c->dropins[i].hash);
        }
        if (ferror(w.f) | fclose(w.f))
                return -ENOMEM;
        if (size > CONFIG_WIRE_MAX)
                return -E2BIG;
        *ret = (uint8_t *) TAKE_PTR(buf);
        *ret_len = size;
        return 0;
}

typedef struct Reader {
        const uint8_t *p;
        size_t left;
        Diag *d;
} Reader;

static int get_u32(Reader *r, const char *what, uint32_t *ret) {
        if (r->left < sizeof(*ret))
                return diag_set(r->d, -EBADMSG, "the configuration ends before %s", what);
        memcpy(ret, r->p, sizeof(*ret));
        r->p += sizeof(*ret);
        r->left -= sizeof(*ret);
        return 0;
}

/* A string of at most max bytes, no NUL in it; NULL if it was not set. */
static int get_string(Reader *r, const char *what, size_t max, char **ret) {
        uint32_t n;
        char *s;
        int e;

        e = get_u32(r, what, &n);
        if (e < 0)
                return e;
        if (n == WIRE_NULL) {
                *ret = NULL;
                return 0;
        }
        if (n > max || n > r->left || memchr(r->p, '\0', n))
                return diag_set(r->d, -EBADMSG,
                                "%s: a string of %u bytes that is too long, cut short or holds a NUL", what,
                                (unsigned) n);
        s = strndup((const char *) r->p, n);
        if (!s)
                return diag_set(r->d, -ENOMEM, "out of memory");
        r->p += n;
        r->left -= n;
        *ret = s;
        return 0;
}

static int take_string(Reader *r, Config *c, const KeySpec *k, const char *name) {
        _cleanup_free_ char *v = NULL, *checked = NULL;
        char **dst = field(c, k);
        const char *why = NULL;
        int e;

        e = get_string(r, name, k->max, &v);
        if (e < 0)
                return e;
        if (!v && k->nonempty)
                return diag_set(r->d, -EBADMSG, "%s is not set", name);
        if (v) {
                e = k->check(v, &checked, &why);
                if (e == -ENOMEM)
                        return diag_set(r->d, e, "out of memory");
                if (e < 0)
                        return diag_set(r->d, -EBADMSG, "%s %s", name, why);
        }
        free(*dst);
        *dst = TAKE_PTR(checked);
        return 0;
}

static int take_number(Reader *r, Config *c, const KeySpec *k, const char *name) {
        uint32_t v;
        bool ok;
        int e;

        e = get_u32(r, name, &v);
        if (e < 0)
                return e;
        switch (k->kind) {
        case KIND_UINT:
                ok = v >= k->min && v <= k->max;
                break;
        case KIND_PERSISTENT:
                ok = v >= PERSISTENT_FIRST && v <= PERSISTENT_LAST;
                break;
        case KIND_NV_INDEX:
                ok = v == 0 || (v >= NV_INDEX_FIRST && v <= NV_INDEX_LAST);
                break;
        case KIND_ENUM:
                ok = v < k->max;
                break;
        case KIND_ENUM_SET:
                ok = v != 0 && k->max < 32 && v < (1u << k->max);
                break;
        case KIND_BOOL:
                ok = v <= 1;
                break;
        default:
                ok = false;
        }
        /* A default may lie outside what a file may set: broker.request_timeout's 0 means "derived". */
        if (k->kind != KIND_BOOL && k->kind != KIND_ENUM && v == *(uint32_t *) field(c, k))
                ok = true;
        if (!ok)
                return diag_set(r->d, -EBADMSG, "%s: the value %u is out of range", name, (unsigned) v);
        switch (k->kind) {
        case KIND_UINT:
        case KIND_ENUM_SET:
                *(unsigned *) field(c, k) = v;
                break;
        case KIND_ENUM:
                *(int *) field(c, k) = (int) v;
                break;
        case KIND_BOOL:
                *(bool *) field(c, k) = v == 1;
                break;
        default:
                *(uint32_t *) field(c, k) = v;
        }
        return 0;
}

static int take_dropins(Reader *r, Config *c) {
        uint32_t n;
        int e;

        e = get_u32(r, "the number of drop-ins", &n);
        if (e < 0)
                return e;
        if (n > CONFIG_DROPINS_MAX)
                return diag_set(r->d, -EBADMSG, "%u drop-ins, more than %d", (unsigned) n, CONFIG_DROPINS_MAX);
        if (n == 0)
                return 0;
        c->dropins = calloc(n, sizeof(ConfigDropin));
        if (!c->dropins)
                return diag_set(r->d, -ENOMEM, "out of memory");
        for (uint32_t i = 0; i < n; i++) {
                _cleanup_free_ char *hash = NULL;

                c->n_dropins = i + 1; /* config_free() frees what was taken */
                e = get_string(r, "a drop-in's path", PATH_MAX, &c->dropins[i].path);
                if (e >= 0)
                        e = get_string(r, "a drop-in's hash", SHA256_TEXT_SIZE - 1, &hash);
                if (e < 0)
                        return e;
                if (!c->dropins[i].path || !hash)
                        return diag_set(r->d, -EBADMSG, "a drop-in without a path or a hash");
                memcpy(c->dropins[i].hash, hash, strlen(hash) + 1);
        }
        return 0;
}

int config_from_wire(const uint8_t *p, size_t len, Config **ret, Diag *d) {
        _cleanup_(config_freep) Config *c = NULL;
        Reader r = { .p = p, .left = len, .d = d };
        uint32_t magic, n, layout[2];
        uint64_t layout_value;
        int e;

        if (len > CONFIG_WIRE_MAX)
                return diag_set(d, -EBADMSG, "a configuration of %zu bytes, more than %u", len,
                                CONFIG_WIRE_MAX);
        e = get_u32(&r, "its magic number", &magic);
        if (e >= 0)
                e = get_u32(&r, "the number of keys", &n);
        if (e >= 0)
                e = get_u32(&r, "the layout", &layout[0]);
        if (e >= 0)
                e = get_u32(&r, "the layout", &layout[1]);
        if (e < 0)
                return e;
        memcpy(&layout_value, layout, sizeof(layout_value));
        if (magic != WIRE_MAGIC || n != config_n_key_specs || layout_value != config_wire_layout())
                return diag_set(d, -EBADMSG,
                                "not a configuration of this build (magic 0x%08x, %u keys where %zu are known, "
                                "layout %016llx where %016llx): the daemon and its worker come from different "
                                "builds, as between an upgrade's unpacking and the daemon's restart",
                                (unsigned) magic, (unsigned) n, config_n_key_specs,
                                (unsigned long long) layout_value, (unsigned long long) config_wire_layout());
        e = config_new_defaults(&c);
        if (e < 0)
                return diag_set(d, e, "out of memory");
        for (size_t i = 0; i < config_n_key_specs; i++) {
                const KeySpec *k = &config_key_specs[i];
                char name[128];

                snprintf(name, sizeof(name), "%s.%s", k->group, k->name);
                e = k->kind == KIND_STRING ? take_string(&r, c, k, name) : take_number(&r, c, k, name);
                if (e < 0)
                        return e;
        }
        free(c->path);
        e = get_string(&r, "the configuration's path", PATH_MAX, &c->path);
        if (e >= 0)
                e = take_dropins(&r, c);
        if (e < 0)
                return e;
        if (r.left != 0)
                return diag_set(d, -EBADMSG, "%zu bytes after the configuration", r.left);
        *ret = TAKE_PTR(c);
        return 0;
}
