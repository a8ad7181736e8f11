/*
 * docker.h — a small client of the Docker Engine API over its unix socket
 * (libcurl, CURLOPT_UNIX_SOCKET_PATH), API version pinned (DOCKER_API).
 *
 * Only what the agent needs: ping and info, images (inspect, pull), the
 * containers Odysseus creates (create with a full hardened spec, start,
 * stop, kill, remove, inspect, list by label, logs), networks (per-tenant
 * bridge networks), and the events stream. Every call is synchronous and
 * bounded by a timeout; answers are JSON (jansson) owned by the caller.
 *
 * Errors: ODX_ENOTFOUND (404: no such container/image/network),
 * ODX_ECONFLICT (409), ODX_EINVAL (400, with the engine's message logged),
 * ODX_EUNAVAIL (the engine cannot be reached), ODX_EIO (anything else).
 * One struct docker per thread: a handle is not thread-safe.
 *
 * Also: 403 (a network in use or predefined) is ODX_ECONFLICT too; 304
 * (start of a running container, stop of a stopped one) is success; an
 * answer over its cap (16 MiB of JSON, 1 MiB per streamed object) is
 * ODX_ETOOBIG; an answer that is not what the API promises is ODX_EIO; an
 * argument refused before sending (a name, ref or signal outside the
 * engine's own charset) is ODX_EINVAL. curl_global_init() must have run
 * (client_global_init() does it) before the first docker_open().
 */
#ifndef ODX_DOCKER_H
#define ODX_DOCKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DOCKER_API	      "v1.41" /* Docker 20.10 (Debian 12's docker.io) and later */
#define DOCKER_SOCKET_DEFAULT "/var/run/docker.sock"

struct docker;

/* socket NULL: DOCKER_SOCKET_DEFAULT. timeout_ms bounds each call (0: 30 s). */
int docker_open(const char *socket, int timeout_ms, struct docker **out);
void docker_close(struct docker *d);
/* The engine's last error message for the last failed call ("" if none). */
const char *docker_last_error(const struct docker *d);

int docker_ping(struct docker *d);
/* GET /info. */
int docker_info(struct docker *d, json_t **out);

/* GET /images/{ref}/json. */
int docker_image_inspect(struct docker *d, const char *ref, json_t **out);
/*
 * POST /images/create?fromImage=&tag= (waits for the pull to end; bounded by
 * 15 min, or by 2 min without progress, not by the handle's timeout). A tag
 * missing from ref means "latest". A progress object with "error" ends it:
 * ODX_ENOTFOUND (no such image) or ODX_EINVAL, the message in last_error.
 */
int docker_image_pull(struct docker *d, const char *ref);

/* POST /containers/create?name= with spec (the Engine's ContainerConfig + HostConfig +
 * NetworkingConfig JSON); writes the new id (64 hex + NUL). */
int docker_container_create(struct docker *d, const char *name, const json_t *spec,
			    char id[static 65]);
int docker_container_start(struct docker *d, const char *id);
/* POST /containers/{id}/stop?t=timeout_s */
int docker_container_stop(struct docker *d, const char *id, int timeout_s);
int docker_container_kill(struct docker *d, const char *id, const char *signal);
/* DELETE /containers/{id}?force=1&v=1 */
int docker_container_remove(struct docker *d, const char *id);
/* GET /containers/{id}/json */
int docker_container_inspect(struct docker *d, const char *id, json_t **out);
/* GET /containers/json?all=1&filters={"label":[label]} (label "key" or "key=value"). */
int docker_container_list(struct docker *d, const char *label, json_t **out);
/*
 * GET /containers/{id}/logs?stdout=1&stderr=1&tail=N&timestamps=0, demultiplexed
 * (the 8-byte frame headers removed) into a malloc'd buffer of at most max bytes
 * (the newest ones when there are more). tail < 0: all lines. *out is also
 * NUL-terminated (max + 1 bytes at most); the caller frees it.
 */
int docker_container_logs(struct docker *d, const char *id, int tail, size_t max, char **out,
			  size_t *len);
/* The same, only lines written at or after since_s (unix seconds; 0: all). */
int docker_container_logs_since(struct docker *d, const char *id, int tail, int64_t since_s,
				size_t max, char **out, size_t *len);

/* GET /containers/{id}/stats?stream=false&one-shot=1 (one sample). */
int docker_container_stats(struct docker *d, const char *id, json_t **out);

/* POST /networks/create {Name, Driver: bridge, Labels, Options}; writes the id. */
int docker_network_create(struct docker *d, const char *name, const json_t *labels, bool internal,
			  char id[static 65]);
/* GET /networks/{name} */
int docker_network_inspect(struct docker *d, const char *name, json_t **out);
int docker_network_remove(struct docker *d, const char *name);

/*
 * GET /events?filters=... streamed: calls cb with each event object until cb
 * returns non-zero (returned), *stop becomes true (checked at least every
 * 500 ms; returns 0), or the stream breaks (ODX_EUNAVAIL). filters is the
 * Engine's filters JSON (e.g. {"type":["container"],"label":["odysseus.tenant"]}),
 * NULL for all.
 */
typedef int (*docker_event_fn)(const json_t *event, void *arg);
int docker_events(struct docker *d, const json_t *filters, const volatile bool *stop,
		  docker_event_fn cb, void *arg);

#endif
