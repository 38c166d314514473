/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "common/worker-wire.h"

static const char *const worker_kind_names[_WORKER_KIND_MAX] = {
        [WORKER_ENROLL] = "enrollment",
        [WORKER_RENEW] = "renewal",
        [WORKER_CACERTS] = "/cacerts refresh",
        [WORKER_RESET] = "factory reset",
};

const char *worker_kind_to_string(WorkerKind k) {
        return k >= 0 && k < _WORKER_KIND_MAX ? worker_kind_names[k] : NULL;
}

void worker_result_done(WorkerResult *r) {
        if (!r)
                return;
        trust_changes_done(&r->trust_changes);
        free(r->deferred_spki);
        *r = (WorkerResult) {};
}
