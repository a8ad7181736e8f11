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

/*
 * Adds a table for a server's route table (index -1 counts requests that
 * matched no route, under the route name `unmatched`); returns its handle
 * (>= 0) for metrics_observe. Every server of the process renders together.
 */
int metrics_init(const struct http_route *routes, size_t n, const char *unmatched);
void metrics_free(int table);
/* Counts one request. */
void metrics_observe(int table, int route_index, int status, int64_t duration_ns);
/* Renders all metrics of all tables; caller frees. NULL on allocation failure. */
char *metrics_render(size_t *len);

#endif
