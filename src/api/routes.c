/*
 * routes.c — every route of the public API with the permission it needs.
 * A route with no permission (perm 0) makes odysseusd refuse to start.
 * docs/openapi.yaml describes the same list; tests/e2e/test_openapi.py
 * fails when they differ.
 */
#include "api/api.h"

#define B HTTP_ROUTE_BLOCKING
#define ROUTE(m, p, h, perm_, max, fl)                                                          \
	{.method = m, .pattern = p, .handler = h, .perm = perm_, .max_body = max, .flags = fl}
/* A route whose every outcome is audited (state changes, sign-ins, audit reads). */
#define AUDITED(m, p, h, perm_, max, fl, act)                                                   \
	{.method = m, .pattern = p, .handler = h, .perm = perm_, .max_body = max, .flags = fl,   \
	 .action = act}

/* clang-format off: a table reads best as one */
const struct http_route api_routes[] = {
	ROUTE(HTTP_GET, "/healthz", api_healthz, PERM_PUBLIC, 0, 0),
	ROUTE(HTTP_GET, "/readyz", api_readyz, PERM_PUBLIC, 0, 0),
	ROUTE(HTTP_GET, "/metrics", api_metrics, PERM_AUTHENTICATED, 0, HTTP_ROUTE_LOOPBACK_OPEN),
	AUDITED(HTTP_POST, "/v1/auth/login", api_auth_login, PERM_PUBLIC, API_AUTH_MAX_BODY, B, "auth.login"),
	AUDITED(HTTP_POST, "/v1/auth/refresh", api_auth_refresh, PERM_PUBLIC, API_AUTH_MAX_BODY, B, "auth.refresh"),
	AUDITED(HTTP_POST, "/v1/auth/logout", api_auth_logout, PERM_AUTHENTICATED, API_AUTH_MAX_BODY, B, "auth.logout"),
	ROUTE(HTTP_GET, "/v1/auth/jwks", api_auth_jwks, PERM_PUBLIC, 0, 0),
	ROUTE(HTTP_GET, "/v1/me", api_me, PERM_AUTHENTICATED, 0, 0),
	ROUTE(HTTP_GET, "/v1/tenants", api_tenants_list, PERM_PLATFORM, 0, 0),
	AUDITED(HTTP_POST, "/v1/tenants", api_tenants_create, PERM_PLATFORM, 0, B, "tenant.create"),
	ROUTE(HTTP_GET, "/v1/tenants/{id}", api_tenants_get, PERM_PLATFORM, 0, 0),
	AUDITED(HTTP_PATCH, "/v1/tenants/{id}", api_tenants_update, PERM_PLATFORM, 0, B, "tenant.update"),
	AUDITED(HTTP_DELETE, "/v1/tenants/{id}", api_tenants_delete, PERM_PLATFORM, 0, B, "tenant.delete"),
	AUDITED(HTTP_PUT, "/v1/tenants/{id}/quotas", api_tenants_set_quotas, PERM_PLATFORM, 0, B, "tenant.quotas.update"),
	AUDITED(HTTP_POST, "/v1/nodes/enrollment-tokens", api_nodes_token_create, PERM_PLATFORM, 0, B, "node.enrollment_token.create"),
	ROUTE(HTTP_GET, "/v1/nodes", api_nodes_list, PERM_PLATFORM, 0, 0),
	ROUTE(HTTP_GET, "/v1/nodes/{id}", api_nodes_get, PERM_PLATFORM, 0, 0),
	AUDITED(HTTP_DELETE, "/v1/nodes/{id}", api_nodes_delete, PERM_PLATFORM, 0, B, "node.delete"),
	ROUTE(HTTP_GET, "/v1/quotas", api_quotas_get, PERM_TENANT_MEMBER, 0, 0),
	ROUTE(HTTP_GET, "/v1/deployments", api_deployments_list, PERM_DEPLOYMENTS_VIEW, 0, 0),
	AUDITED(HTTP_POST, "/v1/deployments", api_deployments_create, PERM_DEPLOYMENTS_CREATE, 0, B, "deployment.create"),
	ROUTE(HTTP_GET, "/v1/deployments/{name}", api_deployments_get, PERM_DEPLOYMENTS_VIEW, 0, 0),
	{.method = HTTP_PATCH, .pattern = "/v1/deployments/{name}", .handler = api_deployments_update, .perm = PERM_DEPLOYMENTS_UPDATE, .flags = B, .action = "deployment.update", .owner = api_deployment_owner},
	AUDITED(HTTP_DELETE, "/v1/deployments/{name}", api_deployments_delete, PERM_DEPLOYMENTS_DELETE, 0, B, "deployment.delete"),
	AUDITED(HTTP_POST, "/v1/deployments/{name}/scale", api_deployments_scale, PERM_DEPLOYMENTS_OPERATE, 0, B, "deployment.scale"),
	AUDITED(HTTP_POST, "/v1/deployments/{name}/restart", api_deployments_restart, PERM_DEPLOYMENTS_OPERATE, 0, B, "deployment.restart"),
	AUDITED(HTTP_POST, "/v1/deployments/{name}/rollback", api_deployments_rollback, PERM_DEPLOYMENTS_OPERATE, 0, B, "deployment.rollback"),
	ROUTE(HTTP_GET, "/v1/deployments/{name}/revisions", api_deployments_revisions, PERM_DEPLOYMENTS_VIEW, 0, 0),
	ROUTE(HTTP_GET, "/v1/containers", api_containers_list, PERM_CONTAINERS_VIEW, 0, 0),
	ROUTE(HTTP_GET, "/v1/containers/{id}", api_containers_get, PERM_CONTAINERS_VIEW, 0, 0),
	ROUTE(HTTP_GET, "/v1/containers/{id}/logs", api_containers_logs, PERM_CONTAINERS_VIEW, 0, B),
	AUDITED(HTTP_POST, "/v1/containers/{id}/restart", api_containers_restart, PERM_CONTAINERS_OPERATE, 0, B, "container.restart"),
	ROUTE(HTTP_GET, "/v1/secrets", api_secrets_list, PERM_SECRETS_LIST, 0, 0),
	ROUTE(HTTP_GET, "/v1/secrets/{name}", api_secrets_get, PERM_SECRETS_LIST, 0, B),
	AUDITED(HTTP_PUT, "/v1/secrets/{name}", api_secrets_put, PERM_SECRETS_WRITE, 512 * 1024, B, "secret.write"),
	AUDITED(HTTP_DELETE, "/v1/secrets/{name}", api_secrets_delete, PERM_SECRETS_WRITE, 0, B, "secret.delete"),
	AUDITED(HTTP_POST, "/v1/secrets/{name}/rotate", api_secrets_rotate, PERM_SECRETS_WRITE, 512 * 1024, B, "secret.rotate"),
	AUDITED(HTTP_POST, "/v1/secrets/{name}/grants", api_secrets_grants, PERM_SECRETS_WRITE, 0, B, "secret.grant"),
	AUDITED(HTTP_POST, "/v1/containers/{id}/stop", api_containers_stop, PERM_CONTAINERS_OPERATE, 0, B, "container.stop"),
	AUDITED(HTTP_POST, "/v1/scans", api_scans_create, PERM_SCANNER_SCAN, 0, B, "scan.create"),
	AUDITED(HTTP_POST, "/v1/scans/import", api_scans_import, PERM_SCANNER_SCAN, API_SCAN_IMPORT_MAX_BODY, B, "scan.import"),
	ROUTE(HTTP_GET, "/v1/scans", api_scans_list, PERM_SCANNER_VIEW, 0, B),
	ROUTE(HTTP_GET, "/v1/scans/{id}", api_scans_get, PERM_SCANNER_VIEW, 0, B),
	ROUTE(HTTP_GET, "/v1/scan-policies", api_scan_policies_list, PERM_SCANNER_POLICIES, 0, 0),
	AUDITED(HTTP_POST, "/v1/scan-policies", api_scan_policies_create, PERM_SCANNER_POLICIES, 0, B, "scan.policy.create"),
	ROUTE(HTTP_GET, "/v1/scan-policies/{name}", api_scan_policies_get, PERM_SCANNER_POLICIES, 0, 0),
	AUDITED(HTTP_PUT, "/v1/scan-policies/{name}", api_scan_policies_put, PERM_SCANNER_POLICIES, 0, B, "scan.policy.update"),
	AUDITED(HTTP_DELETE, "/v1/scan-policies/{name}", api_scan_policies_delete, PERM_SCANNER_POLICIES, 0, B, "scan.policy.delete"),
	ROUTE(HTTP_GET, "/v1/scan-settings", api_scan_settings_get, PERM_SCANNER_VIEW, 0, 0),
	AUDITED(HTTP_PUT, "/v1/scan-settings", api_scan_settings_put, PERM_SCANNER_POLICIES, 0, B, "scan.settings.update"),
	ROUTE(HTTP_GET, "/v1/users", api_users_list, PERM_TENANT_SETTINGS, 0, 0),
	AUDITED(HTTP_POST, "/v1/users", api_users_create, PERM_TENANT_SETTINGS, 0, B, "user.create"),
	ROUTE(HTTP_GET, "/v1/users/{id}", api_users_get, PERM_TENANT_SETTINGS, 0, 0),
	AUDITED(HTTP_PATCH, "/v1/users/{id}", api_users_update, PERM_TENANT_SETTINGS, 0, B, "user.update"),
	AUDITED(HTTP_DELETE, "/v1/users/{id}", api_users_delete, PERM_TENANT_SETTINGS, 0, B, "user.delete"),
	ROUTE(HTTP_GET, "/v1/api-keys", api_apikeys_list, PERM_TENANT_SETTINGS, 0, 0),
	AUDITED(HTTP_POST, "/v1/api-keys", api_apikeys_create, PERM_TENANT_SETTINGS, 0, B, "api_key.create"),
	AUDITED(HTTP_DELETE, "/v1/api-keys/{id}", api_apikeys_delete, PERM_TENANT_SETTINGS, 0, B, "api_key.delete"),
	ROUTE(HTTP_GET, "/v1/permission-sets", api_permsets_list, PERM_TENANT_SETTINGS, 0, 0),
	AUDITED(HTTP_POST, "/v1/permission-sets", api_permsets_create, PERM_TENANT_SETTINGS, 0, B, "permission_set.create"),
	ROUTE(HTTP_GET, "/v1/permission-sets/{name}", api_permsets_get, PERM_TENANT_SETTINGS, 0, 0),
	AUDITED(HTTP_PUT, "/v1/permission-sets/{name}", api_permsets_put, PERM_TENANT_SETTINGS, 0, B, "permission_set.update"),
	AUDITED(HTTP_GET, "/v1/audit", api_audit_list, PERM_AUDIT_READ, 0, B, "audit.read"),
	AUDITED(HTTP_GET, "/v1/audit/export", api_audit_export, PERM_AUDIT_EXPORT, 0, B, "audit.export"),
	AUDITED(HTTP_GET, "/v1/audit/checkpoints", api_audit_checkpoints, PERM_AUDIT_READ, 0, B,
		"audit.checkpoints.read"),
	AUDITED(HTTP_GET, "/v1/audit/proof", api_audit_proof, PERM_AUDIT_READ, 0, B,
		"audit.proof.read"),
	AUDITED(HTTP_DELETE, "/v1/permission-sets/{name}", api_permsets_delete, PERM_TENANT_SETTINGS, 0, B, "permission_set.delete"),
};
/* clang-format on */

const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
