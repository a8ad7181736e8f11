/*
 * run.c — see run.h.
 *
 * Locking: run.mu guards the credentials (cert, key, ca, their times and
 * generation) and the stop status; run.cv wakes sleepers when the agent
 * stops. stop is also an atomic so that curl's progress callback can read
 * it without the lock. Each thread owns its curl handle.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "agent/agent.h"
#include "agent/client.h"
#include "agent/reconcile.h"
#include "agent/run.h"
#include "agent/sample.h"
#include "agent/state.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "crypto/x509.h"
#include "docker/docker.h"

#define HEARTBEAT_DEFAULT_S 5
#define HEARTBEAT_MAX_S	    3600
#define POLL_PATH	    "/agent/v1/assignments?wait=30"
#define POLL_TIMEOUT_S	    45L /* the server answers within 30 s */
#define POLL_MIN_GAP_MS	    1000
#define ACTIONS_PATH	    "/agent/v1/actions?wait=30"
#define LOGS_MAX	    (512 * 1024) /* the control plane takes at most this much */
#define CALL_TIMEOUT_S	    30L
#define DOCKER_REFRESH_NS   (60 * NSEC_PER_SEC)
#define RENEW_NAP_MS	    60000 /* re-read the wall clock at least this often */
#define SIGNAL_POLL_MS	    250
#define PATH_LEN	    4096
#define NAME_LEN	    64

struct run {
	const char *dir;
	int dirfd;
	char key_new[PATH_LEN]; /* dir/node.key.new, for x509_make_key_and_csr */
	const char *docker_socket;
	char server[AGENT_URL_MAX];
	char node_id[X509_NODE_ID_MAX + 1];
	char name[NAME_LEN + 1];

	pthread_mutex_t mu;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC */
	atomic_bool stop;
	int status; /* the exit status once stopped */

	/* The identity in use: under mu; gen changes with each renewal. */
	uint64_t gen;
	char *cert, *key, *ca;
	int64_t not_before, not_after;

	atomic_int heartbeat_s;

	/* Makes the Engine hold what is assigned; has its own threads and lock. */
	struct reconciler *rec;
};

struct worker {
	struct run *r;
	const char *name; /* the thread, in log lines */
	struct client *c;
	uint64_t gen; /* the identity generation c presents */
	struct agent_backoff backoff;
	int64_t retry_ms; /* after CALL_RETRY: how long to wait */
	bool failing;	  /* the last call failed: say when it works again */
};

enum outcome { CALL_OK, CALL_RETRY, CALL_STOP };

/* ---- stopping and sleeping ------------------------------------------------------ */

static bool stopped(struct run *r)
{
	return atomic_load(&r->stop);
}

/* Stops every thread. The first non-zero status wins over a plain stop. */
static void run_stop(struct run *r, int status)
{
	pthread_mutex_lock(&r->mu);
	if (!atomic_load(&r->stop) || r->status == AGENT_EXIT_OK)
		r->status = status;
	atomic_store(&r->stop, true);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Sleeps ms unless the agent stops first. Returns false when it stopped. */
static bool run_sleep(struct run *r, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t ns = (int64_t)ts.tv_nsec + (ms % 1000) * 1000000;
	ts.tv_sec += (time_t)(ms / 1000 + ns / NSEC_PER_SEC);
	ts.tv_nsec = (long)(ns % NSEC_PER_SEC);

	pthread_mutex_lock(&r->mu);
	while (!atomic_load(&r->stop) && pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&r->mu);
	return !stopped(r);
}

/* ---- logging ------------------------------------------------------------------- */

static json_t *fields(const struct worker *w)
{
	return json_pack("{s:s}", "thread", w->name);
}

static void log_fields(enum log_level lvl, const char *msg, json_t *f, const char *k1, json_t *v1,
		       const char *k2, json_t *v2)
{
	if (f != NULL && k1 != NULL)
		json_object_set_new(f, k1, v1);
	else
		json_decref(v1);
	if (f != NULL && k2 != NULL)
		json_object_set_new(f, k2, v2);
	else
		json_decref(v2);
	log_event(lvl, msg, f);
}

static json_t *time_json(int64_t unix_s)
{
	char t[TIME_RFC3339_LEN];
	time_format_rfc3339(unix_s * NSEC_PER_SEC, t);
	return json_string(t);
}

/* ---- calls to the control plane --------------------------------------------------- */

/* Gives w's handle the current identity if a renewal replaced it. */
static int worker_refresh(struct worker *w)
{
	struct run *r = w->r;
	int rc = 0;

	pthread_mutex_lock(&r->mu);
	if (w->gen != r->gen) {
		rc = client_set_identity(w->c, r->cert, r->key, r->ca);
		if (rc == 0)
			w->gen = r->gen;
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static enum outcome worker_retry(struct worker *w, const char *path, long status, const char *error)
{
	json_t *f = fields(w);

	w->failing = true;
	w->retry_ms = agent_backoff_next(&w->backoff);
	if (f != NULL) {
		json_object_set_new(f, "call", json_string(path));
		if (status != 0)
			json_object_set_new(f, "status", json_integer(status));
		json_object_set_new(f, "error", json_string(error));
		json_object_set_new(f, "retry_in_ms", json_integer(w->retry_ms));
	}
	log_event(LOG_WARN, "control plane call failed", f);
	return CALL_RETRY;
}

/*
 * Sends one request with the current identity, whatever the answer's
 * status. CALL_OK: an answer is in rep (or *rc says why none came: then
 * rep->error may too). CALL_STOP: the agent is stopping (a signal, or this
 * very call found the node revoked). rep is always to be released with
 * client_reply_done.
 */
static enum outcome worker_send(struct worker *w, const char *method, const char *path,
				const json_t *body, long timeout_s, struct client_reply *rep,
				int *rc)
{
	struct run *r = w->r;

	memset(rep, 0, sizeof(*rep));
	*rc = worker_refresh(w);
	if (*rc < 0)
		return CALL_OK;
	*rc = client_request(w->c, method, path, body, timeout_s, rep);
	if (*rc == -ECANCELED || stopped(r))
		return CALL_STOP;
	if (*rc == 0 && rep->status == 401 && strstr(rep->error, "node revoked") != NULL) {
		log_fields(LOG_ERROR, "the control plane revoked this node; stopping", fields(w),
			   "call", json_string(path), NULL, NULL);
		run_stop(r, AGENT_EXIT_REFUSED);
		return CALL_STOP;
	}
	return CALL_OK;
}

/*
 * One call. CALL_OK: a 2xx answer in rep. CALL_RETRY: failed, logged, and
 * w->retry_ms says how long to wait. CALL_STOP: as worker_send. rep is
 * always to be released with client_reply_done.
 */
static enum outcome worker_call(struct worker *w, const char *method, const char *path,
				const json_t *body, long timeout_s, struct client_reply *rep)
{
	int rc;

	if (worker_send(w, method, path, body, timeout_s, rep, &rc) == CALL_STOP)
		return CALL_STOP;
	if (rc < 0)
		return worker_retry(w, path, 0, rep->error[0] ? rep->error : odx_strerror(rc));
	if (rep->status < 200 || rep->status > 299)
		return worker_retry(w, path, rep->status, rep->error);
	if (w->failing)
		log_fields(LOG_INFO, "control plane call succeeded again", fields(w), "call",
			   json_string(path), NULL, NULL);
	w->failing = false;
	agent_backoff_reset(&w->backoff);
	return CALL_OK;
}

/* ---- heartbeat ------------------------------------------------------------------ */

static json_int_t clamp(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)v;
}

static void refresh_docker_root(struct worker *w, char root[static SAMPLE_PATH_MAX])
{
	char found[SAMPLE_PATH_MAX];
	struct stat st;
	const char *source = "docker";

	if (sample_docker_root(w->r->docker_socket, &w->r->stop, found) < 0) {
		bool dflt = stat(SAMPLE_DOCKER_DEFAULT, &st) == 0 && S_ISDIR(st.st_mode);
		snprintf(found, sizeof(found), "%s", dflt ? SAMPLE_DOCKER_DEFAULT : "/");
		source = dflt ? "default" : "root file system";
	}
	if (strcmp(found, root) != 0) {
		log_fields(LOG_INFO, "docker data root", fields(w), "docker_root",
			   json_string(found), "source", json_string(source));
		memcpy(root, found, strlen(found) + 1);
	}
}

static json_t *heartbeat_body(const struct sample *s)
{
	return json_pack("{s:s, s:{s:I, s:I, s:I}, s:{s:f, s:I, s:I}, s:s}", "agent_version",
			 ODYSSEUS_VERSION, "capacity", "cpus", (json_int_t)s->cpus, "memory_bytes",
			 clamp(s->mem_total), "disk_bytes", clamp(s->disk_total), "usage",
			 "cpu_percent", s->cpu_percent, "memory_bytes", clamp(s->mem_used),
			 "disk_bytes", clamp(s->disk_used), "docker_root", s->docker_root);
}

/*
 * Adds the reconciler's "containers" (absent while the Engine cannot be
 * reached) and "events". Events stay in *pending until a heartbeat carrying
 * them succeeds; past RECONCILE_EVENTS_MAX the oldest go.
 */
static void add_containers(struct run *r, json_t *body, json_t **pending)
{
	json_t *containers = NULL, *events = NULL;

	if (body == NULL || reconcile_report(r->rec, &containers, &events) < 0)
		return;
	if (containers != NULL)
		json_object_set_new(body, "containers", containers);
	if (*pending == NULL) {
		*pending = events;
	} else {
		json_array_extend(*pending, events); /* out of memory: these are lost */
		json_decref(events);
	}
	while (json_array_size(*pending) > RECONCILE_EVENTS_MAX)
		json_array_remove(*pending, 0);
	if (json_array_size(*pending) > 0)
		json_object_set(body, "events", *pending);
}

static void take_interval(struct run *r, const json_t *body)
{
	json_t *v = json_object_get(body, "heartbeat_interval_s");
	json_int_t s = json_is_integer(v) ? json_integer_value(v) : 0;
	if (s >= 1 && s <= HEARTBEAT_MAX_S)
		atomic_store(&r->heartbeat_s, (int)s);
}

static void *heartbeat_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->r;
	struct sample s = {0};
	struct sample_cpu prev = {0};
	int64_t docker_at = 0;
	bool sample_warned = false;
	json_t *pending = NULL; /* events not yet delivered */

	while (!stopped(r)) {
		int64_t t0 = time_mono_ns();
		if (docker_at == 0 || t0 - docker_at >= DOCKER_REFRESH_NS) {
			refresh_docker_root(w, s.docker_root);
			docker_at = t0;
		}
		int rc = sample_collect(&s, &prev);
		if (rc < 0 && !sample_warned)
			log_fields(LOG_WARN, "cannot read some node figures; sending 0", fields(w),
				   "error", json_string(odx_strerror(rc)), NULL, NULL);
		sample_warned = rc < 0;
		json_t *body = heartbeat_body(&s);
		add_containers(r, body, &pending);
		struct client_reply rep = {0};
		enum outcome o =
		    body != NULL
			? worker_call(w, "POST", "/agent/v1/status", body, CALL_TIMEOUT_S, &rep)
			: worker_retry(w, "/agent/v1/status", 0, "out of memory");
		if (o == CALL_OK) {
			take_interval(r, rep.body);
			json_decref(pending);
			pending = NULL;
		}
		client_reply_done(&rep);
		json_decref(body);
		if (o == CALL_STOP)
			break;
		int64_t wait =
		    (int64_t)atomic_load(&r->heartbeat_s) * 1000 - (time_mono_ns() - t0) / 1000000;
		run_sleep(r, o == CALL_OK ? (wait > 0 ? wait : 0) : w->retry_ms);
	}
	json_decref(pending);
	return NULL;
}

/* ---- assignments ------------------------------------------------------------------ */

/*
 * Hands one answer to the reconciler; a malformed one is ignored and its
 * revision not taken. Per-container failures are the reconciler's to log
 * and report; an unreachable Engine it logs once.
 */
static void take_assignments(struct worker *w, const json_t *body, json_int_t *revision)
{
	json_t *v = json_object_get(body, "revision"), *a = json_object_get(body, "assignments");
	json_int_t rev = json_is_integer(v) ? json_integer_value(v) : -1;

	if (rev < 0 || !json_is_array(a)) {
		log_event(LOG_WARN, "the control plane's assignments are malformed; ignored",
			  fields(w));
		return;
	}
	if (rev != *revision)
		log_fields(LOG_INFO, "assignments", fields(w), "revision", json_integer(rev),
			   "count", json_integer((json_int_t)json_array_size(a)));
	*revision = rev;
	int rc = reconcile_apply(w->r->rec, a);
	if (rc == ODX_ETOOBIG || rc == ODX_ENOMEM)
		log_fields(LOG_ERROR, "cannot take the assignments; the previous ones stay",
			   fields(w), "error", json_string(odx_strerror(rc)), "count",
			   json_integer((json_int_t)json_array_size(a)));
}

static void *assignments_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->r;
	json_int_t revision = -1;
	char path[sizeof(POLL_PATH) + 32];

	while (!stopped(r)) {
		int64_t t0 = time_mono_ns();
		struct client_reply rep;
		/* No revision yet: without since, whatever is assigned comes at once. */
		if (revision < 0)
			snprintf(path, sizeof(path), "%s", POLL_PATH);
		else
			snprintf(path, sizeof(path), "%s&since=%lld", POLL_PATH,
				 (long long)revision);
		enum outcome o = worker_call(w, "GET", path, NULL, POLL_TIMEOUT_S, &rep);
		if (o == CALL_OK)
			take_assignments(w, rep.body, &revision);
		client_reply_done(&rep);
		if (o == CALL_STOP)
			break;
		/* A server that does not hold the poll must not make us spin. */
		int64_t took_ms = (time_mono_ns() - t0) / 1000000;
		if (o == CALL_RETRY)
			run_sleep(r, w->retry_ms);
		else if (took_ms < POLL_MIN_GAP_MS)
			run_sleep(r, POLL_MIN_GAP_MS - took_ms);
	}
	return NULL;
}

/* ---- actions (docs/deployments.md, Actions) --------------------------------------- */

/* The logs of one of our containers (named odx-<ctr id>), as the result body to post. */
static json_t *logs_result(struct docker **d, const char *socket, const json_t *act)
{
	const char *ctr = json_string_value(json_object_get(act, "container"));
	json_int_t tail = json_integer_value(json_object_get(act, "tail"));
	json_int_t since = json_integer_value(json_object_get(act, "since"));
	char name[80], *text = NULL;
	size_t len = 0;
	if (!ctr || strncmp(ctr, "ctr_", 4) != 0 || strlen(ctr) > 64 || tail < 1 || tail > 10000)
		return json_pack("{s:s}", "error", "bad_request");
	if (!*d && docker_open(socket, 15000, d) < 0)
		return json_pack("{s:s}", "error", "docker_unavailable");
	snprintf(name, sizeof(name), "odx-%s", ctr);
	int rc = docker_container_logs_since(*d, name, (int)tail, since > 0 ? since : 0, LOGS_MAX,
					     &text, &len);
	if (rc < 0)
		return json_pack("{s:s}", "error", rc == ODX_ENOTFOUND ? "not_found" : "docker_error");
	char *b64 = malloc(b64url_encoded_len(len) + 1);
	json_t *res = NULL;
	if (b64) {
		b64url_encode((const uint8_t *)text, len, b64);
		res = json_pack("{s:s}", "output_b64", b64);
	}
	free(b64);
	free(text);
	return res;
}

static void *actions_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->r;
	struct docker *d = NULL;

	while (!stopped(r)) {
		int64_t t0 = time_mono_ns();
		struct client_reply rep;
		enum outcome o = worker_call(w, "GET", ACTIONS_PATH, NULL, POLL_TIMEOUT_S, &rep);
		json_t *list = o == CALL_OK ? json_object_get(rep.body, "actions") : NULL;
		size_t i;
		json_t *act;
		json_array_foreach(list, i, act)
		{
			const char *id = json_string_value(json_object_get(act, "id"));
			const char *type = json_string_value(json_object_get(act, "type"));
			char path[128];
			if (!id || strlen(id) > 64 || !type || strcmp(type, "logs") != 0)
				continue;
			json_t *res = logs_result(&d, r->docker_socket, act);
			snprintf(path, sizeof(path), "/agent/v1/actions/%s/result", id);
			struct client_reply ack;
			if (res && worker_call(w, "POST", path, res, 15, &ack) == CALL_STOP)
				o = CALL_STOP;
			if (res)
				client_reply_done(&ack);
			json_decref(res);
		}
		client_reply_done(&rep);
		if (o == CALL_STOP)
			break;
		int64_t took_ms = (time_mono_ns() - t0) / 1000000;
		if (o == CALL_RETRY)
			run_sleep(r, w->retry_ms);
		else if (took_ms < POLL_MIN_GAP_MS && json_array_size(list) == 0)
			run_sleep(r, POLL_MIN_GAP_MS - took_ms);
	}
	docker_close(d);
	return NULL;
}

/* ---- secrets (docs/agent.md "Secrets") ------------------------------------------------- */

/*
 * The reconciler's reconcile_fetch_fn, on its converge thread with a
 * client of its own: GET /agent/v1/secrets/{ctr}. Failures are the
 * reconciler's to report and log (as the container's error, when it
 * changes); nothing here logs, and no answer is ever logged.
 */
static int fetch_secrets(void *arg, const char *ctr, json_t **bundle,
			 char err[static RECONCILE_ERR_LEN])
{
	struct worker *w = arg;
	struct client_reply rep;
	char path[96];
	int rc;

	snprintf(path, sizeof(path), "/agent/v1/secrets/%s", ctr);
	if (worker_send(w, "GET", path, NULL, CALL_TIMEOUT_S, &rep, &rc) == CALL_STOP) {
		client_reply_done(&rep);
		return -ECANCELED;
	}
	if (rc < 0) {
		snprintf(err, RECONCILE_ERR_LEN, "%s", rep.error[0] ? rep.error : odx_strerror(rc));
	} else if (rep.status != 200) {
		/* 404: not placed on this node; 403: not granted. */
		snprintf(err, RECONCILE_ERR_LEN, "%ld %s", rep.status, rep.error);
		rc = rep.status == 404 ? ODX_ENOTFOUND : ODX_EIO;
		rc = rep.status == 403 ? ODX_EFORBIDDEN : rc;
	} else {
		*bundle = rep.body;
		rep.body = NULL;
	}
	client_reply_done(&rep);
	return rc;
}

/* The secrets' source: a worker (and curl handle) for the converge thread. */
static int secrets_source(struct run *r, struct worker *w, char dir[static PATH_LEN],
			  struct reconcile_secrets *out)
{
	int n = snprintf(dir, PATH_LEN, "%s/secrets", r->dir);

	if (n < 0 || n >= PATH_LEN)
		return ODX_ETOOBIG;
	*w = (struct worker){.r = r, .name = "secrets"};
	agent_backoff_reset(&w->backoff);
	int rc = client_new(r->server, &w->c);
	if (rc < 0)
		return rc;
	client_set_stop(w->c, &r->stop);
	*out = (struct reconcile_secrets){.dir = dir, .fetch = fetch_secrets, .arg = w};
	return 0;
}

/* ---- renewal ------------------------------------------------------------------------- */

/* The new identity, checked, before it goes anywhere. */
struct identity {
	char *cert, *key, *ca;
	int64_t not_before, not_after;
};

static void identity_done(struct identity *id)
{
	state_free(id->cert);
	state_free(id->key);
	state_free(id->ca);
	memset(id, 0, sizeof(*id));
}

static int identity_take(struct run *r, const json_t *body, struct identity *id)
{
	const char *cert = json_string_value(json_object_get(body, "certificate"));
	const char *ca = json_string_value(json_object_get(body, "ca_bundle"));
	size_t n;

	if (cert == NULL || ca == NULL || state_count_certs(ca) == 0 ||
	    !state_cert_names(cert, r->node_id))
		return ODX_EINVAL;
	int rc = state_read(r->dirfd, STATE_KEY_NEW, &id->key, &n);
	if (rc < 0)
		return rc;
	if (state_pair_matches(cert, id->key) != 1 ||
	    state_cert_times(cert, strlen(cert), &id->not_before, &id->not_after) < 0)
		return ODX_EINVAL;
	id->cert = strdup(cert);
	id->ca = strdup(ca);
	return id->cert != NULL && id->ca != NULL ? 0 : ODX_ENOMEM;
}

/*
 * Puts the new pair on disk: both .new files exist before the first rename,
 * and the key is renamed before the certificate (state_recover's rules).
 * Returns 0 when node.key is the new key (even if the certificate's rename
 * failed and state_recover could not finish it) or an error.
 */
static int identity_store(struct run *r, const struct identity *id)
{
	int rc = state_write(r->dirfd, STATE_CA, id->ca, strlen(id->ca));
	if (rc == 0)
		rc = state_write(r->dirfd, STATE_CERT_NEW, id->cert, strlen(id->cert));
	if (rc == 0)
		rc = state_rename(r->dirfd, STATE_KEY_NEW, STATE_KEY);
	if (rc < 0)
		return rc;
	rc = state_rename(r->dirfd, STATE_CERT_NEW, STATE_CERT);
	if (rc < 0 && state_recover(r->dirfd, NULL) < 0)
		log_event(LOG_ERROR,
			  "cannot put the renewed certificate in place; it is used "
			  "until the agent stops",
			  json_pack("{s:s, s:s}", "file", STATE_CERT_NEW, "error",
				    odx_strerror(rc)));
	return 0;
}

static void identity_use(struct run *r, struct identity *id)
{
	pthread_mutex_lock(&r->mu);
	char *cert = r->cert, *key = r->key, *ca = r->ca;
	r->cert = id->cert;
	r->key = id->key;
	r->ca = id->ca;
	r->not_before = id->not_before;
	r->not_after = id->not_after;
	r->gen++;
	pthread_mutex_unlock(&r->mu);
	id->cert = cert;
	id->key = key;
	id->ca = ca;
	identity_done(id); /* the old ones */
}

/* One renewal attempt. On CALL_OK *not_after is the new certificate's. */
static enum outcome renew_once(struct worker *w, int64_t *not_after)
{
	struct run *r = w->r;
	struct identity id = {0};
	struct client_reply rep = {0};
	char *csr = NULL;
	enum outcome o;
	int rc = x509_make_key_and_csr(r->key_new, &csr);
	json_t *body = rc == 0 ? json_pack("{s:s}", "csr", csr) : NULL;

	if (body == NULL) {
		o = worker_retry(w, "/agent/v1/renew", 0,
				 rc < 0 ? "cannot make a new key" : "out of memory");
		goto out;
	}
	o = worker_call(w, "POST", "/agent/v1/renew", body, CALL_TIMEOUT_S, &rep);
	if (o != CALL_OK)
		goto out;
	rc = identity_take(r, rep.body, &id);
	if (rc == 0)
		rc = identity_store(r, &id);
	if (rc < 0) {
		o = worker_retry(w, "/agent/v1/renew", rep.status,
				 rc == ODX_EINVAL ? "the answer is not a certificate for this "
						    "node's new key"
						  : odx_strerror(rc));
		goto out;
	}
	*not_after = id.not_after;
	identity_use(r, &id);
out:
	if (o != CALL_OK) {
		state_remove(r->dirfd, STATE_CERT_NEW);
		state_remove(r->dirfd, STATE_KEY_NEW);
	}
	identity_done(&id);
	client_reply_done(&rep);
	json_decref(body);
	free(csr);
	return o;
}

/*
 * When to renew: at 2/3 of notBefore..notAfter, but, right after a renewal,
 * not before a third of the new certificate's remaining time has passed.
 * Client certificates start 60 s in the past, so for a very short lifetime
 * (tests use 5 s) the 2/3 point is already behind us when the certificate
 * arrives; the floor keeps that from becoming a busy loop.
 */
static int64_t renew_due(struct run *r, int64_t floor_s)
{
	pthread_mutex_lock(&r->mu);
	int64_t nb = r->not_before, na = r->not_after;
	pthread_mutex_unlock(&r->mu);
	int64_t due = na > nb ? nb + (na - nb) / 3 * 2 : nb;
	return due > floor_s ? due : floor_s;
}

static void *renewal_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->r;
	int64_t floor_s = 0, na;
	bool expired_said = false;

	while (!stopped(r)) {
		int64_t now = time_now_ns() / NSEC_PER_SEC, due = renew_due(r, floor_s);
		if (now < due) {
			int64_t ms = (due - now) * 1000;
			run_sleep(r, ms < RENEW_NAP_MS ? ms : RENEW_NAP_MS);
			continue;
		}
		pthread_mutex_lock(&r->mu);
		na = r->not_after;
		pthread_mutex_unlock(&r->mu);
		if (now >= na && !expired_said) {
			log_fields(LOG_ERROR,
				   "the node's certificate has expired and the control plane "
				   "will refuse it; renewal keeps trying, but the node must "
				   "probably be enrolled again",
				   fields(w), "not_after", time_json(na), NULL, NULL);
			expired_said = true;
		}
		enum outcome o = renew_once(w, &na);
		if (o == CALL_STOP)
			break;
		if (o == CALL_RETRY) {
			run_sleep(r, w->retry_ms);
			continue;
		}
		now = time_now_ns() / NSEC_PER_SEC;
		floor_s = now + (na > now ? (na - now) / 3 : 0);
		expired_said = false;
		log_fields(LOG_INFO, "certificate renewed", fields(w), "not_after", time_json(na),
			   NULL, NULL);
	}
	return NULL;
}

/* ---- start-up ---------------------------------------------------------------------- */

static int fail_start(const char *msg, struct run *r, const char *file, int rc)
{
	json_t *f = json_pack("{s:s}", "dir", r->dir);
	if (f != NULL && file != NULL)
		json_object_set_new(f, "file", json_string(file));
	if (f != NULL && rc != 0)
		json_object_set_new(f, "error",
				    json_string(odx_strerror(rc)));
	log_event(LOG_ERROR, msg, f);
	return AGENT_EXIT_ERROR;
}

static int load_config(struct run *r)
{
	char *text = NULL, msg[JSONX_MSG_LEN];
	const char *server, *node_id, *name;
	struct agent_url url;
	json_t *obj = NULL;
	size_t n;
	int rc = state_read(r->dirfd, STATE_AGENT_JSON, &text, &n);

	if (rc == -ENOENT)
		return fail_start("not enrolled: run 'odysseus-agent enroll' first", r,
				  STATE_AGENT_JSON, 0);
	if (rc < 0)
		return fail_start("cannot read the agent's state", r, STATE_AGENT_JSON, rc);
	rc = jsonx_parse_object(text, n, &obj, msg);
	if (rc == 0)
		rc = jsonx_unpack(obj, msg, "{s:s, s:s, s:s}", "server", &server, "node_id",
				  &node_id, "name", &name);
	if (rc == 0 && (agent_url_parse(server, &url) < 0 || !agent_node_id_valid(node_id) ||
			strlen(name) > NAME_LEN))
		rc = ODX_EINVAL;
	if (rc == 0) {
		memcpy(r->server, url.base, sizeof(r->server));
		memcpy(r->node_id, node_id, strlen(node_id) + 1);
		memcpy(r->name, name, strlen(name) + 1);
	}
	json_decref(obj);
	state_free(text);
	return rc == 0 ? AGENT_EXIT_OK
		       : fail_start("the agent's state is damaged", r, STATE_AGENT_JSON, rc);
}

static int load_identity(struct run *r)
{
	static const char *const names[] = {STATE_CERT, STATE_KEY, STATE_CA};
	char **dest[] = {&r->cert, &r->key, &r->ca};
	size_t n;

	for (size_t i = 0; i < 3; i++) {
		int rc = state_read(r->dirfd, names[i], dest[i], &n);
		if (rc < 0)
			return fail_start("cannot read the node's identity", r, names[i], rc);
	}
	if (state_pair_matches(r->cert, r->key) != 1)
		return fail_start("the node's certificate and key do not match", r, STATE_CERT, 0);
	if (state_cert_times(r->cert, strlen(r->cert), &r->not_before, &r->not_after) < 0 ||
	    state_count_certs(r->ca) == 0)
		return fail_start("the node's certificate or CA bundle is damaged", r, NULL, 0);
	r->gen = 1;
	return AGENT_EXIT_OK;
}

static int run_load(struct run *r)
{
	const char *what = NULL;
	int n = snprintf(r->key_new, sizeof(r->key_new), "%s/%s", r->dir, STATE_KEY_NEW), rc;

	if (n < 0 || (size_t)n >= sizeof(r->key_new))
		return fail_start("the state directory's path is too long", r, NULL, 0);
	r->dirfd = state_open(r->dir, false);
	if (r->dirfd < 0) {
		log_event(
		    LOG_ERROR, "cannot use the state directory",
		    json_pack("{s:s, s:s}", "dir", r->dir, "error", state_open_strerror(r->dirfd)));
		return AGENT_EXIT_ERROR;
	}
	if ((rc = state_recover(r->dirfd, &what)) < 0)
		return fail_start("cannot finish an interrupted renewal", r, NULL, rc);
	if (what != NULL)
		log_event(LOG_INFO, what, NULL);
	rc = load_config(r);
	if (rc == AGENT_EXIT_OK)
		rc = load_identity(r);
	return rc;
}

/* ---- the threads ------------------------------------------------------------------ */

static void *(*const thread_main[])(void *) = {heartbeat_main, assignments_main, renewal_main,
						actions_main};
static const char *const thread_name[] = {"heartbeat", "assignments", "renewal", "actions"};
#define NTHREADS (sizeof(thread_main) / sizeof(thread_main[0]))

/* Waits for SIGINT or SIGTERM (blocked in every thread) or for a thread to stop us. */
static void wait_for_stop(struct run *r, const sigset_t *sigs)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = SIGNAL_POLL_MS * 1000000L};

	while (!stopped(r)) {
		int sig = sigtimedwait(sigs, NULL, &ts);
		if (sig > 0) {
			log_event(
			    LOG_INFO, "stopping",
			    json_pack("{s:s}", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
			run_stop(r, AGENT_EXIT_OK);
		}
	}
}

static int run_threads(struct run *r, const sigset_t *sigs)
{
	struct worker w[NTHREADS] = {0}, sw = {0};
	struct reconcile_secrets sec;
	char secrets_dir[PATH_LEN] = "";
	pthread_t t[NTHREADS];
	size_t started = 0;
	int rc = secrets_source(r, &sw, secrets_dir, &sec);

	if (rc == 0)
		rc = reconcile_new(r->docker_socket, r->node_id, 0, &sec, &r->rec);
	if (rc < 0) {
		log_event(
		    LOG_ERROR, "cannot start the reconciler",
		    json_pack("{s:s, s:s}", "error", odx_strerror(rc), "secrets_dir", secrets_dir));
		client_free(sw.c);
		return AGENT_EXIT_ERROR;
	}
	for (; started < NTHREADS; started++) {
		struct worker *x = &w[started];
		*x = (struct worker){.r = r, .name = thread_name[started]};
		agent_backoff_reset(&x->backoff);
		if (client_new(r->server, &x->c) < 0)
			break;
		client_set_stop(x->c, &r->stop);
		if (pthread_create(&t[started], NULL, thread_main[started], x) != 0) {
			client_free(x->c);
			break;
		}
	}
	if (started < NTHREADS) {
		log_event(LOG_ERROR, "cannot start the agent's threads", NULL);
		run_stop(r, AGENT_EXIT_ERROR);
	}
	wait_for_stop(r, sigs);
	/* A long reconcile_apply in the assignments thread returns now. */
	reconcile_stop(r->rec);
	for (size_t i = 0; i < started; i++) {
		pthread_join(t[i], NULL);
		client_free(w[i].c);
	}
	reconcile_free(r->rec);
	r->rec = NULL;
	client_free(sw.c);
	return r->status;
}

static int run_init_sync(struct run *r)
{
	pthread_condattr_t ca;

	if (pthread_condattr_init(&ca) != 0)
		return ODX_ENOMEM;
	int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
			 pthread_cond_init(&r->cv, &ca) == 0
		     ? 0
		     : ODX_ENOMEM;
	pthread_condattr_destroy(&ca);
	if (rc == 0 && pthread_mutex_init(&r->mu, NULL) != 0) {
		pthread_cond_destroy(&r->cv);
		rc = ODX_ENOMEM;
	}
	return rc;
}

int run_main(const struct run_opts *o)
{
	struct run r = {.dir = o->state_dir ? o->state_dir : AGENT_STATE_DIR_DEFAULT,
			.dirfd = -1,
			.docker_socket =
			    o->docker_socket ? o->docker_socket : SAMPLE_DOCKER_SOCKET};
	sigset_t sigs, old;
	int rc;

	atomic_init(&r.stop, false);
	atomic_init(&r.heartbeat_s, HEARTBEAT_DEFAULT_S);
	if (run_init_sync(&r) < 0) {
		log_event(LOG_ERROR, "cannot set up locks", NULL);
		return AGENT_EXIT_ERROR;
	}
	rc = run_load(&r);
	if (rc == AGENT_EXIT_OK) {
		log_event(LOG_INFO, "starting",
			  json_pack("{s:s, s:s, s:s, s:s, s:o}", "node_id", r.node_id, "name",
				    r.name, "server", r.server, "agent_version", ODYSSEUS_VERSION,
				    "certificate_not_after", time_json(r.not_after)));
		/* Blocked before the threads start, so that they inherit it. */
		sigemptyset(&sigs);
		sigaddset(&sigs, SIGINT);
		sigaddset(&sigs, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &sigs, &old);
		rc = run_threads(&r, &sigs);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		log_event(LOG_INFO, "stopped", json_pack("{s:i}", "status", rc));
	}
	state_free(r.cert);
	state_free(r.key);
	state_free(r.ca);
	if (r.dirfd >= 0)
		close(r.dirfd);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	return rc;
}
