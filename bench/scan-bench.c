/*
 * scan-bench.c — parse and merge time, and peak memory, of the vulnerability
 * scanner's report pipeline (issue 8): trivy_parse + grype_parse +
 * scan_merge on one pair of reports of one image.
 *
 * Goal (issue 8): a synthetic pair of 50,000 findings each merged in under
 * 1 s, with peak memory under 10x the input size (the two files' bytes).
 * bench/scan-bench.sh runs bench/scan-peer.py (Python, stdlib json) on the
 * same files in the same invocation for the ratio column.
 *
 * Per case:
 *   time    R repetitions of trivy_parse, grype_parse, scan_merge on the
 *           files' bytes (read once, beforehand); median and min of each step
 *           and of their sum. Freeing the reports is not timed. "to-JSON" is
 *           the merged findings through scan_finding_to_json and json_dumps
 *           (what the API answers), timed apart and not in the total.
 *   memory  one run in a forked child: it resets its peak RSS
 *           (/proc/self/clear_refs, "5"), notes VmRSS, reads both files,
 *           parses, merges, then reads VmHWM. Peak = VmHWM - VmRSS at start,
 *           so it counts the input buffers, the JSON trees and the reports.
 *           All children run before any timing, with malloc_trim before
 *           each fork, so no freed heap of an earlier run hides the peak.
 *           The reports' arena bytes (scan_report_arena_bytes) are given too.
 *
 * The synthetic pair (--generate) copies the shape of the real reports in
 * tests/data/scanners/appsecsanta-research: Trivy SchemaVersion 2 indented
 * by 2 (as Trivy writes it), Grype compact (as Grype writes it). Of the
 * distinct (vulnerability, package) pairs, 8/9 are in both files, 1/18 only
 * in each (with N = 50,000: 44,444 shared, 5,556 only Trivy, 5,556 only
 * Grype). 60 % are deb findings (CVE on both sides; 1 package in 8 carries
 * a DSA covering all of its CVEs, in Trivy VendorIDs and Grype advisories),
 * 20 % npm and 20 % Maven (Trivy: CVE + VendorIDs [GHSA]; Grype: the GHSA
 * with the CVE as related vulnerability). Each CVE sits on 2 packages.
 * Deb epochs follow the engines' habits (Trivy: InstalledVersion and an
 * epoch= PURL qualifier; Grype: in the version). Grype lists the matches in
 * another order than Trivy.
 *
 * Usage: scan-bench --generate DIR [--findings N]   (writes DIR/trivy.json, DIR/grype.json)
 *        scan-bench [--repeat R] [--results FILE] NAME TRIVY GRYPE [NAME TRIVY GRYPE]...
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/encoding.h"
#include "core/err.h"
#include "core/jdoc.h"
#include "core/timeutil.h"
#include "scan/grype.h"
#include "scan/merge.h"
#include "scan/model.h"
#include "scan/trivy.h"

#define MAX_CASES  8
#define MAX_REPEAT 100
#define MIB	   (1024.0 * 1024.0)

static void die(const char *what, int rc)
{
	fprintf(stderr, "scan-bench: %s: %s\n", what, odx_strerror(rc));
	exit(1);
}

/* ================= the synthetic pair ================= */

#define NPKG	   2000 /* packages per kind */
#define BASE_LAYER "sha256:baf95fd13a1d4a1d112f931943d1beb53ea3010daf1912aaf2a94e082255b586"
#define APP_LAYER  "sha256:8dd01ff157deb045769a969cd4f982917d46665363e21a917f67f0dfc164ce75"
#define IMAGE_ID   "sha256:13af10adb5887892f249f73480a29e0007e6b87414a1db709ec9d94476297de6"
#define DIGEST                                                                                     \
	"bench/synthetic@sha256:3101bd9e7bcfe122d7ef91e690ef3720de36cc4e86b3d06763a1ddf2e2751a4b"

enum kind { K_DEB, K_NPM, K_MAVEN };

/* Everything both engines say of one (vulnerability, package) pair, u. */
struct syn {
	enum kind kind;
	size_t c, p; /* CVE number and package number */
	char cve[24], ghsa[24], dsa[16];
	char name[64], tname[96]; /* tname: Trivy's PkgName (Maven groupId:artifactId) */
	char ver[48], gver[48];	  /* installed: ver without epoch (Trivy PURL), gver with */
	char fixed[48], fixed2[48];
	char src[48];
	char tpurl[192], gpurl[192], tpath[160], gpath[160];
	int sev, gsev; /* 0..4: Trivy UNKNOWN..CRITICAL; gsev -1: Negligible */
	int fix;       /* 0 fixed, 1 affected, 2 will not fix */
	double score;
	char desc[400], title[160];
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

static const char *const stems[] = {"libssl",  "libxml",    "zlib",	"libcurl", "libgnutls",
				    "libperl", "libsqlite", "libexpat", "libtiff", "libldap"};
static const char filler[] =
    "allows a remote attacker to cause a denial of service or possibly execute arbitrary code "
    "via a crafted input that triggers an out-of-bounds read during parsing, because a length "
    "field is not validated against the remaining buffer before it is used.";

/* "maj.min.pat[+dfsg]-rev" for package p; rev varies to make the fixed version. */
static void deb_version(char *out, size_t cap, size_t p, size_t rev)
{
	snprintf(out, cap, "%zu.%zu.%zu%s-%zu", 1 + p % 9, p % 20, p % 13, p % 5 ? "" : "+dfsg",
		 rev);
}

/* The text with '+' and ':' percent-encoded, as both engines write PURL versions. */
static void purl_enc(char *out, size_t cap, const char *s)
{
	size_t o = 0;
	for (; *s && o + 4 < cap; s++) {
		if (*s == '+' || *s == ':')
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", (unsigned)*s);
		else
			out[o++] = *s;
	}
	out[o] = '\0';
}

static void syn_deb(struct syn *s)
{
	size_t p = s->p;
	bool epoch = p % 10 == 0;
	snprintf(s->name, sizeof(s->name), "%s%zu", stems[p % 10], p);
	memcpy(s->tname, s->name, sizeof(s->name));
	snprintf(s->src, sizeof(s->src), "%s-src%zu", stems[p % 10], p / 3);
	deb_version(s->ver, sizeof(s->ver), p, 1 + p % 4);
	snprintf(s->gver, sizeof(s->gver), "%s%s", epoch ? "1:" : "", s->ver);
	char v[64], fv[64];
	deb_version(fv, sizeof(fv), p, 2 + p % 4);
	snprintf(s->fixed, sizeof(s->fixed), "%s%s", epoch ? "1:" : "", fv);
	purl_enc(v, sizeof(v), s->ver);
	snprintf(s->tpurl, sizeof(s->tpurl),
		 "pkg:deb/debian/%s@%s?arch=amd64&distro=debian-12.12%s", s->name, v,
		 epoch ? "&epoch=1" : "");
	purl_enc(v, sizeof(v), s->gver);
	snprintf(s->gpurl, sizeof(s->gpurl),
		 "pkg:deb/debian/%s@%s?arch=amd64&distro=debian-12&upstream=%s", s->name, v,
		 s->src);
	if (p % 8 == 0)
		snprintf(s->dsa, sizeof(s->dsa), "DSA-%zu-1", 5000 + p);
}

static void syn_lang(struct syn *s)
{
	size_t p = s->p;
	snprintf(s->ver, sizeof(s->ver), "%zu.%zu.%zu", p % 7, p % 23, p % 11);
	memcpy(s->gver, s->ver, sizeof(s->ver));
	snprintf(s->fixed, sizeof(s->fixed), "%zu.%zu.%zu", p % 7, p % 23 + 1, 0ul);
	if (p % 3 == 0)
		snprintf(s->fixed2, sizeof(s->fixed2), "%zu.0.0", p % 7 + 1);
	if (s->kind == K_NPM) {
		bool scoped = p % 4 == 0;
		snprintf(s->name, sizeof(s->name), "%snode-pkg%zu", scoped ? "@scope/" : "", p);
		memcpy(s->tname, s->name, sizeof(s->name));
		snprintf(s->tpurl, sizeof(s->tpurl), "pkg:npm/%snode-pkg%zu@%s",
			 scoped ? "%40scope/" : "", p, s->ver);
		snprintf(s->tpath, sizeof(s->tpath), "app/node_modules/%s/package.json", s->name);
		snprintf(s->gpath, sizeof(s->gpath), "/app/node_modules/%s/package.json", s->name);
	} else {
		snprintf(s->name, sizeof(s->name), "artifact%zu", p);
		snprintf(s->tname, sizeof(s->tname), "org.example.g%zu:artifact%zu", p % 97, p);
		snprintf(s->tpurl, sizeof(s->tpurl), "pkg:maven/org.example.g%zu/artifact%zu@%s",
			 p % 97, p, s->ver);
		snprintf(s->tpath, sizeof(s->tpath), "app/app.jar/BOOT-INF/lib/artifact%zu-%s.jar",
			 p, s->ver);
		snprintf(s->gpath, sizeof(s->gpath), "/app/app.jar");
	}
	memcpy(s->gpurl, s->tpurl, sizeof(s->tpurl));
}

/* GHSA ids use 4-4-4 groups of this alphabet. */
static void ghsa_id(char *out, size_t c)
{
	static const char al[] = "23456789cfghjmpqrvwx";
	uint64_t h = mix(c + 77);
	memcpy(out, "GHSA-", 5);
	for (int i = 0, o = 5; i < 12; i++) {
		out[o++] = al[h % 20];
		h /= 20;
		if (i == 3 || i == 7)
			out[o++] = '-';
		if (i == 11)
			out[o] = '\0';
	}
}

static void syn_make(size_t u, struct syn *s)
{
	*s = (struct syn){0};
	s->c = u / 2;
	s->kind = u % 10 < 6 ? K_DEB : u % 10 < 8 ? K_NPM : K_MAVEN; /* u, u^1 share a kind */
	s->p = (s->c * 31 + (u & 1) * 17) % NPKG;		     /* a CVE on 2 packages */
	snprintf(s->cve, sizeof(s->cve), "CVE-%zu-%zu", 2015 + s->c % 11, 10000 + s->c / 11);
	ghsa_id(s->ghsa, s->c);
	if (s->kind == K_DEB)
		syn_deb(s);
	else
		syn_lang(s);
	uint64_t h = mix(s->c);
	s->sev = 1 + (int)(h % 4);
	s->gsev = s->sev;
	if (s->kind == K_DEB && s->sev == 1 && h % 3 == 0)
		s->gsev = -1; /* Debian "unimportant": Trivy LOW, Grype Negligible */
	else if (h % 17 == 0 && s->sev < 4)
		s->gsev = s->sev + 1;
	s->score = 2.0 + (double)s->sev * 2.0 - (double)(h % 10) / 10.0;
	s->fix = (h >> 8) % 20 < 14 ? 0 : (h >> 8) % 20 < 19 ? 1 : 2;
	if (s->fix != 0)
		s->fixed[0] = s->fixed2[0] = '\0';
	snprintf(s->title, sizeof(s->title), "%s: out-of-bounds read in the %s parser", s->name,
		 stems[h % 10]);
	snprintf(s->desc, sizeof(s->desc), "A flaw in %s before %s (%s) %s", s->name,
		 s->fixed[0] ? s->fixed : "any fixed release", s->cve, filler);
}

static const char *const trivy_sev[] = {"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"};
static const char *const grype_sev[] = {"Unknown", "Low", "Medium", "High", "Critical"};
static const char *const trivy_status[] = {"fixed", "affected", "will_not_fix"};
static const char *const grype_state[] = {"fixed", "not-fixed", "wont-fix"};

static json_t *checked(json_t *j)
{
	if (!j)
		die("building the synthetic JSON", ODX_ENOMEM);
	return j;
}

static json_t *cvss_vector(const struct syn *s)
{
	static const char *const v[] = {"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N",
					"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N",
					"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:H",
					"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"};
	return checked(json_string(v[s->sev - 1]));
}

static json_t *refs(const struct syn *s)
{
	char a[96], b[96], c[96];
	snprintf(a, sizeof(a), "https://nvd.nist.gov/vuln/detail/%s", s->cve);
	snprintf(b, sizeof(b), "https://www.cve.org/CVERecord?id=%s", s->cve);
	snprintf(c, sizeof(c), "https://github.com/advisories/%s", s->ghsa);
	return checked(json_pack("[sss]", a, b, c));
}

static json_t *trivy_vuln(const struct syn *s)
{
	char pkgid[160], uid[20], primary[96], fixed[100];
	bool deb = s->kind == K_DEB;
	snprintf(pkgid, sizeof(pkgid), "%s@%s", s->tname, deb ? s->gver : s->ver);
	snprintf(uid, sizeof(uid), "%016llx", (unsigned long long)mix(s->p * 3 + s->kind + 1));
	snprintf(primary, sizeof(primary), "https://avd.aquasec.com/nvd/%s", s->cve);
	snprintf(fixed, sizeof(fixed), "%s%s%s", s->fixed, s->fixed2[0] ? ", " : "", s->fixed2);
	json_t *vendor = deb ? (s->dsa[0] ? checked(json_pack("[s]", s->dsa)) : NULL)
			     : checked(json_pack("[s]", s->ghsa));
	const char *dsid = deb ? "debian" : "ghsa";
	const char *dsname = deb		? "Debian Security Tracker"
			     : s->kind == K_NPM ? "GitHub Security Advisory npm"
						: "GitHub Security Advisory Maven";
	const char *dsurl = deb ? "https://salsa.debian.org/security-tracker-team/security-tracker"
				: "https://github.com/advisories?query=type%3Areviewed";
	json_t *v = json_pack(
	    "{s:s, s:o*, s:s, s:s, s:s*, s:{s:s, s:s}, s:s, s:s*, s:s, s:{s:s}, s:s, s:s, "
	    "s:{s:s, s:s, s:s}, s:s, s:s, s:s, s:[s], s:{s:{s:o, s:f}}, s:o, s:s, s:s}",
	    "VulnerabilityID", s->cve, "VendorIDs", vendor, "PkgID", pkgid, "PkgName", s->tname,
	    "PkgPath", deb ? NULL : s->tpath, "PkgIdentifier", "PURL", s->tpurl, "UID", uid,
	    "InstalledVersion", deb ? s->gver : s->ver, "FixedVersion", fixed[0] ? fixed : NULL,
	    "Status", trivy_status[s->fix], "Layer", "DiffID", deb ? BASE_LAYER : APP_LAYER,
	    "SeveritySource", dsid, "PrimaryURL", primary, "DataSource", "ID", dsid, "Name", dsname,
	    "URL", dsurl, "Title", s->title, "Description", s->desc, "Severity", trivy_sev[s->sev],
	    "CweIDs", "CWE-125", "CVSS", "nvd", "V3Vector", cvss_vector(s), "V3Score", s->score,
	    "References", refs(s), "PublishedDate", "2025-01-21T21:15:11.44Z", "LastModifiedDate",
	    "2025-03-18T16:15:25.34Z");
	return checked(v);
}

/* The related NVD record Grype attaches: the CVE with its vectors and text. */
static json_t *grype_related(const struct syn *s)
{
	char ds[96];
	snprintf(ds, sizeof(ds), "https://nvd.nist.gov/vuln/detail/%s", s->cve);
	int nvd = s->gsev < 0 ? 1 : s->gsev;
	return checked(json_pack(
	    "[{s:s, s:s, s:s, s:s, s:o, s:s, s:[{s:s, s:s, s:s, s:o, s:{s:f, s:f, s:f}, s:{}}]}]",
	    "id", s->cve, "dataSource", ds, "namespace", "nvd:cpe", "severity", grype_sev[nvd],
	    "urls", refs(s), "description", s->desc, "cvss", "source", "nvd@nist.gov", "type",
	    "Primary", "version", "3.1", "vector", cvss_vector(s), "metrics", "baseScore", s->score,
	    "exploitabilityScore", 3.9, "impactScore", s->score - 3.0, "vendorMetadata"));
}

static json_t *grype_vuln(const struct syn *s, const char *ns)
{
	bool deb = s->kind == K_DEB;
	char ds[96], link[128];
	if (deb)
		snprintf(ds, sizeof(ds), "https://security-tracker.debian.org/tracker/%s", s->cve);
	else
		snprintf(ds, sizeof(ds), "https://github.com/advisories/%s", s->ghsa);
	json_t *fixv = checked(json_array());
	if (s->fixed[0] && json_array_append_new(fixv, checked(json_string(s->fixed))) < 0)
		die("json_array_append", ODX_ENOMEM);
	if (s->fixed2[0] && json_array_append_new(fixv, checked(json_string(s->fixed2))) < 0)
		die("json_array_append", ODX_ENOMEM);
	json_t *adv = checked(json_array());
	if (s->dsa[0]) {
		snprintf(link, sizeof(link), "https://security-tracker.debian.org/tracker/%s",
			 s->dsa);
		if (json_array_append_new(
			adv, checked(json_pack("{s:s, s:s}", "id", s->dsa, "link", link))) < 0)
			die("json_array_append", ODX_ENOMEM);
	}
	double epss = (double)(mix(s->c + 5) % 100000) / 100000.0;
	return checked(json_pack(
	    "{s:s, s:s, s:s, s:s, s:o, s:s*, s:[{s:s, s:s, s:o, s:{s:f}, s:{}}], "
	    "s:[{s:s, s:f, s:f, s:s}], s:{s:o, s:s}, s:o, s:f}",
	    "id", deb ? s->cve : s->ghsa, "dataSource", ds, "namespace", ns, "severity",
	    s->gsev < 0 ? "Negligible" : grype_sev[s->gsev], "urls", refs(s), "description",
	    deb ? NULL : s->title, "cvss", "type", "Secondary", "version", "3.1", "vector",
	    cvss_vector(s), "metrics", "baseScore", s->score, "vendorMetadata", "epss", "cve",
	    s->cve, "epss", epss, "percentile", epss, "date", "2026-02-27", "fix", "versions", fixv,
	    "state", grype_state[s->fix], "advisories", adv, "risk", epss * 10.0));
}

static json_t *grype_details(const struct syn *s, const char *ns)
{
	bool deb = s->kind == K_DEB;
	char constraint[96];
	snprintf(constraint, sizeof(constraint), "%s%s (%s)", s->fixed[0] ? "< " : "none", s->fixed,
		 deb ? "deb" : "semantic");
	json_t *by = deb ? json_pack("{s:{s:s, s:s}, s:{s:s, s:s}, s:s}", "distro", "type",
				     "debian", "version", "12", "package", "name", s->src,
				     "version", s->gver, "namespace", ns)
			 : json_pack("{s:s, s:s, s:{s:s, s:s}}", "language",
				     s->kind == K_NPM ? "javascript" : "java", "namespace", ns,
				     "package", "name", s->tname, "version", s->ver);
	json_t *d =
	    json_pack("{s:s, s:s, s:o, s:{s:s, s:s}}", "type",
		      deb && s->p % 2 ? "exact-indirect-match" : "exact-direct-match", "matcher",
		      deb		 ? "dpkg-matcher"
		      : s->kind == K_NPM ? "javascript-matcher"
					 : "java-matcher",
		      "searchedBy", checked(by), "found", "vulnerabilityID", deb ? s->cve : s->ghsa,
		      "versionConstraint", constraint);
	checked(d);
	if (s->fixed[0] &&
	    json_object_set_new(d, "fix",
				checked(json_pack("{s:s}", "suggestedVersion", s->fixed))) < 0)
		die("json_object_set", ODX_ENOMEM);
	return checked(json_pack("[o]", d));
}

static json_t *grype_artifact(const struct syn *s)
{
	bool deb = s->kind == K_DEB;
	char id[20], cpe[160], access[192];
	snprintf(id, sizeof(id), "%016llx", (unsigned long long)mix(s->p * 5 + s->kind + 1));
	snprintf(cpe, sizeof(cpe), "cpe:2.3:a:%s:%s:%s:*:*:*:*:*:*:*", s->name, s->name, s->ver);
	if (s->kind == K_MAVEN)
		snprintf(access, sizeof(access), "/app/app.jar:BOOT-INF/lib/%s-%s.jar", s->name,
			 s->ver);
	else
		snprintf(access, sizeof(access), "%s", deb ? "/var/lib/dpkg/status" : s->gpath);
	json_t *up = deb ? json_pack("[{s:s}]", "name", s->src) : json_array();
	return checked(json_pack(
	    "{s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:{s:s}}], s:s, s:[s], s:[s], s:s, s:o}", "id",
	    id, "name", s->name, "version", s->gver, "type",
	    deb		       ? "deb"
	    : s->kind == K_NPM ? "npm"
			       : "java-archive",
	    "locations", "path", deb ? "/var/lib/dpkg/status" : s->gpath, "layerID",
	    deb ? BASE_LAYER : APP_LAYER, "accessPath", access, "annotations", "evidence",
	    "primary", "language",
	    deb		       ? ""
	    : s->kind == K_NPM ? "javascript"
			       : "java",
	    "licenses", deb ? "GPL-2" : "MIT", "cpes", cpe, "purl", s->gpurl, "upstreams",
	    checked(up)));
}

static json_t *grype_match(const struct syn *s)
{
	const char *ns = s->kind == K_DEB   ? "debian:distro:debian:12"
			 : s->kind == K_NPM ? "github:language:javascript"
					    : "github:language:java";
	return checked(json_pack("{s:o, s:o, s:o, s:o}", "vulnerability", grype_vuln(s, ns),
				 "relatedVulnerabilities", grype_related(s), "matchDetails",
				 grype_details(s, ns), "artifact", grype_artifact(s)));
}

static void append(json_t *arr, json_t *v)
{
	if (json_array_append_new(arr, v) < 0)
		die("json_array_append", ODX_ENOMEM);
}

/* Trivy's package list for the OS result: where it finds SrcName. */
static json_t *trivy_packages(void)
{
	json_t *pkgs = checked(json_array());
	for (size_t p = 0; p < NPKG; p++) {
		struct syn s = {.kind = K_DEB, .p = p};
		syn_deb(&s);
		char id[160];
		snprintf(id, sizeof(id), "%s@%s", s.name, s.gver);
		append(pkgs, checked(json_pack(
				 "{s:s, s:s, s:{s:s}, s:s, s:i, s:s, s:s, s:s, s:{s:s}}", "ID", id,
				 "Name", s.name, "Identifier", "PURL", s.tpurl, "Version", s.ver,
				 "Epoch", p % 10 == 0, "Arch", "amd64", "SrcName", s.src,
				 "SrcVersion", s.ver, "Layer", "DiffID", BASE_LAYER)));
	}
	return pkgs;
}

static void dump(json_t *root, const char *dir, const char *file, size_t flags)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (json_dump_file(root, path, flags | JSON_REAL_PRECISION(10)) < 0)
		die(path, ODX_EIO);
	json_decref(root);
}

static void gen_trivy(const char *dir, size_t shared, size_t only)
{
	json_t *v[3] = {checked(json_array()), checked(json_array()), checked(json_array())};
	for (size_t u = 0; u < shared + only; u++) {
		struct syn s;
		syn_make(u, &s);
		append(v[s.kind], trivy_vuln(&s));
	}
	json_t *root = json_pack(
	    "{s:i, s:{s:s}, s:s, s:s, s:s, s:s, s:s, s:{s:{s:s, s:s}, s:s, s:[ss], s:[s], s:[s]}, "
	    "s:[{s:s, s:s, s:s, s:o, s:o}, {s:s, s:s, s:s, s:o}, {s:s, s:s, s:s, s:o}]}",
	    "SchemaVersion", 2, "Trivy", "Version", "0.69.1", "ReportID",
	    "019ca5e6-a5a9-7505-bce9-11f47c8aeffc", "CreatedAt", "2026-02-28T22:18:02+02:00",
	    "ArtifactID", IMAGE_ID, "ArtifactName", "bench/synthetic:latest", "ArtifactType",
	    "container_image", "Metadata", "OS", "Family", "debian", "Name", "12.12", "ImageID",
	    IMAGE_ID, "DiffIDs", BASE_LAYER, APP_LAYER, "RepoTags", "bench/synthetic:latest",
	    "RepoDigests", DIGEST, "Results", "Target", "bench/synthetic:latest (debian 12.12)",
	    "Class", "os-pkgs", "Type", "debian", "Packages", trivy_packages(), "Vulnerabilities",
	    v[K_DEB], "Target", "Node.js", "Class", "lang-pkgs", "Type", "node-pkg",
	    "Vulnerabilities", v[K_NPM], "Target", "Java", "Class", "lang-pkgs", "Type", "jar",
	    "Vulnerabilities", v[K_MAVEN]);
	dump(checked(root), dir, "trivy.json", JSON_INDENT(2));
}

static size_t gcd(size_t a, size_t b)
{
	while (b) {
		size_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* Grype gets the shared pairs and its own, in another order (a stride through them all). */
static void gen_grype(const char *dir, size_t shared, size_t only)
{
	size_t total = shared + 2 * only, stride = 7919;
	while (gcd(stride, total) != 1)
		stride += 2;
	json_t *matches = checked(json_array());
	for (size_t k = 0; k < total; k++) {
		size_t u = (size_t)(((unsigned long long)k * stride) % total);
		if (u >= shared && u < shared + only)
			continue; /* Trivy's own */
		struct syn s;
		syn_make(u, &s);
		append(matches, grype_match(&s));
	}
	json_t *root = json_pack(
	    "{s:o, s:{s:s, s:{s:s, s:s, s:s, s:[s], s:[{s:s, s:s, s:i}], s:[s], s:s, s:s}}, "
	    "s:{s:s, s:s, s:[s]}, s:{s:s, s:s, s:{s:{s:s}}, s:s}}",
	    "matches", matches, "source", "type", "image", "target", "userInput",
	    "bench/synthetic:latest", "imageID", IMAGE_ID, "mediaType",
	    "application/vnd.oci.image.manifest.v1+json", "tags", "bench/synthetic:latest",
	    "layers", "mediaType", "application/vnd.oci.image.layer.v1.tar", "digest", BASE_LAYER,
	    "size", 80000000, "repoDigests", DIGEST, "architecture", "amd64", "os", "linux",
	    "distro", "name", "debian", "version", "12", "idLike", "debian", "descriptor", "name",
	    "grype", "version", "0.109.0", "configuration", "search", "scope", "squashed",
	    "timestamp", "2026-02-28T22:18:02+02:00");
	dump(checked(root), dir, "grype.json", JSON_COMPACT);
}

static void generate(const char *dir, size_t n)
{
	size_t shared = n * 8 / 9, only = n - shared;
	gen_trivy(dir, shared, only);
	gen_grype(dir, shared, only);
	printf("synthetic: %zu findings per engine (%zu shared pairs, %zu only in each) in %s\n", n,
	       shared, only, dir);
}

/* ================= measuring ================= */

struct bcase {
	const char *name, *trivy, *grype;
	char *tbuf, *gbuf;
	size_t tlen, glen;
};

/* One run's figures. */
struct run {
	double t_trivy, t_grype, t_merge, t_json, t_decode; /* ms */
	size_t nt, ng, nm, both, only_t, only_g, json_bytes;
};

/* What the memory child reports through its pipe. */
struct mem {
	int rc;
	size_t rss0, hwm; /* bytes */
	size_t arena_t, arena_g, arena_m;
	char msg[SCAN_MSG_LEN];
};

static int read_all(const char *path, char **out, size_t *outlen)
{
	int rc = 0;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if ((size_t)st.st_size > SCAN_MAX_REPORT) {
		rc = ODX_ETOOBIG;
		goto out;
	}
	size_t n = (size_t)st.st_size, got = 0;
	buf = malloc(n + 1);
	if (!buf) {
		rc = ODX_ENOMEM;
		goto out;
	}
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0) {
			rc = r < 0 ? -errno : ODX_EIO;
			goto out;
		}
		got += (size_t)r;
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	buf = NULL;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

static double ms_since(int64_t t0)
{
	return (double)(time_mono_ns() - t0) / 1e6;
}

/* Parses both, merges; *t, *g, *m are the caller's to free. msg says why on failure. */
static int parse_merge(const struct bcase *c, struct run *r, struct scan_report **t,
		       struct scan_report **g, struct scan_report **m,
		       char msg[static SCAN_MSG_LEN])
{
	struct scan_merge_stats st;
	int64_t t0 = time_mono_ns();
	int rc = trivy_parse(c->tbuf, c->tlen, t, msg);
	r->t_trivy = ms_since(t0);
	if (rc < 0)
		return rc;
	t0 = time_mono_ns();
	rc = grype_parse(c->gbuf, c->glen, g, msg);
	r->t_grype = ms_since(t0);
	if (rc < 0)
		return rc;
	struct scan_report *in[2] = {*t, *g};
	t0 = time_mono_ns();
	rc = scan_merge(in, 2, m, &st);
	r->t_merge = ms_since(t0);
	if (rc < 0) {
		snprintf(msg, SCAN_MSG_LEN, "scan_merge failed");
		return rc;
	}
	r->nt = (*t)->nfindings;
	r->ng = (*g)->nfindings;
	r->nm = (*m)->nfindings;
	r->both = st.both;
	r->only_t = st.only[SCAN_ENGINE_TRIVY];
	r->only_g = st.only[SCAN_ENGINE_GRYPE];
	return 0;
}

/* scan_json_load + jdoc_free of both files: the JSON decoder's share of the two parses. */
static void decode_only(const struct bcase *c, struct run *r)
{
	char msg[SCAN_MSG_LEN];
	struct jdoc *j;
	int64_t t0 = time_mono_ns();
	int rc = scan_json_load(c->tbuf, c->tlen, &j, msg);
	if (rc == 0) {
		jdoc_free(j);
		rc = scan_json_load(c->gbuf, c->glen, &j, msg);
	}
	if (rc < 0)
		die(msg, rc);
	jdoc_free(j);
	r->t_decode = ms_since(t0);
}

/* The merged findings as the API would answer them: JSON objects, dumped compact. */
static void to_json(const struct scan_report *m, struct run *r)
{
	int64_t t0 = time_mono_ns();
	json_t *arr = checked(json_array());
	for (size_t i = 0; i < m->nfindings; i++)
		append(arr, checked(scan_finding_to_json(&m->findings[i])));
	char *s = json_dumps(arr, JSON_COMPACT);
	if (!s)
		die("json_dumps", ODX_ENOMEM);
	r->t_json = ms_since(t0);
	r->json_bytes = strlen(s);
	free(s);
	json_decref(arr);
}

static size_t status_kib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t len = strlen(field), v = 0;
	if (!f)
		die("/proc/self/status", -errno);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, len) == 0 && line[len] == ':') {
			unsigned long long kib;
			if (sscanf(line + len + 1, "%llu", &kib) == 1)
				v = (size_t)kib;
			break;
		}
	fclose(f);
	return v * 1024;
}

/* The child: one run from the files' bytes on disk, peak resident memory around it. */
static void mem_child(const struct bcase *c0, int fd)
{
	struct mem m = {0};
	struct bcase c = *c0;
	struct run r;
	struct scan_report *t = NULL, *g = NULL, *mr = NULL;
	int cr = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (cr < 0 || write(cr, "5", 1) != 1)
		die("resetting the peak RSS (/proc/self/clear_refs)", -errno);
	close(cr);
	m.rss0 = status_kib("VmRSS");
	m.rc = read_all(c.trivy, &c.tbuf, &c.tlen);
	if (m.rc == 0)
		m.rc = read_all(c.grype, &c.gbuf, &c.glen);
	if (m.rc == 0)
		m.rc = parse_merge(&c, &r, &t, &g, &mr, m.msg);
	m.hwm = status_kib("VmHWM");
	m.arena_t = scan_report_arena_bytes(t);
	m.arena_g = scan_report_arena_bytes(g);
	m.arena_m = scan_report_arena_bytes(mr);
	if (write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
		_exit(1);
	_exit(0);
}

static struct mem measure_memory(const struct bcase *c)
{
	int p[2];
	struct mem m;
	if (pipe(p) < 0)
		die("pipe", -errno);
	malloc_trim(0);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork", -errno);
	if (pid == 0) {
		close(p[0]);
		mem_child(c, p[1]);
	}
	close(p[1]);
	ssize_t n = read(p[0], &m, sizeof(m));
	close(p[0]);
	int status;
	if (waitpid(pid, &status, 0) < 0 || n != (ssize_t)sizeof(m) || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		die("memory child", ODX_EIO);
	if (m.rc < 0) {
		fprintf(stderr, "scan-bench: %s: %s\n", c->name, m.msg);
		die(c->name, m.rc);
	}
	return m;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double minimum(const double *v, int n)
{
	double m = v[0];
	for (int i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

struct stats {
	double med[6], min[6]; /* trivy, grype, merge, total, to-JSON, decode */
	struct run last;
};

/* The extras (to-JSON, decoding alone) run in the first EXTRA_RUNS repetitions only: time. */
#define EXTRA_RUNS 3

static struct stats measure_time(struct bcase *c, int repeat)
{
	double v[6][MAX_REPEAT];
	int extra = repeat < EXTRA_RUNS ? repeat : EXTRA_RUNS;
	struct stats s;
	for (int i = 0; i < repeat; i++) {
		struct scan_report *t = NULL, *g = NULL, *m = NULL;
		char msg[SCAN_MSG_LEN] = "";
		int rc = parse_merge(c, &s.last, &t, &g, &m, msg);
		if (rc < 0) {
			fprintf(stderr, "scan-bench: %s: %s\n", c->name, msg);
			die(c->name, rc);
		}
		v[0][i] = s.last.t_trivy;
		v[1][i] = s.last.t_grype;
		v[2][i] = s.last.t_merge;
		v[3][i] = s.last.t_trivy + s.last.t_grype + s.last.t_merge;
		if (i < extra)
			to_json(m, &s.last);
		scan_report_free(m);
		scan_report_free(g);
		scan_report_free(t);
		if (i < extra) {
			decode_only(c, &s.last);
			v[4][i] = s.last.t_json;
			v[5][i] = s.last.t_decode;
		}
	}
	for (int k = 0; k < 6; k++) {
		int n = k < 4 ? repeat : extra;
		s.min[k] = minimum(v[k], n);
		s.med[k] = median(v[k], n);
	}
	return s;
}

static void print_times(const struct bcase *c, const struct stats *s)
{
	const struct run *r = &s->last;
	printf("| %-10s | %6.1f | %5zu / %-5zu | %7.1f | %7.1f | %6.1f | %7.1f (%7.1f) | %7.1f | "
	       "%6.1f (%.1f MiB) |\n",
	       c->name, (double)(c->tlen + c->glen) / MIB, r->nt, r->ng, s->med[0], s->med[1],
	       s->med[2], s->med[3], s->min[3], s->med[5], s->med[4], (double)r->json_bytes / MIB);
}

static void print_memory(const struct bcase *c, const struct stats *s, const struct mem *m)
{
	size_t input = c->tlen + c->glen, peak = m->hwm - m->rss0;
	const struct run *r = &s->last;
	printf("| %-10s | %7.1f | %5.1f× | %5.1f / %5.1f / %5.1f | %5zu = %zu + %zu + %zu |\n",
	       c->name, (double)peak / MIB, (double)peak / (double)input, (double)m->arena_t / MIB,
	       (double)m->arena_g / MIB, (double)m->arena_m / MIB, r->nm, r->both, r->only_t,
	       r->only_g);
}

/* One line of key=value pairs per case, for bench/scan-bench.sh. */
static void print_results(FILE *res, const struct bcase *c, const struct stats *s,
			  const struct mem *m)
{
	const struct run *r = &s->last;
	fprintf(res,
		"ours %s input=%zu trivy_ms=%.3f grype_ms=%.3f merge_ms=%.3f total_ms=%.3f "
		"total_min_ms=%.3f decode_ms=%.3f json_ms=%.3f json_bytes=%zu peak=%zu "
		"arena_t=%zu arena_g=%zu arena_m=%zu nt=%zu ng=%zu merged=%zu both=%zu "
		"only_t=%zu only_g=%zu\n",
		c->name, c->tlen + c->glen, s->med[0], s->med[1], s->med[2], s->med[3], s->min[3],
		s->med[5], s->med[4], r->json_bytes, m->hwm - m->rss0, m->arena_t, m->arena_g,
		m->arena_m, r->nt, r->ng, r->nm, r->both, r->only_t, r->only_g);
}

static void usage(void)
{
	fprintf(stderr, "usage: scan-bench --generate DIR [--findings N]\n"
			"       scan-bench [--repeat R] [--results FILE] NAME TRIVY GRYPE...\n");
	exit(2);
}

static void bench(struct bcase *cases, int ncases, int repeat, FILE *res)
{
	struct mem mem[MAX_CASES];
	struct stats st[MAX_CASES];
	for (int i = 0; i < ncases; i++) /* first, so no earlier run's heap hides a peak */
		mem[i] = measure_memory(&cases[i]);
	for (int i = 0; i < ncases; i++) {
		struct bcase *c = &cases[i];
		int rc = read_all(c->trivy, &c->tbuf, &c->tlen);
		if (rc == 0)
			rc = read_all(c->grype, &c->gbuf, &c->glen);
		if (rc < 0)
			die(c->name, rc);
		st[i] = measure_time(c, repeat);
		free(c->tbuf);
		free(c->gbuf);
	}
	printf("ms, median of %d runs; total = trivy_parse + grype_parse + scan_merge, median "
	       "(min);\ndecode = scan_json_load + jdoc_free of both files alone (part of the "
	       "parses),\nto-JSON = scan_finding_to_json of every merged finding + json_dumps "
	       "(not in total): median of %d runs\n\n",
	       repeat, repeat < EXTRA_RUNS ? repeat : EXTRA_RUNS);
	printf("| case       | in MiB | findings T / G | trivy   | grype   | merge  | total (min) "
	       "        | decode  | to-JSON (size)  |\n"
	       "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < ncases; i++)
		print_times(&cases[i], &st[i]);
	printf("\npeak = VmHWM - VmRSS at start of a forked child that reads both files, parses "
	       "and merges once;\narenas = scan_report_arena_bytes of the Trivy, Grype and "
	       "merged reports\n\n"
	       "| case       | peak MiB | peak/in | arenas MiB T / G / M | merged = both + T + G "
	       "|\n|---|---:|---:|---:|---:|\n");
	for (int i = 0; i < ncases; i++) {
		print_memory(&cases[i], &st[i], &mem[i]);
		if (res)
			print_results(res, &cases[i], &st[i], &mem[i]);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct bcase cases[MAX_CASES];
	int ncases = 0, repeat = 5;
	const char *gen = NULL;
	int64_t findings = 50000, x;
	FILE *res = NULL;
	for (int i = 1; i < argc;) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--generate") && v)
			gen = v;
		else if (!strcmp(a, "--findings") && v && parse_int64(v, 1, 180000, &x) == 0)
			findings = x;
		else if (!strcmp(a, "--repeat") && v && parse_int64(v, 1, MAX_REPEAT, &x) == 0)
			repeat = (int)x;
		else if (!strcmp(a, "--results") && v && (res = fopen(v, "w")))
			;
		else if (a[0] != '-' && i + 2 < argc && ncases < MAX_CASES) {
			cases[ncases++] =
			    (struct bcase){.name = a, .trivy = v, .grype = argv[i + 2]};
			i += 3;
			continue;
		} else
			usage();
		i += 2;
	}
	if (gen) {
		generate(gen, (size_t)findings);
		return 0;
	}
	if (ncases == 0)
		usage();
	bench(cases, ncases, repeat, res);
	if (res && fclose(res) != 0)
		die("--results", ODX_EIO);
	return 0;
}
