/*
 * recommend.h — what to do about a merged report (SPEC §7, docs/scan-policies.md).
 *
 * One recommendation per fixable finding: a fixed version newer than the
 * installed one (scan_version_pick_fix) or an engine saying "fixed". OS
 * packages (deb, rpm, apk) are grouped by source package where known: one
 * upgrade of the source fixes all its binary packages, which are listed.
 * Language packages are grouped by (id, name, version), so copies at several
 * paths give one recommendation.
 *
 * Upgrades roll the recommendations up per package (OS: type and source;
 * language: type, name and installed version) to the highest of their fixed
 * versions, counting what it fixes.
 *
 * When OS findings exist, a base-image recommendation: rebuild on the
 * floating tag of the same release (it tracks the newest point release) and,
 * when the release is end of life (img->os_eol, or the table's date has
 * passed at now), move to the family's newest supported release. The table
 * of releases and end-of-life dates is dated 2026-11 (recommend.c).
 *
 * Priority, 0-100, the sum of four parts a reader can recompute:
 *   severity      critical 40, high 30, medium 20, low 10, negligible 5, unknown 10
 *   exploitability 0-20 from the CVSS v3.x/v4.0 vector giving the most points
 *                  (AV:N 8, AV:A 4, AV:L 2, AV:P 0; AC:L 4; PR:N 4, PR:L 2;
 *                  UI:N 4, UI:P 2 (v4)); no usable vector: severity points / 2
 *   threat        KEV 25, else 20 * sqrt(EPSS) (EPSS absent: 0)
 *   path          in the execution path 15, unknown 7.5, off the path 0
 * Example: high (30), CVSS:3.1/AV:N/AC:L/PR:N/UI:R (8+4+4+0 = 16), EPSS 0.04
 * (20 * 0.2 = 4), an npm package under a node entrypoint (15): 65.
 */
#ifndef ODX_SCAN_RECOMMEND_H
#define ODX_SCAN_RECOMMEND_H

#include <jansson.h>
#include <stdint.h>

#include "scan/model.h"

#define SCAN_EOL_TABLE_DATE "2026-11"

/*
 * {"recommendations": [...] (priority desc, then severity desc, id, package name),
 *  "upgrades": [...], "base_image": {...} or null}. Each recommendation: {"finding",
 * "severity", "package": {name, version, type, source}, "packages": [binary names],
 * "fixed_version" (or null when only a "fixed" state is known), "action",
 * "priority", "priority_factors", "why"}. Upgrades (priority desc, fixes desc,
 * name), one per package with a fixed version: {"package", "packages", "to_version", "fixes",
 * "fixes_by_severity", "findings" (<= 50 ids), "findings_total",
 * "without_version", "priority", "action"} (docs/scan-policies.md).
 * New reference; NULL on ENOMEM or NULL merged.
 */
json_t *scan_recommend(const struct scan_report *merged, int64_t now_unix);

/*
 * Priority of finding f in image img (0-100, formula above). *why (optional)
 * gets a short static explanation of the deciding factor.
 */
double scan_priority(const struct scan_finding *f, const struct scan_image *img, const char **why);

#endif
