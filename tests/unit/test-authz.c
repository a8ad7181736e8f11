/*
 * test-authz.c — the SPEC §3 role matrix, written out here independently of
 * src/authz/authz.c and compared with authz_check() cell by cell.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "authz/authz.h"

/* Columns: Admin, Operator, Developer, Read-only (SPEC §3). */
enum { COL_A, COL_O, COL_D, COL_R, NCOL };
static const enum role col_role[NCOL] = {ROLE_ADMIN, ROLE_OPERATOR, ROLE_DEVELOPER, ROLE_READONLY};

/* 1 = ✓, 0 = empty, 2 = "own only" (Developer, deployments: update). */
static const struct {
	enum perm_id perm;
	const char *spec_row;
	int cell[NCOL];
} spec[] = {
	{PERM_DEPLOYMENTS_VIEW, "deployments: view", {1, 1, 1, 1}},
	{PERM_DEPLOYMENTS_CREATE, "deployments: create", {1, 1, 1, 0}},
	{PERM_DEPLOYMENTS_UPDATE, "deployments: update", {1, 1, 2, 0}},
	{PERM_DEPLOYMENTS_OPERATE, "deployments: scale, restart, rollback", {1, 1, 0, 0}},
	{PERM_DEPLOYMENTS_DELETE, "deployments: delete", {1, 0, 0, 0}},
	{PERM_CONTAINERS_VIEW, "containers: view, logs", {1, 1, 1, 1}},
	{PERM_CONTAINERS_OPERATE, "containers: restart, stop", {1, 1, 0, 0}},
	{PERM_CONTAINERS_EXEC, "containers: exec", {1, 0, 0, 0}},
	{PERM_INCIDENTS_VIEW, "incidents: view", {1, 1, 1, 1}},
	{PERM_INCIDENTS_ACK, "incidents: acknowledge", {1, 1, 1, 0}},
	{PERM_INCIDENTS_RESOLVE, "incidents: resolve, remediate", {1, 1, 0, 0}},
	{PERM_SCANNER_SCAN, "scanner: scan", {1, 1, 1, 0}},
	{PERM_SCANNER_VIEW, "scanner: view results", {1, 1, 1, 1}},
	{PERM_SCANNER_POLICIES, "scanner: manage policies", {1, 1, 0, 0}},
	{PERM_AUDIT_READ, "audit log: read (D: own actions, filtered by the query)", {1, 1, 1, 0}},
	{PERM_AUDIT_EXPORT, "audit log: export", {1, 0, 0, 0}},
	{PERM_SECRETS_WRITE, "secrets: write, rotate, revoke, grant", {1, 1, 0, 0}},
	{PERM_SECRETS_LIST, "secrets: list names and metadata", {1, 1, 1, 0}},
	{PERM_TENANT_SETTINGS, "tenant settings (users, roles, permission sets, API keys)", {1, 0, 0, 0}},
	{PERM_APPROVALS_DECIDE, "approvals: approve / reject", {1, 1, 0, 0}},
	/* the foundation's own rows */
	{PERM_TENANT_MEMBER, "tenant member (GET /v1/quotas)", {1, 1, 1, 1}},
	{PERM_AUTHENTICATED, "any verified caller", {1, 1, 1, 1}},
	{PERM_PUBLIC, "public", {1, 1, 1, 1}},
	{PERM_PLATFORM, "platform administration", {0, 0, 0, 0}},
	{PERM_AGENT, "agent API (a node certificate, no role)", {0, 0, 0, 0}},
};
#define NSPEC (sizeof(spec) / sizeof(spec[0]))

static struct principal who(enum role r, enum principal_kind kind)
{
	struct principal p;
	memset(&p, 0, sizeof(p));
	p.kind = kind;
	p.role = r;
	memcpy(p.id, "usr_0123456789abcdef0123456789abcdef", 37);
	if (r != ROLE_PLATFORM_ADMIN)
		memcpy(p.tenant_id, "ten_0123456789abcdef0123456789abcdef", 37);
	return p;
}

static void test_table_covers_every_permission(void **state)
{
	(void)state;
	/* A permission added to authz.h without a row here fails this test. */
	for (int perm = PERM_INVALID + 1; perm < PERM_COUNT; perm++) {
		int rows = 0;
		for (size_t i = 0; i < NSPEC; i++)
			rows += spec[i].perm == (enum perm_id)perm;
		if (rows != 1)
			fail_msg("permission %d (%s) has %d rows in the test's matrix", perm,
				 authz_perm_name((enum perm_id)perm), rows);
	}
}

static void test_matrix(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSPEC; i++) {
		for (int col = 0; col < NCOL; col++) {
			for (int kind = PRINCIPAL_USER; kind <= PRINCIPAL_API_KEY; kind++) {
				struct principal p = who(col_role[col], (enum principal_kind)kind);
				int want = spec[i].cell[col];
				/* own = true: ownership satisfied, the role alone decides */
				enum authz_reason got = authz_check(&p, spec[i].perm, true);
				enum authz_reason expect = want ? AUTHZ_OK : AUTHZ_DENY_ROLE;
				if (got != expect)
					fail_msg("%s / %s: authz_check says %s, SPEC says %s", spec[i].spec_row,
						 role_name(col_role[col]), authz_reason_name(got),
						 authz_reason_name(expect));
				/* own = false: only the "own only" cell changes */
				got = authz_check(&p, spec[i].perm, false);
				expect = want == 1 ? AUTHZ_OK : want == 2 ? AUTHZ_DENY_NOT_OWNER : AUTHZ_DENY_ROLE;
				if (got != expect)
					fail_msg("%s / %s (not owner): authz_check says %s, want %s",
						 spec[i].spec_row, role_name(col_role[col]),
						 authz_reason_name(got), authz_reason_name(expect));
				if (authz_role_has(col_role[col], spec[i].perm) != (want != 0))
					fail_msg("%s / %s: authz_role_has disagrees", spec[i].spec_row,
						 role_name(col_role[col]));
			}
		}
	}
}

static void test_platform_admin(void **state)
{
	(void)state;
	struct principal pa = who(ROLE_PLATFORM_ADMIN, PRINCIPAL_USER);
	for (size_t i = 0; i < NSPEC; i++) {
		enum perm_id perm = spec[i].perm;
		enum authz_reason expect;
		/* Audit reads and exports: the platform's own records (docs/authorization.md). */
		if (perm == PERM_PUBLIC || perm == PERM_AUTHENTICATED || perm == PERM_PLATFORM ||
		    perm == PERM_AUDIT_READ || perm == PERM_AUDIT_EXPORT)
			expect = AUTHZ_OK;
		else
			expect = AUTHZ_DENY_PLATFORM_BOUNDARY; /* every tenant permission */
		for (int own = 0; own <= 1; own++) {
			enum authz_reason got = authz_check(&pa, perm, own);
			if (got != expect)
				fail_msg("platform admin on %s: %s, want %s", spec[i].spec_row,
					 authz_reason_name(got), authz_reason_name(expect));
		}
	}
	/* and nobody else holds PERM_PLATFORM */
	for (int col = 0; col < NCOL; col++) {
		struct principal p = who(col_role[col], PRINCIPAL_API_KEY);
		assert_int_equal(authz_check(&p, PERM_PLATFORM, true), AUTHZ_DENY_ROLE);
	}
}

static void test_developer_ownership(void **state)
{
	(void)state;
	struct principal dev = who(ROLE_DEVELOPER, PRINCIPAL_USER);
	assert_int_equal(authz_check(&dev, PERM_DEPLOYMENTS_UPDATE, false), AUTHZ_DENY_NOT_OWNER);
	assert_int_equal(authz_check(&dev, PERM_DEPLOYMENTS_UPDATE, true), AUTHZ_OK);
	struct principal key = who(ROLE_DEVELOPER, PRINCIPAL_API_KEY);
	assert_int_equal(authz_check(&key, PERM_DEPLOYMENTS_UPDATE, false), AUTHZ_DENY_NOT_OWNER);
	/* ownership never lifts a role the matrix refuses */
	struct principal ro = who(ROLE_READONLY, PRINCIPAL_USER);
	assert_int_equal(authz_check(&ro, PERM_DEPLOYMENTS_UPDATE, true), AUTHZ_DENY_ROLE);
	assert_int_equal(authz_check(&dev, PERM_DEPLOYMENTS_DELETE, true), AUTHZ_DENY_ROLE);
	/* Admin and Operator update anyone's deployment */
	struct principal op = who(ROLE_OPERATOR, PRINCIPAL_USER);
	assert_int_equal(authz_check(&op, PERM_DEPLOYMENTS_UPDATE, false), AUTHZ_OK);
	struct principal ad = who(ROLE_ADMIN, PRINCIPAL_USER);
	assert_int_equal(authz_check(&ad, PERM_DEPLOYMENTS_UPDATE, false), AUTHZ_OK);
}

static void test_default_deny(void **state)
{
	(void)state;
	/* no role: nothing but public routes */
	struct principal none = who(ROLE_NONE, PRINCIPAL_USER);
	for (int perm = PERM_INVALID; perm < PERM_COUNT; perm++) {
		enum authz_reason got = authz_check(&none, (enum perm_id)perm, true);
		if ((perm == PERM_PUBLIC) != (got == AUTHZ_OK))
			fail_msg("ROLE_NONE on %s: %s", authz_perm_name((enum perm_id)perm),
				 authz_reason_name(got));
	}
	/* an undeclared or out-of-range permission is refused to everyone */
	const enum role all[] = {ROLE_READONLY, ROLE_DEVELOPER, ROLE_OPERATOR, ROLE_ADMIN,
				 ROLE_PLATFORM_ADMIN};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		struct principal p = who(all[i], PRINCIPAL_USER);
		assert_int_not_equal(authz_check(&p, PERM_INVALID, true), AUTHZ_OK);
		assert_int_not_equal(authz_check(&p, PERM_COUNT, true), AUTHZ_OK);
		assert_int_not_equal(authz_check(&p, (enum perm_id)(PERM_COUNT + 100), true), AUTHZ_OK);
		assert_false(authz_role_has(all[i], PERM_INVALID));
	}
	/* an out-of-range role is refused */
	struct principal bogus = who(ROLE_ADMIN, PRINCIPAL_USER);
	bogus.role = (enum role)(ROLE_PLATFORM_ADMIN + 1);
	assert_int_not_equal(authz_check(&bogus, PERM_DEPLOYMENTS_VIEW, true), AUTHZ_OK);
	bogus.role = (enum role)40;
	assert_int_not_equal(authz_check(&bogus, PERM_TENANT_SETTINGS, true), AUTHZ_OK);
	assert_false(authz_role_has((enum role)40, PERM_TENANT_SETTINGS));
}

static void test_roles(void **state)
{
	(void)state;
	const struct {
		enum role r;
		const char *name;
		bool tenant;
	} roles[] = {
		{ROLE_ADMIN, "admin", true},
		{ROLE_OPERATOR, "operator", true},
		{ROLE_DEVELOPER, "developer", true},
		{ROLE_READONLY, "readonly", true},
		{ROLE_PLATFORM_ADMIN, "platform_admin", false},
	};
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		assert_string_equal(role_name(roles[i].r), roles[i].name);
		assert_int_equal(role_parse(roles[i].name), roles[i].r);
		assert_int_equal(role_parse(role_name(roles[i].r)), roles[i].r);
		assert_int_equal(role_is_tenant_role(roles[i].r), roles[i].tenant);
	}
	const char *bad[] = {"", "Admin", "ADMIN", "admin ", " admin", "root", "read-only",
			     "platform-admin", "adminx"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(role_parse(bad[i]), ROLE_NONE);
	assert_false(role_is_tenant_role(ROLE_NONE));
	assert_string_equal(role_name(ROLE_NONE), "");
	assert_string_equal(role_name((enum role)99), "");
}

static void test_names(void **state)
{
	(void)state;
	/* every permission has a distinct name; invalid ones are "invalid" */
	for (int a = PERM_INVALID + 1; a < PERM_COUNT; a++) {
		const char *na = authz_perm_name((enum perm_id)a);
		assert_non_null(na);
		assert_string_not_equal(na, "invalid");
		for (int b = a + 1; b < PERM_COUNT; b++)
			assert_string_not_equal(na, authz_perm_name((enum perm_id)b));
	}
	assert_string_equal(authz_perm_name(PERM_INVALID), "invalid");
	assert_string_equal(authz_perm_name(PERM_COUNT), "invalid");
	assert_string_equal(authz_perm_name(PERM_DEPLOYMENTS_VIEW), "deployments:view");
	assert_string_equal(authz_reason_name(AUTHZ_DENY_ROLE), "role");
	assert_string_equal(authz_reason_name(AUTHZ_DENY_NOT_OWNER), "not_owner");
	assert_string_equal(authz_reason_name(AUTHZ_DENY_PLATFORM_BOUNDARY), "platform_boundary");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_covers_every_permission),
		cmocka_unit_test(test_matrix),
		cmocka_unit_test(test_platform_admin),
		cmocka_unit_test(test_developer_ownership),
		cmocka_unit_test(test_default_deny),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
