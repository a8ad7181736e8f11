/*
 * testdata.h — reads a file of tests/data (real scanner reports; see
 * tests/data/scanners/README.md) for a unit test: from $ODX_TESTDATA, which
 * meson test sets, or, run by hand, from the folder beside tests/unit.
 *
 * Header-only, static functions, included after <cmocka.h>: each
 * tests/unit/test-<module>.c is an executable of its own.
 */
#ifndef ODX_TEST_TESTDATA_H
#define ODX_TEST_TESTDATA_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole of tests/data/<rel>, NUL-terminated (free()); fails the test when it cannot. */
static inline char *testdata_read(const char *rel, size_t *len)
{
	const char *root = getenv("ODX_TESTDATA");
	char path[4096];
	if (root)
		snprintf(path, sizeof(path), "%s/%s", root, rel);
	else
		snprintf(path, sizeof(path), "%.*s/../data/%s",
			 (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__, rel);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	char *buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

#endif
