/*
 * merge.h — package identity and the merge of engine reports (SPEC §7,
 * FORMATS.md §3). merge.c's top comment gives the rules.
 */
#ifndef ODX_SCAN_MERGE_H
#define ODX_SCAN_MERGE_H

#include <stddef.h>

#include "scan/model.h"

#define SCAN_MERGE_MAX_INPUTS 4

struct scan_merge_stats {
	struct scan_counts before[SCAN_ENGINE_COUNT]; /* input findings per engine, by severity */
	struct scan_counts after;		      /* merged findings, by chosen severity */
	size_t both;				      /* merged findings seen by Trivy and Grype */
	size_t only[SCAN_ENGINE_COUNT]; /* merged findings seen by that engine alone */
	size_t
	    engine_duplicates_collapsed; /* input findings one engine reported twice (same place) */
};

/*
 * The normalised identity of a package, "type/namespace/name@version", in
 * r's arena; NULL on allocation failure (or p NULL). From the PURL when there
 * is one (qualifiers and subpath dropped, percent-decoded, npm/pypi names in
 * lower case, deb/rpm version with its epoch, "0:" when none), else from the
 * normalised type, name and version.
 */
const char *scan_package_key(struct scan_report *r, const struct scan_package *p);

/*
 * Merges in[0..n) (1..SCAN_MERGE_MAX_INPUTS reports, normally one Trivy and
 * one Grype report of one image) into *out, a new report with its own arena
 * (scan_report_free); the inputs are not changed and stay the caller's.
 * Fills *st when st is not NULL. Returns 0, ODX_EINVAL (bad arguments),
 * ODX_ETOOBIG (too many findings) or ODX_ENOMEM; *out and *st are written
 * only on success.
 */
int scan_merge(struct scan_report *const *in, size_t n, struct scan_report **out,
	       struct scan_merge_stats *st);

#endif
