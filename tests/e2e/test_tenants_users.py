"""Tenants, quotas and users, driven from outside against the real odysseusd.

Platform admin vs tenant API separation, role checks, email uniqueness across
the platform, tenant isolation (other tenants' ids answer 404 exactly like
absent ones), cursor paging and tenant deletion. Contract: docs/api.md,
SPEC.md sections 3, 4 and 10.
"""
import re
import secrets

import pytest

from conftest import (TENANT_ADMIN_PASSWORD, USER_PASSWORD, check_error, create_user, list_all,
                      make_user, new_tenant, post_login, unique, without_request_id)

ROLES = ("admin", "operator", "developer", "readonly")
DEFAULT_QUOTAS = {"cpu_cores": 4, "memory_mb": 8192, "containers": 20, "storage_mb": 10240}


# --- helpers -----------------------------------------------------------------

def token_of(srv, email, password=USER_PASSWORD):
    return srv.login(email, password)["access_token"]


def random_id(prefix):
    return prefix + "_" + secrets.token_hex(16)


@pytest.fixture(scope="module")
def world(server):
    """Tenants A and B, each with its admin; B has a developer."""
    a, a_email, a_token = new_tenant(server)
    b, b_email, b_token = new_tenant(server)
    b_user = make_user(server, b_token, "developer")
    return {"a": a, "a_email": a_email, "a_token": a_token,
            "b": b, "b_email": b_email, "b_token": b_token, "b_user": b_user}


# --- tenants -----------------------------------------------------------------

def test_create_tenant_answer(server):
    name = unique("acme")
    email = unique("boss") + "@tenant.test"
    r = server.session(server.admin_token()).post(
        server.url + "/v1/tenants",
        json={"name": name, "admin": {"email": email, "password": TENANT_ADMIN_PASSWORD}})
    assert r.status_code == 201, r.text
    t = r.json()
    assert re.fullmatch(r"ten_[0-9a-f]{32}", t["id"]), t
    assert t["name"] == name
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", t["created_at"]), t
    assert t["quotas"] == DEFAULT_QUOTAS
    assert re.fullmatch(r"usr_[0-9a-f]{32}", t["admin"]["id"])
    assert t["admin"]["email"] == email and t["admin"]["role"] == "admin"
    assert TENANT_ADMIN_PASSWORD not in r.text

    got = server.session(server.admin_token()).get(server.url + "/v1/tenants/" + t["id"])
    assert got.status_code == 200, got.text
    g = got.json()
    assert (g["id"], g["name"], g["created_at"], g["quotas"]) == \
        (t["id"], name, t["created_at"], DEFAULT_QUOTAS)


def test_tenant_list_and_rename(server, world):
    s = server.session(server.admin_token())
    items, _ = list_all(server, server.admin_token(), "/v1/tenants")
    ids = [t["id"] for t in items]
    assert world["a"]["id"] in ids and world["b"]["id"] in ids
    assert len(ids) == len(set(ids))

    t, _, _ = new_tenant(server)
    new_name = unique("renamed")
    r = s.patch(server.url + "/v1/tenants/" + t["id"], json={"name": new_name})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == new_name and r.json()["id"] == t["id"]
    assert s.get(server.url + "/v1/tenants/" + t["id"]).json()["name"] == new_name
    check_error(s.patch(server.url + "/v1/tenants/" + t["id"], json={"name": "x", "owner": "y"}),
                400, "bad_request")
    check_error(s.get(server.url + "/v1/tenants/" + random_id("ten")), 404, "not_found")


@pytest.mark.parametrize("body", [
    {"name": "t"},
    {"admin": {"email": "nameless@tenant.test", "password": TENANT_ADMIN_PASSWORD}},
    {"name": "t", "admin": {"email": "weak@tenant.test", "password": "short-pw-11"}},
    {"name": "t", "admin": {"email": "x@tenant.test", "password": TENANT_ADMIN_PASSWORD},
     "plan": "gold"},
    {"name": "t", "admin": {"email": "x@tenant.test", "password": TENANT_ADMIN_PASSWORD,
                            "role": "admin"}},
])
def test_create_tenant_refuses_bad_bodies(server, body):
    r = server.session(server.admin_token()).post(server.url + "/v1/tenants", json=body)
    check_error(r, 400, "bad_request")


def test_quotas(server, world):
    admin = server.session(server.admin_token())
    t, admin_email, t_token = new_tenant(server)
    dev = make_user(server, t_token, "developer")

    r = server.session(t_token).get(server.url + "/v1/quotas")
    assert r.status_code == 200, r.text
    zero = {"cpu_cores": 0, "memory_mb": 0, "containers": 0, "storage_mb": 0}
    assert r.json() == {"limits": DEFAULT_QUOTAS, "usage": zero}

    quotas = {"cpu_cores": 2.5, "memory_mb": 4096, "containers": 5, "storage_mb": 2048}
    r = admin.put(server.url + "/v1/tenants/%s/quotas" % t["id"], json=quotas)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == t["id"] and r.json()["quotas"] == quotas
    assert admin.get(server.url + "/v1/tenants/" + t["id"]).json()["quotas"] == quotas

    # cpu_cores is a number: an integer is as good as a real.
    whole = dict(quotas, cpu_cores=3)
    r = admin.put(server.url + "/v1/tenants/%s/quotas" % t["id"], json=whole)
    assert r.status_code == 200, r.text
    assert r.json()["quotas"] == whole
    r = admin.put(server.url + "/v1/tenants/%s/quotas" % t["id"], json=quotas)
    assert r.status_code == 200, r.text

    # Any member of the tenant reads its quotas.
    r = server.session(token_of(server, dev["email"])).get(server.url + "/v1/quotas")
    assert r.status_code == 200, r.text
    assert r.json() == {"limits": quotas, "usage": zero}
    # Another tenant's quotas are untouched.
    r = server.session(world["b_token"]).get(server.url + "/v1/quotas")
    assert r.json()["limits"] == DEFAULT_QUOTAS

    # Tenant members cannot change quotas; the platform admin has no tenant quotas.
    check_error(server.session(t_token).put(server.url + "/v1/tenants/%s/quotas" % t["id"],
                                            json=DEFAULT_QUOTAS), 403, "forbidden")
    check_error(admin.get(server.url + "/v1/quotas"), 403, "forbidden")
    check_error(admin.put(server.url + "/v1/tenants/%s/quotas" % random_id("ten"),
                          json=DEFAULT_QUOTAS), 404, "not_found")


@pytest.mark.parametrize("quotas", [
    {"cpu_cores": 2, "memory_mb": 4096, "containers": 5},                       # one missing
    {"cpu_cores": 2, "memory_mb": 4096, "containers": 5, "storage_mb": 1, "gpus": 1},
    {"cpu_cores": 2, "memory_mb": 4096.5, "containers": 5, "storage_mb": 1},   # not an int
    {"cpu_cores": "2", "memory_mb": 4096, "containers": 5, "storage_mb": 1},
    {"cpu_cores": -1, "memory_mb": 4096, "containers": 5, "storage_mb": 1},     # int < 0
    {"cpu_cores": 0, "memory_mb": 4096, "containers": 5, "storage_mb": 1},
    {"cpu_cores": -0.5, "memory_mb": 4096, "containers": 5, "storage_mb": 1},
    {"cpu_cores": 2, "memory_mb": -4096, "containers": 5, "storage_mb": 1},
    {"cpu_cores": 2, "memory_mb": 4096, "containers": -5, "storage_mb": 1},
    {"cpu_cores": 2, "memory_mb": 4096, "containers": 5, "storage_mb": -1},
])
def test_put_quotas_refuses_bad_bodies(server, world, quotas):
    admin = server.session(server.admin_token())
    url = server.url + "/v1/tenants/" + world["a"]["id"]
    before = admin.get(url).json()["quotas"]
    r = admin.put(url + "/quotas", json=quotas)
    check_error(r, 400, "bad_request")
    assert admin.get(url).json()["quotas"] == before


# --- users ---------------------------------------------------------------------

def test_admin_creates_users_of_each_role(server, world):
    for role in ROLES:
        email = unique(role) + "@tenant.test"
        r = create_user(server, world["a_token"], role, email=email)
        assert r.status_code == 201, r.text
        u = r.json()
        assert re.fullmatch(r"usr_[0-9a-f]{32}", u["id"]), u
        assert (u["email"], u["role"]) == (email, role)
        assert "created_at" in u
        assert not {"password", "password_hash", "hash"} & set(u), u
        assert USER_PASSWORD not in r.text and "$argon2" not in r.text

        me = server.session(token_of(server, email)).get(server.url + "/v1/me").json()
        assert (me["id"], me["email"], me["tenant_id"], me["role"]) == \
            (u["id"], email, world["a"]["id"], role)

        got = server.session(world["a_token"]).get(server.url + "/v1/users/" + u["id"])
        assert got.status_code == 200, got.text
        assert (got.json()["id"], got.json()["email"], got.json()["role"]) == (u["id"], email, role)
        assert "$argon2" not in got.text


def test_password_length_limits(server, world):
    check_error(create_user(server, world["a_token"], "developer", password="a" * 11),
                400, "bad_request")
    check_error(create_user(server, world["a_token"], "developer", password="a" * 1025),
                400, "bad_request")
    email = unique("twelve") + "@tenant.test"
    r = create_user(server, world["a_token"], "developer", email=email, password="b" * 12)
    assert r.status_code == 201, r.text
    assert post_login(server, email, "b" * 12).status_code == 200


@pytest.mark.parametrize("body", [
    {"email": "r@tenant.test", "password": USER_PASSWORD, "role": "platform_admin"},
    {"email": "r@tenant.test", "password": USER_PASSWORD, "role": "superuser"},
    {"email": "r@tenant.test", "password": USER_PASSWORD},
    {"email": "r@tenant.test", "role": "developer"},
    {"password": USER_PASSWORD, "role": "developer"},
    {"email": "r@tenant.test", "password": USER_PASSWORD, "role": "developer",
     "tenant_id": "ten_" + "0" * 32},
])
def test_create_user_refuses_bad_bodies(server, world, body):
    check_error(server.session(world["a_token"]).post(server.url + "/v1/users", json=body),
                400, "bad_request")


def test_duplicate_email_is_refused_across_the_platform(server, world):
    email = unique("dup") + "@tenant.test"
    assert create_user(server, world["a_token"], "developer", email=email).status_code == 201
    check_error(create_user(server, world["a_token"], "operator", email=email), 409, "conflict")
    check_error(create_user(server, world["b_token"], "developer", email=email), 409, "conflict")
    check_error(create_user(server, world["a_token"], "developer", email=email.upper()),
                409, "conflict")
    check_error(create_user(server, world["b_token"], "developer",
                            email=email[0].upper() + email[1:]), 409, "conflict")
    check_error(create_user(server, world["a_token"], "developer", email=server.admin_email),
                409, "conflict")
    # A new tenant's first admin is subject to the same rule.
    r = server.session(server.admin_token()).post(
        server.url + "/v1/tenants",
        json={"name": unique("t"), "admin": {"email": email.upper(), "password": TENANT_ADMIN_PASSWORD}})
    check_error(r, 409, "conflict")
    # Emails compare in lower case at login too.
    assert post_login(server, email.upper(), USER_PASSWORD).status_code == 200


def test_other_tenants_ids_answer_404_like_absent_ones(server, world):
    a = server.session(world["a_token"])
    theirs = world["b_user"]["id"]
    absent = random_id("usr")
    for method, body in (("GET", None), ("PATCH", {"role": "readonly"}), ("DELETE", None)):
        r_theirs = a.request(method, server.url + "/v1/users/" + theirs, json=body)
        r_absent = a.request(method, server.url + "/v1/users/" + absent, json=body)
        check_error(r_theirs, 404, "not_found")
        check_error(r_absent, 404, "not_found")
        assert without_request_id(r_theirs) == without_request_id(r_absent), method
        assert r_theirs.headers["Content-Type"] == r_absent.headers["Content-Type"]
    # B's user was neither changed nor deleted.
    r = server.session(world["b_token"]).get(server.url + "/v1/users/" + theirs)
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "developer"


def test_user_list_is_per_tenant(server, world):
    make_user(server, world["a_token"], "readonly")
    a_items, _ = list_all(server, world["a_token"], "/v1/users")
    b_items, _ = list_all(server, world["b_token"], "/v1/users")
    a_ids = {u["id"] for u in a_items}
    a_emails = {u["email"] for u in a_items}
    assert world["a"]["admin"]["id"] in a_ids
    assert world["b_user"]["id"] not in a_ids and world["b"]["admin"]["id"] not in a_ids
    assert world["b_user"]["email"] not in a_emails and world["b_email"] not in a_emails
    assert not a_ids & {u["id"] for u in b_items}
    for u in a_items:
        assert "$argon2" not in repr(u) and "password" not in u


@pytest.mark.parametrize("role", ["operator", "developer", "readonly"])
def test_non_admins_cannot_manage_users(server, world, role):
    u = make_user(server, world["a_token"], role)
    s = server.session(token_of(server, u["email"]))
    check_error(create_user(server, token_of(server, u["email"]), "developer"), 403, "forbidden")
    check_error(s.get(server.url + "/v1/users"), 403, "forbidden")
    check_error(s.get(server.url + "/v1/users/" + u["id"]), 403, "forbidden")
    check_error(s.patch(server.url + "/v1/users/" + u["id"], json={"role": "admin"}),
                403, "forbidden")
    check_error(s.delete(server.url + "/v1/users/" + world["a"]["admin"]["id"]), 403, "forbidden")
    # Still what it was.
    r = server.session(world["a_token"]).get(server.url + "/v1/users/" + u["id"])
    assert r.json()["role"] == role


def test_platform_admin_cannot_use_the_tenant_api(server, world):
    s = server.session(server.admin_token())
    check_error(s.get(server.url + "/v1/users"), 403, "forbidden")
    check_error(s.get(server.url + "/v1/users/" + world["b_user"]["id"]), 403, "forbidden")
    check_error(s.post(server.url + "/v1/users",
                       json={"email": unique("p") + "@tenant.test", "password": USER_PASSWORD,
                             "role": "admin"}), 403, "forbidden")


def test_tenant_admin_cannot_use_the_platform_api(server, world):
    s = server.session(world["a_token"])
    check_error(s.get(server.url + "/v1/tenants"), 403, "forbidden")
    check_error(s.get(server.url + "/v1/tenants/" + world["a"]["id"]), 403, "forbidden")
    check_error(s.post(server.url + "/v1/tenants",
                       json={"name": "x", "admin": {"email": unique("p") + "@tenant.test",
                                                    "password": TENANT_ADMIN_PASSWORD}}),
                403, "forbidden")
    check_error(s.put(server.url + "/v1/tenants/%s/quotas" % world["a"]["id"],
                      json=DEFAULT_QUOTAS), 403, "forbidden")
    check_error(s.delete(server.url + "/v1/tenants/" + world["b"]["id"]), 403, "forbidden")


def test_patch_role_and_password(server, world):
    s = server.session(world["a_token"])
    u = make_user(server, world["a_token"], "developer")
    r = s.patch(server.url + "/v1/users/" + u["id"], json={"role": "operator"})
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["role"], r.json()["email"]) == (u["id"], "operator", u["email"])
    assert s.get(server.url + "/v1/users/" + u["id"]).json()["role"] == "operator"
    me = server.session(token_of(server, u["email"])).get(server.url + "/v1/me").json()
    assert me["role"] == "operator"

    check_error(s.patch(server.url + "/v1/users/" + u["id"], json={"role": "platform_admin"}),
                400, "bad_request")
    check_error(s.patch(server.url + "/v1/users/" + u["id"], json={"email": "new@tenant.test"}),
                400, "bad_request")
    check_error(s.patch(server.url + "/v1/users/" + u["id"], json={"password": "short"}),
                400, "bad_request")

    r = s.patch(server.url + "/v1/users/" + u["id"], json={"password": "a-new-password-42"})
    assert r.status_code == 200, r.text
    assert post_login(server, u["email"], "a-new-password-42").status_code == 200
    check_error(post_login(server, u["email"], USER_PASSWORD), 401, "unauthorized")


def test_delete_user(server, world):
    s = server.session(world["a_token"])
    u = make_user(server, world["a_token"], "developer")
    tokens = server.login(u["email"], USER_PASSWORD)
    r = s.delete(server.url + "/v1/users/" + u["id"])
    assert r.status_code == 204, r.text
    assert r.content == b""
    check_error(post_login(server, u["email"], USER_PASSWORD), 401, "unauthorized")
    check_error(s.get(server.url + "/v1/users/" + u["id"]), 404, "not_found")
    check_error(s.delete(server.url + "/v1/users/" + u["id"]), 404, "not_found")
    # A deleted user's session cannot be renewed.
    r = server.session().post(server.url + "/v1/auth/refresh",
                              json={"refresh_token": tokens["refresh_token"]})
    check_error(r, 401, "unauthorized")
    # The email is free again.
    assert create_user(server, world["a_token"], "readonly", email=u["email"]).status_code == 201


def test_deleted_admin_keeps_no_power(server, world):
    """A removed admin's unexpired access token must not keep admin powers
    (in particular it must not mint an API key, which never expires)."""
    s = server.session(world["a_token"])
    r = create_user(server, world["a_token"], "admin")
    assert r.status_code == 201, r.text
    gone = r.json()
    token = token_of(server, gone["email"])
    assert s.delete(server.url + "/v1/users/" + gone["id"]).status_code == 204
    t = server.session(token)
    email = unique("by-deleted") + "@tenant.test"
    check_error(create_user(server, token, "admin", email=email), 401, "unauthorized")
    check_error(t.post(server.url + "/v1/api-keys", json={"name": "k", "role": "admin"}),
                401, "unauthorized")
    check_error(t.get(server.url + "/v1/users"), 401, "unauthorized")
    check_error(t.get(server.url + "/v1/me"), 401, "unauthorized")
    check_error(post_login(server, email, USER_PASSWORD), 401, "unauthorized")


def test_demoted_admin_loses_admin_powers(server, world):
    """After PATCH role admin -> readonly, the old token may be refused (401)
    or judged by the current role (403); it may not act as an admin."""
    s = server.session(world["a_token"])
    r = create_user(server, world["a_token"], "admin")
    assert r.status_code == 201, r.text
    demoted = r.json()
    token = token_of(server, demoted["email"])
    r = s.patch(server.url + "/v1/users/" + demoted["id"], json={"role": "readonly"})
    assert r.status_code == 200, r.text
    email = unique("by-demoted") + "@tenant.test"
    r = create_user(server, token, "admin", email=email)
    assert r.status_code in (401, 403), (r.status_code, r.text)
    check_error(r, r.status_code, {401: "unauthorized", 403: "forbidden"}[r.status_code])
    r = server.session(token).post(server.url + "/v1/api-keys", json={"name": "k", "role": "admin"})
    assert r.status_code in (401, 403), (r.status_code, r.text)
    listed = {u["email"] for u in list_all(server, world["a_token"], "/v1/users")[0]}
    assert email not in listed


# --- paging --------------------------------------------------------------------

def test_user_list_paging(server):
    t, _, token = new_tenant(server)
    ids = {t["admin"]["id"]}
    for _ in range(7):
        ids.add(make_user(server, token, "readonly")["id"])
    assert len(ids) == 8

    items, pages = list_all(server, token, "/v1/users", limit=3)
    assert [len(p) for p in pages] == [3, 3, 2]
    got = [u["id"] for u in items]
    assert len(got) == len(set(got)), "duplicates across pages"
    assert set(got) == ids
    assert got == sorted(got), "items are ordered by id (docs/api.md)"

    items, pages = list_all(server, token, "/v1/users", limit=4)
    got = [u["id"] for u in items]
    assert len(got) == len(set(got)) and set(got) == ids
    assert [len(p) for p in pages] in ([4, 4], [4, 4, 0])

    r = server.session(token).get(server.url + "/v1/users")
    assert r.status_code == 200
    assert {u["id"] for u in r.json()["items"]} == ids and r.json()["next_cursor"] is None
    r = server.session(token).get(server.url + "/v1/users", params={"limit": 500})
    assert r.status_code == 200 and len(r.json()["items"]) == 8


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "501"}, {"limit": "-1"}, {"limit": "abc"}, {"limit": "3abc"},
    {"limit": "1e2"}, {"limit": ""}, {"limit": "99999999999999999999"},
    {"cursor": "not-a-cursor"}, {"cursor": "%%%"}, {"cursor": "A" * 2000},
])
def test_user_list_bad_paging_parameters(server, world, params):
    r = server.session(world["a_token"]).get(server.url + "/v1/users", params=params)
    check_error(r, 400, "bad_request")


# --- tenant deletion -------------------------------------------------------------

def test_delete_tenant(server):
    admin = server.session(server.admin_token())
    t, admin_email, token = new_tenant(server)
    u = make_user(server, token, "developer")

    r = admin.delete(server.url + "/v1/tenants/" + t["id"])
    assert r.status_code == 204, r.text
    assert r.content == b""
    check_error(post_login(server, admin_email, TENANT_ADMIN_PASSWORD), 401, "unauthorized")
    check_error(post_login(server, u["email"], USER_PASSWORD), 401, "unauthorized")
    check_error(admin.get(server.url + "/v1/tenants/" + t["id"]), 404, "not_found")
    check_error(admin.delete(server.url + "/v1/tenants/" + t["id"]), 404, "not_found")
    items, _ = list_all(server, server.admin_token(), "/v1/tenants")
    assert t["id"] not in {x["id"] for x in items}

    # Its emails can be used again.
    r = admin.post(server.url + "/v1/tenants",
                   json={"name": unique("again"),
                         "admin": {"email": admin_email, "password": TENANT_ADMIN_PASSWORD}})
    assert r.status_code == 201, r.text


def test_deleted_tenants_tokens_stop_working(server):
    t, _, token = new_tenant(server)
    assert server.session(token).get(server.url + "/v1/me").status_code == 200
    r = server.session(server.admin_token()).delete(server.url + "/v1/tenants/" + t["id"])
    assert r.status_code == 204, r.text
    check_error(server.session(token).get(server.url + "/v1/me"), 401, "unauthorized")
    check_error(server.session(token).get(server.url + "/v1/users"), 401, "unauthorized")


def test_tenant_with_running_workload_is_not_deleted(server):
    """DELETE waits until the tenant runs nothing: its data files stay (SPEC §4 / issue 2)."""
    import os
    tenant, email, token = new_tenant(server)
    db = os.path.join(server.data_dir, "tenants", tenant["id"] + ".db")
    assert os.path.exists(db)
    s = server.session(token)
    r = s.post(server.url + "/v1/deployments", json={
        "name": "web", "image": "odysseus-test/busybox:1", "replicas": 1,
        "resources": {"cpu_millicores": 500, "memory_mb": 256}})
    assert r.status_code == 201, r.text
    admin = server.session(server.admin_token())
    r = admin.delete(server.url + "/v1/tenants/" + tenant["id"])
    check_error(r, 409, "conflict")
    assert os.path.exists(db)
    usage = s.get(server.url + "/v1/quotas").json()["usage"]
    assert usage == {"cpu_cores": 0.5, "memory_mb": 256, "containers": 1, "storage_mb": 0}
    assert s.post(server.url + "/v1/deployments/web/scale", json={"replicas": 0}).status_code == 200
    r = admin.delete(server.url + "/v1/tenants/" + tenant["id"])
    assert r.status_code == 204, r.text
    assert not os.path.exists(db)
    check_error(post_login(server, email, TENANT_ADMIN_PASSWORD), 401, "unauthorized")
