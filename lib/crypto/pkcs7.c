/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* memmem() */
#endif
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/pkcs7.h>

#include "crypto/ossl-util.h"
#include "crypto/pkcs7.h"
#include "util/base64.h"

#define PEM_BEGIN "-----BEGIN PKCS7-----"
#define PEM_END "-----END PKCS7-----"

static bool is_space(uint8_t c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_base64_text(uint8_t c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
               c == '/' || c == '=' || is_space(c);
}

/* Offset of the first byte that cannot appear in base64 text, len if none. */
static size_t find_non_base64(const uint8_t *text, size_t len) {
        size_t i = 0;

        while (i < len && is_base64_text(text[i]))
                i++;
        return i;
}

static int decode_base64_body(const uint8_t *text, size_t len, const char *what, uint8_t **ret,
                              size_t *ret_len, Diag *d) {
        size_t bad = find_non_base64(text, len);
        int r;

        if (bad < len)
                return diag_set(d, -EBADMSG, "%s is not base64: unexpected byte 0x%02x at offset %zu", what,
                                text[bad], bad);

        r = base64_decode((const char *) text, len, ret, ret_len);
        if (r == -EBADMSG)
                return diag_set(d, r,
                                "%s is not valid base64: bad padding, or truncated "
                                "(not a whole number of 4-character groups)",
                                what);
        if (r < 0)
                return diag_set(d, r, "cannot decode the %s", what);
        if (*ret_len == 0)
                return diag_set(d, -EBADMSG, "%s is empty", what);
        return 0;
}

/* The PEM form: one "-----BEGIN PKCS7-----" block, nothing but whitespace around it. */
static int decode_pem_body(const uint8_t *text, size_t len, uint8_t **ret, size_t *ret_len, Diag *d) {
        const uint8_t *start, *end, *tail;
        size_t begin_len = strlen(PEM_BEGIN), end_len = strlen(PEM_END);

        if (len < begin_len || memcmp(text, PEM_BEGIN, begin_len) != 0)
                return diag_set(d, -EBADMSG, "PKCS#7 body is a PEM block, but not \"" PEM_BEGIN "\"");

        start = text + begin_len;
        end = memmem(start, len - begin_len, PEM_END, end_len);
        if (!end)
                return diag_set(d, -EBADMSG, "PKCS#7 PEM block is truncated: no \"" PEM_END "\" line");
        for (tail = end + end_len; tail < text + len; tail++)
                if (!is_space(*tail))
                        return diag_set(d, -EBADMSG, "PKCS#7 PEM block is followed by other data");

        return decode_base64_body(start, (size_t) (end - start), "PKCS#7 PEM block", ret, ret_len, d);
}

/* Checks the outer DER header against the length we have, so a truncated body is
 * reported as truncated rather than as an opaque ASN.1 error. */
static int check_outer_header(const uint8_t *der, size_t len, Diag *d) {
        size_t hdr, content = 0;

        if (len < 2)
                return diag_set(d, -EBADMSG, "PKCS#7 body is truncated (%zu byte)", len);
        if (der[0] != 0x30)
                return diag_set(d, -EBADMSG,
                                "PKCS#7 body is not DER PKCS#7: it does not start "
                                "with an ASN.1 SEQUENCE (first byte 0x%02x)",
                                der[0]);
        if (der[1] == 0x80)
                return 0; /* BER indefinite length: the ASN.1 parser finds the end */
        if (der[1] < 0x80) {
                hdr = 2;
                content = der[1];
        } else {
                size_t n = der[1] & 0x7f;

                if (n > 4)
                        return diag_set(d, -EBADMSG,
                                        "PKCS#7 body is not DER PKCS#7: "
                                        "its length field has %zu bytes",
                                        n);
                hdr = 2 + n;
                if (len < hdr)
                        return diag_set(d, -EBADMSG, "PKCS#7 body is truncated (%zu bytes)", len);
                for (size_t i = 0; i < n; i++)
                        content = (content << 8) | der[2 + i];
        }
        if (content > len - hdr)
                return diag_set(d, -EBADMSG,
                                "PKCS#7 body is truncated: the structure declares "
                                "%zu bytes, only %zu are present",
                                content + hdr, len);
        if (content < len - hdr)
                return diag_set(d, -EBADMSG,
                                "PKCS#7 body has %zu bytes of trailing data after "
                                "the structure",
                                len - hdr - content);
        return 0;
}

static const char *object_name(const ASN1_OBJECT *o, char *buf, size_t size) {
        if (!o || OBJ_obj2txt(buf, (int) size, o, 0) <= 0)
                return "unknown";
        return buf;
}

/* Refuses anything but a certs-only signedData. */
static int check_certs_only(PKCS7 *p7, Diag *d) {
        PKCS7_SIGNED *s;
        PKCS7 *content;
        char name[128];
        int n;

        if (!PKCS7_type_is_signed(p7))
                return diag_set(d, -EBADMSG,
                                "PKCS#7 body is not signedData but %s "
                                "(EST returns certificates in a certs-only signedData)",
                                object_name(p7->type, name, sizeof(name)));
        s = p7->d.sign;
        if (!s)
                return diag_set(d, -EBADMSG, "PKCS#7 signedData is empty");

        n = sk_PKCS7_SIGNER_INFO_num(s->signer_info);
        if (n > 0)
                return diag_set(d, -EBADMSG,
                                "PKCS#7 signedData carries %d signerInfo%s: "
                                "not a certs-only message",
                                n, n == 1 ? "" : "s");

        content = s->contents;
        if (content) {
                if (!content->type || OBJ_obj2nid(content->type) != NID_pkcs7_data)
                        return diag_set(d, -EBADMSG,
                                        "PKCS#7 signedData encapsulates content of "
                                        "type %s: not a certs-only message",
                                        object_name(content->type, name, sizeof(name)));
                if (content->d.data && ASN1_STRING_length(content->d.data) > 0)
                        return diag_set(d, -EBADMSG,
                                        "PKCS#7 signedData carries %d bytes of "
                                        "content: not a certs-only message",
                                        ASN1_STRING_length(content->d.data));
        }

        n = sk_X509_num(s->cert);
        if (n <= 0)
                return diag_set(d, -EBADMSG, "PKCS#7 certs-only message holds no certificates");
        if (n > PKCS7_MAX_CERTS)
                return diag_set(d, -EBADMSG,
                                "PKCS#7 certs-only message holds %d certificates, "
                                "more than the %d accepted",
                                n, PKCS7_MAX_CERTS);
        return 0;
}

int pkcs7_parse_certs(const uint8_t *body, size_t len, STACK_OF(X509) **ret, Diag *d) {
        _cleanup_free_ uint8_t *decoded = NULL;
        _cleanup_(PKCS7_freep) PKCS7 *p7 = NULL;
        const uint8_t *der, *p;
        size_t der_len, skip = 0;
        int r;

        if (!body || len == 0)
                return diag_set(d, -EBADMSG, "PKCS#7 body is empty");
        if (len > PKCS7_MAX_BODY)
                return diag_set(d, -EBADMSG, "PKCS#7 body is %zu bytes, more than the %u accepted", len,
                                PKCS7_MAX_BODY);

        while (skip < len && is_space(body[skip]))
                skip++;
        if (skip == len)
                return diag_set(d, -EBADMSG, "PKCS#7 body is empty (only whitespace)");

        if (body[skip] == '-') {
                r = decode_pem_body(body + skip, len - skip, &decoded, &der_len, d);
                if (r < 0)
                        return r;
                der = decoded;
        } else if (body[0] == 0x30 && find_non_base64(body, len) < len) {
                /* Raw DER: starts with a SEQUENCE tag and holds bytes that base64
                 * text never does (a PKCS#7 with a certificate in it always has
                 * non-ASCII length octets). */
                der = body;
                der_len = len;
        } else {
                /* Some servers end the body with a C string's NUL: harmless
                 * (as for /csrattrs, est.c). */
                while (len > skip && body[len - 1] == 0)
                        len--;
                r = decode_base64_body(body, len, "PKCS#7 body", &decoded, &der_len, d);
                if (r < 0)
                        return r;
                der = decoded;
        }

        r = check_outer_header(der, der_len, d);
        if (r < 0)
                return r;
        if (der_len > LONG_MAX)
                return diag_set(d, -EBADMSG, "PKCS#7 body is too large");

        p = der;
        p7 = d2i_PKCS7(NULL, &p, (long) der_len);
        if (!p7)
                return diag_set_ssl(d, -EBADMSG, "PKCS#7 body is not DER PKCS#7");
        if ((size_t) (p - der) != der_len)
                return diag_set(d, -EBADMSG,
                                "PKCS#7 body has %zu bytes of trailing data after "
                                "the structure",
                                der_len - (size_t) (p - der));

        r = check_certs_only(p7, d);
        if (r < 0)
                return r;

        /* Take the certificates out; PKCS7_free() then leaves them alone. */
        *ret = TAKE_PTR(p7->d.sign->cert);
        return 0;
}

int pkcs7_build_certs(STACK_OF(X509) *certs, uint8_t **ret, size_t *ret_len) {
        _cleanup_(PKCS7_freep) PKCS7 *p7 = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t *p;
        int n;

        p7 = PKCS7_new();
        if (!p7 || !PKCS7_set_type(p7, NID_pkcs7_signed))
                return -ENOMEM;
        /* Content type id-data with the content itself absent, as in
         * 'openssl crl2pkcs7 -nocrl' and RFC 7030 section 4.1.3. */
        p7->d.sign->contents->type = OBJ_nid2obj(NID_pkcs7_data);

        for (int i = 0; i < sk_X509_num(certs); i++)
                if (!PKCS7_add_certificate(p7, sk_X509_value(certs, i)))
                        return -ENOMEM;

        n = i2d_PKCS7(p7, NULL);
        if (n <= 0)
                return -EIO;
        buf = malloc((size_t) n);
        if (!buf)
                return -ENOMEM;
        p = buf;
        if (i2d_PKCS7(p7, &p) != n)
                return -EIO;

        *ret = TAKE_PTR(buf);
        *ret_len = (size_t) n;
        return 0;
}
