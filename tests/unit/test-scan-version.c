/* test-scan-version.c — version order per package manager, and picking the fix to recommend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scan/version.h"

static int sgn(int v)
{
	return (v > 0) - (v < 0);
}

/* Each row of an ascending chain must compare below every later row, and equal to itself. */
static void check_chain(const char *type, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < n; j++) {
			int want = i < j ? -1 : (i > j ? 1 : 0);
			int got = sgn(scan_version_cmp(type, v[i], v[j]));
			if (got != want)
				fail_msg("%s: cmp(%s, %s) = %d, want %d", type ? type : "(none)",
					 v[i], v[j], got, want);
		}
	}
}

static void check_equal(const char *type, const char *a, const char *b)
{
	if (scan_version_cmp(type, a, b) != 0 || scan_version_cmp(type, b, a) != 0)
		fail_msg("%s: %s and %s should be equal", type, a, b);
}

#define CHAIN(type, ...)                                                                           \
	do {                                                                                       \
		static const char *const v_[] = {__VA_ARGS__};                                     \
		check_chain(type, v_, sizeof(v_) / sizeof(v_[0]));                                 \
	} while (0)

static void test_dpkg(void **state)
{
	(void)state;
	/* deb-version(7): "~~" < "~~a" < "~" < "" < "a". */
	CHAIN("deb", "1.0~~", "1.0~~a", "1.0~", "1.0", "1.0a");
	/* juice-shop libssl3: installed 3.0.17-1~deb12u3, fixed by DSA-6113-1 in 3.0.18-1~deb12u2.
	 */
	CHAIN("deb", "3.0.17-1~deb12u3", "3.0.17-1", "3.0.18-1~deb12u2", "3.0.18-1");
	CHAIN("deb", "2.36-9+deb12u9", "2.36-9+deb12u10", "2.37-1");
	CHAIN("deb", "1.0-1", "1.0-1+b1", "1.0-1.1", "1.0-2");
	/* The epoch wins over everything else; a missing epoch is 0. */
	CHAIN("deb", "9.9-9", "1:1.0-1", "1:4.13+dfsg1-4ubuntu3.2", "1:4.13+dfsg1-4ubuntu3.10",
	      "2:0.1");
	check_equal("deb", "0:1.2-3", "1.2-3");
	check_equal("debian", "1.0", "1.0-0"); /* an absent revision is "", which equals "0" */
	check_equal("ubuntu", "1.02", "1.2");
	CHAIN("ubuntu", "1.2.3", "1.2.10", "1.10");
}

static void test_rpm(void **state)
{
	(void)state;
	check_equal("rpm", "0:1.0.2k-16.el7", "1.0.2k-16.el7");
	check_equal("rpm", "7.61.1-25.el8_7.3", "0:7.61.1-25.el8_7.3"); /* Grype spells out 0: */
	/* centos-7 golden file: openssl-libs 1:1.0.2k-16.el7. */
	CHAIN("rpm", "1.0.2k-19.el7", "1:1.0.2k-8.el7", "1:1.0.2k-16.el7", "1:1.0.2k-16.el7_6",
	      "1:1.0.2k-16.el7_6.1", "1:1.0.2k-19.el7", "1:1.0.2l-1.el7");
	CHAIN("rpm", "2.17-260.el7", "2.17-260.el7_6.3", "2.17-260.el7_6.6", "2.17-292.el7");
	/* "~" before the end, "^" after the end but before more segments; numbers beat letters. */
	CHAIN("rpm", "1.0~rc1", "1.0", "1.0^git1", "1.0a", "1.0.1");
	CHAIN("centos", "10:3.6.16-4.0.1.el8_fips", "11:1");
}

static void test_apk(void **state)
{
	(void)state;
	CHAIN("apk", "1.2.3_alpha", "1.2.3_beta", "1.2.3_pre", "1.2.3_rc", "1.2.3_rc1",
	      "1.2.3_rc2-r5", "1.2.3", "1.2.3-r0", "1.2.3-r1", "1.2.3-r10", "1.2.3_p1", "1.2.3a",
	      "1.2.4");
	CHAIN("alpine", "1.1.1b-r1", "1.1.1c-r0", "1.1.1k-r0", "1.1.2");
	CHAIN("apk", "2.9.9-r3", "2.9.10-r0", "2.10");
	check_equal("apk", "1.2", "1.2");
}

static void test_semver(void **state)
{
	(void)state;
	/* semver.org §11 example chain. */
	CHAIN("npm", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
	      "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0");
	CHAIN("npm", "2.0.0-beta", "2.0.0", "2.8.2-beta.1", "2.8.2", "3.0.0-beta.0", "3.0.0",
	      "9.0.7", "10.2.3");
	/* Go: installed v1.10.12, fix 1.11.9 (FORMATS.md §3.3). */
	CHAIN("go-module", "v1.10.12", "1.11.9", "v1.12.0");
	check_equal("golang", "v1.2.3", "1.2.3");
	check_equal("npm", "1.2", "1.2.0");
	check_equal("npm", "1.2.3+build5", "1.2.3");
	check_equal("gomod", "v20.10.0+incompatible", "20.10.0");
	CHAIN("python", "1.0.dev1", "1.0rc1", "1.0", "1.0.1");
	CHAIN("gem", "not-a-version", "1.0.0.pre", "1.0.0");
}

static void test_maven(void **state)
{
	(void)state;
	CHAIN("maven", "1.0-alpha-1", "1.0-alpha-2", "1.0-beta", "1.0-M1", "1.0-rc1",
	      "1.0-SNAPSHOT", "1.0", "1.0-sp1", "1.0-xyz", "1.0.1");
	check_equal("maven", "1.0", "1");
	check_equal("maven", "1.0.0", "1-ga");
	check_equal("java-archive", "5.3.20.RELEASE", "5.3.20");
	check_equal("jar", "1.0-cr1", "1.0-RC1");
	check_equal("maven", "1-alpha", "1.0.0-alpha");
	/* xstream in webgoat: 1.4.5 installed, fixes in the 1.4.x line. */
	CHAIN("java-archive", "1.4.5", "1.4.18", "1.4.19", "1.4.20");
	CHAIN("jar", "2.13.4", "2.13.4.1", "2.13.4.2", "2.14.0-rc1", "2.14.0");
	CHAIN("maven", "9.4.51.v20230217", "9.4.52.v20230823", "10.0.0");
	CHAIN("maven", "1.0.0.1", "1.0.1");
}

static void test_generic(void **state)
{
	(void)state;
	CHAIN("binary", "20.20.0", "22.21.1", "22.22.0", "24.13.0", "25.3.0");
	CHAIN(NULL, "", "abc", "abd", "1.9", "1.10", "1.10a"); /* letters first */
	assert_int_equal(scan_version_cmp("deb", NULL, ""), 0);
	assert_int_equal(scan_version_cmp(NULL, NULL, NULL), 0);
}

/* Long digit runs are compared exactly, without integer overflow. */
static void test_long_numbers(void **state)
{
	(void)state;
	static const char *const types[] = {"deb", "rpm", "apk", "npm", "maven", "binary"};
	size_t n = 60000;
	char *a = malloc(n + 1), *b = malloc(n + 1);
	assert_non_null(a);
	assert_non_null(b);
	memset(a, '9', n);
	a[n] = '\0';
	memset(b, '9', n);
	b[0] = '1', b[1] = '0';
	b[n] = '\0';
	/* b = "10" then 59998 nines: b < a; "1" + a is greater than both. */
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		assert_true(scan_version_cmp(types[t], b, a) < 0);
		assert_true(scan_version_cmp(types[t], a, b) > 0);
		assert_int_equal(scan_version_cmp(types[t], a, a), 0);
	}
	free(a);
	free(b);
}

/* Random strings over the characters the schemes care about. */
static void random_version(char *out, size_t cap, unsigned *seed)
{
	static const char alphabet[] = "0019.-~^_:+rvapbcs";
	size_t len = (size_t)(rand_r(seed) % (int)(cap - 1));
	for (size_t i = 0; i < len; i++)
		out[i] = alphabet[rand_r(seed) % (int)(sizeof(alphabet) - 1)];
	out[len] = '\0';
}

/*
 * Total preorder on arbitrary input: antisymmetric signs, reflexive, and
 * transitive over all triples of a random sample (what qsort relies on).
 */
static void test_total_order(void **state)
{
	(void)state;
	static const char *const types[] = {"deb", "rpm", "apk", "npm", "maven", "binary"};
	enum { N = 70, LEN = 12 };
	static char v[N][LEN];
	unsigned seed = 12345;
	for (size_t i = 0; i < N; i++)
		random_version(v[i], LEN, &seed);
	static int c[N][N];
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		for (size_t i = 0; i < N; i++)
			for (size_t j = 0; j < N; j++)
				c[i][j] = sgn(scan_version_cmp(types[t], v[i], v[j]));
		for (size_t i = 0; i < N; i++) {
			assert_int_equal(c[i][i], 0);
			for (size_t j = 0; j < N; j++) {
				if (c[i][j] != -c[j][i])
					fail_msg("%s: not antisymmetric: '%s' '%s'", types[t], v[i],
						 v[j]);
				for (size_t k = 0; k < N; k++)
					if (c[i][j] <= 0 && c[j][k] <= 0 && c[i][k] > 0)
						fail_msg("%s: not transitive: '%s' '%s' '%s'",
							 types[t], v[i], v[j], v[k]);
			}
		}
	}
}

static void test_pick_fix(void **state)
{
	(void)state;
	/* Trivy's "10.2.3, 9.0.7, 8.0.5" split by the parser: the same major line wins. */
	const char *const trivy[] = {"10.2.3", "9.0.7", "8.0.5"};
	assert_string_equal(scan_version_pick_fix("npm", "9.0.1", trivy, 3), "9.0.7");
	/* No fix in the line (lodash 2.4.2): the smallest greater one overall. */
	const char *const lodash[] = {"4.17.21", "4.17.5", "3.0.0", "2.0.0"};
	assert_string_equal(scan_version_pick_fix("npm", "2.4.2", lodash, 4), "3.0.0");
	/* Ranges, lists, empty and NULL entries are skipped, and so are older versions. */
	const char *const odd[] = {">=3.0.0",	   "",	   NULL, "3.1.3, 3.0.5", "2.0.0",
				   "3.0.0-beta.0", "3.0.0"};
	assert_string_equal(scan_version_pick_fix("npm", "3.0.0-alpha", odd, 7), "3.0.0-beta.0");
	assert_null(scan_version_pick_fix("npm", "3.0.0", odd, 7));
	assert_null(scan_version_pick_fix("npm", "1.0.0", NULL, 0));
	/* Grype's node binary fix list: installed 22.21.1. */
	const char *const node[] = {"20.20.0", "22.22.0", "24.13.0", "25.3.0"};
	assert_string_equal(scan_version_pick_fix("binary", "22.21.1", node, 4), "22.22.0");
	assert_string_equal(scan_version_pick_fix("binary", "23.0.0", node, 4), "24.13.0");
	/* Go: the "v" does not hide the major line. */
	const char *const go[] = {"2.0.1", "1.12.1", "1.11.9"};
	assert_string_equal(scan_version_pick_fix("go-module", "v1.10.12", go, 3), "1.11.9");
	/* deb: within the epoch; a fix without the epoch is older than 1:4.13. */
	const char *const login[] = {"4.14-1", "1:4.13+dfsg1-4ubuntu3.3", "1:4.15-1"};
	assert_string_equal(scan_version_pick_fix("deb", "1:4.13+dfsg1-4ubuntu3.2", login, 3),
			    "1:4.13+dfsg1-4ubuntu3.3");
	assert_null(scan_version_pick_fix("deb", "1:4.13+dfsg1-4ubuntu3.2", login, 1));
	const char *const ssl[] = {"3.0.18-1~deb12u2"};
	assert_string_equal(scan_version_pick_fix("deb", "3.0.17-1~deb12u3", ssl, 1),
			    "3.0.18-1~deb12u2");
	/* rpm: epoch 1 is greater but another line than the installed (epoch 0) version. */
	const char *const rpm[] = {"1:1.0.2k-19.el7", "0:1.0.2k-19.el7"};
	assert_string_equal(scan_version_pick_fix("rpm", "1.0.2k-16.el7", rpm, 2),
			    "0:1.0.2k-19.el7");
	assert_string_equal(scan_version_pick_fix("rpm", "1.0.2k-16.el7", rpm, 1),
			    "1:1.0.2k-19.el7");
	/* apk: the next revision. */
	const char *const apk[] = {"1.1.1k-r0", "1.1.1d-r0"};
	assert_string_equal(scan_version_pick_fix("apk", "1.1.1b-r1", apk, 2), "1.1.1d-r0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dpkg),	 cmocka_unit_test(test_rpm),
	    cmocka_unit_test(test_apk),		 cmocka_unit_test(test_semver),
	    cmocka_unit_test(test_maven),	 cmocka_unit_test(test_generic),
	    cmocka_unit_test(test_long_numbers), cmocka_unit_test(test_total_order),
	    cmocka_unit_test(test_pick_fix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
