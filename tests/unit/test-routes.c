/* test-routes.c — the route table check that makes odysseusd refuse to start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/api.h"
#include "authz/authz.h"
#include "core/err.h"
#include "http/server.h"

static void handler(struct http_exchange *ex)
{
	(void)ex;
}

#define ROUTE(m, p, perm_) {.method = m, .pattern = p, .handler = handler, .perm = perm_}

static int validate(const struct http_route *r, size_t n, char *err, size_t errlen)
{
	err[0] = '\0';
	return http_routes_validate(r, n, err, errlen);
}

static void test_good_table_accepted(void **state)
{
	(void)state;
	const struct http_route ok[] = {
		ROUTE(HTTP_GET, "/healthz", PERM_PUBLIC),
		ROUTE(HTTP_GET, "/v1/users", PERM_TENANT_SETTINGS),
		ROUTE(HTTP_POST, "/v1/users", PERM_TENANT_SETTINGS), /* same path, other method */
		ROUTE(HTTP_GET, "/v1/users/{id}", PERM_TENANT_SETTINGS),
		ROUTE(HTTP_PUT, "/v1/tenants/{id}/quotas", PERM_PLATFORM),
		ROUTE(HTTP_POST, "/v1/a/{b}/c/{d}/e/{f}/g/{h}", PERM_AUTHENTICATED),
		ROUTE(HTTP_DELETE, "/", PERM_PLATFORM),
	};
	char err[256];
	assert_int_equal(validate(ok, sizeof(ok) / sizeof(ok[0]), err, sizeof(err)), 0);
	assert_int_equal(validate(ok, 0, err, sizeof(err)), 0);
}

static void test_perm_zero_refused(void **state)
{
	(void)state;
	const struct http_route bad[] = {
		ROUTE(HTTP_GET, "/healthz", PERM_PUBLIC),
		ROUTE(HTTP_GET, "/v1/secret", 0),
	};
	char err[256];
	assert_int_equal(validate(bad, 2, err, sizeof(err)), ODX_EINVAL);
	assert_non_null(strstr(err, "/v1/secret")); /* the message names the route */
	const struct http_route neg[] = {ROUTE(HTTP_GET, "/v1/x", -1)};
	assert_int_equal(validate(neg, 1, err, sizeof(err)), ODX_EINVAL);
}

static void test_duplicate_refused(void **state)
{
	(void)state;
	const struct http_route dup[] = {
		ROUTE(HTTP_GET, "/v1/users", PERM_TENANT_SETTINGS),
		ROUTE(HTTP_POST, "/v1/users", PERM_TENANT_SETTINGS),
		ROUTE(HTTP_GET, "/v1/users", PERM_PUBLIC),
	};
	char err[256];
	assert_int_equal(validate(dup, 3, err, sizeof(err)), ODX_EINVAL);
	assert_non_null(strstr(err, "/v1/users"));
}

static void test_malformed_patterns_refused(void **state)
{
	(void)state;
	const char *bad[] = {
		"v1/x", "/v1//x", "/v1/{", "/v1/{}", "/a{id}", "", "//", "/v1/x//",
		"/v1/{id}x", "/v1/{id", "/v1/id}", "/v1/}", "/v1/{a}{b}",
		"/{a}/{b}/{c}/{d}/{e}", /* more parameters than HTTP_MAX_PARAMS */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct http_route r[] = {
			ROUTE(HTTP_GET, "/healthz", PERM_PUBLIC),
			ROUTE(HTTP_GET, bad[i], PERM_PUBLIC),
		};
		char err[256];
		int rc = validate(r, 2, err, sizeof(err));
		if (rc != ODX_EINVAL)
			fail_msg("pattern '%s' accepted (rc %d)", bad[i], rc);
		assert_true(err[0] != '\0');
	}
	/* a missing handler, pattern or method */
	const struct http_route nohandler[] = {{.method = HTTP_GET, .pattern = "/v1/x", .handler = NULL, .perm = PERM_PUBLIC}};
	const struct http_route nopattern[] = {{.method = HTTP_GET, .pattern = NULL, .handler = handler, .perm = PERM_PUBLIC}};
	const struct http_route nomethod[] = {{.method = 0, .pattern = "/v1/x", .handler = handler, .perm = PERM_PUBLIC}};
	const struct http_route badmethod[] = {{.method = (enum http_method)77, .pattern = "/v1/x", .handler = handler, .perm = PERM_PUBLIC}};
	char err[256];
	assert_int_equal(validate(nohandler, 1, err, sizeof(err)), ODX_EINVAL);
	assert_int_equal(validate(nopattern, 1, err, sizeof(err)), ODX_EINVAL);
	assert_int_equal(validate(nomethod, 1, err, sizeof(err)), ODX_EINVAL);
	assert_int_equal(validate(badmethod, 1, err, sizeof(err)), ODX_EINVAL);
}

static void test_parameter_names(void **state)
{
	(void)state;
	/* a parameter is one segment: its name cannot hold '/' or another '{' */
	const char *bad[] = {"/v1/{a/b}", "/v1/{a{b}", "/v1/{a/}/x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct http_route r[] = {ROUTE(HTTP_GET, bad[i], PERM_PUBLIC)};
		char err[256];
		int rc = validate(r, 1, err, sizeof(err));
		if (rc != ODX_EINVAL)
			fail_msg("pattern '%s' accepted (rc %d)", bad[i], rc);
	}
}

static void test_real_table(void **state)
{
	(void)state;
	char err[256];
	int rc = validate(api_routes, api_nroutes, err, sizeof(err));
	if (rc != 0)
		fail_msg("api_routes refused: %s", err);
	assert_true(api_nroutes > 0);
	/* every route declares a permission that exists */
	for (size_t i = 0; i < api_nroutes; i++) {
		assert_true(api_routes[i].perm > PERM_INVALID);
		assert_true(api_routes[i].perm < PERM_COUNT);
		assert_non_null(api_routes[i].handler);
		/* Only the scan import takes more than the default (a report pair). */
		if (api_routes[i].handler != api_scans_import)
			assert_true(api_routes[i].max_body <= HTTP_MAX_BODY);
		else
			assert_int_equal(api_routes[i].max_body, API_SCAN_IMPORT_MAX_BODY);
	}
}

static void test_method_names(void **state)
{
	(void)state;
	assert_string_equal(http_method_name(HTTP_GET), "GET");
	assert_string_equal(http_method_name(HTTP_POST), "POST");
	assert_string_equal(http_method_name(HTTP_PUT), "PUT");
	assert_string_equal(http_method_name(HTTP_PATCH), "PATCH");
	assert_string_equal(http_method_name(HTTP_DELETE), "DELETE");
	assert_string_equal(http_method_name((enum http_method)0), "");
	assert_string_equal(http_method_name((enum http_method)99), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_table_accepted),
		cmocka_unit_test(test_perm_zero_refused),
		cmocka_unit_test(test_duplicate_refused),
		cmocka_unit_test(test_malformed_patterns_refused),
		cmocka_unit_test(test_parameter_names),
		cmocka_unit_test(test_real_table),
		cmocka_unit_test(test_method_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
