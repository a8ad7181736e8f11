/*
 * scheduler.h — places the replicas of every tenant's deployments on nodes
 * and keeps each node's assignment list (docs/deployments.md).
 *
 * The tenants' databases hold the truth (deployments, and a row per
 * container with its node); the scheduler keeps the whole picture in
 * memory: every container with its template, what each node has been
 * given (an assignment revision per node, bumped on every change, which
 * wakes that node's long poll), and what the agents last reported.
 *
 * Placement: a ready node whose free CPU and memory (capacity from its
 * heartbeats minus what is placed on it) fit the replica, preferring the
 * node with the fewest replicas of the same deployment, then the most free
 * memory; never over-committed. No fitting node: the container waits
 * ("pending") and sched_tick tries again. Containers of a node that went
 * unreachable or was revoked are placed elsewhere.
 *
 * Replacing (a new revision, a restart): one replica of a deployment at a
 * time; the old container is removed once its replacement runs.
 *
 * Thread-safe (one lock).
 */
#ifndef ODX_SCHEDULER_H
#define ODX_SCHEDULER_H

#include <jansson.h>
#include <stdint.h>

#include "sched/node.h"
#include "store/store.h"

struct sched;
typedef void (*sched_wake_fn)(const char *node_id, void *arg);

/* Loads every tenant's containers and syncs every deployment. */
int sched_open(struct store *s, struct node_registry *nodes, sched_wake_fn wake, void *arg,
	       struct sched **out);
void sched_free(struct sched *s);

/* After a deployment changed (or was deleted): its containers follow it. */
int sched_sync(struct sched *s, const char *tenant_id, const char *deployment);
/* Every second: unreachable nodes' containers moved, pending ones placed, rollouts
 * advanced, reported states written to the store. */
void sched_tick(struct sched *s, int64_t now_ns);

/* The node's desired state: {"revision": N, "assignments": [...]} (owned). */
int sched_assignments(struct sched *s, const char *node_id, json_t **out);
/* A heartbeat's "containers" report (may be NULL). */
void sched_report(struct sched *s, const char *node_id, const json_t *containers);

/* The tenant's containers (of one deployment when deployment is not NULL) as JSON. */
int sched_containers(struct sched *s, const char *tenant_id, const char *deployment,
		     json_t **items);
int sched_container(struct sched *s, const char *tenant_id, const char *id, json_t **out);
/* The node a tenant's container is placed on ("" while pending). */
int sched_container_node(struct sched *s, const char *tenant_id, const char *id, char *node,
			 size_t size);
/*
 * For the node's own container id: its tenant, deployment and the secret
 * names its template lists (owned). ODX_ENOTFOUND for no such container,
 * ODX_EFORBIDDEN for one placed on another node.
 */
int sched_container_secrets(struct sched *s, const char *node_id, const char *id,
			    char tenant[static ID_MAX_LEN], char deployment[static 64],
			    json_t **names);
/* The agent of a container's node received `version` of secret name for it. */
void sched_note_delivery(struct sched *s, const char *id, const char *name, int64_t version);
/*
 * The oldest version of a secret that an existing container using it was
 * given (0: no container uses it). A container whose delivery is not known
 * (made before a restart, or not made yet) counts as holding version 1:
 * deliveries are remembered in memory only, so nothing is revoked on a guess.
 */
int64_t sched_oldest_delivered(struct sched *s, const char *tenant_id, const char *name);
/*
 * Who holds which version of a secret: [{"deployment", "version" (null: not
 * delivered yet, or before a restart), "containers"}] — a rotation's progress.
 */
json_t *sched_secret_in_use(struct sched *s, const char *tenant_id, const char *name);
/* {"desired": N, "running": R, "pending": P} of a deployment. */
json_t *sched_deployment_status(struct sched *s, const char *tenant_id, const char *deployment);
/* Desired state of one container: "running" or "stopped"; or "replace" (a restart). */
int sched_container_set(struct sched *s, const char *tenant_id, const char *id, const char *op);

#endif
