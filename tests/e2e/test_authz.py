"""Authorization: every route x every caller against SPEC §3, written here
independently of src/authz/authz.c and src/api/routes.c.

- test_route_table_has_an_expectation_for_every_route: the routes of
  `odysseusd routes` and the keys of EXPECTED must be the same set, so a new
  route fails this file until someone states who may call it.
- test_route_matrix[METHOD PATH]: one real request per caller (the four
  roles, the same four as API keys, the platform administrator, no
  credential). Allowed: the route's success status (never 401/403).
  Denied: exactly 403 `forbidden`, and a "denied" line in the server log with
  the reason (`role`, or `platform_boundary` for the platform administrator).
- test_matrix_as_seen_by_me: the SPEC §3 table, row by row, against the
  `permissions` GET /v1/me reports for each role.
- test_cross_tenant_ids_answer_like_missing_ones: every route with a path
  parameter, given another tenant's id, answers exactly like a missing id.
- test_audit_records_stay_in_their_tenant: the audit routes take no id, but
  their data is per tenant: tenant A's readers never get tenant B's records,
  whatever they filter on (tests/e2e/test_audit_api.py goes further).

Ownership ("Developer may update only deployments it created") has no route
yet: deployments come with a later issue. test_ownership_is_only_deployments_update
pins the matrix's own-only flag and fails as soon as a deployments route
appears, so that the owned/not-owned cells get written then.
"""
import itertools
import json
import os
import re
import subprocess

import pytest

from conftest import ODYSSEUSD, ROOT, unique, check_error

TENANT_ADMIN_PASSWORD = "tenant-admin-password-1"  # conftest Server.create_tenant default
USER_PASSWORD = "user-password-123"
ERROR_KEYS = {"code", "message", "request_id"}
ROLES = ("admin", "operator", "developer", "readonly")


# --- who may call what: SPEC §3 (matrix) and §10 (route table) ---------------------

PLATFORM = "platform_admin"
ANONYMOUS = "anonymous"
CALLERS = (PLATFORM,) + ROLES + tuple("key:" + r for r in ROLES) + (ANONYMOUS,)


def roles(*names):
    """Users with one of these roles, and API keys with one of them."""
    return frozenset(names) | frozenset("key:" + n for n in names)


ANYONE = frozenset(CALLERS)
AUTHENTICATED = ANYONE - {ANONYMOUS}
TENANT_MEMBERS = roles(*ROLES)
TENANT_ADMIN = roles("admin")  # "tenant settings (users, roles, permission sets, API keys)"
# "audit log: read" (D: own actions only); the platform admin reads the platform's own
# records (tenant null) — our addition, docs/authorization.md.
AUDIT_READERS = roles("admin", "operator", "developer") | {PLATFORM}
AUDIT_EXPORTERS = roles("admin") | {PLATFORM}
PLATFORM_ONLY = frozenset({PLATFORM})

# An import of a Trivy report without findings: a scan that completes at once.
EMPTY_IMPORT = {"image": "busybox:1", "trivy": {"SchemaVersion": 2, "ArtifactName": "busybox:1",
                                                "Results": []}}

EXPECTED = {
    ("GET", "/healthz"): ANYONE,
    ("GET", "/readyz"): ANYONE,
    # Loopback callers need no token; any valid credential works too.
    ("GET", "/metrics"): ANYONE,
    ("POST", "/v1/auth/login"): ANYONE,
    ("POST", "/v1/auth/refresh"): ANYONE,
    ("POST", "/v1/auth/logout"): AUTHENTICATED,
    ("GET", "/v1/auth/jwks"): ANYONE,
    ("GET", "/v1/me"): AUTHENTICATED,
    ("GET", "/v1/tenants"): PLATFORM_ONLY,
    ("POST", "/v1/tenants"): PLATFORM_ONLY,
    ("GET", "/v1/tenants/{id}"): PLATFORM_ONLY,
    ("PATCH", "/v1/tenants/{id}"): PLATFORM_ONLY,
    ("DELETE", "/v1/tenants/{id}"): PLATFORM_ONLY,
    ("PUT", "/v1/tenants/{id}/quotas"): PLATFORM_ONLY,
    ("POST", "/v1/nodes/enrollment-tokens"): PLATFORM_ONLY,
    ("GET", "/v1/nodes"): PLATFORM_ONLY,
    ("GET", "/v1/nodes/{id}"): PLATFORM_ONLY,
    ("DELETE", "/v1/nodes/{id}"): PLATFORM_ONLY,
    ("GET", "/v1/quotas"): TENANT_MEMBERS,
    # SPEC §3 deployments and containers rows
    ("GET", "/v1/deployments"): roles("admin", "operator", "developer", "readonly"),
    ("POST", "/v1/deployments"): roles("admin", "operator", "developer"),
    ("GET", "/v1/deployments/{name}"): roles("admin", "operator", "developer", "readonly"),
    ("PATCH", "/v1/deployments/{name}"): roles("admin", "operator", "developer"),  # D: own
    ("DELETE", "/v1/deployments/{name}"): roles("admin"),
    ("POST", "/v1/deployments/{name}/scale"): roles("admin", "operator"),
    ("POST", "/v1/deployments/{name}/restart"): roles("admin", "operator"),
    ("POST", "/v1/deployments/{name}/rollback"): roles("admin", "operator"),
    ("GET", "/v1/deployments/{name}/revisions"): roles("admin", "operator", "developer", "readonly"),
    ("GET", "/v1/containers"): roles("admin", "operator", "developer", "readonly"),
    ("GET", "/v1/containers/{id}"): roles("admin", "operator", "developer", "readonly"),
    ("GET", "/v1/containers/{id}/logs"): roles("admin", "operator", "developer", "readonly"),
    ("POST", "/v1/containers/{id}/restart"): roles("admin", "operator"),
    ("POST", "/v1/containers/{id}/stop"): roles("admin", "operator"),
    # SPEC §3 scanner rows: scan, view results A O D (R view only); manage policies A O
    ("POST", "/v1/scans"): roles("admin", "operator", "developer"),
    ("POST", "/v1/scans/import"): roles("admin", "operator", "developer"),
    ("GET", "/v1/scans"): TENANT_MEMBERS,
    ("GET", "/v1/scans/{id}"): TENANT_MEMBERS,
    ("GET", "/v1/scan-settings"): TENANT_MEMBERS,
    ("PUT", "/v1/scan-settings"): roles("admin", "operator"),
    ("GET", "/v1/scan-policies"): roles("admin", "operator"),
    ("POST", "/v1/scan-policies"): roles("admin", "operator"),
    ("GET", "/v1/scan-policies/{name}"): roles("admin", "operator"),
    ("PUT", "/v1/scan-policies/{name}"): roles("admin", "operator"),
    ("DELETE", "/v1/scan-policies/{name}"): roles("admin", "operator"),
    # SPEC §3 secrets rows: write/rotate/revoke/grant A O; list names and metadata A O D
    ("GET", "/v1/secrets"): roles("admin", "operator", "developer"),
    ("GET", "/v1/secrets/{name}"): roles("admin", "operator", "developer"),
    ("PUT", "/v1/secrets/{name}"): roles("admin", "operator"),
    ("DELETE", "/v1/secrets/{name}"): roles("admin", "operator"),
    ("POST", "/v1/secrets/{name}/rotate"): roles("admin", "operator"),
    ("POST", "/v1/secrets/{name}/grants"): roles("admin", "operator"),
    ("GET", "/v1/users"): TENANT_ADMIN,
    ("POST", "/v1/users"): TENANT_ADMIN,
    ("GET", "/v1/users/{id}"): TENANT_ADMIN,
    ("PATCH", "/v1/users/{id}"): TENANT_ADMIN,
    ("DELETE", "/v1/users/{id}"): TENANT_ADMIN,
    ("GET", "/v1/api-keys"): TENANT_ADMIN,
    ("POST", "/v1/api-keys"): TENANT_ADMIN,
    ("DELETE", "/v1/api-keys/{id}"): TENANT_ADMIN,
    ("GET", "/v1/permission-sets"): TENANT_ADMIN,
    ("POST", "/v1/permission-sets"): TENANT_ADMIN,
    ("GET", "/v1/permission-sets/{name}"): TENANT_ADMIN,
    ("PUT", "/v1/permission-sets/{name}"): TENANT_ADMIN,
    ("DELETE", "/v1/permission-sets/{name}"): TENANT_ADMIN,
    ("GET", "/v1/audit"): AUDIT_READERS,
    ("GET", "/v1/audit/export"): AUDIT_EXPORTERS,
    ("GET", "/v1/audit/checkpoints"): AUDIT_READERS,
    ("GET", "/v1/audit/proof"): AUDIT_READERS,
}

# SPEC §3, one entry per permission the daemon names (GET /v1/me `permissions`),
# with the roles that hold it: A O D R as in the SPEC table. The names are the
# daemon's; which roles hold each is copied from SPEC §3, not from authz.c.
A, O, D, R = "admin", "operator", "developer", "readonly"
SPEC_MATRIX = {
    "platform:manage": {PLATFORM},           # §3: tenants, quotas, nodes
    "tenant:view": {A, O, D, R},             # §10: GET /v1/quotas, tenant members
    "deployments:view": {A, O, D, R},
    "deployments:create": {A, O, D},
    "deployments:update": {A, O, D},         # D: own only
    "deployments:operate": {A, O},           # scale, restart, rollback
    "deployments:delete": {A},
    "containers:view": {A, O, D, R},         # view, logs
    "containers:operate": {A, O},            # restart, stop
    "containers:exec": {A},
    "incidents:view": {A, O, D, R},
    "incidents:acknowledge": {A, O, D},
    "incidents:resolve": {A, O},             # resolve, remediate
    "scanner:scan": {A, O, D},
    "scanner:view": {A, O, D, R},            # R: view only
    "scanner:policies": {A, O},
    "audit:read": {A, O, D, PLATFORM},       # D: own actions only; PLATFORM: ours, see above
    "audit:export": {A, PLATFORM},
    "secrets:write": {A, O},                 # write, rotate, revoke, grant
    "secrets:list": {A, O, D},               # names and metadata
    "tenant:settings": {A},                  # users, roles, permission sets, API keys
    "approvals:decide": {A, O},
}
OWN_ONLY = {"deployments:update"}            # "own" = created_by is the caller (Developer)


# --- helpers ----------------------------------------------------------------------

def without_request_id(r):
    body = r.json()
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body["error"].pop("request_id", None)
    return body


def daemon_routes():
    out = subprocess.run([ODYSSEUSD, "routes"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    routes = []
    for line in out.stdout.splitlines():
        if line.strip():
            method, path = line.split()
            routes.append((method, path))
    assert len(routes) == len(set(routes)), "a route is listed twice"
    return routes


def log_lines(server):
    lines = []
    for line in server.logs().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass
    return lines


_rid = itertools.count()


def request_id(tag):
    return "authz-%d-%d-%s" % (os.getpid(), next(_rid), tag)


# --- the world the cells run in -----------------------------------------------------

class World:
    """Tenant A with a user and an API key per role, a few target objects, and
    tenant B (another tenant) with objects of every kind."""

    def __init__(self, server):
        self.server = server
        self.url = server.url
        self.platform_token = server.admin_token()
        self.a_email = unique("authz-a") + "@tenant.test"
        self.tenant_a = server.create_tenant(unique("authz-a"), self.a_email)
        self.a_admin_token = server.login(self.a_email, TENANT_ADMIN_PASSWORD)["access_token"]
        self.admin = self.session(self.a_admin_token)
        self.ids = {PLATFORM: None, ANONYMOUS: None}
        self.tokens = {PLATFORM: self.platform_token, ANONYMOUS: None,
                       "admin": self.a_admin_token}
        self.ids["admin"] = self.me(self.a_admin_token)["id"]
        for role in ROLES[1:]:
            user = self.make_user(role)
            self.tokens[role] = self.server.login(user["email"], USER_PASSWORD)["access_token"]
            self.ids[role] = user["id"]
        for role in ROLES:
            key = self.make_key(role)
            self.tokens["key:" + role] = key["key"]
            self.ids["key:" + role] = key["id"]
        self.ids[PLATFORM] = self.me(self.platform_token)["id"]
        # Targets in tenant A that the cells read and change harmlessly.
        self.target_user = self.make_user("readonly")
        self.login_user = self.make_user("readonly")
        self.target_set = self.make_set()
        self.target_deployment = self.make_deployment()
        self.target_secret = self.make_secret()
        self.target_scan = self.make_scan()
        self.target_policy = self.make_policy()
        # Tenant B, the other tenant.
        self.b_email = unique("authz-b") + "@tenant.test"
        self.tenant_b = server.create_tenant(unique("authz-b"), self.b_email)
        self.b_admin = self.session(server.login(self.b_email, TENANT_ADMIN_PASSWORD)["access_token"])

    def session(self, token):
        return self.server.session(token)

    def me(self, token):
        r = self.session(token).get(self.url + "/v1/me")
        assert r.status_code == 200, r.text
        return r.json()

    def make_user(self, role, s=None):
        s = s or self.admin
        r = s.post(self.url + "/v1/users", json={
            "email": unique("authz-" + role) + "@tenant.test", "password": USER_PASSWORD,
            "role": role})
        assert r.status_code == 201, r.text
        return r.json()

    def make_key(self, role, s=None):
        s = s or self.admin
        r = s.post(self.url + "/v1/api-keys", json={"name": unique("authz-key"), "role": role})
        assert r.status_code == 201, r.text
        return r.json()

    def make_set(self, s=None, rules=()):
        s = s or self.admin
        r = s.post(self.url + "/v1/permission-sets",
                   json={"name": unique("authz-set"), "rules": list(rules)})
        assert r.status_code == 201, r.text
        return r.json()

    def make_deployment(self, s=None, revisions=1):
        """A deployment of tenant A with no replicas (nothing to place), made by s."""
        s = s or self.admin
        r = s.post(self.url + "/v1/deployments", json={
            "name": unique("authz-d"), "image": "odysseus-test/busybox:1", "replicas": 0})
        assert r.status_code == 201, r.text
        for i in range(1, revisions):
            r2 = s.patch(self.url + "/v1/deployments/" + r.json()["name"],
                         json={"env": {"REV": str(i + 1)}})
            assert r2.status_code == 200, r2.text
        return r.json()

    def make_secret(self, s=None):
        s = s or self.admin
        name = unique("authz-s")
        r = s.put(self.url + "/v1/secrets/" + name, json={"value": "secret-value"})
        assert r.status_code == 201, r.text
        return name

    def make_scan(self, s=None):
        """A completed scan of tenant A (an imported Trivy report with no findings)."""
        r = (s or self.admin).post(self.url + "/v1/scans/import", json=EMPTY_IMPORT)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def make_policy(self, s=None):
        name = unique("authz-p")
        r = (s or self.admin).put(self.url + "/v1/scan-policies/" + name,
                                  json={"block_critical": True, "images": ["authz.example/*"]})
        assert r.status_code == 201, r.text
        return name

    def make_tenant(self):
        return self.server.create_tenant(unique("authz-x"), unique("authz-x") + "@tenant.test")

    def refresh_token(self):
        r = self.session(None).post(self.url + "/v1/auth/login", json={
            "email": self.login_user["email"], "password": USER_PASSWORD})
        assert r.status_code == 200, r.text
        return r.json()["refresh_token"]

    def own_tenant(self, caller):
        """The tenant a caller's path names: tenant B for the platform
        administrator (any real tenant), the caller's own for everyone else."""
        return self.tenant_b["id"] if caller == PLATFORM else self.tenant_a["id"]

    def cell(self, method, template, caller):
        """(path, json body or None, success status) of a valid request by caller.
        Objects a request destroys are made fresh for the cell."""
        quotas = {"cpu_cores": 4, "memory_mb": 8192, "containers": 20, "storage_mb": 10240}
        key = (method, template)
        if key == ("GET", "/healthz") or key == ("GET", "/readyz"):
            return template, None, 200
        if key == ("GET", "/metrics"):
            return template, None, 200
        if key == ("POST", "/v1/auth/login"):
            return template, {"email": self.login_user["email"], "password": USER_PASSWORD}, 200
        if key == ("POST", "/v1/auth/refresh"):
            return template, {"refresh_token": self.refresh_token()}, 200
        if key == ("POST", "/v1/auth/logout"):
            # RFC 7009: a token that is not the caller's is not an error (and is left alone).
            return template, {"refresh_token": "odr_" + "0" * 64}, 204
        if key in (("GET", "/v1/auth/jwks"), ("GET", "/v1/me"), ("GET", "/v1/tenants"),
                   ("GET", "/v1/quotas"), ("GET", "/v1/users"), ("GET", "/v1/api-keys"),
                   ("GET", "/v1/permission-sets")):
            return template, None, 200
        if key == ("POST", "/v1/nodes/enrollment-tokens"):
            return template, {"ttl_seconds": 60}, 201
        if key == ("GET", "/v1/nodes"):
            return template, None, 200
        if key in (("GET", "/v1/nodes/{id}"), ("DELETE", "/v1/nodes/{id}")):
            # No node is enrolled here: past authorization the answer is 404 (test_nodes.py
            # covers real nodes).
            return "/v1/nodes/nod_" + "0" * 32, None, 404
        if key in (("GET", "/v1/deployments"), ("GET", "/v1/containers")):
            return template, None, 200
        if key == ("POST", "/v1/deployments"):
            return template, {"name": unique("authz-d"), "image": "odysseus-test/busybox:1",
                              "replicas": 0}, 201
        if key in (("GET", "/v1/deployments/{name}"), ("GET", "/v1/deployments/{name}/revisions")):
            return template.replace("{name}", self.target_deployment["name"]), None, 200
        if key == ("PATCH", "/v1/deployments/{name}"):
            # A Developer may update its own deployments only: the cell uses one it made.
            own = caller in ("developer", "key:developer")
            d = self.make_deployment(s=self.session(self.tokens[caller])) if own \
                else self.target_deployment
            return "/v1/deployments/" + d["name"], {"env": {"CELL": caller}}, 200
        if key in (("DELETE", "/v1/deployments/{name}"), ("POST", "/v1/deployments/{name}/scale"),
                   ("POST", "/v1/deployments/{name}/restart"),
                   ("POST", "/v1/deployments/{name}/rollback")):
            d = self.make_deployment(revisions=2)
            body, ok = {"DELETE": (None, 204)}.get(method, (None, 200))
            if template.endswith("/scale"):
                body = {"replicas": 0}
            if template.endswith("/restart"):
                ok = 202
            return template.replace("{name}", d["name"]), body, ok
        if key == ("GET", "/v1/secrets"):
            return template, None, 200
        if key == ("GET", "/v1/secrets/{name}"):
            return "/v1/secrets/" + self.target_secret, None, 200
        if key == ("PUT", "/v1/secrets/{name}"):
            return "/v1/secrets/" + unique("authz-s"), {"value": "v"}, 201
        if key in (("DELETE", "/v1/secrets/{name}"), ("POST", "/v1/secrets/{name}/rotate"),
                   ("POST", "/v1/secrets/{name}/grants")):
            name = self.make_secret()
            body = {"DELETE": None}.get(method, {"value": "new"})
            if template.endswith("/grants"):
                body = {"deployments": ["web"]}
            return template.replace("{name}", name), body, 204 if method == "DELETE" else 200
        if key == ("POST", "/v1/scans"):
            return template, {"image": "busybox:1"}, 503  # no engine installed here
        if key == ("POST", "/v1/scans/import"):
            return template, EMPTY_IMPORT, 201
        if key in (("GET", "/v1/scans"), ("GET", "/v1/scan-policies"),
                   ("GET", "/v1/scan-settings")):
            return template, None, 200
        if key == ("GET", "/v1/scans/{id}"):
            return "/v1/scans/" + self.target_scan, None, 200
        if key == ("PUT", "/v1/scan-settings"):
            return template, {"rescan_interval_seconds": 86400}, 200
        if key == ("POST", "/v1/scan-policies"):
            return template, {"name": unique("authz-p"), "images": ["authz.example/*"]}, 201
        if key == ("GET", "/v1/scan-policies/{name}"):
            return "/v1/scan-policies/" + self.target_policy, None, 200
        if key == ("PUT", "/v1/scan-policies/{name}"):
            return "/v1/scan-policies/" + unique("authz-p"), {"images": ["authz.example/*"]}, 201
        if key == ("DELETE", "/v1/scan-policies/{name}"):
            return "/v1/scan-policies/" + self.make_policy(), None, 204
        if key in (("GET", "/v1/containers/{id}"), ("GET", "/v1/containers/{id}/logs"),
                   ("POST", "/v1/containers/{id}/restart"),
                   ("POST", "/v1/containers/{id}/stop")):
            # No container without a node: past authorization the answer is 404.
            return template.replace("{id}", "ctr_" + "0" * 32), None, 404
        if key == ("POST", "/v1/tenants"):
            return template, {"name": unique("authz-new"), "admin": {
                "email": unique("authz-new") + "@tenant.test",
                "password": TENANT_ADMIN_PASSWORD}}, 201
        if key == ("GET", "/v1/tenants/{id}"):
            return "/v1/tenants/" + self.own_tenant(caller), None, 200
        if key == ("PATCH", "/v1/tenants/{id}"):
            return "/v1/tenants/" + self.own_tenant(caller), {"name": unique("authz-renamed")}, 200
        if key == ("DELETE", "/v1/tenants/{id}"):
            tid = self.make_tenant()["id"] if caller == PLATFORM else self.tenant_a["id"]
            return "/v1/tenants/" + tid, None, 204
        if key == ("PUT", "/v1/tenants/{id}/quotas"):
            return "/v1/tenants/%s/quotas" % self.own_tenant(caller), quotas, 200
        if key == ("POST", "/v1/users"):
            return template, {"email": unique("authz-new") + "@tenant.test",
                              "password": USER_PASSWORD, "role": "readonly"}, 201
        if key == ("GET", "/v1/users/{id}"):
            return "/v1/users/" + self.target_user["id"], None, 200
        if key == ("PATCH", "/v1/users/{id}"):
            return "/v1/users/" + self.target_user["id"], {"role": "readonly"}, 200
        if key == ("DELETE", "/v1/users/{id}"):
            return "/v1/users/" + self.make_user("readonly")["id"], None, 204
        if key == ("POST", "/v1/api-keys"):
            return template, {"name": unique("authz-new"), "role": "readonly"}, 201
        if key == ("DELETE", "/v1/api-keys/{id}"):
            return "/v1/api-keys/" + self.make_key("readonly")["id"], None, 204
        if key == ("POST", "/v1/permission-sets"):
            return template, {"name": unique("authz-new"),
                              "rules": [{"effect": "allow", "method": "GET", "path": "/v1/quotas"}]}, 201
        if key == ("GET", "/v1/permission-sets/{name}"):
            return "/v1/permission-sets/" + self.target_set["name"], None, 200
        if key == ("PUT", "/v1/permission-sets/{name}"):
            return "/v1/permission-sets/" + self.target_set["name"], {"rules": []}, 200
        if key == ("DELETE", "/v1/permission-sets/{name}"):
            return "/v1/permission-sets/" + self.make_set()["name"], None, 204
        if key in (("GET", "/v1/audit"), ("GET", "/v1/audit/checkpoints"),
                   ("GET", "/v1/audit/export")):
            return template, None, 200
        if key == ("GET", "/v1/audit/proof"):
            return template + "?seq=1", None, 200
        raise AssertionError("no request for %s %s: add one to World.cell" % key)


@pytest.fixture(scope="module")
def world(server):
    return World(server)


# --- the route table ------------------------------------------------------------------

ROUTES = daemon_routes()


def test_route_table_has_an_expectation_for_every_route():
    routes = set(ROUTES)
    expected = set(EXPECTED)
    assert routes == expected, (
        "routes without an expectation here: %s\nexpectations without a route: %s"
        % (sorted(routes - expected), sorted(expected - routes)))


def _order(route):
    # Destructive platform cells last: a wrongly allowed DELETE of a caller's
    # own tenant would break the cells after it.
    return (route == ("DELETE", "/v1/tenants/{id}"), ROUTES.index(route))


@pytest.mark.parametrize("route", sorted(ROUTES, key=_order), ids=lambda r: "%s %s" % r)
def test_route_matrix(world, server, route):
    method, template = route
    assert route in EXPECTED, "%s %s has no expectation in EXPECTED" % route
    allowed = EXPECTED[route]
    problems, denials = [], []
    for caller in CALLERS:
        path, body, ok_status = world.cell(method, template, caller)
        rid = request_id(caller.replace(":", "-"))
        headers = {"X-Request-Id": rid}
        if body is not None:
            headers["Content-Type"] = "application/json"
        r = world.session(world.tokens[caller]).request(
            method, world.url + path, data=None if body is None else json.dumps(body),
            headers=headers)
        cell = "%s %s as %s: %d %s" % (method, path, caller, r.status_code, r.text[:200])
        if caller in allowed:
            if r.status_code != ok_status:
                problems.append("allowed, expected %d: %s" % (ok_status, cell))
        elif caller == ANONYMOUS:
            if r.status_code != 401 or r.json()["error"]["code"] != "unauthorized":
                problems.append("no credential, expected 401: " + cell)
        else:
            try:
                check_error(r, 403, "forbidden")
            except AssertionError as e:
                problems.append("denied, expected 403 forbidden: %s (%s)" % (cell, e))
                continue
            reason = "platform_boundary" if caller == PLATFORM else "role"
            denials.append((rid, caller, reason))
    assert not problems, "\n".join(problems)
    # Every denial is in the server log with its reason, actor and route.
    by_rid = {}
    for line in log_lines(server):
        if line.get("msg") == "denied" and line.get("request_id"):
            by_rid.setdefault(line["request_id"], []).append(line)
    for rid, caller, reason in denials:
        lines = by_rid.get(rid)
        assert lines and len(lines) == 1, "no single 'denied' log line for %s (%s)" % (rid, caller)
        line = lines[0]
        assert line["reason"] == reason, (caller, line)
        assert line["actor"] == world.ids[caller], (caller, line)
        assert line["route"] == template and line["method"] == method, line
        want_tenant = "" if caller == PLATFORM else world.tenant_a["id"]
        assert line["tenant"] == want_tenant, line


def test_tenant_a_survived_the_matrix(world):
    # The tenant routes were called on tenant A by its own members, all refused.
    r = world.session(world.platform_token).get(world.url + "/v1/tenants/" + world.tenant_a["id"])
    assert r.status_code == 200, r.text
    for role in ROLES:
        assert world.me(world.tokens[role])["tenant_id"] == world.tenant_a["id"]


def test_matrix_as_seen_by_me(world):
    """GET /v1/me lists what the caller's role may do: it must be SPEC §3's row set."""
    spec_names = set(SPEC_MATRIX)
    seen_names = set()
    for caller in (PLATFORM,) + ROLES + tuple("key:" + r for r in ROLES):
        role = caller.split(":")[-1]
        me = world.me(world.tokens[caller])
        assert me["role"] == role, me
        assert len(me["permissions"]) == len(set(me["permissions"])), me
        got = set(me["permissions"])
        want = {perm for perm, holders in SPEC_MATRIX.items() if role in holders}
        assert got == want, "%s: extra %s, missing %s" % (caller, sorted(got - want),
                                                         sorted(want - got))
        seen_names |= got
    # Every permission the daemon knows is a SPEC §3 line (or the two the routes add).
    assert seen_names == spec_names, sorted(seen_names ^ spec_names)


def test_developer_updates_only_its_own_deployments(world, server):
    """SPEC §3 "own only": a Developer (user or key) may PATCH a deployment it
    created, not another's (403 not_owner, logged); Operators and Admins may."""
    others = world.target_deployment["name"]
    for caller in ("developer", "key:developer"):
        s = world.session(world.tokens[caller])
        rid = request_id("own-" + caller.replace(":", "-"))
        r = s.patch(world.url + "/v1/deployments/" + others, json={"env": {"X": "1"}},
                    headers={"X-Request-Id": rid})
        check_error(r, 403, "forbidden")
        lines = [l for l in log_lines(server) if l.get("request_id") == rid and l.get("msg") == "denied"]
        assert lines and lines[0]["reason"] == "not_owner", lines
        mine = world.make_deployment(s=s)
        assert mine["created_by"] == world.ids[caller]
        assert s.patch(world.url + "/v1/deployments/" + mine["name"],
                       json={"env": {"X": "2"}}).status_code == 200
    # a missing one is refused alike: whether a name exists is not the Developer's to learn
    r = world.session(world.tokens["developer"]).patch(
        world.url + "/v1/deployments/no-such-deployment", json={"env": {}})
    check_error(r, 403, "forbidden")


def test_ownership_is_only_deployments_update():
    """The own-only flag of the matrix in src/authz/authz.c is set for
    deployments:update alone (SPEC §3 "own only"). No route checks ownership
    yet because no deployments route exists; when one appears this test fails
    and the Developer owned/not-owned cells must be added to the matrix test."""
    with open(os.path.join(ROOT, "src", "authz", "authz.c")) as f:
        text = f.read()
    rows = re.findall(r'\[PERM_\w+\]\s*=\s*\{"([^"]+)",\s*([^,]+),\s*(true|false)\}', text)
    assert len(rows) >= len(SPEC_MATRIX), rows
    own = {name for name, _, flag in rows if flag == "true"}
    assert own == OWN_ONLY, own
    # The role columns of the source table agree with SPEC §3 too.
    letters = {"A": A, "O": O, "D": D, "R": R, "P": PLATFORM}
    for name, mask, _ in rows:
        if name in ("public", "self"):
            continue
        if name == "agent":  # the agent API's: a node certificate, no role (docs/nodes.md)
            assert mask.strip() == "0", mask
            continue
        holders = {letters[x.strip()] for x in mask.split("|")}
        assert holders == SPEC_MATRIX[name], (name, holders)
    # The only route with an owner check, and its not-owned cell:
    # test_developer_updates_only_its_own_deployments.


# --- cross-tenant ids ---------------------------------------------------------------

def _cross_tenant_cases(world):
    """For each route with a path parameter: (path with B's id, path with a
    missing id, body). B's objects are real, made by B's Admin."""
    b_user = world.make_user("readonly", s=world.b_admin)
    b_key = world.make_key("readonly", s=world.b_admin)
    b_set = world.make_set(s=world.b_admin,
                           rules=[{"effect": "allow", "method": "GET", "path": "/v1/users"}])
    b_dep = world.make_deployment(s=world.b_admin, revisions=2)["name"]
    b_secret, missing_secret = world.make_secret(s=world.b_admin), unique("authz-missing-s")
    b_scan, missing_scan = world.make_scan(s=world.b_admin), "scn_" + "0" * 32
    b_policy, missing_policy = world.make_policy(s=world.b_admin), unique("authz-missing-p")
    missing_dep = unique("authz-missing-d")
    missing_user, missing_key = "usr_" + "0" * 32, "key_" + "0" * 32
    missing_tenant, missing_set = "ten_" + "0" * 32, unique("authz-missing")
    quotas = {"cpu_cores": 1, "memory_mb": 512, "containers": 1, "storage_mb": 1}
    cases = {
        ("GET", "/v1/tenants/{id}"): ("/v1/tenants/%s", world.tenant_b["id"], missing_tenant, None),
        ("PATCH", "/v1/tenants/{id}"): ("/v1/tenants/%s", world.tenant_b["id"], missing_tenant,
                                        {"name": unique("authz-x")}),
        ("DELETE", "/v1/tenants/{id}"): ("/v1/tenants/%s", world.tenant_b["id"], missing_tenant, None),
        ("PUT", "/v1/tenants/{id}/quotas"): ("/v1/tenants/%s/quotas", world.tenant_b["id"],
                                             missing_tenant, quotas),
        ("GET", "/v1/users/{id}"): ("/v1/users/%s", b_user["id"], missing_user, None),
        ("PATCH", "/v1/users/{id}"): ("/v1/users/%s", b_user["id"], missing_user, {"role": "admin"}),
        ("DELETE", "/v1/users/{id}"): ("/v1/users/%s", b_user["id"], missing_user, None),
        ("DELETE", "/v1/api-keys/{id}"): ("/v1/api-keys/%s", b_key["id"], missing_key, None),
        ("GET", "/v1/permission-sets/{name}"): ("/v1/permission-sets/%s", b_set["name"], missing_set, None),
        ("PUT", "/v1/permission-sets/{name}"): ("/v1/permission-sets/%s", b_set["name"], missing_set,
                                                {"rules": []}),
        ("DELETE", "/v1/permission-sets/{name}"): ("/v1/permission-sets/%s", b_set["name"],
                                                   missing_set, None),
        ("GET", "/v1/deployments/{name}"): ("/v1/deployments/%s", b_dep, missing_dep, None),
        ("PATCH", "/v1/deployments/{name}"): ("/v1/deployments/%s", b_dep, missing_dep,
                                              {"env": {"X": "1"}}),
        ("DELETE", "/v1/deployments/{name}"): ("/v1/deployments/%s", b_dep, missing_dep, None),
        ("POST", "/v1/deployments/{name}/scale"): ("/v1/deployments/%s/scale", b_dep, missing_dep,
                                                   {"replicas": 0}),
        ("POST", "/v1/deployments/{name}/restart"): ("/v1/deployments/%s/restart", b_dep,
                                                     missing_dep, None),
        ("POST", "/v1/deployments/{name}/rollback"): ("/v1/deployments/%s/rollback", b_dep,
                                                      missing_dep, None),
        ("GET", "/v1/deployments/{name}/revisions"): ("/v1/deployments/%s/revisions", b_dep,
                                                      missing_dep, None),
        # B's containers would need a node; ids that name none answer as missing ones.
        ("GET", "/v1/containers/{id}"): ("/v1/containers/%s", "ctr_" + "1" * 32, "ctr_" + "0" * 32, None),
        ("GET", "/v1/containers/{id}/logs"): ("/v1/containers/%s/logs", "ctr_" + "1" * 32,
                                              "ctr_" + "0" * 32, None),
        ("POST", "/v1/containers/{id}/restart"): ("/v1/containers/%s/restart", "ctr_" + "1" * 32,
                                                  "ctr_" + "0" * 32, None),
        ("POST", "/v1/containers/{id}/stop"): ("/v1/containers/%s/stop", "ctr_" + "1" * 32,
                                               "ctr_" + "0" * 32, None),
        ("GET", "/v1/secrets/{name}"): ("/v1/secrets/%s", b_secret, missing_secret, None),
        ("DELETE", "/v1/secrets/{name}"): ("/v1/secrets/%s", b_secret, missing_secret, None),
        ("POST", "/v1/secrets/{name}/rotate"): ("/v1/secrets/%s/rotate", b_secret,
                                                missing_secret, {"value": "x"}),
        ("POST", "/v1/secrets/{name}/grants"): ("/v1/secrets/%s/grants", b_secret,
                                                missing_secret, {"deployments": []}),
        # PUT creates: B's name is simply a new secret of the caller's (checked below).
        ("PUT", "/v1/secrets/{name}"): ("/v1/secrets/%s", b_secret, missing_secret,
                                        {"value": "x"}),
        ("GET", "/v1/scans/{id}"): ("/v1/scans/%s", b_scan, missing_scan, None),
        ("GET", "/v1/scan-policies/{name}"): ("/v1/scan-policies/%s", b_policy, missing_policy,
                                              None),
        ("DELETE", "/v1/scan-policies/{name}"): ("/v1/scan-policies/%s", b_policy,
                                                 missing_policy, None),
        # An upsert like PUT of a secret: B's name becomes a policy of the caller's own.
        ("PUT", "/v1/scan-policies/{name}"): ("/v1/scan-policies/%s", b_policy, missing_policy,
                                              {"images": ["authz.example/*"]}),
        # Nodes belong to no tenant: a tenant's caller is refused whatever the id.
        ("GET", "/v1/nodes/{id}"): ("/v1/nodes/%s", "nod_" + "1" * 32, "nod_" + "0" * 32, None),
        ("DELETE", "/v1/nodes/{id}"): ("/v1/nodes/%s", "nod_" + "1" * 32, "nod_" + "0" * 32, None),
    }
    return cases, b_user, b_key, b_set


def test_cross_tenant_ids_answer_like_missing_ones(world):
    cases, b_user, b_key, b_set = _cross_tenant_cases(world)
    platform = world.session(world.platform_token)
    b_tenant = platform.get(world.url + "/v1/tenants/" + world.tenant_b["id"]).json()
    with_params = {r for r in ROUTES if "{" in r[1]}
    assert with_params == set(cases), (
        "routes with a path parameter and no cross-tenant case: %s" % sorted(with_params - set(cases)))
    # Tenant A's Admin, as a user and as an API key, calls every route with B's id.
    callers = {"admin": world.tokens["admin"], "key:admin": world.tokens["key:admin"],
               "operator": world.tokens["operator"]}
    problems = []
    for (method, template), (fmt, other, missing, body) in sorted(cases.items()):
        if (method, template) in (("PUT", "/v1/secrets/{name}"),
                                  ("PUT", "/v1/scan-policies/{name}")):
            continue  # upserts: names are per tenant, see after the loop
        for name, token in callers.items():
            s = world.session(token)
            r_other = s.request(method, world.url + fmt % other, json=body)
            r_missing = s.request(method, world.url + fmt % missing, json=body)
            where = "%s %s as %s" % (method, template, name)
            if r_other.status_code != r_missing.status_code:
                problems.append("%s: other tenant's id %d, missing id %d (%s)" % (
                    where, r_other.status_code, r_missing.status_code, r_other.text[:200]))
                continue
            if without_request_id(r_other) != without_request_id(r_missing):
                problems.append("%s: bodies differ: %s vs %s" % (where, r_other.text, r_missing.text))
            if r_other.status_code not in (403, 404):
                problems.append("%s: %d, expected 404 (or 403 where the role is refused)" % (
                    where, r_other.status_code))
            # The Admin gets 404 on the tenant routes only when it may use them:
            # it may not, so those are 403 for both ids.
            if name != "operator" and template.startswith(("/v1/tenants", "/v1/nodes")):
                if r_other.status_code != 403:
                    problems.append("%s: expected 403 on a platform route" % where)
            elif name != "operator" and r_other.status_code != 404:
                problems.append("%s: expected 404, got %d" % (where, r_other.status_code))
    assert not problems, "\n".join(problems)
    # A's PUT of B's secret name makes A's own secret; B's keeps its single version.
    b_secret = cases[("PUT", "/v1/secrets/{name}")][1]
    r = world.session(world.tokens["admin"]).put(world.url + "/v1/secrets/" + b_secret,
                                                 json={"value": "a's"})
    assert r.status_code == 201, r.text
    got = world.b_admin.get(world.url + "/v1/secrets/" + b_secret).json()
    assert got["version"] == 1 and len(got["versions"]) == 1, got
    # A's PUT of B's policy name makes A's own policy; B's keeps its images.
    b_policy = cases[("PUT", "/v1/scan-policies/{name}")][1]
    r = world.session(world.tokens["admin"]).put(world.url + "/v1/scan-policies/" + b_policy,
                                                 json={"images": ["a.example/*"]})
    assert r.status_code == 201, r.text
    got = world.b_admin.get(world.url + "/v1/scan-policies/" + b_policy).json()
    assert got["images"] == ["authz.example/*"], got
    # Nothing of B's changed.
    b = world.b_admin
    got = b.get(world.url + "/v1/users/" + b_user["id"])
    assert got.status_code == 200 and got.json() == b_user, got.text
    keys = [k["id"] for k in b.get(world.url + "/v1/api-keys").json()["items"]]
    assert b_key["id"] in keys
    assert world.session(b_key["key"]).get(world.url + "/v1/me").status_code == 200
    got = b.get(world.url + "/v1/permission-sets/" + b_set["name"])
    assert got.status_code == 200 and got.json()["rules"] == b_set["rules"], got.text
    t = platform.get(world.url + "/v1/tenants/" + world.tenant_b["id"])
    assert t.status_code == 200 and t.json() == b_tenant, t.text


def test_set_names_are_per_tenant(world):
    """The same set name in two tenants is two sets; each tenant sees its own."""
    name = unique("authz-same")
    rules_a = [{"effect": "allow", "method": "GET", "path": "/v1/users"}]
    rules_b = [{"effect": "deny", "method": "*", "path": "/v1/**"}]
    for s, rules in ((world.admin, rules_a), (world.b_admin, rules_b)):
        r = s.post(world.url + "/v1/permission-sets", json={"name": name, "rules": rules})
        assert r.status_code == 201, r.text
    assert world.admin.get(world.url + "/v1/permission-sets/" + name).json()["rules"] == rules_a
    assert world.b_admin.get(world.url + "/v1/permission-sets/" + name).json()["rules"] == rules_b
    # Assigning by name in A never picks up B's set.
    r = world.admin.patch(world.url + "/v1/users/" + world.ids["readonly"],
                          json={"permission_sets": [name]})
    assert r.status_code == 200, r.text
    me = world.me(world.tokens["readonly"])
    assert me["rules"] == [dict(rules_a[0], set=name)], me
    r = world.admin.patch(world.url + "/v1/users/" + world.ids["readonly"],
                          json={"permission_sets": []})
    assert r.status_code == 200, r.text
    # A cannot assign B's set to its own users when A has no set of that name.
    only_b = world.make_set(s=world.b_admin)["name"]
    r = world.admin.patch(world.url + "/v1/users/" + world.ids["readonly"],
                          json={"permission_sets": [only_b]})
    check_error(r, 400, "bad_request")
    # ...nor B's users.
    b_user = world.make_user("readonly", s=world.b_admin)
    r = world.admin.patch(world.url + "/v1/users/" + b_user["id"], json={"permission_sets": [name]})
    check_error(r, 404, "not_found")


def test_audit_records_stay_in_their_tenant(world):
    """GET /v1/audit has no id to swap, so the cross-tenant case is its
    data: B's records (made by B's Admin, naming B's objects) are invisible
    to every reader of A, with any filter, and the other way round."""
    b_user = world.make_user("readonly", s=world.b_admin)
    b_admin_id = world.b_admin.get(world.url + "/v1/me").json()["id"]
    empty = {"items": [], "next_cursor": None}
    a_readers = {name: world.session(world.tokens[name])
                 for name in ("admin", "operator", "developer", "key:admin", "key:developer")}
    for name, s in a_readers.items():
        for params in ({}, {"actor": b_admin_id}, {"resource": "/v1/users/" + b_user["id"]},
                       {"action": "user.create", "actor": b_admin_id},
                       {"tenant_id": world.tenant_b["id"]}, {"tenant": world.tenant_b["id"]}):
            r = s.get(world.url + "/v1/audit", params=dict(params, limit=500))
            assert r.status_code == 200, (name, params, r.text)
            body = r.json()
            tenants = {rec["tenant_id"] for rec in body["items"]}
            assert tenants <= {world.tenant_a["id"]}, (name, params, tenants)
            if params.get("actor") or params.get("resource"):
                assert body == empty, (name, params, body)
    # The other way round: B's Admin sees none of A's matrix traffic.
    r = world.b_admin.get(world.url + "/v1/audit", params={"actor": world.ids["admin"]})
    assert r.status_code == 200 and r.json() == empty, r.text
    r = world.b_admin.get(world.url + "/v1/audit", params={"limit": 500})
    assert r.status_code == 200, r.text
    assert {rec["tenant_id"] for rec in r.json()["items"]} == {world.tenant_b["id"]}
