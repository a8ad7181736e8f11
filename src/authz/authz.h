/*
 * authz.h — who may do what: the role matrix of SPEC §3 in one table.
 *
 * Every route declares one permission (perm_id). authz_check() is the only
 * place a role is compared to a permission: handlers never look at roles.
 * Decision order (SPEC §3): explicit deny in a permission set > explicit
 * allow > role matrix > deny. Permission sets live in permset.h;
 * authz_decide() combines them with the matrix.
 */
#ifndef ODX_AUTHZ_H
#define ODX_AUTHZ_H

#include <stdbool.h>

#include "crypto/random.h"

enum role {
	ROLE_NONE = 0,
	ROLE_READONLY,
	ROLE_DEVELOPER,
	ROLE_OPERATOR,
	ROLE_ADMIN,
	ROLE_PLATFORM_ADMIN, /* outside tenants: tenants, quotas, nodes */
};

/* An agent is a node (its certificate's node id), on the agent API only; it holds no role. */
enum principal_kind { PRINCIPAL_USER, PRINCIPAL_API_KEY, PRINCIPAL_AGENT };

/* The verified caller. tenant_id is "" for the platform administrator. */
struct principal {
	enum principal_kind kind;
	char id[ID_MAX_LEN];
	char tenant_id[ID_MAX_LEN];
	enum role role;
};

/* One row per line of the SPEC §3 matrix, plus the two the foundation adds. */
enum perm_id {
	PERM_INVALID = 0,   /* a route without a declaration: refused at registration */
	PERM_PUBLIC,	    /* no credential needed */
	PERM_AUTHENTICATED, /* any verified caller (GET /v1/me, logout) */
	PERM_PLATFORM,	    /* platform administrator: tenants, quotas, nodes */
	PERM_TENANT_MEMBER, /* any role inside a tenant (GET /v1/quotas) */
	PERM_DEPLOYMENTS_VIEW,
	PERM_DEPLOYMENTS_CREATE,
	PERM_DEPLOYMENTS_UPDATE,
	PERM_DEPLOYMENTS_OPERATE, /* scale, restart, rollback */
	PERM_DEPLOYMENTS_DELETE,
	PERM_CONTAINERS_VIEW,
	PERM_CONTAINERS_OPERATE, /* restart, stop */
	PERM_CONTAINERS_EXEC,
	PERM_INCIDENTS_VIEW,
	PERM_INCIDENTS_ACK,
	PERM_INCIDENTS_RESOLVE, /* resolve, remediate */
	PERM_SCANNER_SCAN,
	PERM_SCANNER_VIEW,
	PERM_SCANNER_POLICIES,
	PERM_AUDIT_READ,
	PERM_AUDIT_EXPORT,
	PERM_SECRETS_WRITE, /* write, rotate, revoke, grant */
	PERM_SECRETS_LIST,
	PERM_TENANT_SETTINGS, /* users, roles, permission sets, API keys */
	PERM_APPROVALS_DECIDE,
	PERM_AGENT, /* the agent API: a live node's certificate; no role holds it */
	PERM_COUNT
};

/* Why a request was refused, for the reply and the audit record. */
enum authz_reason {
	AUTHZ_OK = 0,
	AUTHZ_DENY_ROLE,
	AUTHZ_DENY_PLATFORM_BOUNDARY,
	AUTHZ_DENY_NOT_OWNER,
	AUTHZ_DENY_PERMISSION_SET,
};

/*
 * Decides whether p may use perm. Returns AUTHZ_OK or the reason for the
 * refusal. `own` applies to PERM_DEPLOYMENTS_UPDATE for Developers:
 * pass whether the caller created the object (true when not applicable).
 */
enum authz_reason authz_check(const struct principal *p, enum perm_id perm, bool own);
struct permset_rules;
/*
 * The whole decision of SPEC §3 for a request: an explicit deny in the
 * caller's permission sets, then an explicit allow (never for platform
 * routes), then authz_check. A deny never removes a caller's own session
 * routes (PERM_AUTHENTICATED) nor an Admin's tenant settings, so a tenant
 * cannot lock itself out. rules may be NULL (no sets). On
 * AUTHZ_DENY_PERMISSION_SET, *set names the set that denied.
 */
enum authz_reason authz_decide(const struct principal *p, enum perm_id perm, bool own,
			       const struct permset_rules *rules, const char *method,
			       const char *path, const char **set);
/* Name of the reason ("role", "not_owner", ...). */
const char *authz_reason_name(enum authz_reason r);
/* Name of a permission ("deployments:view"), for /v1/me and logs. */
const char *authz_perm_name(enum perm_id perm);
/* True when the matrix grants perm to role (ownership aside). */
bool authz_role_has(enum role role, enum perm_id perm);

/* Role from its API name ("admin", ...); ROLE_NONE when unknown. */
enum role role_parse(const char *s);
/* API name of a role. */
const char *role_name(enum role r);
/* True for the four roles a tenant member can hold. */
bool role_is_tenant_role(enum role r);

#endif
