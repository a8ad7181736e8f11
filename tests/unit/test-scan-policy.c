/*
 * test-scan-policy.c — gating policies (SPEC §7): each rule blocks exactly
 * where it should (block_critical at 0/1 critical, max_high at N/N+1 highs),
 * image scope with normalised references, exceptions before and after
 * expiry, disabled policies, fail-closed without a scan, several policies,
 * the verdict's shape, and strict parsing (each refusal on its own).
 * Reports are built by hand in a model.h arena.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/timeutil.h"
#include "scan/policy.h"

/* ---- helpers ---- */

static json_t *js(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, 0, &e);
	if (!v)
		fail_msg("bad JSON in the test: %s (%s)", text, e.text);
	return v;
}

static int64_t unix_at(const char *rfc3339)
{
	int64_t ns;
	assert_int_equal(time_parse_rfc3339(rfc3339, &ns), 0);
	return ns / NSEC_PER_SEC;
}

/* Policies and reports made by a test, freed by the teardown even when it fails. */
static struct scan_policy *owned[16];
static size_t nowned;
static struct scan_report *reports[4];
static size_t nreports;
static json_t *verdict;

static int teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < nowned; i++)
		scan_policy_free(owned[i]);
	for (size_t i = 0; i < nreports; i++)
		scan_report_free(reports[i]);
	json_decref(verdict);
	verdict = NULL;
	nowned = nreports = 0;
	return 0;
}

static struct scan_policy *parse_ok(const char *text, const char *path_name)
{
	json_t *body = js(text);
	struct scan_policy *p = NULL;
	char msg[JSONX_MSG_LEN] = "";
	int rc = scan_policy_parse(body, path_name, &p, msg);
	json_decref(body);
	if (rc != 0)
		fail_msg("refused %s: %s", text, msg);
	assert_true(nowned < sizeof(owned) / sizeof(owned[0]));
	owned[nowned++] = p;
	return p;
}

/* Expects ODX_EINVAL, *out untouched, a message that does not quote the marker value. */
static void parse_bad(const char *text, const char *path_name)
{
	json_t *body = js(text);
	struct scan_policy *p = (struct scan_policy *)(uintptr_t)0x1;
	char msg[JSONX_MSG_LEN] = "";
	int rc = scan_policy_parse(body, path_name, &p, msg);
	json_decref(body);
	if (rc != ODX_EINVAL)
		fail_msg("accepted (rc %d): %s", rc, text);
	assert_ptr_equal(p, (struct scan_policy *)(uintptr_t)0x1);
	assert_true(msg[0] != '\0');
	assert_null(strstr(msg, "MARKER"));
}

/* A report with room for cap findings. */
static struct scan_report *report(size_t cap)
{
	struct scan_report *r = scan_report_new();
	assert_non_null(r);
	assert_true(nreports < sizeof(reports) / sizeof(reports[0]));
	reports[nreports++] = r;
	r->findings = scan_alloc(r, cap * sizeof(*r->findings));
	assert_non_null(r->findings);
	return r;
}

/* Adds a finding with id (and alias when not NULL) of severity sev. */
static struct scan_finding *add(struct scan_report *r, const char *id, const char *alias,
				enum scan_severity sev)
{
	struct scan_finding *f = &r->findings[r->nfindings++];
	const char **aliases = scan_alloc(r, 2 * sizeof(*aliases));
	const char **fixed = scan_alloc(r, sizeof(*fixed));
	assert_non_null(aliases);
	assert_non_null(fixed);
	f->id = scan_strdup(r, id);
	aliases[0] = f->id;
	if (alias)
		aliases[1] = scan_strdup(r, alias);
	f->aliases = aliases;
	f->naliases = alias ? 2 : 1;
	f->severity = sev;
	f->pkg.name = "openssl";
	f->pkg.version = "3.0.11-1~deb12u2";
	f->pkg.type = "deb";
	fixed[0] = "3.0.18-1~deb12u2";
	f->fixed_versions = fixed;
	f->nfixed = 1;
	f->epss = f->epss_percentile = -1;
	f->engines = SCAN_ENGINE_BIT(SCAN_ENGINE_TRIVY) | SCAN_ENGINE_BIT(SCAN_ENGINE_GRYPE);
	return f;
}

static const int64_t NOW = 1794700800; /* 2026-11-15T00:00:00Z */

/* Evaluates, keeps the verdict for the teardown, returns the result. */
static int eval(const struct scan_policy *const *p, size_t n, const char *image,
		const struct scan_report *r)
{
	json_decref(verdict);
	verdict = NULL;
	int rc = scan_policy_evaluate(p, n, image, r, NOW, &verdict);
	assert_true(rc >= 0);
	assert_non_null(verdict);
	assert_int_equal(json_is_true(json_object_get(verdict, "blocked")), rc == 1);
	return rc;
}

static size_t n_blocking(void)
{
	return json_array_size(json_object_get(verdict, "policies"));
}

static const char *reason(size_t i)
{
	json_t *p = json_array_get(json_object_get(verdict, "policies"), i);
	return json_string_value(json_object_get(p, "reason"));
}

static const char *blocking_name(size_t i)
{
	json_t *p = json_array_get(json_object_get(verdict, "policies"), i);
	return json_string_value(json_object_get(p, "name"));
}

static json_int_t findings_total(void)
{
	return json_integer_value(json_object_get(verdict, "findings_total"));
}

#define ONE(p) ((const struct scan_policy *const[]){p})

/* ---- rules ---- */

static void test_block_critical(void **state)
{
	(void)state;
	assert_int_equal(NOW, unix_at("2026-11-15T00:00:00Z"));
	struct scan_policy *p =
	    parse_ok("{\"name\": \"prod\"}", NULL); /* block_critical defaults on */
	struct scan_report *r = report(4);
	add(r, "CVE-2024-0001", NULL, SCAN_SEV_HIGH);
	add(r, "CVE-2024-0002", NULL, SCAN_SEV_MEDIUM);
	assert_int_equal(eval(ONE(p), 1, "nginx", r), 0);
	assert_int_equal(n_blocking(), 0);
	assert_int_equal(findings_total(), 0);

	add(r, "CVE-2024-0003", "GHSA-aaaa-bbbb-cccc", SCAN_SEV_CRITICAL);
	assert_int_equal(eval(ONE(p), 1, "nginx", r), 1);
	assert_int_equal(n_blocking(), 1);
	assert_string_equal(blocking_name(0), "prod");
	assert_string_equal(reason(0), "critical findings");
	/* Only the critical finding caused it (the high one is not under a high rule). */
	assert_int_equal(findings_total(), 1);
	json_t *f = json_array_get(json_object_get(verdict, "findings"), 0);
	json_t *want = js("{\"id\": \"CVE-2024-0003\", \"package\": {\"name\": \"openssl\", "
			  "\"version\": \"3.0.11-1~deb12u2\"}, \"severity\": \"critical\", "
			  "\"engines\": [\"trivy\", \"grype\"], "
			  "\"fixed_versions\": [\"3.0.18-1~deb12u2\"]}");
	assert_true(json_equal(f, want));
	json_decref(want);

	struct scan_policy *off = parse_ok("{\"name\": \"lax\", \"block_critical\": false}", NULL);
	assert_int_equal(eval(ONE(off), 1, "nginx", r), 0);
}

static void test_max_high(void **state)
{
	(void)state;
	struct scan_policy *p =
	    parse_ok("{\"name\": \"h\", \"block_critical\": false, \"max_high\": 2}", NULL);
	struct scan_report *r = report(8);
	add(r, "CVE-2024-0001", NULL, SCAN_SEV_HIGH);
	add(r, "CVE-2024-0002", NULL, SCAN_SEV_HIGH);
	add(r, "CVE-2024-0009", NULL, SCAN_SEV_CRITICAL); /* not a high: not counted here */
	add(r, "CVE-2024-0010", NULL, SCAN_SEV_MEDIUM);
	assert_int_equal(eval(ONE(p), 1, "app", r), 0); /* 2 highs, N = 2 */
	add(r, "CVE-2024-0003", NULL, SCAN_SEV_HIGH);
	assert_int_equal(eval(ONE(p), 1, "app", r), 1); /* N + 1 */
	assert_string_equal(reason(0), "high findings 3 > 2");
	assert_int_equal(findings_total(), 3);
	json_t *list = json_object_get(verdict, "findings");
	for (size_t i = 0; i < json_array_size(list); i++)
		assert_string_equal(
		    json_string_value(json_object_get(json_array_get(list, i), "severity")),
		    "high");

	struct scan_policy *zero =
	    parse_ok("{\"name\": \"z\", \"block_critical\": false, \"max_high\": 0}", NULL);
	struct scan_report *one = report(1);
	add(one, "CVE-2024-0004", NULL, SCAN_SEV_HIGH);
	assert_int_equal(eval(ONE(zero), 1, "app", one), 1);
	assert_string_equal(reason(0), "high findings 1 > 0");

	/* Both rules fire: one entry per rule, criticals listed first. */
	struct scan_policy *both = parse_ok("{\"name\": \"both\", \"max_high\": 1}", NULL);
	assert_int_equal(eval(ONE(both), 1, "app", r), 1);
	assert_int_equal(n_blocking(), 2);
	assert_string_equal(reason(0), "critical findings");
	assert_string_equal(reason(1), "high findings 3 > 1");
	assert_int_equal(findings_total(), 4);
	list = json_object_get(verdict, "findings");
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")),
			    "CVE-2024-0009");
}

static void test_scope_and_normalisation(void **state)
{
	(void)state;
	struct scan_policy *p =
	    parse_ok("{\"name\": \"prod\", \"images\": [\"registry.example.com/prod/*\"]}", NULL);
	assert_true(scan_policy_applies(p, "registry.example.com/prod/api:1"));
	assert_true(scan_policy_applies(p, "registry.example.com/prod/team/api@sha256:ab"));
	assert_false(scan_policy_applies(p, "registry.example.com/dev/api:1"));
	assert_false(scan_policy_applies(p, "registry.example.com/production"));

	struct scan_report *r = report(1);
	add(r, "CVE-2024-0003", NULL, SCAN_SEV_CRITICAL);
	assert_int_equal(eval(ONE(p), 1, "registry.example.com/dev/api:1", r), 0);
	assert_int_equal(eval(ONE(p), 1, "registry.example.com/prod/api:1", r), 1);

	/* Patterns written in the normalised form match short references, and the reverse. */
	struct scan_policy *hub =
	    parse_ok("{\"name\": \"hub\", \"images\": [\"docker.io/library/busybox:*\", "
		     "\"docker.io/user/*\", \"nginx\"]}",
		     NULL);
	assert_true(scan_policy_applies(hub, "busybox"));
	assert_true(scan_policy_applies(hub, "busybox:1.36"));
	assert_true(scan_policy_applies(hub, "index.docker.io/library/busybox"));
	assert_true(scan_policy_applies(hub, "user/app:1"));
	assert_true(scan_policy_applies(hub, "nginx")); /* the given form */
	assert_false(scan_policy_applies(hub, "nginx:1.25"));
	assert_false(scan_policy_applies(hub, "quay.io/user/app:1"));
	assert_false(
	    scan_policy_applies(hub, "busybox@sha256:abcd")); /* no tag: no ":" after busybox */

	struct scan_policy *q =
	    parse_ok("{\"name\": \"q\", \"images\": [\"*/prod/app:1.?\", \"ghcr.io/*\"]}", NULL);
	assert_true(scan_policy_applies(q, "registry.example.com/prod/app:1.2"));
	assert_false(scan_policy_applies(q, "registry.example.com/prod/app:1.10"));
	assert_true(scan_policy_applies(q, "ghcr.io/org/team/app:2")); /* '*' crosses '/' */
	assert_false(scan_policy_applies(q, "ghcr.io"));
}

static void test_all_images(void **state)
{
	(void)state;
	struct scan_policy *absent = parse_ok("{\"name\": \"all\"}", NULL);
	struct scan_policy *empty = parse_ok("{\"name\": \"all2\", \"images\": []}", NULL);
	const char *images[] = {"nginx", "ghcr.io/org/app@sha256:ff", "not a reference"};
	for (size_t i = 0; i < 3; i++) {
		assert_true(scan_policy_applies(absent, images[i]));
		assert_true(scan_policy_applies(empty, images[i]));
	}
}

static void normalises_to(const char *ref, const char *want)
{
	char out[SCAN_IMAGE_NORM_SIZE];
	int rc = scan_image_normalise(ref, out, sizeof(out));
	if (rc != 0)
		fail_msg("refused %s (%d)", ref, rc);
	assert_string_equal(out, want);
}

static void test_normalise(void **state)
{
	(void)state;
	normalises_to("busybox", "docker.io/library/busybox:latest");
	normalises_to("user/app:1", "docker.io/user/app:1");
	normalises_to("docker.io/nginx", "docker.io/library/nginx:latest");
	normalises_to("index.docker.io/library/nginx:1.25", "docker.io/library/nginx:1.25");
	normalises_to("busybox@sha256:abcd", "docker.io/library/busybox@sha256:abcd");
	normalises_to("ghcr.io/org/app:1@sha256:ef01", "ghcr.io/org/app:1@sha256:ef01");
	normalises_to("registry.example.com:5000/team/app",
		      "registry.example.com:5000/team/app:latest");
	normalises_to("registry:5000/app", "registry:5000/app:latest");
	normalises_to("localhost/app:dev", "localhost/app:dev");
	normalises_to("localhost", "docker.io/library/localhost:latest");

	static const char *const bad[] = {"",	     "two words", "a//b",     "/abs",
					  "trail/",  "app:",	  "busybox@", "busybox@sha256",
					  "a@b:c@d", "tab\there", "café"};
	char out[64] = "untouched";
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (scan_image_normalise(bad[i], out, sizeof(out)) != ODX_EINVAL)
			fail_msg("accepted %s", bad[i]);
		assert_string_equal(out, "untouched");
	}
	char long_ref[SCAN_IMAGE_REF_MAX + 2];
	memset(long_ref, 'a', sizeof(long_ref) - 1);
	long_ref[sizeof(long_ref) - 1] = '\0';
	assert_int_equal(scan_image_normalise(long_ref, out, sizeof(out)), ODX_EINVAL);
	char tiny[16] = "untouched";
	assert_int_equal(scan_image_normalise("busybox", tiny, sizeof(tiny)), ODX_ETOOBIG);
	assert_string_equal(tiny, "untouched");
	char exact[sizeof("docker.io/library/busybox:latest")];
	assert_int_equal(scan_image_normalise("busybox", exact, sizeof(exact)), 0);
}

/* ---- exceptions, disabled, no scan, several policies ---- */

#define EXC_POLICY(expiry)                                                                         \
	"{\"name\": \"prod\", \"max_high\": 0, \"exceptions\": [{\"id\": \"cve-2024-1234\", "      \
	"\"owner\": \"alice@example.com\", \"reason\": \"not reachable\", \"expires_at\": "        \
	"\"" expiry                                                                                \
	"\"}, {\"id\": \"CVE-2000-0001\", \"owner\": \"bob\", \"reason\": \"unused\", "            \
	"\"expires_at\": \"2030-01-01T00:00:00Z\"}]}"

static void test_exception_future(void **state)
{
	(void)state;
	struct scan_policy *p = parse_ok(EXC_POLICY("2026-11-15T00:00:01Z"), NULL);
	struct scan_report *r = report(2);
	add(r, "GHSA-aaaa-bbbb-cccc", "CVE-2024-1234",
	    SCAN_SEV_CRITICAL); /* waived via its alias */
	add(r, "CVE-2024-1235", NULL, SCAN_SEV_LOW);
	assert_int_equal(eval(ONE(p), 1, "nginx", r), 0);
	json_t *applied = json_object_get(verdict, "exceptions_applied");
	json_t *want = js("[{\"policy\": \"prod\", \"id\": \"cve-2024-1234\", \"owner\": "
			  "\"alice@example.com\", \"expires_at\": \"2026-11-15T00:00:01Z\"}]");
	assert_true(json_equal(applied, want)); /* the unused exception is not listed */
	json_decref(want);

	/* A waived high does not count toward max_high either. */
	struct scan_report *h = report(1);
	add(h, "CVE-2024-1234", NULL, SCAN_SEV_HIGH);
	assert_int_equal(eval(ONE(p), 1, "nginx", h), 0);
}

static void test_exception_expired(void **state)
{
	(void)state;
	/* Expiry exactly now: no longer applies (only while now < expires_at). */
	struct scan_policy *p = parse_ok(EXC_POLICY("2026-11-15T00:00:00Z"), NULL);
	struct scan_report *r = report(1);
	add(r, "GHSA-aaaa-bbbb-cccc", "CVE-2024-1234", SCAN_SEV_CRITICAL);
	assert_int_equal(eval(ONE(p), 1, "nginx", r), 1);
	assert_int_equal(json_array_size(json_object_get(verdict, "exceptions_applied")), 0);
	assert_int_equal(findings_total(), 1);

	/* One policy's exception does not waive the finding for another policy. */
	struct scan_policy *waives = parse_ok(EXC_POLICY("2030-01-01T00:00:00Z"), NULL);
	struct scan_policy *strict = parse_ok("{\"name\": \"strict\"}", NULL);
	const struct scan_policy *const both[] = {waives, strict};
	assert_int_equal(eval(both, 2, "nginx", r), 1);
	assert_int_equal(n_blocking(), 1);
	assert_string_equal(blocking_name(0), "strict");
	assert_int_equal(json_array_size(json_object_get(verdict, "exceptions_applied")), 1);
}

static void test_disabled(void **state)
{
	(void)state;
	struct scan_policy *p =
	    parse_ok("{\"name\": \"off\", \"enabled\": false, \"max_high\": 0}", NULL);
	struct scan_report *r = report(2);
	add(r, "CVE-2024-0003", NULL, SCAN_SEV_CRITICAL);
	add(r, "CVE-2024-0004", NULL, SCAN_SEV_HIGH);
	assert_int_equal(eval(ONE(p), 1, "nginx", r), 0);
	assert_int_equal(eval(ONE(p), 1, "nginx", NULL), 0);
	assert_int_equal(n_blocking(), 0);
}

static void test_no_scan(void **state)
{
	(void)state;
	struct scan_policy *prod =
	    parse_ok("{\"name\": \"prod\", \"images\": [\"registry.example.com/prod/*\"]}", NULL);
	struct scan_policy *watch =
	    parse_ok("{\"name\": \"watch\", \"block_critical\": false, \"max_high\": null}", NULL);
	assert_int_equal(eval(ONE(prod), 1, "registry.example.com/prod/api:1", NULL), 1);
	assert_string_equal(reason(0), "no completed scan");
	assert_int_equal(findings_total(), 0);
	assert_int_equal(eval(ONE(prod), 1, "registry.example.com/dev/api:1", NULL), 0);
	assert_int_equal(eval(ONE(watch), 1, "registry.example.com/prod/api:1", NULL), 0);
	assert_int_equal(eval(NULL, 0, "anything", NULL), 0);
	json_t *want = js("{\"blocked\": false, \"policies\": [], \"findings\": [], "
			  "\"findings_total\": 0, \"exceptions_applied\": []}");
	assert_true(json_equal(verdict, want));
	json_decref(want);
}

static void test_several_policies(void **state)
{
	(void)state;
	struct scan_policy *dev = parse_ok(
	    "{\"name\": \"dev\", \"images\": [\"registry.example.com/dev/*\"], \"max_high\": 0}",
	    NULL);
	struct scan_policy *loose =
	    parse_ok("{\"name\": \"loose\", \"block_critical\": false, \"max_high\": 5}", NULL);
	struct scan_policy *prod = parse_ok(
	    "{\"name\": \"prod\", \"images\": [\"registry.example.com/prod/*\"], \"max_high\": 0}",
	    NULL);
	struct scan_policy *also = parse_ok("{\"name\": \"also\"}", NULL);
	struct scan_report *r = report(2);
	add(r, "CVE-2024-0003", NULL, SCAN_SEV_CRITICAL);
	add(r, "CVE-2024-0004", NULL, SCAN_SEV_HIGH);
	const struct scan_policy *const three[] = {dev, loose, prod};
	assert_int_equal(eval(three, 3, "registry.example.com/prod/api:1", r), 1);
	assert_int_equal(n_blocking(), 2); /* prod: critical, then high 1 > 0 */
	assert_string_equal(blocking_name(0), "prod");
	assert_string_equal(blocking_name(1), "prod");
	assert_string_equal(reason(1), "high findings 1 > 0");
	assert_int_equal(eval(three, 3, "registry.example.com/test/api:1", r), 0);

	/* Two policies block on the same finding: both named, the finding listed once. */
	const struct scan_policy *const two[] = {also, prod};
	assert_int_equal(eval(two, 2, "registry.example.com/prod/api:1", r), 1);
	assert_int_equal(n_blocking(), 3);
	assert_string_equal(blocking_name(0), "also");
	assert_int_equal(findings_total(), 2);
	assert_int_equal(json_array_size(json_object_get(verdict, "findings")), 2);
}

static void test_findings_capped(void **state)
{
	(void)state;
	struct scan_policy *p = parse_ok("{\"name\": \"prod\"}", NULL);
	struct scan_report *r = report(150);
	char id[32];
	for (int i = 0; i < 150; i++) {
		snprintf(id, sizeof(id), "CVE-2024-%04d", i);
		add(r, id, NULL, SCAN_SEV_CRITICAL);
	}
	assert_int_equal(eval(ONE(p), 1, "nginx", r), 1);
	assert_int_equal(json_array_size(json_object_get(verdict, "findings")),
			 SCAN_VERDICT_MAX_FINDINGS);
	assert_int_equal(findings_total(), 150);
}

static void test_evaluate_bad_args(void **state)
{
	(void)state;
	json_t *v = (json_t *)(uintptr_t)0x1;
	assert_int_equal(scan_policy_evaluate(NULL, 0, NULL, NULL, NOW, &v), ODX_EINVAL);
	assert_int_equal(scan_policy_evaluate(NULL, 2, "nginx", NULL, NOW, &v), ODX_EINVAL);
	assert_ptr_equal(v, (json_t *)(uintptr_t)0x1);
}

/* ---- parsing ---- */

static void test_parse_roundtrip(void **state)
{
	(void)state;
	const char *full = "{\"name\": \"prod\", \"images\": [\"registry.example.com/prod/*\"], "
			   "\"block_critical\": false, \"max_high\": 5, \"exceptions\": [{\"id\": "
			   "\"CVE-2024-1234\", \"owner\": \"alice@example.com\", \"reason\": "
			   "\"mitigated by WAF\", "
			   "\"expires_at\": \"2027-01-31T12:00:00Z\"}], \"enabled\": false}";
	struct scan_policy *p = parse_ok(full, "prod");
	assert_string_equal(p->name, "prod");
	assert_int_equal(p->max_high, 5);
	assert_false(p->block_critical);
	assert_int_equal(p->exceptions[0].expires_ns / NSEC_PER_SEC,
			 unix_at("2027-01-31T12:00:00Z"));
	json_t *out = scan_policy_to_json(p), *want = js(full);
	assert_true(json_equal(out, want));
	char *text = jsonx_dump(out);
	struct scan_policy *again = parse_ok(text, NULL); /* what we store parses back */
	json_t *out2 = scan_policy_to_json(again);
	assert_true(json_equal(out2, want));
	free(text);
	json_decref(out);
	json_decref(out2);
	json_decref(want);

	/* Defaults, and the name taken from the path. */
	struct scan_policy *d = parse_ok("{}", "from-path");
	out = scan_policy_to_json(d);
	want = js("{\"name\": \"from-path\", \"images\": [], \"block_critical\": true, "
		  "\"max_high\": null, \"exceptions\": [], \"enabled\": true}");
	assert_true(json_equal(out, want));
	json_decref(out);
	json_decref(want);
	parse_ok("{\"name\": \"x\", \"max_high\": null}", "x");

	/* The caller's body is not changed (the name is filled into a copy). */
	json_t *body = js("{}");
	struct scan_policy *q = NULL;
	char msg[JSONX_MSG_LEN];
	assert_int_equal(scan_policy_parse(body, "p", &q, msg), 0);
	assert_int_equal(json_object_size(body), 0);
	json_decref(body);
	scan_policy_free(q);
	scan_policy_free(NULL);
}

static void test_parse_refusals(void **state)
{
	(void)state;
	parse_bad("{\"name\": \"p\", \"unknown\": 1}", NULL);
	parse_bad("{\"name\": \"MARKER\"}", NULL);
	parse_bad("{\"name\": \"-p\"}", NULL);
	parse_bad("{\"name\": \"a_b\"}", NULL);
	parse_bad("{\"name\": \"\"}", NULL);
	parse_bad(
	    "{\"name\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
	    NULL); /* 64 */
	parse_ok("{\"name\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
		 NULL); /* 63 */
	parse_bad("{}", NULL);
	parse_bad("{\"name\": \"a\"}", "b");
	parse_bad("{}", "Bad");
	parse_bad("{\"name\": 5}", NULL);

	/* images: at most 64 patterns of at most 255 bytes, no spaces. */
	char buf[4096];
	size_t o = (size_t)snprintf(buf, sizeof(buf), "{\"name\": \"p\", \"images\": [");
	for (int i = 0; i < 65; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\"r/%d\"", i ? ", " : "", i);
	snprintf(buf + o, sizeof(buf) - o, "]}");
	parse_bad(buf, NULL);
	char pattern[300];
	memset(pattern, 'a', 256);
	pattern[256] = '\0';
	snprintf(buf, sizeof(buf), "{\"name\": \"p\", \"images\": [\"%s\"]}", pattern);
	parse_bad(buf, NULL);
	pattern[255] = '\0';
	snprintf(buf, sizeof(buf), "{\"name\": \"p\", \"images\": [\"%s\"]}", pattern);
	parse_ok(buf, NULL);
	parse_bad("{\"name\": \"p\", \"images\": [\"a b\"]}", NULL);
	parse_bad("{\"name\": \"p\", \"images\": [\"\"]}", NULL);
	parse_bad("{\"name\": \"p\", \"images\": \"nginx\"}", NULL);
	parse_bad("{\"name\": \"p\", \"images\": [1]}", NULL);

	parse_bad("{\"name\": \"p\", \"max_high\": -1}", NULL);
	parse_bad("{\"name\": \"p\", \"max_high\": \"5\"}", NULL);
	parse_bad("{\"name\": \"p\", \"max_high\": 1.5}", NULL);
	parse_bad("{\"name\": \"p\", \"max_high\": 4294967296}", NULL);
	parse_bad("{\"name\": \"p\", \"block_critical\": \"yes\"}", NULL);
	parse_bad("{\"name\": \"p\", \"enabled\": 1}", NULL);

#define EXC(fields) "{\"name\": \"p\", \"exceptions\": [{" fields "}]}"
	parse_ok(EXC("\"id\": \"CVE-1\", \"owner\": \"o\", \"reason\": \"r\", "
		     "\"expires_at\": \"2027-01-01T00:00:00.5Z\""),
		 NULL);
	parse_bad(
	    EXC("\"id\": \"CVE-1\", \"reason\": \"r\", \"expires_at\": \"2027-01-01T00:00:00Z\""),
	    NULL);
	parse_bad(EXC("\"id\": \"CVE-1\", \"owner\": \"\", \"reason\": \"r\", "
		      "\"expires_at\": \"2027-01-01T00:00:00Z\""),
		  NULL);
	parse_bad(
	    EXC("\"id\": \"CVE-1\", \"owner\": \"o\", \"expires_at\": \"2027-01-01T00:00:00Z\""),
	    NULL);
	parse_bad(EXC("\"id\": \"CVE-1\", \"owner\": \"o\", \"reason\": \"\", "
		      "\"expires_at\": \"2027-01-01T00:00:00Z\""),
		  NULL);
	parse_bad(
	    EXC("\"owner\": \"o\", \"reason\": \"r\", \"expires_at\": \"2027-01-01T00:00:00Z\""),
	    NULL);
	parse_bad(EXC("\"id\": \"CVE 1\", \"owner\": \"o\", \"reason\": \"r\", "
		      "\"expires_at\": \"2027-01-01T00:00:00Z\""),
		  NULL);
	parse_bad(EXC("\"id\": \"CVE-1\", \"owner\": \"o\", \"reason\": \"r\""), NULL);
	static const char *const bad_times[] = {
	    "MARKER",	  "2027-13-01T00:00:00Z", "2027-01-01T00:00:00+02:00",
	    "2027-01-01", "2027-01-01T25:00:00Z", ""};
	for (size_t i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++) {
		snprintf(buf, sizeof(buf),
			 EXC("\"id\": \"CVE-1\", \"owner\": \"o\", \"reason\": \"r\", "
			     "\"expires_at\": \"%s\""),
			 bad_times[i]);
		parse_bad(buf, NULL);
	}
	parse_bad(EXC("\"id\": \"CVE-1\", \"owner\": \"o\", \"reason\": \"r\", "
		      "\"expires_at\": \"2027-01-01T00:00:00Z\", \"extra\": true"),
		  NULL);
	parse_bad(
	    "{\"name\": \"p\", \"exceptions\": [{\"id\": \"CVE-1\", \"owner\": \"o\", "
	    "\"reason\": \"r\", \"expires_at\": \"2027-01-01T00:00:00Z\"}, {\"id\": \"cve-1\", "
	    "\"owner\": \"o\", \"reason\": \"r\", \"expires_at\": \"2027-01-01T00:00:00Z\"}]}",
	    NULL);
	parse_bad("{\"name\": \"p\", \"exceptions\": {}}", NULL);

	/* At most 256 exceptions. */
	json_t *body = js("{\"name\": \"p\", \"exceptions\": []}");
	json_t *arr = json_object_get(body, "exceptions");
	for (int i = 0; i < 257; i++) {
		snprintf(buf, sizeof(buf), "CVE-2024-%d", i);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "id", buf, "owner",
						     "o", "reason", "r", "expires_at",
						     "2027-01-01T00:00:00Z"));
	}
	struct scan_policy *p = NULL;
	char msg[JSONX_MSG_LEN];
	assert_int_equal(scan_policy_parse(body, NULL, &p, msg), ODX_EINVAL);
	json_array_remove(arr, 0);
	assert_int_equal(scan_policy_parse(body, NULL, &p, msg), 0);
	assert_int_equal(p->nexceptions, 256);
	scan_policy_free(p);
	json_decref(body);

	json_t *not_object = json_array();
	p = NULL;
	assert_int_equal(scan_policy_parse(not_object, "p", &p, msg), ODX_EINVAL);
	assert_null(p);
	json_decref(not_object);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_block_critical, teardown),
	    cmocka_unit_test_teardown(test_max_high, teardown),
	    cmocka_unit_test_teardown(test_scope_and_normalisation, teardown),
	    cmocka_unit_test_teardown(test_all_images, teardown),
	    cmocka_unit_test_teardown(test_normalise, teardown),
	    cmocka_unit_test_teardown(test_exception_future, teardown),
	    cmocka_unit_test_teardown(test_exception_expired, teardown),
	    cmocka_unit_test_teardown(test_disabled, teardown),
	    cmocka_unit_test_teardown(test_no_scan, teardown),
	    cmocka_unit_test_teardown(test_several_policies, teardown),
	    cmocka_unit_test_teardown(test_findings_capped, teardown),
	    cmocka_unit_test_teardown(test_evaluate_bad_args, teardown),
	    cmocka_unit_test_teardown(test_parse_roundtrip, teardown),
	    cmocka_unit_test_teardown(test_parse_refusals, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
