/*
 * trail.c — how requests reach the audit log (SPEC §9).
 *
 * - A route with an action (routes.c) is recorded after its handler, before
 *   the reply leaves: success for 2xx/3xx, denied for 403, failure for other
 *   errors, with the error code as the reason. If the record cannot be made
 *   durable, a success becomes 503: the client never hears "done" about an
 *   unaudited change, and the record is queued until the log writes again.
 *   While the log is failing, api_trail_gate refuses audited requests before
 *   their handler runs (503), so no further change is made unaudited; the
 *   refusal's own record is the probe that notices the log works again.
 *   Such routes run on worker threads, where waiting for the group commit
 *   is allowed.
 * - Every denial (401 and 403, on any route) is recorded too. Denials can
 *   happen on an event-loop thread, which must not wait for an fsync, and
 *   no success is reported for them, so they go through a bounded queue
 *   drained by one thread; a full queue makes the caller wait (nothing is
 *   dropped).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "audit/audit.h"
#include "core/err.h"
#include "core/log.h"
#include "tenancy/tenancy.h"

#define QUEUE_CAP 4096

struct pending {
	enum audit_actor_type actor_type;
	enum audit_outcome outcome;
	char actor_id[64], actor_email[256], tenant_id[48], action[64], resource[192];
	char reason[96], request_id[HTTP_REQUEST_ID_MAX], source_ip[64];
};

struct api_trail {
	struct audit_log *log;
	struct store *store;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t nonempty, nonfull;
	struct pending *ring;
	size_t head, count;
	bool stop;
};

/*
 * SPEC §9 names the actor's email: a token carries only the user's id, so
 * the email is read from the store (audited requests are writes anyway).
 */
static void fill_email(struct api_trail *t, enum audit_actor_type type, const char *id,
		       const char *tenant, char *email, size_t size)
{
	struct user u;
	if (type == AUDIT_ACTOR_USER && id[0] && !email[0] && user_get(t->store, tenant, id, &u) == 0)
		snprintf(email, size, "%s", u.email);
}

static void to_record(const struct pending *p, struct audit_record *r)
{
	memset(r, 0, sizeof(*r));
	r->actor_type = p->actor_type;
	r->actor_id = p->actor_id;
	r->actor_email = p->actor_email;
	r->tenant_id = p->tenant_id;
	r->action = p->action;
	r->resource = p->resource;
	r->outcome = p->outcome;
	r->reason = p->reason;
	r->request_id = p->request_id;
	r->source_ip = p->source_ip;
}

static void *drain(void *arg)
{
	struct api_trail *t = arg;
	pthread_mutex_lock(&t->lock);
	for (;;) {
		while (!t->count && !t->stop)
			pthread_cond_wait(&t->nonempty, &t->lock);
		if (!t->count)
			break;
		struct pending p = t->ring[t->head];
		t->head = (t->head + 1) % QUEUE_CAP;
		t->count--;
		pthread_cond_signal(&t->nonfull);
		pthread_mutex_unlock(&t->lock);
		struct audit_record r;
		fill_email(t, p.actor_type, p.actor_id, p.tenant_id, p.actor_email, sizeof(p.actor_email));
		to_record(&p, &r);
		/* Retried until it is written: never dropped, only delayed. */
		int rc;
		while ((rc = audit_append(t->log, &r)) == ODX_EUNAVAIL) {
			log_event(LOG_ERROR, "audit log unavailable; retrying a queued record", NULL);
			struct timespec ts = {0, 200 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
		if (rc < 0)
			log_event(LOG_ERROR, "audit record refused",
				  json_pack("{s:s, s:s}", "error", odx_strerror(rc), "request_id",
					    p.request_id));
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int api_trail_start(struct audit_log *log, struct store *store, struct api_trail **out)
{
	struct api_trail *t = calloc(1, sizeof(*t));
	if (!t)
		return ODX_ENOMEM;
	t->ring = calloc(QUEUE_CAP, sizeof(*t->ring));
	if (!t->ring) {
		free(t);
		return ODX_ENOMEM;
	}
	t->log = log;
	t->store = store;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->nonempty, NULL);
	pthread_cond_init(&t->nonfull, NULL);
	if (pthread_create(&t->thread, NULL, drain, t) != 0) {
		free(t->ring);
		free(t);
		return ODX_ENOMEM;
	}
	*out = t;
	return 0;
}

void api_trail_stop(struct api_trail *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->nonempty);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL); /* the queue is written out first */
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->nonempty);
	pthread_cond_destroy(&t->nonfull);
	free(t->ring);
	free(t);
}

/* Who acted: the verified principal, else what a public route's handler learned. */
static void actor_of(const struct http_exchange *ex, enum audit_actor_type *type, const char **id,
		     const char **email, const char **tenant)
{
	const struct principal *p = ex->auth;
	*email = ex->audit_actor_email;
	if (p) {
		*type = p->kind == PRINCIPAL_API_KEY ? AUDIT_ACTOR_API_KEY
			: p->kind == PRINCIPAL_AGENT ? AUDIT_ACTOR_AGENT
						     : AUDIT_ACTOR_USER;
		*id = p->id;
		/* An agent acting on a tenant's resource (a secret delivered) goes in the
		 * tenant's records. */
		*tenant = !p->tenant_id[0] && ex->audit_tenant_id[0] ? ex->audit_tenant_id
								     : p->tenant_id;
	} else {
		*type = ex->audit_actor_id[0] ? AUDIT_ACTOR_USER : AUDIT_ACTOR_ANONYMOUS;
		*id = ex->audit_actor_id;
		*tenant = ex->audit_tenant_id;
	}
}

static const char *action_of(const struct http_exchange *ex)
{
	return ex->route && ex->route->action ? ex->route->action : "request";
}

static const char *resource_of(const struct http_exchange *ex)
{
	return ex->audit_resource[0] ? ex->audit_resource : ex->path ? ex->path : "";
}

static const char *reason_of(const struct http_exchange *ex)
{
	return ex->audit_reason[0] ? ex->audit_reason : ex->error_code ? ex->error_code : "error";
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

/* Queues rec for the drain thread; waits while the queue is full unless try_only. */
static bool enqueue_ex(struct api_trail *t, const struct audit_record *r, bool try_only)
{
	struct pending p;
	memset(&p, 0, sizeof(p));
	p.actor_type = r->actor_type;
	p.outcome = r->outcome;
	snprintf(p.actor_id, sizeof(p.actor_id), "%s", or_empty(r->actor_id));
	snprintf(p.actor_email, sizeof(p.actor_email), "%s", or_empty(r->actor_email));
	snprintf(p.tenant_id, sizeof(p.tenant_id), "%s", or_empty(r->tenant_id));
	snprintf(p.action, sizeof(p.action), "%s", or_empty(r->action));
	snprintf(p.resource, sizeof(p.resource), "%s", or_empty(r->resource));
	snprintf(p.reason, sizeof(p.reason), "%s", or_empty(r->reason));
	snprintf(p.request_id, sizeof(p.request_id), "%s", or_empty(r->request_id));
	snprintf(p.source_ip, sizeof(p.source_ip), "%s", or_empty(r->source_ip));
	pthread_mutex_lock(&t->lock);
	while (t->count == QUEUE_CAP && !try_only)
		pthread_cond_wait(&t->nonfull, &t->lock);
	bool queued = t->count < QUEUE_CAP;
	if (queued) {
		t->ring[(t->head + t->count) % QUEUE_CAP] = p;
		t->count++;
		pthread_cond_signal(&t->nonempty);
	}
	pthread_mutex_unlock(&t->lock);
	return queued;
}

/* Nothing is dropped: waits while the queue is full. */
static void enqueue(struct api_trail *t, const struct audit_record *r)
{
	enqueue_ex(t, r, false);
}

void api_trail_record(struct api *api, const struct audit_record *r)
{
	enqueue(api->trail, r);
}

/*
 * A refused handshake has no request and happens on a loop thread, which
 * must not wait: a flood of them beyond the queue is counted in the log
 * instead of stalling every connection of the loop.
 */
void api_trail_tls_rejected(void *app, const char *source_ip, const char *reason)
{
	struct api *api = app;
	struct audit_record r = {.actor_type = AUDIT_ACTOR_ANONYMOUS,
				 .action = "agent.handshake_rejected",
				 .outcome = AUDIT_DENIED,
				 .reason = reason,
				 .source_ip = source_ip};
	if (!enqueue_ex(api->trail, &r, true))
		log_event(LOG_WARN, "audit queue full; a refused handshake is not recorded",
			  json_pack("{s:s, s:s}", "source", source_ip, "reason", reason));
}

/* The record of ex as it stands, strings pointing into ex. */
static void record_of(const struct http_exchange *ex, enum audit_outcome outcome,
		      struct audit_record *r)
{
	memset(r, 0, sizeof(*r));
	actor_of(ex, &r->actor_type, &r->actor_id, &r->actor_email, &r->tenant_id);
	r->action = action_of(ex);
	r->resource = resource_of(ex);
	r->outcome = outcome;
	r->reason = outcome == AUDIT_SUCCESS ? "" : reason_of(ex);
	r->request_id = ex->request_id;
	r->source_ip = ex->source_ip;
}

void api_trail_event(struct http_exchange *ex, const char *action, const char *resource,
		     const char *reason)
{
	struct api *api = ex->app;
	struct audit_record r;
	record_of(ex, AUDIT_SUCCESS, &r);
	r.action = action;
	r.resource = resource;
	r.reason = reason;
	enqueue(api->trail, &r);
}

void api_trail_denied(struct http_exchange *ex)
{
	struct api *api = ex->app;
	struct audit_record r;
	record_of(ex, AUDIT_DENIED, &r);
	enqueue(api->trail, &r);
}

void api_trail_result(struct http_exchange *ex)
{
	struct api *api = ex->app;
	bool ok = ex->status > 0 && ex->status < 400;
	bool denied = ex->status == 401 || ex->status == 403;
	struct audit_record r;
	record_of(ex, ok ? AUDIT_SUCCESS : denied ? AUDIT_DENIED : AUDIT_FAILURE, &r);
	char email[256];
	snprintf(email, sizeof(email), "%s", r.actor_email);
	fill_email(api->trail, r.actor_type, r.actor_id, r.tenant_id, email, sizeof(email));
	r.actor_email = email;
	int rc = audit_append(api->trail->log, &r);
	if (rc == 0)
		return;
	log_event(LOG_ERROR, "audit append failed",
		  json_pack("{s:s, s:s, s:s}", "error", odx_strerror(rc), "action", r.action,
			    "request_id", ex->request_id));
	if (!ok)
		return; /* nothing changed; the log line above is its trace */
	/*
	 * The change stands but its record is not durable: never report
	 * success, and keep the record for the drain thread, which writes it
	 * once the log works again (api_trail_gate stops further changes
	 * meanwhile).
	 */
	enqueue(api->trail, &r);
	reply_error(ex, 503, "unavailable", "audit log unavailable; retry later");
	ex->retry_after = 1;
}

bool api_trail_gate(struct http_exchange *ex)
{
	struct api *api = ex->app;
	if (!audit_failing(api->audit))
		return true;
	snprintf(ex->audit_reason, sizeof(ex->audit_reason), "audit_unavailable");
	reply_error(ex, 503, "unavailable", "audit log unavailable; retry later");
	ex->retry_after = 1;
	return false;
}
