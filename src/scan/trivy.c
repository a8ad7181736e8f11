/*
 * trivy.c — a Trivy JSON report (SchemaVersion 2) into a scan_report.
 * Field reference: tests/data/scanners/FORMATS.md §1.
 *
 * One finding per Results[].Vulnerabilities[] entry of an os-pkgs or
 * lang-pkgs result (secret, config and license results are skipped; a
 * result without Class counts as os-pkgs when its Type is the OS family,
 * else as lang-pkgs):
 *   id, aliases  {VulnerabilityID} ∪ VendorIDs; id is the first CVE of them,
 *                else VulnerabilityID
 *   pkg          PkgName, InstalledVersion (epoch kept); type: the OS's package
 *                manager for os-pkgs ("deb", "rpm", "apk", else the family),
 *                the result's Type for lang-pkgs; purl PkgIdentifier.PURL;
 *                source: SrcName of the result's Packages[] entry whose ID is
 *                PkgID, or whose Name and [Epoch:]Version[-Release] match
 *   severity     Severity; source SeveritySource ("trivy" when absent), and
 *                severity_source "trivy:<SeveritySource>" (or "trivy")
 *   cvss         one entry per vendor and version of the CVSS map
 *   fixed        FixedVersion split at commas, trimmed, unique; fix state from
 *                Status (absent: fixed when there is a fixed version, else
 *                unknown; unknown values: unknown)
 *   urls         PrimaryURL, DataSource.URL
 * Trivy has no EPSS or KEV (epss -1, kev false).
 *
 * Strict on what is read (a used field of the wrong type refuses the
 * report), silent about everything else, since Trivy adds fields. Messages
 * name the place and the field, never a value. Constant strings (CVSS
 * versions, "deb"/"rpm"/"apk", "trivy") are static; all else is copied
 * into the report's arena, so the report outlives the JSON tree.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jdoc.h"
#include "scan/jread.h"
#include "scan/trivy.h"

/* What a result contributes, shared by its findings. */
struct result {
	const char *type;	   /* package type, in the arena or static */
	const struct jval *pkgs;   /* Packages[], or NULL */
	const struct jval **slots; /* pkgs with a SrcName, hashed by ID and by Name */
	size_t nslots;		   /* a power of two, or 0 */
};

/*
 * ---- the source package: Packages[] hashed by ID and by name + version ----
 *
 * Open addressing, at most a quarter full. Probes stop after MAX_PROBE
 * slots, on insertion too: a crafted report (thousands of packages of one
 * name, colliding keys) then loses a source, but never costs more than
 * MAX_PROBE steps per finding.
 */

#define FNV_INIT  2166136261u
#define MAX_PROBE 32

static uint32_t fnv(uint32_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The key of a name and a version; 0xff (never in UTF-8) separates them. */
static uint32_t nv_hash(const char *name)
{
	return (fnv(FNV_INIT, name) ^ 0xffu) * 16777619u;
}

static const char *pkg_field(const struct jval *p, const char *key)
{
	return jval_str(jval_get(p, key)); /* types checked in srcmap_build */
}

/* nv_hash of p's name and [Epoch:]Version[-Release], the form of InstalledVersion. */
static uint32_t pkg_nv_hash(const struct jval *p)
{
	const char *ver = pkg_field(p, "Version"), *rel = pkg_field(p, "Release");
	int64_t epoch = jval_int(jval_get(p, "Epoch"));
	uint32_t h = nv_hash(pkg_field(p, "Name"));
	if (epoch > 0) {
		char e[32];
		snprintf(e, sizeof(e), "%lld:", (long long)epoch);
		h = fnv(h, e);
	}
	h = fnv(h, ver);
	return rel && *rel ? fnv(fnv(h, "-"), rel) : h;
}

/* Does the vulnerability's installed version equal [Epoch:]Version[-Release] of p? */
static bool version_is(const char *iv, const struct jval *p)
{
	const char *ver = pkg_field(p, "Version"), *rel = pkg_field(p, "Release");
	int64_t epoch = jval_int(jval_get(p, "Epoch"));
	if (epoch > 0) {
		char e[32];
		int k = snprintf(e, sizeof(e), "%lld:", (long long)epoch);
		if (strncmp(iv, e, (size_t)k) != 0)
			return false;
		iv += k;
	}
	size_t vl = strlen(ver);
	if (strncmp(iv, ver, vl) != 0)
		return false;
	iv += vl;
	if (rel && *rel)
		return iv[0] == '-' && strcmp(iv + 1, rel) == 0;
	return *iv == '\0';
}

static void srcmap_put(struct result *res, uint32_t h, const struct jval *p)
{
	size_t mask = res->nslots - 1, i = h & mask;
	for (size_t k = 0; k < MAX_PROBE; k++, i = (i + 1) & mask)
		if (!res->slots[i]) {
			res->slots[i] = p;
			return;
		}
}

/* Checks the types of the fields we read of a package, which is kept when it has a SrcName. */
static int srcmap_check(struct jread *c, const struct jval *p, bool *keep)
{
	static const char *const strs[] = {"ID", "Name", "Version", "Release"};
	const char *s;
	size_t n;
	*keep = false;
	if (!jval_is_object(p))
		return jread_fail(c, ODX_EINVAL, "must be an object");
	int rc = jread_raw(c, p, "SrcName", JREAD_OPT, &s, &n);
	if (rc < 0 || n == 0)
		return rc;
	for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++) {
		const struct jval *v = jread_member(p, strs[k]);
		if (v && !jval_is_string(v))
			return jread_fail(c, ODX_EINVAL, "%s must be a string", strs[k]);
	}
	const struct jval *e = jread_member(p, "Epoch");
	if (e && !jval_is_int(e))
		return jread_fail(c, ODX_EINVAL, "Epoch must be an integer");
	*keep = true;
	return 0;
}

static int srcmap_build(struct jread *c, struct result *res)
{
	size_t i, n = 0;
	const struct jval *p;
	bool keep;
	c->sub = "Packages";
	jval_array_foreach(res->pkgs, i, p)
	{
		c->si = i;
		int rc = srcmap_check(c, p, &keep);
		if (rc < 0)
			return rc;
		n += keep;
	}
	c->sub = NULL;
	if (n == 0)
		return 0;
	size_t cap = 8; /* two keys per package, at most a quarter full */
	while (cap / 8 < n)
		cap *= 2;
	res->slots = calloc(cap, sizeof(*res->slots));
	if (!res->slots)
		return jread_oom(c);
	res->nslots = cap;
	jval_array_foreach(res->pkgs, i, p)
	{
		const char *id = pkg_field(p, "ID"), *src = pkg_field(p, "SrcName");
		if (!src || !*src)
			continue;
		if (id)
			srcmap_put(res, fnv(FNV_INIT, id), p);
		if (pkg_field(p, "Name") && pkg_field(p, "Version"))
			srcmap_put(res, pkg_nv_hash(p), p);
	}
	return 0;
}

static const char *srcmap_find(const struct result *res, const char *pkgid, const char *name,
			       const char *version)
{
	if (!res->nslots)
		return NULL;
	size_t mask = res->nslots - 1, i = pkgid ? fnv(FNV_INIT, pkgid) & mask : 0;
	for (size_t k = 0; pkgid && k < MAX_PROBE && res->slots[i]; k++, i = (i + 1) & mask) {
		const char *id = pkg_field(res->slots[i], "ID");
		if (id && strcmp(id, pkgid) == 0)
			return pkg_field(res->slots[i], "SrcName");
	}
	i = fnv(nv_hash(name), version) & mask;
	for (size_t k = 0; k < MAX_PROBE && res->slots[i]; k++, i = (i + 1) & mask) {
		const struct jval *p = res->slots[i];
		const char *pn = pkg_field(p, "Name");
		if (pn && pkg_field(p, "Version") && strcmp(pn, name) == 0 &&
		    version_is(version, p))
			return pkg_field(p, "SrcName");
	}
	return NULL;
}

/* ---- one vulnerability ---- */

static int vuln_ids(struct jread *c, const struct jval *v, struct scan_finding *f)
{
	const char *ids[SCAN_MAX_LIST];
	size_t n = 0;
	int rc = jread_str(c, v, "VulnerabilityID", JREAD_REQ, &ids[n++]);
	if (rc == 0)
		rc = jread_strv(c, v, "VendorIDs", ids, &n, SCAN_MAX_LIST);
	if (rc < 0)
		return rc;
	f->id = ids[0];
	for (size_t i = 0; i < n && !jread_is_cve(f->id); i++)
		if (jread_is_cve(ids[i]))
			f->id = ids[i];
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (*ids[i])
			ids[k++] = ids[i];
	return jread_keep_strv(c, ids, scan_strv_sort_unique(ids, k), &f->aliases, &f->naliases);
}

static int vuln_package(struct jread *c, const struct result *res, const struct jval *v,
			struct scan_finding *f)
{
	const char *name, *version, *pkgid, *path;
	size_t nn, vn, in;
	const struct jval *ident, *layer;
	int rc = jread_raw(c, v, "PkgName", JREAD_REQ, &name, &nn);
	if (rc == 0)
		rc = jread_raw(c, v, "InstalledVersion", JREAD_OPT, &version, &vn);
	if (rc == 0)
		rc = jread_raw(c, v, "PkgID", JREAD_OPT, &pkgid, &in);
	if (rc == 0)
		rc = jread_typed(c, v, "PkgIdentifier", JVAL_OBJECT, &ident);
	if (rc == 0 && ident)
		rc = jread_str(c, ident, "PkgIdentifier.PURL", JREAD_OPT, &f->pkg.purl);
	if (rc == 0)
		rc = jread_typed(c, v, "Layer", JVAL_OBJECT, &layer);
	if (rc == 0 && layer)
		rc = jread_str(c, layer, "Layer.DiffID", JREAD_OPT, &f->layer);
	if (rc == 0)
		rc = jread_str(c, v, "PkgPath", JREAD_OPT, &path);
	if (rc < 0)
		return rc;
	if (!version)
		version = "";
	f->pkg.name = scan_strndup(c->r, name, nn);
	f->pkg.version = scan_strndup(c->r, version, vn);
	f->pkg.type = res->type;
	const char *src = srcmap_find(res, pkgid, name, version);
	if (src)
		f->pkg.source = scan_strdup(c->r, src);
	if (!f->pkg.name || !f->pkg.version || (src && !f->pkg.source))
		return jread_oom(c);
	if (path)
		return jread_keep_strv(c, &path, 1, &f->paths, &f->npaths);
	return 0;
}

static const char *v3_version(const char *vector)
{
	return vector && strncmp(vector, "CVSS:3.1/", 9) == 0 ? "3.1" : "3.0";
}

/* The CVSS map: {vendor: {V2Vector, V2Score, V3Vector, V3Score, V40Vector, V40Score}}. */
static int vuln_cvss(struct jread *c, const struct jval *v, struct scan_finding *f)
{
	static const struct {
		const char *vector, *score, *version;
	} kinds[] = {{"CVSS.V2Vector", "CVSS.V2Score", "2.0"},
		     {"CVSS.V3Vector", "CVSS.V3Score", NULL},
		     {"CVSS.V40Vector", "CVSS.V40Score", "4.0"}};
	const struct jval *map, *e;
	const char *vendor;
	size_t vi;
	int rc = jread_typed(c, v, "CVSS", JVAL_OBJECT, &map);
	if (rc < 0 || !map)
		return rc;
	if (jval_len(map) > SCAN_MAX_LIST)
		return jread_fail(c, ODX_ETOOBIG, "CVSS has more than %d sources", SCAN_MAX_LIST);
	struct scan_cvss *out = scan_alloc(c->r, 3 * jval_len(map) * sizeof(*out));
	if (!out)
		return jread_oom(c);
	size_t n = 0;
	jval_object_foreach(map, vi, vendor, e)
	{
		if (!jval_is_object(e))
			return jread_fail(c, ODX_EINVAL, "CVSS values must be objects");
		if (strlen(vendor) > SCAN_MAX_STR)
			return jread_fail(c, ODX_ETOOBIG, "a CVSS source name is too long");
		const char *source = NULL;
		for (size_t k = 0; k < 3; k++) {
			struct scan_cvss *x = &out[n];
			rc = jread_str(c, e, kinds[k].vector, JREAD_OPT, &x->vector);
			if (rc == 0)
				rc = jread_num(c, e, kinds[k].score, 10, "must be between 0 and 10",
					       &x->score);
			if (rc < 0)
				return rc;
			if (!x->vector && x->score < 0)
				continue;
			if (!source && !(source = scan_strdup(c->r, vendor)))
				return jread_oom(c);
			x->source = source;
			x->version = kinds[k].version ? kinds[k].version : v3_version(x->vector);
			if (!x->vector)
				x->vector = "";
			n++;
		}
	}
	if (n > SCAN_MAX_LIST)
		return jread_fail(c, ODX_ETOOBIG, "CVSS has more than %d entries", SCAN_MAX_LIST);
	f->cvss = n ? out : NULL;
	f->ncvss = n;
	return 0;
}

static enum scan_fix_state fix_state(const char *status, bool has_fix)
{
	static const struct {
		const char *name;
		enum scan_fix_state state;
	} map[] = {
	    {"fixed", SCAN_FIX_FIXED},		 {"affected", SCAN_FIX_AFFECTED},
	    {"fix_deferred", SCAN_FIX_AFFECTED}, {"under_investigation", SCAN_FIX_AFFECTED},
	    {"will_not_fix", SCAN_FIX_WONT_FIX}, {"end_of_life", SCAN_FIX_EOL},
	};
	if (!status || !*status)
		return has_fix ? SCAN_FIX_FIXED : SCAN_FIX_UNKNOWN;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(status, map[i].name) == 0)
			return map[i].state;
	return SCAN_FIX_UNKNOWN; /* "unknown", "not_affected", values newer than this code */
}

/* FixedVersion "10.2.1, 9.0.6, ..." into unique trimmed versions. */
static int vuln_fix(struct jread *c, const struct jval *v, struct scan_finding *f)
{
	const char *fixed, *status, *vers[SCAN_MAX_LIST];
	size_t len, sl, n = 0;
	int rc = jread_raw(c, v, "FixedVersion", JREAD_OPT, &fixed, &len);
	if (rc == 0)
		rc = jread_raw(c, v, "Status", JREAD_OPT, &status, &sl);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < len;) {
		size_t end = i;
		while (end < len && fixed[end] != ',')
			end++;
		size_t a = i, b = end;
		while (a < b && (fixed[a] == ' ' || fixed[a] == '\t'))
			a++;
		while (b > a && (fixed[b - 1] == ' ' || fixed[b - 1] == '\t'))
			b--;
		if (b > a) {
			if (n == SCAN_MAX_LIST)
				return jread_fail(c, ODX_ETOOBIG,
						  "FixedVersion lists more than %d versions",
						  SCAN_MAX_LIST);
			if (!(vers[n++] = scan_strndup(c->r, fixed + a, b - a)))
				return jread_oom(c);
		}
		i = end + 1;
	}
	f->fix_state[SCAN_ENGINE_TRIVY] = fix_state(status, n > 0);
	return jread_keep_strv(c, vers, scan_strv_unique(vers, n), &f->fixed_versions, &f->nfixed);
}

static int vuln_urls(struct jread *c, const struct jval *v, struct scan_finding *f)
{
	const char *urls[2];
	const struct jval *ds;
	int rc = jread_str(c, v, "PrimaryURL", JREAD_OPT, &urls[0]);
	if (rc == 0)
		rc = jread_typed(c, v, "DataSource", JVAL_OBJECT, &ds);
	urls[1] = NULL;
	if (rc == 0 && ds)
		rc = jread_str(c, ds, "DataSource.URL", JREAD_OPT, &urls[1]);
	if (rc < 0)
		return rc;
	size_t n = 0;
	for (size_t i = 0; i < 2; i++)
		if (urls[i])
			urls[n++] = urls[i];
	return jread_keep_strv(c, urls, scan_strv_unique(urls, n), &f->urls, &f->nurls);
}

static int parse_vuln(struct jread *c, const struct result *res, const struct jval *v,
		      struct scan_finding *f)
{
	if (!jval_is_object(v))
		return jread_fail(c, ODX_EINVAL, "must be an object");
	f->epss = f->epss_percentile = -1;
	f->engines = SCAN_ENGINE_BIT(SCAN_ENGINE_TRIVY);
	int rc = vuln_ids(c, v, f);
	if (rc == 0)
		rc = vuln_package(c, res, v, f);
	if (rc == 0)
		rc = jread_severity(c, v, "Severity", "SeveritySource", SCAN_ENGINE_TRIVY, f);
	if (rc == 0)
		rc = jread_str(c, v, "Title", JREAD_OPT, &f->title);
	if (rc == 0)
		rc = vuln_cvss(c, v, f);
	if (rc == 0)
		rc = vuln_fix(c, v, f);
	if (rc == 0)
		rc = vuln_urls(c, v, f);
	return rc;
}

/* ---- results ---- */

enum result_kind { RESULT_SKIP, RESULT_OS, RESULT_LANG };

static int result_kind(struct jread *c, const struct jval *res, enum result_kind *kind,
		       const struct jval **vulns)
{
	const char *cls, *type;
	size_t n;
	if (!jval_is_object(res))
		return jread_fail(c, ODX_EINVAL, "must be an object");
	int rc = jread_raw(c, res, "Class", JREAD_OPT, &cls, &n);
	if (rc == 0)
		rc = jread_raw(c, res, "Type", JREAD_OPT, &type, &n);
	if (rc == 0)
		rc = jread_typed(c, res, "Vulnerabilities", JVAL_ARRAY, vulns);
	if (rc < 0)
		return rc;
	const char *family = c->r->image.os_family;
	if (!cls)
		*kind = type && family && strcmp(type, family) == 0 ? RESULT_OS : RESULT_LANG;
	else if (strcmp(cls, "os-pkgs") == 0)
		*kind = RESULT_OS;
	else if (strcmp(cls, "lang-pkgs") == 0)
		*kind = RESULT_LANG;
	else
		*kind = RESULT_SKIP;
	return 0;
}

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

/* The package manager of an OS family (Trivy's Type of an os-pkgs result), or NULL. */
static const char *os_pkg_type(const char *family)
{
	static const char *const deb[] = {"debian", "ubuntu", NULL};
	static const char *const rpm[] = {"centos",	 "redhat",     "rocky",	 "alma",
					  "oracle",	 "amazon",     "photon", "fedora",
					  "cbl-mariner", "azurelinux", NULL};
	static const char *const apk[] = {"alpine", "wolfi", "chainguard", NULL};
	if (in_list(family, deb))
		return "deb";
	if (in_list(family, rpm) || strstr(family, "suse") || strncmp(family, "sle", 3) == 0)
		return "rpm";
	if (in_list(family, apk))
		return "apk";
	return NULL;
}

static int result_setup(struct jread *c, const struct jval *r, enum result_kind kind,
			struct result *res)
{
	const char *type;
	size_t n;
	int rc = jread_raw(c, r, "Type", JREAD_OPT, &type, &n);
	if (rc == 0)
		rc = jread_typed(c, r, "Packages", JVAL_ARRAY, &res->pkgs);
	if (rc == 0 && res->pkgs)
		rc = srcmap_build(c, res);
	if (rc < 0)
		return rc;
	if (kind == RESULT_OS) {
		const char *family = type ? type : c->r->image.os_family;
		res->type = family ? os_pkg_type(family) : NULL;
		if (!res->type)
			type = family;
	}
	if (!res->type) {
		res->type = type ? scan_strdup(c->r, type) : "";
		if (!res->type)
			return jread_oom(c);
	}
	return 0;
}

static int parse_results(struct jread *c, const struct jval *results)
{
	size_t i, total = 0;
	const struct jval *r, *vulns;
	enum result_kind kind;
	jval_array_foreach(results, i, r)
	{
		c->list = "Results";
		c->i = i;
		int rc = result_kind(c, r, &kind, &vulns);
		if (rc < 0)
			return rc;
		if (kind != RESULT_SKIP && vulns)
			total += jval_len(vulns);
		c->list = NULL;
		if (total > SCAN_MAX_FINDINGS)
			return jread_fail(c, ODX_ETOOBIG, "more than %d findings",
					  SCAN_MAX_FINDINGS);
	}
	if (total == 0)
		return 0;
	c->r->findings = scan_alloc(c->r, total * sizeof(*c->r->findings));
	if (!c->r->findings)
		return jread_oom(c);
	jval_array_foreach(results, i, r)
	{
		c->list = "Results";
		c->i = i;
		result_kind(c, r, &kind, &vulns); /* checked above */
		if (kind == RESULT_SKIP || !vulns || jval_len(vulns) == 0)
			continue;
		struct result res = {0};
		int rc = result_setup(c, r, kind, &res);
		size_t j;
		const struct jval *v;
		c->sub = "Vulnerabilities";
		jval_array_foreach(vulns, j, v)
		{
			if (rc < 0)
				break;
			c->si = j;
			rc = parse_vuln(c, &res, v, &c->r->findings[c->r->nfindings++]);
		}
		c->sub = NULL;
		free(res.slots);
		if (rc < 0)
			return rc;
	}
	c->list = NULL;
	return 0;
}

/* ---- the image ---- */

static int parse_os(struct jread *c, const struct jval *md)
{
	const struct jval *os, *eosl;
	int rc = jread_typed(c, md, "Metadata.OS", JVAL_OBJECT, &os);
	if (rc < 0 || !os)
		return rc;
	rc = jread_str(c, os, "Metadata.OS.Family", JREAD_OPT, &c->r->image.os_family);
	if (rc == 0)
		rc = jread_str(c, os, "Metadata.OS.Name", JREAD_OPT, &c->r->image.os_version);
	if (rc < 0)
		return rc;
	eosl = jread_member(os, "EOSL");
	if (eosl && !jval_is_bool(eosl))
		return jread_fail(c, ODX_EINVAL, "Metadata.OS.EOSL must be a boolean");
	c->r->image.os_eol = jval_is_true(eosl);
	return 0;
}

/* Metadata.ImageConfig.config: Entrypoint then Cmd. */
static int parse_entrypoint(struct jread *c, const struct jval *md)
{
	const struct jval *ic, *cfg;
	const char *argv[SCAN_MAX_LIST];
	size_t n = 0;
	int rc = jread_typed(c, md, "Metadata.ImageConfig", JVAL_OBJECT, &ic);
	if (rc < 0 || !ic)
		return rc;
	rc = jread_typed(c, ic, "Metadata.ImageConfig.config", JVAL_OBJECT, &cfg);
	if (rc < 0 || !cfg)
		return rc;
	rc = jread_strv(c, cfg, "Metadata.ImageConfig.config.Entrypoint", argv, &n, SCAN_MAX_LIST);
	if (rc == 0)
		rc = jread_strv(c, cfg, "Metadata.ImageConfig.config.Cmd", argv, &n, SCAN_MAX_LIST);
	if (rc < 0)
		return rc;
	return jread_keep_strv(c, argv, n, &c->r->image.entrypoint, &c->r->image.nentrypoint);
}

static int parse_image(struct jread *c, const struct jval *root)
{
	struct scan_image *img = &c->r->image;
	const struct jval *md = NULL, *tv = NULL;
	const char *digests[SCAN_MAX_LIST];
	size_t n = 0;
	int rc = jread_str(c, root, "ArtifactName", JREAD_OPT, &img->name);
	if (rc == 0)
		rc = jread_typed(c, root, "Trivy", JVAL_OBJECT, &tv);
	if (rc == 0 && tv)
		rc = jread_str(c, tv, "Trivy.Version", JREAD_OPT,
			       &c->r->engine_version[SCAN_ENGINE_TRIVY]);
	if (rc == 0)
		rc = jread_typed(c, root, "Metadata", JVAL_OBJECT, &md);
	if (rc < 0 || !md)
		return rc;
	rc = jread_str(c, md, "Metadata.ImageID", JREAD_OPT, &img->image_id);
	if (rc == 0)
		rc = jread_strv(c, md, "Metadata.RepoDigests", digests, &n, SCAN_MAX_LIST);
	if (rc == 0)
		rc = jread_keep_strv(c, digests, n, &img->repo_digests, &img->nrepo_digests);
	if (rc == 0)
		rc = parse_os(c, md);
	if (rc == 0)
		rc = parse_entrypoint(c, md);
	return rc;
}

/* Refuses what is not a SchemaVersion 2 Trivy report, with a message that says what it is. */
static int check_kind(struct jread *c, const struct jval *root)
{
	if (jval_is_array(root))
		return jread_fail(c, ODX_EINVAL,
				  "legacy Trivy report (a bare array of results, before "
				  "SchemaVersion 2) is not supported");
	if (!jval_is_object(root))
		return jread_fail(c, ODX_EINVAL, "a Trivy report must be a JSON object");
	if (jval_get(root, "matches") || jval_get(root, "descriptor"))
		return jread_fail(c, ODX_EINVAL,
				  "not a Trivy report: it has Grype's matches/descriptor");
	const struct jval *sv = jval_get(root, "SchemaVersion");
	if (!sv)
		return jread_fail(c, ODX_EINVAL, "not a Trivy report: SchemaVersion is missing");
	if (!jval_is_int(sv) || jval_int(sv) != 2)
		return jread_fail(c, ODX_EINVAL, "SchemaVersion must be 2");
	return 0;
}

/* Everything after check_kind: the image, then the findings of Results[]. */
static int parse_report(struct jread *c, const struct jval *root)
{
	const struct jval *results;
	int rc = parse_image(c, root);
	if (rc == 0)
		rc = jread_typed(c, root, "Results", JVAL_ARRAY, &results);
	if (rc == 0 && results)
		rc = parse_results(c, results);
	return rc;
}

int trivy_from_json(const struct jval *root, struct scan_report **out,
		    char msg[static SCAN_MSG_LEN])
{
	return jread_report(root, SCAN_ENGINE_TRIVY, check_kind, parse_report, out, msg);
}

int trivy_parse(const char *buf, size_t len, struct scan_report **out,
		char msg[static SCAN_MSG_LEN])
{
	return jread_parse(buf, len, trivy_from_json, out, msg);
}
