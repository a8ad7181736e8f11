/*
 * grype.c — a Grype JSON report (`grype -o json`) into a scan_report.
 * Field reference: tests/data/scanners/FORMATS.md §2.
 *
 * One finding per matches[] entry:
 *   id, aliases  {vulnerability.id} ∪ relatedVulnerabilities[].id ∪
 *                vulnerability.advisories[].id; id is vulnerability.id when it
 *                is a CVE, else the first CVE of the others, else vulnerability.id
 *   pkg          artifact name, version (epoch kept), type, purl; source:
 *                upstreams[0].name; paths locations[].path; layer
 *                locations[0].layerID
 *   severity     vulnerability.severity ("Negligible" kept); source the
 *                namespace, severity_source "grype:<namespace>"
 *   cvss         vulnerability.cvss[] and each related record's cvss[];
 *                source: the entry's source, else the record's namespace
 *   fixed        fix.versions; fix state from fix.state ("" and unknown
 *                values: unknown)
 *   epss         the epss[] entry for the chosen id, else the highest one
 *   kev          knownExploited[] non-empty on the match or a related record
 *   cpe_match    every matchDetails[].type is "cpe-match"
 *   urls         dataSource then urls[]: the first SCAN_MAX_LIST are kept.
 *                Only here is a list cut rather than refused: NVD records can
 *                carry hundreds of references, and they are not findings.
 * The image comes from source.target and distro; os_eol from a "distro-eol"
 * alert; the entrypoint from source.target.config, the base64 OCI config
 * (ignored when it does not decode: it is a hint, not a finding).
 *
 * Strict on what is read, silent about everything else (Grype adds fields).
 * Messages name the place and the field, never a value. Constant strings
 * (CVSS versions, "grype") are static; all else is copied into the arena.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/encoding.h"
#include "core/err.h"
#include "core/jdoc.h"
#include "scan/grype.h"
#include "scan/jread.h"

/* The items of array a must be objects; names the first that is not. */
static int check_objects(struct jread *c, const struct jval *a, const char *name)
{
	size_t i;
	const struct jval *o;
	jval_array_foreach(a, i, o)
	{
		if (!jval_is_object(o))
			return jread_fail(c, ODX_EINVAL, "%s[%zu] must be an object", name, i);
	}
	return 0;
}

/* ---- one match ---- */

/* The parts of a match, checked for type once. */
struct match {
	const struct jval *vuln, *artifact, *related, *advisories;
};

/*
 * Record i of a match: 0 is its vulnerability, 1.. its related ones, named
 * as relatedVulnerabilities[i - 1] in messages; NULL past the end.
 */
static const struct jval *match_record(struct jread *c, const struct match *m, size_t i)
{
	if (i == 0)
		return m->vuln;
	c->sub = "relatedVulnerabilities";
	c->si = i - 1;
	return jval_at(m->related, i - 1);
}

/* Appends the "id" of each object in a (sub names it in messages). */
static int append_ids(struct jread *c, const struct jval *a, const char *sub, const char **ids,
		      size_t *n)
{
	size_t i;
	const struct jval *o;
	c->sub = sub;
	jval_array_foreach(a, i, o)
	{
		c->si = i;
		int rc = jread_str(c, o, "id", JREAD_REQ, &ids[(*n)++]);
		if (rc < 0)
			return rc;
	}
	c->sub = NULL;
	return 0;
}

static int match_ids(struct jread *c, const struct match *m, struct scan_finding *f)
{
	const char *ids[SCAN_MAX_LIST];
	size_t n = 0;
	size_t more =
	    (m->related ? jval_len(m->related) : 0) + (m->advisories ? jval_len(m->advisories) : 0);
	if (more > SCAN_MAX_LIST - 1)
		return jread_fail(c, ODX_ETOOBIG, "more than %d related ids", SCAN_MAX_LIST - 1);
	int rc = jread_str(c, m->vuln, "vulnerability.id", JREAD_REQ, &ids[n++]);
	if (rc == 0 && m->related)
		rc = append_ids(c, m->related, "relatedVulnerabilities", ids, &n);
	if (rc == 0 && m->advisories)
		rc = append_ids(c, m->advisories, "vulnerability.advisories", ids, &n);
	if (rc < 0)
		return rc;
	f->id = ids[0];
	for (size_t i = 1; i < n && !jread_is_cve(f->id); i++)
		if (jread_is_cve(ids[i]))
			f->id = ids[i];
	return jread_keep_strv(c, ids, scan_strv_sort_unique(ids, n), &f->aliases, &f->naliases);
}

static int match_locations(struct jread *c, const struct jval *a, struct scan_finding *f)
{
	const char *paths[SCAN_MAX_LIST];
	size_t n = 0, i;
	const struct jval *loc;
	if (jval_len(a) > SCAN_MAX_LIST)
		return jread_fail(c, ODX_ETOOBIG, "artifact.locations has more than %d items",
				  SCAN_MAX_LIST);
	c->sub = "artifact.locations";
	jval_array_foreach(a, i, loc)
	{
		const char *path;
		c->si = i;
		if (!jval_is_object(loc))
			return jread_fail(c, ODX_EINVAL, "must be an object");
		int rc = jread_str(c, loc, "path", JREAD_OPT, &path);
		if (rc == 0 && i == 0)
			rc = jread_str(c, loc, "layerID", JREAD_OPT, &f->layer);
		if (rc < 0)
			return rc;
		if (path)
			paths[n++] = path;
	}
	c->sub = NULL;
	return jread_keep_strv(c, paths, scan_strv_unique(paths, n), &f->paths, &f->npaths);
}

static int match_package(struct jread *c, const struct jval *art, struct scan_finding *f)
{
	struct scan_package *p = &f->pkg;
	const struct jval *ups, *locs;
	const struct jread_field fields[] = {
	    {"artifact.name", JREAD_REQ, &p->name},
	    {"artifact.version", JREAD_OPT, &p->version},
	    {"artifact.type", JREAD_OPT, &p->type},
	    {"artifact.purl", JREAD_OPT, &p->purl},
	};
	int rc = jread_strs(c, art, fields, sizeof(fields) / sizeof(fields[0]));
	if (rc == 0)
		rc = jread_typed(c, art, "artifact.upstreams", JVAL_ARRAY, &ups);
	if (rc == 0 && ups && jval_len(ups) > 0) {
		const struct jval *up = jval_at(ups, 0);
		rc = jval_is_object(up)
			 ? jread_str(c, up, "artifact.upstreams[0].name", JREAD_OPT, &p->source)
			 : jread_fail(c, ODX_EINVAL, "artifact.upstreams[0] must be an object");
	}
	if (rc == 0)
		rc = jread_typed(c, art, "artifact.locations", JVAL_ARRAY, &locs);
	if (rc == 0 && locs)
		rc = match_locations(c, locs, f);
	if (rc < 0)
		return rc;
	if (!p->version)
		p->version = "";
	if (!p->type)
		p->type = "";
	return 0;
}

static const char *version_of(const char *vector)
{
	if (vector && strncmp(vector, "CVSS:", 5) == 0) {
		if (strncmp(vector + 5, "3.1/", 4) == 0)
			return "3.1";
		if (strncmp(vector + 5, "4.0/", 4) == 0)
			return "4.0";
		return "3.0";
	}
	return "2.0";
}

/* One cvss[] entry; ns: the record's namespace, the source when the entry names none. */
static int cvss_entry(struct jread *c, const struct jval *e, size_t i, const char *ns,
		      struct scan_cvss *x)
{
	const struct jval *metrics;
	const struct jread_field fields[] = {
	    {"cvss.source", JREAD_OPT, &x->source},
	    {"cvss.version", JREAD_OPT, &x->version},
	    {"cvss.vector", JREAD_OPT, &x->vector},
	};
	if (!jval_is_object(e))
		return jread_fail(c, ODX_EINVAL, "cvss[%zu] must be an object", i);
	int rc = jread_strs(c, e, fields, sizeof(fields) / sizeof(fields[0]));
	if (rc == 0)
		rc = jread_typed(c, e, "cvss.metrics", JVAL_OBJECT, &metrics);
	x->score = -1;
	if (rc == 0 && metrics)
		rc = jread_num(c, metrics, "cvss.metrics.baseScore", 10, "is out of range",
			       &x->score);
	if (rc < 0)
		return rc;
	if (!x->source)
		x->source = ns ? ns : "";
	if (!x->version)
		x->version = version_of(x->vector);
	if (!x->vector)
		x->vector = "";
	return 0;
}

/* The cvss[] of one record (the match's vulnerability or a related one). */
static int record_cvss(struct jread *c, const struct jval *rec, struct scan_cvss *out, size_t *n)
{
	const struct jval *a, *e;
	const char *ns;
	size_t i;
	int rc = jread_typed(c, rec, "cvss", JVAL_ARRAY, &a);
	if (rc < 0 || !a || jval_len(a) == 0)
		return rc;
	if (jval_len(a) > SCAN_MAX_LIST - *n)
		return jread_fail(c, ODX_ETOOBIG, "more than %d CVSS entries", SCAN_MAX_LIST);
	rc = jread_str(c, rec, "namespace", JREAD_OPT, &ns);
	jval_array_foreach(a, i, e)
	{
		if (rc < 0)
			break;
		rc = cvss_entry(c, e, i, ns, &out[(*n)++]);
	}
	return rc;
}

static int match_cvss(struct jread *c, const struct match *m, struct scan_finding *f)
{
	struct scan_cvss tmp[SCAN_MAX_LIST];
	size_t n = 0;
	const struct jval *rec;
	int rc = 0;
	for (size_t i = 0; rc == 0 && (rec = match_record(c, m, i)); i++)
		rc = record_cvss(c, rec, tmp, &n);
	c->sub = NULL;
	if (rc < 0 || n == 0)
		return rc;
	f->cvss = scan_alloc(c->r, n * sizeof(*f->cvss));
	if (!f->cvss)
		return jread_oom(c);
	memcpy(f->cvss, tmp, n * sizeof(*f->cvss));
	f->ncvss = n;
	return 0;
}

static enum scan_fix_state fix_state(const char *state, bool has_fix)
{
	if (!state)
		return has_fix ? SCAN_FIX_FIXED : SCAN_FIX_UNKNOWN;
	if (strcmp(state, "fixed") == 0)
		return SCAN_FIX_FIXED;
	if (strcmp(state, "not-fixed") == 0)
		return SCAN_FIX_AFFECTED;
	if (strcmp(state, "wont-fix") == 0)
		return SCAN_FIX_WONT_FIX;
	return SCAN_FIX_UNKNOWN; /* "unknown", "" (CPE matches), values newer than this code */
}

static int match_fix(struct jread *c, const struct jval *vuln, struct scan_finding *f)
{
	const struct jval *fix;
	const char *vers[SCAN_MAX_LIST], *state = NULL;
	size_t n = 0, sl;
	int rc = jread_typed(c, vuln, "vulnerability.fix", JVAL_OBJECT, &fix);
	if (rc == 0 && fix)
		rc = jread_strv(c, fix, "vulnerability.fix.versions", vers, &n, SCAN_MAX_LIST);
	if (rc == 0 && fix)
		rc = jread_raw(c, fix, "vulnerability.fix.state", JREAD_OPT, &state, &sl);
	if (rc < 0)
		return rc;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (*vers[i])
			vers[k++] = vers[i];
	f->fix_state[SCAN_ENGINE_GRYPE] = fix_state(state, k > 0);
	return jread_keep_strv(c, vers, scan_strv_unique(vers, k), &f->fixed_versions, &f->nfixed);
}

/* One epss[] entry: its cve (NULL when absent), score and percentile (-1 when absent). */
static int epss_entry(struct jread *c, const struct jval *e, size_t i, const char **cve,
		      double *score, double *pct)
{
	size_t n;
	if (!jval_is_object(e))
		return jread_fail(c, ODX_EINVAL, "vulnerability.epss[%zu] must be an object", i);
	int rc = jread_raw(c, e, "vulnerability.epss.cve", JREAD_OPT, cve, &n);
	if (rc == 0)
		rc = jread_num(c, e, "vulnerability.epss.epss", 1, "is out of range", score);
	if (rc == 0)
		rc = jread_num(c, e, "vulnerability.epss.percentile", 1, "is out of range", pct);
	return rc;
}

/* epss[]: the entry for the chosen id, else the highest; every entry is checked. */
static int match_epss(struct jread *c, const struct jval *vuln, struct scan_finding *f)
{
	const struct jval *a;
	const char *cve;
	double score, pct;
	bool exact = false;
	int rc = jread_typed(c, vuln, "vulnerability.epss", JVAL_ARRAY, &a);
	for (size_t i = 0; rc == 0 && i < jval_len(a); i++) {
		rc = epss_entry(c, jval_at(a, i), i, &cve, &score, &pct);
		if (rc < 0 || score < 0 || exact)
			continue;
		exact = cve && strcmp(cve, f->id) == 0;
		if (exact || score > f->epss) {
			f->epss = score;
			f->epss_percentile = pct;
		}
	}
	return rc;
}

/* knownExploited[] non-empty on the record. */
static int record_kev(struct jread *c, const struct jval *rec, bool *kev)
{
	const struct jval *a;
	int rc = jread_typed(c, rec, "knownExploited", JVAL_ARRAY, &a);
	if (rc == 0 && a && jval_len(a) > 0)
		*kev = true;
	return rc;
}

static int match_kev(struct jread *c, const struct match *m, struct scan_finding *f)
{
	const struct jval *rec;
	int rc = 0;
	for (size_t i = 0; rc == 0 && (rec = match_record(c, m, i)); i++)
		rc = record_kev(c, rec, &f->kev);
	c->sub = NULL;
	return rc;
}

static int match_cpe(struct jread *c, const struct jval *m, struct scan_finding *f)
{
	const struct jval *a, *d;
	size_t i;
	int rc = jread_typed(c, m, "matchDetails", JVAL_ARRAY, &a);
	if (rc < 0 || !a)
		return rc;
	bool all = jval_len(a) > 0;
	c->sub = "matchDetails";
	jval_array_foreach(a, i, d)
	{
		const char *type;
		size_t n;
		c->si = i;
		if (!jval_is_object(d))
			return jread_fail(c, ODX_EINVAL, "must be an object");
		rc = jread_raw(c, d, "type", JREAD_OPT, &type, &n);
		if (rc < 0)
			return rc;
		all = all && type && strcmp(type, "cpe-match") == 0;
	}
	c->sub = NULL;
	f->cpe_match = all;
	return 0;
}

/* dataSource, then urls[]: the first SCAN_MAX_LIST of them (see the top comment). */
static int match_urls(struct jread *c, const struct jval *vuln, struct scan_finding *f)
{
	const char *urls[SCAN_MAX_LIST];
	size_t n = 0, i;
	const struct jval *a, *s;
	int rc = jread_str(c, vuln, "vulnerability.dataSource", JREAD_OPT, &urls[n]);
	if (rc < 0)
		return rc;
	n += urls[n] != NULL;
	rc = jread_typed(c, vuln, "vulnerability.urls", JVAL_ARRAY, &a);
	if (rc < 0)
		return rc;
	if (a)
		jval_array_foreach(a, i, s)
		{
			if (!jval_is_string(s))
				return jread_fail(c, ODX_EINVAL,
						  "vulnerability.urls[%zu] must be a string", i);
			size_t len = jval_len(s);
			if (len > SCAN_MAX_STR)
				return jread_fail(c, ODX_ETOOBIG,
						  "vulnerability.urls[%zu] is longer than %d bytes",
						  i, SCAN_MAX_STR);
			if (n == SCAN_MAX_LIST || len == 0)
				continue;
			if (!(urls[n++] = scan_strndup(c->r, jval_str(s), len)))
				return jread_oom(c);
		}
	return jread_keep_strv(c, urls, scan_strv_unique(urls, n), &f->urls, &f->nurls);
}

static int match_parts(struct jread *c, const struct jval *mj, struct match *m)
{
	if (!jval_is_object(mj))
		return jread_fail(c, ODX_EINVAL, "must be an object");
	int rc = jread_typed(c, mj, "vulnerability", JVAL_OBJECT, &m->vuln);
	if (rc == 0 && !m->vuln)
		rc = jread_fail(c, ODX_EINVAL, "vulnerability is missing");
	if (rc == 0)
		rc = jread_typed(c, mj, "artifact", JVAL_OBJECT, &m->artifact);
	if (rc == 0 && !m->artifact)
		rc = jread_fail(c, ODX_EINVAL, "artifact is missing");
	if (rc == 0)
		rc = jread_typed(c, mj, "relatedVulnerabilities", JVAL_ARRAY, &m->related);
	if (rc == 0 && m->related)
		rc = check_objects(c, m->related, "relatedVulnerabilities");
	if (rc == 0)
		rc =
		    jread_typed(c, m->vuln, "vulnerability.advisories", JVAL_ARRAY, &m->advisories);
	if (rc == 0 && m->advisories)
		rc = check_objects(c, m->advisories, "vulnerability.advisories");
	return rc;
}

static int parse_match(struct jread *c, const struct jval *mj, struct scan_finding *f)
{
	struct match m;
	f->epss = f->epss_percentile = -1;
	f->engines = SCAN_ENGINE_BIT(SCAN_ENGINE_GRYPE);
	int rc = match_parts(c, mj, &m);
	if (rc == 0)
		rc = match_ids(c, &m, f);
	if (rc == 0)
		rc = match_package(c, m.artifact, f);
	if (rc == 0)
		rc = jread_severity(c, m.vuln, "vulnerability.severity", "vulnerability.namespace",
				    SCAN_ENGINE_GRYPE, f);
	if (rc == 0)
		rc = match_cvss(c, &m, f);
	if (rc == 0)
		rc = match_fix(c, m.vuln, f);
	if (rc == 0)
		rc = match_epss(c, m.vuln, f);
	if (rc == 0)
		rc = match_kev(c, &m, f);
	if (rc == 0)
		rc = match_cpe(c, mj, f);
	if (rc == 0)
		rc = match_urls(c, m.vuln, f);
	return rc;
}

static int parse_matches(struct jread *c, const struct jval *matches)
{
	size_t n = jval_len(matches), i;
	const struct jval *m;
	if (n > SCAN_MAX_FINDINGS)
		return jread_fail(c, ODX_ETOOBIG, "more than %d findings", SCAN_MAX_FINDINGS);
	if (n == 0)
		return 0;
	c->r->findings = scan_alloc(c->r, n * sizeof(*c->r->findings));
	if (!c->r->findings)
		return jread_oom(c);
	c->list = "matches";
	jval_array_foreach(matches, i, m)
	{
		c->i = i;
		int rc = parse_match(c, m, &c->r->findings[c->r->nfindings++]);
		if (rc < 0)
			return rc;
	}
	c->list = NULL;
	return 0;
}

/* ---- the image ---- */

/* Appends the strings of array a to argv; 1 when a is not a short list of short strings. */
static int config_argv(struct jread *c, const struct jval *a, const char **argv, size_t *n)
{
	size_t i;
	const struct jval *s;
	if (!a || jval_is_null(a))
		return 0;
	if (!jval_is_array(a) || jval_len(a) > SCAN_MAX_LIST - *n)
		return 1;
	jval_array_foreach(a, i, s)
	{
		if (!jval_is_string(s) || jval_len(s) > SCAN_MAX_STR)
			return 1;
		argv[*n] = scan_strndup(c->r, jval_str(s), jval_len(s));
		if (!argv[(*n)++])
			return jread_oom(c);
	}
	return 0;
}

/* Standard base64 (with padding) through the project's base64url decoder. */
static uint8_t *b64_decode(const char *in, size_t len, size_t *outlen)
{
	while (len > 0 && in[len - 1] == '=')
		len--;
	char *t = malloc(len + 1);
	uint8_t *out = malloc(len / 4 * 3 + 3);
	bool ok = t && out;
	for (size_t i = 0; ok && i < len; i++) {
		char ch = in[i];
		ok = ch != '-' && ch != '_';
		t[i] = ch == '+' ? '-' : ch == '/' ? '_' : ch;
	}
	if (ok)
		ok = b64url_decode(t, len, out, len / 4 * 3 + 3, outlen) == 0;
	free(t);
	if (!ok) {
		free(out);
		return NULL;
	}
	return out;
}

/*
 * source.target.config: base64 of the image's OCI config. Its Entrypoint
 * then Cmd become the image's entrypoint; a config that does not decode or
 * has the wrong shape is ignored (0), only ODX_ENOMEM is an error.
 */
static int config_entrypoint(struct jread *c, const struct jval *b64)
{
	size_t len;
	const char *argv[SCAN_MAX_LIST];
	size_t n = 0;
	uint8_t *raw = b64_decode(jval_str(b64), jval_len(b64), &len);
	if (!raw)
		return 0; /* not base64, or no memory for a hint: go on without it */
	struct jdoc *doc = NULL;
	char ignored[JDOC_MSG_LEN];
	int rc = jdoc_parse((const char *)raw, len, SCAN_JSON_DEPTH, &doc, ignored);
	free(raw);
	if (rc == ODX_ENOMEM)
		return rc;
	const struct jval *inner = jval_get(doc ? jdoc_root(doc) : NULL, "config");
	rc = config_argv(c, jval_get(inner, "Entrypoint"), argv, &n);
	if (rc == 0)
		rc = config_argv(c, jval_get(inner, "Cmd"), argv, &n);
	jdoc_free(doc);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	return jread_keep_strv(c, argv, n, &c->r->image.entrypoint, &c->r->image.nentrypoint);
}

static int parse_target(struct jread *c, const struct jval *src)
{
	struct scan_image *img = &c->r->image;
	const struct jval *t = jread_member(src, "target"), *cfg;
	const char *digests[SCAN_MAX_LIST];
	size_t n = 0;
	if (!t)
		return 0;
	if (jval_is_string(t))
		return jread_str(c, src, "source.target", JREAD_OPT, &img->name);
	if (!jval_is_object(t))
		return jread_fail(c, ODX_EINVAL, "source.target must be an object or a string");
	int rc = jread_str(c, t, "source.target.userInput", JREAD_OPT, &img->name);
	if (rc == 0)
		rc = jread_str(c, t, "source.target.imageID", JREAD_OPT, &img->image_id);
	if (rc == 0)
		rc = jread_strv(c, t, "source.target.repoDigests", digests, &n, SCAN_MAX_LIST);
	if (rc == 0)
		rc = jread_keep_strv(c, digests, n, &img->repo_digests, &img->nrepo_digests);
	if (rc < 0)
		return rc;
	cfg = jread_member(t, "config");
	if (cfg && !jval_is_string(cfg))
		return jread_fail(c, ODX_EINVAL, "source.target.config must be a string");
	return cfg ? config_entrypoint(c, cfg) : 0;
}

/* alertsByPackage[i].alerts: a "distro-eol" alert marks the image's OS as past its end of life. */
static int package_alerts(struct jread *c, const struct jval *alerts, size_t i)
{
	const struct jval *al;
	size_t j;
	jval_array_foreach(alerts, j, al)
	{
		const char *type;
		size_t n;
		if (!jval_is_object(al))
			return jread_fail(c, ODX_EINVAL,
					  "alertsByPackage[%zu].alerts[%zu] must be an object", i,
					  j);
		int rc = jread_raw(c, al, "alertsByPackage.alerts.type", JREAD_OPT, &type, &n);
		if (rc < 0)
			return rc;
		if (type && strcmp(type, "distro-eol") == 0)
			c->r->image.os_eol = true;
	}
	return 0;
}

static int parse_alerts(struct jread *c, const struct jval *root)
{
	const struct jval *a, *p, *alerts;
	size_t i;
	int rc = jread_typed(c, root, "alertsByPackage", JVAL_ARRAY, &a);
	if (rc < 0 || !a)
		return rc;
	jval_array_foreach(a, i, p)
	{
		if (!jval_is_object(p))
			return jread_fail(c, ODX_EINVAL, "alertsByPackage[%zu] must be an object",
					  i);
		rc = jread_typed(c, p, "alertsByPackage.alerts", JVAL_ARRAY, &alerts);
		if (rc == 0 && alerts)
			rc = package_alerts(c, alerts, i);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int parse_image(struct jread *c, const struct jval *root)
{
	const struct jval *src, *distro;
	int rc = jread_typed(c, root, "source", JVAL_OBJECT, &src);
	if (rc == 0 && src)
		rc = parse_target(c, src);
	if (rc == 0)
		rc = jread_typed(c, root, "distro", JVAL_OBJECT, &distro);
	if (rc == 0 && distro)
		rc = jread_str(c, distro, "distro.name", JREAD_OPT, &c->r->image.os_family);
	if (rc == 0 && distro)
		rc = jread_str(c, distro, "distro.version", JREAD_OPT, &c->r->image.os_version);
	if (rc == 0)
		rc = parse_alerts(c, root);
	return rc;
}

/* Refuses what is not a Grype report, with a message that says what it is. */
static int check_kind(struct jread *c, const struct jval *root)
{
	const struct jval *d, *m;
	if (!jval_is_object(root))
		return jread_fail(c, ODX_EINVAL, "a Grype report must be a JSON object");
	if (jval_get(root, "SchemaVersion") || jval_get(root, "Results"))
		return jread_fail(c, ODX_EINVAL,
				  "not a Grype report: it has Trivy's SchemaVersion/Results");
	m = jval_get(root, "matches");
	d = jval_get(root, "descriptor");
	if (!m || !d)
		return jread_fail(c, ODX_EINVAL, "not a Grype report: %s is missing",
				  m ? "descriptor" : "matches");
	if (!jval_is_array(m))
		return jread_fail(c, ODX_EINVAL, "matches must be an array");
	const char *name = jval_str(jval_get(d, "name"));
	if (!name || strcmp(name, "grype") != 0)
		return jread_fail(c, ODX_EINVAL,
				  "not a Grype report: descriptor.name must be \"grype\"");
	return 0;
}

/* Everything after check_kind: the engine's version, the image, then the findings of matches[]. */
static int parse_report(struct jread *c, const struct jval *root)
{
	int rc = jread_str(c, jval_get(root, "descriptor"), "descriptor.version", JREAD_OPT,
			   &c->r->engine_version[SCAN_ENGINE_GRYPE]);
	if (rc == 0)
		rc = parse_image(c, root);
	if (rc == 0)
		rc = parse_matches(c, jval_get(root, "matches"));
	return rc;
}

int grype_from_json(const struct jval *root, struct scan_report **out,
		    char msg[static SCAN_MSG_LEN])
{
	return jread_report(root, SCAN_ENGINE_GRYPE, check_kind, parse_report, out, msg);
}

int grype_parse(const char *buf, size_t len, struct scan_report **out,
		char msg[static SCAN_MSG_LEN])
{
	return jread_parse(buf, len, grype_from_json, out, msg);
}
