/*
 * node.h — the node inventory (docs/nodes.md): who the enrolled nodes are,
 * when each was last heard from, what it reported, and whether it is
 * reachable.
 *
 * The rows live in the platform database; heartbeats only touch memory
 * (a heartbeat every few seconds from each of many agents must not cost an
 * fsync each) and are written out in one transaction by node_registry_sweep,
 * which the daemon runs every second. A node is unreachable when nothing
 * came from it for the grace period (3x the heartbeat interval by
 * default); the sweep reports each change between ready and unreachable
 * once, which is the signal the incident engine will use.
 *
 * Thread-safe: one lock around the table.
 */
#ifndef ODX_NODE_H
#define ODX_NODE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "crypto/random.h"
#include "store/store.h"

#define NODE_NAME_MAX 63

struct node_info {
	char id[ID_MAX_LEN];
	char name[NODE_NAME_MAX + 1];
	int64_t enrolled_at;
	int64_t cert_not_after;
	char cert_fingerprint[65];
};

struct node_registry;

/* Loads the live (not revoked) nodes of the platform database. */
int node_registry_open(struct store *s, int64_t grace_ns, struct node_registry **out);
void node_registry_free(struct node_registry *r);

/* Inserts a new node's row in tx (ODX_ECONFLICT: a live node has the name). */
int node_insert(struct store_tx *tx, const struct node_info *n);
/* After the insert committed: the node is known and counts as just seen. */
int node_registry_add(struct node_registry *r, const struct node_info *n, int64_t now_ns);
/* 0 when id is a live node, ODX_ENOTFOUND when it is unknown or revoked. */
int node_registry_live(struct node_registry *r, const char *id);
/* A heartbeat: takes status (the agent's report) and the time; ODX_ENOTFOUND as above. */
int node_registry_heartbeat(struct node_registry *r, const char *id, json_t *status,
			    int64_t now_ns);
/* A renewed certificate: written to the store, then to memory. */
int node_registry_renewed(struct node_registry *r, struct store *s, const char *id,
			  int64_t not_after, const char *fingerprint);
/* Revokes: the row keeps revoked_at, the node is forgotten. ODX_ENOTFOUND if not live. */
int node_registry_revoke(struct node_registry *r, struct store *s, const char *id,
			 struct node_info *out);
/* The public view of up to limit+1 nodes with id > after (API list order). */
int node_registry_list(struct node_registry *r, const char *after, int limit, int64_t now_ns,
		       json_t **items);
int node_registry_get(struct node_registry *r, const char *id, int64_t now_ns, json_t **out);

/* A node as the scheduler sees it: reachable now, and what it said it has. */
struct node_capacity {
	char id[ID_MAX_LEN];
	bool ready;		 /* heard from within the grace period */
	int64_t cpu_millicores;	 /* capacity.cpus x 1000; 0 before the first heartbeat */
	int64_t memory_mb;	 /* capacity.memory_bytes in MiB */
};
/* Up to max live nodes into out (in id order); returns how many. */
size_t node_registry_capacity(struct node_registry *r, int64_t now_ns, struct node_capacity *out,
			      size_t max);

typedef void (*node_change_fn)(const struct node_info *n, bool unreachable, void *arg);
/*
 * Writes heartbeats received since the last sweep to the store, and calls
 * changed for each node whose reachability changed. Returns the store's
 * error, if any (the heartbeats stay pending for the next sweep).
 */
int node_registry_sweep(struct node_registry *r, struct store *s, int64_t now_ns,
			node_change_fn changed, void *arg);

#endif
