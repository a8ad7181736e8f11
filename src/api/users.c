/* users.c — a tenant's users (Admin). The tenant is always the caller's own. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "auth/password.h"
#include "auth/session.h"
#include "authz/permset.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "tenancy/tenancy.h"

static enum role parse_role(struct http_exchange *ex, const char *s)
{
	enum role r = role_parse(s);
	if (!role_is_tenant_role(r))
		reply_error(ex, 400, "bad_request",
			    "role must be one of admin, operator, developer, readonly");
	return role_is_tenant_role(r) ? r : ROLE_NONE;
}

static int check_password(struct http_exchange *ex, const char *pw,
			  char hash[static PASSWORD_HASH_MAX])
{
	if (password_policy_check(pw, strlen(pw)) < 0) {
		reply_error(ex, 400, "bad_request", "password must be 12 to 1024 characters");
		return ODX_EINVAL;
	}
	int rc = password_hash(pw, strlen(pw), hash);
	if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	return rc;
}

void api_users_list(struct http_exchange *ex)
{
	struct api *api = ex->app;
	int limit;
	char after[ID_MAX_LEN];
	if (api_list_params(ex, "usr", &limit, after, sizeof(after)) < 0)
		return;
	json_t *items;
	int rc = user_list(api->store, api_principal(ex)->tenant_id, after, limit, &items);
	if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else
		api_reply_list(ex, items, limit);
}

void api_users_create(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *body;
	const char *email_in, *password, *role_s;
	if (api_body(ex, &body) < 0)
		return;
	if (api_unpack(ex, body, "{s:s, s:s, s:s}", "email", &email_in, "password", &password,
		       "role", &role_s) < 0)
		goto out;
	char email[EMAIL_MAX + 1], hash[PASSWORD_HASH_MAX];
	snprintf(email, sizeof(email), "%s", email_in);
	if (strlen(email_in) > EMAIL_MAX || email_normalize(email) < 0) {
		reply_error(ex, 400, "bad_request", "email is not a valid email address");
		goto out;
	}
	enum role role = parse_role(ex, role_s);
	if (role == ROLE_NONE || check_password(ex, password, hash) < 0)
		goto out;
	struct user u;
	int rc = user_create(api->store, api_principal(ex)->tenant_id, email, hash, role, &u);
	if (rc == ODX_ECONFLICT)
		reply_error(ex, 409, "conflict", "email already in use");
	else if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else {
		snprintf(ex->audit_resource, sizeof(ex->audit_resource), "/v1/users/%s", u.id);
		reply_json(ex, 201, user_to_json(&u));
	}
out:
	json_decref(body);
}

void api_users_get(struct http_exchange *ex)
{
	struct api *api = ex->app;
	struct user u;
	int rc = user_get(api->store, api_principal(ex)->tenant_id, ex->params[0], &u);
	if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "user not found" : NULL);
	else
		reply_json(ex, 200, user_to_json(&u));
}

void api_users_update(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const struct principal *p = api_principal(ex);
	json_t *body, *sets = NULL;
	const char *role_s = NULL, *password = NULL;
	if (api_body(ex, &body) < 0)
		return;
	if (api_unpack(ex, body, "{s?s, s?s, s?o}", "role", &role_s, "password", &password,
		       "permission_sets", &sets) < 0)
		goto out;
	enum role role = ROLE_NONE;
	char hash[PASSWORD_HASH_MAX];
	if (role_s && (role = parse_role(ex, role_s)) == ROLE_NONE)
		goto out;
	if (p->role == ROLE_ADMIN && role != ROLE_NONE && role != ROLE_ADMIN &&
	    strcmp(ex->params[0], p->id) == 0) {
		reply_error(ex, 409, "conflict", "an Admin cannot demote themselves");
		goto out;
	}
	if (password && check_password(ex, password, hash) < 0)
		goto out;
	struct user u;
	/* The sets are checked (and the user found) before anything changes. */
	int rc = user_get(api->store, p->tenant_id, ex->params[0], &u);
	if (rc == 0 && sets && (rc = api_assign_permsets(ex, u.id, sets)) < 0)
		goto out;
	if (rc == 0)
		rc = user_update(api->store, p->tenant_id, ex->params[0], role,
				 password ? hash : NULL, &u);
	if (rc < 0) {
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "user not found" : NULL);
		goto out;
	}
	/* Tokens issued with the old role stop working now, not in 15 minutes. */
	if (role != ROLE_NONE &&
	    (rc = revocation_record(api->revocation, u.id, u.role, time_now_ns())) < 0) {
		reply_odx_error(ex, rc, NULL);
		goto out;
	}
	/* A new password ends every session the old one opened. */
	if (password)
		session_revoke_user(api->store, u.id, time_now_ns(), "password_changed");
	reply_json(ex, 200, user_to_json(&u));
out:
	json_decref(body);
}

void api_users_delete(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const struct principal *p = api_principal(ex);
	if (strcmp(ex->params[0], p->id) == 0) {
		reply_error(ex, 409, "conflict", "an Admin cannot delete themselves");
		return;
	}
	int rc = user_delete(api->store, p->tenant_id, ex->params[0]);
	if (rc == 0)
		rc = permset_forget(api->store, p->tenant_id, ex->params[0]);
	if (rc == 0)
		rc = revocation_record(api->revocation, ex->params[0], ROLE_NONE, time_now_ns());
	if (rc < 0) {
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "user not found" : NULL);
		return;
	}
	session_revoke_user(api->store, ex->params[0], time_now_ns(), "account_removed");
	reply_no_content(ex);
}
