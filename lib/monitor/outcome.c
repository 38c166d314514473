/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "monitor/outcome.h"

static const char *const attempt_outcome_names[_ATTEMPT_OUTCOME_MAX] = {
        [ATTEMPT_OK] = "ok",
        [ATTEMPT_TRANSIENT] = "transient",
        [ATTEMPT_REJECTED] = "rejected",
        [ATTEMPT_IDENTITY_UNUSABLE] = "identity-unusable",
        [ATTEMPT_TPM_UNAVAILABLE] = "tpm-unavailable",
        [ATTEMPT_CONFIGURATION] = "configuration",
};

const char *attempt_outcome_to_string(AttemptOutcome o) {
        if (o < 0 || o >= _ATTEMPT_OUTCOME_MAX)
                return NULL;
        return attempt_outcome_names[o];
}

AttemptOutcome attempt_outcome_from_string(const char *s) {
        if (!s)
                return _ATTEMPT_OUTCOME_INVALID;
        for (AttemptOutcome i = 0; i < _ATTEMPT_OUTCOME_MAX; i++)
                if (strcmp(s, attempt_outcome_names[i]) == 0)
                        return i;
        return _ATTEMPT_OUTCOME_INVALID;
}

/* A 4xx the server means: 408 (timeout) and 429 (too many requests) are
 * worth the same request again later. */
static bool server_refused(long status) {
        return status >= 400 && status < 500 && status != 408 && status != 429;
}

AttemptOutcome attempt_outcome_classify(const AttemptFacts *f) {
        if (f->error >= 0)
                return ATTEMPT_OK;
        if (f->tpm_unavailable)
                return ATTEMPT_TPM_UNAVAILABLE;
        if (f->identity_unusable)
                return ATTEMPT_IDENTITY_UNUSABLE;
        if (f->preparing)
                return ATTEMPT_CONFIGURATION;
        if (server_refused(f->http_status))
                return ATTEMPT_REJECTED;
        return ATTEMPT_TRANSIENT;
}
