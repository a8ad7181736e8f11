/*
 * test-scan-merge.c — package keys and the Trivy + Grype merge.
 *
 * Hand-built findings check each rule (advisory ids do not glue CVEs, a
 * multi-CVE advisory match splits, Grype's own duplicates collapse, unions,
 * the highest severity and its source). The real reports of the two images
 * both engines scanned (tests/data/scanners/appsecsanta-research, found
 * through $ODX_TESTDATA) are compared with numbers derived by reading the
 * JSON directly (python3 over the raw files, not our parsers); each comment
 * says how.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "scan/grype.h"
#include "scan/merge.h"
#include "scan/model.h"
#include "scan/trivy.h"
#include "testdata.h"

#define T      SCAN_ENGINE_TRIVY
#define G      SCAN_ENGINE_GRYPE
#define BIT(e) SCAN_ENGINE_BIT(e)
#define BOTH   (BIT(T) | BIT(G))

/* ---- hand-built reports ---- */

enum { CAP = 16 };

static struct scan_report *report(enum scan_engine e)
{
	struct scan_report *r = scan_report_new();
	assert_non_null(r);
	r->engines = BIT(e);
	r->findings = scan_alloc(r, CAP * sizeof(*r->findings));
	assert_non_null(r->findings);
	return r;
}

/* NULL-terminated list into r's arena. */
static const char **strv(struct scan_report *r, const char *const *v, size_t *n)
{
	for (*n = 0; v && v[*n]; (*n)++)
		;
	const char **out = scan_alloc(r, (*n + 1) * sizeof(*out));
	assert_non_null(out);
	for (size_t i = 0; i < *n; i++)
		out[i] = scan_strdup(r, v[i]);
	return out;
}

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A finding of r's engine: id, aliases (id included), package by PURL, severity. */
static struct scan_finding *add(struct scan_report *r, const char *const *ids, const char *purl,
				enum scan_severity sev, const char *source)
{
	assert_true(r->nfindings < CAP);
	struct scan_finding *f = &r->findings[r->nfindings++];
	enum scan_engine e = r->engines == BIT(T) ? T : G;
	f->id = scan_strdup(r, ids[0]);
	f->aliases = strv(r, ids, &f->naliases);
	f->naliases = scan_strv_sort_unique(f->aliases, f->naliases);
	f->pkg.purl = scan_strdup(r, purl);
	f->pkg.name = "pkg";
	f->pkg.version = "1.0";
	f->pkg.type = "npm";
	f->severity = f->engine_severity[e] = sev;
	f->severity_source = scan_strdup(r, source);
	f->engine_severity_source[e] = f->severity_source;
	f->fix_state[e] = SCAN_FIX_UNKNOWN;
	f->epss = f->epss_percentile = -1;
	f->engines = BIT(e);
	return f;
}

static struct scan_report *merge2(struct scan_report *a, struct scan_report *b,
				  struct scan_merge_stats *st)
{
	struct scan_report *in[2] = {a, b}, *out = NULL;
	assert_int_equal(scan_merge(in, b ? 2 : 1, &out, st), 0);
	assert_non_null(out);
	return out;
}

static const struct scan_finding *find(const struct scan_report *r, const char *id, const char *key)
{
	const struct scan_finding *hit = NULL;
	for (size_t i = 0; i < r->nfindings; i++)
		if (strcmp(r->findings[i].id, id) == 0 &&
		    (!key || strcmp(r->findings[i].pkg.key, key) == 0)) {
			if (hit)
				fail_msg("%s on %s: more than one merged finding", id,
					 key ? key : "*");
			hit = &r->findings[i];
		}
	if (!hit)
		fail_msg("%s on %s: no merged finding", id, key ? key : "*");
	return hit;
}

static bool has(const char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static void test_keys(void **state)
{
	(void)state;
	struct scan_report *r = scan_report_new();
	assert_non_null(r);
	static const struct {
		const char *purl, *name, *version, *type, *key;
	} v[] = {
	    /* webgoat login: Trivy moves the epoch to a qualifier, Grype keeps it in the version.
	     */
	    {"pkg:deb/ubuntu/login@4.13%2Bdfsg1-4ubuntu3.2?arch=arm64&distro=ubuntu-24.04&epoch=1",
	     "login", "1:4.13+dfsg1-4ubuntu3.2", "deb", "deb/ubuntu/login@1:4.13+dfsg1-4ubuntu3.2"},
	    {"pkg:deb/ubuntu/"
	     "login@1%3A4.13%2Bdfsg1-4ubuntu3.2?arch=arm64&distro=ubuntu-24.04&upstream=shadow",
	     "login", "1:4.13+dfsg1-4ubuntu3.2", "deb", "deb/ubuntu/login@1:4.13+dfsg1-4ubuntu3.2"},
	    /* no epoch: 0, from either engine */
	    {"pkg:deb/debian/libssl3@3.0.17-1~deb12u3?arch=arm64&distro=debian-12.12", "libssl3",
	     "3.0.17-1~deb12u3", "deb", "deb/debian/libssl3@0:3.0.17-1~deb12u3"},
	    {"pkg:rpm/centos/openssl-libs@1.0.2k-16.el7?arch=x86_64&epoch=1&distro=centos-7.6.1810",
	     "openssl-libs", "1:1.0.2k-16.el7", "rpm", "rpm/centos/openssl-libs@1:1.0.2k-16.el7"},
	    /* Grype's os-release id "rhel" is Trivy's family "redhat" */
	    {"pkg:rpm/rhel/"
	     "nss@3.79.0-17.el9_1?arch=x86_64&upstream=nss-3.79.0-17.el9_1.src.rpm&distro=rhel-9.1",
	     "nss", "3.79.0-17.el9_1", "rpm", "rpm/redhat/nss@0:3.79.0-17.el9_1"},
	    /* Trivy's groupId:artifactId and Grype's artifactId share the PURL */
	    {"pkg:maven/com.thoughtworks.xstream/xstream@1.4.5", "com.thoughtworks.xstream:xstream",
	     "1.4.5", "jar", "maven/com.thoughtworks.xstream/xstream@1.4.5"},
	    {"pkg:maven/com.thoughtworks.xstream/xstream@1.4.5", "xstream", "1.4.5", "java-archive",
	     "maven/com.thoughtworks.xstream/xstream@1.4.5"},
	    {"pkg:npm/%40Babel/Core@7.0.0#lib/x.js", "@babel/core", "7.0.0", "npm",
	     "npm/@babel/core@7.0.0"},
	    {"pkg:pypi/Django_Rest@3.1", "Django_Rest", "3.1", "python", "pypi/django-rest@3.1"},
	    {"pkg:golang/github.com/docker/docker@v20.10.0%2Bincompatible",
	     "github.com/docker/docker", "v20.10.0+incompatible", "gomod",
	     "golang/github.com/docker/docker@v20.10.0+incompatible"},
	    {"pkg:generic/node@22.21.1", "node", "22.21.1", "binary", "generic/node@22.21.1"},
	    /* a PURL without a version takes the package's */
	    {"pkg:npm/ip", "ip", "2.0.1", "npm", "npm/ip@2.0.1"},
	    /* broken escapes and %00 stay as written */
	    {"pkg:npm/a%zz%00b@1", "x", "1", "npm", "npm/a%zz%00b@1"},
	    /* without a PURL: type, name, version */
	    {NULL, "com.thoughtworks.xstream:xstream", "1.4.5", "jar",
	     "maven/com.thoughtworks.xstream/xstream@1.4.5"},
	    {NULL, "libcap2", "2.66-5ubuntu2", "ubuntu", "deb/libcap2@0:2.66-5ubuntu2"},
	    {NULL, "Lodash", "2.4.2", "node-pkg", "npm/lodash@2.4.2"},
	    {"not a purl", "busybox", "1.32.1", NULL, "generic/busybox@1.32.1"},
	    {"pkg:deb", "x", "1", "deb", "deb/x@0:1"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct scan_package p = {.purl = v[i].purl,
					 .name = v[i].name,
					 .version = v[i].version,
					 .type = v[i].type};
		const char *k = scan_package_key(r, &p);
		assert_non_null(k);
		if (strcmp(k, v[i].key) != 0)
			fail_msg("row %zu: key %s, want %s", i, k, v[i].key);
	}
	assert_null(scan_package_key(r, NULL));
	scan_report_free(r);
}

/* DSA-6113-1 names 8 libssl3 CVEs in juice-shop: it must not make them one finding. */
static void test_advisory_does_not_glue(void **state)
{
	(void)state;
	struct scan_report *t = report(T), *g = report(G);
	const char *ssl = "pkg:deb/debian/libssl3@3.0.17-1~deb12u3?arch=arm64";
	add(t, LIST("CVE-2025-15467", "DSA-6113-1"), ssl, SCAN_SEV_CRITICAL, "trivy:debian");
	add(t, LIST("CVE-2025-69419", "DSA-6113-1"), ssl, SCAN_SEV_HIGH, "trivy:debian");
	add(g, LIST("CVE-2025-15467", "DSA-6113-1"), ssl, SCAN_SEV_CRITICAL,
	    "grype:debian:distro:debian:12");
	add(g, LIST("CVE-2025-69419", "DSA-6113-1"), ssl, SCAN_SEV_HIGH,
	    "grype:debian:distro:debian:12");
	/* an advisory id alone does join: nothing else names it */
	add(t, LIST("ELSA-2022-1"), "pkg:rpm/oracle/x@1", SCAN_SEV_LOW, "trivy");
	add(g, LIST("ELSA-2022-1"), "pkg:rpm/ol/x@0:1", SCAN_SEV_LOW, "grype");
	struct scan_merge_stats st;
	struct scan_report *m = merge2(t, g, &st);
	assert_int_equal(m->nfindings, 3);
	assert_int_equal(st.both, 3);
	const struct scan_finding *a = find(m, "CVE-2025-15467", NULL),
				  *b = find(m, "CVE-2025-69419", NULL);
	assert_int_equal(a->engines, BOTH);
	assert_int_equal(b->engines, BOTH);
	assert_int_equal(a->naliases, 2);
	assert_true(has(a->aliases, a->naliases, "DSA-6113-1"));
	assert_false(has(a->aliases, a->naliases, "CVE-2025-69419"));
	assert_int_equal(find(m, "ELSA-2022-1", "rpm/oracle/x@0:1")->engines, BOTH);
	scan_report_free(m);
	scan_report_free(t);
	scan_report_free(g);
}

/* A Grype ELSA match related to three CVEs meets Trivy's three CVE findings one by one. */
static void test_multi_cve_advisory_splits(void **state)
{
	(void)state;
	struct scan_report *t = report(T), *g = report(G);
	const char *pkg = "pkg:rpm/oracle/gnutls@3.6.16-4.el8";
	add(t, LIST("CVE-2021-20231", "ELSA-2022-9221"), pkg, SCAN_SEV_MEDIUM, "trivy:oracle-oval");
	add(t, LIST("CVE-2021-20232", "ELSA-2022-9221"), pkg, SCAN_SEV_MEDIUM, "trivy:oracle-oval");
	add(t, LIST("CVE-2021-3580", "ELSA-2022-9221"), pkg, SCAN_SEV_MEDIUM, "trivy:oracle-oval");
	add(g, LIST("ELSA-2022-9221", "CVE-2021-20231", "CVE-2021-20232", "CVE-2021-3580"), pkg,
	    SCAN_SEV_HIGH, "grype:oracle:distro:oraclelinux:8");
	struct scan_merge_stats st;
	struct scan_report *m = merge2(t, g, &st);
	assert_int_equal(m->nfindings, 3);
	assert_int_equal(st.both, 3);
	assert_int_equal(st.engine_duplicates_collapsed, 0);
	static const char *const cves[] = {"CVE-2021-20231", "CVE-2021-20232", "CVE-2021-3580"};
	for (size_t i = 0; i < 3; i++) {
		const struct scan_finding *f = find(m, cves[i], NULL);
		assert_int_equal(f->engines, BOTH);
		assert_int_equal(f->naliases, 2); /* its CVE and the advisory */
		assert_true(has(f->aliases, f->naliases, "ELSA-2022-9221"));
		assert_int_equal(f->severity, SCAN_SEV_HIGH);
		assert_string_equal(f->severity_source, "grype:oracle:distro:oraclelinux:8");
	}
	/* before: the input findings as they were, 3 Trivy, 1 Grype */
	assert_int_equal(st.before[T].total, 3);
	assert_int_equal(st.before[G].total, 1);
	assert_int_equal(st.before[G].by_severity[SCAN_SEV_HIGH], 1);
	scan_report_free(m);
	scan_report_free(t);
	scan_report_free(g);
}

/* anchore-grype/ghsa-test.json, by hand: GHSA match and CPE match of one CVE on one jar. */
static void test_grype_duplicates_collapse(void **state)
{
	(void)state;
	struct scan_report *g = report(G);
	const char *jar = "pkg:maven/org.apache.httpcomponents/httpclient@4.1.1";
	struct scan_finding *a = add(g, LIST("CVE-2014-3577", "GHSA-cfh5-3ghh-wfjx"), jar,
				     SCAN_SEV_MEDIUM, "grype:github:language:java");
	struct scan_finding *b =
	    add(g, LIST("CVE-2014-3577"), jar, SCAN_SEV_MEDIUM, "grype:nvd:cpe");
	a->fix_state[G] = SCAN_FIX_FIXED;
	a->fixed_versions = strv(g, LIST("4.3.5"), &a->nfixed);
	b->fix_state[G] =
	    SCAN_FIX_WONT_FIX; /* "unknown" in the file; wont-fix checks that fixed still wins */
	b->cpe_match = true;
	a->paths = strv(g, LIST("/TwilioNotifier.hpi"), &a->npaths);
	b->paths = strv(g, LIST("/TwilioNotifier.hpi"), &b->npaths);
	struct scan_merge_stats st;
	struct scan_report *m = merge2(g, NULL, &st);
	assert_int_equal(m->nfindings, 1);
	assert_int_equal(st.engine_duplicates_collapsed, 1);
	assert_int_equal(st.only[G], 1);
	const struct scan_finding *f = &m->findings[0];
	assert_string_equal(f->id, "CVE-2014-3577");
	assert_int_equal(f->naliases, 2);
	assert_int_equal(f->fix_state[G], SCAN_FIX_FIXED); /* the GHSA record knows the fix */
	assert_false(f->cpe_match);			   /* one match was not CPE-only */
	assert_int_equal(f->nfixed, 1);
	assert_int_equal(f->npaths, 1);
	scan_report_free(m);
	scan_report_free(g);
}

/* The same package in two folders, per engine: one finding, the paths unioned, no duplicate
 * counted. */
static void test_locations_union(void **state)
{
	(void)state;
	struct scan_report *t = report(T), *g = report(G);
	const char *mm = "pkg:npm/minimatch@3.1.2";
	const char *ids[] = {"CVE-2026-26996", "GHSA-3ppc-4f35-3m26", NULL};
	struct scan_finding *a = add(t, ids, mm, SCAN_SEV_HIGH, "trivy:ghsa");
	struct scan_finding *b = add(t, ids, mm, SCAN_SEV_HIGH, "trivy:ghsa");
	struct scan_finding *c = add(g, ids, mm, SCAN_SEV_HIGH, "grype:github");
	a->paths = strv(t, LIST("juice-shop/node_modules/a/node_modules/minimatch/package.json"),
			&a->npaths);
	b->paths = strv(t, LIST("juice-shop/node_modules/b/node_modules/minimatch/package.json"),
			&b->npaths);
	c->paths = strv(g, LIST("/juice-shop/node_modules/b/node_modules/minimatch/package.json"),
			&c->npaths);
	struct scan_merge_stats st;
	struct scan_report *m = merge2(t, g, &st);
	assert_int_equal(m->nfindings, 1);
	assert_int_equal(st.engine_duplicates_collapsed, 0);
	const struct scan_finding *f = &m->findings[0];
	assert_int_equal(f->npaths,
			 2); /* Trivy's relative and Grype's absolute spelling are one path */
	assert_string_equal(f->paths[0],
			    "/juice-shop/node_modules/a/node_modules/minimatch/package.json");
	assert_string_equal(f->paths[1],
			    "/juice-shop/node_modules/b/node_modules/minimatch/package.json");
	scan_report_free(m);
	scan_report_free(t);
	scan_report_free(g);
}

static void test_fields_union(void **state)
{
	(void)state;
	struct scan_report *t = report(T), *g = report(G);
	const char *cap = "pkg:deb/ubuntu/libcap2@1%3A2.66-5ubuntu2";
	struct scan_finding *a =
	    add(t, LIST("CVE-2025-1390"), "pkg:deb/ubuntu/libcap2@2.66-5ubuntu2?epoch=1",
		SCAN_SEV_MEDIUM, "trivy:ubuntu");
	struct scan_finding *b =
	    add(g, LIST("CVE-2025-1390"), cap, SCAN_SEV_MEDIUM, "grype:ubuntu:distro:ubuntu:24.04");
	a->pkg.type = b->pkg.type = "deb";
	a->fixed_versions = strv(t, LIST("1:2.66-5ubuntu2.2"), &a->nfixed);
	b->fixed_versions =
	    strv(g, LIST("1:2.66-5ubuntu2.2", "1:2.66-5ubuntu3", "01:2.66-5ubuntu2.2"), &b->nfixed);
	a->fix_state[T] = SCAN_FIX_FIXED;
	b->fix_state[G] = SCAN_FIX_AFFECTED;
	a->urls = strv(t, LIST("https://a", "https://b"), &a->nurls);
	b->urls = strv(g, LIST("https://b", "https://c"), &b->nurls);
	static struct scan_cvss ca[] = {{"nvd", "3.1", "CVSS:3.1/AV:L", 5.5},
					{"redhat", "3.1", "CVSS:3.1/AV:L", 5.5}};
	static struct scan_cvss cb[] = {{"nvd", "3.1", "CVSS:3.1/AV:L", 5.5},
					{"nvd", "4.0", "CVSS:4.0/AV:L", 6.1}};
	a->cvss = ca, a->ncvss = 2;
	b->cvss = cb, b->ncvss = 2;
	b->epss = 0.2, b->epss_percentile = 0.9, b->kev = true;
	b->pkg.source = "libcap2-src";
	a->title = "cap title";
	struct scan_merge_stats st;
	struct scan_report *m = merge2(t, g, &st);
	scan_report_free(t); /* the merged report owns copies of everything */
	scan_report_free(g);
	assert_int_equal(m->nfindings, 1);
	const struct scan_finding *f = &m->findings[0];
	assert_string_equal(f->pkg.key, "deb/ubuntu/libcap2@1:2.66-5ubuntu2");
	assert_int_equal(f->engines, BOTH);
	assert_int_equal(f->nfixed, 2); /* 1:2.66-5ubuntu2.2 three times (01: is the same epoch) */
	assert_string_equal(f->fixed_versions[0], "1:2.66-5ubuntu2.2");
	assert_string_equal(f->fixed_versions[1], "1:2.66-5ubuntu3");
	assert_int_equal(f->fix_state[T], SCAN_FIX_FIXED);
	assert_int_equal(f->fix_state[G], SCAN_FIX_AFFECTED);
	assert_int_equal(f->nurls, 3);
	assert_int_equal(f->ncvss, 3); /* nvd 3.1 once, redhat 3.1, nvd 4.0 */
	assert_true(f->epss > 0.19 && f->epss < 0.21);
	assert_true(f->epss_percentile > 0.89);
	assert_true(f->kev);
	assert_false(f->cpe_match);
	assert_string_equal(f->pkg.source, "libcap2-src");
	assert_string_equal(f->title, "cap title");
	/* equal severities: the first engine's source */
	assert_int_equal(f->severity, SCAN_SEV_MEDIUM);
	assert_string_equal(f->severity_source, "trivy:ubuntu");
	assert_string_equal(f->engine_severity_source[G], "grype:ubuntu:distro:ubuntu:24.04");
	scan_report_free(m);
}

/* The highest severity wins with its source; Negligible is below Low. */
static void test_severity(void **state)
{
	(void)state;
	struct scan_report *t = report(T), *g = report(G);
	add(t, LIST("CVE-2025-15281"), "pkg:deb/debian/libc6@2.36-9", SCAN_SEV_MEDIUM, "trivy");
	add(g, LIST("CVE-2025-15281"), "pkg:deb/debian/libc6@2.36-9", SCAN_SEV_HIGH,
	    "grype:debian:distro:debian:12");
	add(t, LIST("CVE-2010-4756"), "pkg:deb/debian/libc6@2.36-9", SCAN_SEV_LOW, "trivy:debian");
	add(g, LIST("CVE-2010-4756"), "pkg:deb/debian/libc6@2.36-9", SCAN_SEV_NEGLIGIBLE,
	    "grype:debian");
	add(g, LIST("CVE-2025-55130"), "pkg:generic/node@22.21.1", SCAN_SEV_CRITICAL,
	    "grype:nvd:cpe")
	    ->cpe_match = true;
	struct scan_merge_stats st;
	struct scan_report *m = merge2(t, g, &st);
	assert_int_equal(m->nfindings, 3);
	const struct scan_finding *f = find(m, "CVE-2025-15281", NULL);
	assert_int_equal(f->severity, SCAN_SEV_HIGH);
	assert_string_equal(f->severity_source, "grype:debian:distro:debian:12");
	assert_int_equal(f->engine_severity[T], SCAN_SEV_MEDIUM);
	assert_int_equal(f->engine_severity[G], SCAN_SEV_HIGH);
	f = find(m, "CVE-2010-4756", NULL);
	assert_int_equal(f->severity, SCAN_SEV_LOW);
	assert_string_equal(f->severity_source, "trivy:debian");
	assert_int_equal(f->engine_severity[G], SCAN_SEV_NEGLIGIBLE);
	assert_true(find(m, "CVE-2025-55130", NULL)->cpe_match);
	/* order: severity descending */
	assert_string_equal(m->findings[0].id, "CVE-2025-55130");
	assert_string_equal(m->findings[1].id, "CVE-2025-15281");
	assert_string_equal(m->findings[2].id, "CVE-2010-4756");
	assert_int_equal(st.before[T].by_severity[SCAN_SEV_LOW], 1);
	assert_int_equal(st.before[G].by_severity[SCAN_SEV_NEGLIGIBLE], 1);
	assert_int_equal(st.after.by_severity[SCAN_SEV_LOW], 1);
	assert_int_equal(st.after.by_severity[SCAN_SEV_NEGLIGIBLE], 0);
	assert_int_equal(st.both, 2);
	assert_int_equal(st.only[G], 1);
	assert_int_equal(st.only[T], 0);
	scan_report_free(m);
	scan_report_free(t);
	scan_report_free(g);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	struct scan_report *t = report(T), *out = (struct scan_report *)&out;
	struct scan_report *in[5] = {t, t, t, t, t};
	struct scan_merge_stats st = {.both = 77};
	assert_int_equal(scan_merge(in, 0, &out, &st), ODX_EINVAL);
	assert_int_equal(scan_merge(in, 5, &out, &st), ODX_EINVAL);
	assert_int_equal(scan_merge(NULL, 1, &out, &st), ODX_EINVAL);
	struct scan_report *holes[2] = {t, NULL};
	assert_int_equal(scan_merge(holes, 2, &out, &st), ODX_EINVAL);
	assert_ptr_equal(out, (struct scan_report *)&out); /* untouched on failure */
	assert_int_equal(st.both, 77);
	/* an empty report merges to an empty report; st is optional */
	assert_int_equal(scan_merge(in, 1, &out, NULL), 0);
	assert_int_equal(out->nfindings, 0);
	scan_report_free(out);
	scan_report_free(t);
}

/* ---- real reports ---- */


/* A report of tests/data/scanners (testdata.h). */
static char *slurp(const char *rel, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "scanners/%s", rel);
	return testdata_read(path, len);
}

static struct scan_report *parse(const char *rel, bool trivy)
{
	size_t len;
	char *buf = slurp(rel, &len), msg[SCAN_MSG_LEN] = "";
	struct scan_report *r = NULL;
	int rc = trivy ? trivy_parse(buf, len, &r, msg) : grype_parse(buf, len, &r, msg);
	free(buf);
	if (rc != 0)
		fail_msg("%s: %d %s", rel, rc, msg);
	return r;
}

/* by_severity {critical, high, medium, low, negligible, unknown} and total. */
static void check_counts(const struct scan_counts *c, const size_t want[6], size_t total)
{
	for (int s = 0; s < 6; s++)
		if (c->by_severity[SCAN_SEV_CRITICAL - s] != want[s])
			fail_msg("%s: %zu, want %zu", scan_severity_name(SCAN_SEV_CRITICAL - s),
				 c->by_severity[SCAN_SEV_CRITICAL - s], want[s]);
	assert_int_equal(c->total, total);
}

static void check_order(const struct scan_report *m)
{
	for (size_t i = 1; i < m->nfindings; i++) {
		const struct scan_finding *a = &m->findings[i - 1], *b = &m->findings[i];
		int c = a->severity != b->severity ? (a->severity > b->severity ? -1 : 1)
						   : strcmp(a->id, b->id);
		if (c == 0)
			c = strcmp(a->pkg.key, b->pkg.key);
		assert_true(c < 0);
	}
}

static size_t count_key_prefix(const struct scan_report *m, const char *prefix, unsigned engines,
			       bool cpe)
{
	size_t n = 0;
	for (size_t i = 0; i < m->nfindings; i++)
		n += strncmp(m->findings[i].pkg.key, prefix, strlen(prefix)) == 0 &&
		     m->findings[i].engines == engines && m->findings[i].cpe_match == cpe;
	return n;
}

/*
 * juice-shop (Trivy 0.69.1 and Grype 0.109.0, one digest). Expected numbers,
 * from reading the two JSON files with python3:
 * - before: Trivy's 135 Vulnerabilities by Severity; Grype's 136 matches by
 *   vulnerability.severity (12 Negligible: Debian "unimportant").
 * - identity: ids = VulnerabilityID ∪ VendorIDs (Trivy), id ∪ related ∪
 *   advisories (Grype); PURL keys. Trivy's 135 are 111 (vulnerability,
 *   package) pairs and Grype's 136 are 112: minimatch 3.1.2 sits in 9
 *   folders and has 3 CVEs (27 rows -> 3 per engine). 106 pairs are in both
 *   (the README's 106 keys), 5 only in Trivy (NSWG-ECO-17 on jsonwebtoken
 *   0.1.0 and 0.4.0, NSWG-ECO-154, NSWG-ECO-428, messageformat
 *   CVE-2025-57349), 6 only in Grype (CPE matches on pkg:generic/node):
 *   117 merged.
 * - after: Trivy's 111 pairs are C10 H53 M31 L17. Of the 16 disagreements
 *   (FORMATS.md §3.5) 12 are LOW vs Negligible (stay low), 3 MEDIUM vs High
 *   (+3 high, -3 medium) and lodash LOW vs Medium (+1 medium, -1 low):
 *   C10 H56 M29 L16. Plus the 6 node CPE matches (C1 H4 M1): C11 H60 M30 L16.
 */
static void test_juice_shop(void **state)
{
	(void)state;
	struct scan_report *t = parse("appsecsanta-research/trivy-juice-shop.json", true);
	struct scan_report *g = parse("appsecsanta-research/grype-juice-shop.json", false);
	struct scan_merge_stats st;
	struct scan_report *m = merge2(t, g, &st);
	check_counts(&st.before[T], (size_t[6]){10, 77, 31, 17, 0, 0}, 135);
	check_counts(&st.before[G], (size_t[6]){11, 81, 29, 3, 12, 0}, 136);
	check_counts(&st.after, (size_t[6]){11, 60, 30, 16, 0, 0}, 117);
	assert_int_equal(m->nfindings, 117);
	assert_int_equal(st.both, 106);
	assert_int_equal(st.only[T], 5);
	assert_int_equal(st.only[G], 6);
	assert_int_equal(st.engine_duplicates_collapsed, 0); /* every repeat is another folder */
	check_order(m);

	/* CVE ↔ GHSA: Trivy CVE-2024-29415 (VendorIDs GHSA-2p57-rm9w-gvfp) = Grype
	 * GHSA-2p57-rm9w-gvfp */
	const struct scan_finding *f = find(m, "CVE-2024-29415", "npm/ip@2.0.1");
	assert_int_equal(f->engines, BOTH);
	assert_true(has(f->aliases, f->naliases, "GHSA-2p57-rm9w-gvfp"));
	assert_true(f->epss > 0.8); /* Grype's EPSS joined to Trivy's finding */
	/* minimatch 3.1.2: 9 folders, one finding; Trivy's 8 release lines + Grype's 3.1.3 */
	f = find(m, "CVE-2026-26996", "npm/minimatch@3.1.2");
	assert_int_equal(f->engines, BOTH);
	assert_int_equal(f->npaths, 9);
	assert_int_equal(f->nfixed, 8);
	assert_string_equal(f->fixed_versions[0], "3.1.3");
	/* DSA-6113-1: 8 libssl3 CVEs stay 8 findings, each seen by both */
	size_t dsa = 0;
	for (size_t i = 0; i < m->nfindings; i++)
		if (has(m->findings[i].aliases, m->findings[i].naliases, "DSA-6113-1")) {
			dsa++;
			assert_int_equal(m->findings[i].engines, BOTH);
			assert_string_equal(m->findings[i].pkg.key,
					    "deb/debian/libssl3@0:3.0.17-1~deb12u3");
			assert_int_equal(m->findings[i].nfixed, 1);
		}
	assert_int_equal(dsa, 8);
	/* single-engine */
	assert_int_equal(find(m, "NSWG-ECO-17", "npm/jsonwebtoken@0.1.0")->engines, BIT(T));
	assert_int_equal(find(m, "NSWG-ECO-17", "npm/jsonwebtoken@0.4.0")->engines, BIT(T));
	assert_int_equal(find(m, "NSWG-ECO-154", NULL)->engines, BIT(T));
	assert_int_equal(find(m, "NSWG-ECO-428", NULL)->engines, BIT(T));
	assert_int_equal(find(m, "CVE-2025-57349", NULL)->engines, BIT(T));
	assert_int_equal(count_key_prefix(m, "generic/node@", BIT(G), true), 6);
	/* GHSA-only on both sides still meets */
	assert_int_equal(find(m, "GHSA-5mrr-rgp6-x4gr", NULL)->engines, BOTH);
	/* disagreements: the higher one and its source */
	f = find(m, "CVE-2025-15281", "deb/debian/libc6@0:2.36-9+deb12u13");
	assert_int_equal(f->severity, SCAN_SEV_HIGH);
	assert_int_equal(f->engine_severity[T], SCAN_SEV_MEDIUM);
	assert_int_equal(strncmp(f->severity_source, "grype:", 6), 0);
	f = find(m, "CVE-2018-3721", "npm/lodash@2.4.2");
	assert_int_equal(f->severity, SCAN_SEV_MEDIUM);
	assert_int_equal(f->engine_severity[T], SCAN_SEV_LOW);
	assert_int_equal(strncmp(f->severity_source, "grype:", 6), 0);
	f = find(m, "CVE-2022-27943", "deb/debian/gcc-12-base@0:12.2.0-14+deb12u1");
	assert_int_equal(f->severity, SCAN_SEV_LOW);
	assert_int_equal(f->engine_severity[G], SCAN_SEV_NEGLIGIBLE);
	assert_int_equal(strncmp(f->severity_source, "trivy", 5), 0);
	/* fix state disagreement kept per engine (FORMATS.md §3.4) */
	f = find(m, "CVE-2026-0861", NULL);
	assert_int_equal(f->fix_state[T], SCAN_FIX_AFFECTED);
	assert_int_equal(f->fix_state[G], SCAN_FIX_WONT_FIX);
	assert_non_null(m->image.image_id);
	assert_int_equal(m->engines, BOTH);
	scan_report_free(m);
	scan_report_free(t);
	scan_report_free(g);
}

/*
 * webgoat (same tools, one digest). From the JSON with python3:
 * - before: Trivy 403 (C2 H40 M297 L64), Grype 496 (C2 H46 M312 L136).
 * - no (vulnerability, package) pair repeats within an engine, so Trivy has
 *   403 pairs and Grype 496. 402 in both: the README's 399 + login, passwd
 *   (CVE-2024-56433) and libcap2 (CVE-2025-1390), which meet only once the
 *   epoch is normalised. Trivy-only: GHSA-72hv-8253-57qq (jackson-core, no
 *   CVE, absent from Grype). Grype-only 94: 80 Ubuntu CVEs Trivy does not
 *   list (79 not-fixed, 71 of them Low: FORMATS.md's 81/73 counted login
 *   and passwd, which the epoch now joins) and 14 CPE matches on the
 *   openjdk binary. 497 merged.
 * - no severity disagreement on the shared pairs, so after = Trivy's 403
 *   (C2 H40 M297 L64) + the 94 Grype-only (H7 M15 L72) = C2 H47 M312 L136.
 * - xstream 1.4.5: 36 Trivy rows (com.thoughtworks.xstream:xstream) and 36
 *   Grype rows (xstream), all the same PURL.
 */
static void test_webgoat(void **state)
{
	(void)state;
	struct scan_report *t = parse("appsecsanta-research/trivy-webgoat.json", true);
	struct scan_report *g = parse("appsecsanta-research/grype-webgoat.json", false);
	struct scan_merge_stats st;
	struct scan_report *m = merge2(t, g, &st);
	check_counts(&st.before[T], (size_t[6]){2, 40, 297, 64, 0, 0}, 403);
	check_counts(&st.before[G], (size_t[6]){2, 46, 312, 136, 0, 0}, 496);
	check_counts(&st.after, (size_t[6]){2, 47, 312, 136, 0, 0}, 497);
	assert_int_equal(st.both, 402);
	assert_int_equal(st.only[T], 1);
	assert_int_equal(st.only[G], 94);
	assert_int_equal(st.engine_duplicates_collapsed, 0);
	check_order(m);

	/* the epoch: Trivy epoch=1 qualifier vs Grype 1%3A in the version */
	const struct scan_finding *f =
	    find(m, "CVE-2024-56433", "deb/ubuntu/login@1:4.13+dfsg1-4ubuntu3.2");
	assert_int_equal(f->engines, BOTH);
	assert_int_equal(
	    find(m, "CVE-2024-56433", "deb/ubuntu/passwd@1:4.13+dfsg1-4ubuntu3.2")->engines, BOTH);
	f = find(m, "CVE-2025-1390", "deb/ubuntu/libcap2@1:2.66-5ubuntu2");
	assert_int_equal(f->engines, BOTH);
	/* Java naming: all 36 xstream findings meet */
	assert_int_equal(
	    count_key_prefix(m, "maven/com.thoughtworks.xstream/xstream@1.4.5", BOTH, false), 36);
	assert_int_equal(count_key_prefix(m, "maven/", BOTH, false), 65);
	/* KEV on GHSA-j9h8-phrw-h4fh / CVE-2021-39144, joined to Trivy's CVE */
	f = find(m, "CVE-2021-39144", "maven/com.thoughtworks.xstream/xstream@1.4.5");
	assert_true(f->kev);
	assert_int_equal(f->engines, BOTH);
	assert_true(has(f->aliases, f->naliases, "GHSA-j9h8-phrw-h4fh"));
	assert_int_equal(f->nfixed, 1);
	assert_string_equal(f->fixed_versions[0], "1.4.18");
	size_t kev = 0;
	for (size_t i = 0; i < m->nfindings; i++)
		kev += m->findings[i].kev;
	assert_int_equal(kev, 1);
	/* single-engine */
	assert_int_equal(find(m, "GHSA-72hv-8253-57qq", NULL)->engines, BIT(T));
	assert_int_equal(count_key_prefix(m, "generic/oracle/openjdk@", BIT(G), true), 14);
	assert_int_equal(count_key_prefix(m, "deb/", BIT(G), false), 80);
	scan_report_free(m);
	scan_report_free(t);
	scan_report_free(g);
}

/* The real Grype duplicate: ghsa-test.json's two matches on httpclient 4.1.1 become one. */
static void test_ghsa_test_file(void **state)
{
	(void)state;
	struct scan_report *g = parse("anchore-grype/ghsa-test.json", false);
	assert_int_equal(g->nfindings, 2);
	struct scan_merge_stats st;
	struct scan_report *m = merge2(g, NULL, &st);
	assert_int_equal(m->nfindings, 1);
	assert_int_equal(st.engine_duplicates_collapsed, 1);
	const struct scan_finding *f = &m->findings[0];
	assert_string_equal(f->id, "CVE-2014-3577");
	assert_true(has(f->aliases, f->naliases, "GHSA-cfh5-3ghh-wfjx"));
	assert_int_equal(f->fix_state[G], SCAN_FIX_FIXED);
	assert_false(f->cpe_match);
	assert_int_equal(f->nfixed, 1);
	assert_string_equal(f->fixed_versions[0], "4.3.5");
	scan_report_free(m);
	/* keycloak: one CVE on 6 nss RPMs is 6 findings (one per binary package), not duplicates */
	struct scan_report *k = parse("anchore-grype/keycloak-test.json", false);
	m = merge2(k, NULL, &st);
	assert_int_equal(m->nfindings, 6);
	assert_int_equal(st.engine_duplicates_collapsed, 0);
	scan_report_free(m);
	scan_report_free(k);
	scan_report_free(g);
}

/* Merging the same inputs twice gives the same findings in the same order. */
static void test_deterministic(void **state)
{
	(void)state;
	struct scan_report *t = parse("appsecsanta-research/trivy-juice-shop.json", true);
	struct scan_report *g = parse("appsecsanta-research/grype-juice-shop.json", false);
	struct scan_report *a = merge2(t, g, NULL), *b = merge2(t, g, NULL);
	assert_int_equal(a->nfindings, b->nfindings);
	for (size_t i = 0; i < a->nfindings; i++) {
		assert_string_equal(a->findings[i].id, b->findings[i].id);
		assert_string_equal(a->findings[i].pkg.key, b->findings[i].pkg.key);
	}
	/* the order of the inputs changes who is first, not what is merged */
	struct scan_report *c = merge2(g, t, NULL);
	assert_int_equal(c->nfindings, a->nfindings);
	scan_report_free(a);
	scan_report_free(b);
	scan_report_free(c);
	scan_report_free(t);
	scan_report_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_advisory_does_not_glue),
	    cmocka_unit_test(test_multi_cve_advisory_splits),
	    cmocka_unit_test(test_grype_duplicates_collapse),
	    cmocka_unit_test(test_locations_union),
	    cmocka_unit_test(test_fields_union),
	    cmocka_unit_test(test_severity),
	    cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_juice_shop),
	    cmocka_unit_test(test_webgoat),
	    cmocka_unit_test(test_ghsa_test_file),
	    cmocka_unit_test(test_deterministic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
