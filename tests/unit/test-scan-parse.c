/*
 * test-scan-parse.c — the Trivy and Grype report parsers (trivy.c, grype.c)
 * and the model's arena and JSON (model.c).
 *
 * Real reports (tests/data/scanners, found through $ODX_TESTDATA): each parses
 * with its engine into the number of findings its README gives and is refused
 * by the other engine; fields are spot-checked against values read from the
 * files by hand. Hostile reports: every prefix of a small one, wrong types,
 * strings and lists over the bounds, too many findings, depth bombs, invalid
 * UTF-8, duplicate keys, the legacy Trivy format. A refusal leaves the output
 * untouched and its message never quotes the input.
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
#include "scan/grype.h"
#include "scan/model.h"
#include "scan/trivy.h"
#include "testdata.h"

typedef int (*parse_fn)(const char *, size_t, struct scan_report **, char[static SCAN_MSG_LEN]);

static const parse_fn parsers[SCAN_ENGINE_COUNT] = {trivy_parse, grype_parse};

/* ---- helpers ------------------------------------------------------------- */


/* A growable text buffer for synthetic reports. */
struct sb {
	char *p;
	size_t len, cap;
};

static void sb_addn(struct sb *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (b->len + n + 1 > cap)
			cap *= 2;
		b->p = realloc(b->p, cap);
		assert_non_null(b->p);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_add(struct sb *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

static void sb_rep(struct sb *b, const char *s, size_t times)
{
	for (size_t i = 0; i < times; i++)
		sb_add(b, s);
}

/* Parses text with engine e; checks the refusal contract when it fails. */
static int parse(enum scan_engine e, const char *text, size_t len, struct scan_report **out,
		 char msg[static SCAN_MSG_LEN])
{
	static int sentinel;
	struct scan_report *r = (struct scan_report *)&sentinel;
	memset(msg, 'X', SCAN_MSG_LEN);
	int rc = parsers[e](text, len, &r, msg);
	if (rc == 0) {
		assert_true(r != (struct scan_report *)&sentinel);
		*out = r;
		return 0;
	}
	assert_true(rc == ODX_EINVAL || rc == ODX_ETOOBIG || rc == ODX_ENOMEM);
	assert_ptr_equal(r, &sentinel); /* untouched */
	assert_non_null(memchr(msg, '\0', SCAN_MSG_LEN));
	assert_true(msg[0] != '\0');
	*out = NULL;
	return rc;
}

/* Parses text that must be refused with rc and a message containing want. */
static void refused(enum scan_engine e, const char *text, int want_rc, const char *want)
{
	struct scan_report *r;
	char msg[SCAN_MSG_LEN];
	int rc = parse(e, text, strlen(text), &r, msg);
	if (rc != want_rc || !strstr(msg, want))
		fail_msg("want %d \"%s\", got %d \"%s\" for %.200s", want_rc, want, rc,
			 rc ? msg : "", text);
	assert_null(strstr(msg, "SECRET")); /* the input's values are never echoed */
}

static struct scan_report *accepted(enum scan_engine e, const char *text)
{
	struct scan_report *r;
	char msg[SCAN_MSG_LEN];
	int rc = parse(e, text, strlen(text), &r, msg);
	if (rc != 0)
		fail_msg("refused (%d %s): %.200s", rc, msg, text);
	return r;
}

/* The invariants every parsed finding keeps (the fuzzers check the same). */
static void check_report(const struct scan_report *r, enum scan_engine e)
{
	enum scan_engine other = e == SCAN_ENGINE_TRIVY ? SCAN_ENGINE_GRYPE : SCAN_ENGINE_TRIVY;
	assert_int_equal(r->engines, SCAN_ENGINE_BIT(e));
	for (size_t i = 0; i < r->nfindings; i++) {
		const struct scan_finding *f = &r->findings[i];
		assert_non_null(f->id);
		assert_true(f->id[0] != '\0');
		assert_non_null(f->pkg.name);
		assert_non_null(f->pkg.version);
		assert_non_null(f->pkg.type);
		assert_true(f->naliases >= 1);
		bool has_id = false;
		for (size_t k = 0; k < f->naliases; k++) {
			if (k > 0)
				assert_true(strcmp(f->aliases[k - 1], f->aliases[k]) < 0);
			has_id = has_id || strcmp(f->aliases[k], f->id) == 0;
		}
		assert_true(has_id);
		assert_int_equal(f->engines, SCAN_ENGINE_BIT(e));
		assert_int_equal(f->severity, f->engine_severity[e]);
		assert_non_null(f->severity_source);
		assert_non_null(f->engine_severity_source[e]);
		assert_null(f->engine_severity_source[other]);
		assert_true(f->fix_state[e] != SCAN_FIX_NONE);
		assert_int_equal(f->fix_state[other], SCAN_FIX_NONE);
		for (size_t k = 0; k < f->ncvss; k++) {
			assert_non_null(f->cvss[k].source);
			assert_non_null(f->cvss[k].version);
			assert_non_null(f->cvss[k].vector);
		}
		json_t *j = scan_finding_to_json(f);
		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j, "id")), f->id);
		json_decref(j);
	}
}

static const struct scan_finding *find(const struct scan_report *r, const char *id, const char *pkg,
				       const char *version)
{
	for (size_t i = 0; i < r->nfindings; i++) {
		const struct scan_finding *f = &r->findings[i];
		if (strcmp(f->id, id) == 0 && strcmp(f->pkg.name, pkg) == 0 &&
		    (!version || strcmp(f->pkg.version, version) == 0))
			return f;
	}
	fail_msg("no finding %s on %s", id, pkg);
	return NULL;
}

static size_t count_if(const struct scan_report *r, bool (*pred)(const struct scan_finding *))
{
	size_t n = 0;
	for (size_t i = 0; i < r->nfindings; i++)
		n += pred(&r->findings[i]);
	return n;
}

/* A report of tests/data/scanners (testdata.h). */
static char *slurp(const char *rel, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "scanners/%s", rel);
	return testdata_read(path, len);
}

static struct scan_report *load(enum scan_engine e, const char *rel)
{
	size_t len;
	char *text = slurp(rel, &len);
	struct scan_report *r;
	char msg[SCAN_MSG_LEN];
	int rc = parse(e, text, len, &r, msg);
	free(text);
	if (rc != 0)
		fail_msg("%s: %d %s", rel, rc, msg);
	check_report(r, e);
	return r;
}

/* ---- the real reports ---------------------------------------------------- */

static const struct {
	const char *file;
	enum scan_engine engine;
	size_t findings;
} reports[] = {
    {"appsecsanta-research/trivy-juice-shop.json", SCAN_ENGINE_TRIVY, 135},
    {"appsecsanta-research/grype-juice-shop.json", SCAN_ENGINE_GRYPE, 136},
    {"appsecsanta-research/trivy-webgoat.json", SCAN_ENGINE_TRIVY, 403},
    {"appsecsanta-research/grype-webgoat.json", SCAN_ENGINE_GRYPE, 496},
    {"aquasecurity-trivy/alpine-39.json.golden", SCAN_ENGINE_TRIVY, 6},
    {"aquasecurity-trivy/debian-stretch.json.golden", SCAN_ENGINE_TRIVY, 5},
    {"aquasecurity-trivy/ubuntu-1804.json.golden", SCAN_ENGINE_TRIVY, 5},
    {"aquasecurity-trivy/centos-7.json.golden", SCAN_ENGINE_TRIVY, 3},
    {"anchore-grype/keycloak-test.json", SCAN_ENGINE_GRYPE, 6},
    {"anchore-grype/ghsa-test.json", SCAN_ENGINE_GRYPE, 2},
    {"defectdojo/many_vulns_with_epss_values.json", SCAN_ENGINE_GRYPE, 15},
};

static void test_real_reports(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(reports) / sizeof(reports[0]); i++) {
		struct scan_report *r = load(reports[i].engine, reports[i].file);
		if (r->nfindings != reports[i].findings)
			fail_msg("%s: %zu findings, want %zu", reports[i].file, r->nfindings,
				 reports[i].findings);
		assert_non_null(r->engine_version[reports[i].engine]);
		scan_report_free(r);

		/* the other engine refuses it and says why */
		size_t len;
		char *text = slurp(reports[i].file, &len), msg[SCAN_MSG_LEN];
		enum scan_engine other =
		    reports[i].engine == SCAN_ENGINE_TRIVY ? SCAN_ENGINE_GRYPE : SCAN_ENGINE_TRIVY;
		assert_int_equal(parse(other, text, len, &r, msg), ODX_EINVAL);
		assert_non_null(strstr(msg, other == SCAN_ENGINE_TRIVY ? "not a Trivy report"
								       : "not a Grype report"));
		free(text);
	}
}

static bool has_source(const struct scan_finding *f)
{
	return f->pkg.source != NULL;
}

static void test_trivy_juice_shop(void **state)
{
	(void)state;
	struct scan_report *r =
	    load(SCAN_ENGINE_TRIVY, "appsecsanta-research/trivy-juice-shop.json");
	assert_string_equal(r->engine_version[SCAN_ENGINE_TRIVY], "0.69.1");
	assert_string_equal(r->image.name, "bkimminich/juice-shop:latest");
	assert_string_equal(r->image.image_id, "sha256:2decb22d49c747c6ffcee741cbfec5ffa2b43183c0a"
					       "7c3f6a09a0671a2f76b28");
	assert_int_equal(r->image.nrepo_digests, 1);
	assert_string_equal(
	    r->image.repo_digests[0],
	    "bkimminich/juice-shop@sha256:e68bd19091f952a0cdf75c5ca318d92e7a06b350ab"
	    "5a88446f2bf62daf2e88c9");
	assert_string_equal(r->image.os_family, "debian");
	assert_string_equal(r->image.os_version, "12.12");
	assert_false(r->image.os_eol);
	assert_int_equal(r->image.nentrypoint, 2);
	assert_string_equal(r->image.entrypoint[0], "/nodejs/bin/node");
	assert_string_equal(r->image.entrypoint[1], "/juice-shop/build/app.js");

	/* a language package: CVE primary, GHSA alias, no fix */
	const struct scan_finding *f = find(r, "CVE-2024-29415", "ip", "2.0.1");
	assert_int_equal(f->naliases, 2);
	assert_string_equal(f->aliases[0], "CVE-2024-29415");
	assert_string_equal(f->aliases[1], "GHSA-2p57-rm9w-gvfp");
	assert_string_equal(f->pkg.type, "node-pkg");
	assert_string_equal(f->pkg.purl, "pkg:npm/ip@2.0.1");
	assert_null(f->pkg.source);
	assert_int_equal(f->npaths, 1);
	assert_string_equal(f->paths[0], "juice-shop/node_modules/ip/package.json");
	assert_string_equal(f->layer, "sha256:5ba25c01fd945a58bd57791d29b29697cf96cbf2cd8ffdfa82"
				      "85cc3388169f74");
	assert_string_equal(f->title, "node-ip: Incomplete fix for CVE-2023-42282");
	assert_int_equal(f->severity, SCAN_SEV_HIGH);
	assert_string_equal(f->severity_source, "trivy:ghsa");
	assert_string_equal(f->engine_severity_source[SCAN_ENGINE_TRIVY], "ghsa");
	assert_int_equal(f->fix_state[SCAN_ENGINE_TRIVY], SCAN_FIX_AFFECTED);
	assert_int_equal(f->nfixed, 0);
	assert_int_equal(f->ncvss, 2);
	assert_string_equal(f->cvss[0].source, "ghsa");
	assert_string_equal(f->cvss[0].version, "3.1");
	assert_string_equal(f->cvss[0].vector, "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H");
	assert_true(f->cvss[0].score == 8.1);
	assert_string_equal(f->cvss[1].source, "redhat");
	assert_true(f->cvss[1].score == 9.8);
	assert_int_equal(f->nurls, 2);
	assert_string_equal(f->urls[0], "https://avd.aquasec.com/nvd/cve-2024-29415");
	assert_string_equal(f->urls[1],
			    "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Anpm");
	assert_true(f->epss < 0 && f->epss_percentile < 0);
	assert_false(f->kev);
	assert_false(f->cpe_match);

	/* an OS package: source from Packages[], DSA alias, no SeveritySource */
	f = find(r, "CVE-2025-69420", "libssl3", NULL);
	assert_string_equal(f->pkg.type, "deb");
	assert_string_equal(f->pkg.source, "openssl");
	assert_int_equal(f->naliases, 2);
	assert_string_equal(f->aliases[1], "DSA-6113-1");
	assert_string_equal(f->severity_source, "trivy");
	assert_int_equal(f->severity, SCAN_SEV_MEDIUM);
	assert_int_equal(f->nfixed, 1);
	assert_string_equal(f->fixed_versions[0], "3.0.18-1~deb12u2");
	assert_int_equal(f->fix_state[SCAN_ENGINE_TRIVY], SCAN_FIX_FIXED);
	assert_int_equal(count_if(r, has_source), 23); /* every debian finding, no npm one */

	/* an id without any CVE stays itself; a range fix version is kept as written */
	f = find(r, "NSWG-ECO-17", "jsonwebtoken", "0.4.0");
	assert_int_equal(f->naliases, 1);
	assert_int_equal(f->nurls, 1); /* no PrimaryURL */
	assert_string_equal(f->fixed_versions[0], ">=4.2.2");

	/* FixedVersion "10.2.1, 9.0.6, ..., 3.1.3": eight versions */
	f = find(r, "CVE-2026-26996", "minimatch", NULL);
	assert_int_equal(f->nfixed, 8);
	assert_string_equal(f->fixed_versions[0], "10.2.1");
	assert_string_equal(f->fixed_versions[7], "3.1.3");
	scan_report_free(r);
}

static void test_trivy_webgoat(void **state)
{
	(void)state;
	struct scan_report *r = load(SCAN_ENGINE_TRIVY, "appsecsanta-research/trivy-webgoat.json");
	assert_string_equal(r->image.os_family, "ubuntu");
	assert_int_equal(r->image.nentrypoint, 30); /* Entrypoint only: no Cmd */
	assert_string_equal(r->image.entrypoint[0], "java");

	/* dpkg epoch: in the version; source through Packages[] ID (Epoch 1) */
	const struct scan_finding *f = find(r, "CVE-2024-56433", "login", NULL);
	assert_string_equal(f->pkg.version, "1:4.13+dfsg1-4ubuntu3.2");
	assert_string_equal(f->pkg.source, "shadow");

	/* Maven: groupId:artifactId; the KEV entry Grype flags */
	f = find(r, "CVE-2021-39144", "com.thoughtworks.xstream:xstream", "1.4.5");
	assert_string_equal(f->pkg.type, "jar");
	assert_string_equal(f->aliases[1], "GHSA-j9h8-phrw-h4fh");
	assert_int_equal(f->ncvss, 4); /* ghsa v3, nvd v2 + v3, redhat v3 */
	assert_string_equal(f->cvss[1].source, "nvd");
	assert_string_equal(f->cvss[1].version, "2.0");
	assert_true(f->cvss[1].score == 6);

	/* GHSA only, CVSS 4.0 */
	f = find(r, "GHSA-72hv-8253-57qq", "com.fasterxml.jackson.core:jackson-core", NULL);
	assert_int_equal(f->naliases, 1);
	assert_int_equal(f->ncvss, 1);
	assert_string_equal(f->cvss[0].version, "4.0");
	assert_string_equal(f->cvss[0].source, "ghsa");
	assert_true(f->cvss[0].score == 8.7);
	assert_int_equal(f->nfixed, 3);
	scan_report_free(r);
}

static void test_trivy_goldens(void **state)
{
	(void)state;
	struct scan_report *r = load(SCAN_ENGINE_TRIVY, "aquasecurity-trivy/centos-7.json.golden");
	const struct scan_finding *f = find(r, "CVE-2019-1559", "openssl-libs", NULL);
	assert_string_equal(f->pkg.version, "1:1.0.2k-16.el7");
	assert_string_equal(f->fixed_versions[0], "1:1.0.2k-19.el7");
	assert_string_equal(f->pkg.type, "rpm");
	assert_string_equal(f->aliases[1], "RHSA-2019:2304");
	assert_null(f->pkg.source); /* the goldens have no Packages[] */
	f = find(r, "CVE-2019-18276", "bash", NULL);
	assert_int_equal(f->fix_state[SCAN_ENGINE_TRIVY], SCAN_FIX_WONT_FIX);
	assert_string_equal(f->severity_source, "trivy:redhat");
	scan_report_free(r);

	r = load(SCAN_ENGINE_TRIVY, "aquasecurity-trivy/alpine-39.json.golden");
	assert_true(r->image.os_eol);
	assert_string_equal(r->image.os_version, "3.9.4");
	assert_null(r->image.repo_digests);
	assert_int_equal(r->image.nentrypoint, 1);
	assert_string_equal(r->image.entrypoint[0], "/bin/sh");
	f = find(r, "CVE-2019-14697", "musl-utils", "1.1.20-r4");
	assert_string_equal(f->pkg.type, "apk");
	assert_int_equal(f->severity, SCAN_SEV_CRITICAL);
	assert_string_equal(f->severity_source, "trivy:nvd");
	scan_report_free(r);

	r = load(SCAN_ENGINE_TRIVY, "aquasecurity-trivy/debian-stretch.json.golden");
	assert_false(r->image.os_eol);
	f = find(r, "CVE-2019-18276", "bash", NULL);
	assert_int_equal(f->fix_state[SCAN_ENGINE_TRIVY], SCAN_FIX_EOL);
	f = find(r, "CVE-2019-5094", "libss2", NULL);
	assert_string_equal(f->aliases[1], "DSA-4535-1");
	scan_report_free(r);

	r = load(SCAN_ENGINE_TRIVY, "aquasecurity-trivy/ubuntu-1804.json.golden");
	f = find(r, "CVE-2019-18276", "bash", NULL);
	assert_int_equal(f->fix_state[SCAN_ENGINE_TRIVY], SCAN_FIX_AFFECTED);
	assert_int_equal(f->nfixed, 0);
	scan_report_free(r);
}

static bool negligible(const struct scan_finding *f)
{
	return f->severity == SCAN_SEV_NEGLIGIBLE;
}

static bool wont_fix(const struct scan_finding *f)
{
	return f->fix_state[SCAN_ENGINE_GRYPE] == SCAN_FIX_WONT_FIX;
}

static bool cpe_only(const struct scan_finding *f)
{
	return f->cpe_match;
}

static bool with_epss(const struct scan_finding *f)
{
	return f->epss >= 0;
}

static void test_grype_juice_shop(void **state)
{
	(void)state;
	struct scan_report *r =
	    load(SCAN_ENGINE_GRYPE, "appsecsanta-research/grype-juice-shop.json");
	assert_string_equal(r->engine_version[SCAN_ENGINE_GRYPE], "0.109.0");
	assert_string_equal(r->image.name, "bkimminich/juice-shop:latest");
	assert_string_equal(r->image.os_family, "debian");
	assert_string_equal(r->image.os_version, "12");
	/* the base64 OCI config gives the same entrypoint as Trivy's ImageConfig */
	assert_int_equal(r->image.nentrypoint, 2);
	assert_string_equal(r->image.entrypoint[0], "/nodejs/bin/node");
	assert_string_equal(r->image.entrypoint[1], "/juice-shop/build/app.js");

	/* GHSA primary with a related CVE: the CVE becomes the id */
	const struct scan_finding *f = find(r, "CVE-2024-29415", "ip", "2.0.1");
	assert_int_equal(f->naliases, 2);
	assert_string_equal(f->aliases[0], "CVE-2024-29415");
	assert_string_equal(f->aliases[1], "GHSA-2p57-rm9w-gvfp");
	assert_string_equal(f->pkg.type, "npm");
	assert_string_equal(f->paths[0], "/juice-shop/node_modules/ip/package.json");
	assert_string_equal(f->severity_source, "grype:github:language:javascript");
	assert_int_equal(f->fix_state[SCAN_ENGINE_GRYPE], SCAN_FIX_AFFECTED);
	assert_true(f->epss == 0.86505);
	assert_true(f->epss_percentile == 0.99397);
	assert_string_equal(f->urls[0], "https://github.com/advisories/GHSA-2p57-rm9w-gvfp");

	/* indirect match through the source package; DSA advisory as alias */
	f = find(r, "CVE-2025-69420", "libssl3", NULL);
	assert_string_equal(f->pkg.source, "openssl");
	assert_string_equal(f->aliases[1], "DSA-6113-1");
	assert_int_equal(f->npaths, 3);
	assert_string_equal(f->fixed_versions[0], "3.0.18-1~deb12u2");
	assert_false(f->cpe_match);

	/* CPE matches on the node binary */
	f = find(r, "CVE-2025-55130", "node", "22.21.1");
	assert_true(f->cpe_match);
	assert_string_equal(f->pkg.type, "binary");
	assert_int_equal(f->nfixed, 4);
	assert_int_equal(count_if(r, cpe_only), 6);

	f = find(r, "CVE-2018-20796", "libc6", NULL);
	assert_int_equal(f->severity, SCAN_SEV_NEGLIGIBLE);
	assert_int_equal(count_if(r, negligible), 12);
	assert_int_equal(count_if(r, wont_fix), 3);
	assert_int_equal(count_if(r, with_epss), 133);

	struct scan_counts c;
	scan_report_count(r, &c);
	assert_int_equal(c.total, 136);
	assert_int_equal(c.by_severity[SCAN_SEV_CRITICAL], 11);
	assert_int_equal(c.by_severity[SCAN_SEV_HIGH], 81);
	assert_int_equal(c.by_severity[SCAN_SEV_MEDIUM], 29);
	assert_int_equal(c.by_severity[SCAN_SEV_LOW], 3);
	assert_int_equal(c.by_severity[SCAN_SEV_NEGLIGIBLE], 12);
	scan_report_free(r);
}

static bool kev(const struct scan_finding *f)
{
	return f->kev;
}

static void test_grype_webgoat(void **state)
{
	(void)state;
	struct scan_report *r = load(SCAN_ENGINE_GRYPE, "appsecsanta-research/grype-webgoat.json");
	assert_string_equal(r->image.repo_digests[0],
			    "index.docker.io/webgoat/webgoat@sha256:3101bd9e7bcfe122d7ef91e690ef37"
			    "20de36cc4e86b3d06763a1ddf2e2751a4b");
	assert_int_equal(r->image.nentrypoint, 30);

	/* the CISA KEV entry */
	assert_int_equal(count_if(r, kev), 1);
	const struct scan_finding *f = find(r, "CVE-2021-39144", "xstream", "1.4.5");
	assert_true(f->kev);
	assert_string_equal(f->aliases[1], "GHSA-j9h8-phrw-h4fh");
	assert_string_equal(f->pkg.type, "java-archive");
	assert_string_equal(f->pkg.purl, "pkg:maven/com.thoughtworks.xstream/xstream@1.4.5");
	assert_true(f->epss == 0.9438);
	assert_true(f->epss_percentile == 0.99967);
	/* the match's own cvss has no source: the namespace stands in; then NVD's three */
	assert_int_equal(f->ncvss, 4);
	assert_string_equal(f->cvss[0].source, "github:language:java");
	assert_string_equal(f->cvss[1].source, "nvd@nist.gov");
	assert_string_equal(f->cvss[2].version, "2.0");
	assert_true(f->cvss[2].score == 6);

	/* dpkg epoch inside Grype's version */
	f = find(r, "CVE-2024-56433", "login", NULL);
	assert_string_equal(f->pkg.version, "1:4.13+dfsg1-4ubuntu3.2");
	assert_string_equal(f->pkg.source, "shadow");
	assert_int_equal(f->npaths, 9);
	scan_report_free(r);
}

static void test_grype_small(void **state)
{
	(void)state;
	/* ghsa-test: Grype's own duplicate, GHSA (fixed) and CVE by CPE (unknown) */
	struct scan_report *r = load(SCAN_ENGINE_GRYPE, "anchore-grype/ghsa-test.json");
	assert_string_equal(r->findings[0].id, "CVE-2014-3577");
	assert_int_equal(r->findings[0].naliases, 2);
	assert_string_equal(r->findings[0].aliases[1], "GHSA-cfh5-3ghh-wfjx");
	assert_int_equal(r->findings[0].fix_state[SCAN_ENGINE_GRYPE], SCAN_FIX_FIXED);
	assert_string_equal(r->findings[0].fixed_versions[0], "4.3.5");
	assert_false(r->findings[0].cpe_match);
	assert_string_equal(r->findings[1].id, "CVE-2014-3577");
	assert_int_equal(r->findings[1].naliases, 1);
	assert_int_equal(r->findings[1].fix_state[SCAN_ENGINE_GRYPE], SCAN_FIX_UNKNOWN);
	assert_true(r->findings[1].cpe_match);
	assert_true(r->findings[1].epss < 0); /* older Grype: no epss */
	assert_string_equal(r->findings[1].layer, "sha256:6cc6db176440e3dc3218d2e325716c1922ea9"
						  "d900b61d7ad6f388fd0ed2b4ef9");
	assert_string_equal(r->image.entrypoint[0], "/bin/sh");
	assert_string_equal(r->image.os_family, "alpine");
	scan_report_free(r);

	/* keycloak: six RPMs of one source, wont-fix */
	r = load(SCAN_ENGINE_GRYPE, "anchore-grype/keycloak-test.json");
	assert_int_equal(count_if(r, wont_fix), 6);
	const struct scan_finding *f = find(r, "CVE-2020-12413", "nspr", NULL);
	assert_string_equal(f->pkg.source, "nss");
	assert_string_equal(f->pkg.type, "rpm");
	assert_int_equal(f->severity, SCAN_SEV_LOW);
	assert_null(find(r, "CVE-2020-12413", "nss", NULL)->pkg.source); /* upstreams: [] */
	assert_string_equal(r->image.entrypoint[0], "/opt/keycloak/bin/kc.sh");
	scan_report_free(r);

	/* DefectDojo busybox: fix.state "" on 14 of 15, all CPE matches */
	r = load(SCAN_ENGINE_GRYPE, "defectdojo/many_vulns_with_epss_values.json");
	size_t unknown = 0;
	for (size_t i = 0; i < r->nfindings; i++)
		unknown += r->findings[i].fix_state[SCAN_ENGINE_GRYPE] == SCAN_FIX_UNKNOWN;
	assert_int_equal(unknown, 14);
	assert_int_equal(count_if(r, cpe_only), 15);
	assert_int_equal(count_if(r, with_epss), 15);
	f = find(r, "CVE-2021-42376", "busybox", NULL);
	assert_int_equal(f->fix_state[SCAN_ENGINE_GRYPE], SCAN_FIX_FIXED);
	assert_string_equal(f->paths[0], "/bin/[");
	assert_string_equal(r->image.entrypoint[0], "sh");
	scan_report_free(r);
}

/* ---- JSON ----------------------------------------------------------------- */

static void test_json(void **state)
{
	(void)state;
	struct scan_report *r =
	    load(SCAN_ENGINE_TRIVY, "appsecsanta-research/trivy-juice-shop.json");
	json_t *j = scan_finding_to_json(find(r, "CVE-2024-29415", "ip", NULL));
	assert_non_null(j);
	json_t *want = json_loads(
	    "{\"id\": \"CVE-2024-29415\", \"aliases\": [\"CVE-2024-29415\", "
	    "\"GHSA-2p57-rm9w-gvfp\"],"
	    " \"package\": {\"name\": \"ip\", \"version\": \"2.0.1\", \"type\": \"node-pkg\","
	    "  \"purl\": \"pkg:npm/ip@2.0.1\"},"
	    " \"paths\": [\"juice-shop/node_modules/ip/package.json\"],"
	    " \"layer\": "
	    "\"sha256:5ba25c01fd945a58bd57791d29b29697cf96cbf2cd8ffdfa8285cc3388169f74\","
	    " \"title\": \"node-ip: Incomplete fix for CVE-2023-42282\", \"severity\": \"high\","
	    " \"severity_source\": \"trivy:ghsa\","
	    " \"engine_severity\": {\"trivy\": {\"severity\": \"high\", \"source\": \"ghsa\"}},"
	    " \"cvss\": [{\"source\": \"ghsa\", \"version\": \"3.1\", \"score\": 8.1,"
	    "   \"vector\": \"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H\"},"
	    "  {\"source\": \"redhat\", \"version\": \"3.1\", \"score\": 9.8,"
	    "   \"vector\": \"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\"}],"
	    " \"fixed_versions\": [], \"fix_state\": {\"trivy\": \"affected\"},"
	    " \"kev\": false, \"cpe_match\": false, \"engines\": [\"trivy\"],"
	    " \"urls\": [\"https://avd.aquasec.com/nvd/cve-2024-29415\","
	    "  \"https://github.com/advisories?query=type%3Areviewed+ecosystem%3Anpm\"]}",
	    0, NULL);
	assert_non_null(want);
	if (!json_equal(j, want)) {
		char *got = json_dumps(j, JSON_SORT_KEYS);
		fail_msg("finding JSON: %s", got);
	}
	json_decref(want);
	json_decref(j);

	j = scan_image_to_json(&r->image);
	assert_string_equal(json_string_value(json_object_get(j, "os_version")), "12.12");
	assert_true(json_is_false(json_object_get(j, "os_eol")));
	assert_int_equal(json_array_size(json_object_get(j, "entrypoint")), 2);
	assert_int_equal(json_array_size(json_object_get(j, "repo_digests")), 1);
	json_decref(j);

	struct scan_counts c;
	scan_report_count(r, &c);
	j = scan_counts_to_json(&c);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 135);
	size_t sum = 0;
	for (int s = 0; s < SCAN_SEV_COUNT; s++)
		sum += (size_t)json_integer_value(
		    json_object_get(j, scan_severity_name((enum scan_severity)s)));
	assert_int_equal(sum, 135);
	json_decref(j);
	scan_report_free(r);

	/* a Grype finding: epss present, grype members */
	r = load(SCAN_ENGINE_GRYPE, "appsecsanta-research/grype-webgoat.json");
	j = scan_finding_to_json(find(r, "CVE-2021-39144", "xstream", NULL));
	assert_true(json_real_value(json_object_get(j, "epss")) == 0.9438);
	assert_true(json_is_true(json_object_get(j, "kev")));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(j, "fix_state"), "grype")), "fixed");
	assert_null(json_object_get(json_object_get(j, "fix_state"), "trivy"));
	assert_null(json_object_get(j, "title"));
	json_decref(j);
	scan_report_free(r);
}

static void test_names(void **state)
{
	(void)state;
	for (int s = 0; s < SCAN_SEV_COUNT; s++)
		assert_int_equal(scan_severity_parse(scan_severity_name((enum scan_severity)s)), s);
	assert_int_equal(scan_severity_parse("CRITICAL"), SCAN_SEV_CRITICAL);
	assert_int_equal(scan_severity_parse("Negligible"), SCAN_SEV_NEGLIGIBLE);
	assert_int_equal(scan_severity_parse("severe"), -1);
	assert_int_equal(scan_severity_parse(""), -1);
	assert_string_equal(scan_fix_state_name(SCAN_FIX_WONT_FIX), "wont_fix");
	assert_string_equal(scan_fix_state_name(SCAN_FIX_EOL), "end_of_life");
	assert_string_equal(scan_engine_name(SCAN_ENGINE_GRYPE), "grype");
}

static void test_arena(void **state)
{
	(void)state;
	struct scan_report *r = scan_report_new();
	assert_non_null(r);
	size_t before = scan_report_arena_bytes(r);
	char *small[1000];
	for (int i = 0; i < 1000; i++) {
		small[i] = scan_alloc(r, 100);
		assert_non_null(small[i]);
		assert_int_equal((uintptr_t)small[i] % 16, 0);
		for (int k = 0; k < 100; k++)
			assert_int_equal(small[i][k], 0);
		memset(small[i], i & 0xff, 100);
	}
	const char *s = scan_strndup(r, "abcdef", 3);
	assert_string_equal(s, "abc");
	unsigned char *big = scan_alloc(r, 5u << 20); /* its own chunk */
	assert_non_null(big);
	assert_int_equal(big[0] | big[(5u << 20) - 1], 0);
	for (int i = 0; i < 1000; i++) /* nothing overlapped */
		assert_int_equal((unsigned char)small[i][99], i & 0xff);
	assert_true(scan_report_arena_bytes(r) >= before + (5u << 20) + 100000);
	assert_null(scan_alloc(r, SIZE_MAX));
	assert_null(scan_strdup(r, NULL));
	scan_report_free(r);
	scan_report_free(NULL);

	const char *v[] = {"b", "a", "b", "c", "a"};
	assert_int_equal(scan_strv_sort_unique(v, 5), 3);
	assert_string_equal(v[0], "a");
	assert_string_equal(v[2], "c");
	const char *w[40];
	for (int i = 0; i < 40; i++)
		w[i] = (i % 3 == 0) ? "x" : (i % 3 == 1) ? "y" : i == 2 ? "z" : "x";
	assert_int_equal(scan_strv_unique(w, 40), 3); /* the long path: x y z in first order */
	assert_string_equal(w[0], "x");
	assert_string_equal(w[1], "y");
	assert_string_equal(w[2], "z");
}

/* ---- synthetic and hostile reports --------------------------------------- */

#define TRIVY_HEAD                                                                                 \
	"{\"SchemaVersion\":2,\"ArtifactName\":\"img\",\"Results\":[{\"Target\":\"t\","            \
	"\"Class\":\"lang-pkgs\",\"Type\":\"npm\",\"Vulnerabilities\":["
#define TRIVY_TAIL "]}]}"
#define TRIVY_VULN                                                                                 \
	"{\"VulnerabilityID\":\"CVE-2020-1\",\"PkgName\":\"p\",\"InstalledVersion\":\"1\","        \
	"\"Severity\":\"LOW\""
#define GRYPE_HEAD "{\"matches\":["
#define GRYPE_TAIL "],\"descriptor\":{\"name\":\"grype\",\"version\":\"0.1\"}}"
#define GRYPE_MATCH                                                                                \
	"{\"artifact\":{\"name\":\"p\",\"version\":\"1\"},"                                        \
	"\"vulnerability\":{\"id\":\"CVE-2020-1\",\"severity\":\"Low\",\"namespace\":\"nvd:cpe\""

/* A Trivy report with one vulnerability: TRIVY_VULN + extra fields + "}". */
static char *trivy_one(const char *extra)
{
	struct sb b = {0};
	sb_add(&b, TRIVY_HEAD TRIVY_VULN);
	sb_add(&b, extra);
	sb_add(&b, "}" TRIVY_TAIL);
	return b.p;
}

/* A Grype report with one match: vulnerability extra fields, then match extra fields. */
static char *grype_one(const char *vuln_extra, const char *match_extra)
{
	struct sb b = {0};
	sb_add(&b, GRYPE_HEAD GRYPE_MATCH);
	sb_add(&b, vuln_extra);
	sb_add(&b, "}");
	sb_add(&b, match_extra);
	sb_add(&b, "}" GRYPE_TAIL);
	return b.p;
}

static void test_trivy_wrong_types(void **state)
{
	(void)state;
	static const struct {
		const char *extra, *want;
	} vulns[] = {
	    {",\"VendorIDs\":\"SECRET\"",
	     "Results[0].Vulnerabilities[0]: VendorIDs must be an array"},
	    {",\"VendorIDs\":[1]", "VendorIDs[0] must be a string"},
	    {",\"CVSS\":{\"SECRET\":3}", "CVSS values must be objects"},
	    {",\"CVSS\":{\"nvd\":{\"V3Score\":\"9.8\"}}", "CVSS.V3Score must be a number"},
	    {",\"CVSS\":{\"nvd\":{\"V3Score\":11}}", "CVSS.V3Score must be between 0 and 10"},
	    {",\"CVSS\":{\"nvd\":{\"V40Vector\":[]}}", "CVSS.V40Vector must be a string"},
	    {",\"Layer\":\"SECRET\"", "Layer must be an object"},
	    {",\"Layer\":{\"DiffID\":1}", "Layer.DiffID must be a string"},
	    {",\"PkgIdentifier\":{\"PURL\":{}}", "PkgIdentifier.PURL must be a string"},
	    {",\"FixedVersion\":1", "FixedVersion must be a string"},
	    {",\"Status\":true", "Status must be a string"},
	    {",\"SeveritySource\":2", "SeveritySource must be a string"},
	    {",\"DataSource\":{\"URL\":5}", "DataSource.URL must be a string"},
	    {",\"Title\":[\"SECRET\"]", "Title must be a string"},
	    {",\"PkgPath\":false", "PkgPath must be a string"},
	};
	for (size_t i = 0; i < sizeof(vulns) / sizeof(vulns[0]); i++) {
		char *doc = trivy_one(vulns[i].extra);
		refused(SCAN_ENGINE_TRIVY, doc, ODX_EINVAL, vulns[i].want);
		free(doc);
	}
	static const struct {
		const char *doc, *want;
	} docs[] = {
	    {TRIVY_HEAD "{\"VulnerabilityID\":1,\"PkgName\":\"p\",\"Severity\":\"LOW\"}" TRIVY_TAIL,
	     "Results[0].Vulnerabilities[0]: VulnerabilityID must be a string"},
	    {TRIVY_HEAD "{\"VulnerabilityID\":\"CVE-1\",\"Severity\":\"LOW\"}" TRIVY_TAIL,
	     "PkgName is missing"},
	    {TRIVY_HEAD
	     "{\"VulnerabilityID\":\"\",\"PkgName\":\"p\",\"Severity\":\"LOW\"}" TRIVY_TAIL,
	     "VulnerabilityID must not be empty"},
	    {TRIVY_HEAD
	     "{\"VulnerabilityID\":\"CVE-1\",\"PkgName\":\"p\",\"Severity\":\"SECRET\"}" TRIVY_TAIL,
	     "Severity is not one of Trivy's severities"},
	    {TRIVY_HEAD TRIVY_VULN "}, 7" TRIVY_TAIL,
	     "Results[0].Vulnerabilities[1]: must be an object"},
	    {"{\"SchemaVersion\":2,\"Results\":{}}", "Results must be an array"},
	    {"{\"SchemaVersion\":2,\"Results\":[{\"Class\":\"os-pkgs\"},1]}",
	     "Results[1]: must be an object"},
	    {"{\"SchemaVersion\":2,\"Results\":[{\"Class\":\"os-pkgs\",\"Vulnerabilities\":{}}]}",
	     "Results[0]: Vulnerabilities must be an array"},
	    {"{\"SchemaVersion\":2,\"Results\":[{\"Class\":5}]}",
	     "Results[0]: Class must be a string"},
	    {"{\"SchemaVersion\":2,\"Results\":[{\"Class\":\"os-pkgs\",\"Packages\":[{\"ID\":\"a\","
	     "\"SrcName\":5}],\"Vulnerabilities\":[" TRIVY_VULN "}]}]}",
	     "Results[0].Packages[0]: SrcName must be a string"},
	    {"{\"SchemaVersion\":2,\"Results\":[{\"Class\":\"os-pkgs\",\"Packages\":[{\"ID\":\"a\","
	     "\"SrcName\":\"s\",\"Epoch\":\"1\"}],\"Vulnerabilities\":[" TRIVY_VULN "}]}]}",
	     "Results[0].Packages[0]: Epoch must be an integer"},
	    {"{\"SchemaVersion\":2,\"Metadata\":[]}", "Metadata must be an object"},
	    {"{\"SchemaVersion\":2,\"Metadata\":{\"OS\":{\"EOSL\":\"yes\"}}}",
	     "Metadata.OS.EOSL must be a boolean"},
	    {"{\"SchemaVersion\":2,\"Metadata\":{\"RepoDigests\":[\"a\",3]}}",
	     "Metadata.RepoDigests[1] must be a string"},
	    {"{\"SchemaVersion\":2,\"Metadata\":{\"ImageConfig\":"
	     "{\"config\":{\"Cmd\":\"SECRET\"}}}}",
	     "Metadata.ImageConfig.config.Cmd must be an array"},
	    {"{\"SchemaVersion\":2,\"Trivy\":{\"Version\":0.69}}",
	     "Trivy.Version must be a string"},
	    {"{\"SchemaVersion\":\"2\"}", "SchemaVersion must be 2"},
	    {"{\"SchemaVersion\":1,\"Results\":[]}", "SchemaVersion must be 2"},
	    {"{}", "not a Trivy report: SchemaVersion is missing"},
	    {"[{\"Target\":\"SECRET\",\"Vulnerabilities\":[]}]", "legacy Trivy report"},
	    {"{\"SchemaVersion\":2,\"matches\":[]}", "not a Trivy report"},
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		refused(SCAN_ENGINE_TRIVY, docs[i].doc, ODX_EINVAL, docs[i].want);
}

static void test_grype_wrong_types(void **state)
{
	(void)state;
	static const struct {
		const char *vuln, *match, *want;
	} cases[] = {
	    {"", ",\"relatedVulnerabilities\":1",
	     "matches[0]: relatedVulnerabilities must be an array"},
	    {"", ",\"relatedVulnerabilities\":[{\"id\":2}]",
	     "matches[0].relatedVulnerabilities[0]: id must be a string"},
	    {"", ",\"relatedVulnerabilities\":[3]", "relatedVulnerabilities[0] must be an object"},
	    {",\"advisories\":[{\"link\":\"SECRET\"}]", "",
	     "matches[0].vulnerability.advisories[0]: id is missing"},
	    {",\"fix\":{\"versions\":\"SECRET\"}", "",
	     "vulnerability.fix.versions must be an array"},
	    {",\"fix\":{\"state\":1}", "", "vulnerability.fix.state must be a string"},
	    {",\"fix\":[]", "", "vulnerability.fix must be an object"},
	    {",\"epss\":[{\"cve\":\"CVE-2020-1\",\"epss\":\"0.5\"}]", "",
	     "vulnerability.epss.epss must be a number"},
	    {",\"epss\":[{\"epss\":1.5}]", "", "vulnerability.epss.epss is out of range"},
	    {",\"epss\":[{\"epss\":0.5,\"percentile\":-1}]", "",
	     "vulnerability.epss.percentile is out of range"},
	    {",\"epss\":[7]", "", "vulnerability.epss[0] must be an object"},
	    {",\"cvss\":[{\"vector\":5}]", "", "matches[0]: cvss.vector must be a string"},
	    {",\"cvss\":[{\"metrics\":{\"baseScore\":\"SECRET\"}}]", "",
	     "cvss.metrics.baseScore must be a number"},
	    {",\"cvss\":[1]", "", "cvss[0] must be an object"},
	    {"", ",\"relatedVulnerabilities\":[{\"id\":\"CVE-1\",\"cvss\":{}}]",
	     "matches[0].relatedVulnerabilities[0]: cvss must be an array"},
	    {",\"knownExploited\":{}", "", "knownExploited must be an array"},
	    {",\"urls\":[\"a\",{}]", "", "vulnerability.urls[1] must be a string"},
	    {",\"dataSource\":1", "", "vulnerability.dataSource must be a string"},
	    {"", ",\"matchDetails\":[{\"type\":1}]",
	     "matches[0].matchDetails[0]: type must be a string"},
	    {"", ",\"matchDetails\":{}", "matchDetails must be an array"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *doc = grype_one(cases[i].vuln, cases[i].match);
		refused(SCAN_ENGINE_GRYPE, doc, ODX_EINVAL, cases[i].want);
		free(doc);
	}
	static const struct {
		const char *doc, *want;
	} docs[] = {
	    {GRYPE_HEAD "{\"vulnerability\":{\"id\":1,\"severity\":\"Low\"},\"artifact\":{\"name\":"
			"\"p\"}}" GRYPE_TAIL,
	     "matches[0]: vulnerability.id must be a string"},
	    {GRYPE_HEAD
	     "{\"vulnerability\":{\"id\":\"CVE-1\",\"severity\":\"SECRET\"},\"artifact\":"
	     "{\"name\":\"p\"}}" GRYPE_TAIL,
	     "vulnerability.severity is not one of Grype's severities"},
	    {GRYPE_HEAD
	     "{\"vulnerability\":{\"id\":\"CVE-1\",\"severity\":\"Low\",\"namespace\":1},"
	     "\"artifact\":{\"name\":\"p\"}}" GRYPE_TAIL,
	     "matches[0]: vulnerability.namespace must be a string"},
	    {GRYPE_HEAD "{\"vulnerability\":{\"id\":\"CVE-1\",\"severity\":\"Low\"}}" GRYPE_TAIL,
	     "matches[0]: artifact is missing"},
	    {GRYPE_HEAD "{\"artifact\":{\"name\":\"p\"}}" GRYPE_TAIL,
	     "matches[0]: vulnerability is missing"},
	    {GRYPE_HEAD "{\"vulnerability\":{\"id\":\"CVE-1\",\"severity\":\"Low\"},\"artifact\":"
			"{\"version\":\"1\"}}" GRYPE_TAIL,
	     "matches[0]: artifact.name is missing"},
	    {GRYPE_HEAD "{\"vulnerability\":{\"id\":\"CVE-1\",\"severity\":\"Low\"},\"artifact\":"
			"{\"name\":\"p\",\"locations\":[{\"path\":1}]}}" GRYPE_TAIL,
	     "matches[0].artifact.locations[0]: path must be a string"},
	    {GRYPE_HEAD "{\"vulnerability\":{\"id\":\"CVE-1\",\"severity\":\"Low\"},\"artifact\":"
			"{\"name\":\"p\",\"upstreams\":[\"SECRET\"]}}" GRYPE_TAIL,
	     "artifact.upstreams[0] must be an object"},
	    {GRYPE_HEAD "{\"vulnerability\":{\"id\":\"CVE-1\",\"severity\":\"Low\"},\"artifact\":"
			"{\"name\":\"p\",\"purl\":7}}" GRYPE_TAIL,
	     "artifact.purl must be a string"},
	    {GRYPE_HEAD "8" GRYPE_TAIL, "matches[0]: must be an object"},
	    {"{\"matches\":{},\"descriptor\":{\"name\":\"grype\"}}", "matches must be an array"},
	    {"{\"matches\":[],\"descriptor\":{\"name\":\"SECRET\"}}",
	     "not a Grype report: descriptor.name"},
	    {"{\"matches\":[]}", "not a Grype report: descriptor is missing"},
	    {"{}", "not a Grype report: matches is missing"},
	    {"[]", "a Grype report must be a JSON object"},
	    {"{\"SchemaVersion\":2,\"Results\":[]}", "not a Grype report"},
	    {"{\"matches\":[],\"descriptor\":{\"name\":\"grype\"},\"source\":{\"target\":5}}",
	     "source.target must be an object or a string"},
	    {"{\"matches\":[],\"descriptor\":{\"name\":\"grype\"},\"source\":{\"target\":{"
	     "\"config\":5}}}",
	     "source.target.config must be a string"},
	    {"{\"matches\":[],\"descriptor\":{\"name\":\"grype\"},\"distro\":{\"name\":1}}",
	     "distro.name must be a string"},
	    {"{\"matches\":[],\"descriptor\":{\"name\":\"grype\"},\"alertsByPackage\":[{\"alerts\":"
	     "[{\"type\":3}]}]}",
	     "alertsByPackage.alerts.type must be a string"},
	    {"{\"matches\":[],\"descriptor\":{\"name\":\"grype\",\"version\":2}}",
	     "descriptor.version must be a string"},
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		refused(SCAN_ENGINE_GRYPE, docs[i].doc, ODX_EINVAL, docs[i].want);
}

/* Trivy mapping details the real files do not cover. */
static void test_trivy_mapping(void **state)
{
	(void)state;
	/* no Class: os-pkgs when Type is the OS family; source by name and epoch:version-release */
	struct scan_report *r = accepted(
	    SCAN_ENGINE_TRIVY,
	    "{\"SchemaVersion\":2,\"Metadata\":{\"OS\":{\"Family\":\"rocky\",\"Name\":\"9.3\"}},"
	    "\"Results\":[{\"Type\":\"rocky\",\"Packages\":["
	    "{\"Name\":\"login\",\"Version\":\"4.13\",\"Release\":\"1.el9\",\"Epoch\":1,"
	    "\"SrcName\":\"shadow\"},{\"Name\":\"x\",\"SrcName\":\"\"}],\"Vulnerabilities\":["
	    "{\"VulnerabilityID\":\"RHSA-1\",\"VendorIDs\":[\"CVE-2020-9\",\"CVE-2020-8\","
	    "\"RHSA-1\",\"\"],\"PkgName\":\"login\",\"InstalledVersion\":\"1:4.13-1.el9\","
	    "\"Severity\":\"critical\",\"FixedVersion\":\" 2.0, ,1.0,2.0 \"},"
	    "{\"VulnerabilityID\":\"CVE-2020-7\",\"PkgName\":\"login\","
	    "\"InstalledVersion\":\"4.13-1.el9\",\"Severity\":\"UNKNOWN\","
	    "\"Status\":\"not_affected\"}]},"
	    "{\"Class\":\"secret\",\"Vulnerabilities\":[" TRIVY_VULN "}]},"
	    "{\"Class\":\"lang-pkgs\",\"Vulnerabilities\":null},{\"Class\":\"os-pkgs\"}]}");
	check_report(r, SCAN_ENGINE_TRIVY);
	assert_int_equal(r->nfindings, 2); /* the secret result is skipped */
	const struct scan_finding *f = &r->findings[0];
	assert_string_equal(f->pkg.type, "rpm");
	assert_string_equal(f->pkg.source, "shadow");
	assert_string_equal(f->id, "CVE-2020-9"); /* the first CVE in report order */
	assert_int_equal(f->naliases, 3);	  /* empty and repeated ids dropped */
	assert_string_equal(f->aliases[0], "CVE-2020-8");
	assert_string_equal(f->aliases[2], "RHSA-1");
	assert_int_equal(f->nfixed, 2);
	assert_string_equal(f->fixed_versions[0], "2.0");
	assert_string_equal(f->fixed_versions[1], "1.0");
	assert_int_equal(f->fix_state[SCAN_ENGINE_TRIVY], SCAN_FIX_FIXED); /* no Status, a fix */
	assert_string_equal(f->severity_source, "trivy");
	assert_null(f->urls);
	f = &r->findings[1];
	assert_null(f->pkg.source); /* the epoch does not match */
	assert_int_equal(f->fix_state[SCAN_ENGINE_TRIVY], SCAN_FIX_UNKNOWN);
	assert_int_equal(f->severity, SCAN_SEV_UNKNOWN);
	scan_report_free(r);

	/* null Results, missing Results, an empty report */
	r = accepted(SCAN_ENGINE_TRIVY, "{\"SchemaVersion\":2,\"Results\":null}");
	assert_int_equal(r->nfindings, 0);
	assert_null(r->image.name);
	scan_report_free(r);
	r = accepted(SCAN_ENGINE_TRIVY, "{\"SchemaVersion\":2,\"ArtifactName\":\"a\"}");
	assert_int_equal(r->nfindings, 0);
	assert_string_equal(r->image.name, "a");
	scan_report_free(r);

	/* unknown fields of any shape are ignored */
	r = accepted(SCAN_ENGINE_TRIVY,
		     TRIVY_HEAD TRIVY_VULN ",\"NewField\":{\"a\":[1,{}]},"
					   "\"CweIDs\":null,\"VendorIDs\":null}" TRIVY_TAIL);
	assert_int_equal(r->nfindings, 1);
	scan_report_free(r);
}

static void test_grype_mapping(void **state)
{
	(void)state;
	/* epss: the entry of the chosen id wins over a higher one; KEV on a related record */
	struct scan_report *r = accepted(
	    SCAN_ENGINE_GRYPE,
	    "{\"matches\":[{\"vulnerability\":{\"id\":\"GHSA-x\",\"severity\":\"unknown\","
	    "\"epss\":[{\"cve\":\"CVE-2020-2\",\"epss\":0.9,\"percentile\":0.99},"
	    "{\"cve\":\"CVE-2020-1\",\"epss\":0.1,\"percentile\":0.5}],"
	    "\"fix\":{\"versions\":[\"2\",\"\",\"2\"]},\"advisories\":[{\"id\":\"DSA-1\"}]},"
	    "\"relatedVulnerabilities\":[{\"id\":\"CVE-2020-1\",\"namespace\":\"nvd:cpe\","
	    "\"knownExploited\":[{}],\"cvss\":[{\"version\":\"3.1\",\"vector\":\"CVSS:3.1/AV:N\"},"
	    "{\"vector\":\"CVSS:4.0/AV:N\",\"metrics\":{\"baseScore\":10}}]}],"
	    "\"matchDetails\":[{\"type\":\"cpe-match\"},{\"type\":\"exact-direct-match\"}],"
	    "\"artifact\":{\"name\":\"p\",\"locations\":[{\"path\":\"/a\"},{\"path\":\"/a\"},"
	    "{}]}}],"
	    "\"source\":{\"type\":\"directory\",\"target\":\"/src\"},"
	    "\"distro\":{\"name\":\"\",\"version\":\"\",\"idLike\":null},"
	    "\"alertsByPackage\":[{\"alerts\":[{\"type\":\"distro-eol\"}]}],"
	    "\"descriptor\":{\"name\":\"grype\"}}");
	check_report(r, SCAN_ENGINE_GRYPE);
	const struct scan_finding *f = &r->findings[0];
	assert_string_equal(f->id, "CVE-2020-1");
	assert_int_equal(f->naliases, 3);
	assert_true(f->epss == 0.1 && f->epss_percentile == 0.5);
	assert_true(f->kev); /* from the related record */
	assert_false(f->cpe_match);
	assert_int_equal(f->ncvss, 2);
	assert_string_equal(f->cvss[0].source, "nvd:cpe");
	assert_true(f->cvss[0].score < 0);
	assert_string_equal(f->cvss[1].version, "4.0");
	assert_true(f->cvss[1].score == 10);
	assert_int_equal(f->nfixed, 1);
	assert_int_equal(f->fix_state[SCAN_ENGINE_GRYPE], SCAN_FIX_FIXED);
	assert_int_equal(f->npaths, 1);
	assert_string_equal(f->pkg.version, "");
	assert_string_equal(f->severity_source, "grype");
	assert_string_equal(r->image.name, "/src");
	assert_null(r->image.os_family);
	assert_true(r->image.os_eol);
	scan_report_free(r);

	/* base64 that does not decode, or decodes to something else: no entrypoint, no error */
	static const char *const configs[] = {"!!!", "e30=", "WzFd",
					      "eyJjb25maWciOnsiQ21kIjo1fX0="};
	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
		struct sb b = {0};
		sb_add(&b, "{\"matches\":[],\"descriptor\":{\"name\":\"grype\"},\"source\":{"
			   "\"target\":{\"config\":\"");
		sb_add(&b, configs[i]);
		sb_add(&b, "\"}}}");
		r = accepted(SCAN_ENGINE_GRYPE, b.p);
		assert_int_equal(r->image.nentrypoint, 0);
		scan_report_free(r);
		free(b.p);
	}
	/* {"config":{"Entrypoint":["/e"],"Cmd":null}} */
	r = accepted(
	    SCAN_ENGINE_GRYPE,
	    "{\"matches\":[],\"descriptor\":{\"name\":\"grype\"},\"source\":{\"target\":{"
	    "\"config\":\"eyJjb25maWciOnsiRW50cnlwb2ludCI6WyIvZSJdLCJDbWQiOm51bGx9fQ==\"}}}");
	assert_int_equal(r->image.nentrypoint, 1);
	assert_string_equal(r->image.entrypoint[0], "/e");
	scan_report_free(r);

	/* urls are cut at SCAN_MAX_LIST, not refused */
	struct sb b = {0};
	sb_add(&b, GRYPE_HEAD GRYPE_MATCH ",\"dataSource\":\"https://d\",\"urls\":[\"https://d\"");
	sb_rep(&b, ",\"https://u\"", 5);
	for (int i = 0; i < 300; i++) {
		char u[40];
		snprintf(u, sizeof(u), ",\"https://u/%d\"", i);
		sb_add(&b, u);
	}
	sb_add(&b, "]}}" GRYPE_TAIL);
	r = accepted(SCAN_ENGINE_GRYPE, b.p);
	/* the first 256 kept (dataSource, its repeat, 5 repeats of u, u/0..u/248), then unique */
	assert_int_equal(r->findings[0].nurls, SCAN_MAX_LIST - 5);
	assert_string_equal(r->findings[0].urls[SCAN_MAX_LIST - 6], "https://u/248");
	assert_string_equal(r->findings[0].urls[0], "https://d");
	assert_string_equal(r->findings[0].urls[1], "https://u");
	scan_report_free(r);
	free(b.p);
}

/* Parses every prefix of text: each is refused or parsed, never a crash; returns how many parse. */
static size_t parse_prefixes(enum scan_engine e, const char *text, size_t len)
{
	size_t ok = 0;
	for (size_t n = 0; n <= len; n++) {
		char *copy = malloc(n ? n : 1); /* exact size: ASan sees any over-read */
		assert_non_null(copy);
		memcpy(copy, text, n);
		struct scan_report *r;
		char msg[SCAN_MSG_LEN];
		int rc = parse(e, copy, n, &r, msg);
		assert_true(rc == 0 || rc == ODX_EINVAL);
		if (rc == 0) {
			check_report(r, e);
			scan_report_free(r);
			ok++;
		}
		free(copy);
	}
	return ok;
}

static void test_prefixes(void **state)
{
	(void)state;
	size_t len;
	char *text = slurp("anchore-grype/ghsa-test.json", &len);
	size_t ok = parse_prefixes(SCAN_ENGINE_GRYPE, text, len);
	assert_true(ok >= 1 && ok <= 2); /* the whole file, and without its last newline */
	free(text);

	/* a small Trivy report using every field the parser reads */
	static const char trivy[] =
	    "{\"SchemaVersion\":2,\"Trivy\":{\"Version\":\"1\"},\"ArtifactName\":\"a\","
	    "\"Metadata\":{\"ImageID\":\"sha256:1\",\"RepoDigests\":[\"a@sha256:2\"],"
	    "\"OS\":{\"Family\":\"debian\",\"Name\":\"12.1\",\"EOSL\":true},"
	    "\"ImageConfig\":{\"config\":{\"Entrypoint\":[\"/e\"],\"Cmd\":[\"c\"]}}},"
	    "\"Results\":[{\"Class\":\"os-pkgs\",\"Type\":\"debian\",\"Packages\":["
	    "{\"ID\":\"p@1\",\"Name\":\"p\",\"Version\":\"1\",\"Epoch\":1,\"SrcName\":\"s\"}],"
	    "\"Vulnerabilities\":[{\"VulnerabilityID\":\"CVE-1\",\"VendorIDs\":[\"DSA-1\"],"
	    "\"PkgID\":\"p@1\",\"PkgName\":\"p\",\"PkgPath\":\"x\","
	    "\"PkgIdentifier\":{\"PURL\":\"pkg:deb/p\"},\"InstalledVersion\":\"1\","
	    "\"FixedVersion\":\"2, 3\",\"Status\":\"fixed\",\"Layer\":{\"DiffID\":\"sha256:3\"},"
	    "\"SeveritySource\":\"debian\",\"PrimaryURL\":\"u\",\"DataSource\":{\"URL\":\"v\"},"
	    "\"Title\":\"t\",\"Severity\":\"HIGH\",\"CVSS\":{\"nvd\":{\"V2Vector\":\"AV:N\","
	    "\"V2Score\":5,\"V3Vector\":\"CVSS:3.1/AV:N\",\"V3Score\":9.8}}}]}]}";
	assert_int_equal(parse_prefixes(SCAN_ENGINE_TRIVY, trivy, sizeof(trivy) - 1), 1);
}

static void test_bounds(void **state)
{
	(void)state;
	char *big = malloc(1000001);
	assert_non_null(big);
	memset(big, 'a', 1000000);
	big[1000000] = '\0';

	/* a long string in a field we read is refused; in one we ignore, it is fine */
	struct sb b = {0};
	sb_add(&b, ",\"Title\":\"");
	sb_add(&b, big);
	sb_add(&b, "\"");
	char *doc = trivy_one(b.p);
	refused(SCAN_ENGINE_TRIVY, doc, ODX_ETOOBIG, "Title is longer than 65536 bytes");
	free(doc);
	b.len = 0;
	sb_add(&b, ",\"Description\":\"");
	sb_add(&b, big);
	sb_add(&b, "\"");
	doc = trivy_one(b.p);
	scan_report_free(accepted(SCAN_ENGINE_TRIVY, doc));
	free(doc);
	b.len = 0;
	sb_add(&b, ",\"urls\":[\"");
	sb_add(&b, big);
	sb_add(&b, "\"]");
	doc = grype_one(b.p, "");
	refused(SCAN_ENGINE_GRYPE, doc, ODX_ETOOBIG, "vulnerability.urls[0] is longer than");
	free(doc);
	free(big);

	/* a list over SCAN_MAX_LIST */
	b.len = 0;
	sb_add(&b, ",\"VendorIDs\":[\"X\"");
	sb_rep(&b, ",\"X\"", SCAN_MAX_LIST);
	sb_add(&b, "]");
	doc = trivy_one(b.p);
	refused(SCAN_ENGINE_TRIVY, doc, ODX_ETOOBIG, "VendorIDs has more than");
	free(doc);
	b.len = 0;
	sb_add(&b, ",\"FixedVersion\":\"1");
	sb_rep(&b, ",1", SCAN_MAX_LIST);
	sb_add(&b, "\"");
	doc = trivy_one(b.p);
	refused(SCAN_ENGINE_TRIVY, doc, ODX_ETOOBIG, "FixedVersion lists more than");
	free(doc);
	b.len = 0;
	sb_add(&b, ",\"relatedVulnerabilities\":[{\"id\":\"CVE-1\"}");
	sb_rep(&b, ",{\"id\":\"CVE-1\"}", SCAN_MAX_LIST);
	sb_add(&b, "]");
	doc = grype_one("", b.p);
	refused(SCAN_ENGINE_GRYPE, doc, ODX_ETOOBIG, "more than 255 related ids");
	free(doc);
	free(b.p);

	/* the report size */
	char *huge = malloc(SCAN_MAX_REPORT + 1); /* never touched: the length is refused first */
	assert_non_null(huge);
	char msg[SCAN_MSG_LEN];
	struct scan_report *r;
	assert_int_equal(parse(SCAN_ENGINE_TRIVY, huge, SCAN_MAX_REPORT + 1, &r, msg), ODX_ETOOBIG);
	assert_int_equal(parse(SCAN_ENGINE_GRYPE, huge, SCAN_MAX_REPORT + 1, &r, msg), ODX_ETOOBIG);
	free(huge);
}

static void test_too_many_findings(void **state)
{
	(void)state;
	/* SCAN_MAX_FINDINGS across two results is fine; one more is refused */
	struct sb b = {0};
	sb_add(&b, TRIVY_HEAD TRIVY_VULN "}");
	sb_rep(&b, "," TRIVY_VULN "}", SCAN_MAX_FINDINGS / 2 - 1);
	sb_add(&b, "]},{\"Class\":\"lang-pkgs\",\"Vulnerabilities\":[" TRIVY_VULN "}");
	sb_rep(&b, "," TRIVY_VULN "}", SCAN_MAX_FINDINGS / 2 - 1);
	size_t mark = b.len;
	sb_add(&b, TRIVY_TAIL);
	struct scan_report *r = accepted(SCAN_ENGINE_TRIVY, b.p);
	assert_int_equal(r->nfindings, SCAN_MAX_FINDINGS);
	scan_report_free(r);
	b.len = mark;
	sb_add(&b, "," TRIVY_VULN "}" TRIVY_TAIL);
	refused(SCAN_ENGINE_TRIVY, b.p, ODX_ETOOBIG, "more than 200000 findings");
	free(b.p);

	b = (struct sb){0};
	sb_add(&b, GRYPE_HEAD GRYPE_MATCH "}}");
	sb_rep(&b, "," GRYPE_MATCH "}}", SCAN_MAX_FINDINGS);
	sb_add(&b, GRYPE_TAIL);
	refused(SCAN_ENGINE_GRYPE, b.p, ODX_ETOOBIG, "more than 200000 findings");
	free(b.p);
}

/* Many packages of one name: the source lookup stays bounded (quadratic would time out). */
static void test_package_flood(void **state)
{
	(void)state;
	enum { N = 50000 };
	struct sb b = {0};
	sb_add(&b, "{\"SchemaVersion\":2,\"Results\":[{\"Class\":\"os-pkgs\",\"Type\":\"debian\","
		   "\"Packages\":[{\"Name\":\"a\",\"Version\":\"1\",\"SrcName\":\"s\"}");
	sb_rep(&b, ",{\"Name\":\"a\",\"Version\":\"1\",\"SrcName\":\"t\"}", N);
	sb_add(&b, "],\"Vulnerabilities\":[{\"VulnerabilityID\":\"CVE-1\",\"PkgName\":\"a\","
		   "\"InstalledVersion\":\"1\",\"Severity\":\"LOW\"}");
	sb_rep(&b,
	       ",{\"VulnerabilityID\":\"CVE-1\",\"PkgName\":\"a\",\"InstalledVersion\":\"2\","
	       "\"Severity\":\"LOW\"}",
	       N);
	sb_add(&b, "]}]}");
	struct scan_report *r = accepted(SCAN_ENGINE_TRIVY, b.p);
	assert_int_equal(r->nfindings, N + 1);
	assert_string_equal(r->findings[0].pkg.source, "s"); /* the first package of that name */
	assert_null(r->findings[1].pkg.source);
	scan_report_free(r);
	free(b.p);
}

static void test_malformed(void **state)
{
	(void)state;
	/* depth bombs: at the top and inside a field nobody reads */
	struct sb b = {0};
	sb_rep(&b, "[", 100000);
	for (int e = 0; e < SCAN_ENGINE_COUNT; e++)
		refused((enum scan_engine)e, b.p, ODX_EINVAL, "nested too deeply");
	b.len = 0;
	sb_add(&b, ",\"Deep\":");
	sb_rep(&b, "{\"a\":", 5000);
	sb_add(&b, "1");
	sb_rep(&b, "}", 5000);
	char *doc = trivy_one(b.p);
	refused(SCAN_ENGINE_TRIVY, doc, ODX_EINVAL, "nested too deeply");
	free(doc);
	doc = grype_one(b.p, "");
	refused(SCAN_ENGINE_GRYPE, doc, ODX_EINVAL, "nested too deeply");
	free(doc);
	free(b.p);

	refused(SCAN_ENGINE_TRIVY, TRIVY_HEAD TRIVY_VULN ",\"Title\":\"\xff\xfe\"}" TRIVY_TAIL,
		ODX_EINVAL, "invalid UTF-8");
	refused(SCAN_ENGINE_GRYPE, GRYPE_HEAD GRYPE_MATCH ",\"id\":\"CVE-2\"}}" GRYPE_TAIL,
		ODX_EINVAL, "duplicate key");
	refused(SCAN_ENGINE_TRIVY, "{\"SchemaVersion\":2,\"SchemaVersion\":2}", ODX_EINVAL,
		"duplicate key");
	refused(SCAN_ENGINE_TRIVY, TRIVY_HEAD TRIVY_VULN ",\"Title\":\"a\\u0000b\"}" TRIVY_TAIL,
		ODX_EINVAL, "NUL character");
	refused(SCAN_ENGINE_TRIVY, "", ODX_EINVAL, "truncated JSON");
	refused(SCAN_ENGINE_GRYPE, "{} {}", ODX_EINVAL, "trailing data");
	refused(SCAN_ENGINE_TRIVY, "\"SECRET\"", ODX_EINVAL, "must be a JSON object");
	refused(SCAN_ENGINE_TRIVY, "{\"a\":tru}", ODX_EINVAL, "malformed JSON");
	refused(SCAN_ENGINE_TRIVY, "{\"a\":\"\\x\"}", ODX_EINVAL, "invalid escape");
	refused(SCAN_ENGINE_TRIVY, "{\"a\":\"\\ud800\"}", ODX_EINVAL, "invalid \\u escape");
	refused(SCAN_ENGINE_TRIVY, "{\"a\":01}", ODX_EINVAL, "malformed JSON");
	refused(SCAN_ENGINE_TRIVY, "{\"a\":\"\xc0\xaf\"}", ODX_EINVAL, "invalid UTF-8");
	refused(SCAN_ENGINE_TRIVY, "{\"a\":\"\xed\xa0\x80\"}", ODX_EINVAL, "invalid UTF-8");
	refused(SCAN_ENGINE_TRIVY, "{\"a\":1e999}", ODX_EINVAL, "number too large");
	refused(SCAN_ENGINE_TRIVY, "{\"SchemaVersion\":99999999999999999999999}", ODX_EINVAL,
		"integer too large");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_real_reports),
	    cmocka_unit_test(test_trivy_juice_shop),
	    cmocka_unit_test(test_trivy_webgoat),
	    cmocka_unit_test(test_trivy_goldens),
	    cmocka_unit_test(test_grype_juice_shop),
	    cmocka_unit_test(test_grype_webgoat),
	    cmocka_unit_test(test_grype_small),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_arena),
	    cmocka_unit_test(test_trivy_wrong_types),
	    cmocka_unit_test(test_grype_wrong_types),
	    cmocka_unit_test(test_trivy_mapping),
	    cmocka_unit_test(test_grype_mapping),
	    cmocka_unit_test(test_prefixes),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_too_many_findings),
	    cmocka_unit_test(test_package_flood),
	    cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
