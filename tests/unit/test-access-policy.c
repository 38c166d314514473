/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-access-policy.c: the roles and what they imply, the decision for a
 * caller (uid, gids), the method table (and that docs/dbus-api.md shows the
 * same), and access.conf: good files, and each rejection with its exact
 * "FILE:LINE: message", owner and mode, symlinks, size, garbage.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "access/access-methods.h"
#include "access/access-policy.h"
#include "test-tmpdir.h"
#include "util/fileio.h"

#define R(x) ACCESS_ROLE_BIT(ACCESS_ROLE_##x)
#define ALL_ROLES (R(ANYONE) | R(READER) | R(ATTEST) | R(ATTEST_BIRTH) | R(SENSOR_BROKER) | R(ADMIN))

static char tmpdir[64];

static int setup(void **state) {
        return test_tmpdir_new(tmpdir, sizeof(tmpdir), "access-policy") ? 0 : -1;
}

static int teardown(void **state) {
        return test_tmpdir_remove(tmpdir);
}

/* tmpdir/name holding text (len bytes) with mode; returns the path (static buffer). */
static const char *write_file(const char *name, const char *text, size_t len, mode_t mode) {
        static char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
        (void) unlink(path);
        f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(text, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(chmod(path, mode), 0);
        return path;
}

static AccessPolicy *load_ok(const char *text) {
        const char *path = write_file("ok.conf", text, strlen(text), 0644);
        AccessPolicy *p = NULL;
        Diag d = {};
        int r;

        r = access_policy_load(path, getuid(), &p, &d);
        if (r < 0)
                fail_msg("access_policy_load failed: %d %s", r, d.text);
        assert_non_null(p);
        assert_string_equal(p->path, path);
        return p;
}

/* Loads text (len bytes) and checks the error and the exact "FILE:LINE: msg" ("FILE: msg" for line 0). */
static void expect_error_len(const char *text, size_t len, int error, unsigned line, const char *msg) {
        const char *path = write_file("bad.conf", text, len, 0644);
        AccessPolicy *p = NULL;
        char expected[DIAG_MAX];
        Diag d = {};

        assert_int_equal(access_policy_load(path, getuid(), &p, &d), error);
        assert_null(p);
        if (line > 0)
                snprintf(expected, sizeof(expected), "%s:%u: %s", path, line, msg);
        else
                snprintf(expected, sizeof(expected), "%s: %s", path, msg);
        assert_string_equal(d.text, expected);
}

static void expect_invalid(const char *text, unsigned line, const char *msg) {
        expect_error_len(text, strlen(text), -EINVAL, line, msg);
}

/* ---- roles and the decision ---- */

static void test_role_names(void **state) {
        for (AccessRole r = ACCESS_ROLE_READER; r < _ACCESS_ROLE_MAX; r++)
                assert_int_equal(access_role_from_string(access_role_to_string(r)), r);
        assert_string_equal(access_role_to_string(ACCESS_ROLE_ANYONE), "anyone");
        assert_string_equal(access_role_to_string(ACCESS_ROLE_ATTEST_BIRTH), "attest-birth");
        assert_string_equal(access_role_to_string(ACCESS_ROLE_SENSOR_BROKER), "sensor-broker");
        /* "anyone" needs no grant, so it cannot be granted */
        assert_int_equal(access_role_from_string("anyone"), _ACCESS_ROLE_INVALID);
        assert_int_equal(access_role_from_string("Admin"), _ACCESS_ROLE_INVALID);
        assert_int_equal(access_role_from_string(NULL), _ACCESS_ROLE_INVALID);
        assert_null(access_role_to_string(_ACCESS_ROLE_MAX));
}

static void test_role_closure(void **state) {
        assert_int_equal(access_role_closure(R(ADMIN)), ALL_ROLES & ~R(ANYONE));
        assert_int_equal(access_role_closure(R(ATTEST_BIRTH)), R(ATTEST_BIRTH) | R(ATTEST) | R(READER));
        assert_int_equal(access_role_closure(R(ATTEST)), R(ATTEST) | R(READER));
        assert_int_equal(access_role_closure(R(SENSOR_BROKER)), R(SENSOR_BROKER) | R(READER));
        assert_int_equal(access_role_closure(R(READER)), R(READER));
        assert_int_equal(access_role_closure(0), 0);
        /* attest does not give the birth key, sensor-broker does not give signing */
        assert_false(access_role_closure(R(ATTEST) | R(SENSOR_BROKER)) & (R(ATTEST_BIRTH) | R(ADMIN)));
}

static void test_decision(void **state) {
        _cleanup_(access_policy_freep) AccessPolicy *p = NULL;
        gid_t none[] = { 100 }, sensors[] = { 100, 2000 }, nogid[] = { (gid_t) -1 };

        assert_int_equal(access_policy_new(&p), 0);
        /* no grants: root is admin, anyone else may only call what needs no role */
        assert_int_equal(access_roles(p, 0, NULL, 0), ALL_ROLES);
        assert_int_equal(access_roles(p, 1000, none, 1), R(ANYONE));
        assert_true(access_check(p, 1000, none, 1, ACCESS_ROLE_ANYONE));
        assert_false(access_check(p, 1000, none, 1, ACCESS_ROLE_READER));
        assert_true(access_check(NULL, 0, NULL, 0, ACCESS_ROLE_ADMIN));
        assert_false(access_check(NULL, 1000, NULL, 0, ACCESS_ROLE_READER));
        /* (uid_t) -1 is nobody in particular, never root */
        assert_int_equal(access_roles(p, (uid_t) -1, nogid, 1), R(ANYONE));

        assert_int_equal(access_policy_add(p, ACCESS_PRINCIPAL_USER, 1000, R(ATTEST), 0, NULL), 0);
        assert_int_equal(access_policy_add(p, ACCESS_PRINCIPAL_GROUP, 2000, R(SENSOR_BROKER), 0, NULL), 0);
        assert_int_equal(access_policy_add(p, ACCESS_PRINCIPAL_GROUP, 1000, R(ADMIN), 0, NULL), 0);

        assert_int_equal(access_roles(p, 1000, none, 1), R(ANYONE) | R(READER) | R(ATTEST));
        assert_false(access_check(p, 1000, none, 1, ACCESS_ROLE_ATTEST_BIRTH));
        /* a group grant reaches members through their gids, and adds to the user's */
        assert_int_equal(access_roles(p, 1000, sensors, 2),
                         R(ANYONE) | R(READER) | R(ATTEST) | R(SENSOR_BROKER));
        assert_int_equal(access_roles(p, 1001, sensors, 2), R(ANYONE) | R(READER) | R(SENSOR_BROKER));
        assert_false(access_check(p, 1001, sensors, 2, ACCESS_ROLE_ATTEST));
        /* uid 1000 and gid 1000 are different principals */
        assert_int_equal(access_roles(p, 1002, (gid_t[]) { 1000 }, 1), ALL_ROLES);
        assert_false(access_check(p, 1000, none, 1, ACCESS_ROLE_ADMIN));
        assert_false(access_check(p, 1000, none, 1, _ACCESS_ROLE_MAX));
        assert_false(access_check(p, 0, NULL, 0, _ACCESS_ROLE_INVALID));
}

static void test_add_refusals(void **state) {
        _cleanup_(access_policy_freep) AccessPolicy *p = NULL;
        unsigned line = 0;

        assert_int_equal(access_policy_new(&p), 0);
        assert_int_equal(access_policy_add(p, ACCESS_PRINCIPAL_USER, 5, R(READER), 7, NULL), 0);
        assert_int_equal(access_policy_add(p, ACCESS_PRINCIPAL_USER, 5, R(ADMIN), 9, &line), -EEXIST);
        assert_int_equal(line, 7);
        assert_int_equal(access_policy_add(p, ACCESS_PRINCIPAL_USER, 6, 0, 0, NULL), -EINVAL);
        assert_int_equal(access_policy_add(p, ACCESS_PRINCIPAL_USER, 6, R(ANYONE), 0, NULL), -EINVAL);
        assert_int_equal(access_policy_add(p, ACCESS_PRINCIPAL_USER, UINT32_MAX, R(READER), 0, NULL), -EINVAL);
        assert_int_equal(access_policy_add(p, ACCESS_PRINCIPAL_USER, 6, 1u << 20, 0, NULL), -EINVAL);
        for (uint32_t id = 100; p->n_grants < ACCESS_GRANTS_MAX; id++)
                assert_int_equal(access_policy_add(p, ACCESS_PRINCIPAL_GROUP, id, R(READER), 0, NULL), 0);
        assert_int_equal(access_policy_add(p, ACCESS_PRINCIPAL_GROUP, 99, R(READER), 0, NULL), -E2BIG);
}

static void test_jobs(void **state) {
        _cleanup_(access_policy_freep) AccessPolicy *p = NULL;

        assert_int_equal(access_policy_new(&p), 0);
        assert_int_equal(access_policy_add(p, ACCESS_PRINCIPAL_USER, 1001, R(ADMIN), 0, NULL), 0);
        assert_true(access_check_job(p, 1000, NULL, 0, 1000));
        assert_false(access_check_job(p, 1002, NULL, 0, 1000));
        assert_true(access_check_job(p, 1001, NULL, 0, 1000));
        assert_true(access_check_job(p, 0, NULL, 0, 1000));
        assert_false(access_check_job(p, (uid_t) -1, NULL, 0, (uid_t) -1));
}

/* ---- the method table ---- */

static void test_method_table(void **state) {
        const AccessMethod *m;
        size_t n;

        m = access_method_find("org.fleetid.Agent1", "GetTrustBundle", NULL);
        assert_non_null(m);
        assert_int_equal(m->role, ACCESS_ROLE_ANYONE);
        m = access_method_find("org.fleetid.Agent1", "GetCertificateChain", NULL);
        assert_int_equal(m->role, ACCESS_ROLE_READER);
        m = access_method_find("org.fleetid.Agent1", "SignChallenge", NULL);
        assert_int_equal(m->role, ACCESS_ROLE_ATTEST);
        assert_int_equal(m->rate, ACCESS_RATE_SIGN);
        m = access_method_find("org.fleetid.Agent1", "SignChallenge", "identity=birth");
        assert_int_equal(m->role, ACCESS_ROLE_ATTEST_BIRTH);
        m = access_method_find("org.fleetid.Agent1", "Renew", NULL);
        assert_int_equal(m->role, ACCESS_ROLE_ADMIN);
        m = access_method_find("org.fleetid.Agent1", "RequestSensorCertificate", NULL);
        assert_int_equal(m->role, ACCESS_ROLE_SENSOR_BROKER);
        assert_int_equal(m->rate, ACCESS_RATE_SENSOR);
        m = access_method_find("org.fleetid.Agent1.Job", "Cancel", NULL);
        assert_true(m->job_owner);
        m = access_method_find("org.fleetid.Agent1", "FactoryReset", NULL);
        assert_int_equal(m->role, ACCESS_ROLE_ADMIN);
        assert_null(access_method_find("org.fleetid.Agent1", "Reboot", NULL));
        assert_null(access_method_find("org.fleetid.Agent1", "SignChallenge", "identity=other"));
        assert_null(access_method_find(NULL, "Renew", NULL));

        m = access_methods(&n);
        assert_true(n > 0);
        for (size_t i = 0; i < n; i++) {
                assert_non_null(access_role_to_string(m[i].role));
                assert_non_null(access_rate_class_to_string(m[i].rate));
                /* every row is found as itself: no row hides another */
                assert_ptr_equal(access_method_find(m[i].interface, m[i].member, m[i].variant), &m[i]);
        }
}

/* <source root>/rel, from FLEETID_SOURCE_ROOT or from __FILE__. */
static char *source_path(const char *rel) {
        const char *root = getenv("FLEETID_SOURCE_ROOT"), *suffix = "tests/unit/test-access-policy.c";
        size_t root_len;
        char *path;

        if (root)
                root_len = strlen(root);
        else {
                size_t n = strlen(__FILE__), m = strlen(suffix);

                assert_true(n >= m && strcmp(__FILE__ + n - m, suffix) == 0);
                root = __FILE__;
                root_len = n - m;
        }
        assert_true(asprintf(&path, "%.*s%s%s", (int) root_len, root,
                             root_len && root[root_len - 1] != '/' ? "/" : "", rel) > 0);
        return path;
}

/* docs/dbus-api.md shows the table: one row per entry, in the same order, and no other. */
static void test_method_table_documented(void **state) {
        _cleanup_free_ char *path = source_path("docs/dbus-api.md"), *doc = NULL;
        const AccessMethod *m = access_methods(&(size_t) { 0 });
        const char *section, *p;
        size_t n, rows = 0;

        access_methods(&n);
        assert_int_equal(read_file_bounded(path, 1024 * 1024, &doc, NULL), 0);
        section = strstr(doc, "\n## Access control\n");
        assert_non_null(section);
        p = section;
        for (size_t i = 0; i < n; i++) {
                char row[256];

                snprintf(row, sizeof(row), "\n| `%s` | `%s`%s%s%s | %s | %s |\n", m[i].interface, m[i].member,
                         m[i].variant ? " with `" : "", m[i].variant ?: "", m[i].variant ? "`" : "",
                         m[i].job_owner ? "the job's owner, or admin" : access_role_to_string(m[i].role),
                         access_rate_class_to_string(m[i].rate));
                p = strstr(p, row);
                if (!p)
                        fail_msg("docs/dbus-api.md, ## Access control, lacks (after the row before) the row %s",
                                 row);
                p++;
        }
        for (p = section; (p = strstr(p, "\n| `org.")); p++)
                rows++;
        assert_int_equal(rows, n);
}

/* ---- access.conf ---- */

static void test_load_grants(void **state) {
        _cleanup_(access_policy_freep) AccessPolicy *p = NULL;
        struct passwd *pw = getpwuid(getuid());
        struct group *gr = getgrgid(getgid());
        char text[1024];

        assert_non_null(pw);
        assert_non_null(gr);
        snprintf(text, sizeof(text),
                 "# who may use org.fleetid.Agent1\n"
                 "grants = (\n"
                 "        { user = \"%s\"; roles = [ \"attest\", \"sensor-broker\" ]; },\n"
                 "        { group = \"%s\"; roles = [ \"reader\" ]; },\n"
                 "        { user = 4242; roles = ( \"admin\" ); },\n"
                 "        { group = 0x10000L; roles = [ \"attest-birth\" ]; }\n"
                 ");\n",
                 pw->pw_name, gr->gr_name);
        p = load_ok(text);
        assert_int_equal(p->n_grants, 4);
        assert_int_equal(p->grants[0].kind, ACCESS_PRINCIPAL_USER);
        assert_int_equal(p->grants[0].id, getuid());
        assert_int_equal(p->grants[0].roles, R(ATTEST) | R(SENSOR_BROKER));
        assert_int_equal(p->grants[0].line, 3);
        assert_int_equal(p->grants[1].kind, ACCESS_PRINCIPAL_GROUP);
        assert_int_equal(p->grants[1].id, getgid());
        assert_int_equal(p->grants[2].id, 4242);
        assert_int_equal(p->grants[3].id, 0x10000);
        assert_true(access_check(p, 4242, NULL, 0, ACCESS_ROLE_ATTEST_BIRTH));
        assert_true(access_check(p, 777, (gid_t[]) { 0x10000 }, 1, ACCESS_ROLE_ATTEST));
        assert_false(access_check(p, 777, (gid_t[]) { 0x10000 }, 1, ACCESS_ROLE_SENSOR_BROKER));
}

static void test_load_empty_and_bom(void **state) {
        AccessPolicy *p;

        p = load_ok("");
        assert_int_equal(p->n_grants, 0);
        access_policy_free(p);
        p = load_ok("# nothing granted\ngrants = ( );\n");
        assert_int_equal(p->n_grants, 0);
        access_policy_free(p);
        p = load_ok("\xEF\xBB\xBFgrants = ( { user = 5; roles = [ \"reader\" ]; } );\n");
        assert_int_equal(p->n_grants, 1);
        access_policy_free(p);
}

static void test_load_bad_grants(void **state) {
        expect_invalid("grants = ( { user = 5; roles = [ \"reader\", \"superuser\" ]; } );\n", 1,
                       "unknown role 'superuser'; the roles are reader, attest, attest-birth, sensor-broker and "
                       "admin");
        expect_invalid("grants = ( { user = 5; roles = [ \"anyone\" ]; } );\n", 1,
                       "unknown role 'anyone'; the roles are reader, attest, attest-birth, sensor-broker and "
                       "admin");
        expect_invalid("grants = (\n { user = 5;\n roles = [ \"reader\", \"reader\" ]; } );\n", 3,
                       "role 'reader' is listed twice");
        expect_invalid(
                "grants = (\n { user = \"no-such-user-fleetid-test\"; roles = [ \"reader\" ]; }\n);\n", 2,
                "no user named 'no-such-user-fleetid-test' on this system; create it, fix the name, or give "
                "its numeric id");
        expect_invalid(
                "grants = ( { group = \"no-such-group-fleetid-test\"; roles = [ \"reader\" ]; } );\n", 1,
                "no group named 'no-such-group-fleetid-test' on this system; create it, fix the name, or "
                "give its numeric id");
        expect_invalid("grants = ( { user = \"4242\"; roles = [ \"reader\" ]; } );\n", 1,
                       "no user named '4242' on this system; create it, fix the name, or write the numeric id "
                       "without quotes");
        expect_invalid("grants = (\n { user = 5; roles = [ \"reader\" ]; },\n { user = 5; roles = [ \"admin\" ]; }\n"
                       ");\n",
                       3, "user 5 already has a grant at line 2; give each user and group one grant");
        expect_invalid("grants = ( { user = 5; group = 5; roles = [ \"reader\" ]; } );\n", 1,
                       "a grant names both a user and a group; write one grant for each");
        expect_invalid("grants = ( { roles = [ \"reader\" ]; } );\n", 1,
                       "a grant names neither a user nor a group");
        expect_invalid("grants = ( { user = 5; } );\n", 1, "a grant has no roles = [ ... ];");
        expect_invalid("grants = ( { user = 5; roles = [ ]; } );\n", 1,
                       "roles must be a non-empty list of roles, e.g. roles = [ \"reader\" ];");
        expect_invalid("grants = ( { user = 5; roles = \"reader\"; } );\n", 1,
                       "roles must be a non-empty list of roles, e.g. roles = [ \"reader\" ];");
        expect_invalid("grants = ( { user = 5; roles = [ 1 ]; } );\n", 1,
                       "roles must hold role names in quotes, e.g. [ \"reader\" ]");
        expect_invalid("grants = ( { user = true; roles = [ \"reader\" ]; } );\n", 1,
                       "user must be a name in quotes or a numeric id");
        expect_invalid("grants = ( { user = 1.5; roles = [ \"reader\" ]; } );\n", 1,
                       "user must be a name in quotes or a numeric id");
        expect_invalid("grants = ( { user = \"\"; roles = [ \"reader\" ]; } );\n", 1,
                       "user must not be empty");
        expect_invalid("grants = ( { user = \"a\\x01b\"; roles = [ \"reader\" ]; } );\n", 1,
                       "user name contains a control character or is not valid UTF-8");
        expect_invalid("grants = ( { user = 4294967295; roles = [ \"reader\" ]; } );\n", 1,
                       "user id 4294967295 is out of range (0..4294967294)");
        expect_invalid("grants = ( { user = 4294967296; roles = [ \"reader\" ]; } );\n", 1,
                       "integer does not fit in 32 bits");
        expect_invalid("grants = ( { user = -1; roles = [ \"reader\" ]; } );\n", 1,
                       "negative number; no setting in this file takes one");
        expect_invalid("grants = ( { uid = 5; roles = [ \"reader\" ]; } );\n", 1,
                       "unknown key 'uid' in a grant; a grant has user or group, and roles");
        expect_invalid("grants = ( \"bob\" );\n", 1,
                       "each grant must be a group: { user = \"name\"; roles = [ \"reader\" ]; }");
        expect_invalid("grants = { user = 5; roles = [ \"reader\" ]; };\n", 1,
                       "grants must be a list: grants = ( { user = \"name\"; roles = [ \"reader\" ]; } );");
        expect_invalid("\nadmins = [ \"bob\" ];\n", 2,
                       "unknown setting 'admins'; the file holds only grants = ( ... );");
}

/* The same uid under its number and its name is one user: the second grant is refused, naming both. */
static void test_load_same_user_twice(void **state) {
        struct passwd *pw = getpwuid(getuid());
        char text[512], msg[512];

        assert_non_null(pw);
        snprintf(text, sizeof(text),
                 "grants = (\n { user = %u; roles = [ \"reader\" ]; },\n { user = \"%s\"; roles = [ \"attest\" ]; }\n);\n",
                 (unsigned) getuid(), pw->pw_name);
        snprintf(msg, sizeof(msg),
                 "user '%s' (uid %u) already has a grant at line 2; give each user and group one grant",
                 pw->pw_name, (unsigned) getuid());
        expect_invalid(text, 3, msg);
}

static void test_load_too_many_grants(void **state) {
        size_t size = 64 * 1024, len = 0;
        _cleanup_free_ char *text = malloc(size);

        assert_non_null(text);
        len += (size_t) snprintf(text, size, "grants = (\n");
        for (unsigned i = 0; i <= ACCESS_GRANTS_MAX; i++)
                len += (size_t) snprintf(text + len, size - len, "%s{user=%u;roles=[\"reader\"];}\n",
                                         i ? "," : "", i + 1);
        len += (size_t) snprintf(text + len, size - len, ");\n");
        assert_true(len < ACCESS_FILE_MAX);
        expect_error_len(text, len, -EINVAL, ACCESS_GRANTS_MAX + 2, "more than 1024 grants");
}

static void test_load_bad_files(void **state) {
        size_t big = ACCESS_FILE_MAX + 1;
        _cleanup_free_ char *huge = malloc(big);
        AccessPolicy *p = NULL;
        char path[256], msg[DIAG_MAX];
        Diag d = {};

        /* garbage: libconfig's own message, with the line */
        expect_invalid("grants = (\n{ user = 5 roles }\n);\n", 2, "syntax error");
        expect_invalid("\x7f"
                       "ELF\x02\x01\x01",
                       1, "syntax error");
        expect_error_len("grants = ( );\n\0\n", 16, -EINVAL, 0, "contains a NUL byte; not a text file");
        expect_invalid("@include \"/etc/passwd\"\n", 1,
                       "@include is not supported; keep the configuration in one file");
        assert_non_null(huge);
        memset(huge, '#', big);
        expect_error_len(huge, big, -EFBIG, 0, "larger than 65536 bytes, refusing to parse it");

        /* missing */
        snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
        assert_int_equal(access_policy_load(path, getuid(), &p, &d), -ENOENT);
        snprintf(msg, sizeof(msg), "%s: no such file", path);
        assert_string_equal(d.text, msg);

        /* a directory */
        assert_int_equal(access_policy_load(tmpdir, getuid(), &p, &d), -EINVAL);
        snprintf(msg, sizeof(msg), "%s: not a regular file", tmpdir);
        assert_string_equal(d.text, msg);
        assert_null(p);
}

static void test_load_owner_and_mode(void **state) {
        const char *text = "grants = ( { user = 5; roles = [ \"admin\" ]; } );\n";
        AccessPolicy *p = NULL;
        char path[256], link[256], msg[DIAG_MAX];
        Diag d = {};

        snprintf(path, sizeof(path), "%s", write_file("mode.conf", text, strlen(text), 0664));
        assert_int_equal(access_policy_load(path, getuid(), &p, &d), -EACCES);
        snprintf(msg, sizeof(msg),
                 "%s: mode 0664 lets group or others write it, and so grant themselves any role; chmod go-w %s",
                 path, path);
        assert_string_equal(d.text, msg);
        assert_int_equal(chmod(path, 0646), 0);
        assert_int_equal(access_policy_load(path, getuid(), &p, &d), -EACCES);

        /* through a symlink: the file it leads to is checked */
        snprintf(link, sizeof(link), "%s/link.conf", tmpdir);
        assert_int_equal(symlink(path, link), 0);
        assert_int_equal(access_policy_load(link, getuid(), &p, &d), -EACCES);
        assert_int_equal(chmod(path, 0640), 0);
        assert_int_equal(access_policy_load(link, getuid(), &p, &d), 0);
        assert_true(access_check(p, 5, NULL, 0, ACCESS_ROLE_ADMIN));
        p = access_policy_free(p);

        /* owned by someone else than the owner fleetidd trusts */
        assert_int_equal(access_policy_load(path, getuid() + 1, &p, &d), -EACCES);
        snprintf(msg, sizeof(msg),
                 "%s: owned by uid %u, not %u; the file grants access to the device's keys, so it must belong to "
                 "uid %u (chown)",
                 path, (unsigned) getuid(), (unsigned) getuid() + 1, (unsigned) getuid() + 1);
        assert_string_equal(d.text, msg);
        assert_null(p);
        assert_int_equal(unlink(link), 0);
}

/* The installed etc/access.conf loads (its owner is whoever checked it out). */
static void test_shipped_file(void **state) {
        _cleanup_free_ char *path = source_path("etc/access.conf");
        _cleanup_(access_policy_freep) AccessPolicy *p = NULL;
        struct stat st;
        Diag d = {};
        int r;

        assert_int_equal(stat(path, &st), 0);
        r = access_policy_load(path, st.st_uid, &p, &d);
        if (r < 0)
                fail_msg("%s: %d %s", path, r, d.text);
        assert_int_equal(p->n_grants, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_role_names),
                cmocka_unit_test(test_role_closure),
                cmocka_unit_test(test_decision),
                cmocka_unit_test(test_add_refusals),
                cmocka_unit_test(test_jobs),
                cmocka_unit_test(test_method_table),
                cmocka_unit_test(test_method_table_documented),
                cmocka_unit_test(test_load_grants),
                cmocka_unit_test(test_load_empty_and_bom),
                cmocka_unit_test(test_load_bad_grants),
                cmocka_unit_test(test_load_same_user_twice),
                cmocka_unit_test(test_load_too_many_grants),
                cmocka_unit_test(test_load_bad_files),
                cmocka_unit_test(test_load_owner_and_mode),
                cmocka_unit_test(test_shipped_file),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
