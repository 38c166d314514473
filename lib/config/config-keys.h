/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config-keys.h: the table of fleetid.conf's keys (config.c), shared inside
 * lib/config/ by what walks every key: the loader (config.c) and the wire
 * form a worker process receives its configuration in (config-wire.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PERSISTENT_FIRST 0x81000000u
#define PERSISTENT_LAST 0x81FFFFFFu
#define NV_INDEX_FIRST 0x01000000u
#define NV_INDEX_LAST 0x01FFFFFFu

/* 0 and a malloc'd (possibly normalized) value, or -EINVAL and the reason. */
typedef int (*StringCheck)(const char *v, char **ret, const char **ret_why);

typedef enum ValueKind {
        KIND_STRING,     /* char *, checked by .check; "" stores NULL unless .nonempty */
        KIND_UINT,       /* unsigned, .min .. .max */
        KIND_PERSISTENT, /* uint32_t persistent handle */
        KIND_NV_INDEX,   /* uint32_t NV index, 0 = none */
        KIND_ENUM,       /* an int-sized enum; the value is the index of the string in .names */
        KIND_BOOL,       /* bool */
        KIND_ENUM_SET,   /* unsigned bit mask: a list of strings from .names, one bit per index */
} ValueKind;

typedef struct KeySpec {
        const char *group;
        const char *name;
        ValueKind kind;
        size_t offset;
        uint32_t min, max;        /* KIND_UINT: bounds; KIND_STRING: max is the length bound */
        bool nonempty;            /* KIND_STRING: "" is an error rather than "unset" */
        StringCheck check;        /* KIND_STRING */
        const char *const *names; /* KIND_ENUM, KIND_ENUM_SET: .max names */
} KeySpec;

/* Every key, in a fixed order (the loader's enum). */
extern const KeySpec config_key_specs[];
extern const size_t config_n_key_specs;
