/*
 * secrets.c — a tenant's secrets (SPEC §6, §10; docs/secrets.md). Values go
 * in (PUT, rotate) and never come out of this API: answers are metadata.
 */
#include <string.h>

#include "api/api.h"
#include "core/err.h"
#include "audit/audit.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "sched/deployment.h"
#include "sched/scheduler.h"
#include "secrets/seal.h"
#include "secrets/secret.h"
#include "tenancy/tenancy.h"

static const char *name_param(struct http_exchange *ex)
{
	if (secret_name_valid(ex->params[0]))
		return ex->params[0];
	reply_error(ex, 404, "not_found", "no such secret");
	return NULL;
}

static void audit_name(struct http_exchange *ex, const char *name)
{
	snprintf(ex->audit_resource, sizeof(ex->audit_resource), "/v1/secrets/%s", name);
}

/* The metadata after a change (never the value). */
static void reply_meta(struct http_exchange *ex, int status, const char *name)
{
	struct api *api = ex->app;
	json_t *o;
	const char *tenant = api_principal(ex)->tenant_id;
	int rc = secret_get(api->store, tenant, name, &o);
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		return;
	}
	/* Which deployments run which version: a rotation's progress. */
	if (api->sched)
		json_object_set_new(o, "in_use", sched_secret_in_use(api->sched, tenant, name));
	reply_json(ex, status, o);
}

void api_secrets_list(struct http_exchange *ex)
{
	struct api *api = ex->app;
	int limit;
	char after[SECRET_NAME_MAX + 1];
	if (api_list_params(ex, NULL, &limit, after, sizeof(after)) < 0)
		return;
	json_t *items;
	const char *tenant = api_principal(ex)->tenant_id;
	int rc = secret_list(api->store, tenant, after, limit, &items);
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		return;
	}
	/* Each item as GET /v1/secrets/{name} shows it. */
	size_t i;
	json_t *v;
	json_array_foreach(items, i, v) if (api->sched) json_object_set_new(
	    v, "in_use",
	    sched_secret_in_use(api->sched, tenant, json_string_value(json_object_get(v, "name"))));
	api_reply_list_by(ex, items, limit, "name");
}

void api_secrets_get(struct http_exchange *ex)
{
	const char *name = name_param(ex);
	if (name)
		reply_meta(ex, 200, name);
}

/* {"every_seconds", "generate_length", "generate_alphabet"}: 400 on bad values. */
static int set_policy(struct http_exchange *ex, const char *name, json_t *rotation)
{
	struct api *api = ex->app;
	json_int_t every = 0, length = 0;
	const char *alphabet = NULL;
	if (api_unpack(ex, rotation, "{s?I, s?I, s?s}", "every_seconds", &every, "generate_length",
		       &length, "generate_alphabet", &alphabet) < 0)
		return ODX_EINVAL;
	if (every < 0 || every > 366LL * 86400 || (every && every < 60) || length < 0 ||
	    length > SECRET_GEN_MAX || (every && !length) ||
	    (alphabet && (strlen(alphabet) < 2 || strlen(alphabet) > 256))) {
		reply_error(ex, 400, "bad_request",
			    "rotation: every_seconds 60 to 31622400 with generate_length 1 to 256; "
			    "an alphabet of 2 to 256 characters");
		return ODX_EINVAL;
	}
	int rc = secret_set_policy(api->store, api_principal(ex)->tenant_id, name, every, length,
				   alphabet);
	if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	return rc;
}

/* PUT /v1/secrets/{name} {"value": "...", "rotation"?: {...}} — a new version. */
void api_secrets_put(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const char *name = name_param(ex), *value;
	json_t *body = NULL, *rotation = NULL;
	if (!name || api_body(ex, &body) < 0)
		return;
	audit_name(ex, name);
	if (api_unpack(ex, body, "{s:s, s?o}", "value", &value, "rotation", &rotation) < 0)
		goto out;
	size_t len = json_string_length(json_object_get(body, "value"));
	int64_t version;
	int rc = secret_put(api->store, api->secrets, api_principal(ex)->tenant_id, name,
			    (const uint8_t *)value, len, api_principal(ex)->id, &version);
	if (rc == ODX_ETOOBIG) {
		reply_error(ex, 413, "payload_too_large", "a secret value is at most 64 KiB");
		goto out;
	}
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		goto out;
	}
	if (rotation && set_policy(ex, name, rotation) < 0)
		goto out;
	reply_meta(ex, version == 1 ? 201 : 200, name);
out:
	/* The value is in the parsed body: gone with it (jansson frees, wiping is the
	 * allocator's; the daemon keeps no copy). */
	json_decref(body);
}

void api_secrets_restart_users(struct api *api, const char *tenant, const char *name)
{
	json_t *deps = NULL;
	if (secret_deployments(api->store, tenant, name, &deps) < 0)
		return;
	size_t i;
	json_t *v;
	json_array_foreach(deps, i, v)
	{
		struct deployment d;
		const char *dep = json_string_value(v);
		if (deploy_get(api->store, tenant, dep, &d) < 0)
			continue;
		bool uses = false;
		size_t j;
		json_t *sname;
		json_array_foreach(json_object_get(d.template, "secrets"), j, sname)
			uses |= strcmp(json_string_value(sname), name) == 0;
		deployment_free(&d);
		if (uses && deploy_restart(api->store, tenant, dep, &d) == 0) {
			deployment_free(&d);
			if (api->sched)
				sched_sync(api->sched, tenant, dep);
		}
	}
	json_decref(deps);
}

/*
 * Old versions no container holds any more are revoked (deleted): what the
 * scheduler remembers handing out decides; the current version always stays.
 */
static void revoke_unused(struct api *api, const char *tenant)
{
	json_t *old = NULL;
	if (!api->sched || secret_with_old_versions(api->store, tenant, &old) < 0)
		return;
	size_t i;
	json_t *v;
	json_array_foreach(old, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		int64_t current = json_integer_value(json_object_get(v, "version"));
		int64_t oldest = sched_oldest_delivered(api->sched, tenant, name);
		int64_t removed = 0;
		if (secret_prune(api->store, tenant, name, oldest ? oldest : current, &removed) < 0 ||
		    !removed)
			continue;
		char resource[96], reason[64];
		snprintf(resource, sizeof(resource), "/v1/secrets/%s", name);
		snprintf(reason, sizeof(reason), "%lld old version(s) no container holds",
			 (long long)removed);
		struct audit_record r = {.actor_type = AUDIT_ACTOR_SYSTEM,
					 .tenant_id = tenant,
					 .action = "secret.revoke_version",
					 .resource = resource,
					 .outcome = AUDIT_SUCCESS,
					 .reason = reason};
		api_trail_record(api, &r);
	}
	json_decref(old);
}

/* Policy rotations that are due, as the system: generated, audited, rolled out. */
void api_secrets_rotate_due(struct api *api)
{
	json_t *tenants = NULL, *due = json_array();
	if (!due || tenant_list(api->store, NULL, 100000, &tenants) < 0) {
		json_decref(due);
		return;
	}
	int64_t now_s = time_now_ns() / NSEC_PER_SEC;
	size_t i;
	json_t *t;
	json_array_foreach(tenants, i, t)
	{
		const char *tenant = json_string_value(json_object_get(t, "id"));
		secret_due(api->store, tenant, now_s, due);
		revoke_unused(api, tenant);
	}
	json_array_foreach(due, i, t)
	{
		const char *tenant = json_string_value(json_object_get(t, "tenant"));
		const char *name = json_string_value(json_object_get(t, "name"));
		int64_t version;
		int rc = secret_rotate(api->store, api->secrets, tenant, name, NULL, 0, "system",
				       &version);
		char resource[96];
		snprintf(resource, sizeof(resource), "/v1/secrets/%s", name);
		struct audit_record r = {.actor_type = AUDIT_ACTOR_SYSTEM,
					 .tenant_id = tenant,
					 .action = "secret.rotate",
					 .resource = resource,
					 .outcome = rc == 0 ? AUDIT_SUCCESS : AUDIT_FAILURE,
					 .reason = rc == 0 ? "rotation policy" : odx_strerror(rc)};
		api_trail_record(api, &r);
		if (rc == 0)
			api_secrets_restart_users(api, tenant, name);
	}
	json_decref(tenants);
	json_decref(due);
}

/* POST /v1/secrets/{name}/rotate {"value"?: "..."}: given, or generated by the policy. */
void api_secrets_rotate(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const char *name = name_param(ex), *value = NULL;
	json_t *body = NULL;
	if (!name)
		return;
	audit_name(ex, name);
	if (ex->body_len &&
	    (api_body(ex, &body) < 0 || api_unpack(ex, body, "{s?s}", "value", &value) < 0))
		goto out;
	size_t len = value ? json_string_length(json_object_get(body, "value")) : 0;
	int64_t version;
	int rc = secret_rotate(api->store, api->secrets, api_principal(ex)->tenant_id, name,
			       (const uint8_t *)value, len, api_principal(ex)->id, &version);
	if (rc == ODX_EINVAL)
		reply_error(ex, 400, "bad_request",
			    "give a value, or set a rotation policy with generate_length first");
	else if (rc == ODX_ETOOBIG)
		reply_error(ex, 413, "payload_too_large", "a secret value is at most 64 KiB");
	else if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "no such secret" : NULL);
	else {
		api_secrets_restart_users(api, api_principal(ex)->tenant_id, name);
		reply_meta(ex, 200, name);
	}
out:
	json_decref(body);
}

/* POST /v1/secrets/{name}/grants {"deployments": [...]}: the whole list. */
void api_secrets_grants(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const char *name = name_param(ex);
	json_t *body = NULL, *deps;
	if (!name || api_body(ex, &body) < 0)
		return;
	audit_name(ex, name);
	if (api_unpack(ex, body, "{s:o}", "deployments", &deps) < 0)
		goto out;
	bool ok = json_is_array(deps) && json_array_size(deps) <= SECRET_GRANTS_MAX;
	size_t i;
	json_t *v;
	json_array_foreach(deps, i, v) ok &= json_is_string(v) && deploy_name_valid(json_string_value(v));
	if (!ok) {
		reply_error(ex, 400, "bad_request", "deployments: at most 64 deployment names");
		goto out;
	}
	int rc = secret_grant(api->store, api_principal(ex)->tenant_id, name, deps);
	if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "no such secret" : NULL);
	else
		reply_meta(ex, 200, name);
out:
	json_decref(body);
}

void api_secrets_delete(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const char *name = name_param(ex);
	if (!name)
		return;
	audit_name(ex, name);
	int rc = secret_delete(api->store, api_principal(ex)->tenant_id, name);
	if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "no such secret" : NULL);
	else
		reply_no_content(ex);
}

int api_secrets_check_grants(struct http_exchange *ex, const char *deployment, const json_t *names)
{
	struct api *api = ex->app;
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v)
	{
		const char *name = json_string_value(v);
		int rc = secret_granted(api->store, api_principal(ex)->tenant_id, name, deployment);
		if (rc == 0)
			continue;
		char msg[200];
		if (rc == ODX_ENOTFOUND)
			snprintf(msg, sizeof(msg), "secret %s does not exist", name);
		else if (rc == ODX_EFORBIDDEN)
			snprintf(msg, sizeof(msg), "secret %s is not granted to deployment %s", name,
				 deployment);
		else
			return reply_odx_error(ex, rc, NULL), rc;
		reply_error(ex, 400, "bad_request", msg);
		return ODX_EINVAL;
	}
	return 0;
}
