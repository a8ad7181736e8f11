/*
 * reconcile.c — see reconcile.h.
 *
 * A pass: list the Engine's containers labelled odysseus.container; match
 * each to an assignment by its ctr id and revision label; remove those that
 * match none (and the tenant's network once the tenant has nothing left
 * here); then, per assignment, create what is missing, start what should
 * run, recreate what crashed and stop what should be stopped; list again
 * and publish the report. Only the converge thread runs passes, so only it
 * uses r->d and the per-container records (r->recs).
 *
 * Secrets (docs/agent.md "Secrets"): before a container that names some is
 * created to run, a new tmpfs is mounted for it (secretfs), its bundle
 * fetched through the caller's callback, written and sealed, and the tmpfs
 * bind-mounted read-only at /run/secrets. A crash, a stop or a removal
 * unmounts it; a container to start without its tmpfs is made anew; each
 * pass sweeps the tmpfs of containers that are gone.
 *
 * Crash loops: a container that dies within QUICK_NS of its start counts a
 * quick crash; the first is replaced at once, then each replacement waits
 * twice as long (1 s … 60 s). One that ran longer starts the count afresh.
 *
 * Locking: r->mu guards desired, want/seen/done/last_rc, report and the
 * event queue; every reference count change of the shared JSON happens
 * under it. stopping is atomic so that a pass can check it between calls;
 * ev_stop is the flag docker_events polls.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "agent/client.h"
#include "agent/reconcile.h"
#include "agent/secretfs.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "crypto/random.h"
#include "docker/docker.h"

#define LABEL_CTR	 "odysseus.container"
#define LABEL_NODE	 "odysseus.node"
#define LABEL_TENANT	 "odysseus.tenant"
#define LABEL_DEPLOYMENT "odysseus.deployment"
#define LABEL_REPLICA	 "odysseus.replica"
#define LABEL_REVISION	 "odysseus.revision"

#define CTR_LEN	       36 /* "ctr_" + 32 hex */
#define TENANT_HEX_MAX 32 /* "ten_" + 1..32 of [a-z0-9] */
#define TENANT_LEN     (4 + TENANT_HEX_MAX)
#define NAME_LEN       (4 + CTR_LEN) /* "odx-" + the ctr id: containers and networks */
#define DOCKER_ID_LEN  64
#define USER_LEN       24 /* "uid:gid", each at most 10 digits */
#define NOBODY	       "65534:65534"
#define NOBODY_ID      65534

#define IMAGE_MAX   255
#define ARGS_MAX    256
#define ARG_MAX	    4096
#define ARGS_TOTAL  65536
#define ENV_MAX	    64
#define ENV_NAME    256
#define ENV_VALUE   4096
#define PATHS_MAX   8
#define PATH_MAX_   255
#define REVISION_HI (1LL << 53)

#define SECRET_NAME_MAX 63    /* the node name rule */
#define VALUE_B64_MAX	87382 /* b64url_encoded_len(SECRETFS_VALUE_MAX) */

#define STOP_GRACE_S 3 /* SIGTERM, then SIGKILL: state "stopped" */
#define SUSPECTS_MAX 500
#define QUICK_NS     (10 * NSEC_PER_SEC)
#define RETRY_MAX_NS (60 * NSEC_PER_SEC)
#define LOWER_HEX    "0123456789abcdef"
#define LOWER_ALNUM  "abcdefghijklmnopqrstuvwxyz0123456789"
#define UPPER	     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define WORD	     LOWER_ALNUM UPPER "_"

/* What the converge thread remembers of one ctr id between passes. */
struct rec {
	char ctr[CTR_LEN + 1];
	unsigned restarts;  /* crashes replaced by this agent */
	bool held;	    /* the assignment says stopped: an exit is not a crash */
	int64_t started_ns; /* monotonic, when this agent last started it; 0: unknown */
	unsigned quick;	    /* quick crashes in a row */
	char crash_id[DOCKER_ID_LEN + 1]; /* the dead container already counted */
	int64_t retry_ns;		  /* monotonic: not recreated before */
	/* The last inspect, reused while the list shows the same id and state. */
	char docker_id[DOCKER_ID_LEN + 1];
	char dstate[16];
	int exit_code;
	char started_at[TIME_RFC3339_LEN];
	char error[RECONCILE_ERR_LEN], prev_error[RECONCILE_ERR_LEN];
	bool used; /* in this pass's assignments */
	/* Resource use, read from the cgroup at most every STATS_EVERY_NS. */
	int64_t stats_ns;	     /* monotonic, of the last sample; 0: none yet */
	int64_t mem_bytes;
	uint64_t cpu_total;  /* cgroup CPU time in ns at the last sample */
	double cpu_percent;  /* of one CPU, between the last two samples; < 0: unknown */
	/* Secrets: a failed delivery is retried with backoff, its error kept meanwhile. */
	unsigned deliver_fails;
	int64_t deliver_ns; /* monotonic: not tried again before */
	char deliver_error[RECONCILE_ERR_LEN];
};

#define STATS_EVERY_NS (5LL * NSEC_PER_SEC)

struct reconciler {
	int64_t period_ns;
	char node[RECONCILE_NODE_MAX + 1];
	/* "odysseus.node=<id>": what lists and events are filtered on */
	char node_label[sizeof(LABEL_NODE) + RECONCILE_NODE_MAX + 1];
	struct docker *d;  /* the converge thread's */
	struct docker *ev; /* the events thread's */
	pthread_t converge_t, events_t;
	bool converge_on, events_on;

	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC; every change is broadcast */
	atomic_bool stopping;
	volatile bool ev_stop;
	json_t *desired;		     /* the last assignments; NULL before the first */
	uint64_t want, seen, done;	     /* passes asked for, started for, finished for */
	int last_rc;			     /* of the last finished pass */
	json_t *report;			     /* its containers; NULL when it failed */
	json_t *suspects;		     /* docker ids of die/oom events: {id: true} */
	json_t *queue[RECONCILE_EVENTS_MAX]; /* a ring: head, len */
	size_t head, len;
	uint64_t dropped;

	/* The converge thread's alone. */
	struct rec **recs;
	size_t nrecs, caprecs;
	bool down; /* the last pass could not reach the Engine */
	/* Secrets (docs/agent.md "Secrets"); secrets_root "" when there is no source. */
	char secrets_root[SECRETFS_PATH_MAX];
	reconcile_fetch_fn fetch;
	void *fetch_arg;
	bool swap_said; /* "secret pages could reach swap" was logged */
	bool swept;	/* the secrets of vanished containers were removed once */
	int sweep_rc;	/* the last sweep's error, logged when it changes */
};

/* ---- checking an assignment ------------------------------------------------------- */

/* One assignment, unpacked and checked; strings point into the JSON. */
struct asg {
	const char *ctr, *tenant, *deployment, *state, *image;
	json_int_t revision, replica, cpu, mem, pids, storage;
	json_t *command, *env, *paths, *user, *secrets;
	char user_s[USER_LEN];
	int64_t uid, gid; /* of user_s */
};

static int refuse(char err[static RECONCILE_ERR_LEN], const char *field, const char *why)
{
	snprintf(err, RECONCILE_ERR_LEN, "invalid assignment: %s %s", field, why);
	return ODX_EINVAL;
}

static bool all_in(const char *s, size_t n, const char *set)
{
	return strspn(s, set) == n;
}

static bool tenant_valid(const char *s)
{
	size_t n = strlen(s);
	return n > 4 && n <= TENANT_LEN && strncmp(s, "ten_", 4) == 0 &&
	       all_in(s + 4, n - 4, LOWER_ALNUM);
}

static bool deployment_valid(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= 63 && all_in(s, n, LOWER_ALNUM "-");
}

static bool alnum_ends(const char *s, size_t n, const char *inner)
{
	return n > 0 && all_in(s, n, inner) && strchr(LOWER_ALNUM, s[0]) != NULL &&
	       strchr(LOWER_ALNUM, s[n - 1]) != NULL;
}

/* A registry host[:port]: the first component when it has '.' or ':' or is localhost. */
static bool host_valid(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t hn = colon ? (size_t)(colon - s) : n;
	char port[8];
	int64_t p;

	if (hn == 0 || strspn(s, LOWER_ALNUM UPPER ".-") < hn)
		return false;
	if (colon == NULL)
		return true;
	if (n - hn - 1 == 0 || n - hn - 1 >= sizeof(port))
		return false;
	memcpy(port, colon + 1, n - hn - 1);
	port[n - hn - 1] = '\0';
	return parse_int64(port, 1, 65535, &p) == 0;
}

static bool tag_valid(const char *t)
{
	size_t n = strlen(t);
	return n >= 1 && n <= 128 && strchr(WORD, t[0]) != NULL && all_in(t, n, WORD ".-");
}

/* [registry/]name[:tag][@sha256:<64 hex>], name components in lowercase. */
static bool image_valid(const char *ref)
{
	char buf[IMAGE_MAX + 1], *at, *colon, *slash, *p;
	size_t n = strlen(ref);

	if (n == 0 || n > IMAGE_MAX)
		return false;
	memcpy(buf, ref, n + 1);
	if ((at = strchr(buf, '@')) != NULL) {
		if (strncmp(at + 1, "sha256:", 7) != 0 || strlen(at + 8) != 64 ||
		    !all_in(at + 8, 64, LOWER_HEX))
			return false;
		*at = '\0';
	}
	slash = strrchr(buf, '/');
	colon = strrchr(buf, ':');
	if (colon != NULL && (slash == NULL || colon > slash)) {
		if (!tag_valid(colon + 1))
			return false;
		*colon = '\0';
	}
	for (p = buf;; p = slash + 1) {
		slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		bool host = p == buf && slash != NULL &&
			    (memchr(p, '.', len) || memchr(p, ':', len) ||
			     (len == 9 && memcmp(p, "localhost", 9) == 0));
		if (host ? !host_valid(p, len) : !alnum_ends(p, len, LOWER_ALNUM "._-"))
			return false;
		if (slash == NULL)
			return true;
	}
}

static bool text_ok(const json_t *s, size_t max)
{
	return json_is_string(s) && json_string_length(s) <= max &&
	       strlen(json_string_value(s)) == json_string_length(s); /* no NUL inside */
}

static int check_command(const json_t *cmd, char err[static RECONCILE_ERR_LEN])
{
	size_t i, total = 0;
	json_t *v;

	if (cmd == NULL || json_is_null(cmd))
		return 0;
	if (!json_is_array(cmd) || json_array_size(cmd) > ARGS_MAX)
		return refuse(err, "command", "must be an array of at most 256 strings");
	json_array_foreach(cmd, i, v)
	{
		if (!text_ok(v, ARG_MAX))
			return refuse(err, "command",
				      "items must be strings of at most 4096 bytes");
		total += json_string_length(v);
	}
	return total <= ARGS_TOTAL ? 0 : refuse(err, "command", "is longer than 64 KiB");
}

static bool env_name_valid(const char *k)
{
	size_t n = strlen(k);
	return n >= 1 && n <= ENV_NAME && strchr(WORD, k[0]) != NULL &&
	       !(k[0] >= '0' && k[0] <= '9') && all_in(k, n, WORD);
}

static int check_env(const json_t *env, char err[static RECONCILE_ERR_LEN])
{
	const char *k;
	json_t *v;

	if (env == NULL || json_is_null(env))
		return 0;
	if (!json_is_object(env) || json_object_size(env) > ENV_MAX)
		return refuse(err, "env", "must be an object of at most 64 entries");
	json_object_foreach((json_t *)env, k, v)
	{
		if (!env_name_valid(k))
			return refuse(err, "env", "names must match [A-Za-z_][A-Za-z0-9_]*");
		if (!text_ok(v, ENV_VALUE))
			return refuse(err, "env", "values must be strings of at most 4096 bytes");
	}
	return 0;
}

/* Absolute, [A-Za-z0-9._/-], no empty, "." or ".." component, not "/" itself. */
static bool path_valid(const char *p)
{
	size_t n = strlen(p);
	const char *c;

	if (n < 2 || n > PATH_MAX_ || p[0] != '/' || p[n - 1] == '/' || !all_in(p, n, WORD "./-"))
		return false;
	for (c = p; c != NULL; c = strchr(c + 1, '/')) {
		size_t len = strcspn(c + 1, "/");
		if (len == 0 || (len == 1 && c[1] == '.') ||
		    (len == 2 && c[1] == '.' && c[2] == '.'))
			return false;
	}
	return true;
}

static int check_paths(const json_t *paths, char err[static RECONCILE_ERR_LEN])
{
	size_t i, j;
	json_t *v;

	if (paths == NULL || json_is_null(paths))
		return 0;
	if (!json_is_array(paths) || json_array_size(paths) > PATHS_MAX)
		return refuse(err, "writable_paths", "must be an array of at most 8 paths");
	json_array_foreach(paths, i, v)
	{
		if (!text_ok(v, PATH_MAX_) || !path_valid(json_string_value(v)))
			return refuse(err, "writable_paths", "must be absolute paths without ..");
		for (j = 0; j < i; j++)
			if (json_equal(v, json_array_get(paths, j)))
				return refuse(err, "writable_paths", "has a duplicate");
	}
	return 0;
}

/* "root" or a number up to 2^31-1: *id. Root is 0. */
static int id_parse(const char *s, size_t n, int64_t *id)
{
	char buf[12];

	if (n == 4 && memcmp(s, "root", 4) == 0) {
		*id = 0;
		return 0;
	}
	if (n == 0 || n >= sizeof(buf))
		return ODX_EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return parse_int64(buf, 0, INT32_MAX, id);
}

/*
 * The user Docker gets: "uid:gid", never root. Absent or a root uid gives
 * nobody (65534:65534); an absent or root gid gives 65534, since Docker
 * would otherwise run a uid unknown to the image with gid 0.
 */
static int check_user(const json_t *user, struct asg *g, char err[static RECONCILE_ERR_LEN])
{
	int64_t uid, gid = 0;
	const char *s, *colon;

	g->uid = g->gid = NOBODY_ID;
	if (user == NULL || json_is_null(user) ||
	    (json_is_string(user) && json_string_length(user) == 0)) {
		snprintf(g->user_s, USER_LEN, "%s", NOBODY);
		return 0;
	}
	if (!text_ok(user, 32))
		return refuse(err, "user", "must be uid[:gid]");
	s = json_string_value(user);
	colon = strchr(s, ':');
	if (id_parse(s, colon ? (size_t)(colon - s) : strlen(s), &uid) < 0 ||
	    (colon && id_parse(colon + 1, strlen(colon + 1), &gid) < 0))
		return refuse(err, "user", "must be uid[:gid] numbers");
	if (uid == 0) {
		snprintf(g->user_s, USER_LEN, "%s", NOBODY);
		return 0;
	}
	g->uid = uid;
	g->gid = gid == 0 ? NOBODY_ID : gid;
	snprintf(g->user_s, USER_LEN, "%lld:%lld", (long long)g->uid, (long long)g->gid);
	return 0;
}

/* Names only, at most 16, each 1-63 of [a-z0-9-] (the node name rule), no duplicate. */
static int check_secrets(const json_t *names, char err[static RECONCILE_ERR_LEN])
{
	size_t i, j;
	json_t *v;

	if (names == NULL || json_is_null(names))
		return 0;
	if (!json_is_array(names) || json_array_size(names) > SECRETFS_NAMES_MAX)
		return refuse(err, "secrets", "must be an array of at most 16 names");
	json_array_foreach(names, i, v)
	{
		if (!text_ok(v, SECRET_NAME_MAX) ||
		    name_validate(json_string_value(v), SECRET_NAME_MAX) < 0)
			return refuse(err, "secrets", "names must be 1-63 of [a-z0-9-]");
		for (j = 0; j < i; j++)
			if (json_equal(v, json_array_get(names, j)))
				return refuse(err, "secrets", "has a duplicate");
	}
	return 0;
}

static bool in_range(json_int_t v, json_int_t lo, json_int_t hi)
{
	return v >= lo && v <= hi;
}

static int check_fields(struct asg *g, char err[static RECONCILE_ERR_LEN])
{
	if (!random_id_valid("ctr", g->ctr))
		return refuse(err, "container", "must be ctr_<32 hex>");
	if (!tenant_valid(g->tenant))
		return refuse(err, "tenant", "must be ten_<1-32 of [a-z0-9]>");
	if (!deployment_valid(g->deployment))
		return refuse(err, "deployment", "must be 1-63 of [a-z0-9-]");
	if (!in_range(g->revision, 0, REVISION_HI) || !in_range(g->replica, 0, 99))
		return refuse(err, "revision or replica", "is out of range");
	if (strcmp(g->state, "running") != 0 && strcmp(g->state, "stopped") != 0)
		return refuse(err, "state", "must be running or stopped");
	if (!image_valid(g->image))
		return refuse(err, "image", "is not a Docker reference");
	if (!in_range(g->cpu, 10, 64000) || !in_range(g->mem, 6, 1048576) ||
	    !in_range(g->pids, 16, 4096) || !in_range(g->storage, 0, 1048576))
		return refuse(err, "resources", "are out of range");
	int rc = check_command(g->command, err);
	if (rc == 0)
		rc = check_env(g->env, err);
	if (rc == 0)
		rc = check_paths(g->paths, err);
	if (rc == 0)
		rc = check_user(g->user, g, err);
	if (rc == 0)
		rc = check_secrets(g->secrets, err);
	return rc;
}

/* Unpacks strictly (unknown keys refused), then checks every field. */
static int asg_parse(const json_t *a, struct asg *g, char err[static RECONCILE_ERR_LEN])
{
	json_error_t e;
	char why[RECONCILE_ERR_LEN];

	*g = (struct asg){.pids = 128};
	/* json_unpack_ex does not modify a; its prototype just lacks const. */
	if (json_unpack_ex((json_t *)a, &e, JSON_STRICT,
			   "{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s?o, s?o,"
			   " s:{s:I, s:I, s?I, s?I}, s?o, s?o, s?o}",
			   "container", &g->ctr, "tenant", &g->tenant, "deployment", &g->deployment,
			   "revision", &g->revision, "replica", &g->replica, "state", &g->state,
			   "image", &g->image, "command", &g->command, "env", &g->env, "resources",
			   "cpu_millicores", &g->cpu, "memory_mb", &g->mem, "pids", &g->pids,
			   "storage_mb", &g->storage, "writable_paths", &g->paths, "user", &g->user,
			   "secrets", &g->secrets) < 0) {
		client_sanitize(e.text, why, sizeof(why));
		snprintf(err, RECONCILE_ERR_LEN, "invalid assignment: %s", why);
		return ODX_EINVAL;
	}
	return check_fields(g, err);
}

/* ---- the container spec -------------------------------------------------------------- */

/* One tmpfs per writable path; storage_mb is shared out among them, else 16 MiB each. */
static json_t *spec_tmpfs(const struct asg *g)
{
	size_t n = json_array_size(g->paths), i;
	json_t *out = json_object(), *p;
	char opts[80];

	if (out == NULL)
		return NULL;
	if (g->storage > 0 && n > 0)
		snprintf(opts, sizeof(opts), "rw,nosuid,nodev,noexec,size=%lldk",
			 (long long)(g->storage * 1024 / (json_int_t)n));
	else
		snprintf(opts, sizeof(opts), "rw,nosuid,nodev,noexec,size=16m");
	json_array_foreach(g->paths, i, p)
	{
		if (json_object_set_new(out, json_string_value(p), json_string(opts)) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

static json_t *spec_env(const struct asg *g)
{
	json_t *out = json_array(), *v;
	const char *k;

	json_object_foreach(g->env, k, v)
	{
		size_t n = strlen(k) + 1 + json_string_length(v) + 1;
		char *kv = out ? malloc(n) : NULL;
		int len = kv ? snprintf(kv, n, "%s=%s", k, json_string_value(v)) : -1;
		int rc = len > 0 ? json_array_append_new(out, json_stringn(kv, (size_t)len)) : -1;
		free(kv);
		if (rc < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

static json_t *spec_labels(const struct asg *g)
{
	char replica[24], revision[24];

	snprintf(replica, sizeof(replica), "%lld", (long long)g->replica);
	snprintf(revision, sizeof(revision), "%lld", (long long)g->revision);
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", LABEL_CTR, g->ctr, LABEL_TENANT, g->tenant,
			 LABEL_DEPLOYMENT, g->deployment, LABEL_REPLICA, replica, LABEL_REVISION,
			 revision);
}

/*
 * HostConfig: docs/deployments.md's hardening, all of it, every time. The
 * log options bound what a container can write to the node's disk.
 */
static json_t *spec_host(const struct asg *g, const char *net)
{
	json_t *tmpfs = spec_tmpfs(g);
	json_int_t mem = g->mem * 1024 * 1024;

	if (tmpfs == NULL)
		return NULL;
	return json_pack("{s:[s], s:[s], s:b, s:b, s:o, s:I, s:I, s:I, s:I, s:[], s:[], s:{}, s:b,"
			 " s:s, s:{s:s, s:i}, s:{s:s, s:{s:s, s:s}}}",
			 "SecurityOpt", "no-new-privileges", "CapDrop", "ALL", "Privileged", 0,
			 "ReadonlyRootfs", 1, "Tmpfs", tmpfs, "NanoCpus", g->cpu * 1000000,
			 "Memory", mem, "MemorySwap", mem, "PidsLimit", g->pids, "Binds", "Devices",
			 "PortBindings", "PublishAllPorts", 0, "NetworkMode", net, "RestartPolicy",
			 "Name", "no", "MaximumRetryCount", 0, "LogConfig", "Type", "json-file",
			 "Config", "max-size", "10m", "max-file", "3");
}

static json_t *spec_build(const struct asg *g)
{
	char net[NAME_LEN + 1];
	json_t *env = spec_env(g), *labels = spec_labels(g), *host, *spec;

	snprintf(net, sizeof(net), "odx-%s", g->tenant);
	host = spec_host(g, net);
	if (env == NULL || labels == NULL || host == NULL) {
		json_decref(env);
		json_decref(labels);
		json_decref(host);
		return NULL;
	}
	spec = json_pack("{s:s, s:s, s:o, s:o, s:b, s:b, s:b, s:b, s:b, s:o, s:{s:{s:{}}}}",
			 "Image", g->image, "User", g->user_s, "Env", env, "Labels", labels, "Tty",
			 0, "OpenStdin", 0, "AttachStdin", 0, "AttachStdout", 0, "AttachStderr", 0,
			 "HostConfig", host, "NetworkingConfig", "EndpointsConfig", net);
	if (spec != NULL && json_array_size(g->command) > 0 &&
	    json_object_set_new(spec, "Cmd", json_deep_copy(g->command)) < 0) {
		json_decref(spec);
		return NULL;
	}
	return spec;
}

int reconcile_spec(const json_t *assignment, json_t **spec, char err[static RECONCILE_ERR_LEN])
{
	struct asg g;
	int rc = asg_parse(assignment, &g, err);

	if (rc < 0)
		return rc;
	json_t *s = spec_build(&g);
	if (s == NULL)
		return ODX_ENOMEM;
	*spec = s;
	return 0;
}

/* ---- shared state -------------------------------------------------------------------- */

static bool stopping(struct reconciler *r)
{
	return atomic_load(&r->stopping);
}

/* Under r->mu: asks the converge thread for a pass. */
static void ask_pass_locked(struct reconciler *r)
{
	r->want++;
	pthread_cond_broadcast(&r->cv);
}

/* Waits on r->cv until deadline (monotonic ns) or a broadcast. Under r->mu. */
static void wait_until(struct reconciler *r, int64_t deadline)
{
	struct timespec ts = {.tv_sec = (time_t)(deadline / NSEC_PER_SEC),
			      .tv_nsec = (long)(deadline % NSEC_PER_SEC)};
	pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

/* Under r->mu. The queue is bounded: the oldest event makes room. */
static void queue_push(struct reconciler *r, json_t *e)
{
	if (r->len == RECONCILE_EVENTS_MAX) {
		json_decref(r->queue[r->head]);
		r->head = (r->head + 1) % RECONCILE_EVENTS_MAX;
		r->len--;
		r->dropped++;
	}
	r->queue[(r->head + r->len) % RECONCILE_EVENTS_MAX] = e;
	r->len++;
}

/* ---- per-container records (converge thread) --------------------------------------- */

static struct rec *rec_get(struct reconciler *r, const char *ctr)
{
	for (size_t i = 0; i < r->nrecs; i++)
		if (strcmp(r->recs[i]->ctr, ctr) == 0)
			return r->recs[i];
	if (r->nrecs == r->caprecs) {
		size_t cap = r->caprecs ? r->caprecs * 2 : 16;
		struct rec **p = reallocarray(r->recs, cap, sizeof(*p));
		if (p == NULL)
			return NULL;
		r->recs = p;
		r->caprecs = cap;
	}
	struct rec *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	memcpy(c->ctr, ctr, CTR_LEN + 1);
	r->recs[r->nrecs++] = c;
	return c;
}

/* Forgets the ctr ids no longer assigned. */
static void recs_prune(struct reconciler *r)
{
	size_t k = 0;

	for (size_t i = 0; i < r->nrecs; i++) {
		if (r->recs[i]->used)
			r->recs[k++] = r->recs[i];
		else
			free(r->recs[i]);
	}
	r->nrecs = k;
}

/* ---- one pass ---------------------------------------------------------------------------- */

/* One assignment in this pass. */
struct want {
	struct asg g;
	json_t *spec;	   /* NULL: refused (rec->error says why) */
	struct rec *rec;   /* NULL when even the ctr id is unusable */
	const json_t *cur; /* the Engine's container for it, from the list */
};

static const char *label(const json_t *c, const char *key)
{
	const char *v = json_string_value(json_object_get(json_object_get(c, "Labels"), key));
	return v ? v : "";
}

static const char *field(const json_t *c, const char *key)
{
	const char *v = json_string_value(json_object_get(c, key));
	return v ? v : "";
}

static bool docker_id_valid(const char *id)
{
	return strlen(id) == DOCKER_ID_LEN && all_in(id, DOCKER_ID_LEN, LOWER_HEX);
}

static void log_ctr(enum log_level lvl, const char *msg, const char *ctr, const char *id)
{
	json_t *f = json_pack("{s:s}", "container", ctr);
	if (f != NULL && id != NULL && id[0])
		json_object_set_new(f, "docker_id", json_stringn(id, 12));
	log_event(lvl, msg, f);
}

/* Records why x is not converging (logged when the reason changed) and passes rc on. */
static int set_error(struct want *x, int rc, const char *what, const char *why)
{
	snprintf(x->rec->error, sizeof(x->rec->error), "%s: %s", what, why);
	if (strcmp(x->rec->error, x->rec->prev_error) != 0)
		log_event(
		    LOG_WARN, "cannot converge a container",
		    json_pack("{s:s, s:s}", "container", x->rec->ctr, "error", x->rec->error));
	return rc;
}

/* set_error with the Engine's message for the call that just failed. */
static int fail(struct reconciler *r, struct want *x, const char *what, int rc)
{
	char why[RECONCILE_ERR_LEN];
	const char *eng = docker_last_error(r->d);

	client_sanitize(eng != NULL && eng[0] ? eng : odx_strerror(rc), why, sizeof(why));
	return set_error(x, rc, what, why);
}

/* Checks each assignment and builds its spec; a refused one keeps spec NULL. */
static void prepare(struct reconciler *r, const json_t *desired, struct want *w)
{
	char err[RECONCILE_ERR_LEN];
	size_t i;
	json_t *a;

	json_array_foreach(desired, i, a)
	{
		struct want *x = &w[i];
		const char *ctr = json_string_value(json_object_get(a, "container"));
		struct rec *c = ctr && random_id_valid("ctr", ctr) ? rec_get(r, ctr) : NULL;
		if (c == NULL || c->used)
			continue; /* no usable ctr id, or a duplicate: reconcile_apply logs it */
		x->rec = c;
		c->used = true;
		memcpy(c->prev_error, c->error, sizeof(c->error));
		c->error[0] = '\0';
		if (asg_parse(a, &x->g, err) < 0)
			set_error(x, ODX_EINVAL, "refused", err);
		else if ((x->spec = spec_build(&x->g)) == NULL)
			set_error(x, ODX_ENOMEM, "refused", "out of memory");
	}
}

/* The valid assignment a labelled container belongs to, or NULL. */
static struct want *owner(struct want *w, size_t n, const json_t *c)
{
	const char *ctr = label(c, LABEL_CTR), *rev = label(c, LABEL_REVISION);
	char want_rev[24];

	for (size_t i = 0; i < n; i++) {
		if (w[i].spec == NULL || strcmp(w[i].g.ctr, ctr) != 0)
			continue;
		snprintf(want_rev, sizeof(want_rev), "%lld", (long long)w[i].g.revision);
		return strcmp(rev, want_rev) == 0 ? &w[i] : NULL;
	}
	return NULL;
}

/* Removes a labelled container nobody wants; notes its tenant for the network. */
static int remove_stray(struct reconciler *r, const json_t *c, json_t *tenants)
{
	const char *id = field(c, "Id"), *ctr = label(c, LABEL_CTR), *ten = label(c, LABEL_TENANT);
	int rc = docker_container_remove(r->d, id);

	if (rc == ODX_EUNAVAIL)
		return rc;
	if (rc < 0 && rc != ODX_ENOTFOUND) {
		log_event(LOG_WARN, "cannot remove a container",
			  json_pack("{s:s, s:s}", "docker_id", id, "error", odx_strerror(rc)));
		return 0;
	}
	log_ctr(LOG_INFO, "container removed", ctr, id);
	if (tenant_valid(ten))
		json_object_set_new(tenants, ten, json_true());
	return 0;
}

static bool running(const json_t *c)
{
	return strcmp(field(c, "State"), "running") == 0;
}

/* Gives each assignment its container; removes the rest (only labelled ones are listed). */
static int match(struct reconciler *r, const json_t *list, struct want *w, size_t n,
		 json_t *tenants)
{
	size_t i;
	json_t *c;

	json_array_foreach(list, i, c)
	{
		if (!docker_id_valid(field(c, "Id")) || strcmp(field(c, "State"), "removing") == 0)
			continue;
		struct want *x = owner(w, n, c);
		const json_t *drop = c;
		if (x != NULL && x->cur == NULL) {
			x->cur = c;
			continue;
		}
		if (x != NULL && running(c) && !running(x->cur)) { /* two: keep the running one */
			drop = x->cur;
			x->cur = c;
		}
		int rc = remove_stray(r, drop, tenants);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Removes the networks of tenants that have nothing left on this node. */
static void drop_networks(struct reconciler *r, const json_t *tenants, struct want *w, size_t n)
{
	const char *ten;
	json_t *v;
	char net[NAME_LEN + 1];

	json_object_foreach((json_t *)tenants, ten, v)
	{
		bool used = false;
		for (size_t i = 0; i < n && !used; i++)
			used = w[i].spec != NULL && strcmp(w[i].g.tenant, ten) == 0;
		snprintf(net, sizeof(net), "odx-%s", ten);
		if (!used && docker_network_remove(r->d, net) == 0)
			log_event(LOG_INFO, "network removed", json_pack("{s:s}", "network", net));
	}
}

/* The tenant's bridge network, made on first use; one we did not make is refused. */
static int ensure_network(struct reconciler *r, struct want *x)
{
	char net[NAME_LEN + 1], id[DOCKER_ID_LEN + 1];
	json_t *info = NULL, *labels;
	int rc;

	snprintf(net, sizeof(net), "odx-%s", x->g.tenant);
	rc = docker_network_inspect(r->d, net, &info);
	if (rc == ODX_ENOTFOUND) {
		labels = json_pack("{s:s}", LABEL_TENANT, x->g.tenant);
		rc = labels ? docker_network_create(r->d, net, labels, false, id) : ODX_ENOMEM;
		json_decref(labels);
		if (rc == 0)
			log_event(LOG_INFO, "network created", json_pack("{s:s}", "network", net));
		if (rc != ODX_ECONFLICT)
			return rc < 0 ? fail(r, x, "cannot create the network", rc) : 0;
		rc = docker_network_inspect(r->d, net, &info); /* made meanwhile: check it */
	}
	if (rc < 0)
		return fail(r, x, "cannot inspect the network", rc);
	rc = strcmp(label(info, LABEL_TENANT), x->g.tenant) == 0 ? 0 : ODX_ECONFLICT;
	json_decref(info);
	return rc < 0 ? set_error(x, rc, net, "a network Odysseus did not make has this name") : 0;
}

static int ensure_image(struct reconciler *r, struct want *x)
{
	json_t *info = NULL;
	int rc = docker_image_inspect(r->d, x->g.image, &info);

	json_decref(info);
	if (rc != ODX_ENOTFOUND)
		return rc < 0 ? fail(r, x, "cannot inspect the image", rc) : 0;
	log_event(LOG_INFO, "pulling an image", json_pack("{s:s}", "image", x->g.image));
	rc = docker_image_pull(r->d, x->g.image);
	return rc < 0 ? fail(r, x, "cannot pull the image", rc) : 0;
}

static int start(struct reconciler *r, struct want *x, const char *id)
{
	int rc = docker_container_start(r->d, id);
	if (rc < 0)
		return fail(r, x, "cannot start the container", rc);
	x->rec->started_ns = time_mono_ns();
	x->rec->held = false;
	log_ctr(LOG_INFO, "container started", x->g.ctr, id);
	return 0;
}

static int64_t retry_delay(unsigned quick)
{
	if (quick <= 1)
		return 0;
	int64_t d = NSEC_PER_SEC << (quick - 2 < 6 ? quick - 2 : 6);
	return d < RETRY_MAX_NS ? d : RETRY_MAX_NS;
}

/* Brings *wake forward to at (monotonic ns). */
static void wake_at(int64_t *wake, int64_t at)
{
	if (*wake == 0 || at < *wake)
		*wake = at;
}

/* ---- secrets (docs/agent.md "Secrets") ------------------------------------------------- */

static bool wants_secrets(const struct want *x)
{
	return json_array_size(x->g.secrets) > 0;
}

static bool names_has(const json_t *names, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(names, i, v)
	{
		if (strcmp(json_string_value(v), name) == 0)
			return true;
	}
	return false;
}

#define BUNDLE_SHAPE "the answer is not {\"secrets\": [{name, version, value_b64}]}"
#define BUNDLE_OTHER "the answer does not hold exactly the assignment's secrets"

/* Entry i of the bundle: well formed, a name the assignment has, not seen before. */
static int item_check(const json_t *list, size_t i, const json_t *names, const char **why)
{
	json_t *it = json_array_get(list, i);
	const char *name, *b64;
	json_int_t version;

	*why = BUNDLE_SHAPE;
	if (json_unpack_ex(it, NULL, JSON_STRICT, "{s:s, s:I, s:s}", "name", &name, "version",
			   &version, "value_b64", &b64) < 0 ||
	    !in_range(version, 1, REVISION_HI))
		return ODX_EINVAL;
	*why = "a value is longer than 64 KiB";
	if (json_string_length(json_object_get(it, "value_b64")) > VALUE_B64_MAX)
		return ODX_ETOOBIG;
	*why = BUNDLE_OTHER;
	if (!names_has(names, name))
		return ODX_EINVAL;
	for (size_t j = 0; j < i; j++)
		if (json_equal(json_object_get(it, "name"),
			       json_object_get(json_array_get(list, j), "name")))
			return ODX_EINVAL;
	return 0;
}

/*
 * The control plane's bundle, checked as strictly as any other message:
 * {"secrets": [{name, version >= 1, value_b64}]}, exactly the secrets the
 * assignment names, each once, each value at most 64 KiB. *items is the
 * array (borrowed from bundle). *why never quotes the answer.
 */
static int bundle_check(const json_t *bundle, const json_t *names, json_t **items, const char **why)
{
	json_t *list;
	int rc;

	*why = BUNDLE_SHAPE;
	if (json_unpack_ex((json_t *)bundle, NULL, JSON_STRICT, "{s:o}", "secrets", &list) < 0 ||
	    !json_is_array(list))
		return ODX_EINVAL;
	for (size_t i = 0; i < json_array_size(list); i++)
		if ((rc = item_check(list, i, names, why)) < 0)
			return rc;
	*why = BUNDLE_OTHER;
	if (json_array_size(list) != json_array_size(names))
		return ODX_EINVAL;
	*items = list;
	return 0;
}

/* Decodes each value into one buffer, writes it, and wipes the buffer. */
static int write_all(struct want *x, const json_t *items, const struct secretfs_mount *m)
{
	uint8_t *buf = malloc(SECRETFS_VALUE_MAX);
	size_t i, n = 0;
	json_t *it;
	int rc =
	    buf != NULL ? 0 : set_error(x, ODX_ENOMEM, "cannot write the secrets", "out of memory");

	json_array_foreach(items, i, it)
	{
		const json_t *v = json_object_get(it, "value_b64");
		if (rc < 0)
			break;
		rc = b64url_decode(json_string_value(v), json_string_length(v), buf,
				   SECRETFS_VALUE_MAX, &n);
		if (rc < 0) {
			set_error(x, rc, "the control plane's secrets were refused",
				  "a value is not base64url of at most 64 KiB");
			break;
		}
		rc = secretfs_write(m, json_string_value(json_object_get(it, "name")), buf, n,
				    (uid_t)x->g.uid, (gid_t)x->g.gid);
		if (rc < 0)
			set_error(x, rc, "cannot write the secrets", odx_strerror(rc));
	}
	if (buf != NULL) {
		explicit_bzero(buf, SECRETFS_VALUE_MAX);
		free(buf);
	}
	return rc;
}

/* HostConfig.Mounts: the container's tmpfs, read-only; the only host path ever mounted. */
static int add_mount(struct want *x, const char *dir)
{
	json_t *mounts = json_pack("[{s:s, s:s, s:s, s:b}]", "Type", "bind", "Source", dir,
				   "Target", SECRETFS_TARGET, "ReadOnly", 1);

	if (mounts == NULL ||
	    json_object_set_new(json_object_get(x->spec, "HostConfig"), "Mounts", mounts) < 0)
		return set_error(x, ODX_ENOMEM, "cannot deliver the secrets", "out of memory");
	return 0;
}

static void say_delivered(const struct want *x, const json_t *items)
{
	json_t *versions = json_object(), *it;
	size_t i;

	json_array_foreach(items, i, it)
	{
		json_object_set(versions, json_string_value(json_object_get(it, "name")),
				json_object_get(it, "version"));
	}
	log_event(LOG_INFO, "secrets delivered",
		  json_pack("{s:s, s:o*}", "container", x->g.ctr, "versions", versions));
}

static void say_swappable(struct reconciler *r)
{
	if (r->swap_said)
		return;
	r->swap_said = true;
	log_event(LOG_WARN,
		  "this kernel's tmpfs refuses noswap (Linux < 6.4): secret pages could reach swap",
		  NULL);
}

/*
 * Mounts a new tmpfs for x, fetches its bundle, writes the files and seals
 * the mount, then adds the mount to x's spec. The mount comes first: no
 * value is asked for that could not be delivered safely. Any failure
 * leaves nothing behind and is x's error.
 */
static int deliver_now(struct reconciler *r, struct want *x)
{
	struct secretfs_mount m = {.fd = -1};
	char err[RECONCILE_ERR_LEN] = "", why[RECONCILE_ERR_LEN];
	const char *bad;
	json_t *bundle = NULL, *items = NULL;
	bool swappable = false;
	int rc;

	if (r->fetch == NULL)
		return set_error(x, ODX_EINVAL, "cannot deliver the secrets",
				 "this agent has no source of secrets");
	rc = secretfs_mount(r->secrets_root, x->g.ctr, &m, &swappable);
	if (rc < 0)
		return set_error(x, rc, "cannot mount a tmpfs for secrets", odx_strerror(rc));
	if (swappable)
		say_swappable(r);
	rc = r->fetch(r->fetch_arg, x->g.ctr, &bundle, err);
	if (rc < 0) {
		client_sanitize(err[0] ? err : odx_strerror(rc), why, sizeof(why));
		set_error(x, rc, "cannot fetch the secrets", why);
	} else if ((rc = bundle_check(bundle, x->g.secrets, &items, &bad)) < 0) {
		set_error(x, rc, "the control plane's secrets were refused", bad);
	} else if ((rc = write_all(x, items, &m)) == 0 &&
		   (rc = secretfs_seal(&m, (gid_t)x->g.gid)) < 0) {
		set_error(x, rc, "cannot seal the secrets' tmpfs", odx_strerror(rc));
	}
	if (rc == 0)
		rc = add_mount(x, m.path);
	if (rc == 0)
		say_delivered(x, items);
	else
		secretfs_abort(&m);
	json_decref(bundle); /* the wiping allocator zeroes the values' text */
	return rc;
}

/*
 * deliver_now with backoff: after a failure the next try waits 1 s, 2 s, …
 * 60 s (the error stays meanwhile). Never ODX_EUNAVAIL: that would end the
 * pass, and only the Engine's absence may.
 */
static int deliver(struct reconciler *r, struct want *x, int64_t *wake)
{
	struct rec *c = x->rec;
	int64_t now = time_mono_ns();

	if (now < c->deliver_ns) {
		wake_at(wake, c->deliver_ns);
		memcpy(c->error, c->deliver_error, sizeof(c->error));
		return ODX_EBUSY;
	}
	int rc = deliver_now(r, x);
	if (rc == 0 || rc == -ECANCELED) {
		c->deliver_fails = 0;
		c->deliver_ns = 0;
		return rc;
	}
	c->deliver_fails++;
	c->deliver_ns = now + retry_delay(c->deliver_fails + 1);
	wake_at(wake, c->deliver_ns);
	memcpy(c->deliver_error, c->error, sizeof(c->error));
	return rc == ODX_EUNAVAIL ? ODX_EIO : rc;
}

/* Unmounts and removes ctr's secrets (nothing there is fine). */
static void drop_secrets(struct reconciler *r, const char *ctr)
{
	if (!r->secrets_root[0])
		return;
	int rc = secretfs_remove(r->secrets_root, ctr);
	if (rc < 0)
		log_event(LOG_WARN, "cannot remove a container's secrets",
			  json_pack("{s:s, s:s}", "container", ctr, "error", odx_strerror(rc)));
}

static bool has_container(const char *ctr, void *list)
{
	size_t i;
	json_t *c;

	json_array_foreach((json_t *)list, i, c)
	{
		if (strcmp(label(c, LABEL_CTR), ctr) == 0)
			return true;
	}
	return false;
}

/* Removes the secrets of containers that no longer exist (list: this node's, just listed). */
static void sweep_secrets(struct reconciler *r, const json_t *list)
{
	size_t removed = 0;

	if (!r->secrets_root[0])
		return;
	int rc = secretfs_sweep(r->secrets_root, has_container, (void *)list, &removed);
	if (removed > 0)
		log_event(LOG_INFO, "secrets of removed containers unmounted",
			  json_pack("{s:I}", "count", (json_int_t)removed));
	if (rc < 0 && rc != r->sweep_rc)
		log_event(LOG_WARN, "cannot remove the secrets of a container that is gone",
			  json_pack("{s:s}", "error", odx_strerror(rc)));
	r->sweep_rc = rc;
}

static int create(struct reconciler *r, struct want *x, int64_t *wake)
{
	char name[NAME_LEN + 1], id[DOCKER_ID_LEN + 1];
	bool run = strcmp(x->g.state, "running") == 0;
	/* Secrets only for a container about to run; a stopped one gets them when it starts. */
	bool secrets = run && wants_secrets(x);
	int rc = ensure_network(r, x);

	if (rc == 0)
		rc = ensure_image(r, x);
	if (rc == 0 && secrets)
		rc = deliver(r, x, wake);
	if (rc < 0)
		return rc;
	snprintf(name, sizeof(name), "odx-%s", x->g.ctr);
	if (json_object_set_new(json_object_get(x->spec, "Labels"), LABEL_NODE,
				json_string(r->node)) < 0)
		rc = set_error(x, ODX_ENOMEM, "refused", "out of memory");
	else if ((rc = docker_container_create(r->d, name, x->spec, id)) == ODX_ECONFLICT)
		set_error(x, rc, name,
			  "the name is in use (a container being removed, or one "
			  "Odysseus did not make)");
	else if (rc < 0)
		fail(r, x, "cannot create the container", rc);
	if (rc < 0) {
		if (secrets)
			drop_secrets(r, x->g.ctr);
		return rc;
	}
	log_ctr(LOG_INFO, "container created", x->g.ctr, id);
	return run ? start(r, x, id) : 0;
}

/* A container that should run has exited or died: replace it, with backoff. */
static int recreate(struct reconciler *r, struct want *x, int64_t *wake)
{
	struct rec *c = x->rec;
	const char *id = field(x->cur, "Id");
	int64_t now = time_mono_ns();

	if (strcmp(c->crash_id, id) != 0) { /* a crash not counted yet */
		memcpy(c->crash_id, id, DOCKER_ID_LEN + 1);
		bool quick = c->started_ns != 0 && now - c->started_ns < QUICK_NS;
		c->quick = quick ? c->quick + 1 : 0;
		c->retry_ns = now + retry_delay(c->quick);
	}
	if (wants_secrets(x))
		drop_secrets(r, x->g.ctr); /* it stopped: its secrets go now, a new tmpfs comes */
	if (now < c->retry_ns) {
		wake_at(wake, c->retry_ns);
		return 0;
	}
	int rc = docker_container_remove(r->d, id);
	if (rc < 0 && rc != ODX_ENOTFOUND)
		return fail(r, x, "cannot remove the dead container", rc);
	c->restarts++;
	log_ctr(LOG_INFO, "replacing a container that stopped", x->g.ctr, id);
	return create(r, x, wake);
}

/*
 * A container to start whose secrets are not mounted (it was created or
 * stopped without them, or the host restarted): made anew, so that it gets
 * a new tmpfs and a fresh fetch.
 */
static int replace(struct reconciler *r, struct want *x, const char *id, int64_t *wake)
{
	int rc = docker_container_remove(r->d, id);

	if (rc < 0 && rc != ODX_ENOTFOUND)
		return fail(r, x, "cannot remove the container", rc);
	log_ctr(LOG_INFO, "replacing a container to give it its secrets", x->g.ctr, id);
	return create(r, x, wake);
}

/* One assignment towards its state. Returns ODX_EUNAVAIL to end the pass. */
static int converge(struct reconciler *r, struct want *x, int64_t *wake)
{
	const char *st = x->cur ? field(x->cur, "State") : NULL, *id;
	int rc;

	if (x->spec == NULL)
		return 0;
	if (st == NULL)
		return create(r, x, wake);
	id = field(x->cur, "Id");
	if (strcmp(x->g.state, "stopped") == 0) {
		x->rec->held = true;
		if (strcmp(st, "running") != 0 && strcmp(st, "restarting") != 0 &&
		    strcmp(st, "paused") != 0)
			rc = 0;
		else if ((rc = docker_container_stop(r->d, id, STOP_GRACE_S)) == 0)
			log_ctr(LOG_INFO, "container stopped", x->g.ctr, id);
		if (rc == 0 && wants_secrets(x))
			drop_secrets(r, x->g.ctr); /* a stopped container keeps no secrets */
		return rc < 0 ? fail(r, x, "cannot stop the container", rc) : 0;
	}
	if (strcmp(st, "created") == 0 || (strcmp(st, "exited") == 0 && x->rec->held)) {
		if (wants_secrets(x) && !secretfs_mounted(r->secrets_root, x->g.ctr))
			return replace(r, x, id, wake);
		return start(r, x, id);
	}
	if (strcmp(st, "exited") == 0 || strcmp(st, "dead") == 0)
		return recreate(r, x, wake);
	return 0; /* running, or paused/restarting by someone: left alone */
}

/* ---- the report ------------------------------------------------------------------------ */

static const char *report_state(const char *docker_state)
{
	static const char *const same[] = {"created", "running", "exited", "dead"};
	for (size_t i = 0; i < 4; i++)
		if (strcmp(docker_state, same[i]) == 0)
			return same[i];
	if (strcmp(docker_state, "paused") == 0 || strcmp(docker_state, "restarting") == 0)
		return "running";
	return "exited"; /* removing */
}

/* Fills c's cached state from an inspect when the list shows something new. */
static int observe(struct reconciler *r, struct rec *c, const json_t *listed)
{
	const char *id = field(listed, "Id"), *st = field(listed, "State");
	json_t *info = NULL, *s;
	int64_t ns;

	if (strcmp(c->docker_id, id) == 0 && strcmp(c->dstate, st) == 0)
		return 0;
	int rc = docker_container_inspect(r->d, id, &info);
	if (rc < 0)
		return rc;
	s = json_object_get(info, "State");
	const char *status = json_string_value(json_object_get(s, "Status"));
	const char *at = json_string_value(json_object_get(s, "StartedAt"));
	json_int_t code = json_integer_value(json_object_get(s, "ExitCode"));
	snprintf(c->docker_id, sizeof(c->docker_id), "%s", id);
	snprintf(c->dstate, sizeof(c->dstate), "%s", status ? status : st);
	c->exit_code = in_range(code, -1, 255) ? (int)code : -1;
	c->started_at[0] = '\0';
	if (at != NULL && time_parse_rfc3339(at, &ns) == 0 && ns > 0)
		time_format_rfc3339(ns, c->started_at);
	json_decref(info);
	return 0;
}

/* The listed container of x's ctr id and revision (the running one if two). */
static const json_t *find_listed(const json_t *list, struct want *x)
{
	const json_t *found = NULL, *c;
	char rev[24];
	size_t i;

	snprintf(rev, sizeof(rev), "%lld", (long long)x->g.revision);
	json_array_foreach(list, i, c)
	{
		if (strcmp(label(c, LABEL_CTR), x->g.ctr) == 0 &&
		    strcmp(label(c, LABEL_REVISION), rev) == 0 && docker_id_valid(field(c, "Id")) &&
		    (found == NULL || running(c)))
			found = c;
	}
	return found;
}

/*
 * Reads one number from the first of the cgroup files that exists (v1 with the
 * cgroupfs driver, v1 with systemd, v2): -1 when none does.
 */
struct cgpath {
	const char *pre, *post; /* the path is pre <container id> post */
};

static int64_t cgroup_read(const struct cgpath paths[], size_t n, const char *id,
			   const char *key)
{
	for (size_t i = 0; i < n; i++) {
		char path[256], buf[4096];
		snprintf(path, sizeof(path), "%s%s%s", paths[i].pre, id, paths[i].post);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = '\0';
		const char *p = buf;
		if (key) { /* "key value" lines (cpu.stat) */
			p = strstr(buf, key);
			if (!p)
				return -1;
			p += strlen(key);
		}
		char *end;
		long long v = strtoll(p, &end, 10);
		return end != p && v >= 0 ? v : -1;
	}
	return -1;
}

/*
 * Memory in use and CPU share since the previous sample (SPEC §5: stats in
 * heartbeats), from the container's cgroup: no Engine call, which would wait
 * for the Engine's one-second stats tick on the reconcile thread.
 */
static void sample_stats(struct reconciler *r, struct rec *c)
{
	(void)r;
	static const struct cgpath mem[] = {
	    {"/sys/fs/cgroup/memory/docker/", "/memory.usage_in_bytes"},
	    {"/sys/fs/cgroup/memory/system.slice/docker-", ".scope/memory.usage_in_bytes"},
	    {"/sys/fs/cgroup/system.slice/docker-", ".scope/memory.current"},
	    {"/sys/fs/cgroup/docker/", "/memory.current"}};
	static const struct cgpath cpu_ns[] = {
	    {"/sys/fs/cgroup/cpuacct/docker/", "/cpuacct.usage"},
	    {"/sys/fs/cgroup/cpuacct/system.slice/docker-", ".scope/cpuacct.usage"}};
	static const struct cgpath cpu_us[] = {
	    {"/sys/fs/cgroup/system.slice/docker-", ".scope/cpu.stat"},
	    {"/sys/fs/cgroup/docker/", "/cpu.stat"}};
	int64_t now = time_mono_ns();
	if ((c->stats_ns && now - c->stats_ns < STATS_EVERY_NS) || !c->docker_id[0])
		return;
	int64_t m = cgroup_read(mem, 4, c->docker_id, NULL);
	int64_t used = cgroup_read(cpu_ns, 2, c->docker_id, NULL);
	if (used < 0) {
		int64_t us = cgroup_read(cpu_us, 2, c->docker_id, "usage_usec ");
		used = us < 0 ? -1 : us * 1000;
	}
	if (m < 0 && used < 0)
		return;
	c->mem_bytes = m;
	c->cpu_percent = -1;
	if (c->stats_ns && used >= 0 && (uint64_t)used >= c->cpu_total)
		c->cpu_percent = (double)((uint64_t)used - c->cpu_total) / (double)(now - c->stats_ns) *
				 100.0;
	c->cpu_total = used < 0 ? 0 : (uint64_t)used;
	c->stats_ns = now;
}

static json_t *report_one(struct reconciler *r, const json_t *list, struct want *x)
{
	struct rec *c = x->rec;
	const json_t *listed = x->spec ? find_listed(list, x) : NULL;
	json_t *e = json_pack("{s:s, s:I, s:i}", "container", c->ctr, "revision", x->g.revision,
			      "restarts", (int)c->restarts);
	int rc = 0;

	if (e == NULL)
		return NULL;
	if (x->g.image != NULL && image_valid(x->g.image))
		rc |= json_object_set_new(e, "image", json_string(x->g.image));
	if (listed != NULL && observe(r, c, listed) == 0) {
		rc |= json_object_set_new(e, "docker_id", json_string(c->docker_id));
		rc |= json_object_set_new(e, "state", json_string(report_state(c->dstate)));
		rc |= json_object_set_new(e, "exit_code", json_integer(c->exit_code));
		if (c->started_at[0])
			rc |= json_object_set_new(e, "started_at", json_string(c->started_at));
		if (strcmp(c->dstate, "running") == 0)
			sample_stats(r, c);
		if (c->stats_ns && c->mem_bytes >= 0)
			rc |= json_object_set_new(e, "memory_bytes", json_integer(c->mem_bytes));
		if (c->stats_ns && c->cpu_percent >= 0)
			rc |= json_object_set_new(e, "cpu_percent", json_real(c->cpu_percent));
	} else {
		rc |= json_object_set_new(e, "state", json_string("missing"));
	}
	if (c->error[0])
		rc |= json_object_set_new(e, "error", json_string(c->error));
	if (rc != 0) {
		json_decref(e);
		return NULL;
	}
	return e;
}

static json_t *report_build(struct reconciler *r, const json_t *list, struct want *w, size_t n)
{
	json_t *out = json_array();

	for (size_t i = 0; out != NULL && i < n; i++) {
		if (w[i].rec == NULL)
			continue;
		if (json_array_append_new(out, report_one(r, list, &w[i])) < 0) {
			json_decref(out);
			out = NULL;
		}
	}
	return out;
}

/*
 * Lists this node's containers: labelled with its id, so nothing else is
 * ever touched, not even another agent's on the same Engine.
 */
static int list_ours(struct reconciler *r, json_t **out)
{
	json_t *list = NULL;
	int rc = docker_container_list(r->d, r->node_label, &list);

	if (rc == 0 && !json_is_array(list))
		rc = ODX_EIO;
	if (rc < 0) {
		json_decref(list);
		return rc;
	}
	*out = list;
	return 0;
}

/*
 * The Engine sends "die" before its container list says so: the containers
 * named in die and oom events are asked directly (an inspect waits for the
 * exit to be recorded) and their listed State is corrected.
 */
static int refresh_suspects(struct reconciler *r, json_t *list, const json_t *suspects)
{
	size_t i;
	json_t *c, *info;

	json_array_foreach(list, i, c)
	{
		const char *id = field(c, "Id"), *st;
		if (json_object_get(suspects, id) == NULL)
			continue;
		info = NULL;
		int rc = docker_container_inspect(r->d, id, &info);
		if (rc == ODX_EUNAVAIL)
			return rc;
		st = json_string_value(json_object_get(json_object_get(info, "State"), "Status"));
		if (rc == ODX_ENOTFOUND)
			st = "removing"; /* gone: nothing to match */
		if (st != NULL)
			json_object_set_new(c, "State", json_string(st));
		json_decref(info);
	}
	return 0;
}

/*
 * Converges to desired. Returns 0 with *report the new containers array
 * once the Engine was reached (per-container failures are in it), or an
 * error (ODX_EUNAVAIL: the Engine cannot be reached; -ECANCELED: stopping).
 */
static int pass(struct reconciler *r, const json_t *desired, const json_t *suspects, int64_t *wake,
		json_t **report)
{
	size_t n = json_array_size(desired), i;
	struct want *w = calloc(n ? n : 1, sizeof(*w));
	json_t *list = NULL, *tenants = json_object(), *out;
	int rc = ODX_ENOMEM;

	if (w == NULL || tenants == NULL || (rc = list_ours(r, &list)) < 0 ||
	    (rc = refresh_suspects(r, list, suspects)) < 0)
		goto out;
	for (i = 0; i < r->nrecs; i++)
		r->recs[i]->used = false;
	prepare(r, desired, w);
	if ((rc = match(r, list, w, n, tenants)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		if (stopping(r)) {
			rc = -ECANCELED;
			goto out;
		}
		if ((rc = converge(r, &w[i], wake)) == ODX_EUNAVAIL)
			goto out;
	}
	drop_networks(r, tenants, w, n);
	json_decref(list);
	list = NULL;
	if ((rc = list_ours(r, &list)) < 0)
		goto out;
	sweep_secrets(r, list);
	if ((out = report_build(r, list, w, n)) == NULL) {
		rc = ODX_ENOMEM;
		goto out;
	}
	recs_prune(r);
	*report = out;
out:
	for (i = 0; w != NULL && i < n; i++)
		json_decref(w[i].spec);
	free(w);
	json_decref(list);
	json_decref(tenants);
	return rc;
}

/* ---- the threads -------------------------------------------------------------------------- */

static void say_reachable(struct reconciler *r, int rc)
{
	bool down = rc == ODX_EUNAVAIL;

	if (rc == -ECANCELED)
		return; /* stopping */
	if (down && !r->down)
		log_event(LOG_WARN, "the Docker Engine cannot be reached; retrying",
			  json_pack("{s:s}", "error", odx_strerror(rc)));
	else if (!down && r->down)
		log_event(LOG_INFO, "the Docker Engine answers again", NULL);
	else if (rc < 0 && !down)
		log_event(LOG_WARN, "a reconcile pass failed",
			  json_pack("{s:s}", "error", odx_strerror(rc)));
	r->down = down;
}

/*
 * Before the first assignments: removes the secrets of containers that are
 * gone (an agent that crashed, a container removed meanwhile). Reads the
 * Engine, changes nothing on it.
 */
static void sweep_idle(struct reconciler *r)
{
	json_t *list = NULL;

	if (r->swept || !r->secrets_root[0] || list_ours(r, &list) < 0)
		return;
	sweep_secrets(r, list);
	r->swept = true;
	json_decref(list);
}

static void *converge_main(void *arg)
{
	struct reconciler *r = arg;
	int64_t wake = 0; /* a crash replacement due before the next period */

	pthread_mutex_lock(&r->mu);
	while (!stopping(r)) {
		int64_t until = time_mono_ns() + r->period_ns;
		if (wake != 0 && wake < until)
			until = wake;
		while (!stopping(r) && r->want == r->seen && time_mono_ns() < until)
			wait_until(r, until);
		if (stopping(r))
			break;
		uint64_t target = r->seen = r->want;
		json_t *desired = json_incref(r->desired), *report = NULL;
		json_t *suspects = r->suspects; /* ours now */
		r->suspects = NULL;
		pthread_mutex_unlock(&r->mu);

		int rc = 0;
		wake = 0;
		if (desired != NULL) {
			rc = pass(r, desired, suspects, &wake, &report);
			say_reachable(r, rc);
			r->swept = true;
		} else {
			sweep_idle(r);
		}
		json_decref(suspects);
		pthread_mutex_lock(&r->mu);
		json_decref(desired);
		if (desired != NULL) {
			json_decref(r->report);
			r->report = report;
		}
		r->done = target;
		r->last_rc = rc;
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static const char *event_type(const char *action, const char **health)
{
	static const char *const kinds[] = {"start", "die", "oom"};

	*health = NULL;
	for (size_t i = 0; i < 3; i++)
		if (strcmp(action, kinds[i]) == 0)
			return kinds[i];
	if (strncmp(action, "health_status: ", 15) == 0) {
		*health = action + 15;
		return "health_status";
	}
	return NULL;
}

/* An Engine event as the heartbeat reports it, or NULL when it is not one of ours. */
static json_t *event_take(const json_t *ev)
{
	const json_t *attrs = json_object_get(json_object_get(ev, "Actor"), "Attributes");
	const char *action = field(ev, "Action"), *ctr = field(attrs, LABEL_CTR), *health, *type;
	json_int_t tn = json_integer_value(json_object_get(ev, "timeNano"));
	char t[TIME_RFC3339_LEN];
	int64_t code;

	if (strcmp(field(ev, "Type"), "container") != 0 || !random_id_valid("ctr", ctr) ||
	    (type = event_type(action, &health)) == NULL)
		return NULL;
	time_format_rfc3339(tn > 0 ? tn : time_now_ns(), t);
	json_t *e = json_pack("{s:s, s:s, s:s}", "container", ctr, "type", type, "time", t);
	if (e != NULL && strcmp(type, "die") == 0 &&
	    parse_int64(field(attrs, "exitCode"), 0, 255, &code) == 0)
		json_object_set_new(e, "exit_code", json_integer(code));
	if (e != NULL && health != NULL &&
	    (strcmp(health, "healthy") == 0 || strcmp(health, "unhealthy") == 0 ||
	     strcmp(health, "starting") == 0))
		json_object_set_new(e, "health", json_string(health));
	return e;
}

static int on_event(const json_t *ev, void *arg)
{
	struct reconciler *r = arg;
	json_t *e = event_take(ev);

	if (e == NULL)
		return 0;
	const char *type = json_string_value(json_object_get(e, "type"));
	const char *id = field(json_object_get(ev, "Actor"), "ID");
	bool suspect =
	    (strcmp(type, "die") == 0 || strcmp(type, "oom") == 0) && docker_id_valid(id);
	pthread_mutex_lock(&r->mu);
	if (suspect && r->suspects == NULL)
		r->suspects = json_object();
	if (suspect && json_object_size(r->suspects) < SUSPECTS_MAX)
		json_object_set_new(r->suspects, id, json_true());
	queue_push(r, e);
	ask_pass_locked(r);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

/* Sleeps ms unless stopping. */
static void nap(struct reconciler *r, int64_t ms)
{
	int64_t until = time_mono_ns() + ms * 1000000;

	pthread_mutex_lock(&r->mu);
	while (!stopping(r) && time_mono_ns() < until)
		wait_until(r, until);
	pthread_mutex_unlock(&r->mu);
}

static void *events_main(void *arg)
{
	struct reconciler *r = arg;
	struct agent_backoff b;
	json_t *filters = json_pack("{s:[s], s:[s], s:[s, s, s, s]}", "type", "container", "label",
				    r->node_label, "event", "start", "die", "oom", "health_status");

	agent_backoff_reset(&b);
	while (filters != NULL && !stopping(r)) {
		int64_t t0 = time_mono_ns();
		docker_events(r->ev, filters, &r->ev_stop, on_event, r);
		if (stopping(r))
			break;
		/* Events may have been missed while the stream was down. */
		pthread_mutex_lock(&r->mu);
		ask_pass_locked(r);
		pthread_mutex_unlock(&r->mu);
		if (time_mono_ns() - t0 > 30 * NSEC_PER_SEC)
			agent_backoff_reset(&b);
		nap(r, agent_backoff_next(&b));
	}
	json_decref(filters);
	return NULL;
}

/* ---- the interface ------------------------------------------------------------------------ */

static int init_sync(struct reconciler *r)
{
	pthread_condattr_t ca;
	int rc = ODX_ENOMEM;

	if (pthread_condattr_init(&ca) != 0)
		return rc;
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
	    pthread_cond_init(&r->cv, &ca) == 0) {
		if (pthread_mutex_init(&r->mu, NULL) == 0)
			rc = 0;
		else
			pthread_cond_destroy(&r->cv);
	}
	pthread_condattr_destroy(&ca);
	return rc;
}

/* Takes the secrets' source and makes their directory. */
static int init_secrets(struct reconciler *r, const struct reconcile_secrets *sec)
{
	if (sec == NULL)
		return 0;
	if (sec->dir == NULL || sec->fetch == NULL)
		return ODX_EINVAL;
	r->fetch = sec->fetch;
	r->fetch_arg = sec->arg;
	r->want = 1; /* a first turn at once: sweep_idle */
	return secretfs_init(sec->dir, r->secrets_root);
}

int reconcile_new(const char *docker_socket, const char *node_id, int period_ms,
		  const struct reconcile_secrets *secrets, struct reconciler **out)
{
	struct reconciler *r;
	int rc;

	if (!agent_node_id_valid(node_id))
		return ODX_EINVAL;
	size_t n = strlen(node_id);
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return ODX_ENOMEM;
	if ((rc = init_secrets(r, secrets)) < 0) {
		free(r);
		return rc;
	}
	memcpy(r->node, node_id, n + 1);
	snprintf(r->node_label, sizeof(r->node_label), "%s=%s", LABEL_NODE, node_id);
	r->period_ns = (int64_t)(period_ms > 0 ? period_ms : RECONCILE_PERIOD_MS) * 1000000;
	atomic_init(&r->stopping, false);
	if ((rc = init_sync(r)) < 0) {
		free(r);
		return rc;
	}
	rc = docker_open(docker_socket, 0, &r->d);
	if (rc == 0)
		rc = docker_open(docker_socket, 0, &r->ev);
	if (rc == 0)
		rc = pthread_create(&r->converge_t, NULL, converge_main, r) == 0 ? 0 : ODX_ENOMEM;
	r->converge_on = rc == 0;
	if (rc == 0)
		rc = pthread_create(&r->events_t, NULL, events_main, r) == 0 ? 0 : ODX_ENOMEM;
	r->events_on = rc == 0;
	if (rc < 0) {
		reconcile_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void reconcile_stop(struct reconciler *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	atomic_store(&r->stopping, true);
	r->ev_stop = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

void reconcile_free(struct reconciler *r)
{
	if (r == NULL)
		return;
	reconcile_stop(r);
	if (r->converge_on)
		pthread_join(r->converge_t, NULL);
	if (r->events_on)
		pthread_join(r->events_t, NULL);
	docker_close(r->d);
	docker_close(r->ev);
	json_decref(r->desired);
	json_decref(r->report);
	json_decref(r->suspects);
	for (size_t i = 0; i < r->len; i++)
		json_decref(r->queue[(r->head + i) % RECONCILE_EVENTS_MAX]);
	for (size_t i = 0; i < r->nrecs; i++)
		free(r->recs[i]);
	free(r->recs);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}

/* Says once per apply which entries cannot even be reported (no usable ctr id). */
static void log_unusable(const json_t *assignments)
{
	size_t i, bad = 0;
	json_t *a;

	json_array_foreach(assignments, i, a)
	{
		const char *ctr = json_string_value(json_object_get(a, "container"));
		bad += ctr == NULL || !random_id_valid("ctr", ctr);
		for (size_t j = 0; ctr != NULL && j < i; j++)
			bad += json_equal(
			    json_object_get(a, "container"),
			    json_object_get(json_array_get(assignments, j), "container"));
	}
	if (bad > 0)
		log_event(LOG_WARN, "refusing assignments without a valid or unique container id",
			  json_pack("{s:I}", "count", (json_int_t)bad));
}

int reconcile_apply(struct reconciler *r, const json_t *assignments)
{
	json_t *copy, *old;
	int rc;

	if (!json_is_array(assignments))
		return ODX_EINVAL;
	if (json_array_size(assignments) > RECONCILE_MAX)
		return ODX_ETOOBIG;
	log_unusable(assignments);
	if ((copy = json_deep_copy(assignments)) == NULL)
		return ODX_ENOMEM;
	pthread_mutex_lock(&r->mu);
	old = r->desired;
	r->desired = copy;
	ask_pass_locked(r);
	uint64_t target = r->want;
	while (!stopping(r) && r->done < target)
		pthread_cond_wait(&r->cv, &r->mu);
	rc = stopping(r) ? -ECANCELED : r->last_rc;
	json_decref(old);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int reconcile_report(struct reconciler *r, json_t **containers, json_t **events)
{
	json_t *c = NULL, *e = json_array();
	uint64_t dropped;

	pthread_mutex_lock(&r->mu);
	if (r->report != NULL)
		c = json_deep_copy(r->report);
	bool ok = e != NULL && (r->report == NULL || c != NULL);
	for (; ok && r->len > 0; r->len--) {
		json_array_append_new(e, r->queue[r->head]);
		r->head = (r->head + 1) % RECONCILE_EVENTS_MAX;
	}
	dropped = ok ? r->dropped : 0;
	if (ok)
		r->dropped = 0;
	pthread_mutex_unlock(&r->mu);
	if (!ok) {
		json_decref(c);
		json_decref(e);
		*containers = *events = NULL;
		return ODX_ENOMEM;
	}
	if (dropped > 0)
		log_event(LOG_WARN, "container events dropped: more than fit in one heartbeat",
			  json_pack("{s:I}", "count", (json_int_t)dropped));
	*containers = c;
	*events = e;
	return 0;
}
