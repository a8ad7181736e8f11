/*
 * scan-oracles.h — what fuzz-trivy and fuzz-grype run on each input, and the
 * oracles they check, for one engine's report parser:
 *
 *   1. <engine>_parse on the input;
 *   2. the input through jdoc_parse and <engine>_from_json (the import API's
 *      way), which must give the same result as 1;
 *   3. an accepted report: every finding through scan_finding_to_json and
 *      the image through scan_image_to_json, each dump parsed back.
 *
 * Oracles (abort on violation): results are 0, ODX_EINVAL, ODX_ETOOBIG or
 * ODX_ENOMEM; a refusal leaves *out untouched and writes a non-empty,
 * NUL-terminated message of printable ASCII (so no input bytes beyond our
 * own words, and never a control or non-ASCII byte from the report). An
 * accepted report says its engine and keeps the model's invariants: each
 * finding has an id, a package name, version and type; at least one alias,
 * strictly sorted, the id among them; lists within SCAN_MAX_LIST, strings
 * within SCAN_MAX_STR; the engine's severity and fix state set and the
 * other's not; EPSS and its percentile -1 or 0..1; CVSS scores -1 or 0..10;
 * the counts add up. Each harness adds the checks only its engine has.
 *
 * Header-only, static functions: each harness is an executable of its own,
 * so there is nothing to link.
 */
#ifndef ODX_FUZZ_SCAN_ORACLES_H
#define ODX_FUZZ_SCAN_ORACLES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jdoc.h"
#include "scan/model.h"

/* One engine's parser and the checks of a finding only that engine has. */
struct scan_oracle {
	enum scan_engine engine;
	int (*parse)(const char *buf, size_t len, struct scan_report **out, char *msg);
	int (*from_json)(const struct jval *root, struct scan_report **out, char *msg);
	void (*finding)(const struct scan_finding *f); /* or NULL */
};

static inline void oracle_str(const char *s, bool nullable)
{
	if (!s) {
		if (!nullable)
			abort();
		return;
	}
	if (strlen(s) > SCAN_MAX_STR)
		abort();
}

static inline void oracle_strv(const char *const *v, size_t n)
{
	if (n > SCAN_MAX_LIST || (n > 0 && !v))
		abort();
	for (size_t i = 0; i < n; i++)
		oracle_str(v[i], false);
}

/* The dump of a new reference parses back to an equal value; consumes j. */
static inline void oracle_json(json_t *j)
{
	if (!j)
		abort(); /* allocation failure is not expected at these sizes */
	char *s = json_dumps(j, JSON_COMPACT);
	json_t *back = s ? json_loads(s, 0, NULL) : NULL;
	if (!back || !json_equal(j, back))
		abort();
	json_decref(back);
	free(s);
	json_decref(j);
}

/* At least one alias, strictly sorted, the id among them. */
static inline void oracle_aliases(const struct scan_finding *f)
{
	bool has_id = false;
	if (f->naliases < 1)
		abort();
	oracle_strv(f->aliases, f->naliases);
	for (size_t i = 0; i < f->naliases; i++) {
		if (i > 0 && strcmp(f->aliases[i - 1], f->aliases[i]) >= 0)
			abort();
		has_id = has_id || strcmp(f->aliases[i], f->id) == 0;
	}
	if (!has_id)
		abort();
}

static inline void oracle_cvss(const struct scan_finding *f)
{
	if (f->ncvss > SCAN_MAX_LIST)
		abort();
	for (size_t i = 0; i < f->ncvss; i++) {
		const struct scan_cvss *c = &f->cvss[i];
		oracle_str(c->source, false);
		oracle_str(c->version, false);
		oracle_str(c->vector, false);
		if (!(c->score == -1 || (c->score >= 0 && c->score <= 10)))
			abort();
	}
}

static inline bool oracle_unit_or_absent(double d)
{
	return d == -1 || (d >= 0 && d <= 1);
}

/* What engine e (the other: o) says of a finding: its severity, source and fix state only. */
static inline void oracle_engine_fields(const struct scan_finding *f, enum scan_engine e)
{
	enum scan_engine o = e == SCAN_ENGINE_TRIVY ? SCAN_ENGINE_GRYPE : SCAN_ENGINE_TRIVY;
	if (f->engines != SCAN_ENGINE_BIT(e) || f->severity != f->engine_severity[e] ||
	    (unsigned)f->severity >= SCAN_SEV_COUNT || !f->severity_source ||
	    !f->engine_severity_source[e] || f->engine_severity_source[o] ||
	    f->fix_state[e] == SCAN_FIX_NONE || f->fix_state[e] > SCAN_FIX_EOL ||
	    f->fix_state[o] != SCAN_FIX_NONE)
		abort();
	if (!oracle_unit_or_absent(f->epss) || !oracle_unit_or_absent(f->epss_percentile))
		abort();
}

static inline void oracle_finding(const struct scan_oracle *so, const struct scan_finding *f)
{
	oracle_str(f->id, false);
	oracle_str(f->pkg.name, false);
	oracle_str(f->pkg.version, false);
	oracle_str(f->pkg.type, false);
	oracle_str(f->pkg.purl, true);
	oracle_str(f->pkg.source, true);
	oracle_str(f->layer, true);
	oracle_str(f->title, true);
	if (!f->id[0] || !f->pkg.name[0])
		abort();
	oracle_aliases(f);
	oracle_strv(f->paths, f->npaths);
	oracle_strv(f->fixed_versions, f->nfixed);
	oracle_strv(f->urls, f->nurls);
	oracle_cvss(f);
	oracle_engine_fields(f, so->engine);
	if (so->finding)
		so->finding(f);
	oracle_json(scan_finding_to_json(f));
}

static inline void oracle_report(const struct scan_oracle *so, const struct scan_report *r)
{
	enum scan_engine o =
	    so->engine == SCAN_ENGINE_TRIVY ? SCAN_ENGINE_GRYPE : SCAN_ENGINE_TRIVY;
	if (r->engines != SCAN_ENGINE_BIT(so->engine) || r->nfindings > SCAN_MAX_FINDINGS ||
	    (r->nfindings > 0 && !r->findings) || r->engine_version[o])
		abort();
	oracle_str(r->image.name, true);
	oracle_str(r->image.image_id, true);
	oracle_str(r->image.os_family, true);
	oracle_str(r->image.os_version, true);
	oracle_strv(r->image.repo_digests, r->image.nrepo_digests);
	oracle_strv(r->image.entrypoint, r->image.nentrypoint);
	oracle_json(scan_image_to_json(&r->image));
	for (size_t i = 0; i < r->nfindings; i++)
		oracle_finding(so, &r->findings[i]);
	struct scan_counts c;
	scan_report_count(r, &c);
	size_t sum = 0;
	for (int s = 0; s < SCAN_SEV_COUNT; s++)
		sum += c.by_severity[s];
	if (c.total != r->nfindings || sum != c.total)
		abort();
	oracle_json(scan_counts_to_json(&c));
}

static inline void oracle_refusal(int rc, const struct scan_report *r,
				  const struct scan_report *sentinel, const char *msg)
{
	if (rc != ODX_EINVAL && rc != ODX_ETOOBIG && rc != ODX_ENOMEM)
		abort();
	if (r != sentinel || !memchr(msg, '\0', SCAN_MSG_LEN) || !msg[0])
		abort();
	for (const char *p = msg; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			abort();
}

/* Checks what a parser gave: the report (then freed) or its refusal. The report's findings, or 0.
 */
static inline size_t oracle_outcome(const struct scan_oracle *so, int rc, struct scan_report *r,
				    const struct scan_report *sentinel, const char *msg)
{
	if (rc != 0) {
		oracle_refusal(rc, r, sentinel, msg);
		return 0;
	}
	oracle_report(so, r);
	size_t n = r->nfindings;
	scan_report_free(r);
	return n;
}

/* Steps 1 to 3 of the top comment on one input; the harness's LLVMFuzzerTestOneInput. */
static inline int oracle_run(const struct scan_oracle *so, const uint8_t *data, size_t size)
{
	static int sentinel;
	struct scan_report *const mark = (struct scan_report *)&sentinel;
	struct scan_report *r = mark;
	char msg[SCAN_MSG_LEN];
	memset(msg, 'X', sizeof(msg));
	int rc = so->parse((const char *)data, size, &r, msg);
	size_t n = oracle_outcome(so, rc, r, mark, msg);

	/* the same through an already decoded tree, as the import API does */
	struct jdoc *doc;
	char why[JDOC_MSG_LEN];
	if (jdoc_parse((const char *)data, size, SCAN_JSON_DEPTH, &doc, why) < 0) {
		if (rc == 0)
			abort();
		return 0;
	}
	r = mark;
	int rc2 = so->from_json(jdoc_root(doc), &r, msg);
	jdoc_free(doc); /* the report must not point into it */
	if (rc2 != rc && rc != ODX_ENOMEM && rc2 != ODX_ENOMEM)
		abort();
	if (rc2 == 0 && r->nfindings != n)
		abort();
	oracle_outcome(so, rc2, r, mark, msg);
	return 0;
}

#endif
