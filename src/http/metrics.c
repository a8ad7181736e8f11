/* metrics.c — see metrics.h. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "http/metrics.h"

static const int statuses[] = {200, 201, 204, 400, 401, 403, 404, 405,
			       409, 413, 415, 422, 429, 500, 503, 0 /* other */};
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
				 0.05,	 0.1,	0.25,	0.5,   1.0,  2.5};
#define NBUCKET (sizeof(buckets) / sizeof(buckets[0]))

struct route_metrics {
	const char *method, *pattern;
	atomic_uint_fast64_t by_status[NSTATUS];
	atomic_uint_fast64_t bucket[NBUCKET + 1]; /* last: +Inf */
	atomic_uint_fast64_t sum_ns;
};

#define MAX_TABLES 4 /* one per server: the public API, the agent API */

/* [0] = unmatched, [i+1] = route i. Set up before the servers start, read after. */
static struct {
	struct route_metrics *rows;
	size_t n;
} tables[MAX_TABLES];

int metrics_init(const struct http_route *routes, size_t n, const char *unmatched)
{
	int t = 0;
	while (t < MAX_TABLES && tables[t].rows)
		t++;
	if (t == MAX_TABLES)
		return ODX_EINVAL;
	struct route_metrics *rows = calloc(n + 1, sizeof(*rows));
	if (!rows)
		return ODX_ENOMEM;
	rows[0].method = "";
	rows[0].pattern = unmatched;
	for (size_t i = 0; i < n; i++) {
		rows[i + 1].method = http_method_name(routes[i].method);
		rows[i + 1].pattern = routes[i].pattern;
	}
	tables[t].rows = rows;
	tables[t].n = n + 1;
	return t;
}

void metrics_free(int t)
{
	if (t < 0 || t >= MAX_TABLES)
		return;
	free(tables[t].rows);
	tables[t].rows = NULL;
	tables[t].n = 0;
}

void metrics_observe(int t, int route_index, int status, int64_t duration_ns)
{
	if (t < 0 || t >= MAX_TABLES || !tables[t].rows || route_index + 1 < 0 ||
	    (size_t)(route_index + 1) >= tables[t].n)
		return;
	struct route_metrics *m = &tables[t].rows[route_index + 1];
	size_t s = NSTATUS - 1;
	for (size_t i = 0; i + 1 < NSTATUS; i++)
		if (statuses[i] == status)
			s = i;
	atomic_fetch_add_explicit(&m->by_status[s], 1, memory_order_relaxed);
	double secs = (double)duration_ns / 1e9;
	size_t b = NBUCKET;
	for (size_t i = 0; i < NBUCKET; i++) {
		if (secs <= buckets[i]) {
			b = i;
			break;
		}
	}
	atomic_fetch_add_explicit(&m->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->sum_ns, (uint64_t)(duration_ns > 0 ? duration_ns : 0),
				  memory_order_relaxed);
}

char *metrics_render(size_t *len)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	if (!f)
		return NULL;
	fputs("# HELP odysseus_http_requests_total HTTP requests by route and status.\n"
	      "# TYPE odysseus_http_requests_total counter\n",
	      f);
	for (int t = 0; t < MAX_TABLES; t++)
	for (size_t r = 0; r < tables[t].n; r++) {
		const struct route_metrics *row = &tables[t].rows[r];
		for (size_t s = 0; s < NSTATUS; s++) {
			uint64_t v =
			    atomic_load_explicit(&row->by_status[s], memory_order_relaxed);
			if (!v)
				continue;
			char code[8];
			if (statuses[s])
				snprintf(code, sizeof(code), "%d", statuses[s]);
			else
				snprintf(code, sizeof(code), "other");
			fprintf(f,
				"odysseus_http_requests_total{method=\"%s\",route=\"%s\",status=\"%"
				"s\"} %llu\n",
				row->method, row->pattern, code, (unsigned long long)v);
		}
	}
	fputs("# HELP odysseus_http_request_duration_seconds Time from request to reply.\n"
	      "# TYPE odysseus_http_request_duration_seconds histogram\n",
	      f);
	for (int t = 0; t < MAX_TABLES; t++)
	for (size_t r = 0; r < tables[t].n; r++) {
		const struct route_metrics *row = &tables[t].rows[r];
		uint64_t cum = 0;
		for (size_t b = 0; b <= NBUCKET; b++) {
			cum += atomic_load_explicit(&row->bucket[b], memory_order_relaxed);
			char le[16];
			if (b < NBUCKET)
				snprintf(le, sizeof(le), "%g", buckets[b]);
			else
				snprintf(le, sizeof(le), "+Inf");
			fprintf(f,
				"odysseus_http_request_duration_seconds_bucket{method=\"%s\",route="
				"\"%s\",le=\"%s\"} %llu\n",
				row->method, row->pattern, le, (unsigned long long)cum);
		}
		fprintf(
		    f,
		    "odysseus_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.9f\n",
		    row->method, row->pattern,
		    (double)atomic_load_explicit(&row->sum_ns, memory_order_relaxed) / 1e9);
		fprintf(f,
			"odysseus_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} "
			"%llu\n",
			row->method, row->pattern, (unsigned long long)cum);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len = size;
	return buf;
}
