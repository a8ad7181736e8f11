/*
 * deployments.c — deployments and their containers (SPEC §5, §10;
 * docs/deployments.md). The handlers validate and write through
 * sched/deployment.c; the scheduler then moves containers to match.
 */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "api/api.h"
#include "core/err.h"
#include "core/log.h"
#include "core/encoding.h"
#include "sched/actions.h"
#include "sched/deployment.h"
#include "sched/scheduler.h"

/* The route's {name}, or 404 when it cannot name a deployment. */
static const char *name_param(struct http_exchange *ex)
{
	if (deploy_name_valid(ex->params[0]))
		return ex->params[0];
	reply_error(ex, 404, "not_found", "no such deployment");
	return NULL;
}

int api_deployment_owner(struct http_exchange *ex, char *owner, size_t size)
{
	struct api *api = ex->app;
	if (!deploy_name_valid(ex->params[0]))
		return ODX_ENOTFOUND;
	return deploy_owner(api->store, api_principal(ex)->tenant_id, ex->params[0], owner, size);
}

static json_t *with_status(struct api *api, const char *tenant, json_t *d)
{
	if (d && api->sched)
		json_object_set_new(d, "status",
				    sched_deployment_status(api->sched, tenant,
							    json_string_value(json_object_get(d, "name"))));
	return d;
}

/* Replies with the deployment after a change, and lets the scheduler act on it. */
static void changed(struct http_exchange *ex, int status, struct deployment *d)
{
	struct api *api = ex->app;
	const char *tenant = api_principal(ex)->tenant_id;
	snprintf(ex->audit_resource, sizeof(ex->audit_resource), "/v1/deployments/%s", d->name);
	int rc = api->sched ? sched_sync(api->sched, tenant, d->name) : 0;
	if (rc < 0)
		log_event(LOG_ERROR, "scheduling failed",
			  json_pack("{s:s, s:s}", "deployment", d->name, "error", odx_strerror(rc)));
	reply_json(ex, status, with_status(api, tenant, deployment_to_json(d)));
	deployment_free(d);
}

/* The common refusals of a write. */
static void write_failed(struct http_exchange *ex, int rc, const char *limit)
{
	char msg[96];
	if (rc == ODX_EQUOTA) {
		snprintf(msg, sizeof(msg), "quota exceeded: %s", limit ? limit : "unknown");
		reply_error(ex, 409, "quota_exceeded", msg);
	} else if (rc == ODX_ENOTFOUND) {
		reply_error(ex, 404, "not_found", "no such deployment");
	} else if (rc == ODX_ECONFLICT) {
		reply_error(ex, 409, "conflict", "a deployment with this name exists");
	} else {
		reply_odx_error(ex, rc, NULL);
	}
}

static int tenant_of(struct http_exchange *ex, struct tenant *t)
{
	struct api *api = ex->app;
	int rc = tenant_get(api->store, api_principal(ex)->tenant_id, t);
	if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	return rc;
}

/* Removes the body's "policy_override" (not part of a deployment) and hands it over (or NULL). */
static json_t *take_override(json_t *body)
{
	json_t *o = json_incref(json_object_get(body, "policy_override"));
	json_object_del(body, "policy_override");
	return o;
}

static const char *template_image(const json_t *template)
{
	return json_string_value(json_object_get(template, "image"));
}

/*
 * The scan gate for the image a changed deployment will run: the update's
 * (template given), else revision `to` of a rollback (0: the one before),
 * else (to < 0) the current one. 0, or < 0 with the reply set.
 */
static int gate_revision(struct http_exchange *ex, const char *name, int64_t to,
			 const json_t *template, json_t *override)
{
	struct api *api = ex->app;
	const char *tenant = api_principal(ex)->tenant_id;
	if (template_image(template))
		return api_scan_gate(ex, name, template_image(template), override);
	struct deployment cur;
	json_t *old = NULL;
	int rc = deploy_get(api->store, tenant, name, &cur);
	if (rc < 0) {
		write_failed(ex, rc, NULL);
		return rc;
	}
	int64_t want = to > 0 ? to : to == 0 ? cur.revision - 1 : cur.revision;
	if (want == cur.revision) /* deploy_get read the current revision's template */
		old = json_incref(cur.template);
	else
		rc = want >= 1 && want < cur.revision
			 ? deploy_template(api->store, tenant, name, want, &old)
			 : ODX_ENOTFOUND;
	/* A revision that is not kept: deploy_rollback refuses it with its own message. */
	if (rc == 0)
		rc = api_scan_gate(ex, name, template_image(old), override);
	else if (rc == ODX_ENOTFOUND)
		rc = 0;
	else
		reply_odx_error(ex, rc, NULL);
	json_decref(old);
	deployment_free(&cur);
	return rc;
}

void api_deployments_list(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const char *tenant = api_principal(ex)->tenant_id;
	int limit;
	char after[DEPLOY_NAME_MAX + 1];
	if (api_list_params(ex, NULL, &limit, after, sizeof(after)) < 0)
		return;
	json_t *items;
	int rc = deploy_list(api->store, tenant, after, limit, &items);
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		return;
	}
	size_t i;
	json_t *v;
	json_array_foreach(items, i, v) with_status(api, tenant, v);
	api_reply_list_by(ex, items, limit, "name");
}

void api_deployments_create(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *body;
	struct deploy_spec spec = {0};
	char msg[JSONX_MSG_LEN] = "";
	struct tenant t;
	if (api_body(ex, &body) < 0)
		return;
	json_t *override = take_override(body);
	if (deploy_spec_parse(body, false, &spec, msg) < 0) {
		reply_error(ex, 400, "bad_request", msg[0] ? msg : "invalid deployment");
		goto out;
	}
	if (tenant_of(ex, &t) < 0 ||
	    api_secrets_check_grants(ex, spec.name, json_object_get(spec.template, "secrets")) < 0 ||
	    api_scan_gate(ex, spec.name, template_image(spec.template), override) < 0)
		goto out;
	struct deployment d;
	const char *limit = NULL;
	int rc = deploy_create(api->store, &t, &spec, api_principal(ex)->id, &d, &limit);
	if (rc < 0)
		write_failed(ex, rc, limit);
	else
		changed(ex, 201, &d);
out:
	json_decref(override);
	deploy_spec_free(&spec);
	json_decref(body);
}

void api_deployments_get(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const char *tenant = api_principal(ex)->tenant_id, *name = name_param(ex);
	struct deployment d;
	if (!name)
		return;
	int rc = deploy_get(api->store, tenant, name, &d);
	if (rc < 0) {
		write_failed(ex, rc, NULL);
		return;
	}
	json_t *o = with_status(api, tenant, deployment_to_json(&d));
	json_t *ctrs = NULL;
	if (o && api->sched && sched_containers(api->sched, tenant, name, &ctrs) == 0)
		json_object_set_new(o, "containers", ctrs);
	deployment_free(&d);
	reply_json(ex, 200, o);
}

void api_deployments_update(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const char *name = name_param(ex);
	json_t *body = NULL;
	struct deploy_spec spec = {0};
	char msg[JSONX_MSG_LEN] = "";
	struct tenant t;
	if (!name || api_body(ex, &body) < 0)
		return;
	json_t *override = take_override(body);
	if (deploy_spec_parse(body, true, &spec, msg) < 0) {
		reply_error(ex, 400, "bad_request", msg[0] ? msg : "invalid deployment");
		goto out;
	}
	if (tenant_of(ex, &t) < 0 ||
	    api_secrets_check_grants(ex, name, json_object_get(spec.template, "secrets")) < 0 ||
	    /* a new revision runs the image: gated; replicas alone are not */
	    (json_object_size(spec.template) &&
	     gate_revision(ex, name, -1, spec.template, override) < 0))
		goto out;
	struct deployment d;
	const char *limit = NULL;
	int rc = deploy_update(api->store, &t, name, &spec, api_principal(ex)->id, &d, &limit);
	if (rc < 0)
		write_failed(ex, rc, limit);
	else
		changed(ex, 200, &d);
out:
	json_decref(override);
	deploy_spec_free(&spec);
	json_decref(body);
}

void api_deployments_scale(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const char *name = name_param(ex);
	json_t *body = NULL;
	json_int_t replicas;
	struct tenant t;
	if (!name || api_body(ex, &body) < 0)
		return;
	if (api_unpack(ex, body, "{s:I}", "replicas", &replicas) < 0)
		goto out;
	if (replicas < 0 || replicas > DEPLOY_REPLICAS_MAX) {
		reply_error(ex, 400, "bad_request", "replicas must be 0 to 100");
		goto out;
	}
	if (tenant_of(ex, &t) < 0)
		goto out;
	struct deploy_spec spec = {.replicas = replicas, .template = json_object()};
	struct deployment d;
	const char *limit = NULL;
	int rc = spec.template ? deploy_update(api->store, &t, name, &spec, api_principal(ex)->id,
					       &d, &limit)
			       : ODX_ENOMEM;
	deploy_spec_free(&spec);
	if (rc < 0)
		write_failed(ex, rc, limit);
	else
		changed(ex, 200, &d);
out:
	json_decref(body);
}

void api_deployments_restart(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const char *name = name_param(ex);
	struct deployment d;
	if (!name)
		return;
	int rc = deploy_restart(api->store, api_principal(ex)->tenant_id, name, &d);
	if (rc < 0)
		write_failed(ex, rc, NULL);
	else
		changed(ex, 202, &d);
}

void api_deployments_rollback(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const char *name = name_param(ex);
	json_t *body = NULL;
	json_int_t to = 0;
	json_t *override = NULL;
	struct tenant t;
	if (!name)
		return;
	/* The body is optional: {} or none rolls back to the revision before. */
	if (ex->body_len && (api_body(ex, &body) < 0 ||
			     api_unpack(ex, body, "{s?I, s?O}", "revision", &to, "policy_override",
					&override) < 0))
		goto out;
	if (tenant_of(ex, &t) < 0 || gate_revision(ex, name, to, NULL, override) < 0)
		goto out;
	struct deployment d;
	const char *limit = NULL;
	int rc = deploy_rollback(api->store, &t, name, to, api_principal(ex)->id, &d, &limit);
	if (rc == ODX_EINVAL)
		reply_error(ex, 400, "bad_request", "no such kept revision to roll back to");
	else if (rc < 0)
		write_failed(ex, rc, limit);
	else
		changed(ex, 200, &d);
out:
	json_decref(override);
	json_decref(body);
}

void api_deployments_delete(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const char *tenant = api_principal(ex)->tenant_id, *name = name_param(ex);
	if (!name)
		return;
	int rc = deploy_delete(api->store, tenant, name);
	if (rc < 0) {
		write_failed(ex, rc, NULL);
		return;
	}
	snprintf(ex->audit_resource, sizeof(ex->audit_resource), "/v1/deployments/%s", name);
	if (api->sched)
		sched_sync(api->sched, tenant, name);
	reply_no_content(ex);
}

void api_deployments_revisions(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const char *name = name_param(ex);
	json_t *items;
	if (!name)
		return;
	int rc = deploy_revisions(api->store, api_principal(ex)->tenant_id, name, &items);
	if (rc < 0)
		write_failed(ex, rc, NULL);
	else
		reply_json(ex, 200, json_pack("{s:o, s:n}", "items", items, "next_cursor"));
}

/* ---- containers ---------------------------------------------------------------------------- */

void api_containers_list(struct http_exchange *ex)
{
	struct api *api = ex->app;
	struct evkeyvalq q;
	if (api_query(ex, &q) < 0)
		return;
	const char *dep = evhttp_find_header(&q, "deployment");
	json_t *items = NULL;
	int rc = dep && !deploy_name_valid(dep) ? ODX_EINVAL
		 : api->sched ? sched_containers(api->sched, api_principal(ex)->tenant_id, dep, &items)
			      : ((items = json_array()) ? 0 : ODX_ENOMEM);
	evhttp_clear_headers(&q);
	if (rc == ODX_EINVAL)
		reply_error(ex, 400, "bad_request", "deployment must be a deployment name");
	else if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else
		reply_json(ex, 200, json_pack("{s:o, s:n}", "items", items, "next_cursor"));
}

void api_containers_get(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *c = NULL;
	int rc = random_id_valid("ctr", ex->params[0]) && api->sched
		     ? sched_container(api->sched, api_principal(ex)->tenant_id, ex->params[0], &c)
		     : ODX_ENOTFOUND;
	if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "no such container" : NULL);
	else
		reply_json(ex, 200, c);
}

static void container_op(struct http_exchange *ex, const char *op)
{
	struct api *api = ex->app;
	const char *tenant = api_principal(ex)->tenant_id;
	int rc = random_id_valid("ctr", ex->params[0]) && api->sched
		     ? sched_container_set(api->sched, tenant, ex->params[0], op)
		     : ODX_ENOTFOUND;
	snprintf(ex->audit_resource, sizeof(ex->audit_resource), "/v1/containers/%s",
		 ex->params[0]);
	if (rc < 0) {
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "no such container" : NULL);
		return;
	}
	json_t *c = NULL;
	if (sched_container(api->sched, tenant, ex->params[0], &c) == 0)
		reply_json(ex, 202, c);
	else
		reply_no_content(ex); /* replaced: the old id is gone */
}

void api_containers_restart(struct http_exchange *ex)
{
	container_op(ex, "replace");
}

void api_containers_stop(struct http_exchange *ex)
{
	container_op(ex, "stopped");
}

/* GET /v1/containers/{id}/logs?tail=N&since=UNIX: asked of the node that runs it. */
void api_containers_logs(struct http_exchange *ex)
{
	struct api *api = ex->app;
	struct evkeyvalq q;
	TAILQ_INIT(&q);
	int64_t tail = 100, since = 0;
	const char *v;
	if ((ex->query && evhttp_parse_query_str(ex->query, &q) != 0) ||
	    ((v = evhttp_find_header(&q, "tail")) && parse_int64(v, 1, 10000, &tail) < 0) ||
	    ((v = evhttp_find_header(&q, "since")) && parse_int64(v, 0, INT64_MAX / 2, &since) < 0)) {
		evhttp_clear_headers(&q);
		reply_error(ex, 400, "bad_request", "tail must be 1 to 10000; since unix seconds");
		return;
	}
	evhttp_clear_headers(&q);
	char node[ID_MAX_LEN] = "";
	int rc = random_id_valid("ctr", ex->params[0]) && api->sched
		     ? sched_container_node(api->sched, api_principal(ex)->tenant_id, ex->params[0],
					    node, sizeof(node))
		     : ODX_ENOTFOUND;
	if (rc == 0 && !node[0]) {
		reply_error(ex, 409, "conflict", "the container is not placed on a node yet");
		return;
	}
	char *text = NULL;
	size_t len = 0;
	if (rc == 0)
		rc = actions_logs(api->actions, node, ex->params[0], (int)tail, since, 10000, &text,
				  &len);
	if (rc == ODX_EUNAVAIL)
		reply_error(ex, 503, "unavailable", "the node did not answer in time");
	else if (rc == ODX_ENOTFOUND)
		reply_error(ex, 404, "not_found", "no such container");
	else if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else
		reply_text(ex, 200, "text/plain; charset=utf-8", text, len);
	free(text);
}
