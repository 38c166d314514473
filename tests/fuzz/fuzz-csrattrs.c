/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-csrattrs: csrattrs_parse() on any bytes (the DER an EST server answers
 * /csrattrs with, once base64-decoded). Whatever it accepts yields a digest
 * fleetid knows or none; what it refuses leaves the result untouched and
 * says why.
 */
#include <errno.h>
#include <string.h>

#include "est/csrattrs.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        CsrAttrs a = { .unsupported = 12345 };
        Diag d = {};
        int r;

        r = csrattrs_parse(data, size, &a, &d);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
                FUZZ_CHECK(a.unsupported == 12345); /* untouched on failure */
                FUZZ_CHECK(r == -ENOMEM || d.text[0] != 0);
                return 0;
        }
        FUZZ_CHECK(!a.digest || strcmp(a.digest, "SHA256") == 0 || strcmp(a.digest, "SHA384") == 0 ||
                   strcmp(a.digest, "SHA512") == 0);
        return 0;
}
