/* auth.c — login, refresh, logout, JWKS and /v1/me. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "auth/jwt.h"
#include "auth/password.h"
#include "auth/session.h"
#include "authz/permset.h"
#include "core/err.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "tenancy/tenancy.h"

/* Signs an access token for u and replies with it and the refresh token. */
static void reply_tokens(struct http_exchange *ex, const struct user *u,
			 const char refresh[static REFRESH_TOKEN_LEN])
{
	struct api *api = ex->app;
	struct jwt_claims c;
	memset(&c, 0, sizeof(c));
	snprintf(c.sub, sizeof(c.sub), "%s", u->id);
	snprintf(c.tid, sizeof(c.tid), "%s", u->tenant_id);
	snprintf(c.role, sizeof(c.role), "%s", role_name(u->role));
	char *access = NULL;
	int rc = jwt_issue(api->keyring, &c, time_now_ns() / NSEC_PER_SEC, &access);
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		return;
	}
	reply_json(ex, 200,
		   json_pack("{s:s, s:s, s:i, s:s}", "access_token", access, "token_type", "Bearer",
			     "expires_in", JWT_LIFETIME_S, "refresh_token", refresh));
	explicit_bzero(access, strlen(access));
	free(access);
}

static void login_failed(struct http_exchange *ex, const char *email)
{
	struct api *api = ex->app;
	throttle_failure(api->throttle, email, ex->source_ip, time_now_ns());
	api_log_security(ex, "login_failed", "invalid_credentials");
	snprintf(ex->audit_reason, sizeof(ex->audit_reason), "invalid_credentials");
	reply_error(ex, 401, "unauthorized", "invalid email or password");
}

void api_auth_login(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *body;
	const char *email_in, *password;
	if (api_body(ex, &body) < 0)
		return;
	if (api_unpack(ex, body, "{s:s, s:s}", "email", &email_in, "password", &password) < 0)
		goto out;
	char email[EMAIL_MAX + 1];
	snprintf(email, sizeof(email), "%s", email_in);
	bool email_ok = strlen(email_in) <= EMAIL_MAX && email_normalize(email) == 0;
	/* The audit names the account tried, never the password. */
	snprintf(ex->audit_actor_email, sizeof(ex->audit_actor_email), "%s", email);
	int retry = 0;
	if (throttle_check(api->throttle, email, ex->source_ip, time_now_ns(), &retry) < 0) {
		api_log_security(ex, "login_throttled", "too_many_failures");
		snprintf(ex->audit_reason, sizeof(ex->audit_reason), "throttled");
		reply_error(ex, 429, "rate_limited", "too many failed logins; retry later");
		ex->retry_after = retry;
		goto out;
	}
	struct user u;
	char hash[PASSWORD_HASH_MAX];
	int rc = email_ok ? user_find_login(api->store, email, &u, hash) : ODX_ENOTFOUND;
	if (rc < 0 && rc != ODX_ENOTFOUND) {
		reply_odx_error(ex, rc, NULL);
		goto out;
	}
	/* Unknown accounts pay for a dummy verification: same answer, same time. */
	bool known = rc == 0;
	rc = password_verify(known ? hash : NULL, password, strlen(password));
	explicit_bzero(hash, sizeof(hash));
	/* A failed sign-in to an existing account belongs to its tenant's audit trail too. */
	if (rc < 0 && known)
		snprintf(ex->audit_tenant_id, sizeof(ex->audit_tenant_id), "%s", u.tenant_id);
	if (rc < 0) {
		login_failed(ex, email);
		goto out;
	}
	throttle_success(api->throttle, email);
	snprintf(ex->audit_actor_id, sizeof(ex->audit_actor_id), "%s", u.id);
	snprintf(ex->audit_tenant_id, sizeof(ex->audit_tenant_id), "%s", u.tenant_id);
	struct session_subject who;
	memset(&who, 0, sizeof(who));
	snprintf(who.tenant_id, sizeof(who.tenant_id), "%s", u.tenant_id);
	snprintf(who.user_id, sizeof(who.user_id), "%s", u.id);
	char refresh[REFRESH_TOKEN_LEN];
	rc = session_start(api->store, &who, time_now_ns(), refresh);
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		goto out;
	}
	reply_tokens(ex, &u, refresh);
	explicit_bzero(refresh, sizeof(refresh));
out:
	/* The password's bytes live in the JSON tree: wipe them before it is freed. */
	if (json_is_object(body) && json_is_string(json_object_get(body, "password"))) {
		json_t *pw = json_object_get(body, "password");
		explicit_bzero((char *)json_string_value(pw), json_string_length(pw));
	}
	json_decref(body);
}

void api_auth_refresh(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *body;
	const char *token;
	if (api_body(ex, &body) < 0)
		return;
	if (api_unpack(ex, body, "{s:s}", "refresh_token", &token) < 0)
		goto out;
	char next[REFRESH_TOKEN_LEN];
	struct session_subject who;
	int rc = session_refresh(api->store, token, time_now_ns(), next, &who);
	if (rc == 0 || rc == ODX_EREUSED) {
		snprintf(ex->audit_actor_id, sizeof(ex->audit_actor_id), "%s", who.user_id);
		snprintf(ex->audit_tenant_id, sizeof(ex->audit_tenant_id), "%s", who.tenant_id);
	}
	if (rc == ODX_EREUSED) {
		api_log_security(ex, "refresh_token_reuse", "family_revoked");
		snprintf(ex->audit_reason, sizeof(ex->audit_reason), "refresh_token_reuse");
		reply_error(ex, 401, "unauthorized", "refresh token already used; session revoked");
		goto out;
	}
	if (rc < 0) {
		if (rc == ODX_EAUTH)
			reply_error(ex, 401, "unauthorized", "invalid or expired refresh token");
		else
			reply_odx_error(ex, rc, NULL);
		goto out;
	}
	struct user u;
	rc = user_get(api->store, who.tenant_id, who.user_id, &u);
	if (rc < 0) {
		/* The account is gone: its sessions go with it. */
		session_revoke_user(api->store, who.user_id, time_now_ns(), "account_removed");
		reply_error(ex, 401, "unauthorized", "invalid or expired refresh token");
		goto out;
	}
	reply_tokens(ex, &u, next);
	explicit_bzero(next, sizeof(next));
out:
	json_decref(body);
}

void api_auth_logout(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *body;
	const char *token;
	if (api_body(ex, &body) < 0)
		return;
	if (api_unpack(ex, body, "{s:s}", "refresh_token", &token) < 0)
		goto out;
	/* RFC 7009: an unknown or foreign token is not an error; only the caller's own is revoked.
	 */
	int rc = session_logout(api->store, token, api_principal(ex)->id, time_now_ns());
	if (rc < 0 && rc != ODX_EAUTH)
		reply_odx_error(ex, rc, NULL);
	else
		reply_no_content(ex);
out:
	json_decref(body);
}

void api_auth_jwks(struct http_exchange *ex)
{
	struct api *api = ex->app;
	reply_json(ex, 200, keyring_jwks(api->keyring, time_now_ns()));
}

void api_me(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const struct principal *p = api_principal(ex);
	json_t *perms = json_array();
	for (int perm = PERM_PLATFORM; perm < PERM_COUNT; perm++)
		if (authz_role_has(p->role, (enum perm_id)perm))
			json_array_append_new(perms,
					      json_string(authz_perm_name((enum perm_id)perm)));
	json_t *email = json_null();
	if (p->kind == PRINCIPAL_USER) {
		struct user u;
		int rc = user_get(api->store, p->tenant_id, p->id, &u);
		if (rc < 0) {
			json_decref(perms);
			if (rc == ODX_ENOTFOUND)
				reply_error(ex, 401, "unauthorized", "account no longer exists");
			else
				reply_odx_error(ex, rc, NULL);
			return;
		}
		email = json_string(u.email);
	}
	/* The effective rules: the caller's permission sets, which come before the role. */
	json_t *sets = json_array(), *rules = json_array();
	const struct permset_rules *pr = NULL;
	int rc = p->tenant_id[0] ? permset_rules_for(api->store, p->tenant_id, p->id, &pr) : 0;
	for (size_t i = 0; rc == 0 && pr && i < pr->nsets; i++)
		json_array_append_new(sets, json_string(pr->sets[i]));
	for (size_t i = 0; rc == 0 && pr && i < pr->n; i++) {
		const struct permset_rule *r = &pr->rules[i];
		json_array_append_new(rules,
				      json_pack("{s:s, s:s, s:s, s:s}", "set", r->set, "effect",
						r->effect == PERMSET_DENY ? "deny" : "allow",
						"method", r->method, "path", r->path));
	}
	if (rc < 0) {
		json_decref(perms);
		json_decref(email);
		json_decref(sets);
		json_decref(rules);
		reply_odx_error(ex, rc, NULL);
		return;
	}
	reply_json(ex, 200,
		   json_pack("{s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:o}", "id", p->id, "kind",
			     p->kind == PRINCIPAL_USER ? "user" : "api_key", "email", email,
			     "tenant_id", p->tenant_id[0] ? json_string(p->tenant_id) : json_null(),
			     "role", role_name(p->role), "permissions", perms, "permission_sets",
			     sets, "rules", rules));
}
