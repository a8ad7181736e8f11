"""Custom permission sets (SPEC §3, docs/authorization.md).

CRUD of /v1/permission-sets, assignment to users (PATCH /v1/users/{id}) and
API keys (POST /v1/api-keys), the decision order deny > allow > role > deny,
the two recovery rules (a deny never applies to the caller's own session
routes, nor to an Admin on the tenant-settings routes), path patterns (`*` one
segment, `**` one or more, last only), the platform boundary, malformed
input, logging of denials, GET /v1/me, and that every change applies to the
very next request.
"""
import concurrent.futures
import itertools
import json
import os
import re

import pytest
import requests
import yaml

from conftest import ROOT, unique, check_error

TENANT_ADMIN_PASSWORD = "tenant-admin-password-1"  # conftest Server.create_tenant default
USER_PASSWORD = "user-password-123"
ERROR_KEYS = {"code", "message", "request_id"}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
SET_KEYS = {"name", "rules", "subjects", "created_at", "updated_at"}


def rule(effect, method, path):
    return {"effect": effect, "method": method, "path": path}


_rid = itertools.count()


def rid(tag="ps"):
    return "ps-%d-%d-%s" % (os.getpid(), next(_rid), tag)


class Tenant:
    """A new tenant and its Admin, with helpers for users, keys and sets."""

    def __init__(self, server):
        self.server = server
        self.url = server.url
        self.email = unique("ps-admin") + "@tenant.test"
        self.tenant = server.create_tenant(unique("ps"), self.email)
        self.token = server.login(self.email, TENANT_ADMIN_PASSWORD)["access_token"]
        self.admin = server.session(self.token)
        self.admin_id = self.admin.get(self.url + "/v1/me").json()["id"]
        self.secrets = [self.token]  # every credential handed out, for the log check

    def user(self, role):
        """A new user; returns (user object, session with its access token)."""
        r = self.admin.post(self.url + "/v1/users", json={
            "email": unique("ps-" + role) + "@tenant.test", "password": USER_PASSWORD,
            "role": role})
        assert r.status_code == 201, r.text
        u = r.json()
        token = self.server.login(u["email"], USER_PASSWORD)["access_token"]
        self.secrets.append(token)
        return u, self.server.session(token)

    def key(self, role, sets=None):
        body = {"name": unique("ps-key"), "role": role}
        if sets is not None:
            body["permission_sets"] = sets
        r = self.admin.post(self.url + "/v1/api-keys", json=body)
        assert r.status_code == 201, r.text
        k = r.json()
        self.secrets.append(k["key"])
        return k, self.server.session(k["key"])

    def create_set(self, rules, name=None):
        name = name or unique("ps-set")
        r = self.admin.post(self.url + "/v1/permission-sets", json={"name": name, "rules": rules})
        assert r.status_code == 201, r.text
        return r.json()

    def put_set(self, name, rules):
        r = self.admin.put(self.url + "/v1/permission-sets/" + name, json={"rules": rules})
        assert r.status_code == 200, r.text
        return r.json()

    def get_set(self, name):
        r = self.admin.get(self.url + "/v1/permission-sets/" + name)
        assert r.status_code == 200, r.text
        return r.json()

    def assign(self, user_id, names):
        r = self.admin.patch(self.url + "/v1/users/" + user_id, json={"permission_sets": names})
        assert r.status_code == 200, r.text
        return r.json()

    def me(self, s):
        r = s.get(self.url + "/v1/me")
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def t(server):
    return Tenant(server)


def send_raw(s, method, url, **kw):
    """Sends url exactly as written (requests would decode %XX of unreserved characters)."""
    prepared = s.prepare_request(requests.Request(method, url, **kw))
    prepared.url = url
    return s.send(prepared)


def denied_lines(server, request_id):
    found = []
    for line in server.logs().splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get("msg") == "denied" and obj.get("request_id") == request_id:
            found.append(obj)
    return found


def assert_denied(server, s, method, url, reason, **kw):
    """method url through s answers 403 forbidden, logged once with reason."""
    request_id = rid()
    headers = dict(kw.pop("headers", {}), **{"X-Request-Id": request_id})
    r = s.request(method, url, headers=headers, **kw)
    check_error(r, 403, "forbidden")
    lines = denied_lines(server, request_id)
    assert len(lines) == 1, (request_id, lines)
    assert lines[0]["reason"] == reason, lines[0]
    return r, lines[0]


def assert_not_denied(server, s, method, url, status, **kw):
    """method url through s answers status, and no denial is logged for it."""
    request_id = rid()
    headers = dict(kw.pop("headers", {}), **{"X-Request-Id": request_id})
    r = s.request(method, url, headers=headers, **kw)
    assert r.status_code == status, (method, url, r.status_code, r.text[:500])
    assert denied_lines(server, request_id) == [], (method, url)
    return r


# --- CRUD ---------------------------------------------------------------------------

def test_create_get_list_update_delete(t):
    u = t.url
    rules = [rule("allow", "GET", "/v1/users"), rule("deny", "DELETE", "/v1/users/*"),
             rule("allow", "*", "/v1/permission-sets/**")]
    name = unique("ps-crud")
    r = t.admin.post(u + "/v1/permission-sets", json={"name": name, "rules": rules})
    assert r.status_code == 201, r.text
    created = r.json()
    assert set(created) == SET_KEYS, created
    assert created["name"] == name and created["rules"] == rules and created["subjects"] == []
    assert TIMESTAMP.match(created["created_at"]) and created["updated_at"] == created["created_at"]

    assert t.get_set(name) == created
    items = t.admin.get(u + "/v1/permission-sets").json()["items"]
    assert created in items

    # The same name again: 409; the set is unchanged.
    r = t.admin.post(u + "/v1/permission-sets", json={"name": name, "rules": []})
    check_error(r, 409, "conflict")
    assert t.get_set(name) == created

    # PUT replaces the rules, keeps created_at, moves updated_at.
    new_rules = [rule("deny", "*", "/**")]
    updated = t.put_set(name, new_rules)
    assert updated["rules"] == new_rules
    assert updated["created_at"] == created["created_at"]
    assert updated["updated_at"] > created["updated_at"]
    assert t.get_set(name) == updated
    # An empty set is a set.
    assert t.put_set(name, [])["rules"] == []

    r = t.admin.delete(u + "/v1/permission-sets/" + name)
    assert r.status_code == 204 and r.content == b"", r.text
    check_error(t.admin.get(u + "/v1/permission-sets/" + name), 404, "not_found")
    check_error(t.admin.delete(u + "/v1/permission-sets/" + name), 404, "not_found")
    check_error(t.admin.put(u + "/v1/permission-sets/" + name, json={"rules": []}), 404, "not_found")
    assert name not in [s["name"] for s in t.admin.get(u + "/v1/permission-sets").json()["items"]]
    # The name is free again.
    assert t.create_set([], name=name)["subjects"] == []


def test_list_pages_by_name(t):
    names = sorted(unique("ps-page-%d" % i) for i in range(5))
    for n in reversed(names):
        t.create_set([], name=n)
    got, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = t.admin.get(t.url + "/v1/permission-sets", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= 2
        got += [s["name"] for s in body["items"]]
        cursor = body["next_cursor"]
        pages += 1
        if cursor is None:
            break
        assert isinstance(cursor, str) and cursor and cursor not in names  # opaque
    assert got == sorted(got) and got == names, got
    assert pages == 3
    for bad in ({"cursor": "!!"}, {"cursor": "QUJD"}, {"limit": 0}, {"limit": 501}):
        check_error(t.admin.get(t.url + "/v1/permission-sets", params=bad), 400, "bad_request")


def test_answers_match_openapi(t):
    """The permission-set operations answer what docs/openapi.yaml declares."""
    oas = pytest.importorskip("test_openapi")
    with open(os.path.join(ROOT, "docs", "openapi.yaml")) as f:
        spec = yaml.safe_load(f)
    u, s = t.url, t.admin
    name = unique("ps-oas")
    body = {"name": name, "rules": [rule("allow", "GET", "/v1/users")]}
    oas.check(spec, s.post(u + "/v1/permission-sets", json=body), "POST", "/v1/permission-sets", 201)
    oas.check(spec, s.post(u + "/v1/permission-sets", json=body), "POST", "/v1/permission-sets", 409)
    oas.check(spec, s.post(u + "/v1/permission-sets", json={"name": "X", "rules": []}),
              "POST", "/v1/permission-sets", 400)
    oas.check(spec, s.get(u + "/v1/permission-sets"), "GET", "/v1/permission-sets", 200)
    oas.check(spec, s.get(u + "/v1/permission-sets/" + name), "GET", "/v1/permission-sets/{name}", 200)
    user, us = t.user("readonly")
    oas.check(spec, s.patch(u + "/v1/users/" + user["id"], json={"permission_sets": [name]}),
              "PATCH", "/v1/users/{id}", 200)
    oas.check(spec, s.patch(u + "/v1/users/" + user["id"], json={"permission_sets": ["nope-x"]}),
              "PATCH", "/v1/users/{id}", 400)
    me = oas.check(spec, us.get(u + "/v1/me"), "GET", "/v1/me", 200)
    assert me["permission_sets"] == [name]
    oas.check(spec, us.get(u + "/v1/permission-sets"), "GET", "/v1/permission-sets", 403)
    oas.check(spec, s.post(u + "/v1/api-keys", json={"name": "k", "role": "readonly",
                                                      "permission_sets": [name]}),
              "POST", "/v1/api-keys", 201)
    oas.check(spec, s.put(u + "/v1/permission-sets/" + name, json={"rules": []}),
              "PUT", "/v1/permission-sets/{name}", 200)
    oas.check(spec, s.put(u + "/v1/permission-sets/" + name, json={"rules": [{}]}),
              "PUT", "/v1/permission-sets/{name}", 400)
    oas.check(spec, s.put(u + "/v1/permission-sets/nope-x", json={"rules": []}),
              "PUT", "/v1/permission-sets/{name}", 404)
    oas.check(spec, s.delete(u + "/v1/permission-sets/" + name), "DELETE",
              "/v1/permission-sets/{name}", 204)
    oas.check(spec, s.delete(u + "/v1/permission-sets/" + name), "DELETE",
              "/v1/permission-sets/{name}", 404)
    oas.check(spec, s.get(u + "/v1/permission-sets/" + name), "GET", "/v1/permission-sets/{name}", 404)


# --- the decision order ---------------------------------------------------------------

TENANT_ROLES = ["admin", "operator", "developer", "readonly"]


@pytest.mark.parametrize("role", TENANT_ROLES)
def test_deny_overrides_a_role_grant(t, server, role):
    """GET /v1/quotas is a grant of every tenant role (`tenant:view`). A deny on it
    refuses it to a user and to an API key of each role, an Admin included (the
    recovery rules cover only the caller's own session and an Admin's tenant
    settings); the method must match, the rest of the role is untouched, and
    every change applies with no new login."""
    u = t.url
    user, s = t.user(role)
    assert s.get(u + "/v1/quotas").status_code == 200
    # Another method on the same path matches nothing.
    pset = t.create_set([rule("deny", "POST", "/v1/quotas")])
    reason = "permission_set:" + pset["name"]
    t.assign(user["id"], [pset["name"]])
    assert s.get(u + "/v1/quotas").status_code == 200

    t.put_set(pset["name"], [rule("deny", "GET", "/v1/quotas")])
    _, line = assert_denied(server, s, "GET", u + "/v1/quotas", reason)
    assert line["actor"] == user["id"] and line["tenant"] == t.tenant["id"]
    assert line["method"] == "GET" and line["route"] == "/v1/quotas"
    # The rest of the role is untouched: its own session, and the routes the
    # deny does not name answer as the role alone would.
    assert t.me(s)["role"] == role
    assert s.get(u + "/metrics").status_code == 200
    if role == "admin":
        assert s.get(u + "/v1/users").status_code == 200
        assert s.get(u + "/v1/users/" + user["id"]).status_code == 200
    else:
        assert_denied(server, s, "GET", u + "/v1/users", "role")

    # An API key of the role holding the same set is refused the same way.
    key, ks = t.key(role, sets=[pset["name"]])
    _, line = assert_denied(server, ks, "GET", u + "/v1/quotas", reason)
    assert line["actor"] == key["id"] and line["tenant"] == t.tenant["id"]
    assert t.me(ks)["role"] == role

    # Unassigned: the user's role grant is back at once; the key keeps the set.
    t.assign(user["id"], [])
    assert s.get(u + "/v1/quotas").status_code == 200
    assert_denied(server, ks, "GET", u + "/v1/quotas", reason)
    # Emptied: the key's grant is back at once too.
    t.put_set(pset["name"], [])
    assert ks.get(u + "/v1/quotas").status_code == 200


def test_allow_adds_an_endpoint_to_readonly(t, server):
    u = t.url
    ro, s = t.user("readonly")
    assert_denied(server, s, "GET", u + "/v1/users", "role")
    pset = t.create_set([rule("allow", "GET", "/v1/users")])
    t.assign(ro["id"], [pset["name"]])
    r = s.get(u + "/v1/users")
    assert r.status_code == 200, r.text
    assert ro["id"] in [x["id"] for x in r.json()["items"]]
    # Only that endpoint: the item route and other methods stay the role's.
    assert_denied(server, s, "GET", u + "/v1/users/" + ro["id"], "role")
    assert_denied(server, s, "POST", u + "/v1/users", "role",
                  json={"email": unique("x") + "@tenant.test", "password": USER_PASSWORD,
                        "role": "admin"})
    assert_denied(server, s, "GET", u + "/v1/api-keys", "role")
    # The role's own grants are untouched.
    assert s.get(u + "/v1/quotas").status_code == 200


@pytest.mark.parametrize("split", [False, True], ids=["one-set", "two-sets"])
@pytest.mark.parametrize("deny_first", [False, True], ids=["allow-first", "deny-first"])
def test_overlapping_patterns(t, server, split, deny_first):
    """allow * /v1/users/** with deny DELETE /v1/users/*: delete refused,
    read and patch allowed; the order of rules and sets does not matter."""
    u = t.url
    victim, _ = t.user("readonly")
    ro, s = t.user("readonly")
    allow, deny = rule("allow", "*", "/v1/users/**"), rule("deny", "DELETE", "/v1/users/*")
    if split:
        a = t.create_set([allow], name=unique("ps-b-allow"))
        d = t.create_set([deny], name=unique("ps-a-deny") if deny_first else unique("ps-c-deny"))
        names, deny_set = [a["name"], d["name"]], d["name"]
    else:
        one = t.create_set([deny, allow] if deny_first else [allow, deny])
        names, deny_set = [one["name"]], one["name"]
    t.assign(ro["id"], names)
    assert s.get(u + "/v1/users/" + victim["id"]).status_code == 200
    r = s.patch(u + "/v1/users/" + victim["id"], json={"role": "developer"})
    assert r.status_code == 200 and r.json()["role"] == "developer", r.text
    assert_denied(server, s, "DELETE", u + "/v1/users/" + victim["id"], "permission_set:" + deny_set)
    assert t.admin.get(u + "/v1/users/" + victim["id"]).status_code == 200
    # `**` needs at least one segment: the collection itself is the role's (refused).
    assert_denied(server, s, "GET", u + "/v1/users", "role")


def test_star_is_one_segment_and_double_star_one_or_more(t, server):
    """A Read-only user whose allow `* /**` opens every tenant route, with denies
    in a second set: each deny shows what its pattern matches (a deny applies to
    tenant settings for anyone but an Admin). The caller's own session routes match
    the patterns but are never denied; an Admin is refused on `/v1/quotas` by the
    same patterns and keeps its tenant settings."""
    u = t.url
    other, _ = t.user("readonly")
    ro, s = t.user("readonly")
    adm, a = t.user("admin")
    key, _ = t.key("readonly")
    key2, _ = t.key("readonly")
    grant = t.create_set([rule("allow", "*", "/**")], name=unique("ps-grant"))
    pset = t.create_set([rule("deny", "GET", "/v1/*")], name=unique("ps-star"))
    reason = "permission_set:" + pset["name"]
    t.assign(ro["id"], [grant["name"], pset["name"]])
    t.assign(adm["id"], [pset["name"]])
    # `/v1/*`: exactly one segment after /v1.
    for path in ("/v1/users", "/v1/quotas", "/v1/api-keys", "/v1/permission-sets"):
        assert_denied(server, s, "GET", u + path, reason)
    for path in ("/v1/users/" + other["id"], "/v1/permission-sets/" + pset["name"]):
        assert s.get(u + path).status_code == 200, path
    assert s.get(u + "/healthz").status_code == 200
    # /v1/me is matched by `/v1/*` but is the caller's own session: never denied.
    assert_not_denied(server, s, "GET", u + "/v1/me", 200)
    # The Admin: refused on a non-settings route, not on its tenant settings.
    assert_denied(server, a, "GET", u + "/v1/quotas", reason)
    for path in ("/v1/users", "/v1/api-keys", "/v1/permission-sets", "/v1/me"):
        assert_not_denied(server, a, "GET", u + path, 200)

    # `/v1/users/*`: the item, not the collection, not a deeper path.
    t.put_set(pset["name"], [rule("deny", "*", "/v1/users/*")])
    assert s.get(u + "/v1/users").status_code == 200
    assert_denied(server, s, "GET", u + "/v1/users/" + other["id"], reason)
    assert_denied(server, s, "PATCH", u + "/v1/users/" + other["id"], reason, json={"role": "readonly"})

    # `/v1/**`: one or more segments, so every /v1 route; /healthz is outside.
    t.put_set(pset["name"], [rule("deny", "GET", "/v1/**")])
    for path in ("/v1/users", "/v1/users/" + other["id"], "/v1/quotas", "/v1/auth/jwks"):
        r = s.get(u + path)
        if path == "/v1/auth/jwks":
            assert r.status_code == 200  # public: needs no credential, so no rule applies
        else:
            check_error(r, 403, "forbidden")
    assert_not_denied(server, s, "GET", u + "/v1/me", 200)
    assert s.get(u + "/healthz").status_code == 200
    assert s.post(u + "/v1/permission-sets", json={"name": unique("ps-x"), "rules": []}).status_code == 201
    assert_denied(server, a, "GET", u + "/v1/quotas", reason)
    assert_not_denied(server, a, "GET", u + "/v1/users/" + other["id"], 200)

    # `*` in the middle: any collection, this one id.
    t.put_set(pset["name"], [rule("deny", "DELETE", "/v1/*/" + key["id"])])
    assert_denied(server, s, "DELETE", u + "/v1/api-keys/" + key["id"], reason)
    assert s.delete(u + "/v1/api-keys/" + key2["id"]).status_code == 204
    # Literal segments are exact (and case-sensitive).
    t.put_set(pset["name"], [rule("deny", "GET", "/v1/Users")])
    assert s.get(u + "/v1/users").status_code == 200
    # A literal id: only that object.
    t.put_set(pset["name"], [rule("deny", "PATCH", "/v1/users/" + other["id"])])
    assert_denied(server, s, "PATCH", u + "/v1/users/" + other["id"], reason, json={"role": "readonly"})
    third, _ = t.user("readonly")
    assert s.patch(u + "/v1/users/" + third["id"], json={"role": "readonly"}).status_code == 200
    # Percent-encoding does not reach the object past a literal deny.
    t.put_set(pset["name"], [rule("deny", "DELETE", "/v1/users/" + other["id"])])
    escaped = other["id"][:-1] + "%%%02X" % ord(other["id"][-1])
    r = send_raw(s, "DELETE", u + "/v1/users/" + escaped)
    check_error(r, 404, "not_found")  # the id is taken as it is written: no such user
    assert t.admin.get(u + "/v1/users/" + other["id"]).status_code == 200
    # Nor does another spelling of a denied route reach it: routes match the path as written.
    t.put_set(pset["name"], [rule("deny", "GET", "/v1/users")])
    for spelling in ("/v1/%75sers", "/v1//users", "/v1/users/", "/v1/./users", "/V1/users"):
        r = send_raw(s, "GET", u + spelling)
        assert r.status_code in (403, 404), (spelling, r.status_code, r.text)
    assert_denied(server, s, "GET", u + "/v1/users?limit=1", reason)


def test_allow_never_opens_platform_routes(t, server):
    u = t.url
    everything = t.create_set([rule("allow", "*", "/**"), rule("allow", "*", "/v1/tenants"),
                               rule("allow", "*", "/v1/tenants/**")])
    ro, s = t.user("readonly")
    adm, a = t.user("admin")
    key, ks = t.key("readonly", sets=[everything["name"]])
    t.assign(ro["id"], [everything["name"]])
    t.assign(adm["id"], [everything["name"]])
    tid = t.tenant["id"]
    for caller in (s, a, ks):
        assert_denied(server, caller, "GET", u + "/v1/tenants", "role")
        assert_denied(server, caller, "GET", u + "/v1/tenants/" + tid, "role")
        assert_denied(server, caller, "PUT", u + "/v1/tenants/%s/quotas" % tid, "role",
                      json={"cpu_cores": 64, "memory_mb": 65536, "containers": 100,
                            "storage_mb": 65536})
        assert_denied(server, caller, "POST", u + "/v1/tenants", "role",
                      json={"name": unique("ps-evil"),
                            "admin": {"email": unique("e") + "@x.test", "password": USER_PASSWORD}})
        assert_denied(server, caller, "DELETE", u + "/v1/tenants/" + tid, "role")
    # Inside the tenant the allow works: the read-only user and key now manage users.
    assert s.get(u + "/v1/users").status_code == 200
    assert ks.get(u + "/v1/api-keys").status_code == 200
    # The tenant is untouched.
    platform = server.session(server.admin_token())
    got = platform.get(u + "/v1/tenants/" + tid).json()
    assert got["quotas"] == t.tenant["quotas"]


# --- the recovery rules -----------------------------------------------------------------

def test_a_deny_never_locks_an_admin_out_of_tenant_settings(t, server):
    """The tenant's only Admin holds `deny * /v1/**`. Every other permission is
    refused (GET /v1/quotas, the platform routes), but the users, API keys and
    permission sets routes still answer, so the Admin can lift the deny: by
    editing the set, by taking it off itself, or by deleting it."""
    u, s = t.url, t.admin
    other, _ = t.user("readonly")
    pset = t.create_set([rule("deny", "*", "/v1/**")], name=unique("ps-lock"))
    reason = "permission_set:" + pset["name"]
    t.assign(t.admin_id, [pset["name"]])
    assert t.me(s)["permission_sets"] == [pset["name"]]

    # Denies still bind the Admin outside tenant settings.
    _, line = assert_denied(server, s, "GET", u + "/v1/quotas", reason)
    assert line["actor"] == t.admin_id and line["tenant"] == t.tenant["id"]
    assert_denied(server, s, "GET", u + "/v1/tenants", reason)

    # Tenant settings: every route answers as the role alone would, nothing logged as denied.
    assert_not_denied(server, s, "GET", u + "/v1/users", 200)
    assert_not_denied(server, s, "GET", u + "/v1/users/" + other["id"], 200)
    r = assert_not_denied(server, s, "PATCH", u + "/v1/users/" + other["id"], 200,
                          json={"role": "developer"})
    assert r.json()["role"] == "developer"
    new_user = assert_not_denied(server, s, "POST", u + "/v1/users", 201, json={
        "email": unique("ps-lock-new") + "@tenant.test", "password": USER_PASSWORD,
        "role": "readonly"}).json()
    assert_not_denied(server, s, "DELETE", u + "/v1/users/" + new_user["id"], 204)
    assert_not_denied(server, s, "GET", u + "/v1/api-keys", 200)
    key = assert_not_denied(server, s, "POST", u + "/v1/api-keys", 201,
                            json={"name": unique("ps-lock-key"), "role": "readonly"}).json()
    t.secrets.append(key["key"])
    assert_not_denied(server, s, "DELETE", u + "/v1/api-keys/" + key["id"], 204)
    assert_not_denied(server, s, "GET", u + "/v1/permission-sets", 200)
    assert_not_denied(server, s, "GET", u + "/v1/permission-sets/" + pset["name"], 200)
    spare = unique("ps-spare")
    assert_not_denied(server, s, "POST", u + "/v1/permission-sets", 201,
                      json={"name": spare, "rules": []})
    assert_not_denied(server, s, "DELETE", u + "/v1/permission-sets/" + spare, 204)
    # The role's own refusals still hold: an Admin cannot demote or delete itself.
    check_error(s.patch(u + "/v1/users/" + t.admin_id, json={"role": "readonly"}), 409, "conflict")
    check_error(s.delete(u + "/v1/users/" + t.admin_id), 409, "conflict")
    assert t.me(s)["role"] == "admin"

    # Lifted by editing the set (PUT), and put back the same way.
    r = assert_not_denied(server, s, "PUT", u + "/v1/permission-sets/" + pset["name"], 200,
                          json={"rules": []})
    assert r.json()["rules"] == []
    assert s.get(u + "/v1/quotas").status_code == 200
    assert_not_denied(server, s, "PUT", u + "/v1/permission-sets/" + pset["name"], 200,
                      json={"rules": [rule("deny", "*", "/v1/**")]})
    assert_denied(server, s, "GET", u + "/v1/quotas", reason)
    # Lifted by taking the set off itself (PATCH its own user).
    r = assert_not_denied(server, s, "PATCH", u + "/v1/users/" + t.admin_id, 200,
                          json={"permission_sets": []})
    assert r.json()["id"] == t.admin_id and r.json()["role"] == "admin"
    assert s.get(u + "/v1/quotas").status_code == 200
    t.assign(t.admin_id, [pset["name"]])
    assert_denied(server, s, "GET", u + "/v1/quotas", reason)
    # Lifted by deleting the set.
    assert_not_denied(server, s, "DELETE", u + "/v1/permission-sets/" + pset["name"], 204)
    assert s.get(u + "/v1/quotas").status_code == 200
    assert t.me(s)["permission_sets"] == []


def test_an_admin_key_can_delete_the_set_that_denies_it(t, server):
    """An Admin API key's sets are fixed at creation; with `deny * /**` it is still
    refused GET /v1/quotas, yet can reach the permission sets and delete the deny."""
    u = t.url
    pset = t.create_set([rule("deny", "*", "/**")])
    reason = "permission_set:" + pset["name"]
    key, ks = t.key("admin", sets=[pset["name"]])
    assert_denied(server, ks, "GET", u + "/v1/quotas", reason)
    assert_not_denied(server, ks, "GET", u + "/v1/permission-sets/" + pset["name"], 200)
    assert_not_denied(server, ks, "GET", u + "/v1/api-keys", 200)
    assert_not_denied(server, ks, "DELETE", u + "/v1/permission-sets/" + pset["name"], 204)
    assert ks.get(u + "/v1/quotas").status_code == 200
    assert t.me(ks)["permission_sets"] == []


@pytest.mark.parametrize("role", ["operator", "developer", "readonly"])
def test_tenant_settings_stay_deniable_below_admin(t, server, role):
    """The settings exemption is the Admin's alone: a non-Admin given the settings
    routes by an allow loses them to a deny, and cannot lift that deny itself."""
    u = t.url
    user, s = t.user(role)
    grant = t.create_set([rule("allow", "*", "/**")], name=unique("ps-grant"))
    deny = t.create_set([rule("deny", "*", "/v1/**")], name=unique("ps-deny"))
    reason = "permission_set:" + deny["name"]
    t.assign(user["id"], [grant["name"]])
    assert s.get(u + "/v1/users").status_code == 200
    assert s.get(u + "/v1/permission-sets/" + deny["name"]).status_code == 200
    t.assign(user["id"], [grant["name"], deny["name"]])
    assert_denied(server, s, "GET", u + "/v1/users", reason)
    assert_denied(server, s, "GET", u + "/v1/quotas", reason)
    assert_denied(server, s, "PATCH", u + "/v1/users/" + user["id"], reason,
                  json={"permission_sets": [grant["name"]]})
    assert_denied(server, s, "PUT", u + "/v1/permission-sets/" + deny["name"], reason,
                  json={"rules": []})
    assert_denied(server, s, "DELETE", u + "/v1/permission-sets/" + deny["name"], reason)
    assert t.get_set(deny["name"])["rules"] == deny["rules"]
    assert sorted(t.me(s)["permission_sets"]) == sorted([grant["name"], deny["name"]])


@pytest.mark.parametrize("role", TENANT_ROLES)
def test_a_deny_never_takes_the_callers_own_session(t, server, role):
    """`deny * /**`, and denies naming the routes themselves, leave a user and an
    API key of every role their own session: GET /v1/me (200, listing the deny),
    GET /metrics with the credential (200) and POST /v1/auth/logout (204, and the
    refresh token is revoked). Everything else in the tenant the role holds
    outside tenant settings is refused."""
    u = t.url
    user, _ = t.user(role)
    pset = t.create_set([rule("deny", "*", "/**")])
    reason = "permission_set:" + pset["name"]
    t.assign(user["id"], [pset["name"]])
    pair = server.login(user["email"], USER_PASSWORD)
    t.secrets.append(pair["access_token"])
    s = server.session(pair["access_token"])
    assert_denied(server, s, "GET", u + "/v1/quotas", reason)
    me = assert_not_denied(server, s, "GET", u + "/v1/me", 200).json()
    assert me["id"] == user["id"] and me["role"] == role
    assert me["permission_sets"] == [pset["name"]]
    assert me["rules"] == [dict(rule("deny", "*", "/**"), set=pset["name"])]
    assert_not_denied(server, s, "GET", u + "/metrics", 200)

    # Rules naming the session routes exactly change nothing either.
    exact = [rule("deny", "*", "/**"), rule("deny", "GET", "/v1/me"),
             rule("deny", "POST", "/v1/auth/logout"), rule("deny", "GET", "/metrics"),
             rule("deny", "*", "/v1/auth/**")]
    t.put_set(pset["name"], exact)
    assert len(assert_not_denied(server, s, "GET", u + "/v1/me", 200).json()["rules"]) == len(exact)
    assert_not_denied(server, s, "GET", u + "/metrics", 200)
    assert_denied(server, s, "GET", u + "/v1/quotas", reason)
    r = assert_not_denied(server, s, "POST", u + "/v1/auth/logout", 204,
                          json={"refresh_token": pair["refresh_token"]})
    assert r.content == b""
    # The logout did its work: the session's refresh token is gone.
    r = server.session().post(u + "/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    check_error(r, 401, "unauthorized")

    # An API key of the role holding the same set.
    key, ks = t.key(role, sets=[pset["name"]])
    me = assert_not_denied(server, ks, "GET", u + "/v1/me", 200).json()
    assert me["id"] == key["id"] and me["kind"] == "api_key"
    assert_not_denied(server, ks, "GET", u + "/metrics", 200)
    # A key has no refresh token; a token it does not own is not an error (RFC 7009).
    assert_not_denied(server, ks, "POST", u + "/v1/auth/logout", 204,
                      json={"refresh_token": "odr_not-a-token"})
    assert_denied(server, ks, "GET", u + "/v1/quotas", reason)


def test_only_an_admin_is_kept_from_demoting_itself(t, server):
    """The self-demotion 409 is about Admins: a Read-only user that an allow lets
    edit users may change its own role (which is why such an allow is Admin power)."""
    u = t.url
    ro, s = t.user("readonly")
    t.assign(ro["id"], [t.create_set([rule("allow", "*", "/v1/users/**")])["name"]])
    r = s.patch(u + "/v1/users/" + ro["id"], json={"role": "developer"})
    assert r.status_code == 200 and r.json()["role"] == "developer", r.text
    assert t.admin.get(u + "/v1/users/" + ro["id"]).json()["role"] == "developer"
    adm, a = t.user("admin")
    check_error(a.patch(u + "/v1/users/" + adm["id"], json={"role": "developer"}), 409, "conflict")
    assert t.admin.get(u + "/v1/users/" + adm["id"]).json()["role"] == "admin"


# --- assignment -----------------------------------------------------------------------

def test_api_key_gets_sets_at_creation(t, server):
    u = t.url
    allow = t.create_set([rule("allow", "GET", "/v1/users")])
    deny = t.create_set([rule("deny", "GET", "/v1/quotas")])
    key, ks = t.key("readonly", sets=[allow["name"], deny["name"]])
    assert set(key) >= {"id", "key", "role"} and "permission_sets" not in key
    assert ks.get(u + "/v1/users").status_code == 200
    assert_denied(server, ks, "GET", u + "/v1/quotas", "permission_set:" + deny["name"])
    assert key["id"] in t.get_set(allow["name"])["subjects"]
    me = t.me(ks)
    assert me["kind"] == "api_key" and me["permission_sets"] == sorted([allow["name"], deny["name"]])

    # A key without sets is the role alone.
    plain, ps = t.key("readonly")
    assert_denied(server, ps, "GET", u + "/v1/users", "role")
    assert t.me(ps)["permission_sets"] == [] and t.me(ps)["rules"] == []

    # Unknown set, too many, wrong types: 400 and no key is left behind.
    before = {k["id"] for k in t.admin.get(u + "/v1/api-keys", params={"limit": 500}).json()["items"]}
    for sets in (["no-such-set"], [allow["name"], "no-such-set"], [allow["name"]] * 17, "x",
                 [1], ["UPPER"], None, {"a": 1}):
        r = t.admin.post(u + "/v1/api-keys",
                         json={"name": unique("ps-bad"), "role": "readonly", "permission_sets": sets})
        check_error(r, 400, "bad_request")
    after = {k["id"] for k in t.admin.get(u + "/v1/api-keys", params={"limit": 500}).json()["items"]}
    assert after == before

    # Revoking the key takes it off its sets.
    assert t.admin.delete(u + "/v1/api-keys/" + key["id"]).status_code == 204
    assert key["id"] not in t.get_set(allow["name"])["subjects"]


def test_user_assignment(t, server):
    u = t.url
    user, us = t.user("readonly")
    sets = [t.create_set([rule("allow", "GET", "/v1/users")])["name"]] + \
           [t.create_set([])["name"] for _ in range(15)]
    # PATCH answers the user object; the assignment shows on the sets and /v1/me.
    r = t.admin.patch(u + "/v1/users/" + user["id"], json={"permission_sets": sets})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == user["id"]
    assert t.me(us)["permission_sets"] == sorted(sets)
    assert user["id"] in t.get_set(sets[0])["subjects"]
    assert us.get(u + "/v1/users").status_code == 200

    # Refused without changing anything: 17 names, an unknown name, bad types,
    # and a role change together with a bad set list.
    for body in ({"permission_sets": sets + [sets[0] + "x"]},
                 {"permission_sets": [sets[0], "no-such-set"]},
                 {"permission_sets": "x"}, {"permission_sets": [7]},
                 {"permission_sets": ["Bad Name"]}, {"permission_sets": None},
                 {"role": "admin", "permission_sets": ["no-such-set"]}):
        r = t.admin.patch(u + "/v1/users/" + user["id"], json=body)
        err = check_error(r, 400, "bad_request")
        assert "permission_sets" in err["message"] or "must be" in err["message"], err
    assert t.me(us)["permission_sets"] == sorted(sets)
    assert t.admin.get(u + "/v1/users/" + user["id"]).json()["role"] == "readonly"

    # Repeated names count once; [] clears; a missing user is 404.
    assert t.assign(user["id"], [sets[0], sets[0]])["id"] == user["id"]
    assert t.me(us)["permission_sets"] == [sets[0]]
    assert t.get_set(sets[0])["subjects"] == [user["id"]]
    t.assign(user["id"], [])
    assert t.me(us)["permission_sets"] == []
    assert_denied(server, us, "GET", u + "/v1/users", "role")
    r = t.admin.patch(u + "/v1/users/usr_" + "0" * 32, json={"permission_sets": []})
    check_error(r, 404, "not_found")

    # Deleting the user takes it off its sets.
    t.assign(user["id"], [sets[0]])
    assert t.admin.delete(u + "/v1/users/" + user["id"]).status_code == 204
    assert t.get_set(sets[0])["subjects"] == []


def test_deleting_a_set_takes_it_from_its_subjects(t, server):
    u = t.url
    pset = t.create_set([rule("deny", "GET", "/v1/quotas"), rule("allow", "GET", "/v1/users")])
    user, us = t.user("readonly")
    key, ks = t.key("readonly", sets=[pset["name"]])
    t.assign(user["id"], [pset["name"]])
    assert sorted(t.get_set(pset["name"])["subjects"]) == sorted([user["id"], key["id"]])
    for s in (us, ks):
        assert_denied(server, s, "GET", u + "/v1/quotas", "permission_set:" + pset["name"])
        assert s.get(u + "/v1/users").status_code == 200

    assert t.admin.delete(u + "/v1/permission-sets/" + pset["name"]).status_code == 204
    for s in (us, ks):
        assert s.get(u + "/v1/quotas").status_code == 200       # the deny is gone
        assert_denied(server, s, "GET", u + "/v1/users", "role")  # and so is the allow
        me = t.me(s)
        assert me["permission_sets"] == [] and me["rules"] == []
    # A new set of the same name starts with no subjects.
    again = t.create_set([rule("deny", "*", "/**")], name=pset["name"])
    assert again["subjects"] == []
    for s in (us, ks):
        assert s.get(u + "/v1/quotas").status_code == 200


# --- malformed input ----------------------------------------------------------------------

GOOD = rule("allow", "GET", "/v1/users")
BAD_RULES = {
    "missing-path": [{"effect": "allow", "method": "GET"}],
    "missing-effect": [{"method": "GET", "path": "/v1/users"}],
    "missing-method": [{"effect": "allow", "path": "/v1/users"}],
    "extra-field": [dict(GOOD, comment="x")],
    "bad-effect": [rule("permit", "GET", "/v1/users")],
    "effect-case": [rule("Allow", "GET", "/v1/users")],
    "bad-method": [rule("allow", "FETCH", "/v1/users")],
    "lowercase-method": [rule("allow", "get", "/v1/users")],
    "head-method": [rule("allow", "HEAD", "/v1/users")],
    "double-star-middle": [rule("allow", "GET", "/v1/**/users")],
    "double-slash": [rule("allow", "GET", "/v1//users")],
    "no-leading-slash": [rule("allow", "GET", "v1/users")],
    "trailing-slash": [rule("allow", "GET", "/v1/users/")],
    "root-only": [rule("allow", "GET", "/")],
    "empty-path": [rule("allow", "GET", "")],
    "partial-wildcard": [rule("allow", "GET", "/v1/user*")],
    "template": [rule("allow", "GET", "/v1/users/{id}")],
    "percent": [rule("allow", "GET", "/v1/users%2Fx")],
    "query": [rule("allow", "GET", "/v1/users?limit=1")],
    "too-long-path": [rule("allow", "GET", "/" + "a" * 300)],
    "number-effect": [{"effect": 1, "method": "GET", "path": "/v1/users"}],
    "rule-not-object": ["allow GET /v1/users"],
    "second-rule-bad": [GOOD, rule("allow", "GET", "/v1/**/x")],
    "over-100-rules": [GOOD] * 101,
    "rules-object": {"effect": "allow", "method": "GET", "path": "/v1/users"},
    "rules-string": "allow GET /v1/users",
    "rules-null": None,
}
BAD_NAMES = ["Upper", "has space", "-lead", "", "a" * 65, "under_score", "dot.name", "é"]


@pytest.mark.parametrize("case", sorted(BAD_RULES))
def test_malformed_rules_are_refused(t, case):
    rules = BAD_RULES[case]
    existing = t.create_set([GOOD])
    name = unique("ps-bad")
    for method, path, body in (("POST", "/v1/permission-sets", {"name": name, "rules": rules}),
                               ("PUT", "/v1/permission-sets/" + existing["name"], {"rules": rules})):
        r = t.admin.request(method, t.url + path, json=body)
        err = check_error(r, 400, "bad_request")
        if case == "second-rule-bad":
            assert err["message"].startswith("rule 1:"), err
        elif isinstance(rules, list) and case != "over-100-rules":
            assert err["message"].startswith("rule 0:"), err
        elif case == "over-100-rules":
            assert "100" in err["message"], err
    check_error(t.admin.get(t.url + "/v1/permission-sets/" + name), 404, "not_found")
    assert t.get_set(existing["name"]) == existing  # a refused PUT changes nothing


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n)[:12])
def test_malformed_names_are_refused(t, name):
    r = t.admin.post(t.url + "/v1/permission-sets", json={"name": name, "rules": [GOOD]})
    err = check_error(r, 400, "bad_request")
    assert "name" in err["message"], err


@pytest.mark.parametrize("body", [
    {"rules": []}, {"name": "x"}, {"name": "x", "rules": [], "extra": 1},
    {"name": 5, "rules": []}, {"name": "x", "rules": [], "subjects": []},
], ids=["no-name", "no-rules", "extra", "name-type", "subjects"])
def test_malformed_bodies_are_refused(t, body):
    check_error(t.admin.post(t.url + "/v1/permission-sets", json=body), 400, "bad_request")
    pset = t.create_set([])
    for put in ({"name": pset["name"], "rules": []}, {}, {"rules": [], "x": 1}):
        check_error(t.admin.put(t.url + "/v1/permission-sets/" + pset["name"], json=put),
                    400, "bad_request")


def test_limits_that_are_allowed(t):
    """100 rules, a 64-character name, the longest path: all fine."""
    name = "a" * 64
    t.create_set([GOOD] * 100, name=name)
    assert len(t.get_set(name)["rules"]) == 100
    long_path = "/" + "/".join(["abcdefgh"] * 28)  # 252 characters
    assert t.put_set(name, [rule("deny", "*", long_path), rule("allow", "DELETE", "/**")])["rules"]


# --- logging, /v1/me, caching ---------------------------------------------------------------

def test_denials_are_logged_and_no_secret_is(t, server):
    u = t.url
    pset = t.create_set([rule("deny", "*", "/v1/quotas")])
    user, us = t.user("developer")
    key, ks = t.key("developer", sets=[pset["name"]])
    t.assign(user["id"], [pset["name"]])
    for actor, s in ((user["id"], us), (key["id"], ks)):
        _, line = assert_denied(server, s, "GET", u + "/v1/quotas", "permission_set:" + pset["name"])
        assert line["actor"] == actor and line["tenant"] == t.tenant["id"]
        assert line["level"] == "warn" and line["route"] == "/v1/quotas"
    logs = server.logs()
    for secret in t.secrets:
        assert secret not in logs
        # Nor the signature part of an access token, nor an API key's secret half.
        assert secret.split(".")[-1] not in logs and secret.split("_")[-1] not in logs
    assert USER_PASSWORD not in logs and TENANT_ADMIN_PASSWORD not in logs


def test_me_shows_effective_permissions(t):
    u = t.url
    b = t.create_set([rule("deny", "DELETE", "/v1/users/*"), rule("allow", "*", "/v1/users/**")],
                     name=unique("ps-me-b"))
    a = t.create_set([rule("allow", "GET", "/v1/users")], name=unique("ps-me-a"))
    user, us = t.user("operator")
    base = t.me(us)
    assert base["permission_sets"] == [] and base["rules"] == []
    t.assign(user["id"], [b["name"], a["name"]])
    me = t.me(us)
    assert me["role"] == "operator" and me["permissions"] == base["permissions"]
    assert me["permission_sets"] == sorted([a["name"], b["name"]])
    # Rules in set-name order, each with the set it comes from.
    want = [dict(r, set=a["name"]) for r in a["rules"]] + [dict(r, set=b["name"]) for r in b["rules"]]
    assert me["rules"] == want
    # An edit of a set shows at once, and applies at once.
    assert us.get(u + "/v1/quotas").status_code == 200
    t.put_set(a["name"], [rule("deny", "GET", "/v1/quotas")])
    me = t.me(us)
    assert me["permission_sets"] == sorted([a["name"], b["name"]])
    assert me["rules"] == [dict(rule("deny", "GET", "/v1/quotas"), set=a["name"])] + \
        [dict(r, set=b["name"]) for r in b["rules"]]
    assert me["permissions"] == base["permissions"]  # the role's, whatever the sets say
    check_error(us.get(u + "/v1/quotas"), 403, "forbidden")
    t.put_set(a["name"], [rule("deny", "POST", "/v1/users")])
    assert t.me(us)["rules"][0] == dict(rule("deny", "POST", "/v1/users"), set=a["name"])
    assert us.get(u + "/v1/quotas").status_code == 200
    # The platform administrator has none.
    platform = t.server.session(t.server.admin_token())
    me = t.me(platform)
    assert me["permission_sets"] == [] and me["rules"] == []


def test_changes_apply_to_the_next_request_on_every_thread(t, server):
    """Sets are cached per server thread; every change must reach every thread.
    Fresh connections spread the requests over the event-loop threads (GET)
    and the worker threads (POST)."""
    u = t.url
    user, us = t.user("readonly")
    token = us.headers["Authorization"]
    pset = t.create_set([rule("allow", "GET", "/v1/users"), rule("allow", "POST", "/v1/api-keys")])
    t.assign(user["id"], [pset["name"]])

    def statuses(n=12):
        def one(i):
            s = server.session()
            s.headers["Authorization"] = token
            if i % 2:
                return s.get(u + "/v1/users").status_code
            r = s.post(u + "/v1/api-keys", json={"name": unique("ps-thr"), "role": "readonly"})
            return r.status_code
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            return sorted(set(pool.map(one, range(n))))

    for state in range(4):
        if state % 2 == 0:
            assert statuses() == [200, 201], state
            t.put_set(pset["name"], [rule("deny", "*", "/**")])
        else:
            assert statuses() == [403], state
            t.put_set(pset["name"], [rule("allow", "GET", "/v1/users"),
                                     rule("allow", "POST", "/v1/api-keys")])
    # Unassigning reaches every thread too.
    assert statuses() == [200, 201]
    t.assign(user["id"], [])
    assert statuses() == [403]


def test_many_sets_and_rules(t, server):
    """16 sets of 100 rules: the decision still finds the one deny and the one allow."""
    u = t.url
    names = []
    for i in range(16):
        rules = [rule("allow", "GET", "/v1/nothing-%d/%d" % (i, j)) for j in range(99)]
        rules.append(rule("deny", "*", "/v1/quotas") if i == 15
                     else rule("allow", "GET", "/v1/users") if i == 7
                     else rule("allow", "GET", "/v1/nothing"))
        names.append(t.create_set(rules)["name"])
    user, us = t.user("readonly")
    t.assign(user["id"], names)
    assert len(t.me(us)["rules"]) == 1600
    assert us.get(u + "/v1/users").status_code == 200
    assert_denied(server, us, "GET", u + "/v1/api-keys", "role")
    assert_denied(server, us, "GET", u + "/v1/quotas", "permission_set:" + names[15])
    # An Admin holding the same sets: the deny is found on a non-settings route.
    adm, a = t.user("admin")
    t.assign(adm["id"], names)
    assert len(t.me(a)["rules"]) == 1600
    assert_denied(server, a, "GET", u + "/v1/quotas", "permission_set:" + names[15])
    key, _ = t.key("readonly")
    assert a.delete(u + "/v1/api-keys/" + key["id"]).status_code == 204


def test_public_routes_ignore_sets(t, server):
    """A deny of everything leaves login, refresh, JWKS and health alone: they need
    no credential, so a rule has nothing to attach to."""
    u = t.url
    pset = t.create_set([rule("deny", "*", "/**")])
    user, us = t.user("operator")
    t.assign(user["id"], [pset["name"]])
    assert_denied(server, us, "GET", u + "/v1/quotas", "permission_set:" + pset["name"])
    assert_denied(server, us, "GET", u + "/v1/users", "permission_set:" + pset["name"])
    pair = server.login(user["email"], USER_PASSWORD)
    s = server.session(pair["access_token"])
    for path in ("/v1/auth/jwks", "/healthz", "/readyz"):
        assert_not_denied(server, s, "GET", u + path, 200)
    r = assert_not_denied(server, s, "POST", u + "/v1/auth/refresh", 200,
                          json={"refresh_token": pair["refresh_token"]})
    # The renewed token is still bound by the set.
    renewed = server.session(r.json()["access_token"])
    assert_denied(server, renewed, "GET", u + "/v1/quotas", "permission_set:" + pset["name"])


def test_documented_path_pattern_agrees_with_the_server(t):
    """docs/openapi.yaml's RulePath pattern accepts exactly the paths the server accepts."""
    with open(os.path.join(ROOT, "docs", "openapi.yaml")) as f:
        spec = yaml.safe_load(f)
    pattern = spec["components"]["schemas"]["RulePath"]["pattern"]
    paths = ["/v1/users", "/v1/users/**", "/**", "/*", "/v1/*/scale", "/v1/*/**", "/A-z_0.9~",
             "/v1/**/x", "/", "//a", "/v1/users/", "/v1/us*rs", "v1", "/v1/***", "/v1/{id}",
             "/v1/a%20b", "/v1/é", "/v1/a b", "/" + "a" * 254, "/" + "a" * 255, "/v1/*x"]
    disagree = []
    for path in paths:
        r = t.admin.post(t.url + "/v1/permission-sets",
                         json={"name": unique("ps-pat"), "rules": [rule("allow", "GET", path)]})
        assert r.status_code in (201, 400), r.text
        documented = bool(re.search(pattern, path)) and len(path) <= 255
        if (r.status_code == 201) != documented:
            disagree.append((path, r.status_code, documented))
    assert not disagree, disagree
