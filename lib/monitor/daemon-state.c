/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "monitor/daemon-state.h"

static const char *const daemon_state_names[_DAEMON_STATE_MAX] = {
        [DAEMON_STATE_ENROLLING] = "enrolling",         [DAEMON_STATE_WAITING_RETRY] = "waiting-retry",
        [DAEMON_STATE_WAITING_CLOCK] = "waiting-clock", [DAEMON_STATE_ENROLLED] = "enrolled",
        [DAEMON_STATE_RENEWING] = "renewing",           [DAEMON_STATE_FAILED] = "failed",
        [DAEMON_STATE_TPM_CLEARED] = "tpm-cleared",     [DAEMON_STATE_TPM_REPLACED] = "tpm-replaced",
        [DAEMON_STATE_RESETTING] = "resetting",         [DAEMON_STATE_BIRTH_EXPIRED] = "birth-expired",
};

const char *daemon_state_to_string(DaemonState s) {
        if (s < 0 || s >= _DAEMON_STATE_MAX)
                return NULL;
        return daemon_state_names[s];
}

DaemonState daemon_state_from_string(const char *s) {
        if (!s)
                return _DAEMON_STATE_INVALID;
        for (DaemonState i = 0; i < _DAEMON_STATE_MAX; i++)
                if (strcmp(s, daemon_state_names[i]) == 0)
                        return i;
        return _DAEMON_STATE_INVALID;
}
