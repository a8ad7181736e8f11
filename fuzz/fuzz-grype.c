/*
 * fuzz-grype.c — Grype JSON reports (grype.c): the "grype" member of
 * POST /v1/scans/import, or what `grype -o json` printed:
 *
 *   1. grype_parse on the input;
 *   2. the input through jdoc_parse and grype_from_json (the import API's way),
 *      which must give the same result as 1;
 *   3. an accepted report: every finding through scan_finding_to_json and
 *      the image through scan_image_to_json, each dump parsed back.
 *
 * Oracles (abort on violation): results are 0, ODX_EINVAL, ODX_ETOOBIG or
 * ODX_ENOMEM; a refusal leaves *out untouched and writes a non-empty,
 * NUL-terminated message of printable ASCII (so no input bytes beyond our
 * own words, and never a control or non-ASCII byte from the report). An
 * accepted report says engine Grype and keeps the model's invariants: each
 * finding has an id, a package name, version and type; at least one alias,
 * strictly sorted, the id among them; lists within SCAN_MAX_LIST, strings
 * within SCAN_MAX_STR; Grype's severity and fix state set and Trivy's not;
 * EPSS and its percentile -1 or 0..1; CVSS scores -1 or 0..10; the counts
 * add up. The base64 image config (source.target.config) is decoded too:
 * seeds carry one, so mutations reach the decoder.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jdoc.h"
#include "scan/grype.h"
#include "scan/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ENGINE SCAN_ENGINE_GRYPE
#define OTHER  SCAN_ENGINE_TRIVY

static void check_str(const char *s, bool nullable)
{
	if (!s) {
		if (!nullable)
			abort();
		return;
	}
	if (strlen(s) > SCAN_MAX_STR)
		abort();
}

static void check_strv(const char *const *v, size_t n)
{
	if (n > SCAN_MAX_LIST || (n > 0 && !v))
		abort();
	for (size_t i = 0; i < n; i++)
		check_str(v[i], false);
}

/* The dump of a new reference parses back to an equal value; consumes j. */
static void check_json(json_t *j)
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

static void check_finding(const struct scan_finding *f)
{
	check_str(f->id, false);
	check_str(f->pkg.name, false);
	check_str(f->pkg.version, false);
	check_str(f->pkg.type, false);
	check_str(f->pkg.purl, true);
	check_str(f->pkg.source, true);
	check_str(f->layer, true);
	check_str(f->title, true);
	if (!f->id[0] || !f->pkg.name[0] || f->naliases < 1)
		abort();
	check_strv(f->aliases, f->naliases);
	bool has_id = false;
	for (size_t i = 0; i < f->naliases; i++) {
		if (i > 0 && strcmp(f->aliases[i - 1], f->aliases[i]) >= 0)
			abort();
		has_id = has_id || strcmp(f->aliases[i], f->id) == 0;
	}
	if (!has_id)
		abort();
	check_strv(f->paths, f->npaths);
	check_strv(f->fixed_versions, f->nfixed);
	check_strv(f->urls, f->nurls);
	if (f->ncvss > SCAN_MAX_LIST)
		abort();
	for (size_t i = 0; i < f->ncvss; i++) {
		const struct scan_cvss *c = &f->cvss[i];
		check_str(c->source, false);
		check_str(c->version, false);
		check_str(c->vector, false);
		if (!(c->score == -1 || (c->score >= 0 && c->score <= 10)))
			abort();
	}
	if (f->engines != SCAN_ENGINE_BIT(ENGINE) || f->severity != f->engine_severity[ENGINE] ||
	    (unsigned)f->severity >= SCAN_SEV_COUNT || !f->severity_source ||
	    !f->engine_severity_source[ENGINE] || f->engine_severity_source[OTHER] ||
	    f->fix_state[ENGINE] == SCAN_FIX_NONE || f->fix_state[ENGINE] > SCAN_FIX_EOL ||
	    f->fix_state[OTHER] != SCAN_FIX_NONE)
		abort();
	if (!(f->epss == -1 || (f->epss >= 0 && f->epss <= 1)) ||
	    !(f->epss_percentile == -1 || (f->epss_percentile >= 0 && f->epss_percentile <= 1)))
		abort();
	check_json(scan_finding_to_json(f));
}

static void check_report(const struct scan_report *r)
{
	if (r->engines != SCAN_ENGINE_BIT(ENGINE) || r->nfindings > SCAN_MAX_FINDINGS ||
	    (r->nfindings > 0 && !r->findings) || r->engine_version[OTHER])
		abort();
	check_str(r->image.name, true);
	check_str(r->image.image_id, true);
	check_str(r->image.os_family, true);
	check_str(r->image.os_version, true);
	check_strv(r->image.repo_digests, r->image.nrepo_digests);
	check_strv(r->image.entrypoint, r->image.nentrypoint);
	check_json(scan_image_to_json(&r->image));
	for (size_t i = 0; i < r->nfindings; i++)
		check_finding(&r->findings[i]);
	struct scan_counts c;
	scan_report_count(r, &c);
	size_t sum = 0;
	for (int s = 0; s < SCAN_SEV_COUNT; s++)
		sum += c.by_severity[s];
	if (c.total != r->nfindings || sum != c.total)
		abort();
	check_json(scan_counts_to_json(&c));
}

static void check_refusal(int rc, const struct scan_report *r, const struct scan_report *sentinel,
			  const char *msg)
{
	if (rc != ODX_EINVAL && rc != ODX_ETOOBIG && rc != ODX_ENOMEM)
		abort();
	if (r != sentinel || !memchr(msg, '\0', SCAN_MSG_LEN) || !msg[0])
		abort();
	for (const char *p = msg; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int sentinel;
	struct scan_report *r = (struct scan_report *)&sentinel;
	char msg[SCAN_MSG_LEN];
	memset(msg, 'X', sizeof(msg));
	int rc = grype_parse((const char *)data, size, &r, msg);
	size_t n = 0;
	if (rc == 0) {
		check_report(r);
		n = r->nfindings;
		scan_report_free(r);
	} else {
		check_refusal(rc, r, (struct scan_report *)&sentinel, msg);
	}

	/* the same through an already decoded tree, as the import API does */
	struct jdoc *doc;
	char why[JDOC_MSG_LEN];
	if (jdoc_parse((const char *)data, size, SCAN_JSON_DEPTH, &doc, why) < 0) {
		if (rc == 0)
			abort();
		return 0;
	}
	struct scan_report *r2 = (struct scan_report *)&sentinel;
	int rc2 = grype_from_json(jdoc_root(doc), &r2, msg);
	jdoc_free(doc); /* the report must not point into it */
	if (rc2 != rc && rc != ODX_ENOMEM && rc2 != ODX_ENOMEM)
		abort();
	if (rc2 == 0) {
		if (r2->nfindings != n)
			abort();
		check_report(r2);
		scan_report_free(r2);
	} else {
		check_refusal(rc2, r2, (struct scan_report *)&sentinel, msg);
	}
	return 0;
}
