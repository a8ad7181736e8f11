/* health.c — liveness, readiness and metrics. */
#include <stdlib.h>

#include "api/api.h"
#include "http/metrics.h"

void api_healthz(struct http_exchange *ex)
{
	reply_json(ex, 200, json_pack("{s:s}", "status", "ok"));
}

void api_readyz(struct http_exchange *ex)
{
	struct api *api = ex->app;
	if (store_ping(api->store) < 0) {
		reply_error(ex, 503, "unavailable", "state store not available");
		return;
	}
	reply_json(ex, 200, json_pack("{s:s}", "status", "ready"));
}

void api_metrics(struct http_exchange *ex)
{
	size_t len = 0;
	char *text = metrics_render(&len);
	if (!text) {
		reply_error(ex, 500, "internal", "internal error");
		return;
	}
	reply_text(ex, 200, "text/plain; version=0.0.4", text, len);
	free(text);
}
