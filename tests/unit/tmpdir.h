/*
 * tmpdir.h — a private temporary directory for a unit test's fixture: made
 * with mkdtemp(3) as /tmp/odx-test-<name>-XXXXXX and removed with all it
 * holds by nftw(3) (depth first, links not followed).
 *
 * Header-only, static functions: each tests/unit/test-<module>.c is an
 * executable of its own, so there is nothing to link.
 */
#ifndef ODX_TEST_TMPDIR_H
#define ODX_TEST_TMPDIR_H

#include <ftw.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* nftw callback: removes one entry (files before their directory). */
static inline int tmpdir_rm_entry(const char *path, const struct stat *sb, int flag,
				  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Makes a new directory /tmp/odx-test-<name>-XXXXXX and leaves its path in
 * buf (n bytes). 0, or -1 if the path does not fit or mkdtemp fails. */
static inline int tmpdir_make(char *buf, size_t n, const char *name)
{
	int len = snprintf(buf, n, "/tmp/odx-test-%s-XXXXXX", name);
	if (len < 0 || (size_t)len >= n)
		return -1;
	return mkdtemp(buf) ? 0 : -1;
}

/* Removes dir and everything in it. */
static inline void tmpdir_remove(const char *dir)
{
	nftw(dir, tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
