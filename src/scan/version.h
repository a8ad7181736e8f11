/*
 * version.h — package version ordering by package manager (FORMATS.md §3.3).
 *
 * Used to de-duplicate fixed versions when merging engines and to pick the
 * fix to recommend. Comparisons are total preorders on any byte string
 * (unparseable versions still sort, deterministically), bounded by the input
 * length, with no recursion and no allocation.
 */
#ifndef ODX_SCAN_VERSION_H
#define ODX_SCAN_VERSION_H

#include <stddef.h>

/*
 * Compares versions a and b of a package of the given type (scan_package.type
 * or a PURL type): <0, 0 or >0. Rules: dpkg for "deb" (also debian, ubuntu),
 * rpm EVR for "rpm" (and rpm distros), apk for "apk" (alpine, wolfi),
 * Maven-ish for "java-archive"/"jar"/"maven", a generic natural order for
 * NULL/""/"binary"/"generic", semver-ish for every other type. NULL a or b
 * counts as "". Equal strings compare 0; so can different spellings of one
 * version ("0:1.0" and "1.0" for rpm, "v1.2" and "1.2.0" for semver).
 */
int scan_version_cmp(const char *type, const char *a, const char *b);

/*
 * Picks the fix to recommend among fixed[0..n): the smallest version greater
 * than installed in installed's major line (epoch and first number of the
 * upstream version), else the smallest greater one overall, else NULL.
 * NULL, empty, range (">=3.0.0") and list ("1.2, 1.3") entries are skipped:
 * the caller splits Trivy's comma lists. Returns one of the fixed[] pointers.
 */
const char *scan_version_pick_fix(const char *type, const char *installed, const char *const *fixed,
				  size_t n);

#endif
