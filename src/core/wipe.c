/* wipe.c — see wipe.h. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "core/wipe.h"

void *wipe_malloc(size_t n)
{
	return malloc(n != 0 ? n : 1);
}

void wipe_free(void *p)
{
	if (p == NULL)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

void *wipe_realloc(void *p, size_t n)
{
	if (p == NULL)
		return wipe_malloc(n);
	size_t old = malloc_usable_size(p);
	void *q = wipe_malloc(n);
	if (q == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	wipe_free(p);
	return q;
}

char *wipe_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = wipe_malloc(n);
	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

void *wipe_calloc(size_t nmemb, size_t size)
{
	return calloc(nmemb != 0 ? nmemb : 1, size != 0 ? size : 1);
}
