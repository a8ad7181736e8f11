/*
 * test-scan-recommend.c — recommendations (SPEC §7): the picked fixed
 * version, grouping of binary packages by source package, base-image advice
 * (supported debian 12, end-of-life alpine 3.9 and ubuntu 18.04), the
 * priority score recomputed by hand, ordering, determinism, a smoke run
 * over a real Trivy report (juice-shop), and the per-package upgrades
 * (hand-built findings, and the merged webgoat pair checked against a
 * reading of the two reports).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/jsonx.h"
#include "scan/grype.h"
#include "scan/merge.h"
#include "scan/recommend.h"
#include "scan/trivy.h"
#include "testdata.h"

static const int64_t NOW = 1794700800; /* 2026-11-15T00:00:00Z */

static struct scan_report *reports[4];
static size_t nreports;
static json_t *result;

static int teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < nreports; i++)
		scan_report_free(reports[i]);
	nreports = 0;
	json_decref(result);
	result = NULL;
	return 0;
}

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

/* Copies a NULL-terminated list of strings into r's arena; *n gets the count. */
static const char **strv(struct scan_report *r, const char *const *v, size_t *n)
{
	size_t k = 0;
	while (v && v[k])
		k++;
	const char **out = scan_alloc(r, (k ? k : 1) * sizeof(*out));
	assert_non_null(out);
	for (size_t i = 0; i < k; i++)
		out[i] = scan_strdup(r, v[i]);
	*n = k;
	return out;
}

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A finding of package name@version (type, source) with fixed versions; FIXED when any. */
static struct scan_finding *add(struct scan_report *r, const char *id, enum scan_severity sev,
				const char *type, const char *name, const char *version,
				const char *source, const char *const *fixed)
{
	struct scan_finding *f = &r->findings[r->nfindings++];
	f->id = scan_strdup(r, id);
	f->aliases = strv(r, LIST(id), &f->naliases);
	f->severity = sev;
	f->pkg.type = scan_strdup(r, type);
	f->pkg.name = scan_strdup(r, name);
	f->pkg.version = scan_strdup(r, version);
	f->pkg.source = scan_strdup(r, source);
	f->fixed_versions = strv(r, fixed, &f->nfixed);
	f->fix_state[SCAN_ENGINE_TRIVY] = f->nfixed ? SCAN_FIX_FIXED : SCAN_FIX_AFFECTED;
	f->epss = f->epss_percentile = -1;
	f->engines = SCAN_ENGINE_BIT(SCAN_ENGINE_TRIVY);
	return f;
}

static void set_cvss(struct scan_report *r, struct scan_finding *f, const char *version,
		     const char *vector)
{
	struct scan_cvss *c = scan_alloc(r, (f->ncvss + 1) * sizeof(*c));
	assert_non_null(c);
	if (f->ncvss)
		memcpy(c, f->cvss, f->ncvss * sizeof(*c));
	c[f->ncvss] = (struct scan_cvss){"nvd", version, scan_strdup(r, vector), -1};
	f->cvss = c;
	f->ncvss++;
}

static void set_entrypoint(struct scan_report *r, const char *const *argv)
{
	r->image.entrypoint = strv(r, argv, &r->image.nentrypoint);
}

static json_t *recommend(const struct scan_report *r, int64_t now)
{
	json_decref(result);
	result = scan_recommend(r, now);
	assert_non_null(result);
	return result;
}

static json_t *recs(void)
{
	return json_object_get(result, "recommendations");
}

/* The recommendation for finding id whose package.name is name. */
static json_t *rec_for(const char *id, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(recs(), i, v)
	{
		json_t *pkg = json_object_get(v, "package");
		if (!strcmp(json_string_value(json_object_get(v, "finding")), id) &&
		    !strcmp(json_string_value(json_object_get(pkg, "name")), name))
			return v;
	}
	fail_msg("no recommendation for %s on %s", id, name);
	return NULL;
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* ---- picked versions and grouping ---- */

static void test_picked_versions(void **state)
{
	(void)state;
	struct scan_report *r = report(8);
	add(r, "CVE-2021-23337", SCAN_SEV_HIGH, "npm", "lodash", "4.17.4", NULL, LIST("4.17.21"));
	add(r, "CVE-2025-23166", SCAN_SEV_HIGH, "binary", "node", "22.21.1", NULL,
	    LIST("20.20.0", "22.22.0", "24.13.0", "25.3.0"));
	add(r, "CVE-2025-9230", SCAN_SEV_MEDIUM, "deb", "libssl3", "3.0.17-1~deb12u3", "openssl",
	    LIST("3.0.17-1~deb12u1", "3.0.18-1~deb12u2"));
	/* FIXED by state, with no version newer than the installed one listed. */
	struct scan_finding *login =
	    add(r, "CVE-2023-4641", SCAN_SEV_LOW, "deb", "login", "1:4.13+dfsg1-1", "shadow", NULL);
	login->fix_state[SCAN_ENGINE_GRYPE] = SCAN_FIX_FIXED;
	/* Not fixable: only an older fixed version, and no fix at all. */
	struct scan_finding *old =
	    add(r, "CVE-2021-44906", SCAN_SEV_LOW, "npm", "minimist", "1.2.8", NULL, LIST("1.2.6"));
	old->fix_state[SCAN_ENGINE_TRIVY] = SCAN_FIX_UNKNOWN;
	add(r, "CVE-2022-3715", SCAN_SEV_HIGH, "deb", "bash", "5.2.15-2+b2", NULL, NULL);
	recommend(r, NOW);
	assert_int_equal(json_array_size(recs()), 4);
	assert_string_equal(str(rec_for("CVE-2021-23337", "lodash"), "fixed_version"), "4.17.21");
	assert_string_equal(str(rec_for("CVE-2025-23166", "node"), "fixed_version"), "22.22.0");
	json_t *ssl = rec_for("CVE-2025-9230", "libssl3");
	assert_string_equal(str(ssl, "fixed_version"), "3.0.18-1~deb12u2");
	assert_string_equal(str(ssl, "action"), "upgrade openssl (libssl3) to 3.0.18-1~deb12u2");
	assert_string_equal(str(rec_for("CVE-2021-23337", "lodash"), "action"),
			    "upgrade lodash to 4.17.21");
	json_t *l = rec_for("CVE-2023-4641", "login");
	assert_true(json_is_null(json_object_get(l, "fixed_version")));
	assert_non_null(strstr(str(l, "action"), "no newer version is listed"));
	json_t *pkg = json_object_get(ssl, "package");
	assert_string_equal(str(pkg, "name"), "libssl3");
	assert_string_equal(str(pkg, "version"), "3.0.17-1~deb12u3");
	assert_string_equal(str(pkg, "type"), "deb");
	assert_string_equal(str(pkg, "source"), "openssl");
}

static size_t npackages(json_t *rec)
{
	return json_array_size(json_object_get(rec, "packages"));
}

static const char *package_at(json_t *rec, size_t i)
{
	return json_string_value(json_array_get(json_object_get(rec, "packages"), i));
}

static void test_grouping(void **state)
{
	(void)state;
	struct scan_report *r = report(16);
	/* trivy alpine-39 golden: one CVE on two binaries of one source, twice. */
	add(r, "CVE-2019-1549", SCAN_SEV_MEDIUM, "apk", "libssl1.1", "1.1.1c-r0", "openssl",
	    LIST("1.1.1d-r0"));
	add(r, "CVE-2019-1549", SCAN_SEV_MEDIUM, "apk", "libcrypto1.1", "1.1.1c-r0", "openssl",
	    LIST("1.1.1d-r0"));
	add(r, "CVE-2019-14697", SCAN_SEV_CRITICAL, "apk", "musl-utils", "1.1.20-r4", "musl",
	    LIST("1.1.20-r5"));
	add(r, "CVE-2019-14697", SCAN_SEV_CRITICAL, "apk", "musl", "1.1.20-r4", "musl",
	    LIST("1.1.20-r5"));
	/* No source known: each binary on its own. */
	add(r, "CVE-2023-38545", SCAN_SEV_HIGH, "deb", "curl", "7.88.1-10", NULL,
	    LIST("7.88.1-10+deb12u4"));
	add(r, "CVE-2023-38545", SCAN_SEV_HIGH, "deb", "libcurl4", "7.88.1-10", NULL,
	    LIST("7.88.1-10+deb12u4"));
	/* One npm package at three paths, and another version of it. */
	for (int i = 0; i < 3; i++)
		add(r, "CVE-2022-3517", SCAN_SEV_HIGH, "npm", "minimatch", "3.0.4", NULL,
		    LIST("3.0.5"));
	add(r, "CVE-2022-3517", SCAN_SEV_HIGH, "npm", "minimatch", "0.2.14", NULL, LIST("3.0.5"));
	recommend(r, NOW);
	assert_int_equal(json_array_size(recs()), 6);

	json_t *ssl = rec_for("CVE-2019-1549", "libcrypto1.1"); /* members sorted by name */
	assert_int_equal(npackages(ssl), 2);
	assert_string_equal(package_at(ssl, 0), "libcrypto1.1");
	assert_string_equal(package_at(ssl, 1), "libssl1.1");
	assert_string_equal(str(ssl, "action"), "upgrade openssl (2 binary packages) to 1.1.1d-r0");
	json_t *musl = rec_for("CVE-2019-14697", "musl");
	assert_int_equal(npackages(musl), 2);
	assert_string_equal(str(musl, "action"), "upgrade musl (2 binary packages) to 1.1.20-r5");

	assert_int_equal(npackages(rec_for("CVE-2023-38545", "curl")), 1);
	assert_string_equal(str(rec_for("CVE-2023-38545", "libcurl4"), "action"),
			    "upgrade libcurl4 to 7.88.1-10+deb12u4");
	size_t minimatch = 0, i;
	json_t *v;
	json_array_foreach(recs(), i, v) minimatch += !strcmp(str(v, "finding"), "CVE-2022-3517");
	assert_int_equal(minimatch, 2);
}

/* ---- base image ---- */

static void os_report(struct scan_report *r, const char *family, const char *version, bool eol)
{
	r->image.os_family = family;
	r->image.os_version = version;
	r->image.os_eol = eol;
}

static json_t *base(void)
{
	return json_object_get(result, "base_image");
}

static void test_base_debian12(void **state)
{
	(void)state;
	struct scan_report *r = report(4);
	os_report(r, "debian", "12.12", false);
	add(r, "CVE-2025-9230", SCAN_SEV_MEDIUM, "deb", "libssl3", "3.0.17-1~deb12u3", "openssl",
	    LIST("3.0.18-1~deb12u2"));
	add(r, "CVE-2025-4802", SCAN_SEV_HIGH, "deb", "libc6", "2.36-9+deb12u10", "glibc",
	    LIST("2.36-9+deb12u11"));
	add(r, "CVE-2026-0861", SCAN_SEV_HIGH, "deb", "libc6", "2.36-9+deb12u10", "glibc", NULL);
	add(r, "CVE-2021-23337", SCAN_SEV_HIGH, "npm", "lodash", "4.17.4", NULL, LIST("4.17.21"));
	recommend(r, NOW);
	json_t *want = json_pack(
	    "{s:s, s:s, s:s, s:b, s:s, s:s, s:n, s:i, s:i, s:s, s:s}", "family", "debian",
	    "version", "12.12", "release", "12", "eol", 0, "eol_date", "2028-06-30", "rebuild_on",
	    "debian:12", "upgrade_to", "fixes", 2, "os_findings", 3, "action",
	    "rebuild on debian:12 (the newest debian 12 point release): picks up fixes for 2 of 3 "
	    "OS findings",
	    "table_date", "2026-11");
	assert_true(json_equal(base(), want));
	json_decref(want);

	/* Grype's major-only version finds the same release; after its EOL date, debian 13. */
	os_report(r, "debian", "12", false);
	recommend(r, 1846108800); /* 2028-07-01 */
	assert_string_equal(str(base(), "release"), "12");
	assert_true(json_is_true(json_object_get(base(), "eol")));
	assert_string_equal(str(base(), "upgrade_to"), "debian:13");
}

static void test_base_alpine39_eol(void **state)
{
	(void)state;
	struct scan_report *r = report(2);
	os_report(r, "alpine", "3.9.4", true); /* Trivy: EOSL true */
	add(r, "CVE-2019-1549", SCAN_SEV_MEDIUM, "apk", "libssl1.1", "1.1.1c-r0", "openssl",
	    LIST("1.1.1d-r0"));
	add(r, "CVE-2019-14697", SCAN_SEV_CRITICAL, "apk", "musl", "1.1.20-r4", "musl",
	    LIST("1.1.20-r5"));
	recommend(r, NOW);
	assert_true(json_is_true(json_object_get(base(), "eol")));
	assert_string_equal(str(base(), "release"), "3.9");
	assert_string_equal(str(base(), "eol_date"), "2020-11-01");
	assert_string_equal(str(base(), "rebuild_on"), "alpine:3.9");
	/* 3.21 ended on 2026-11-01: the newest supported release on 2026-11-15 is 3.24. */
	assert_string_equal(str(base(), "upgrade_to"), "alpine:3.24");
	assert_string_equal(
	    str(base(), "action"),
	    "alpine 3.9.4 is end of life: move to alpine:3.24, the newest supported "
	    "release; until then rebuilding on alpine:3.9 picks up fixes for 2 of 2 "
	    "OS findings");
	/* The table's date alone also flags it. */
	os_report(r, "alpine", "3.9.4", false);
	recommend(r, NOW);
	assert_true(json_is_true(json_object_get(base(), "eol")));
	/* And a release still supported is not flagged. */
	os_report(r, "alpine", "3.22.2", false);
	recommend(r, NOW);
	assert_true(json_is_false(json_object_get(base(), "eol")));
	assert_true(json_is_null(json_object_get(base(), "upgrade_to")));
}

static void test_base_ubuntu1804(void **state)
{
	(void)state;
	struct scan_report *r = report(1);
	os_report(r, "ubuntu", "18.04", false);
	add(r, "CVE-2019-5188", SCAN_SEV_MEDIUM, "deb", "e2fsprogs", "1.44.1-1ubuntu1.1",
	    "e2fsprogs", LIST("1.44.1-1ubuntu1.3"));
	recommend(r, NOW);
	assert_true(json_is_true(json_object_get(base(), "eol")));
	assert_string_equal(str(base(), "eol_date"), "2023-05-31");
	assert_string_equal(str(base(), "upgrade_to"), "ubuntu:26.04");
	assert_int_equal(json_integer_value(json_object_get(base(), "fixes")), 1);
	/* The same source and binary name: no "(...)" detail. */
	assert_string_equal(str(rec_for("CVE-2019-5188", "e2fsprogs"), "action"),
			    "upgrade e2fsprogs to 1.44.1-1ubuntu1.3");
}

static void test_base_other(void **state)
{
	(void)state;
	struct scan_report *r = report(1);
	add(r, "CVE-2021-23337", SCAN_SEV_HIGH, "npm", "lodash", "4.17.4", NULL, LIST("4.17.21"));
	recommend(r, NOW);
	assert_true(json_is_null(base())); /* no OS findings */

	r = report(1);
	add(r, "CVE-2020-1", SCAN_SEV_LOW, "rpm", "nss", "3.79.0-17.el9_1", NULL, NULL);
	os_report(r, "rockylinux", "9.3", false); /* Grype's name */
	recommend(r, NOW);
	assert_string_equal(str(base(), "rebuild_on"), "rockylinux/rockylinux:9");
	assert_int_equal(json_integer_value(json_object_get(base(), "fixes")), 0);
	os_report(r, "amazon", "2 (Karoo)", false);
	recommend(r, NOW); /* amazon 2 ended 2026-06-30 */
	assert_string_equal(str(base(), "upgrade_to"), "amazonlinux:2023");
	os_report(r, "photon", "5.0", false);
	recommend(r, NOW);
	assert_true(json_is_null(json_object_get(base(), "release")));
	assert_true(json_is_null(json_object_get(base(), "rebuild_on")));
	assert_true(json_is_false(json_object_get(base(), "eol")));
}

/* ---- priority ---- */

#define V31_NET_UI "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H"

static void test_priority_by_hand(void **state)
{
	(void)state;
	const char *why = NULL;
	struct scan_report *r = report(1);
	struct scan_finding *f =
	    add(r, "CVE-2024-4068", SCAN_SEV_HIGH, "npm", "braces", "2.3.2", NULL, LIST("3.0.3"));
	set_cvss(r, f, "3.1", V31_NET_UI);
	set_cvss(r, f, "2.0", "AV:N/AC:L/Au:N/C:P/I:P/A:P"); /* v2: not used */
	f->epss = 0.04;
	set_entrypoint(r, LIST("node", "/juice-shop/build/app.js"));
	/*
	 * By hand: severity high = 30; exploitability from the v3.1 vector
	 * AV:N 8 + AC:L 4 + PR:N 4 + UI:R 0 = 16; threat 20 * sqrt(0.04) = 4;
	 * path: an npm package under a node entrypoint = 15. 30 + 16 + 4 + 15 = 65.
	 */
	assert_float_equal(scan_priority(f, &r->image, &why), 65.0, 1e-9);
	assert_string_equal(why, "network-exploitable and in the execution path");

	set_entrypoint(r, LIST("java", "-jar", "/app/app.jar")); /* npm is off a java path */
	assert_float_equal(scan_priority(f, &r->image, &why), 50.0, 1e-9);
	assert_string_equal(why, "package is off the execution path");
	r->image.nentrypoint = 0; /* unknown: 7.5 */
	assert_float_equal(scan_priority(f, &r->image, NULL), 57.5, 1e-9);

	/* The vector giving the most points wins: v4.0 with UI:N is 8 + 4 + 4 + 4 = 20. */
	set_entrypoint(r, LIST("/usr/bin/tini", "--", "/usr/local/bin/node", "server.mjs"));
	set_cvss(r, f, "4.0", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N");
	assert_float_equal(scan_priority(f, &r->image, NULL), 69.0, 1e-9);
	/* No usable vector: exploitability = severity / 2 = 15. */
	f->ncvss = 0;
	assert_float_equal(scan_priority(f, &r->image, &why), 64.0, 1e-9);
	assert_string_equal(why, "severity only: no CVSS v3/v4 vector");
	/* KEV: threat 25 whatever the EPSS. */
	f->kev = true;
	assert_float_equal(scan_priority(f, &r->image, &why), 85.0, 1e-9);
	assert_string_equal(why, "known exploited (CISA KEV)");
	/* The top: critical, every metric at its worst, KEV, in the path. */
	f->severity = SCAN_SEV_CRITICAL;
	set_cvss(r, f, "3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H");
	assert_float_equal(scan_priority(f, &r->image, NULL), 100.0, 1e-9);
}

/* Path points of a package under an entrypoint (severity low, no vector, no EPSS: 10 + 5). */
static double path_pts(const char *type, const char *name, const char *path,
		       const char *const *argv)
{
	struct scan_report *r = report(1);
	struct scan_finding *f = add(r, "CVE-1", SCAN_SEV_LOW, type, name, "1", NULL, NULL);
	if (path)
		f->paths = strv(r, LIST(path), &f->npaths);
	set_entrypoint(r, argv);
	double p = scan_priority(f, &r->image, NULL) - 15.0;
	scan_report_free(reports[--nreports]);
	return p;
}

static void test_execution_path(void **state)
{
	(void)state;
	const char *const *node = LIST("node", "app.js");
	assert_float_equal(path_pts("deb", "libssl3", NULL, node), 15, 1e-9); /* a shared library */
	assert_float_equal(path_pts("deb", "openssl", NULL, node), 15, 1e-9);
	assert_float_equal(path_pts("apk", "musl", NULL, node), 15, 1e-9);
	assert_float_equal(path_pts("deb", "curl", NULL, node), 0, 1e-9); /* a tool */
	assert_float_equal(path_pts("binary", "node", NULL, node), 15, 1e-9);
	assert_float_equal(path_pts("python-pkg", "jinja2", NULL, node), 0, 1e-9);
	assert_float_equal(path_pts("python-pkg", "jinja2", NULL, LIST("python3", "-m", "app")), 15,
			   1e-9);
	assert_float_equal(path_pts("gem", "rack", NULL, LIST("bundle", "exec", "puma")), 15, 1e-9);
	assert_float_equal(path_pts("jar", "log4j-core", NULL, LIST("/opt/app/run.jar")), 15, 1e-9);
	/* A shell script hides the runtime: language packages unknown, libraries still linked. */
	const char *const *sh = LIST("/bin/bash", "/home/webgoat/start.sh");
	assert_float_equal(path_pts("jar", "xstream", NULL, sh), 7.5, 1e-9);
	assert_float_equal(path_pts("deb", "libc6", NULL, sh), 15, 1e-9);
	/* Go: the entrypoint binary's modules are in the path, another binary's are not. */
	const char *const *go = LIST("/tini", "--", "/usr/local/bin/traefik");
	assert_float_equal(path_pts("gobinary", "golang.org/x/net", "usr/local/bin/traefik", go),
			   15, 1e-9);
	assert_float_equal(path_pts("gobinary", "golang.org/x/net", "usr/bin/other", go), 0, 1e-9);
	assert_float_equal(path_pts("npm", "lodash", NULL, go), 0, 1e-9);
	assert_float_equal(path_pts("npm", "lodash", NULL, NULL), 7.5, 1e-9); /* no entrypoint */
}

static double priority_of(json_t *rec)
{
	return json_real_value(json_object_get(rec, "priority"));
}

static void test_priority_order(void **state)
{
	(void)state;
	struct scan_report *r = report(3);
	struct scan_finding *b = add(r, "CVE-2024-0002", SCAN_SEV_HIGH, "deb", "libxml2", "2.9.14",
				     NULL, LIST("2.9.14+dfsg-1.3~deb12u2"));
	add(r, "CVE-2024-0003", SCAN_SEV_CRITICAL, "deb", "zlib1g", "1:1.2.13", NULL,
	    LIST("1:1.2.13.dfsg-1+deb12u1"));
	struct scan_finding *a = add(r, "CVE-2024-0001", SCAN_SEV_HIGH, "deb", "libxml2", "2.9.14",
				     NULL, LIST("2.9.14+dfsg-1.3~deb12u2"));
	set_cvss(r, a, "3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H");
	a->kev = true;
	(void)b;
	recommend(r, NOW);
	json_t *list = recs();
	assert_int_equal(json_array_size(list), 3);
	/* A: 30 + 20 + 25 + 7.5; C: 40 + 20 + 0 + 7.5; B: 30 + 15 + 0 + 7.5. */
	assert_string_equal(str(json_array_get(list, 0), "finding"), "CVE-2024-0001");
	assert_string_equal(str(json_array_get(list, 1), "finding"), "CVE-2024-0003");
	assert_string_equal(str(json_array_get(list, 2), "finding"), "CVE-2024-0002");
	assert_float_equal(priority_of(json_array_get(list, 0)), 82.5, 1e-9);
	assert_float_equal(priority_of(json_array_get(list, 1)), 67.5, 1e-9);
	assert_float_equal(priority_of(json_array_get(list, 2)), 52.5, 1e-9);
	json_t *fx = json_object_get(json_array_get(list, 0), "priority_factors");
	json_t *want = json_pack("{s:f, s:f, s:s, s:n, s:b, s:f, s:s, s:n, s:f}", "severity_points",
				 30.0, "exploitability_points", 20.0, "vector",
				 "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "epss", "kev", 1,
				 "threat_points", 25.0, "execution_path", "unknown", "runtime",
				 "path_points", 7.5);
	assert_true(json_equal(fx, want));
	json_decref(want);
}

static void test_deterministic(void **state)
{
	(void)state;
	struct scan_report *r = report(8);
	add(r, "CVE-2019-1549", SCAN_SEV_MEDIUM, "apk", "libssl1.1", "1.1.1c-r0", "openssl",
	    LIST("1.1.1d-r0"));
	add(r, "CVE-2019-1549", SCAN_SEV_MEDIUM, "apk", "libcrypto1.1", "1.1.1c-r0", "openssl",
	    LIST("1.1.1d-r0"));
	add(r, "CVE-2019-1551", SCAN_SEV_MEDIUM, "apk", "libssl1.1", "1.1.1c-r0", "openssl",
	    LIST("1.1.1d-r2"));
	add(r, "CVE-2022-3517", SCAN_SEV_HIGH, "npm", "minimatch", "3.0.4", NULL, LIST("3.0.5"));
	add(r, "CVE-2022-3518", SCAN_SEV_HIGH, "npm", "minimatch", "3.0.4", NULL, LIST("3.0.5"));
	add(r, "CVE-2022-3519", SCAN_SEV_HIGH, "npm", "aaa", "3.0.4", NULL, LIST("3.0.5"));
	os_report(r, "alpine", "3.22.1", false);
	char *first = jsonx_dump(recommend(r, NOW));
	for (size_t i = 0; i < r->nfindings / 2; i++) {
		struct scan_finding t = r->findings[i];
		r->findings[i] = r->findings[r->nfindings - 1 - i];
		r->findings[r->nfindings - 1 - i] = t;
	}
	char *second = jsonx_dump(recommend(r, NOW));
	assert_non_null(first);
	assert_non_null(second);
	assert_string_equal(first, second);
	/* Equal priorities: severity, then id. */
	assert_string_equal(str(json_array_get(recs(), 0), "finding"), "CVE-2022-3517");
	assert_string_equal(str(json_array_get(recs(), 2), "finding"), "CVE-2022-3519");
	free(first);
	free(second);
}

/* ---- a real report ---- */


static void test_smoke_juice_shop(void **state)
{
	(void)state;
	size_t len = 0;
	char *buf = testdata_read("scanners/appsecsanta-research/trivy-juice-shop.json", &len);
	struct scan_report *r = NULL;
	char msg[SCAN_MSG_LEN];
	int rc = trivy_parse(buf, len, &r, msg);
	free(buf);
	if (rc != 0)
		fail_msg("trivy_parse: %s", msg);
	reports[nreports++] = r;
	recommend(r, NOW);
	json_t *list = recs();
	size_t n = json_array_size(list);
	assert_true(n > 0 && n < r->nfindings); /* minimatch's 9 copies are one recommendation */
	for (size_t i = 0; i < n; i++) {
		json_t *rec = json_array_get(list, i);
		assert_non_null(str(rec, "finding"));
		assert_non_null(str(rec, "action"));
		assert_true(npackages(rec) >= 1);
		if (i > 0)
			assert_true(priority_of(json_array_get(list, i - 1)) >= priority_of(rec));
	}
	assert_string_equal(str(base(), "family"), "debian");
	assert_string_equal(str(base(), "release"), "12");
	assert_true(json_is_false(json_object_get(base(), "eol")));
	assert_int_equal(json_integer_value(json_object_get(base(), "os_findings")), 23);
	assert_true(json_integer_value(json_object_get(base(), "fixes")) <= 23);
}

/* ---- per-package upgrades ---- */

static json_t *upgrades(void)
{
	return json_object_get(result, "upgrades");
}

/* The upgrade whose package is name@version. */
static json_t *upgrade_for(const char *name, const char *version)
{
	size_t i;
	json_t *v;
	json_array_foreach(upgrades(), i, v)
	{
		json_t *pkg = json_object_get(v, "package");
		if (!strcmp(str(pkg, "name"), name) && !strcmp(str(pkg, "version"), version))
			return v;
	}
	fail_msg("no upgrade for %s %s", name, version);
	return NULL;
}

static json_int_t num(json_t *o, const char *key)
{
	assert_true(json_is_integer(json_object_get(o, key)));
	return json_integer_value(json_object_get(o, key));
}

static json_int_t by_sev(json_t *up, const char *sev)
{
	return num(json_object_get(up, "fixes_by_severity"), sev);
}

static void test_upgrade_one_line(void **state)
{
	(void)state;
	struct scan_report *r = report(8);
	/* webgoat's xstream in small: each CVE names its own fix on the 1.4 line. */
	add(r, "CVE-2013-7285", SCAN_SEV_CRITICAL, "jar", "xstream", "1.4.5", NULL,
	    LIST("1.4.7", "1.4.11"));
	add(r, "CVE-2024-47072", SCAN_SEV_HIGH, "jar", "xstream", "1.4.5", NULL, LIST("1.4.21"));
	add(r, "CVE-2021-39144", SCAN_SEV_HIGH, "jar", "xstream", "1.4.5", NULL, LIST("1.4.18"));
	add(r, "CVE-2020-26217", SCAN_SEV_HIGH, "jar", "xstream", "1.4.5", NULL,
	    LIST("1.4.14-java7"));
	add(r, "CVE-2021-21342", SCAN_SEV_MEDIUM, "jar", "xstream", "1.4.5", NULL, LIST("1.4.16"));
	/* Fixed by state only: not an upgrade, counted on xstream's entry. */
	add(r, "CVE-2099-0001", SCAN_SEV_HIGH, "jar", "xstream", "1.4.5", NULL, NULL)
	    ->fix_state[SCAN_ENGINE_GRYPE] = SCAN_FIX_FIXED;
	/* Fixed by state only on a package with nothing else: no entry at all. */
	add(r, "CVE-2099-0002", SCAN_SEV_CRITICAL, "jar", "other", "2.0", NULL, NULL)
	    ->fix_state[SCAN_ENGINE_GRYPE] = SCAN_FIX_FIXED;
	recommend(r, NOW);
	assert_int_equal(json_array_size(recs()), 7);
	assert_int_equal(json_array_size(upgrades()), 1);
	json_t *x = upgrade_for("xstream", "1.4.5");
	/* 1.4.7 (picked over 1.4.11), 1.4.14-java7, 1.4.16, 1.4.18, 1.4.21: the highest. */
	assert_string_equal(str(x, "to_version"), "1.4.21");
	assert_string_equal(str(x, "action"), "upgrade xstream to 1.4.21");
	assert_int_equal(num(x, "fixes"), 5);
	assert_int_equal(num(x, "findings_total"), 5);
	assert_int_equal(num(x, "without_version"), 1);
	assert_int_equal(by_sev(x, "critical"), 1);
	assert_int_equal(by_sev(x, "high"), 3);
	assert_int_equal(by_sev(x, "medium"), 1);
	assert_int_equal(by_sev(x, "low") + by_sev(x, "negligible") + by_sev(x, "unknown"), 0);
	json_t *want = json_pack("[s, s, s, s, s]", "CVE-2013-7285", "CVE-2020-26217",
				 "CVE-2021-21342", "CVE-2021-39144", "CVE-2024-47072");
	assert_true(json_equal(json_object_get(x, "findings"), want));
	json_decref(want);
	/* No entrypoint (path 7.5), no vector (severity / 2): critical 40 + 20 + 7.5. */
	assert_float_equal(priority_of(x), 67.5, 1e-9);
	assert_int_equal(npackages(x), 1);
	assert_string_equal(str(json_object_get(x, "package"), "type"), "jar");
}

static void test_upgrade_versions_and_sources(void **state)
{
	(void)state;
	struct scan_report *r = report(8);
	/* Two installed versions of one npm package: two upgrades. */
	add(r, "CVE-2022-3517", SCAN_SEV_HIGH, "npm", "minimatch", "3.0.4", NULL, LIST("3.0.5"));
	add(r, "CVE-2022-3517", SCAN_SEV_HIGH, "npm", "minimatch", "3.0.4", NULL, LIST("3.0.5"));
	add(r, "CVE-2022-3517", SCAN_SEV_HIGH, "npm", "minimatch", "0.2.14", NULL, LIST("3.0.5"));
	/* Three CVEs on two binaries of one source: one upgrade; apk order, r10 > r2. */
	add(r, "CVE-2019-1549", SCAN_SEV_MEDIUM, "apk", "libssl1.1", "1.1.1c-r0", "openssl",
	    LIST("1.1.1d-r0"));
	add(r, "CVE-2019-1549", SCAN_SEV_MEDIUM, "apk", "libcrypto1.1", "1.1.1c-r0", "openssl",
	    LIST("1.1.1d-r0"));
	add(r, "CVE-2019-1551", SCAN_SEV_LOW, "apk", "libssl1.1", "1.1.1c-r0", "openssl",
	    LIST("1.1.1d-r10"));
	add(r, "CVE-2019-1563", SCAN_SEV_LOW, "apk", "libcrypto1.1", "1.1.1c-r0", "openssl",
	    LIST("1.1.1d-r2"));
	recommend(r, NOW);
	assert_int_equal(json_array_size(upgrades()), 3);
	assert_int_equal(num(upgrade_for("minimatch", "3.0.4"), "fixes"), 1);
	assert_int_equal(num(upgrade_for("minimatch", "0.2.14"), "fixes"), 1);
	assert_string_equal(str(upgrade_for("minimatch", "0.2.14"), "to_version"), "3.0.5");

	json_t *ssl = json_array_get(upgrades(), 2); /* medium 37.5 after two highs at 52.5 */
	assert_string_equal(str(json_object_get(ssl, "package"), "source"), "openssl");
	assert_int_equal(npackages(ssl), 2);
	assert_string_equal(package_at(ssl, 0), "libcrypto1.1");
	assert_string_equal(package_at(ssl, 1), "libssl1.1");
	assert_string_equal(str(ssl, "to_version"), "1.1.1d-r10");
	assert_string_equal(str(ssl, "action"),
			    "upgrade openssl (2 binary packages) to 1.1.1d-r10");
	assert_int_equal(num(ssl, "fixes"), 3);
	assert_int_equal(by_sev(ssl, "medium"), 1);
	assert_int_equal(by_sev(ssl, "low"), 2);
	assert_float_equal(priority_of(ssl), 37.5, 1e-9);
}

static void test_upgrade_order(void **state)
{
	(void)state;
	struct scan_report *r = report(64);
	/* All high, no vector, no entrypoint: 52.5 each, but "zlib" has a KEV one. */
	add(r, "CVE-2024-0001", SCAN_SEV_HIGH, "npm", "aaa", "1.0.0", NULL, LIST("1.0.1"));
	add(r, "CVE-2024-0002", SCAN_SEV_HIGH, "npm", "ccc", "1.0.0", NULL, LIST("1.0.1"));
	add(r, "CVE-2024-0003", SCAN_SEV_HIGH, "npm", "ccc", "1.0.0", NULL, LIST("1.0.2"));
	add(r, "CVE-2024-0004", SCAN_SEV_HIGH, "npm", "bbb", "1.0.0", NULL, LIST("1.0.1"));
	add(r, "CVE-2024-0005", SCAN_SEV_HIGH, "npm", "bbb", "1.0.0", NULL, LIST("1.0.3"));
	add(r, "CVE-2024-0006", SCAN_SEV_HIGH, "npm", "zlib", "1.0.0", NULL, LIST("1.0.1"))->kev =
	    true;
	/* 55 findings on one package: the ids stop at 50, the total says 55. */
	for (int i = 0; i < 55; i++) {
		char id[32];
		snprintf(id, sizeof(id), "CVE-2025-%04d", i);
		add(r, id, SCAN_SEV_LOW, "npm", "many", "1.0.0", NULL, LIST("2.0.0"));
	}
	recommend(r, NOW);
	const char *want[] = {"zlib", "bbb", "ccc", "aaa", "many"};
	assert_int_equal(json_array_size(upgrades()), 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(
		    str(json_object_get(json_array_get(upgrades(), i), "package"), "name"),
		    want[i]);
	/* Priority first (zlib 30 + 15 + KEV 25 + 7.5; "many" is low), then fixes, then name. */
	assert_float_equal(priority_of(upgrade_for("zlib", "1.0.0")), 77.5, 1e-9);
	assert_float_equal(priority_of(upgrade_for("aaa", "1.0.0")), 52.5, 1e-9);
	assert_float_equal(priority_of(upgrade_for("many", "1.0.0")), 22.5, 1e-9);
	assert_string_equal(str(upgrade_for("bbb", "1.0.0"), "to_version"), "1.0.3");
	json_t *many = upgrade_for("many", "1.0.0");
	assert_int_equal(json_array_size(json_object_get(many, "findings")), 50);
	assert_int_equal(num(many, "findings_total"), 55);
	assert_int_equal(num(many, "fixes"), 55);
	assert_int_equal(by_sev(many, "low"), 55);
}

/* Parses one of the appsecsanta-research reports into reports[] (testdata.h). */
static struct scan_report *parse_real(const char *file, bool trivy)
{
	char path[512], msg[SCAN_MSG_LEN];
	size_t len = 0;
	struct scan_report *r = NULL;
	snprintf(path, sizeof(path), "scanners/appsecsanta-research/%s", file);
	char *buf = testdata_read(path, &len);
	int rc = trivy ? trivy_parse(buf, len, &r, msg) : grype_parse(buf, len, &r, msg);
	free(buf);
	if (rc != 0)
		fail_msg("%s: %s", file, msg);
	reports[nreports++] = r;
	return r;
}

/*
 * webgoat, both engines, merged. Read from the two JSON files with python3:
 * Trivy has 36 vulnerabilities on com.thoughtworks.xstream:xstream 1.4.5 and
 * Grype 36 matches on xstream 1.4.5 (one jar, same PURL); Grype's related
 * CVEs are exactly Trivy's 36 CVE ids, so the merge gives 36 findings, one
 * per CVE, and 36 recommendations. Their fixes are all on the 1.4 line:
 * 1.4.7 (CVE-2013-7285; Trivy also lists 1.4.11, Grype only 1.4.7), 1.4.9,
 * 1.4.10, 1.4.14-java7, 1.4.15, 1.4.16, 1.4.17, 1.4.18, 1.4.19, 1.4.20 and
 * 1.4.21 (CVE-2024-47072 alone): the upgrade is to 1.4.21. Severity, the
 * higher of the two engines per CVE (they agree on all 36): critical 1
 * (CVE-2013-7285), high 22, medium 13. CVE-2021-39144 is Grype's KEV entry.
 */
static void test_upgrade_webgoat(void **state)
{
	(void)state;
	struct scan_report *in[2] = {parse_real("trivy-webgoat.json", true),
				     parse_real("grype-webgoat.json", false)};
	struct scan_report *m = NULL;
	assert_int_equal(scan_merge(in, 2, &m, NULL), 0);
	reports[nreports++] = m;
	recommend(m, NOW);
	json_t *x = NULL, *v;
	size_t i, n = 0;
	json_array_foreach(upgrades(), i, v)
	{
		const char *name = str(json_object_get(v, "package"), "name");
		if (strstr(name, "xstream")) {
			x = v;
			n++;
		}
		assert_float_equal(priority_of(v), round(priority_of(v) * 10) / 10, 1e-9);
		/* as shown: priority desc, then fixes desc (sqlite and openssl tie at 56.7) */
		json_t *prev = json_array_get(upgrades(), i - 1);
		if (i > 0)
			assert_true(priority_of(prev) > priority_of(v) ||
				    (priority_of(prev) == priority_of(v) &&
				     num(prev, "fixes") >= num(v, "fixes")));
	}
	assert_int_equal(n, 1);
	assert_string_equal(str(json_object_get(x, "package"), "version"), "1.4.5");
	assert_string_equal(str(x, "to_version"), "1.4.21");
	assert_int_equal(num(x, "fixes"), 36);
	assert_int_equal(num(x, "findings_total"), 36);
	assert_int_equal(json_array_size(json_object_get(x, "findings")), 36);
	assert_int_equal(by_sev(x, "critical"), 1);
	assert_int_equal(by_sev(x, "high"), 22);
	assert_int_equal(by_sev(x, "medium"), 13);
	assert_int_equal(num(x, "without_version"), 0);
	assert_non_null(strstr(str(x, "action"), "xstream to 1.4.21"));
	/* Its priority is that of its KEV finding's recommendation, the highest of the 36. */
	json_t *kev = NULL;
	json_array_foreach(recs(), i, v)
	{
		if (!strcmp(str(v, "finding"), "CVE-2021-39144"))
			kev = v;
		if (strstr(str(json_object_get(v, "package"), "name"), "xstream"))
			assert_true(priority_of(v) <= priority_of(x));
	}
	assert_non_null(kev);
	assert_float_equal(priority_of(x), priority_of(kev), 1e-9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_picked_versions, teardown),
	    cmocka_unit_test_teardown(test_grouping, teardown),
	    cmocka_unit_test_teardown(test_base_debian12, teardown),
	    cmocka_unit_test_teardown(test_base_alpine39_eol, teardown),
	    cmocka_unit_test_teardown(test_base_ubuntu1804, teardown),
	    cmocka_unit_test_teardown(test_base_other, teardown),
	    cmocka_unit_test_teardown(test_priority_by_hand, teardown),
	    cmocka_unit_test_teardown(test_execution_path, teardown),
	    cmocka_unit_test_teardown(test_priority_order, teardown),
	    cmocka_unit_test_teardown(test_deterministic, teardown),
	    cmocka_unit_test_teardown(test_smoke_juice_shop, teardown),
	    cmocka_unit_test_teardown(test_upgrade_one_line, teardown),
	    cmocka_unit_test_teardown(test_upgrade_versions_and_sources, teardown),
	    cmocka_unit_test_teardown(test_upgrade_order, teardown),
	    cmocka_unit_test_teardown(test_upgrade_webgoat, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
