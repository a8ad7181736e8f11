/*
 * metrics.h — Prometheus counters for the HTTP server: requests by route
 * and status, and a latency histogram by route. Lock-free (relaxed atomics);
 * rendered on demand in the text exposition format.
 */
#ifndef ODX_HTTP_METRICS_H
#define ODX_HTTP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "http/server.h"

/* Sizes the tables for a route table (index -1 counts unmatched requests). */
int metrics_init(const struct http_route *routes, size_t n);
void metrics_free(void);
/* Counts one request. */
void metrics_observe(int route_index, int status, int64_t duration_ns);
/* Renders all metrics; caller frees. NULL on allocation failure. */
char *metrics_render(size_t *len);

#endif
