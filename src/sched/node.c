/* node.c — see node.h. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jsonx.h"
#include "core/timeutil.h"
#include "sched/node.h"

struct node {
	struct node_info info;
	int64_t last_seen;
	json_t *status; /* the last heartbeat's report; NULL before the first */
	bool dirty;	/* heartbeat not yet written to the store */
	bool unreachable;
};

struct node_registry {
	pthread_mutex_t lock;
	int64_t grace_ns;
	struct node *nodes; /* sorted by id: list order, and bsearch */
	size_t n, cap;
};

static int by_id(const void *key, const void *elem)
{
	return strcmp(key, ((const struct node *)elem)->info.id);
}

static struct node *find(struct node_registry *r, const char *id)
{
	return r->n ? bsearch(id, r->nodes, r->n, sizeof(*r->nodes), by_id) : NULL;
}

/* Inserts in id order; the caller holds the lock. */
static int insert_sorted(struct node_registry *r, const struct node *nd)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		struct node *g = realloc(r->nodes, cap * sizeof(*g));
		if (!g)
			return ODX_ENOMEM;
		r->nodes = g;
		r->cap = cap;
	}
	size_t i = r->n;
	while (i > 0 && strcmp(r->nodes[i - 1].info.id, nd->info.id) > 0)
		i--;
	memmove(&r->nodes[i + 1], &r->nodes[i], (r->n - i) * sizeof(*r->nodes));
	r->nodes[i] = *nd;
	r->n++;
	return 0;
}

static int load_row(struct store_stmt *q, void *arg)
{
	struct node_registry *r = arg;
	struct node nd = {0};
	store_col_copy(q, 0, nd.info.id, sizeof(nd.info.id));
	store_col_copy(q, 1, nd.info.name, sizeof(nd.info.name));
	nd.info.enrolled_at = store_col_int(q, 2);
	nd.info.cert_not_after = store_col_int(q, 3);
	store_col_copy(q, 4, nd.info.cert_fingerprint, sizeof(nd.info.cert_fingerprint));
	nd.last_seen = store_col_is_null(q, 5) ? nd.info.enrolled_at : store_col_int(q, 5);
	if (!store_col_is_null(q, 6))
		nd.status = json_loads(store_col_text(q, 6), 0, NULL);
	int rc = insert_sorted(r, &nd);
	if (rc < 0)
		json_decref(nd.status);
	return rc;
}

int node_registry_open(struct store *s, int64_t grace_ns, struct node_registry **out)
{
	struct node_registry *r = calloc(1, sizeof(*r));
	if (!r)
		return ODX_ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	r->grace_ns = grace_ns;
	int rc = store_read(s, NULL,
			    "SELECT id, name, enrolled_at, cert_not_after, cert_fingerprint, "
			    "last_seen_at, status FROM nodes WHERE revoked_at IS NULL",
			    NULL, 0, load_row, r);
	if (rc < 0) {
		node_registry_free(r);
		return rc;
	}
	/* A node silent through a restart is judged by its last heartbeat, not by the start. */
	int64_t now = time_now_ns();
	for (size_t i = 0; i < r->n; i++)
		r->nodes[i].unreachable = now - r->nodes[i].last_seen > grace_ns;
	*out = r;
	return 0;
}

void node_registry_free(struct node_registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		json_decref(r->nodes[i].status);
	free(r->nodes);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int node_insert(struct store_tx *tx, const struct node_info *n)
{
	int rc = store_exec(tx,
			    "INSERT INTO nodes (id, name, enrolled_at, cert_not_after, "
			    "cert_fingerprint) VALUES (?, ?, ?, ?, ?)",
			    STORE_ARGS(S_TEXT(n->id), S_TEXT(n->name), S_INT(n->enrolled_at),
				       S_INT(n->cert_not_after), S_TEXT(n->cert_fingerprint)));
	return rc < 0 ? rc : 0;
}

int node_registry_add(struct node_registry *r, const struct node_info *n, int64_t now_ns)
{
	struct node nd = {.info = *n, .last_seen = now_ns};
	pthread_mutex_lock(&r->lock);
	int rc = find(r, n->id) ? ODX_ECONFLICT : insert_sorted(r, &nd);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int node_registry_live(struct node_registry *r, const char *id)
{
	pthread_mutex_lock(&r->lock);
	int rc = find(r, id) ? 0 : ODX_ENOTFOUND;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int node_registry_heartbeat(struct node_registry *r, const char *id, json_t *status,
			    int64_t now_ns)
{
	pthread_mutex_lock(&r->lock);
	struct node *nd = find(r, id);
	if (nd) {
		json_decref(nd->status);
		nd->status = json_incref(status);
		nd->last_seen = now_ns;
		nd->dirty = true;
	}
	pthread_mutex_unlock(&r->lock);
	return nd ? 0 : ODX_ENOTFOUND;
}

int node_registry_renewed(struct node_registry *r, struct store *s, const char *id,
			  int64_t not_after, const char *fingerprint)
{
	int rc = store_write(s, NULL,
			     "UPDATE nodes SET cert_not_after = ?, cert_fingerprint = ? "
			     "WHERE id = ? AND revoked_at IS NULL",
			     STORE_ARGS(S_INT(not_after), S_TEXT(fingerprint), S_TEXT(id)));
	if (rc == 0)
		return ODX_ENOTFOUND;
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&r->lock);
	struct node *nd = find(r, id);
	if (nd) {
		nd->info.cert_not_after = not_after;
		snprintf(nd->info.cert_fingerprint, sizeof(nd->info.cert_fingerprint), "%s",
			 fingerprint);
	}
	pthread_mutex_unlock(&r->lock);
	return 0;
}

int node_registry_revoke(struct node_registry *r, struct store *s, const char *id,
			 struct node_info *out)
{
	int rc = store_write(s, NULL,
			     "UPDATE nodes SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
			     STORE_ARGS(S_INT(time_now_ns()), S_TEXT(id)));
	if (rc == 0)
		return ODX_ENOTFOUND;
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&r->lock);
	struct node *nd = find(r, id);
	if (nd) {
		*out = nd->info;
		json_decref(nd->status);
		size_t i = (size_t)(nd - r->nodes);
		memmove(nd, nd + 1, (r->n - i - 1) * sizeof(*nd));
		r->n--;
	}
	pthread_mutex_unlock(&r->lock);
	return nd ? 0 : ODX_ENOTFOUND;
}

/* The public view of one node (docs/nodes.md); the caller holds the lock. */
static json_t *node_json(const struct node_registry *r, const struct node *nd, int64_t now)
{
	char enrolled[TIME_RFC3339_LEN], seen[TIME_RFC3339_LEN], exp[TIME_RFC3339_LEN];
	time_format_rfc3339(nd->info.enrolled_at, enrolled);
	time_format_rfc3339(nd->last_seen, seen);
	time_format_rfc3339(nd->info.cert_not_after, exp);
	json_t *st = nd->status;
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "id", nd->info.id, "name",
			      nd->info.name, "state",
			      now - nd->last_seen > r->grace_ns ? "unreachable" : "ready",
			      "enrolled_at", enrolled, "last_seen_at", seen, "certificate",
			      "not_after", exp, "fingerprint", nd->info.cert_fingerprint);
	static const char *const fields[] = {"agent_version", "capacity", "usage", "docker_root"};
	for (size_t i = 0; o && i < sizeof(fields) / sizeof(fields[0]); i++) {
		json_t *v = st ? json_object_get(st, fields[i]) : NULL;
		json_object_set_new(o, fields[i], v ? json_incref(v) : json_null());
	}
	return o;
}

int node_registry_list(struct node_registry *r, const char *after, int limit, int64_t now_ns,
		       json_t **items)
{
	json_t *a = json_array();
	if (!a)
		return ODX_ENOMEM;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n && json_array_size(a) < (size_t)limit + 1; i++)
		if (!after || strcmp(r->nodes[i].info.id, after) > 0)
			json_array_append_new(a, node_json(r, &r->nodes[i], now_ns));
	pthread_mutex_unlock(&r->lock);
	*items = a;
	return 0;
}

int node_registry_get(struct node_registry *r, const char *id, int64_t now_ns, json_t **out)
{
	pthread_mutex_lock(&r->lock);
	struct node *nd = find(r, id);
	*out = nd ? node_json(r, nd, now_ns) : NULL;
	pthread_mutex_unlock(&r->lock);
	return nd ? (*out ? 0 : ODX_ENOMEM) : ODX_ENOTFOUND;
}

size_t node_registry_capacity(struct node_registry *r, int64_t now_ns, struct node_capacity *out,
			      size_t max)
{
	pthread_mutex_lock(&r->lock);
	size_t k = 0;
	for (size_t i = 0; i < r->n && k < max; i++, k++) {
		const struct node *nd = &r->nodes[i];
		json_t *cap = nd->status ? json_object_get(nd->status, "capacity") : NULL;
		out[k] = (struct node_capacity){
		    .ready = now_ns - nd->last_seen <= r->grace_ns && cap,
		    .cpu_millicores = json_integer_value(json_object_get(cap, "cpus")) * 1000,
		    .memory_mb = json_integer_value(json_object_get(cap, "memory_bytes")) >> 20,
		};
		memcpy(out[k].id, nd->info.id, sizeof(out[k].id));
	}
	pthread_mutex_unlock(&r->lock);
	return k;
}

struct seen {
	char id[ID_MAX_LEN];
	int64_t at;
	char *status;
};

/* Copies the dirty heartbeats out under the lock, so the store write runs without it. */
static size_t take_dirty(struct node_registry *r, struct seen **out)
{
	size_t k = 0;
	*out = NULL;
	for (size_t i = 0; i < r->n; i++)
		k += r->nodes[i].dirty;
	if (!k || !(*out = calloc(k, sizeof(**out))))
		return 0;
	k = 0;
	for (size_t i = 0; i < r->n; i++) {
		struct node *nd = &r->nodes[i];
		if (!nd->dirty)
			continue;
		memcpy((*out)[k].id, nd->info.id, sizeof(nd->info.id));
		(*out)[k].at = nd->last_seen;
		(*out)[k].status = nd->status ? jsonx_dump(nd->status) : NULL;
		nd->dirty = false;
		k++;
	}
	return k;
}

static int write_seen(struct store *s, const struct seen *v, size_t k)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, NULL, STORE_WRITE, &tx);
	for (size_t i = 0; rc >= 0 && i < k; i++)
		rc = store_exec(tx, "UPDATE nodes SET last_seen_at = ?, status = ? WHERE id = ?",
				STORE_ARGS(S_INT(v[i].at),
					   v[i].status ? S_TEXT(v[i].status) : S_NULL,
					   S_TEXT(v[i].id)));
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	return store_tx_commit(tx);
}

int node_registry_sweep(struct node_registry *r, struct store *s, int64_t now_ns,
			node_change_fn changed, void *arg)
{
	struct node_info flipped[32];
	bool to_unreachable[32];
	size_t nf = 0;
	struct seen *v;
	pthread_mutex_lock(&r->lock);
	size_t k = take_dirty(r, &v);
	for (size_t i = 0; i < r->n; i++) {
		struct node *nd = &r->nodes[i];
		bool u = now_ns - nd->last_seen > r->grace_ns;
		if (u == nd->unreachable || nf == sizeof(flipped) / sizeof(flipped[0]))
			continue; /* more than 32 at once: the rest on the next sweep */
		nd->unreachable = u;
		flipped[nf] = nd->info;
		to_unreachable[nf++] = u;
	}
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; changed && i < nf; i++)
		changed(&flipped[i], to_unreachable[i], arg);
	int rc = k ? write_seen(s, v, k) : 0;
	if (rc < 0) {
		/* Keep them for the next sweep. */
		pthread_mutex_lock(&r->lock);
		for (size_t i = 0; i < k; i++) {
			struct node *nd = find(r, v[i].id);
			if (nd)
				nd->dirty = true;
		}
		pthread_mutex_unlock(&r->lock);
	}
	for (size_t i = 0; i < k; i++)
		free(v[i].status);
	free(v);
	return rc;
}
