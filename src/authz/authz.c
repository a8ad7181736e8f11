/*
 * authz.c — the role matrix. Read it side by side with SPEC §3: one line
 * per permission, one column per role (A = Admin, O = Operator,
 * D = Developer, R = Read-only). `own` marks a Developer grant limited to
 * objects the Developer created.
 */
#include <string.h>

#include "authz/authz.h"
#include "authz/permset.h"

#define A (1u << ROLE_ADMIN)
#define O (1u << ROLE_OPERATOR)
#define D (1u << ROLE_DEVELOPER)
#define R (1u << ROLE_READONLY)
#define P (1u << ROLE_PLATFORM_ADMIN)

/* clang-format off: a table reads best as one */
static const struct {
	const char *name;
	unsigned roles;
	bool dev_own_only;
} matrix[PERM_COUNT] = {
    [PERM_PUBLIC] = {"public", A | O | D | R | P, false},
    [PERM_AUTHENTICATED] = {"self", A | O | D | R | P, false},
    [PERM_PLATFORM] = {"platform:manage", P, false},
    [PERM_TENANT_MEMBER] = {"tenant:view", A | O | D | R, false},
    /*                                              A   O   D   R  */
    [PERM_DEPLOYMENTS_VIEW] = {"deployments:view", A | O | D | R, false},
    [PERM_DEPLOYMENTS_CREATE] = {"deployments:create", A | O | D, false},
    [PERM_DEPLOYMENTS_UPDATE] = {"deployments:update", A | O | D, true},
    [PERM_DEPLOYMENTS_OPERATE] = {"deployments:operate", A | O, false},
    [PERM_DEPLOYMENTS_DELETE] = {"deployments:delete", A, false},
    [PERM_CONTAINERS_VIEW] = {"containers:view", A | O | D | R, false},
    [PERM_CONTAINERS_OPERATE] = {"containers:operate", A | O, false},
    [PERM_CONTAINERS_EXEC] = {"containers:exec", A, false},
    [PERM_INCIDENTS_VIEW] = {"incidents:view", A | O | D | R, false},
    [PERM_INCIDENTS_ACK] = {"incidents:acknowledge", A | O | D, false},
    [PERM_INCIDENTS_RESOLVE] = {"incidents:resolve", A | O, false},
    [PERM_SCANNER_SCAN] = {"scanner:scan", A | O | D, false},
    [PERM_SCANNER_VIEW] = {"scanner:view", A | O | D | R, false},
    [PERM_SCANNER_POLICIES] = {"scanner:policies", A | O, false},
    /* D: own actions, filtered in the query. P: the platform's own records (tenant ""). */
    [PERM_AUDIT_READ] = {"audit:read", A | O | D | P, false},
    [PERM_AUDIT_EXPORT] = {"audit:export", A | P, false},
    [PERM_SECRETS_WRITE] = {"secrets:write", A | O, false},
    [PERM_SECRETS_LIST] = {"secrets:list", A | O | D, false},
    [PERM_TENANT_SETTINGS] = {"tenant:settings", A, false},
    [PERM_APPROVALS_DECIDE] = {"approvals:decide", A | O, false},
    [PERM_AGENT] = {"agent", 0, false}, /* decided by agentapi.c from the certificate */
};
/* clang-format on */

bool authz_role_has(enum role role, enum perm_id perm)
{
	if (perm <= PERM_INVALID || perm >= PERM_COUNT || role <= ROLE_NONE ||
	    role > ROLE_PLATFORM_ADMIN)
		return false;
	return (matrix[perm].roles & (1u << role)) != 0;
}

enum authz_reason authz_check(const struct principal *p, enum perm_id perm, bool own)
{
	if (perm == PERM_PUBLIC)
		return AUTHZ_OK;
	if (!authz_role_has(p->role, perm)) {
		/* The platform administrator may not act inside a tenant. */
		return p->role == ROLE_PLATFORM_ADMIN ? AUTHZ_DENY_PLATFORM_BOUNDARY
						      : AUTHZ_DENY_ROLE;
	}
	if (matrix[perm].dev_own_only && p->role == ROLE_DEVELOPER && !own)
		return AUTHZ_DENY_NOT_OWNER;
	return AUTHZ_OK;
}

/*
 * A deny may not take away what recovery needs: any caller's own session
 * (/v1/me, logout) and an Admin's tenant settings, so a tenant can always
 * repair its permission sets — the way a role's own grants cannot lock a
 * tenant out (an Admin cannot demote themselves either).
 */
static bool deny_applies(const struct principal *p, enum perm_id perm)
{
	if (perm == PERM_AUTHENTICATED)
		return false;
	return !(perm == PERM_TENANT_SETTINGS && p->role == ROLE_ADMIN);
}

enum authz_reason authz_decide(const struct principal *p, enum perm_id perm, bool own,
			       const struct permset_rules *rules, const char *method,
			       const char *path, const char **set)
{
	if (perm == PERM_PUBLIC)
		return AUTHZ_OK;
	/* Sets are a tenant's; they never speak for the platform administrator or an
	 * undeclared permission. */
	bool sets_apply = rules && p->role != ROLE_PLATFORM_ADMIN && role_is_tenant_role(p->role) &&
			  perm > PERM_INVALID && perm < PERM_COUNT;
	const char *decided_by = NULL;
	enum permset_effect e =
		sets_apply ? permset_evaluate(rules, method, path, &decided_by) : PERMSET_NONE;
	if (e == PERMSET_DENY && deny_applies(p, perm)) {
		*set = decided_by;
		return AUTHZ_DENY_PERMISSION_SET;
	}
	/* A tenant Admin's allow reaches only the tenant's own API, never the platform's
	 * nor the agents'. */
	if (e == PERMSET_ALLOW && perm != PERM_PLATFORM && perm != PERM_AGENT)
		return AUTHZ_OK;
	return authz_check(p, perm, own);
}

const char *authz_reason_name(enum authz_reason r)
{
	switch (r) {
	case AUTHZ_OK: return "allowed";
	case AUTHZ_DENY_ROLE: return "role";
	case AUTHZ_DENY_PLATFORM_BOUNDARY: return "platform_boundary";
	case AUTHZ_DENY_NOT_OWNER: return "not_owner";
	case AUTHZ_DENY_PERMISSION_SET: return "permission_set";
	}
	return "unknown";
}

const char *authz_perm_name(enum perm_id perm)
{
	if (perm <= PERM_INVALID || perm >= PERM_COUNT)
		return "invalid";
	return matrix[perm].name;
}

static const char *const role_names[] = {
    [ROLE_NONE] = "",
    [ROLE_READONLY] = "readonly",
    [ROLE_DEVELOPER] = "developer",
    [ROLE_OPERATOR] = "operator",
    [ROLE_ADMIN] = "admin",
    [ROLE_PLATFORM_ADMIN] = "platform_admin",
};

enum role role_parse(const char *s)
{
	for (int r = ROLE_READONLY; r <= ROLE_PLATFORM_ADMIN; r++)
		if (strcmp(s, role_names[r]) == 0)
			return (enum role)r;
	return ROLE_NONE;
}

const char *role_name(enum role r)
{
	return r <= ROLE_PLATFORM_ADMIN ? role_names[r] : "";
}

bool role_is_tenant_role(enum role r)
{
	return r >= ROLE_READONLY && r <= ROLE_ADMIN;
}
