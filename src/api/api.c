/* api.c — the dispatch path and the helpers of api.h. */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <strings.h>

#include "api/api.h"
#include "auth/apikey.h"
#include "auth/jwt.h"
#include "authz/permset.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/jdoc.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "crypto/random.h"

const struct principal *api_principal(const struct http_exchange *ex)
{
	return ex->auth;
}

void api_log_security(const struct http_exchange *ex, const char *event, const char *reason)
{
	const struct principal *p = ex->auth;
	log_event(LOG_WARN, event,
		  json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "reason", reason, "method",
			    http_method_name(ex->method), "route",
			    ex->route ? ex->route->pattern : "", "path", ex->path ? ex->path : "",
			    "actor", p ? p->id : "", "tenant", p ? p->tenant_id : "", "request_id",
			    ex->request_id, "source", ex->source_ip));
}

/* Verifies the Bearer credential: an API key (odk_...) or an access token. */
static int authenticate(struct api *api, const struct http_exchange *ex, struct principal *p)
{
	const char *h = ex->authorization;
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return ODX_EAUTH;
	const char *cred = h + 7;
	while (*cred == ' ')
		cred++;
	if (apikey_looks_like(cred)) {
		struct apikey k;
		int rc = apikey_authenticate(api->store, cred, time_now_ns(), &k);
		if (rc < 0)
			return rc == ODX_EAUTH || rc == ODX_ENOTFOUND ? ODX_EAUTH : rc;
		p->kind = PRINCIPAL_API_KEY;
		memcpy(p->id, k.id, sizeof(p->id));
		memcpy(p->tenant_id, k.tenant_id, sizeof(p->tenant_id));
		p->role = k.role;
		return 0;
	}
	struct jwt_claims c;
	int rc =
	    jwt_verify_cached(api->keyring, cred, strlen(cred), time_now_ns() / NSEC_PER_SEC, &c);
	if (rc < 0)
		return ODX_EAUTH;
	p->kind = PRINCIPAL_USER;
	memcpy(p->id, c.sub, sizeof(p->id));
	memcpy(p->tenant_id, c.tid, sizeof(p->tenant_id));
	p->role = role_parse(c.role);
	if (p->role == ROLE_NONE)
		return ODX_EAUTH;
	/* A deleted or re-roled user's older tokens stop here. */
	if (!revocation_allows(api->revocation, p->id, p->role, time_now_ns()))
		return ODX_EAUTH;
	/* A deleted tenant's tokens die with it, not when they expire. */
	if (p->tenant_id[0] && !store_tenant_exists(api->store, p->tenant_id))
		return ODX_EAUTH;
	return 0;
}

/* The one authorization point: true to go on, false with the 403 (or error) set. */
static bool authorize(struct api *api, struct http_exchange *ex, const struct principal *p)
{
	const struct permset_rules *rules = NULL;
	if (p->tenant_id[0]) {
		int rc = permset_rules_for(api->store, p->tenant_id, p->id, &rules);
		if (rc < 0) {
			reply_odx_error(ex, rc, NULL);
			return false;
		}
	}
	/* Ownership is decided here, from the route's owner lookup, never in a handler. */
	bool own = true;
	if (ex->route->owner) {
		char owner[ID_MAX_LEN] = "";
		int rc = ex->route->owner(ex, owner, sizeof(owner));
		if (rc < 0 && rc != ODX_ENOTFOUND) {
			reply_odx_error(ex, rc, NULL);
			return false;
		}
		own = rc == 0 && strcmp(owner, p->id) == 0;
	}
	const char *set = NULL;
	enum authz_reason why = authz_decide(p, (enum perm_id)ex->route->perm, own, rules,
					     http_method_name(ex->method), ex->path, &set);
	if (why == AUTHZ_OK)
		return true;
	char reason[PERMSET_NAME_MAX + 32];
	if (why == AUTHZ_DENY_PERMISSION_SET)
		snprintf(reason, sizeof(reason), "permission_set:%s", set);
	else
		snprintf(reason, sizeof(reason), "%s", authz_reason_name(why));
	api_log_security(ex, "denied", reason);
	snprintf(ex->audit_reason, sizeof(ex->audit_reason), "%s", reason);
	const char *msg = why == AUTHZ_DENY_PLATFORM_BOUNDARY
			      ? "the platform administrator cannot act inside a tenant"
			  : why == AUTHZ_DENY_PERMISSION_SET ? "denied by a permission set"
			  : why == AUTHZ_DENY_NOT_OWNER	     ? "only the creator may do this"
							     : "your role does not allow this";
	reply_error(ex, 403, "forbidden", msg);
	return false;
}

/* Sends the outcome to the audit log: routes with an action always, others when denied. */
static void record(struct http_exchange *ex)
{
	if (ex->route->action && (ex->route->flags & HTTP_ROUTE_BLOCKING))
		api_trail_result(ex);
	else if (ex->status == 401 || ex->status == 403)
		api_trail_denied(ex);
}

void api_dispatch(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const struct http_route *r = ex->route;
	struct principal p;
	memset(&p, 0, sizeof(p));
	bool open = r->perm == PERM_PUBLIC ||
		    ((r->flags & HTTP_ROUTE_LOOPBACK_OPEN) && ex->loopback && !ex->authorization);
	if (!open) {
		int rc = authenticate(api, ex, &p);
		if (rc < 0) {
			api_log_security(ex, "denied", "unauthenticated");
			snprintf(ex->audit_reason, sizeof(ex->audit_reason), "unauthenticated");
			if (rc == ODX_EAUTH)
				reply_error(ex, 401, "unauthorized",
					    "missing, invalid or expired credential");
			else
				reply_odx_error(ex, rc, NULL);
			goto out;
		}
		ex->auth = &p;
		if (!authorize(api, ex, &p))
			goto out;
	}
	if (r->action && (r->flags & HTTP_ROUTE_BLOCKING) && !api_trail_gate(ex))
		goto out;
	r->handler(ex);
out:
	record(ex);
	ex->auth = NULL;
}

static bool is_json_type(const char *ct)
{
	static const char want[] = "application/json";
	if (!ct || strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return false;
	char next = ct[sizeof(want) - 1];
	return next == '\0' || next == ';' || next == ' ';
}

/* False (415 set) unless the body says it is JSON. */
static bool json_body(struct http_exchange *ex)
{
	if (is_json_type(ex->content_type))
		return true;
	reply_error(ex, 415, "unsupported_media_type", "Content-Type must be application/json");
	return false;
}

int api_body(struct http_exchange *ex, json_t **out)
{
	if (!json_body(ex))
		return ODX_EINVAL;
	char msg[JSONX_MSG_LEN];
	if (jsonx_parse_object(ex->body, ex->body_len, out, msg) < 0) {
		reply_error(ex, 400, "bad_request", msg);
		return ODX_EINVAL;
	}
	return 0;
}

int api_body_doc(struct http_exchange *ex, unsigned max_depth, struct jdoc **out)
{
	if (!json_body(ex))
		return ODX_EINVAL;
	char msg[JDOC_MSG_LEN];
	struct jdoc *d;
	int rc = jdoc_parse(ex->body, ex->body_len, max_depth, &d, msg);
	if (rc == 0 && !jval_is_object(jdoc_root(d))) {
		jdoc_free(d);
		snprintf(msg, sizeof(msg), "body must be a JSON object");
		rc = ODX_EINVAL;
	}
	if (rc == ODX_ENOMEM)
		reply_odx_error(ex, rc, NULL);
	else if (rc < 0)
		reply_error(ex, 400, "bad_request", msg);
	else
		*out = d;
	return rc;
}

int api_unpack(struct http_exchange *ex, json_t *body, const char *fmt, ...)
{
	char msg[JSONX_MSG_LEN];
	va_list ap;
	va_start(ap, fmt);
	int rc = jsonx_vunpack(body, msg, fmt, ap);
	va_end(ap);
	if (rc < 0)
		reply_error(ex, 400, "bad_request", msg);
	return rc;
}

int api_limit_param(struct http_exchange *ex, struct evkeyvalq *q, int *limit)
{
	const char *l = evhttp_find_header(q, "limit");
	int64_t v;
	*limit = API_LIST_DEFAULT;
	if (l && parse_int64(l, 1, API_LIST_MAX, &v) < 0) {
		reply_error(ex, 400, "bad_request", "limit must be an integer from 1 to 500");
		return ODX_EINVAL;
	}
	if (l)
		*limit = (int)v;
	return 0;
}

int api_query(struct http_exchange *ex, struct evkeyvalq *q)
{
	TAILQ_INIT(q);
	if (ex->query && evhttp_parse_query_str(ex->query, q) != 0) {
		reply_error(ex, 400, "bad_request", "malformed query string");
		return ODX_EINVAL;
	}
	return 0;
}

int api_list_params(struct http_exchange *ex, const char *id_prefix, int *limit, char *after,
		    size_t after_len)
{
	*limit = API_LIST_DEFAULT;
	after[0] = '\0';
	if (!ex->query)
		return 0;
	struct evkeyvalq q;
	if (api_query(ex, &q) < 0)
		return ODX_EINVAL;
	int rc = api_limit_param(ex, &q, limit);
	const char *c = evhttp_find_header(&q, "cursor");
	if (rc == 0 && c && *c) {
		size_t n = 0;
		uint8_t raw[PERMSET_NAME_MAX + 2];
		if (b64url_decode(c, strlen(c), raw, sizeof(raw) - 1, &n) < 0 ||
		    n + 1 > after_len ||
		    (raw[n] = '\0', id_prefix ? !random_id_valid(id_prefix, (const char *)raw)
					      : permset_name_validate((const char *)raw) < 0)) {
			reply_error(ex, 400, "bad_request", "invalid cursor");
			rc = ODX_EINVAL;
		} else {
			memcpy(after, raw, n + 1);
		}
	}
	evhttp_clear_headers(&q);
	return rc;
}

void api_reply_list_by(struct http_exchange *ex, json_t *items, int limit, const char *key)
{
	json_t *next = json_null();
	if (json_array_size(items) > (size_t)limit) {
		json_array_remove(items, (size_t)limit);
		json_t *last = json_array_get(items, (size_t)limit - 1);
		const char *v = json_string_value(json_object_get(last, key));
		char cur[ID_MAX_LEN * 2];
		b64url_encode((const uint8_t *)v, strlen(v), cur);
		json_decref(next);
		next = json_string(cur);
	}
	reply_json(ex, 200, json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}

void api_reply_list(struct http_exchange *ex, json_t *items, int limit)
{
	api_reply_list_by(ex, items, limit, "id");
}
