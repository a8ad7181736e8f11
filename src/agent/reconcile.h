/*
 * reconcile.h — the agent's reconciler: makes the Docker Engine hold exactly
 * the containers the control plane assigned to this node (docs/deployments.md
 * "What the agent does").
 *
 * The Engine is the only truth: the containers Odysseus made carry the
 * labels odysseus.container (the ctr id), .tenant, .deployment, .replica and
 * .revision, and odysseus.node (the node id), so an agent that restarts
 * adopts them and never makes a second container for one ctr id. A
 * container without this node's label is never touched: not another
 * program's, not another agent's sharing the Engine.
 *
 * Threads. A reconciler runs two of its own, each with its own Docker
 * handle (a handle serves one thread):
 *   converge  runs every pass: on reconcile_apply, on an event, and every
 *             period_ms as a safety net, always with the last assignments
 *   events    follows the Engine's events for labelled containers (start,
 *             die, oom, health_status), queues them for the heartbeat and
 *             asks for a pass, so a killed container is replaced at once
 * One mutex guards what they share with the callers: the last assignments,
 * the last pass's report and the event queue.
 *
 * Secrets: a container whose assignment names some gets them as files in a
 * tmpfs of its own, bind-mounted read-only at /run/secrets (secretfs.h);
 * the values come from the caller's reconcile_fetch_fn.
 */
#ifndef ODX_AGENT_RECONCILE_H
#define ODX_AGENT_RECONCILE_H

#include <jansson.h>

#define RECONCILE_PERIOD_MS  5000
#define RECONCILE_MAX	     500 /* assignments per node = containers per heartbeat */
#define RECONCILE_EVENTS_MAX 100 /* events per heartbeat; older ones are dropped */
#define RECONCILE_ERR_LEN    160
#define RECONCILE_NODE_MAX   64 /* a node id: 1..64 of [a-z0-9_-] */

struct reconciler;

/*
 * Fetches the bundle of secrets of container ctr (GET
 * /agent/v1/secrets/{ctr}): 0 with *bundle, the answer's JSON object, which
 * the caller releases; or a negative code with a printable reason in err
 * (never a value). Called on the converge thread only, right before a
 * container whose assignment names secrets is created or recreated.
 */
typedef int (*reconcile_fetch_fn)(void *arg, const char *ctr, json_t **bundle,
				  char err[static RECONCILE_ERR_LEN]);

/* Where secrets come from and where their tmpfs go (docs/agent.md "Secrets"). */
struct reconcile_secrets {
	const char *dir; /* <state-dir>/secrets: made 0700 when missing */
	reconcile_fetch_fn fetch;
	void *arg;
};

/*
 * Starts a reconciler for node_id's containers on the Engine at
 * docker_socket (NULL: the default) with a safety-net pass every period_ms
 * (0: RECONCILE_PERIOD_MS). It does nothing to the Engine until the first
 * reconcile_apply: before that it does not know what is wanted (it only
 * lists its containers, to remove the secrets of those that are gone). An
 * unreachable Engine is not an error here; the passes fail and are
 * retried. secrets (copied; NULL: none) is how containers get theirs;
 * without it an assignment naming secrets is reported missing. Returns 0,
 * ODX_EINVAL (node_id), an error of secretfs_init for secrets->dir, or
 * ODX_ENOMEM. Free with reconcile_free.
 */
int reconcile_new(const char *docker_socket, const char *node_id, int period_ms,
		  const struct reconcile_secrets *secrets, struct reconciler **out);
/* Asks the threads to stop; a waiting reconcile_apply returns -ECANCELED. */
void reconcile_stop(struct reconciler *r);
/* Stops and joins the threads and frees r (NULL is fine). */
void reconcile_free(struct reconciler *r);

/*
 * Makes assignments (the "assignments" array of GET /agent/v1/assignments;
 * copied) the desired state and waits for a pass that used it. Returns 0
 * when the pass reached the Engine (per-container failures are in the
 * report), ODX_EUNAVAIL when the Engine cannot be reached (passes go on
 * retrying), ODX_EINVAL when assignments is not an array, ODX_ETOOBIG over
 * RECONCILE_MAX (the previous desired state stays), -ECANCELED on stop.
 */
int reconcile_apply(struct reconciler *r, const json_t *assignments);

/*
 * The heartbeat's "containers" and "events" (docs/deployments.md "Status").
 * *containers: a new array from the last pass, or NULL when no pass has
 * reached the Engine yet or the last one could not. *events: a new array
 * of the events queued since the last call (drained; possibly empty).
 * Returns 0 or ODX_ENOMEM (then both are NULL).
 */
int reconcile_report(struct reconciler *r, json_t **containers, json_t **events);

/*
 * Checks one assignment as strictly as the control plane's API does
 * (fields, types, ranges) and builds the Engine's container spec for it
 * (Config + HostConfig + NetworkingConfig, with every hardening setting;
 * the node label, and the /run/secrets mount when it names secrets, are
 * added when the container is created).
 * Returns 0 with *spec (caller frees), or ODX_EINVAL with the reason in
 * err, or ODX_ENOMEM.
 */
int reconcile_spec(const json_t *assignment, json_t **spec, char err[static RECONCILE_ERR_LEN]);

#endif
