/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "common/signer-wire.h"

static const char *const key_names[_SIGNER_KEY_MAX] = {
        [SIGNER_KEY_OPERATIONAL] = "operational",
        [SIGNER_KEY_BIRTH] = "birth",
};

const char *signer_key_to_string(SignerKey k) {
        return k >= 0 && k < _SIGNER_KEY_MAX ? key_names[k] : NULL;
}
