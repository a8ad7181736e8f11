/*
 * scans.c — vulnerability scans, gating policies and rescans (SPEC §7;
 * docs/scanning.md).
 *
 * POST /v1/scans queues a scan that a worker thread runs with the engines
 * installed (scan/engine.h); POST /v1/scans/import takes reports made
 * elsewhere and answers with the merged result at once. Both end in
 * finish_scan: parse, merge, recommend, store, audit. Deployments are gated
 * by api_scan_gate (create, update, rollback) against the image's latest
 * completed scan; the daemon's loop queues rescans of deployed images.
 */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "audit/audit.h"
#include "core/err.h"
#include "core/jdoc.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "scan/engine.h"
#include "scan/grype.h"
#include "scan/merge.h"
#include "scan/model.h"
#include "scan/policy.h"
#include "scan/recommend.h"
#include "scan/scandb.h"
#include "scan/trivy.h"
#include "sched/deployment.h"
#include "tenancy/tenancy.h"

#define IMAGE_MAX	   SCAN_IMAGE_NORM_SIZE
#define JUSTIFICATION_MIN  10
#define JUSTIFICATION_MAX  1000
#define QUEUE_MAX	   1024

struct scan_job {
	char tenant[ID_MAX_LEN], id[ID_MAX_LEN], image[IMAGE_MAX];
};

/* The scans waiting for the worker, oldest first. */
struct api_scans {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool stop, started;
	atomic_bool cancel; /* set by api_scans_stop: a running engine is killed */
	struct scan_job jobs[QUEUE_MAX];
	size_t head, count;
};

/* ---- the result of a scan: merge, recommend, count ---------------------------------------- */

/* "name@sha256:..." -> "sha256:...": the digest part of the first repo digest, else the image id. */
static const char *digest_of(const struct scan_image *img)
{
	for (size_t i = 0; i < img->nrepo_digests; i++) {
		const char *at = strchr(img->repo_digests[i], '@');
		if (at)
			return at + 1;
	}
	return img->image_id;
}

static json_t *summary_of(const struct scan_merge_stats *st, unsigned engines)
{
	json_t *before = json_object(), *only = json_object();
	for (int e = 0; e < SCAN_ENGINE_COUNT; e++) {
		if (!(engines & SCAN_ENGINE_BIT(e)))
			continue;
		const char *name = scan_engine_name((enum scan_engine)e);
		json_object_set_new(before, name, scan_counts_to_json(&st->before[e]));
		json_object_set_new(only, name, json_integer((json_int_t)st->only[e]));
	}
	return json_pack("{s:o, s:o, s:I, s:o, s:I}", "before", before, "after",
			 scan_counts_to_json(&st->after), "both", (json_int_t)st->both, "only", only,
			 "engine_duplicates_collapsed", (json_int_t)st->engine_duplicates_collapsed);
}

/*
 * Merges the reports and makes what a completed scan stores: result
 * {image_info, findings, recommendations} and summary. digest[] gets the
 * image's digest ("" when the reports name none).
 */
static int merged_result(struct scan_report *const *reports, size_t n, json_t **result,
			 json_t **summary, char digest[static 128])
{
	struct scan_report *m = NULL;
	struct scan_merge_stats st;
	int rc = scan_merge(reports, n, &m, &st);
	if (rc < 0)
		return rc;
	json_t *findings = json_array();
	for (size_t i = 0; findings && i < m->nfindings; i++)
		if (json_array_append_new(findings, scan_finding_to_json(&m->findings[i])) < 0) {
			json_decref(findings);
			findings = NULL;
		}
	const char *d = digest_of(&m->image);
	snprintf(digest, 128, "%s", d ? d : "");
	json_t *rec = scan_recommend(m, time_now_ns() / NSEC_PER_SEC);
	*result = NULL;
	if (findings && rec)
		*result = json_pack("{s:o, s:o}", "image_info", scan_image_to_json(&m->image),
				    "findings", findings);
	else
		json_decref(findings);
	/* + "recommendations" and "base_image" */
	if (*result && json_object_update(*result, rec) < 0) {
		json_decref(*result);
		*result = NULL;
	}
	json_decref(rec);
	*summary = *result ? summary_of(&st, m->engines) : NULL;
	scan_report_free(m);
	if (*result && *summary)
		return 0;
	json_decref(*result);
	json_decref(*summary);
	return ODX_ENOMEM;
}

/* The audit record of a scan the system finished (the worker, rescans). */
static void audit_scan(struct api *api, const char *tenant, const char *id, const char *action,
		       bool ok, const char *reason)
{
	char resource[96];
	snprintf(resource, sizeof(resource), "/v1/scans/%s", id);
	struct audit_record r = {.actor_type = AUDIT_ACTOR_SYSTEM,
				 .tenant_id = tenant,
				 .action = action,
				 .resource = resource,
				 .outcome = ok ? AUDIT_SUCCESS : AUDIT_FAILURE,
				 .reason = reason};
	api_trail_record(api, &r);
}

/* "critical 2, high 14, ..." of a summary, for the audit record and the log. */
static void counts_line(const json_t *summary, char *buf, size_t cap)
{
	const json_t *after = json_object_get(summary, "after");
	static const char *const keys[] = {"critical", "high", "medium", "low"};
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < 4 && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%s %lld", i ? ", " : "", keys[i],
				      (long long)json_integer_value(json_object_get(after, keys[i])));
}

/* ---- running engines (the worker) --------------------------------------------------------- */

typedef int (*parse_fn)(const char *buf, size_t len, struct scan_report **out,
			char msg[static SCAN_MSG_LEN]);

/* Runs one engine; its report (or NULL) and {status, version?, error?} for the scan. */
static json_t *run_engine(struct api *api, enum scan_engine e, const char *image,
			  struct scan_report **out)
{
	static const parse_fn parse[SCAN_ENGINE_COUNT] = {trivy_parse, grype_parse};
	const char *configured = e == SCAN_ENGINE_TRIVY ? api->scan_trivy : api->scan_grype;
	char exe[4096], msg[SCAN_MSG_LEN];
	*out = NULL;
	if (!scan_engine_find(configured, exe, sizeof(exe)))
		return json_pack("{s:s, s:s}", "status", "missing", "error", "not installed");
	struct scan_engine_output o;
	if (scan_engine_run(e, exe, image, api->scan_timeout_s, SCAN_MAX_REPORT, &api->scans->cancel,
			    &o) < 0)
		return json_pack("{s:s, s:s}", "status", "failed", "error", o.error);
	int rc = parse[e](o.report, o.len, out, msg);
	scan_engine_output_done(&o);
	if (rc < 0)
		return json_pack("{s:s, s:s}", "status", "failed", "error", msg);
	const char *v = (*out)->engine_version[e];
	return json_pack("{s:s, s:s?}", "status", "ok", "version", v);
}

/* Runs every engine on the job's image and stores the outcome. */
static void run_scan(struct api *api, const struct scan_job *job)
{
	if (scandb_start(api->store, job->tenant, job->id) < 0)
		return; /* gone with its tenant, or taken already */
	struct scan_report *reports[SCAN_ENGINE_COUNT];
	size_t n = 0;
	json_t *engines = json_object();
	for (int e = 0; e < SCAN_ENGINE_COUNT; e++) {
		struct scan_report *r;
		json_object_set_new(engines, scan_engine_name((enum scan_engine)e),
				    run_engine(api, (enum scan_engine)e, job->image, &r));
		if (r)
			reports[n++] = r;
	}
	json_t *result = NULL, *summary = NULL;
	char digest[128] = "", line[128] = "no engine produced a report";
	/* Stopped by a shutdown: left running, so the next start queues it again. */
	if (atomic_load(&api->scans->cancel))
		goto out;
	int rc = n ? merged_result(reports, n, &result, &summary, digest) : ODX_EUNAVAIL;
	if (rc == 0)
		counts_line(summary, line, sizeof(line));
	else if (n)
		snprintf(line, sizeof(line), "merging failed: %s", odx_strerror(rc));
	rc = scandb_finish(api->store, job->tenant, job->id, digest[0] ? digest : NULL, engines,
			   summary, result, rc == 0 ? NULL : line);
	if (rc < 0)
		log_event(LOG_ERROR, "storing a scan failed",
			  json_pack("{s:s, s:s}", "scan", job->id, "error", odx_strerror(rc)));
	audit_scan(api, job->tenant, job->id, "scan.complete", result != NULL, line);
out:
	for (size_t i = 0; i < n; i++)
		scan_report_free(reports[i]);
	json_decref(engines);
	json_decref(result);
	json_decref(summary);
}

static void *worker(void *arg)
{
	struct api *api = arg;
	struct api_scans *q = api->scans;
	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (!q->stop && !q->count)
			pthread_cond_wait(&q->wake, &q->lock);
		if (q->stop)
			break;
		struct scan_job job = q->jobs[q->head];
		q->head = (q->head + 1) % QUEUE_MAX;
		q->count--;
		pthread_mutex_unlock(&q->lock);
		run_scan(api, &job);
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* Queues a stored scan for the worker; ODX_EBUSY when the queue is full. */
static int enqueue(struct api *api, const char *tenant, const char *id, const char *image)
{
	struct api_scans *q = api->scans;
	if (!q)
		return ODX_EUNAVAIL;
	pthread_mutex_lock(&q->lock);
	int rc = q->count < QUEUE_MAX ? 0 : ODX_EBUSY;
	if (rc == 0) {
		struct scan_job *j = &q->jobs[(q->head + q->count) % QUEUE_MAX];
		snprintf(j->tenant, sizeof(j->tenant), "%s", tenant);
		snprintf(j->id, sizeof(j->id), "%s", id);
		snprintf(j->image, sizeof(j->image), "%s", image);
		q->count++;
		pthread_cond_signal(&q->wake);
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

/* Scans a restart interrupted go back to the queue. */
static void requeue_unfinished(struct api *api)
{
	json_t *tenants = NULL;
	if (tenant_list(api->store, NULL, 100000, &tenants) < 0)
		return;
	size_t i, k;
	json_t *t, *s;
	json_array_foreach(tenants, i, t)
	{
		const char *tenant = json_string_value(json_object_get(t, "id"));
		json_t *left = NULL;
		if (scandb_requeue(api->store, tenant, &left) < 0)
			continue;
		json_array_foreach(left, k, s)
		{
			enqueue(api, tenant, json_string_value(json_object_get(s, "id")),
				json_string_value(json_object_get(s, "image")));
		}
		json_decref(left);
	}
	json_decref(tenants);
}

int api_scans_start(struct api *api)
{
	struct api_scans *q = calloc(1, sizeof(*q));
	if (!q)
		return ODX_ENOMEM;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->wake, NULL);
	api->scans = q;
	int rc = pthread_create(&q->thread, NULL, worker, api);
	if (rc != 0) {
		api->scans = NULL;
		free(q);
		return -rc;
	}
	q->started = true;
	requeue_unfinished(api);
	return 0;
}

void api_scans_stop(struct api *api)
{
	struct api_scans *q = api->scans;
	if (!q)
		return;
	atomic_store(&q->cancel, true);
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->wake);
	pthread_mutex_unlock(&q->lock);
	if (q->started)
		pthread_join(q->thread, NULL);
	pthread_cond_destroy(&q->wake);
	pthread_mutex_destroy(&q->lock);
	api->scans = NULL;
	free(q);
}

/* True when at least one engine is there to run. */
static bool engines_available(const struct api *api)
{
	char exe[4096];
	return scan_engine_find(api->scan_trivy, exe, sizeof(exe)) ||
	       scan_engine_find(api->scan_grype, exe, sizeof(exe));
}

void api_scans_rescan_due(struct api *api)
{
	json_t *tenants = NULL;
	if (!api->scans || !engines_available(api) ||
	    tenant_list(api->store, NULL, 100000, &tenants) < 0)
		return;
	int64_t now = time_now_ns();
	size_t i, k;
	json_t *t, *img;
	json_array_foreach(tenants, i, t)
	{
		const char *tenant = json_string_value(json_object_get(t, "id"));
		json_t *images = NULL;
		int64_t every;
		if (scandb_settings_get(api->store, tenant, &every) < 0 ||
		    deploy_images(api->store, tenant, &images) < 0)
			continue;
		json_array_foreach(images, k, img)
		{
			char image[IMAGE_MAX], id[ID_MAX_LEN];
			int64_t age;
			int in_flight;
			if (scan_image_normalise(json_string_value(img), image, sizeof(image)) < 0 ||
			    scandb_age(api->store, tenant, image, now, &age, &in_flight) < 0 ||
			    in_flight || (age >= 0 && age < every) ||
			    scandb_create(api->store, tenant, image, "rescan", "system", id) < 0)
				continue;
			audit_scan(api, tenant, id, "scan.rescan", true, "scheduled rescan");
			enqueue(api, tenant, id, image);
		}
		json_decref(images);
	}
	json_decref(tenants);
}

/* ---- handlers ----------------------------------------------------------------------------- */

/* ref validated and normalised into out; 400 set otherwise. */
static int image_param(struct http_exchange *ex, const char *ref, char out[static IMAGE_MAX])
{
	if (!ref || !deploy_image_valid(ref) || scan_image_normalise(ref, out, IMAGE_MAX) < 0) {
		reply_error(ex, 400, "bad_request",
			    "image must be a Docker image reference (name[:tag][@sha256:digest])");
		return ODX_EINVAL;
	}
	return 0;
}

static void reply_scan(struct http_exchange *ex, int status, const char *id)
{
	struct api *api = ex->app;
	json_t *o;
	snprintf(ex->audit_resource, sizeof(ex->audit_resource), "/v1/scans/%s", id);
	int rc = scandb_get(api->store, api_principal(ex)->tenant_id, id, &o);
	if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else
		reply_json(ex, status, o);
}

/* POST /v1/scans {"image"}: queued for the engines; 202 with the scan to poll. */
void api_scans_create(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *body;
	const char *ref = NULL;
	char image[IMAGE_MAX], id[ID_MAX_LEN];
	if (api_body(ex, &body) < 0)
		return;
	if (api_unpack(ex, body, "{s:s}", "image", &ref) < 0 || image_param(ex, ref, image) < 0)
		goto out;
	if (!engines_available(api)) {
		reply_error(ex, 503, "unavailable",
			    "no scan engine is installed here (trivy, grype): import reports with "
			    "POST /v1/scans/import");
		goto out;
	}
	const struct principal *p = api_principal(ex);
	int rc = scandb_create(api->store, p->tenant_id, image, "manual", p->id, id);
	if (rc == 0)
		rc = enqueue(api, p->tenant_id, id, image);
	if (rc == ODX_EBUSY) {
		reply_error(ex, 429, "rate_limited", "too many scans waiting; retry later");
		ex->retry_after = 10;
	}
	else if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else
		reply_scan(ex, 202, id);
out:
	json_decref(body);
}

/* Parses one embedded report; 400 naming the engine and the problem otherwise. */
static int import_one(struct http_exchange *ex, enum scan_engine e, const struct jval *report,
		      struct scan_report **out)
{
	char msg[SCAN_MSG_LEN], text[SCAN_MSG_LEN + 32];
	int rc = e == SCAN_ENGINE_TRIVY ? trivy_from_json(report, out, msg)
					: grype_from_json(report, out, msg);
	/* EINVAL is 400, ETOOBIG 413 (reply_odx_error's map); no memory keeps its generic text. */
	if (rc < 0 && rc != ODX_ENOMEM)
		snprintf(text, sizeof(text), "%s report: %s", scan_engine_name(e), msg);
	if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOMEM ? NULL : text);
	return rc;
}

/* The digest of "name@sha256:...": engines spell the name differently (with or without
 * "index.docker.io/"), never the digest. */
static const char *after_at(const char *ref)
{
	const char *at = strchr(ref, '@');
	return at ? at + 1 : ref;
}

/* Two reports of different images (their digests never meet) cannot be merged. */
static bool same_image(const struct scan_image *a, const struct scan_image *b)
{
	if (a->image_id && b->image_id)
		return strcmp(a->image_id, b->image_id) == 0;
	if (!a->nrepo_digests || !b->nrepo_digests)
		return true; /* nothing to tell them apart */
	for (size_t i = 0; i < a->nrepo_digests; i++)
		for (size_t j = 0; j < b->nrepo_digests; j++)
			if (strcmp(after_at(a->repo_digests[i]), after_at(b->repo_digests[j])) == 0)
				return true;
	return false;
}

/* Stores an imported (already merged) result as a completed scan; id[] gets its id. */
static int store_import(struct http_exchange *ex, const char *image, struct scan_report **r,
			size_t n, char id[static ID_MAX_LEN])
{
	struct api *api = ex->app;
	const struct principal *p = api_principal(ex);
	json_t *result = NULL, *summary = NULL, *engines = json_object();
	char digest[128];
	int rc = merged_result(r, n, &result, &summary, digest);
	for (size_t i = 0; rc == 0 && i < n; i++)
		for (int e = 0; e < SCAN_ENGINE_COUNT; e++)
			if (r[i]->engines & SCAN_ENGINE_BIT(e))
				json_object_set_new(engines, scan_engine_name((enum scan_engine)e),
						    json_pack("{s:s, s:s?}", "status", "imported",
							      "version", r[i]->engine_version[e]));
	if (rc == 0)
		rc = scandb_create(api->store, p->tenant_id, image, "import", p->id, id);
	if (rc == 0)
		rc = scandb_finish(api->store, p->tenant_id, id, digest[0] ? digest : NULL, engines,
				   summary, result, NULL);
	json_decref(result);
	json_decref(summary);
	json_decref(engines);
	return rc;
}

/* The import body's fields: {"image"?: string, "trivy"?: object, "grype"?: object}; 400 else. */
static int import_fields(struct http_exchange *ex, const struct jval *body, const char **image,
			 const struct jval **trivy, const struct jval **grype)
{
	size_t i;
	const char *key;
	const struct jval *v;
	jval_object_foreach(body, i, key, v)
	{
		bool ok = strcmp(key, "image") == 0	? jval_is_string(v)
			  : strcmp(key, "trivy") == 0 ? jval_is_object(v)
			  : strcmp(key, "grype") == 0 ? jval_is_object(v)
						      : false;
		if (!ok) {
			reply_error(ex, 400, "bad_request",
				    "the body takes image (a string), trivy and grype (report "
				    "objects) and nothing else");
			return ODX_EINVAL;
		}
	}
	*image = jval_str(jval_get(body, "image"));
	*trivy = jval_get(body, "trivy");
	*grype = jval_get(body, "grype");
	if (*trivy || *grype)
		return 0;
	reply_error(ex, 400, "bad_request", "give a trivy report, a grype report or both");
	return ODX_EINVAL;
}

/* POST /v1/scans/import {"image"?, "trivy"?: report, "grype"?: report}: merged, stored, 201. */
void api_scans_import(struct http_exchange *ex)
{
	struct jdoc *doc;
	const struct jval *trivy, *grype;
	const char *ref;
	struct scan_report *r[SCAN_ENGINE_COUNT] = {NULL, NULL};
	size_t n = 0;
	char image[IMAGE_MAX], id[ID_MAX_LEN];
	/* The reports nest a level below the body. */
	if (api_body_doc(ex, SCAN_JSON_DEPTH + 1, &doc) < 0)
		return;
	if (import_fields(ex, jdoc_root(doc), &ref, &trivy, &grype) < 0)
		goto out;
	if ((trivy && import_one(ex, SCAN_ENGINE_TRIVY, trivy, &r[n++]) < 0) ||
	    (grype && import_one(ex, SCAN_ENGINE_GRYPE, grype, &r[n++]) < 0))
		goto out;
	if (n == 2 && !same_image(&r[0]->image, &r[1]->image)) {
		reply_error(ex, 400, "bad_request", "the two reports describe different images");
		goto out;
	}
	if (!ref)
		ref = r[0]->image.name;
	if (image_param(ex, ref, image) < 0)
		goto out;
	int rc = store_import(ex, image, r, n, id);
	if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else
		reply_scan(ex, 201, id);
out:
	for (size_t i = 0; i < SCAN_ENGINE_COUNT; i++)
		scan_report_free(r[i]);
	jdoc_free(doc);
}

/* GET /v1/scans?image=&limit=&cursor= */
void api_scans_list(struct http_exchange *ex)
{
	struct api *api = ex->app;
	int limit;
	char after[ID_MAX_LEN], image[IMAGE_MAX];
	struct evkeyvalq q;
	if (api_list_params(ex, SCANDB_ID_PREFIX, &limit, after, sizeof(after)) < 0 ||
	    api_query(ex, &q) < 0)
		return;
	const char *ref = evhttp_find_header(&q, "image");
	json_t *items;
	if (!ref || image_param(ex, ref, image) == 0) {
		int rc = scandb_list(api->store, api_principal(ex)->tenant_id, after, limit,
				     ref ? image : NULL, &items);
		if (rc < 0)
			reply_odx_error(ex, rc, NULL);
		else
			api_reply_list(ex, items, limit);
	}
	evhttp_clear_headers(&q);
}

void api_scans_get(struct http_exchange *ex)
{
	if (!random_id_valid(SCANDB_ID_PREFIX, ex->params[0])) {
		reply_error(ex, 404, "not_found", "no such scan");
		return;
	}
	reply_scan(ex, 200, ex->params[0]);
}

/* ---- policies and settings ---------------------------------------------------------------- */

static bool policy_name_ok(struct http_exchange *ex)
{
	if (deploy_name_valid(ex->params[0]))
		return true;
	reply_error(ex, 404, "not_found", "no such scan policy");
	return false;
}

void api_scan_policies_list(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *items;
	int rc = scandb_policy_list(api->store, api_principal(ex)->tenant_id, &items);
	if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else /* at most SCANDB_POLICIES_MAX: one page */
		reply_json(ex, 200, json_pack("{s:o, s:n}", "items", items, "next_cursor"));
}

void api_scan_policies_get(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *p;
	if (!policy_name_ok(ex))
		return;
	int rc = scandb_policy_get(api->store, api_principal(ex)->tenant_id, ex->params[0], &p);
	if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "no such scan policy" : NULL);
	else
		reply_json(ex, 200, p);
}

/* Validates body as a policy (named by the path on PUT) and stores its canonical form. */
static void put_policy(struct http_exchange *ex, const char *path_name, bool create)
{
	struct api *api = ex->app;
	json_t *body;
	struct scan_policy *p = NULL;
	char msg[JSONX_MSG_LEN];
	if (api_body(ex, &body) < 0)
		return;
	if (scan_policy_parse(body, path_name, &p, msg) < 0) {
		reply_error(ex, 400, "bad_request", msg);
		goto out;
	}
	json_t *canon = scan_policy_to_json(p);
	const char *name = json_string_value(json_object_get(canon, "name"));
	int created = 0;
	int rc = canon && name ? 0 : ODX_ENOMEM;
	if (rc == 0)
		rc = scandb_policy_put(api->store, api_principal(ex)->tenant_id, name, canon,
				       api_principal(ex)->id, create, &created);
	if (name)
		snprintf(ex->audit_resource, sizeof(ex->audit_resource), "/v1/scan-policies/%s",
			 name);
	if (rc == ODX_ECONFLICT)
		reply_error(ex, 409, "conflict", "a scan policy with this name exists");
	else if (rc == ODX_EQUOTA) {
		snprintf(msg, sizeof(msg), "a tenant has at most %d scan policies",
			 SCANDB_POLICIES_MAX);
		reply_error(ex, 409, "conflict", msg);
	}
	else if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else
		reply_json(ex, created ? 201 : 200, json_incref(canon));
	json_decref(canon);
out:
	scan_policy_free(p);
	json_decref(body);
}

void api_scan_policies_create(struct http_exchange *ex)
{
	put_policy(ex, NULL, true);
}

void api_scan_policies_put(struct http_exchange *ex)
{
	if (policy_name_ok(ex))
		put_policy(ex, ex->params[0], false);
}

void api_scan_policies_delete(struct http_exchange *ex)
{
	struct api *api = ex->app;
	if (!policy_name_ok(ex))
		return;
	int rc = scandb_policy_delete(api->store, api_principal(ex)->tenant_id, ex->params[0]);
	if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "no such scan policy" : NULL);
	else
		reply_no_content(ex);
}

static void reply_settings(struct http_exchange *ex)
{
	struct api *api = ex->app;
	int64_t every;
	int rc = scandb_settings_get(api->store, api_principal(ex)->tenant_id, &every);
	if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else
		reply_json(ex, 200, json_pack("{s:I}", "rescan_interval_seconds", (json_int_t)every));
}

void api_scan_settings_get(struct http_exchange *ex)
{
	reply_settings(ex);
}

/* PUT /v1/scan-settings {"rescan_interval_seconds"}: how often deployed images are rescanned. */
void api_scan_settings_put(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *body;
	json_int_t every;
	if (api_body(ex, &body) < 0)
		return;
	if (api_unpack(ex, body, "{s:I}", "rescan_interval_seconds", &every) == 0) {
		int rc = every < api->scan_rescan_floor_s || every > SCANDB_RESCAN_MAX_S
			     ? ODX_EINVAL
			     : scandb_settings_put(api->store, api_principal(ex)->tenant_id, every);
		char msg[96];
		if (rc == ODX_EINVAL) {
			snprintf(msg, sizeof(msg), "rescan_interval_seconds must be %lld to %d",
				 (long long)api->scan_rescan_floor_s, SCANDB_RESCAN_MAX_S);
			reply_error(ex, 400, "bad_request", msg);
		}
		else if (rc < 0)
			reply_odx_error(ex, rc, NULL);
		else
			reply_settings(ex);
	}
	json_decref(body);
}

/* ---- gating ------------------------------------------------------------------------------- */

/* The tenant's policies, parsed; *n of them. */
static int load_policies(struct api *api, const char *tenant, struct scan_policy ***out,
			 size_t *n)
{
	json_t *items;
	int rc = scandb_policy_list(api->store, tenant, &items);
	if (rc < 0)
		return rc;
	size_t count = json_array_size(items);
	struct scan_policy **v = calloc(count ? count : 1, sizeof(*v));
	char msg[JSONX_MSG_LEN];
	rc = v ? 0 : ODX_ENOMEM;
	for (size_t i = 0; rc == 0 && i < count; i++)
		if (scan_policy_parse(json_array_get(items, i), NULL, &v[i], msg) < 0)
			rc = ODX_ECORRUPT;
	json_decref(items);
	if (rc < 0) {
		for (size_t i = 0; v && i < count; i++)
			scan_policy_free(v[i]);
		free(v);
		return rc;
	}
	*out = v;
	*n = count;
	return 0;
}

/* The verdict of the tenant's policies on image (1 blocked, 0 not); *verdict set on >= 0. */
static int evaluate(struct api *api, const char *tenant, const char *image, json_t **verdict)
{
	struct scan_policy **pols = NULL;
	size_t n = 0;
	struct scan_report *latest = NULL;
	json_t *findings = NULL;
	char scan_id[ID_MAX_LEN] = "";
	int rc = load_policies(api, tenant, &pols, &n);
	/* A scan can only matter to an enabled policy that covers the image: read it only then. */
	bool needed = false;
	for (size_t i = 0; rc == 0 && i < n; i++)
		needed = needed || (pols[i]->enabled && scan_policy_applies(pols[i], image));
	if (rc == 0 && needed) {
		rc = scandb_latest(api->store, tenant, image, &findings, scan_id);
		if (rc == 0)
			rc = scandb_load_findings(findings, &latest);
		else if (rc == ODX_ENOTFOUND)
			rc = 0; /* no completed scan: the policies decide (fail closed) */
	}
	if (rc == 0)
		rc = scan_policy_evaluate((const struct scan_policy *const *)pols, n, image, latest,
					  time_now_ns() / NSEC_PER_SEC, verdict);
	if (rc >= 0 && scan_id[0])
		json_object_set_new(*verdict, "scan_id", json_string(scan_id));
	for (size_t i = 0; i < n; i++)
		scan_policy_free(pols[i]);
	free(pols);
	scan_report_free(latest);
	json_decref(findings);
	return rc;
}

/* {"justification"} of an override, or 400 set. */
static const char *justification_of(struct http_exchange *ex, json_t *override)
{
	const char *j = NULL;
	if (api_unpack(ex, override, "{s:s}", "justification", &j) < 0)
		return NULL;
	size_t n = strlen(j);
	if (n < JUSTIFICATION_MIN || n > JUSTIFICATION_MAX) {
		reply_error(ex, 400, "bad_request",
			    "policy_override.justification must be 10 to 1000 characters");
		return NULL;
	}
	return j;
}

/* Lets a blocked image through on an Admin's or Operator's word: recorded and audited. */
static int override(struct http_exchange *ex, const char *deployment, const char *image,
		    json_t *override, const json_t *verdict)
{
	struct api *api = ex->app;
	const struct principal *p = api_principal(ex);
	if (authz_check(p, PERM_SCANNER_POLICIES, true) != AUTHZ_OK) {
		snprintf(ex->audit_reason, sizeof(ex->audit_reason), "policy_override_role");
		reply_error(ex, 403, "forbidden",
			    "overriding a scan policy needs the admin or operator role");
		return ODX_EFORBIDDEN;
	}
	const char *why = justification_of(ex, override);
	char id[ID_MAX_LEN], reason[96], resource[96];
	if (!why)
		return ODX_EINVAL;
	int rc = scandb_override_add(api->store, p->tenant_id, deployment, image, p->id, why,
				     verdict, id);
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		return rc;
	}
	snprintf(reason, sizeof(reason), "%s: %s", id, why);
	snprintf(resource, sizeof(resource), "/v1/deployments/%s", deployment);
	api_trail_event(ex, "scan.policy.override", resource, reason);
	log_event(LOG_WARN, "scan policy overridden",
		  json_pack("{s:s, s:s, s:s, s:s}", "tenant", p->tenant_id, "deployment", deployment,
			    "image", image, "override", id));
	return 0;
}

int api_scan_gate(struct http_exchange *ex, const char *deployment, const char *image_ref,
		  json_t *policy_override)
{
	struct api *api = ex->app;
	char image[IMAGE_MAX];
	json_t *verdict = NULL;
	if (image_param(ex, image_ref, image) < 0)
		return ODX_EINVAL;
	int rc = evaluate(api, api_principal(ex)->tenant_id, image, &verdict);
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		return rc;
	}
	if (rc == 1 && policy_override)
		rc = override(ex, deployment, image, policy_override, verdict);
	else if (rc == 1) {
		snprintf(ex->audit_reason, sizeof(ex->audit_reason), "blocked_by_policy");
		reply_error_details(ex, 422, "blocked_by_policy",
				    "the image is blocked by the tenant's scan policies",
				    json_incref(verdict));
		rc = ODX_EFORBIDDEN;
	}
	json_decref(verdict);
	return rc < 0 ? rc : 0;
}
