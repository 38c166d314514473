/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* trust-changes.c: the record of what a /cacerts changed (trust.h), apart
 * from the exchange that makes it: fleetidd frees the record a worker sent
 * without linking the EST client. */
#include "crypto/ossl-util.h"
#include "exchange/trust.h"

void trust_changes_done(TrustChanges *c) {
        if (!c)
                return;
        OSSL_STACK_OF_X509_free(c->adopted);
        OSSL_STACK_OF_X509_free(c->retired);
        OSSL_STACK_OF_X509_free(c->refused);
        *c = (TrustChanges) {};
}
