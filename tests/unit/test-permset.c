/*
 * test-permset.c — permission sets (SPEC §3) without a store: set names,
 * path patterns and matching, strict rule parsing, the deny-over-allow
 * evaluation, and authz_decide's decision order per role, including the
 * recovery rules (a deny never applies to PERM_AUTHENTICATED routes, nor to
 * an Admin on PERM_TENANT_SETTINGS, so a tenant can always repair its sets).
 *
 * Rule fields are read by name only (effect, method, path, set): their
 * storage belongs to permset.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authz/authz.h"
#include "authz/permset.h"
#include "core/err.h"

#define ERRLEN 160

/* Parses JSON text (fails the test on a syntax error in the test itself). */
static json_t *js(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
	if (!v)
		fail_msg("bad JSON in the test: %s (%s)", text, e.text);
	return v;
}

/* Rules parsed by parse_ok, freed by the teardown even when a test fails. */
static struct permset_rules *owned[32];
static size_t nowned;

static int free_owned(void **state)
{
	(void)state;
	for (size_t i = 0; i < nowned; i++) {
		permset_rules_done(owned[i]);
		free(owned[i]);
	}
	nowned = 0;
	return 0;
}

/* A zeroed struct for permset_rules_parse to fill, freed by the teardown. */
static struct permset_rules *owned_new(void)
{
	assert_true(nowned < sizeof(owned) / sizeof(owned[0]));
	struct permset_rules *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	owned[nowned++] = r;
	return r;
}

/* Rules of set `set` from JSON text; fails the test unless they parse. */
static struct permset_rules *parse_ok(const char *text, const char *set)
{
	struct permset_rules *out = owned_new();
	json_t *v = js(text);
	char err[ERRLEN] = "";
	int rc = permset_rules_parse(v, set, out, err, sizeof(err));
	json_decref(v); /* the rules must not point into the JSON */
	if (rc != 0)
		fail_msg("permset_rules_parse refused %s: %d %s", text, rc, err);
	return out;
}

/* ---- names ------------------------------------------------------------- */

static void test_name_validate(void **state)
{
	(void)state;
	char max[PERMSET_NAME_MAX + 2];
	memset(max, 'a', sizeof(max));
	max[PERMSET_NAME_MAX] = '\0';
	assert_int_equal(permset_name_validate(max), 0);
	max[PERMSET_NAME_MAX] = 'a';
	max[PERMSET_NAME_MAX + 1] = '\0';
	assert_int_equal(permset_name_validate(max), ODX_EINVAL);

	const char *good[] = {"a", "ops", "ops-team", "0day", "a-", "read-only-2"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (permset_name_validate(good[i]) != 0)
			fail_msg("name '%s' refused", good[i]);
	const char *bad[] = {"",	 "-ops",     "Ops",   "ops_team",
			     "ops team", "ops.team", "ops/x", "\xc3\xa9t\xc3\xa9",
			     "ops\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (permset_name_validate(bad[i]) != ODX_EINVAL)
			fail_msg("name '%s' accepted", bad[i]);
}

/* ---- patterns ---------------------------------------------------------- */

static void test_pattern_validate(void **state)
{
	(void)state;
	const char *good[] = {
	    "/v1/users", "/v1/users/*",	  "/v1/**",    "/v1/deployments/*/scale", "/*", "/**",
	    "/v1/*/*",	 "/v1/a-b_c.d~e", "/V1/Users",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (permset_pattern_validate(good[i]) != 0)
			fail_msg("pattern '%s' refused", good[i]);
	const char *bad[] = {
	    "",	       "/",	    "v1/x",	"/v1//x",	"/v1/x/",  "/v1/**/x",
	    "/v1/a b", "/v1/%2F",   "/v1/***",	"//",		"/v1/a*",  "/v1/*a",
	    "/v1/**a", "/v1/x?y=1", "/v1/x#y",	"/v1/\xc3\xa9", "/v1/\tx", "/**/**",
	    "*",       "**",	    "/v1/x\\y",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (permset_pattern_validate(bad[i]) != ODX_EINVAL)
			fail_msg("pattern '%s' accepted", bad[i]);

	/* PERMSET_PATH_MAX counts the NUL: 255 characters pass, 256 and more do not */
	char p[PERMSET_PATH_MAX + 8];
	memset(p, 'a', sizeof(p));
	p[0] = '/';
	p[PERMSET_PATH_MAX - 1] = '\0';
	assert_int_equal(permset_pattern_validate(p), 0);
	p[PERMSET_PATH_MAX - 1] = 'a';
	p[PERMSET_PATH_MAX] = '\0';
	assert_int_equal(permset_pattern_validate(p), ODX_EINVAL);
	p[PERMSET_PATH_MAX] = 'a';
	p[PERMSET_PATH_MAX + 7] = '\0';
	assert_int_equal(permset_pattern_validate(p), ODX_EINVAL);
}

static void test_path_match(void **state)
{
	(void)state;
	static const struct {
		const char *pattern, *path;
		bool match;
	} t[] = {
	    /* literal */
	    {"/v1/users", "/v1/users", true},
	    {"/v1/users", "/v1/Users", false}, /* case-sensitive */
	    {"/v1/users", "/V1/users", false},
	    {"/V1/Users", "/V1/Users", true},
	    {"/v1/users", "/v1/user", false},
	    {"/v1/users", "/v1/usersx", false},
	    {"/v1/users", "/v1", false},	  /* path shorter */
	    {"/v1/users", "/v1/users/u1", false}, /* path longer */
	    {"/v1/users", "/v1/users/", false},	  /* trailing slash */
	    {"/v1/users", "/v1/users//", false},
	    {"/v1/users", "v1/users", false},
	    {"/v1/users", "", false},
	    {"/v1/users", "/", false},
	    /* `*`: exactly one non-empty segment */
	    {"/v1/users/*", "/v1/users/u1", true},
	    {"/v1/users/*", "/v1/users/*", true},
	    {"/v1/users/*", "/v1/users", false},
	    {"/v1/users/*", "/v1/users/", false},
	    {"/v1/users/*", "/v1/users/u1/", false},
	    {"/v1/users/*", "/v1/users/u1/keys", false},
	    {"/v1/users/*", "/v1/keys/u1", false},
	    {"/v1/deployments/*/scale", "/v1/deployments/d1/scale", true},
	    {"/v1/deployments/*/scale", "/v1/deployments/d1/Scale", false},
	    {"/v1/deployments/*/scale", "/v1/deployments//scale", false},
	    {"/v1/deployments/*/scale", "/v1/deployments/d1/x/scale", false},
	    {"/v1/deployments/*/scale", "/v1/deployments/d1/scale/", false},
	    {"/v1/deployments/*/scale", "/v1/deployments/d1/scale/x", false},
	    {"/v1/deployments/*/scale", "/v1/deployments/d1", false},
	    {"/v1/*/*", "/v1/a/b", true},
	    {"/v1/*/*", "/v1/a", false},
	    {"/*", "/v1", true},
	    {"/*", "/v1/x", false},
	    {"/*", "/", false},
	    /* `**`: one or more segments */
	    {"/v1/**", "/v1/a", true},
	    {"/v1/**", "/v1/a/b/c", true},
	    {"/v1/**", "/v1", false},
	    {"/v1/**", "/v1/", false},
	    {"/v1/**", "/v2/a", false},
	    {"/v1/**", "/v10/a", false},
	    {"/v1/**", "/V1/a", false},
	    {"/v1/deployments/**", "/v1/deployments", false},
	    {"/v1/deployments/**", "/v1/deployments/d1/scale", true},
	    {"/**", "/v1", true},
	    {"/**", "/v1/users/u1", true},
	    {"/**", "/", false},
	    {"/**", "", false},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (permset_path_match(t[i].pattern, t[i].path) != t[i].match)
			fail_msg("'%s' vs '%s': got %d, want %d", t[i].pattern, t[i].path,
				 !t[i].match, t[i].match);
}

/* ---- parsing ----------------------------------------------------------- */

static void test_rules_parse_ok(void **state)
{
	(void)state;
	/* the set name and the JSON both go away before the rules are read */
	char set[PERMSET_NAME_MAX + 1];
	memset(set, 'x', PERMSET_NAME_MAX);
	set[PERMSET_NAME_MAX] = '\0';
	struct permset_rules *r = parse_ok(
	    "[{\"effect\": \"allow\", \"method\": \"GET\", \"path\": \"/v1/deployments/**\"},"
	    " {\"path\": \"/v1/secrets/*\", \"effect\": \"deny\", \"method\": \"*\"},"
	    " {\"effect\": \"allow\", \"method\": \"DELETE\", \"path\": \"/v1/users/*\"}]",
	    set);
	memset(set, 'y', PERMSET_NAME_MAX);
	assert_int_equal(r->n, 3);
	assert_int_equal(r->rules[0].effect, PERMSET_ALLOW);
	assert_string_equal(r->rules[0].method, "GET");
	assert_string_equal(r->rules[0].path, "/v1/deployments/**");
	assert_int_equal(r->rules[1].effect, PERMSET_DENY);
	assert_string_equal(r->rules[1].method, "*");
	assert_string_equal(r->rules[1].path, "/v1/secrets/*");
	assert_int_equal(r->rules[2].effect, PERMSET_ALLOW);
	assert_string_equal(r->rules[2].method, "DELETE");
	assert_string_equal(r->rules[2].path, "/v1/users/*");
	for (size_t i = 0; i < r->n; i++) {
		assert_int_equal(strlen(r->rules[i].set), PERMSET_NAME_MAX);
		assert_int_equal(strspn(r->rules[i].set, "x"), PERMSET_NAME_MAX);
	}

	/* every method, a 255-character path */
	const char *methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "*"};
	char path[PERMSET_PATH_MAX];
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	path[PERMSET_PATH_MAX - 1] = '\0';
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		json_t *v = json_pack("[{s:s, s:s, s:s}]", "effect", "deny", "method", methods[i],
				      "path", path);
		char err[ERRLEN] = "";
		r = owned_new();
		assert_int_equal(permset_rules_parse(v, "m", r, err, sizeof(err)), 0);
		json_decref(v);
		assert_int_equal(r->n, 1);
		assert_string_equal(r->rules[0].method, methods[i]);
		assert_string_equal(r->rules[0].path, path);
		assert_string_equal(r->rules[0].set, "m");
	}

	/* an empty set is a set */
	r = parse_ok("[]", "empty");
	assert_int_equal(r->n, 0);

	/* exactly PERMSET_MAX_RULES */
	json_t *many = json_array();
	for (int i = 0; i < PERMSET_MAX_RULES; i++)
		json_array_append_new(many, json_pack("{s:s, s:s, s:s}", "effect", "allow",
						      "method", "GET", "path", "/v1/*"));
	char err[ERRLEN] = "";
	r = owned_new();
	assert_int_equal(permset_rules_parse(many, "many", r, err, sizeof(err)), 0);
	json_decref(many);
	assert_int_equal(r->n, PERMSET_MAX_RULES);
	assert_string_equal(r->rules[PERMSET_MAX_RULES - 1].path, "/v1/*");

	/* done on a zeroed struct is a no-op (the per-thread cache relies on it) */
	struct permset_rules z;
	memset(&z, 0, sizeof(z));
	permset_rules_done(&z);
}

/* Expects ODX_EINVAL with exactly `want`, and *out untouched. */
static void parse_refused(json_t *v, const char *want)
{
	struct permset_rules r;
	memset(&r, 0x5a, sizeof(r));
	struct permset_rules before = r;
	char err[ERRLEN];
	memset(err, 'X', sizeof(err));
	int rc = permset_rules_parse(v, "s", &r, err, sizeof(err));
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (rc != ODX_EINVAL)
		fail_msg("rc %d for %s", rc, text);
	if (memchr(err, '\0', sizeof(err)) == NULL)
		fail_msg("unterminated message for %s", text);
	if (strcmp(err, want) != 0)
		fail_msg("for %s: message '%s', want '%s'", text, err, want);
	if (memcmp(&r, &before, sizeof(r)) != 0)
		fail_msg("output written on failure for %s", text);
	free(text);
	json_decref(v);
}

#define MSG_ARRAY  "rules must be an array of at most 100 rules"
#define MSG_KEYS   ": needs exactly effect, method and path"
#define MSG_EFFECT ": effect must be allow or deny"
#define MSG_METHOD ": method must be GET, POST, PUT, PATCH, DELETE or *"
#define MSG_PATH   ": path must be /segments, with * for one segment and ** only last"

#define GOOD "{\"effect\": \"allow\", \"method\": \"GET\", \"path\": \"/v1/x\"}"

static void test_rules_parse_refused(void **state)
{
	(void)state;
	/* not an array */
	parse_refused(js("{\"effect\": \"allow\", \"method\": \"GET\", \"path\": \"/v1/x\"}"),
		      MSG_ARRAY);
	parse_refused(js("\"[]\""), MSG_ARRAY);
	parse_refused(js("null"), MSG_ARRAY);
	parse_refused(js("7"), MSG_ARRAY);
	parse_refused(js("{\"rules\": []}"), MSG_ARRAY);

	/* more than PERMSET_MAX_RULES */
	json_t *many = json_array();
	for (int i = 0; i < PERMSET_MAX_RULES + 1; i++)
		json_array_append_new(many, js(GOOD));
	parse_refused(many, MSG_ARRAY);

	/* a rule that is not an object, at index 0 and 2 */
	parse_refused(js("[\"allow GET /v1/x\"]"), "rule 0" MSG_KEYS);
	parse_refused(js("[" GOOD ", " GOOD ", [\"allow\", \"GET\", \"/v1/x\"]]"),
		      "rule 2" MSG_KEYS);
	parse_refused(js("[" GOOD ", null]"), "rule 1" MSG_KEYS);

	/* strict keys: missing, extra, wrong type, wrong case */
	parse_refused(js("[" GOOD ", {\"effect\": \"allow\", \"method\": \"GET\"}]"),
		      "rule 1" MSG_KEYS);
	parse_refused(js("[{\"effect\": \"allow\", \"method\": \"GET\", \"path\": \"/v1/x\", "
			 "\"note\": \"hi\"}]"),
		      "rule 0" MSG_KEYS);
	parse_refused(js("[" GOOD ", " GOOD ", " GOOD ", {\"effect\": \"allow\", \"method\": "
			 "\"GET\", \"path\": \"/v1/x\", \"set\": \"other\"}]"),
		      "rule 3" MSG_KEYS);
	parse_refused(js("[{\"effect\": \"allow\", \"method\": \"GET\", \"path\": 1}]"),
		      "rule 0" MSG_KEYS);
	parse_refused(js("[{\"effect\": true, \"method\": \"GET\", \"path\": \"/v1/x\"}]"),
		      "rule 0" MSG_KEYS);
	parse_refused(js("[{\"effect\": \"allow\", \"method\": [\"GET\"], \"path\": \"/v1/x\"}]"),
		      "rule 0" MSG_KEYS);
	parse_refused(js("[{\"Effect\": \"allow\", \"method\": \"GET\", \"path\": \"/v1/x\"}]"),
		      "rule 0" MSG_KEYS);
	parse_refused(js("[{}]"), "rule 0" MSG_KEYS);

	/* effect */
	const char *effects[] = {"Allow", "DENY", "permit", "", "allow ", "al"};
	for (size_t i = 0; i < sizeof(effects) / sizeof(effects[0]); i++)
		parse_refused(json_pack("[o, {s:s, s:s, s:s}]", js(GOOD), "effect", effects[i],
					"method", "GET", "path", "/v1/x"),
			      "rule 1" MSG_EFFECT);

	/* method */
	const char *methods[] = {"get", "HEAD", "OPTIONS", "", "GETX", "**", "GET ", "CONNECT"};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		parse_refused(json_pack("[{s:s, s:s, s:s}]", "effect", "deny", "method", methods[i],
					"path", "/v1/x"),
			      "rule 0" MSG_METHOD);

	/* path */
	const char *paths[] = {"",	   "/",	      "v1/x",	 "/v1//x", "/v1/x/",
			       "/v1/**/x", "/v1/a b", "/v1/%2F", "/v1/***"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		parse_refused(json_pack("[o, o, {s:s, s:s, s:s}]", js(GOOD), js(GOOD), "effect",
					"allow", "method", "GET", "path", paths[i]),
			      "rule 2" MSG_PATH);
	char longp[PERMSET_PATH_MAX + 1];
	memset(longp, 'a', sizeof(longp));
	longp[0] = '/';
	longp[PERMSET_PATH_MAX] = '\0';
	parse_refused(
	    json_pack("[{s:s, s:s, s:s}]", "effect", "allow", "method", "GET", "path", longp),
	    "rule 0" MSG_PATH);
}

static void test_rules_parse_err_bounded(void **state)
{
	(void)state;
	/* the message respects errlen */
	char buf[64];
	memset(buf, 'X', sizeof(buf));
	struct permset_rules r;
	json_t *v =
	    js("[" GOOD ", {\"effect\": \"maybe\", \"method\": \"GET\", \"path\": \"/v1\"}]");
	assert_int_equal(permset_rules_parse(v, "s", &r, buf, 10), ODX_EINVAL);
	json_decref(v);
	assert_string_equal(buf, "rule 1: e");
	for (size_t i = 10; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'X');
}

/* ---- evaluation -------------------------------------------------------- */

/* Evaluates and checks the effect and, unless NONE, the deciding set. */
static void expect_eval(const struct permset_rules *r, const char *method, const char *path,
			enum permset_effect want, const char *want_set)
{
	const char *sentinel = "untouched";
	const char *set = sentinel;
	enum permset_effect got = permset_evaluate(r, method, path, &set);
	if (got != want)
		fail_msg("%s %s: effect %d, want %d", method, path, got, want);
	if (want == PERMSET_NONE) {
		if (set != sentinel)
			fail_msg("%s %s: *set written without a decision", method, path);
	} else if (!set || strcmp(set, want_set) != 0) {
		fail_msg("%s %s: set '%s', want '%s'", method, path, set ? set : "(null)",
			 want_set);
	}
}

static void test_evaluate_one_set(void **state)
{
	(void)state;
	struct permset_rules *allow_first, *deny_first, *empty;
	allow_first = parse_ok(
	    "[{\"effect\": \"allow\", \"method\": \"GET\", \"path\": \"/v1/deployments/**\"},"
	    " {\"effect\": \"deny\", \"method\": \"GET\", \"path\": \"/v1/deployments/*/logs\"}]",
	    "ops");
	deny_first = parse_ok(
	    "[{\"effect\": \"deny\", \"method\": \"GET\", \"path\": \"/v1/deployments/*/logs\"},"
	    " {\"effect\": \"allow\", \"method\": \"GET\", \"path\": \"/v1/deployments/**\"}]",
	    "ops");
	const struct permset_rules *both[] = {allow_first, deny_first};
	for (int i = 0; i < 2; i++) {
		const struct permset_rules *r = both[i];
		/* deny wins over a matching allow, whichever comes first */
		expect_eval(r, "GET", "/v1/deployments/d1/logs", PERMSET_DENY, "ops");
		/* the allow alone */
		expect_eval(r, "GET", "/v1/deployments/d1", PERMSET_ALLOW, "ops");
		expect_eval(r, "GET", "/v1/deployments/d1/scale", PERMSET_ALLOW, "ops");
		/* other methods and paths: no decision */
		expect_eval(r, "POST", "/v1/deployments/d1/logs", PERMSET_NONE, NULL);
		expect_eval(r, "DELETE", "/v1/deployments/d1", PERMSET_NONE, NULL);
		expect_eval(r, "GET", "/v1/deployments", PERMSET_NONE, NULL);
		expect_eval(r, "GET", "/v1/secrets", PERMSET_NONE, NULL);
		expect_eval(r, "get", "/v1/deployments/d1", PERMSET_NONE, NULL);
	}

	empty = parse_ok("[]", "none");
	expect_eval(empty, "GET", "/v1/deployments", PERMSET_NONE, NULL);
}

static void test_evaluate_methods(void **state)
{
	(void)state;
	struct permset_rules *r;
	/* method "*" denies every method; a specific method only itself */
	r = parse_ok(
	    "[{\"effect\": \"allow\", \"method\": \"*\", \"path\": \"/v1/secrets/**\"},"
	    " {\"effect\": \"deny\", \"method\": \"*\", \"path\": \"/v1/secrets/*/versions\"},"
	    " {\"effect\": \"deny\", \"method\": \"DELETE\", \"path\": \"/v1/secrets/*\"},"
	    " {\"effect\": \"allow\", \"method\": \"POST\", \"path\": \"/v1/incidents/*/ack\"}]",
	    "sec");
	const char *all[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
	for (size_t i = 0; i < 5; i++) {
		expect_eval(r, all[i], "/v1/secrets/s1/versions", PERMSET_DENY, "sec");
		expect_eval(r, all[i], "/v1/secrets/s1/grants", PERMSET_ALLOW, "sec");
		bool del = strcmp(all[i], "DELETE") == 0;
		expect_eval(r, all[i], "/v1/secrets/s1", del ? PERMSET_DENY : PERMSET_ALLOW, "sec");
		bool post = strcmp(all[i], "POST") == 0;
		expect_eval(r, all[i], "/v1/incidents/i1/ack", post ? PERMSET_ALLOW : PERMSET_NONE,
			    "sec");
	}
	/* a request method is never "*" in practice; if it were, only "*" rules match it */
	expect_eval(r, "*", "/v1/incidents/i1/ack", PERMSET_NONE, NULL);
}

/* A subject with several sets: one list holding the rules of each, in order. */
static struct permset_rules merge(const struct permset_rules *a, const struct permset_rules *b,
				  struct permset_rule *buf, size_t cap)
{
	assert_true(a->n + b->n <= cap);
	for (size_t i = 0; i < a->n; i++)
		buf[i] = a->rules[i];
	for (size_t i = 0; i < b->n; i++)
		buf[a->n + i] = b->rules[i];
	struct permset_rules m;
	memset(&m, 0, sizeof(m));
	m.n = a->n + b->n;
	m.rules = buf;
	return m; /* borrows a's and b's strings: never permset_rules_done */
}

static void test_evaluate_across_sets(void **state)
{
	(void)state;
	struct permset_rules *grant, *block;
	grant =
	    parse_ok("[{\"effect\": \"allow\", \"method\": \"*\", \"path\": \"/v1/**\"}]", "grant");
	block = parse_ok(
	    "[{\"effect\": \"allow\", \"method\": \"GET\", \"path\": \"/v1/audit\"},"
	    " {\"effect\": \"deny\", \"method\": \"POST\", \"path\": \"/v1/audit/export\"}]",
	    "block");
	struct permset_rule buf[8];
	struct permset_rules ab = merge(grant, block, buf, 8);
	struct permset_rule buf2[8];
	struct permset_rules ba = merge(block, grant, buf2, 8);
	const struct permset_rules *orders[] = {&ab, &ba};
	for (int i = 0; i < 2; i++) {
		const struct permset_rules *r = orders[i];
		/* one set's deny beats another set's allow, in either order, and names its set */
		expect_eval(r, "POST", "/v1/audit/export", PERMSET_DENY, "block");
		expect_eval(r, "GET", "/v1/audit/export", PERMSET_ALLOW, "grant");
		expect_eval(r, "PUT", "/v1/users/u1", PERMSET_ALLOW, "grant");
		expect_eval(r, "GET", "/v2/users", PERMSET_NONE, NULL);
	}
	/* each set alone */
	expect_eval(block, "POST", "/v1/audit/export", PERMSET_DENY, "block");
	expect_eval(grant, "POST", "/v1/audit/export", PERMSET_ALLOW, "grant");
	expect_eval(block, "GET", "/v1/audit", PERMSET_ALLOW, "block");
}

/* ---- authz_decide ------------------------------------------------------ */

static struct principal who(enum role r)
{
	struct principal p;
	memset(&p, 0, sizeof(p));
	p.kind = PRINCIPAL_USER;
	p.role = r;
	memcpy(p.id, "usr_0123456789abcdef0123456789abcdef", 37);
	if (r != ROLE_PLATFORM_ADMIN)
		memcpy(p.tenant_id, "ten_0123456789abcdef0123456789abcdef", 37);
	return p;
}

static const enum role tenant_roles[] = {ROLE_ADMIN, ROLE_OPERATOR, ROLE_DEVELOPER, ROLE_READONLY};
#define NROLES (sizeof(tenant_roles) / sizeof(tenant_roles[0]))

/* One route per permission, for the calls below. */
static const struct {
	enum perm_id perm;
	const char *method, *path;
} routes[] = {
    {PERM_PUBLIC, "POST", "/v1/auth/login"},
    {PERM_AUTHENTICATED, "GET", "/v1/me"},
    {PERM_PLATFORM, "POST", "/v1/tenants"},
    {PERM_TENANT_MEMBER, "GET", "/v1/quotas"},
    {PERM_DEPLOYMENTS_VIEW, "GET", "/v1/deployments/d1"},
    {PERM_DEPLOYMENTS_CREATE, "POST", "/v1/deployments"},
    {PERM_DEPLOYMENTS_UPDATE, "PATCH", "/v1/deployments/d1"},
    {PERM_DEPLOYMENTS_OPERATE, "POST", "/v1/deployments/d1/scale"},
    {PERM_DEPLOYMENTS_DELETE, "DELETE", "/v1/deployments/d1"},
    {PERM_CONTAINERS_VIEW, "GET", "/v1/containers/c1/logs"},
    {PERM_CONTAINERS_OPERATE, "POST", "/v1/containers/c1/restart"},
    {PERM_CONTAINERS_EXEC, "POST", "/v1/containers/c1/exec"},
    {PERM_INCIDENTS_VIEW, "GET", "/v1/incidents"},
    {PERM_INCIDENTS_ACK, "POST", "/v1/incidents/i1/acknowledge"},
    {PERM_INCIDENTS_RESOLVE, "POST", "/v1/incidents/i1/resolve"},
    {PERM_SCANNER_SCAN, "POST", "/v1/scans"},
    {PERM_SCANNER_VIEW, "GET", "/v1/scans/s1"},
    {PERM_SCANNER_POLICIES, "PUT", "/v1/scanner/policy"},
    {PERM_AUDIT_READ, "GET", "/v1/audit"},
    {PERM_AUDIT_EXPORT, "GET", "/v1/audit/export"},
    {PERM_SECRETS_WRITE, "PUT", "/v1/secrets/db"},
    {PERM_SECRETS_LIST, "GET", "/v1/secrets"},
    {PERM_TENANT_SETTINGS, "PUT", "/v1/permission-sets/ops"},
    {PERM_APPROVALS_DECIDE, "POST", "/v1/approvals/a1/approve"},
    {PERM_AGENT, "POST", "/agent/v1/status"},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static void test_routes_cover_every_permission(void **state)
{
	(void)state;
	for (int perm = PERM_INVALID + 1; perm < PERM_COUNT; perm++) {
		int n = 0;
		for (size_t i = 0; i < NROUTES; i++)
			n += routes[i].perm == (enum perm_id)perm;
		if (n != 1)
			fail_msg("permission %s has %d routes in the test", authz_perm_name(perm),
				 n);
	}
}

/* True when a deny in the caller's sets is ignored (the recovery rules). */
static bool deny_exempt(enum role role, enum perm_id perm)
{
	return perm == PERM_PUBLIC || perm == PERM_AUTHENTICATED ||
	       (perm == PERM_TENANT_SETTINGS && role == ROLE_ADMIN);
}

static void expect_decide(const struct principal *p, enum perm_id perm, bool own,
			  const struct permset_rules *rules, const char *method, const char *path,
			  enum authz_reason want, const char *want_set, const char *what)
{
	const char *set = NULL;
	enum authz_reason got = authz_decide(p, perm, own, rules, method, path, &set);
	if (got != want)
		fail_msg("%s: %s on %s (%s %s): %s, want %s", what, role_name(p->role),
			 authz_perm_name(perm), method, path, authz_reason_name(got),
			 authz_reason_name(want));
	if (want == AUTHZ_DENY_PERMISSION_SET && (!set || strcmp(set, want_set) != 0))
		fail_msg("%s: %s on %s: deciding set '%s', want '%s'", what, role_name(p->role),
			 authz_perm_name(perm), set ? set : "(null)", want_set);
}

/* Every role and route, with rules that match every request: allow, deny, both. */
static void test_decide_order(void **state)
{
	(void)state;
	struct permset_rules *allow_all, *deny_all, *both, *other;
	allow_all =
	    parse_ok("[{\"effect\": \"allow\", \"method\": \"*\", \"path\": \"/**\"}]", "grant");
	deny_all =
	    parse_ok("[{\"effect\": \"deny\", \"method\": \"*\", \"path\": \"/**\"}]", "block");
	both = parse_ok("[{\"effect\": \"allow\", \"method\": \"*\", \"path\": \"/**\"},"
			" {\"effect\": \"deny\", \"method\": \"*\", \"path\": \"/**\"}]",
			"mixed");
	/* rules that never match these routes: the role decides */
	other = parse_ok("[{\"effect\": \"allow\", \"method\": \"*\", \"path\": \"/v2/**\"},"
			 " {\"effect\": \"deny\", \"method\": \"*\", \"path\": \"/v3/**\"}]",
			 "elsewhere");

	for (size_t ri = 0; ri < NROLES; ri++) {
		struct principal p = who(tenant_roles[ri]);
		for (size_t i = 0; i < NROUTES; i++) {
			enum perm_id perm = routes[i].perm;
			const char *m = routes[i].method, *path = routes[i].path;
			for (int own = 0; own <= 1; own++) {
				enum authz_reason role = authz_check(&p, perm, own);
				/* no sets, or sets that do not match: the role matrix */
				expect_decide(&p, perm, own, NULL, m, path, role, NULL, "no sets");
				expect_decide(&p, perm, own, other, m, path, role, NULL,
					      "no match");
				/* an allow beats the role, but never opens the platform nor
				 * the agent API */
				enum authz_reason allowed = perm == PERM_PLATFORM || perm == PERM_AGENT
								? AUTHZ_DENY_ROLE
								: AUTHZ_OK;
				expect_decide(&p, perm, own, allow_all, m, path, allowed, NULL,
					      "allow");
				/* a deny beats the role and the allow, except the recovery rules */
				bool exempt = deny_exempt(p.role, perm);
				expect_decide(&p, perm, own, deny_all, m, path,
					      exempt ? role : AUTHZ_DENY_PERMISSION_SET, "block",
					      "deny");
				expect_decide(&p, perm, own, both, m, path,
					      exempt ? allowed : AUTHZ_DENY_PERMISSION_SET, "mixed",
					      "allow+deny");
			}
		}
	}
}

/* The same order spelled out on a few cells, without loops. */
static void test_decide_examples(void **state)
{
	(void)state;
	struct permset_rules *r;
	r = parse_ok(
	    "[{\"effect\": \"allow\", \"method\": \"DELETE\", \"path\": \"/v1/deployments/*\"},"
	    " {\"effect\": \"deny\", \"method\": \"GET\", \"path\": \"/v1/deployments/*\"},"
	    " {\"effect\": \"allow\", \"method\": \"*\", \"path\": \"/v1/tenants/**\"}]",
	    "tweaks");
	struct principal ro = who(ROLE_READONLY), dev = who(ROLE_DEVELOPER);
	const char *set = NULL;
	/* allow > role: Read-only may delete a deployment */
	assert_int_equal(authz_decide(&ro, PERM_DEPLOYMENTS_DELETE, true, r, "DELETE",
				      "/v1/deployments/d1", &set),
			 AUTHZ_OK);
	/* deny > role: Read-only may no longer view one */
	assert_int_equal(
	    authz_decide(&ro, PERM_DEPLOYMENTS_VIEW, true, r, "GET", "/v1/deployments/d1", &set),
	    AUTHZ_DENY_PERMISSION_SET);
	assert_string_equal(set, "tweaks");
	/* no rule: role > default deny */
	assert_int_equal(
	    authz_decide(&ro, PERM_DEPLOYMENTS_VIEW, true, r, "GET", "/v1/deployments", &set),
	    AUTHZ_OK);
	assert_int_equal(
	    authz_decide(&ro, PERM_DEPLOYMENTS_CREATE, true, r, "POST", "/v1/deployments", &set),
	    AUTHZ_DENY_ROLE);
	/* an allow lifts the ownership limit too (explicit allow > role matrix) */
	assert_int_equal(authz_decide(&dev, PERM_DEPLOYMENTS_UPDATE, false, r, "DELETE",
				      "/v1/deployments/d1", &set),
			 AUTHZ_OK);
	assert_int_equal(authz_decide(&dev, PERM_DEPLOYMENTS_UPDATE, false, r, "PATCH",
				      "/v1/deployments/d1", &set),
			 AUTHZ_DENY_NOT_OWNER);
	/* an allow on a platform path opens nothing */
	assert_int_equal(authz_decide(&dev, PERM_PLATFORM, true, r, "POST", "/v1/tenants/t1", &set),
			 AUTHZ_DENY_ROLE);
}

/* The recovery rules, spelled out. */
static void test_decide_recovery(void **state)
{
	(void)state;
	struct permset_rules *lockout;
	lockout =
	    parse_ok("[{\"effect\": \"deny\", \"method\": \"*\", \"path\": \"/**\"}]", "lockout");
	const char *set = NULL;
	for (size_t ri = 0; ri < NROLES; ri++) {
		struct principal p = who(tenant_roles[ri]);
		/* GET /v1/me and logout stay open to every role */
		assert_int_equal(
		    authz_decide(&p, PERM_AUTHENTICATED, true, lockout, "GET", "/v1/me", &set),
		    AUTHZ_OK);
		assert_int_equal(authz_decide(&p, PERM_AUTHENTICATED, true, lockout, "POST",
					      "/v1/auth/logout", &set),
				 AUTHZ_OK);
		/* but not the tenant's other routes */
		assert_int_equal(
		    authz_decide(&p, PERM_TENANT_MEMBER, true, lockout, "GET", "/v1/quotas", &set),
		    AUTHZ_DENY_PERMISSION_SET);
	}
	struct principal admin = who(ROLE_ADMIN);
	/* an Admin can always repair the sets ... */
	assert_int_equal(authz_decide(&admin, PERM_TENANT_SETTINGS, true, lockout, "PUT",
				      "/v1/permission-sets/lockout", &set),
			 AUTHZ_OK);
	assert_int_equal(authz_decide(&admin, PERM_TENANT_SETTINGS, true, lockout, "DELETE",
				      "/v1/permission-sets/lockout", &set),
			 AUTHZ_OK);
	/* ... but is denied everything else */
	set = NULL;
	assert_int_equal(authz_decide(&admin, PERM_DEPLOYMENTS_VIEW, true, lockout, "GET",
				      "/v1/deployments", &set),
			 AUTHZ_DENY_PERMISSION_SET);
	assert_non_null(set);
	assert_string_equal(set, "lockout");
	assert_int_equal(
	    authz_decide(&admin, PERM_AUDIT_EXPORT, true, lockout, "GET", "/v1/audit/export", &set),
	    AUTHZ_DENY_PERMISSION_SET);
	/* the exemption is the Admin's: an Operator allowed tenant settings by a set is
	 * still stopped by a deny */
	struct permset_rules *op_rules;
	op_rules = parse_ok(
	    "[{\"effect\": \"allow\", \"method\": \"*\", \"path\": \"/v1/permission-sets/**\"},"
	    " {\"effect\": \"deny\", \"method\": \"DELETE\", \"path\": \"/v1/permission-sets/*\"}]",
	    "delegate");
	struct principal op = who(ROLE_OPERATOR);
	assert_int_equal(authz_decide(&op, PERM_TENANT_SETTINGS, true, op_rules, "PUT",
				      "/v1/permission-sets/x", &set),
			 AUTHZ_OK);
	assert_int_equal(authz_decide(&op, PERM_TENANT_SETTINGS, true, op_rules, "DELETE",
				      "/v1/permission-sets/x", &set),
			 AUTHZ_DENY_PERMISSION_SET);
	assert_int_equal(authz_decide(&admin, PERM_TENANT_SETTINGS, true, op_rules, "DELETE",
				      "/v1/permission-sets/x", &set),
			 AUTHZ_OK);
}

/* The platform administrator has no sets; rules passed anyway change nothing. */
static void test_decide_platform_admin(void **state)
{
	(void)state;
	struct permset_rules *allow_all, *deny_all;
	allow_all =
	    parse_ok("[{\"effect\": \"allow\", \"method\": \"*\", \"path\": \"/**\"}]", "grant");
	deny_all =
	    parse_ok("[{\"effect\": \"deny\", \"method\": \"*\", \"path\": \"/**\"}]", "block");
	struct principal pa = who(ROLE_PLATFORM_ADMIN);
	for (size_t i = 0; i < NROUTES; i++) {
		enum perm_id perm = routes[i].perm;
		enum authz_reason want = authz_check(&pa, perm, true);
		/* the platform's own routes (and its own audit records) are open, every
		 * tenant route refused */
		assert_int_equal(want, perm == PERM_PUBLIC || perm == PERM_AUTHENTICATED ||
					       perm == PERM_PLATFORM || perm == PERM_AUDIT_READ ||
					       perm == PERM_AUDIT_EXPORT
					   ? AUTHZ_OK
					   : AUTHZ_DENY_PLATFORM_BOUNDARY);
		expect_decide(&pa, perm, true, NULL, routes[i].method, routes[i].path, want, NULL,
			      "platform, no sets");
		expect_decide(&pa, perm, true, allow_all, routes[i].method, routes[i].path, want,
			      NULL, "platform, allow");
		expect_decide(&pa, perm, true, deny_all, routes[i].method, routes[i].path, want,
			      NULL, "platform, deny");
	}
}

/* An allow is an exception to the matrix, not a way around undeclared routes. */
static void test_decide_invalid_perm(void **state)
{
	(void)state;
	struct permset_rules *allow_all;
	allow_all =
	    parse_ok("[{\"effect\": \"allow\", \"method\": \"*\", \"path\": \"/**\"}]", "grant");
	const enum perm_id bad[] = {PERM_INVALID, PERM_COUNT, (enum perm_id)(PERM_COUNT + 7)};
	for (size_t ri = 0; ri < NROLES; ri++) {
		struct principal p = who(tenant_roles[ri]);
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			const char *set = NULL;
			enum authz_reason got =
			    authz_decide(&p, bad[i], true, allow_all, "GET", "/v1/x", &set);
			if (got == AUTHZ_OK)
				fail_msg("%s: an allow opened undeclared permission %d",
					 role_name(p.role), (int)bad[i]);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_name_validate, free_owned),
	    cmocka_unit_test_teardown(test_pattern_validate, free_owned),
	    cmocka_unit_test_teardown(test_path_match, free_owned),
	    cmocka_unit_test_teardown(test_rules_parse_ok, free_owned),
	    cmocka_unit_test_teardown(test_rules_parse_refused, free_owned),
	    cmocka_unit_test_teardown(test_rules_parse_err_bounded, free_owned),
	    cmocka_unit_test_teardown(test_evaluate_one_set, free_owned),
	    cmocka_unit_test_teardown(test_evaluate_methods, free_owned),
	    cmocka_unit_test_teardown(test_evaluate_across_sets, free_owned),
	    cmocka_unit_test_teardown(test_routes_cover_every_permission, free_owned),
	    cmocka_unit_test_teardown(test_decide_order, free_owned),
	    cmocka_unit_test_teardown(test_decide_examples, free_owned),
	    cmocka_unit_test_teardown(test_decide_recovery, free_owned),
	    cmocka_unit_test_teardown(test_decide_platform_admin, free_owned),
	    cmocka_unit_test_teardown(test_decide_invalid_perm, free_owned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
