/*
 * wipe.h — allocators that zero every block before it returns to the heap.
 *
 * jansson and libcurl hold request bodies (passwords, tokens), headers and
 * answers (token pairs, certificates) in heap
 * blocks they free themselves; the CLI and the agent install these for both
 * (json_set_alloc_funcs, curl_global_init_mem) so no secret lingers in freed
 * memory.
 */
#ifndef ODX_WIPE_H
#define ODX_WIPE_H

#include <stddef.h>

void *wipe_malloc(size_t n);
void wipe_free(void *p);
void *wipe_realloc(void *p, size_t n);
char *wipe_strdup(const char *s);
void *wipe_calloc(size_t nmemb, size_t size);

#endif
