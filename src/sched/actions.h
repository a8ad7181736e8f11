/*
 * actions.h — requests the control plane makes of an agent and waits for
 * (container logs), carried the only way the network allows: the agent
 * dials out, long-polls GET /agent/v1/actions, does the work and posts the
 * result (docs/deployments.md, "Actions").
 *
 * A caller (an API request on a worker thread) queues an action for a node
 * and sleeps until the result comes or its timeout ends; an action nobody
 * took by then is dropped. Results are matched by action id and node: a
 * node can answer only its own actions. Thread-safe.
 */
#ifndef ODX_ACTIONS_H
#define ODX_ACTIONS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define ACTIONS_OUTPUT_MAX (512 * 1024) /* base64 in a body under 1 MiB */

struct actions;
typedef void (*actions_wake_fn)(const char *node_id, void *arg);

int actions_new(actions_wake_fn wake, void *arg, struct actions **out);
void actions_free(struct actions *a);

/*
 * Asks node for the last `tail` lines (since `since_s` unix seconds when > 0)
 * of container's logs and waits up to timeout_ms. 0 with a malloc'd text,
 * ODX_EUNAVAIL when the agent did not answer in time, ODX_ENOTFOUND or
 * ODX_EIO when it answered with an error.
 */
int actions_logs(struct actions *a, const char *node_id, const char *container, int tail,
		 int64_t since_s, int timeout_ms, char **text, size_t *len);
/* The node's waiting actions, handed out once: [{id, type, container, tail, since}]. */
json_t *actions_take(struct actions *a, const char *node_id);
/* The agent's answer: ok with output, or error ("not_found" or another code). */
int actions_result(struct actions *a, const char *node_id, const char *id, const char *error,
		   const void *output, size_t len);

#endif
