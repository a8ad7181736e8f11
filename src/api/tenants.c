/* tenants.c — tenants and quotas (platform administrator), /v1/quotas (tenant members). */
#include <math.h>
#include <string.h>

#include "api/api.h"
#include "auth/password.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "tenancy/tenancy.h"

/* Reads a quotas object; `partial` allows missing fields (they keep their value in q). */
static int parse_quotas(struct http_exchange *ex, json_t *obj, bool partial, struct quotas *q)
{
	double cpu = NAN; /* stays NaN when a partial object leaves it out */
	json_int_t mem = q->memory_mb, cont = q->containers, stor = q->storage_mb;
	int rc = partial ? api_unpack(ex, obj, "{s?F, s?I, s?I, s?I}", "cpu_cores", &cpu,
				      "memory_mb", &mem, "containers", &cont, "storage_mb", &stor)
			 : api_unpack(ex, obj, "{s:F, s:I, s:I, s:I}", "cpu_cores", &cpu,
				      "memory_mb", &mem, "containers", &cont, "storage_mb", &stor);
	if (rc < 0)
		return rc;
	struct quotas n = *q;
	if (!partial || !isnan(cpu)) {
		if (!isfinite(cpu) || cpu <= 0 || cpu > 1024) {
			reply_error(ex, 400, "bad_request", "cpu_cores must be > 0 and <= 1024");
			return ODX_EINVAL;
		}
		n.cpu_millicores = (int64_t)llround(cpu * 1000.0);
	}
	n.memory_mb = mem;
	n.containers = cont;
	n.storage_mb = stor;
	if (quotas_validate(&n) < 0) {
		reply_error(ex, 400, "bad_request", "quota out of range");
		return ODX_EINVAL;
	}
	*q = n;
	return 0;
}

void api_tenants_list(struct http_exchange *ex)
{
	struct api *api = ex->app;
	int limit;
	char after[ID_MAX_LEN];
	if (api_list_params(ex, "ten", &limit, after, sizeof(after)) < 0)
		return;
	json_t *items;
	int rc = tenant_list(api->store, after, limit, &items);
	if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else
		api_reply_list(ex, items, limit);
}

void api_tenants_create(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *body, *quotas = NULL;
	const char *name, *email_in, *password;
	if (api_body(ex, &body) < 0)
		return;
	if (api_unpack(ex, body, "{s:s, s:{s:s, s:s}, s?o}", "name", &name, "admin", "email",
		       &email_in, "password", &password, "quotas", &quotas) < 0)
		goto out;
	struct quotas q;
	quotas_default(&q);
	if (quotas && (!json_is_object(quotas) || parse_quotas(ex, quotas, true, &q) < 0)) {
		if (!reply_done(ex))
			reply_error(ex, 400, "bad_request", "quotas must be an object");
		goto out;
	}
	char email[EMAIL_MAX + 1];
	snprintf(email, sizeof(email), "%s", email_in);
	if (tenant_name_validate(name) < 0) {
		reply_error(ex, 400, "bad_request", "name must be 1-64 of a-z, 0-9 and '-'");
		goto out;
	}
	if (strlen(email_in) > EMAIL_MAX || email_normalize(email) < 0) {
		reply_error(ex, 400, "bad_request", "admin.email is not a valid email address");
		goto out;
	}
	if (password_policy_check(password, strlen(password)) < 0) {
		reply_error(ex, 400, "bad_request", "admin.password must be 12 to 1024 characters");
		goto out;
	}
	char hash[PASSWORD_HASH_MAX];
	int rc = password_hash(password, strlen(password), hash);
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		goto out;
	}
	struct tenant t;
	struct user admin;
	const char *conflict = NULL;
	rc = tenant_create(api->store, name, &q, email, hash, &t, &admin, &conflict);
	if (rc == ODX_ECONFLICT) {
		reply_error(ex, 409, "conflict",
			    conflict && !strcmp(conflict, "email") ? "email already in use"
								   : "tenant name already in use");
		goto out;
	}
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		goto out;
	}
	snprintf(ex->audit_resource, sizeof(ex->audit_resource), "/v1/tenants/%s", t.id);
	json_t *res = tenant_to_json(&t);
	json_object_set_new(res, "admin", user_to_json(&admin));
	reply_json(ex, 201, res);
out:
	json_decref(body);
}

void api_tenants_get(struct http_exchange *ex)
{
	struct api *api = ex->app;
	struct tenant t;
	int rc = tenant_get(api->store, ex->params[0], &t);
	if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "tenant not found" : NULL);
	else
		reply_json(ex, 200, tenant_to_json(&t));
}

void api_tenants_update(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *body;
	const char *name;
	if (api_body(ex, &body) < 0)
		return;
	if (api_unpack(ex, body, "{s:s}", "name", &name) < 0)
		goto out;
	if (tenant_name_validate(name) < 0) {
		reply_error(ex, 400, "bad_request", "name must be 1-64 of a-z, 0-9 and '-'");
		goto out;
	}
	struct tenant t;
	int rc = tenant_rename(api->store, ex->params[0], name, &t);
	if (rc == ODX_ECONFLICT)
		reply_error(ex, 409, "conflict", "tenant name already in use");
	else if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "tenant not found" : NULL);
	else
		reply_json(ex, 200, tenant_to_json(&t));
out:
	json_decref(body);
}

void api_tenants_delete(struct http_exchange *ex)
{
	struct api *api = ex->app;
	int rc = tenant_delete(api->store, ex->params[0], time_now_ns());
	if (rc == ODX_ECONFLICT)
		reply_error(ex, 409, "conflict", "tenant still has running containers");
	else if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "tenant not found" : NULL);
	else
		reply_no_content(ex);
}

void api_tenants_set_quotas(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *body;
	if (api_body(ex, &body) < 0)
		return;
	struct quotas q;
	quotas_default(&q);
	if (parse_quotas(ex, body, false, &q) == 0) {
		struct tenant t;
		int rc = tenant_set_quotas(api->store, ex->params[0], &q, &t);
		if (rc < 0)
			reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "tenant not found" : NULL);
		else
			reply_json(ex, 200, tenant_to_json(&t));
	}
	json_decref(body);
}

void api_quotas_get(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const struct principal *p = api_principal(ex);
	struct tenant t;
	struct quotas usage;
	int rc = tenant_get(api->store, p->tenant_id, &t);
	if (rc == 0)
		rc = tenant_usage(api->store, p->tenant_id, &usage);
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		return;
	}
	reply_json(ex, 200,
		   json_pack("{s:o, s:o}", "limits", quotas_to_json(&t.quotas), "usage",
			     quotas_to_json(&usage)));
}
