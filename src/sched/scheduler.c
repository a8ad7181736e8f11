/* scheduler.c — see scheduler.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "sched/deployment.h"
#include "sched/scheduler.h"

#define MAX_NODES   1024
#define MAX_TOUCHED 64

struct ctr {
	char id[ID_MAX_LEN], tenant[ID_MAX_LEN], deployment[DEPLOY_NAME_MAX + 1];
	int64_t replica, revision, generation, created_at;
	char node[ID_MAX_LEN]; /* "" = pending */
	bool stopped;	       /* desired: exists, does not run */
	bool retiring;	       /* replaced: removed once its successor runs */
	bool dirty;	       /* its row needs writing */
	int64_t cpu, mem, storage;
	json_t *template;
	/* as the agent last reported it */
	char state[16], docker_id[65];
	int64_t exit_code, restarts, started_at;
	json_t *delivered;    /* {"secret": version} handed to its node, NULL: none */
	int64_t memory_bytes; /* -1: not reported */
	double cpu_percent;   /* < 0: not reported */
};

struct noderev {
	char id[ID_MAX_LEN];
	int64_t revision;
};

struct gone {
	char id[ID_MAX_LEN], tenant[ID_MAX_LEN];
};

struct sched {
	pthread_mutex_t lock;
	struct store *store;
	struct node_registry *nodes;
	sched_wake_fn wake;
	void *arg;
	struct ctr *c;
	size_t n, cap;
	struct noderev *revs;
	size_t nrev, caprev;
	struct gone *gone; /* rows to delete at the next write */
	size_t ngone, capgone;
	char touched[MAX_TOUCHED][ID_MAX_LEN];
	size_t ntouched;
	bool touched_all;
	struct node_capacity caps[MAX_NODES];
	size_t ncaps;
};

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 32;
	while (n < need)
		n *= 2;
	void *g = realloc(*p, n * size);
	if (!g)
		return ODX_ENOMEM;
	*p = g;
	*cap = n;
	return 0;
}

/* ---- nodes: revisions and wake-ups ------------------------------------------------ */

static struct noderev *rev_of(struct sched *s, const char *node)
{
	for (size_t i = 0; i < s->nrev; i++)
		if (strcmp(s->revs[i].id, node) == 0)
			return &s->revs[i];
	if (grow((void **)&s->revs, &s->caprev, s->nrev + 1, sizeof(*s->revs)) < 0)
		return NULL;
	struct noderev *r = &s->revs[s->nrev++];
	snprintf(r->id, sizeof(r->id), "%s", node);
	r->revision = 1;
	return r;
}

/* The node's assignments changed: a new revision, and a wake-up after the lock. */
static void touch(struct sched *s, const char *node)
{
	if (!node[0])
		return;
	struct noderev *r = rev_of(s, node);
	if (r)
		r->revision++;
	for (size_t i = 0; i < s->ntouched; i++)
		if (strcmp(s->touched[i], node) == 0)
			return;
	if (s->ntouched < MAX_TOUCHED)
		snprintf(s->touched[s->ntouched++], ID_MAX_LEN, "%s", node);
	else
		s->touched_all = true;
}

static void unlock_and_wake(struct sched *s)
{
	char nodes[MAX_TOUCHED][ID_MAX_LEN];
	size_t n = s->ntouched;
	bool all = s->touched_all;
	memcpy(nodes, s->touched, n * ID_MAX_LEN);
	s->ntouched = 0;
	s->touched_all = false;
	pthread_mutex_unlock(&s->lock);
	if (!s->wake)
		return;
	if (all)
		s->wake(NULL, s->arg);
	else
		for (size_t i = 0; i < n; i++)
			s->wake(nodes[i], s->arg);
}

/* ---- placement -------------------------------------------------------------------- */

static const struct node_capacity *cap_of(const struct sched *s, const char *node)
{
	for (size_t i = 0; i < s->ncaps; i++)
		if (strcmp(s->caps[i].id, node) == 0)
			return &s->caps[i];
	return NULL;
}

/* Places c on the best node with room; leaves it pending when none has. */
static void place(struct sched *s, struct ctr *c)
{
	const struct node_capacity *best = NULL;
	int64_t best_same = 0, best_free = 0;
	for (size_t i = 0; i < s->ncaps; i++) {
		const struct node_capacity *nd = &s->caps[i];
		if (!nd->ready)
			continue;
		int64_t cpu = 0, mem = 0, same = 0;
		for (size_t j = 0; j < s->n; j++) {
			const struct ctr *o = &s->c[j];
			if (strcmp(o->node, nd->id) != 0)
				continue;
			cpu += o->cpu;
			mem += o->mem;
			same += strcmp(o->tenant, c->tenant) == 0 &&
				strcmp(o->deployment, c->deployment) == 0;
		}
		int64_t free_mem = nd->memory_mb - mem;
		if (nd->cpu_millicores - cpu < c->cpu || free_mem < c->mem)
			continue; /* never over-commit */
		if (!best || same < best_same || (same == best_same && free_mem > best_free)) {
			best = nd;
			best_same = same;
			best_free = free_mem;
		}
	}
	if (!best)
		return;
	snprintf(c->node, sizeof(c->node), "%s", best->id);
	c->dirty = true;
	touch(s, c->node);
}

/* ---- containers ------------------------------------------------------------------ */

static struct ctr *ctr_new(struct sched *s, const char *tenant, const struct deployment *d,
			   int64_t replica)
{
	if (grow((void **)&s->c, &s->cap, s->n + 1, sizeof(*s->c)) < 0)
		return NULL;
	struct ctr *c = &s->c[s->n];
	memset(c, 0, sizeof(*c));
	if (random_id("ctr", c->id) < 0)
		return NULL;
	s->n++;
	snprintf(c->tenant, sizeof(c->tenant), "%s", tenant);
	snprintf(c->deployment, sizeof(c->deployment), "%s", d->name);
	c->replica = replica;
	c->revision = d->revision;
	c->generation = d->restart_generation;
	c->created_at = time_now_ns();
	json_t *res = json_object_get(d->template, "resources");
	c->cpu = json_integer_value(json_object_get(res, "cpu_millicores"));
	c->mem = json_integer_value(json_object_get(res, "memory_mb"));
	c->storage = json_integer_value(json_object_get(res, "storage_mb"));
	c->template = json_incref(d->template);
	snprintf(c->state, sizeof(c->state), "pending");
	c->memory_bytes = -1;
	c->cpu_percent = -1;
	c->dirty = true;
	place(s, c);
	return c;
}

/* Forgets c (swapped with the last); its row is deleted at the next write. */
static void ctr_remove(struct sched *s, size_t i)
{
	struct ctr *c = &s->c[i];
	touch(s, c->node);
	if (grow((void **)&s->gone, &s->capgone, s->ngone + 1, sizeof(*s->gone)) == 0) {
		struct gone *g = &s->gone[s->ngone++];
		memcpy(g->id, c->id, sizeof(g->id));
		memcpy(g->tenant, c->tenant, sizeof(g->tenant));
	}
	json_decref(c->template);
	json_decref(c->delivered);
	s->c[i] = s->c[--s->n];
}

static bool of(const struct ctr *c, const char *tenant, const char *deployment)
{
	return strcmp(c->tenant, tenant) == 0 && strcmp(c->deployment, deployment) == 0;
}

/* ---- the store ---------------------------------------------------------------------- */

static int write_rows(struct sched *s, const char *tenant)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s->store, tenant, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	for (size_t i = 0; rc >= 0 && i < s->ngone; i++)
		if (strcmp(s->gone[i].tenant, tenant) == 0)
			rc = store_exec(tx, "DELETE FROM containers WHERE id = ?",
					STORE_ARGS(S_TEXT(s->gone[i].id)));
	for (size_t i = 0; rc >= 0 && i < s->n; i++) {
		const struct ctr *c = &s->c[i];
		if (!c->dirty || strcmp(c->tenant, tenant) != 0)
			continue;
		rc = store_exec(
		    tx,
		    "INSERT OR REPLACE INTO containers (id, deployment, node_id, state, "
		    "cpu_millicores, memory_mb, storage_mb, replica, revision, generation, "
		    "desired, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		    STORE_ARGS(S_TEXT(c->id), S_TEXT(c->deployment),
			       c->node[0] ? S_TEXT(c->node) : S_NULL, S_TEXT(c->state),
			       S_INT(c->cpu), S_INT(c->mem), S_INT(c->storage), S_INT(c->replica),
			       S_INT(c->revision), S_INT(c->generation),
			       S_TEXT(c->stopped ? "stopped" : "running"), S_INT(c->created_at)));
	}
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	return store_tx_commit(tx);
}

/* Writes every tenant's changed rows; what fails stays dirty for the next tick. */
static void persist(struct sched *s)
{
	for (;;) {
		const char *tenant = NULL;
		for (size_t i = 0; !tenant && i < s->ngone; i++)
			tenant = s->gone[i].tenant;
		for (size_t i = 0; !tenant && i < s->n; i++)
			if (s->c[i].dirty)
				tenant = s->c[i].tenant;
		if (!tenant)
			return;
		char t[ID_MAX_LEN];
		snprintf(t, sizeof(t), "%s", tenant);
		int rc = write_rows(s, t);
		if (rc < 0 && rc != ODX_ENOTFOUND) {
			log_event(LOG_ERROR, "writing containers failed",
				  json_pack("{s:s, s:s}", "tenant", t, "error", odx_strerror(rc)));
			return;
		}
		/* Written, or the tenant is gone: either way nothing is left to write for it. */
		size_t k = 0;
		for (size_t i = 0; i < s->ngone; i++)
			if (strcmp(s->gone[i].tenant, t) != 0)
				s->gone[k++] = s->gone[i];
		s->ngone = k;
		for (size_t i = 0; i < s->n; i++)
			if (strcmp(s->c[i].tenant, t) == 0)
				s->c[i].dirty = false;
		if (rc == ODX_ENOTFOUND)
			for (size_t i = s->n; i-- > 0;)
				if (strcmp(s->c[i].tenant, t) == 0)
					ctr_remove(s, i);
		k = 0;
		for (size_t i = 0; i < s->ngone; i++)
			if (strcmp(s->gone[i].tenant, t) != 0)
				s->gone[k++] = s->gone[i];
		s->ngone = k;
	}
}

/* ---- sync ----------------------------------------------------------------------------- */

static bool running(const struct ctr *c)
{
	return strcmp(c->state, "running") == 0;
}

/* The live (not retiring) container of a replica, if any. */
static struct ctr *live_replica(struct sched *s, const char *tenant, const char *dep, int64_t r)
{
	for (size_t i = 0; i < s->n; i++)
		if (of(&s->c[i], tenant, dep) && s->c[i].replica == r && !s->c[i].retiring)
			return &s->c[i];
	return NULL;
}

static bool rollout_busy(struct sched *s, const char *tenant, const char *dep)
{
	for (size_t i = 0; i < s->n; i++)
		if (of(&s->c[i], tenant, dep) && s->c[i].retiring)
			return true;
	return false;
}

/* Removes retiring containers whose successor runs (or that never ran anywhere). */
static void retire_done(struct sched *s, const char *tenant, const char *dep)
{
	for (size_t i = s->n; i-- > 0;) {
		struct ctr *c = &s->c[i];
		if (!of(c, tenant, dep) || !c->retiring)
			continue;
		struct ctr *next = live_replica(s, tenant, dep, c->replica);
		if (!c->node[0] || !next || running(next) || next->stopped)
			ctr_remove(s, i);
	}
}

static int sync_locked(struct sched *s, const char *tenant, const char *dep)
{
	struct deployment d;
	int rc = deploy_get(s->store, tenant, dep, &d);
	if (rc == ODX_ENOTFOUND) {
		for (size_t i = s->n; i-- > 0;)
			if (of(&s->c[i], tenant, dep))
				ctr_remove(s, i);
		return 0;
	}
	if (rc < 0)
		return rc;
	retire_done(s, tenant, dep);
	for (int64_t r = 0; r < d.replicas; r++) {
		struct ctr *cur = live_replica(s, tenant, dep, r);
		if (!cur) {
			if (!ctr_new(s, tenant, &d, r))
				rc = ODX_ENOMEM;
		} else if ((cur->revision != d.revision ||
			    cur->generation != d.restart_generation) &&
			   !rollout_busy(s, tenant, dep)) {
			/* one replica at a time: the next only once this one runs */
			cur->retiring = true; /* cur may move: ctr_new grows the array */
			if (!ctr_new(s, tenant, &d, r))
				rc = ODX_ENOMEM;
		}
	}
	for (size_t i = s->n; i-- > 0;)
		if (of(&s->c[i], tenant, dep) && s->c[i].replica >= d.replicas)
			ctr_remove(s, i);
	retire_done(s, tenant, dep);
	deployment_free(&d);
	return rc;
}

static void refresh_caps(struct sched *s)
{
	s->ncaps = node_registry_capacity(s->nodes, time_now_ns(), s->caps, MAX_NODES);
}

int sched_sync(struct sched *s, const char *tenant_id, const char *deployment)
{
	pthread_mutex_lock(&s->lock);
	refresh_caps(s);
	int rc = sync_locked(s, tenant_id, deployment);
	persist(s);
	unlock_and_wake(s);
	return rc;
}

void sched_tick(struct sched *s, int64_t now_ns)
{
	(void)now_ns;
	pthread_mutex_lock(&s->lock);
	refresh_caps(s);
	for (size_t i = 0; i < s->n; i++) {
		struct ctr *c = &s->c[i];
		const struct node_capacity *nd = c->node[0] ? cap_of(s, c->node) : NULL;
		if (c->node[0] && (!nd || !nd->ready)) {
			/* The node is gone quiet or revoked: the replica goes elsewhere. */
			touch(s, c->node);
			c->node[0] = '\0';
			snprintf(c->state, sizeof(c->state), "pending");
			c->dirty = true;
		}
		if (!c->node[0] && !c->retiring)
			place(s, c);
	}
	/* Rollouts in progress move on once a replacement runs. */
	struct {
		char tenant[ID_MAX_LEN], dep[DEPLOY_NAME_MAX + 1];
	} busy[32];
	size_t nb = 0;
	for (size_t i = 0; i < s->n && nb < 32; i++) {
		const struct ctr *c = &s->c[i];
		bool seen = !c->retiring;
		for (size_t j = 0; !seen && j < nb; j++)
			seen = strcmp(busy[j].tenant, c->tenant) == 0 &&
			       strcmp(busy[j].dep, c->deployment) == 0;
		if (seen)
			continue;
		memcpy(busy[nb].tenant, c->tenant, sizeof(busy[nb].tenant));
		memcpy(busy[nb].dep, c->deployment, sizeof(busy[nb].dep));
		nb++;
	}
	for (size_t j = 0; j < nb; j++)
		sync_locked(s, busy[j].tenant, busy[j].dep);
	persist(s);
	unlock_and_wake(s);
}

/* ---- agents ---------------------------------------------------------------------------- */

static json_t *assignment_json(const struct ctr *c)
{
	json_t *a = json_deep_copy(c->template);
	if (!a)
		return NULL;
	if (!json_object_get(a, "user"))
		json_object_set_new(a, "user", json_string("65534:65534"));
	json_object_set_new(a, "container", json_string(c->id));
	json_object_set_new(a, "tenant", json_string(c->tenant));
	json_object_set_new(a, "deployment", json_string(c->deployment));
	json_object_set_new(a, "revision", json_integer(c->revision));
	json_object_set_new(a, "replica", json_integer(c->replica));
	json_object_set_new(a, "state", json_string(c->stopped ? "stopped" : "running"));
	return a;
}

int sched_assignments(struct sched *s, const char *node_id, json_t **out)
{
	json_t *list = json_array();
	if (!list)
		return ODX_ENOMEM;
	pthread_mutex_lock(&s->lock);
	struct noderev *r = rev_of(s, node_id);
	int64_t rev = r ? r->revision : 0;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->c[i].node, node_id) == 0)
			json_array_append_new(list, assignment_json(&s->c[i]));
	pthread_mutex_unlock(&s->lock);
	*out = json_pack("{s:I, s:o}", "revision", (json_int_t)rev, "assignments", list);
	return *out ? 0 : ODX_ENOMEM;
}

static struct ctr *find(struct sched *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->c[i].id, id) == 0)
			return &s->c[i];
	return NULL;
}

void sched_report(struct sched *s, const char *node_id, const json_t *containers)
{
	if (!json_is_array(containers))
		return;
	pthread_mutex_lock(&s->lock);
	size_t i;
	json_t *v;
	json_array_foreach(containers, i, v)
	{
		const char *id = json_string_value(json_object_get(v, "container"));
		const char *state = json_string_value(json_object_get(v, "state"));
		struct ctr *c = id && state ? find(s, id) : NULL;
		/* Only what this node was given: a node cannot speak for another's containers. */
		if (!c || strcmp(c->node, node_id) != 0)
			continue;
		if (strcmp(c->state, state) != 0)
			c->dirty = true;
		snprintf(c->state, sizeof(c->state), "%s", state);
		const char *docker = json_string_value(json_object_get(v, "docker_id"));
		snprintf(c->docker_id, sizeof(c->docker_id), "%s", docker ? docker : "");
		c->exit_code = json_integer_value(json_object_get(v, "exit_code"));
		c->restarts = json_integer_value(json_object_get(v, "restarts"));
		json_t *mem = json_object_get(v, "memory_bytes"),
		       *cpu = json_object_get(v, "cpu_percent");
		c->memory_bytes = json_is_integer(mem) ? json_integer_value(mem) : -1;
		c->cpu_percent = json_is_number(cpu) ? json_number_value(cpu) : -1;
		const char *started = json_string_value(json_object_get(v, "started_at"));
		if (!started || time_parse_rfc3339(started, &c->started_at) < 0)
			c->started_at = 0;
	}
	pthread_mutex_unlock(&s->lock);
}

/* ---- views --------------------------------------------------------------------------------- */

static json_t *ctr_json(const struct ctr *c)
{
	char created[TIME_RFC3339_LEN], started[TIME_RFC3339_LEN];
	time_format_rfc3339(c->created_at, created);
	if (c->started_at)
		time_format_rfc3339(c->started_at, started);
	json_t *o = json_pack(
	    "{s:s, s:s, s:I, s:I, s:o, s:s, s:s, s:I, s:I, s:o, s:o, s:s, s:s, s:b}", "id", c->id,
	    "deployment", c->deployment, "replica", (json_int_t)c->replica, "revision",
	    (json_int_t)c->revision, "node_id", c->node[0] ? json_string(c->node) : json_null(),
	    "desired", c->stopped ? "stopped" : "running", "state", c->state, "exit_code",
	    (json_int_t)c->exit_code, "restarts", (json_int_t)c->restarts, "docker_id",
	    c->docker_id[0] ? json_string(c->docker_id) : json_null(), "started_at",
	    c->started_at ? json_string(started) : json_null(), "created_at", created, "image",
	    json_string_value(json_object_get(c->template, "image")), "retiring", c->retiring);
	if (o)
		json_object_set_new(
		    o, "stats",
		    c->memory_bytes >= 0 || c->cpu_percent >= 0
			? json_pack("{s:o, s:o}", "memory_bytes",
				    c->memory_bytes >= 0 ? json_integer(c->memory_bytes)
							 : json_null(),
				    "cpu_percent",
				    c->cpu_percent >= 0 ? json_real(c->cpu_percent) : json_null())
			: json_null());
	return o;
}

int sched_containers(struct sched *s, const char *tenant_id, const char *deployment, json_t **items)
{
	json_t *a = json_array();
	if (!a)
		return ODX_ENOMEM;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++) {
		const struct ctr *c = &s->c[i];
		if (strcmp(c->tenant, tenant_id) == 0 &&
		    (!deployment || strcmp(c->deployment, deployment) == 0))
			json_array_append_new(a, ctr_json(c));
	}
	pthread_mutex_unlock(&s->lock);
	*items = a;
	return 0;
}

int sched_container(struct sched *s, const char *tenant_id, const char *id, json_t **out)
{
	pthread_mutex_lock(&s->lock);
	struct ctr *c = find(s, id);
	/* Another tenant's container answers exactly like a missing one. */
	*out = c && strcmp(c->tenant, tenant_id) == 0 ? ctr_json(c) : NULL;
	pthread_mutex_unlock(&s->lock);
	return *out ? 0 : ODX_ENOTFOUND;
}

int sched_container_node(struct sched *s, const char *tenant_id, const char *id, char *node,
			 size_t size)
{
	pthread_mutex_lock(&s->lock);
	struct ctr *c = find(s, id);
	int rc = c && strcmp(c->tenant, tenant_id) == 0 ? 0 : ODX_ENOTFOUND;
	if (rc == 0)
		snprintf(node, size, "%s", c->node);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int sched_container_secrets(struct sched *s, const char *node_id, const char *id,
			    char tenant[static ID_MAX_LEN], char deployment[static 64],
			    json_t **names)
{
	pthread_mutex_lock(&s->lock);
	struct ctr *c = find(s, id);
	/* Another node's container: refused, not merely unknown (a node asking for it is
	 * suspicious). */
	int rc = !c ? ODX_ENOTFOUND : strcmp(c->node, node_id) != 0 ? ODX_EFORBIDDEN : 0;
	if (rc == 0) {
		snprintf(tenant, ID_MAX_LEN, "%s", c->tenant);
		snprintf(deployment, 64, "%s", c->deployment);
		json_t *a = json_object_get(c->template, "secrets");
		*names = a ? json_deep_copy(a) : json_array();
		rc = *names ? 0 : ODX_ENOMEM;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static bool uses_secret(const struct ctr *c, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(c->template, "secrets"), i,
			   v) if (strcmp(json_string_value(v), name) == 0) return true;
	return false;
}

void sched_note_delivery(struct sched *s, const char *id, const char *name, int64_t version)
{
	pthread_mutex_lock(&s->lock);
	struct ctr *c = find(s, id);
	if (c && (c->delivered || (c->delivered = json_object())))
		json_object_set_new(c->delivered, name, json_integer(version));
	pthread_mutex_unlock(&s->lock);
}

int64_t sched_oldest_delivered(struct sched *s, const char *tenant_id, const char *name)
{
	int64_t oldest = 0;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++) {
		const struct ctr *c = &s->c[i];
		if (strcmp(c->tenant, tenant_id) != 0 || !uses_secret(c, name))
			continue;
		json_t *v = c->delivered ? json_object_get(c->delivered, name) : NULL;
		/* Not known what it holds (delivered before a restart, or not yet): keep all. */
		int64_t held = v ? json_integer_value(v) : 1;
		if (!oldest || held < oldest)
			oldest = held;
	}
	pthread_mutex_unlock(&s->lock);
	return oldest;
}

json_t *sched_secret_in_use(struct sched *s, const char *tenant_id, const char *name)
{
	json_t *out = json_object(); /* "deployment/version" -> count, folded below */
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; out && i < s->n; i++) {
		const struct ctr *c = &s->c[i];
		if (strcmp(c->tenant, tenant_id) != 0 || !uses_secret(c, name))
			continue;
		json_t *v = c->delivered ? json_object_get(c->delivered, name) : NULL;
		char key[96];
		snprintf(key, sizeof(key), "%s/%lld", c->deployment,
			 (long long)(v ? json_integer_value(v) : 0));
		json_t *n = json_object_get(out, key);
		json_object_set_new(out, key, json_integer(n ? json_integer_value(n) + 1 : 1));
	}
	pthread_mutex_unlock(&s->lock);
	json_t *list = json_array();
	const char *key;
	json_t *n;
	json_object_foreach(out, key, n)
	{
		const char *slash = strrchr(key, '/');
		long long version = strtoll(slash + 1, NULL, 10);
		json_array_append_new(
		    list, json_pack("{s:s%, s:o, s:O}", "deployment", key, (size_t)(slash - key),
				    "version", version ? json_integer(version) : json_null(),
				    "containers", n));
	}
	json_decref(out);
	return list;
}

json_t *sched_deployment_status(struct sched *s, const char *tenant_id, const char *deployment)
{
	int64_t total = 0, run = 0, pending = 0;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++) {
		const struct ctr *c = &s->c[i];
		if (!of(c, tenant_id, deployment) || c->retiring)
			continue;
		total++;
		run += running(c);
		pending += !c->node[0];
	}
	pthread_mutex_unlock(&s->lock);
	return json_pack("{s:I, s:I, s:I}", "containers", (json_int_t)total, "running",
			 (json_int_t)run, "pending", (json_int_t)pending);
}

int sched_container_set(struct sched *s, const char *tenant_id, const char *id, const char *op)
{
	pthread_mutex_lock(&s->lock);
	refresh_caps(s);
	struct ctr *c = find(s, id);
	int rc = c && strcmp(c->tenant, tenant_id) == 0 && !c->retiring ? 0 : ODX_ENOTFOUND;
	if (rc == 0 && strcmp(op, "replace") == 0) {
		struct deployment d;
		rc = deploy_get(s->store, c->tenant, c->deployment, &d);
		if (rc == 0) {
			int64_t replica = c->replica;
			c->retiring = true;
			if (!ctr_new(s, tenant_id, &d, replica))
				rc = ODX_ENOMEM;
			deployment_free(&d);
		}
	} else if (rc == 0) {
		c->stopped = strcmp(op, "stopped") == 0;
		c->dirty = true;
		touch(s, c->node);
	}
	persist(s);
	unlock_and_wake(s);
	return rc;
}

/* ---- start ------------------------------------------------------------------------------------
 */

struct load {
	struct sched *s;
	const char *tenant;
};

static int load_row(struct store_stmt *q, void *arg)
{
	struct load *l = arg;
	struct sched *s = l->s;
	if (grow((void **)&s->c, &s->cap, s->n + 1, sizeof(*s->c)) < 0)
		return ODX_ENOMEM;
	struct ctr *c = &s->c[s->n];
	memset(c, 0, sizeof(*c));
	store_col_copy(q, 0, c->id, sizeof(c->id));
	store_col_copy(q, 1, c->deployment, sizeof(c->deployment));
	if (!store_col_is_null(q, 2))
		store_col_copy(q, 2, c->node, sizeof(c->node));
	store_col_copy(q, 3, c->state, sizeof(c->state));
	c->cpu = store_col_int(q, 4);
	c->mem = store_col_int(q, 5);
	c->storage = store_col_int(q, 6);
	c->replica = store_col_int(q, 7);
	c->revision = store_col_int(q, 8);
	c->generation = store_col_int(q, 9);
	c->stopped = strcmp(store_col_text(q, 10), "stopped") == 0;
	c->created_at = store_col_int(q, 11);
	/* Its revision's template; a revision no longer kept: the sync replaces the container. */
	if (!store_col_is_null(q, 12))
		c->template = json_loads(store_col_text(q, 12), 0, NULL);
	if (!c->template)
		c->template = json_pack("{s:s}", "image", "");
	c->revision = c->template && json_object_size(c->template) > 1 ? c->revision : -1;
	c->memory_bytes = -1;
	c->cpu_percent = -1;
	snprintf(c->tenant, sizeof(c->tenant), "%s", l->tenant);
	s->n++;
	return 0;
}

static int load_tenant(struct sched *s, const char *tenant)
{
	struct load l = {s, tenant};
	int rc = store_read(s->store, tenant,
			    "SELECT c.id, c.deployment, c.node_id, c.state, c.cpu_millicores, "
			    "c.memory_mb, c.storage_mb, c.replica, c.revision, c.generation, c.desired, "
			    "c.created_at, r.template FROM containers c LEFT JOIN deployment_revisions r "
			    "ON r.deployment = c.deployment AND r.revision = c.revision",
			    STORE_NOARGS, load_row, &l);
	return rc < 0 ? rc : 0;
}

struct names {
	char (*v)[DEPLOY_NAME_MAX + 1];
	size_t n, cap;
};

static int add_name(struct store_stmt *q, void *arg)
{
	struct names *nm = arg;
	if (grow((void **)&nm->v, &nm->cap, nm->n + 1, sizeof(*nm->v)) < 0)
		return ODX_ENOMEM;
	store_col_copy(q, 0, nm->v[nm->n++], sizeof(*nm->v));
	return 0;
}

static int sync_tenant(struct sched *s, const char *tenant)
{
	struct names nm = {0};
	int rc = store_read(s->store, tenant, "SELECT name FROM deployments", STORE_NOARGS,
			    add_name, &nm);
	for (size_t i = 0; rc >= 0 && i < nm.n; i++)
		rc = sync_locked(s, tenant, nm.v[i]);
	free(nm.v);
	return rc;
}

int sched_open(struct store *st, struct node_registry *nodes, sched_wake_fn wake, void *arg,
	       struct sched **out)
{
	struct sched *s = calloc(1, sizeof(*s));
	if (!s)
		return ODX_ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->store = st;
	s->nodes = nodes;
	s->wake = wake;
	s->arg = arg;
	struct names tenants = {0};
	int rc = store_read(st, NULL, "SELECT id FROM tenants", STORE_NOARGS, add_name, &tenants);
	pthread_mutex_lock(&s->lock);
	refresh_caps(s);
	for (size_t i = 0; rc >= 0 && i < tenants.n; i++)
		rc = load_tenant(s, tenants.v[i]);
	for (size_t i = 0; rc >= 0 && i < tenants.n; i++)
		rc = sync_tenant(s, tenants.v[i]);
	persist(s);
	s->ntouched = 0;
	s->touched_all = false;
	pthread_mutex_unlock(&s->lock);
	free(tenants.v);
	if (rc < 0) {
		sched_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		json_decref(s->c[i].template);
		json_decref(s->c[i].delivered);
	}
	free(s->c);
	free(s->revs);
	free(s->gone);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
