"""The audit log through the API (SPEC §9 and §3, issue 4): GET /v1/audit,
/v1/audit/checkpoints and /v1/audit/proof against a real odysseusd.

What is checked, and against what:
- Every state change, sign-in and denial makes exactly one record with the
  right actor, tenant, action, resource, outcome and reason. "Exactly one"
  is counted in the audit file itself (<data>/audit.db, read with Python's
  sqlite3, read-only), so a copy in another tenant would be seen too.
  Platform-scope records (tenant.*, failed logins, 401s) are only in the
  file: no API caller may read them (the platform administrator has no
  audit:read).
- A failed login names the email tried, never the password: the password's
  bytes are searched for in every file of the data directory and in the
  server log. Refresh and access tokens likewise.
- Tenant scope: tenant B's Admin never sees tenant A's records, whatever
  the filters; a Developer sees its own actions only (asking for someone
  else's gives an empty list); an Operator sees all of its tenant's.
- Filters, cursor paging and their 400s; reading is itself audited.
- Tamper evidence, recomputed here independently of src/audit: each
  record's canonical bytes (src/audit/audit.h) and hash, the chain links,
  RFC 6962 Merkle roots, Ed25519 checkpoint signatures (the message of
  audit_checkpoint_message), inclusion and consistency proofs (verified
  with the RFC 9162 §2.1.3.2 / §2.1.4.2 algorithms). The encoder is first
  checked against the golden vector of docs/audit.md. Signatures use the
  `cryptography` module (python3-cryptography) when present, else
  `openssl pkeyutl`.
- Over 4,096 records (one read-index bucket) from concurrent callers,
  every filter and page equals what the file says, read at once and after
  the writer has indexed.
- Every audit answer fits docs/openapi.yaml (test_openapi's validator).
"""
import base64
import calendar
import concurrent.futures
import hashlib
import itertools
import os
import random
import sqlite3
import struct
import subprocess
import tempfile
import time

import pytest
import yaml

from conftest import (ADMIN_PASSWORD, ROOT, TENANT_ADMIN_PASSWORD, USER_PASSWORD, Server,
                      check_error, make_user, new_tenant, unique)
from test_openapi import check as oas_check

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # python3-cryptography missing: verify with the openssl CLI instead
    Ed25519PublicKey = None

ZERO = b"\0" * 32


# --- independent re-implementation of the record bytes, hashes, tree, signature ---

def time_ns(rfc3339):
    """'2026-11-28T17:19:26.082126579Z' -> ns since the epoch (9 digits required)."""
    assert len(rfc3339) == 30 and rfc3339[19] == "." and rfc3339.endswith("Z"), rfc3339
    secs = calendar.timegm(time.strptime(rfc3339[:19], "%Y-%m-%dT%H:%M:%S"))
    return secs * 10**9 + int(rfc3339[20:29])


def _str(v):
    b = (v or "").encode("utf-8")
    return struct.pack(">I", len(b)) + b


def canonical(rec):
    """canonical(r) of src/audit/audit.h from a record as the API shows it."""
    return (b"\x01" + struct.pack(">Qq", rec["seq"], rec.get("time_ns") or time_ns(rec["time"]))
            + _str(rec["actor"]["type"]) + _str(rec["actor"]["id"]) + _str(rec["actor"]["email"])
            + _str(rec["tenant_id"]) + _str(rec["action"]) + _str(rec["resource"])
            + _str(rec["outcome"]) + _str(rec["reason"]) + _str(rec["request_id"])
            + _str(rec["source_ip"]))


def sha256(*parts):
    return hashlib.sha256(b"".join(parts)).digest()


def record_hash(rec):
    return sha256(bytes.fromhex(rec["prev_hash"]), canonical(rec))


def leaf_hash(rec):
    return sha256(b"\x00", canonical(rec))


def node(left, right):
    return sha256(b"\x01", left, right)


def mth(leaves):
    """RFC 6962 §2.1 Merkle Tree Hash."""
    n = len(leaves)
    if n == 0:
        return sha256()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(index, size, leaf, path, root):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, path):
    """RFC 9162 §2.1.4.2."""
    if first == second:
        return not path and first_root == second_root
    if first > second or not path:
        return False
    if first & (first - 1) == 0:  # a power of two: the old root is the first node
        path = [first_root] + list(path)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def checkpoint_message(cp):
    """audit_checkpoint_message (src/audit/record.c)."""
    return (b"odysseus-audit-checkpoint-v1\x00" + struct.pack(">Qq", cp["tree_size"], time_ns(cp["time"]))
            + bytes.fromhex(cp["root_hash"]))


ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def ed25519_verify(pub, msg, sig):
    if Ed25519PublicKey is not None:
        try:
            Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
            return True
        except InvalidSignature:
            return False
    with tempfile.TemporaryDirectory() as d:
        der = os.path.join(d, "pub.der")
        for name, data in (("pub.der", ED25519_SPKI_PREFIX + pub), ("msg", msg), ("sig", sig)):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER",
                            "-inkey", der, "-rawin", "-in", os.path.join(d, "msg"),
                            "-sigfile", os.path.join(d, "sig")], capture_output=True)
        return r.returncode == 0


def pem_public_key(path):
    """The raw 32-byte public half of the Ed25519 key in a PEM file (openssl CLI)."""
    r = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(ED25519_SPKI_PREFIX) and len(r.stdout) == 44, r.stdout.hex()
    return r.stdout[-32:]


def key_id(pub):
    return base64.urlsafe_b64encode(hashlib.sha256(pub).digest()[:12]).rstrip(b"=").decode()


def test_encoding_matches_the_documented_vector():
    """This file's encoder against the golden vector of docs/audit.md, so
    the checks below are checks against the documented format."""
    rec = {"seq": 1, "time_ns": 1700000000123456789,
           "actor": {"type": "user", "id": "usr_1", "email": "a@example.com"},
           "tenant_id": "ten_1", "action": "user.create", "resource": "users/usr_2",
           "outcome": "success", "reason": "", "request_id": "req_1", "source_ip": "192.0.2.1",
           "prev_hash": ZERO.hex()}
    assert canonical(rec).hex() == (
        "01" "0000000000000001" "17979cfe3d85cd15" "00000004" "75736572" "00000005" "7573725f31"
        "0000000d" "61406578616d706c652e636f6d" "00000005" "74656e5f31"
        "0000000b" "757365722e637265617465" "0000000b" "75736572732f7573725f32"
        "00000007" "73756363657373" "00000000" "00000005" "7265715f31"
        "00000009" "3139322e302e322e31")
    assert record_hash(rec).hex() == "dc002390d82acc923fd3b3d1fb0ec84fae44bfd66cd662ea460060a19266a8f9"
    assert leaf_hash(rec).hex() == "26c15e452dc5bd2b58a2f0ed338cdbde190bf229767e73982432f33d8a3cb8f3"
    # RFC 6962 shapes: one leaf is its own root; three leaves split 2 + 1.
    a, b, c = sha256(b"a"), sha256(b"b"), sha256(b"c")
    assert mth([a]) == a and mth([a, b, c]) == node(node(a, b), c)
    assert verify_inclusion(2, 3, c, [node(a, b)], mth([a, b, c]))
    assert verify_consistency(2, 3, node(a, b), mth([a, b, c]), [c])


# --- the audit file, read directly --------------------------------------------------

def db_records(srv):
    """Every record of <data>/audit.db in seq order, shaped like the API's
    records (tenant_id None for the platform), plus time_ns and leaf_hash."""
    path = os.path.join(srv.data_dir, "audit.db")
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    try:
        rows = con.execute(
            "SELECT seq, time_ns, actor_type, actor_id, actor_email, tenant_id, action, resource,"
            " outcome, reason, request_id, source_ip, prev_hash, hash, leaf_hash"
            " FROM records ORDER BY seq").fetchall()
    finally:
        con.close()
    out = []
    for (seq, tns, atype, aid, aemail, tenant, action, resource, outcome, reason, rid, ip,
         prev, h, leaf) in rows:
        out.append({"seq": seq, "time_ns": tns,
                    "actor": {"type": atype, "id": aid, "email": aemail},
                    "tenant_id": tenant or None, "action": action, "resource": resource,
                    "outcome": outcome, "reason": reason, "request_id": rid, "source_ip": ip,
                    "prev_hash": prev.hex(), "hash": h.hex(), "leaf_hash": leaf.hex()})
    return out


def db_with_rid(srv, rid, wait=True):
    """The file's records with this request id; waits (up to 10 s) for the
    first one, since denials on unaudited routes are written by a queue."""
    deadline = time.time() + 10
    while True:
        found = [r for r in db_records(srv) if r["request_id"] == rid]
        if found or not wait or time.time() > deadline:
            return found
        time.sleep(0.05)


def files_under(d):
    for base, _, names in os.walk(d):
        for n in names:
            yield os.path.join(base, n)


# --- API helpers ---------------------------------------------------------------------

_n = itertools.count()


def rid(tag):
    return "audit-%d-%d-%s" % (os.getpid(), next(_n), tag)


def call(srv, token, method, path, rid_tag="x", **kw):
    """One request with a fresh X-Request-Id; returns (response, request id)."""
    request_id = rid(rid_tag)
    headers = dict(kw.pop("headers", {}), **{"X-Request-Id": request_id})
    r = srv.session(token).request(method, srv.url + path, headers=headers, **kw)
    assert r.headers.get("X-Request-Id") == request_id
    return r, request_id


def audit_page(srv, token, **params):
    r = srv.session(token).get(srv.url + "/v1/audit", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"items", "next_cursor"}, body
    return body


def audit_all(srv, token, **params):
    """Every record the caller may see with these filters, following next_cursor."""
    params.setdefault("limit", 500)
    items = []
    for _ in range(1000):
        body = audit_page(srv, token, **params)
        items += body["items"]
        if body["next_cursor"] is None:
            return items
        params["cursor"] = body["next_cursor"]
    raise AssertionError("paging never ended")


def with_rid(items, request_id):
    return [i for i in items if i["request_id"] == request_id]


def api_view(rec):
    """A file record as the API shows it."""
    return {k: v for k, v in rec.items() if k not in ("time_ns", "leaf_hash")}


def same_record(api_rec, db_rec):
    want = api_view(db_rec)
    got = dict(api_rec)
    assert time_ns(got.pop("time")) == db_rec["time_ns"], (api_rec, db_rec)
    assert got == want, (got, want)


def expect_one(srv, request_id, *, actor_type, actor_id, tenant, action, resource, outcome,
               reason="", email=None):
    """Exactly one record in the whole file has this request id, with these fields."""
    found = db_with_rid(srv, request_id)
    assert len(found) == 1, found
    rec = found[0]
    got = (rec["actor"]["type"], rec["actor"]["id"], rec["tenant_id"], rec["action"],
           rec["resource"], rec["outcome"], rec["reason"])
    assert got == (actor_type, actor_id, tenant, action, resource, outcome, reason), rec
    if email is not None:
        assert rec["actor"]["email"] == email, rec
    assert rec["source_ip"] == "127.0.0.1", rec
    return rec


def wait_for_checkpoint(srv, token, size, timeout=10):
    """GET /v1/audit/checkpoints until one covers at least `size` records
    (they are signed 1 s after the oldest unsigned record)."""
    deadline = time.time() + timeout
    time.sleep(1.2)
    while True:
        r = srv.session(token).get(srv.url + "/v1/audit/checkpoints")
        assert r.status_code == 200, r.text
        body = r.json()
        if body["items"] and body["items"][-1]["tree_size"] >= size:
            return body
        assert time.time() < deadline, "no checkpoint of %d records: %s" % (size, body)
        time.sleep(0.2)


# --- fixtures --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def oas():
    with open(os.path.join(ROOT, "docs", "openapi.yaml")) as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def srv():
    """This file's own server, so its audit file holds this file's records only."""
    with tempfile.TemporaryDirectory(prefix="odx-audit-") as d:
        s = Server(d)
        yield s
        rc = s.stop()
        assert rc == 0, "odysseusd exited %s:\n%s" % (rc, s.logs())


class World:
    """Tenant A (an Admin, one user per other role, a Developer API key) and
    tenant B (an Admin and a user)."""

    def __init__(self, srv):
        self.platform = srv.admin_token()
        self.platform_id = self.me(srv, self.platform)["id"]
        self.tenant_a, self.a_email, self.a_admin = new_tenant(srv)
        self.a_admin_id = self.me(srv, self.a_admin)["id"]
        self.users, self.tokens = {}, {"admin": self.a_admin}
        for role in ("operator", "developer", "readonly"):
            self.users[role] = make_user(srv, self.a_admin, role)
            self.tokens[role] = srv.login(self.users[role]["email"], USER_PASSWORD)["access_token"]
        r = srv.session(self.a_admin).post(srv.url + "/v1/api-keys",
                                           json={"name": unique("dev-key"), "role": "developer"})
        assert r.status_code == 201, r.text
        self.dev_key = r.json()
        self.tenant_b, self.b_email, self.b_admin = new_tenant(srv)
        self.b_admin_id = self.me(srv, self.b_admin)["id"]
        self.b_user = make_user(srv, self.b_admin, "operator")
        self.a = self.tenant_a["id"]
        self.b = self.tenant_b["id"]

    @staticmethod
    def me(srv, token):
        r = srv.session(token).get(srv.url + "/v1/me")
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def w(srv):
    return World(srv)


# --- every state change: one record each -----------------------------------------------

def test_tenant_state_changes_make_exactly_one_record_each(srv, w):
    A, admin = w.a, w.a_admin
    one = dict(actor_type="user", actor_id=w.a_admin_id, tenant=A, outcome="success")

    email = unique("audited") + "@tenant.test"
    r, i = call(srv, admin, "POST", "/v1/users", json={"email": email, "password": USER_PASSWORD,
                                                       "role": "developer"})
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    expect_one(srv, i, action="user.create", resource="/v1/users/" + uid, **one)
    r, i = call(srv, admin, "PATCH", "/v1/users/" + uid, json={"role": "operator"})
    assert r.status_code == 200, r.text
    expect_one(srv, i, action="user.update", resource="/v1/users/" + uid, **one)

    r, i = call(srv, admin, "POST", "/v1/api-keys", json={"name": unique("k"), "role": "readonly"})
    assert r.status_code == 201, r.text
    key = r.json()
    expect_one(srv, i, action="api_key.create", resource="/v1/api-keys/" + key["id"], **one)

    name = unique("set")
    r, i = call(srv, admin, "POST", "/v1/permission-sets", json={"name": name, "rules": []})
    assert r.status_code == 201, r.text
    expect_one(srv, i, action="permission_set.create", resource="/v1/permission-sets/" + name, **one)
    r, i = call(srv, admin, "PUT", "/v1/permission-sets/" + name, json={
        "rules": [{"effect": "allow", "method": "GET", "path": "/v1/users"}]})
    assert r.status_code == 200, r.text
    expect_one(srv, i, action="permission_set.update", resource="/v1/permission-sets/" + name, **one)
    r, i = call(srv, admin, "DELETE", "/v1/permission-sets/" + name)
    assert r.status_code == 204, r.text
    expect_one(srv, i, action="permission_set.delete", resource="/v1/permission-sets/" + name, **one)

    r, i = call(srv, admin, "DELETE", "/v1/api-keys/" + key["id"])
    assert r.status_code == 204, r.text
    expect_one(srv, i, action="api_key.delete", resource="/v1/api-keys/" + key["id"], **one)

    # Sign-ins: the user who signed in is the actor (and, at login, its email).
    r, i = call(srv, None, "POST", "/v1/auth/login", json={"email": email, "password": USER_PASSWORD})
    assert r.status_code == 200, r.text
    pair = r.json()
    sign = dict(actor_type="user", actor_id=uid, tenant=A, outcome="success")
    expect_one(srv, i, action="auth.login", resource="/v1/auth/login", email=email, **sign)
    r, i = call(srv, None, "POST", "/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 200, r.text
    pair = r.json()
    expect_one(srv, i, action="auth.refresh", resource="/v1/auth/refresh", **sign)
    r, i = call(srv, pair["access_token"], "POST", "/v1/auth/logout",
                json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 204, r.text
    expect_one(srv, i, action="auth.logout", resource="/v1/auth/logout", **sign)

    r, i = call(srv, admin, "DELETE", "/v1/users/" + uid)
    assert r.status_code == 204, r.text
    expect_one(srv, i, action="user.delete", resource="/v1/users/" + uid, **one)

    # The tenant's Admin reads each of them back, identical to the file.
    listed = audit_all(srv, admin)
    by_rid = {rec["request_id"]: rec for rec in db_records(srv)}
    for rec in listed:
        same_record(rec, by_rid[rec["request_id"]])
    assert {"user.create", "user.update", "user.delete", "api_key.create", "api_key.delete",
            "permission_set.create", "permission_set.update", "permission_set.delete",
            "auth.login", "auth.refresh", "auth.logout"} <= {rec["action"] for rec in listed}


def test_a_users_actions_name_its_email(srv, w):
    """SPEC §9: the actor is {type, id, email}. The id alone names nobody
    once the user is deleted, so every action of a signed-in user carries
    its email, not only the login."""
    user = make_user(srv, w.a_admin, "operator")
    pair = srv.login(user["email"], USER_PASSWORD)
    r, by_user = call(srv, pair["access_token"], "GET", "/v1/audit", params={"limit": 1})
    assert r.status_code == 200, r.text
    r, logout = call(srv, pair["access_token"], "POST", "/v1/auth/logout",
                     json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 204, r.text
    r, by_admin = call(srv, w.a_admin, "DELETE", "/v1/users/" + user["id"])
    assert r.status_code == 204, r.text
    for i, actor, email in ((by_user, user["id"], user["email"]), (logout, user["id"], user["email"]),
                            (by_admin, w.a_admin_id, w.a_email)):
        rec = db_with_rid(srv, i)[0]
        assert (rec["actor"]["id"], rec["actor"]["email"]) == (actor, email), rec


def test_an_api_key_is_the_actor_of_what_it_does(srv, w):
    r = srv.session(w.a_admin).post(srv.url + "/v1/api-keys",
                                    json={"name": unique("ci"), "role": "admin"})
    assert r.status_code == 201, r.text
    key = r.json()
    r, i = call(srv, key["key"], "POST", "/v1/users", json={
        "email": unique("by-key") + "@tenant.test", "password": USER_PASSWORD, "role": "readonly"})
    assert r.status_code == 201, r.text
    rec = expect_one(srv, i, actor_type="api_key", actor_id=key["id"], tenant=w.a,
                     action="user.create", resource="/v1/users/" + r.json()["id"],
                     outcome="success")
    # The key secret is nowhere in the record.
    assert key["key"] not in repr(rec)


def test_failed_changes_are_recorded_as_failures(srv, w):
    email = unique("dup") + "@tenant.test"
    body = {"email": email, "password": USER_PASSWORD, "role": "readonly"}
    r, _ = call(srv, w.a_admin, "POST", "/v1/users", json=body)
    assert r.status_code == 201, r.text
    r, i = call(srv, w.a_admin, "POST", "/v1/users", json=body)
    check_error(r, 409, "conflict")
    expect_one(srv, i, actor_type="user", actor_id=w.a_admin_id, tenant=w.a, action="user.create",
               resource="/v1/users", outcome="failure", reason="conflict")
    r, i = call(srv, w.a_admin, "POST", "/v1/users", json=dict(body, bogus=1))
    check_error(r, 400, "bad_request")
    expect_one(srv, i, actor_type="user", actor_id=w.a_admin_id, tenant=w.a, action="user.create",
               resource="/v1/users", outcome="failure", reason="bad_request")
    r, i = call(srv, w.a_admin, "DELETE", "/v1/users/usr_" + "0" * 32)
    check_error(r, 404, "not_found")
    expect_one(srv, i, actor_type="user", actor_id=w.a_admin_id, tenant=w.a, action="user.delete",
               resource="/v1/users/usr_" + "0" * 32, outcome="failure", reason="not_found")


def test_platform_changes_are_recorded_in_the_platform_scope(srv, w):
    """tenant.* are the platform administrator's: tenant "" in the file, and
    no tenant's reader sees them."""
    one = dict(actor_type="user", actor_id=w.platform_id, tenant=None, outcome="success")
    r, i = call(srv, w.platform, "POST", "/v1/tenants", json={
        "name": unique("t"), "admin": {"email": unique("t") + "@tenant.test",
                                       "password": TENANT_ADMIN_PASSWORD}})
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    created = [expect_one(srv, i, action="tenant.create", resource="/v1/tenants/" + tid, **one)]
    r, i = call(srv, w.platform, "PATCH", "/v1/tenants/" + tid, json={"name": unique("t2")})
    assert r.status_code == 200, r.text
    created.append(expect_one(srv, i, action="tenant.update", resource="/v1/tenants/" + tid, **one))
    r, i = call(srv, w.platform, "PUT", "/v1/tenants/%s/quotas" % tid, json={
        "cpu_cores": 2, "memory_mb": 1024, "containers": 3, "storage_mb": 100})
    assert r.status_code == 200, r.text
    created.append(expect_one(srv, i, action="tenant.quotas.update",
                              resource="/v1/tenants/%s/quotas" % tid, **one))
    r, i = call(srv, w.platform, "DELETE", "/v1/tenants/" + tid)
    assert r.status_code == 204, r.text
    created.append(expect_one(srv, i, action="tenant.delete", resource="/v1/tenants/" + tid, **one))
    # The platform administrator reads the platform's own records (tenant null), only those.
    r, i = call(srv, w.platform, "GET", "/v1/audit", params={"limit": 500})
    assert r.status_code == 200, r.text
    mine = r.json()["items"]
    assert mine and all(rec["tenant_id"] is None for rec in mine)
    expect_one(srv, i, action="audit.read", resource="/v1/audit", **one)
    seen = {rec["request_id"] for rec in audit_all(srv, w.platform)}
    assert {rec["request_id"] for rec in created} <= seen
    # ...and no tenant's reader sees platform records.
    for token in (w.a_admin, w.b_admin, w.tokens["operator"]):
        seen = {rec["request_id"] for rec in audit_all(srv, token)}
        assert not seen & {rec["request_id"] for rec in created}


# --- sign-in events ---------------------------------------------------------------------

def test_failed_login_names_the_email_never_the_password(fresh_server):
    srv = fresh_server()
    tenant, email, _ = new_tenant(srv)
    wrong = "Wrong-Password-%s" % os.urandom(8).hex()
    r, i = call(srv, None, "POST", "/v1/auth/login", json={"email": email, "password": wrong})
    check_error(r, 401, "unauthorized")
    # The account exists: the attempt lands in its tenant's trail, for its Admin to see.
    expect_one(srv, i, actor_type="anonymous", actor_id="", tenant=tenant["id"],
               action="auth.login", resource="/v1/auth/login", outcome="denied",
               reason="invalid_credentials", email=email)
    # An unknown email is recorded the same way (the address tried, in lower case).
    unknown = unique("Nobody") + "@Nowhere.test"
    wrong2 = "Other-Wrong-%s" % os.urandom(8).hex()
    r, i = call(srv, None, "POST", "/v1/auth/login", json={"email": unknown, "password": wrong2})
    check_error(r, 401, "unauthorized")
    expect_one(srv, i, actor_type="anonymous", actor_id="", tenant=None, action="auth.login",
               resource="/v1/auth/login", outcome="denied", reason="invalid_credentials",
               email=unknown.lower())
    # Throttled attempts are recorded too (5 failures for an account, then 429).
    tries = []
    victim = unique("victim") + "@nowhere.test"
    for n in range(7):
        pw = "Throttle-%d-%s" % (n, os.urandom(6).hex())
        tries.append(pw)
        r, i = call(srv, None, "POST", "/v1/auth/login", json={"email": victim, "password": pw})
    check_error(r, 429, "rate_limited")
    expect_one(srv, i, actor_type="anonymous", actor_id="", tenant=None, action="auth.login",
               resource="/v1/auth/login", outcome="failure", reason="throttled", email=victim)
    # A successful login's password is not kept either.
    ok = srv.login(email, TENANT_ADMIN_PASSWORD)
    time.sleep(0.3)  # let the denial queue drain
    secrets = [wrong, wrong2, TENANT_ADMIN_PASSWORD, ADMIN_PASSWORD, ok["refresh_token"],
               ok["access_token"]] + tries
    for path in files_under(srv.data_dir):
        with open(path, "rb") as f:
            data = f.read()
        for s in secrets:
            assert s.encode() not in data, "%s found in %s" % (s, path)
    log = srv.logs()
    for s in secrets:
        assert s not in log, "%s found in the server log" % s


def test_refresh_token_reuse_is_recorded(srv, w):
    user = w.users["readonly"]
    pair = srv.login(user["email"], USER_PASSWORD)
    r, first = call(srv, None, "POST", "/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 200, r.text
    pair2 = r.json()
    r, reuse = call(srv, None, "POST", "/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    check_error(r, 401, "unauthorized")
    expect_one(srv, first, actor_type="user", actor_id=user["id"], tenant=w.a,
               action="auth.refresh", resource="/v1/auth/refresh", outcome="success")
    rec = expect_one(srv, reuse, actor_type="user", actor_id=user["id"], tenant=w.a,
                     action="auth.refresh", resource="/v1/auth/refresh", outcome="denied",
                     reason="refresh_token_reuse")
    # The family is gone: the newer token fails too (recorded, with no known actor).
    r, later = call(srv, None, "POST", "/v1/auth/refresh", json={"refresh_token": pair2["refresh_token"]})
    check_error(r, 401, "unauthorized")
    assert len(db_with_rid(srv, later)) == 1
    # The tenant's Admin sees the reuse: a security event of its own user.
    seen = with_rid(audit_all(srv, w.a_admin, outcome="denied", action="auth.refresh"), reuse)
    assert len(seen) == 1 and seen[0]["hash"] == rec["hash"], seen


# --- denials -------------------------------------------------------------------------

def test_denials_are_recorded_with_their_reason(srv, w):
    dev = w.users["developer"]
    # Role, on a route without an action: "request", the path as resource (queued).
    r, i = call(srv, w.tokens["developer"], "GET", "/v1/users")
    check_error(r, 403, "forbidden")
    expect_one(srv, i, actor_type="user", actor_id=dev["id"], tenant=w.a, action="request",
               resource="/v1/users", outcome="denied", reason="role")
    # Role, on an audited route: the route's action.
    r, i = call(srv, w.tokens["developer"], "POST", "/v1/users", json={
        "email": unique("no") + "@tenant.test", "password": USER_PASSWORD, "role": "admin"})
    check_error(r, 403, "forbidden")
    expect_one(srv, i, actor_type="user", actor_id=dev["id"], tenant=w.a, action="user.create",
               resource="/v1/users", outcome="denied", reason="role")
    # Read-only may not read the audit log.
    r, i = call(srv, w.tokens["readonly"], "GET", "/v1/audit")
    check_error(r, 403, "forbidden")
    expect_one(srv, i, actor_type="user", actor_id=w.users["readonly"]["id"], tenant=w.a,
               action="audit.read", resource="/v1/audit", outcome="denied", reason="role")
    # A permission set's deny, named in the reason.
    name = unique("no-quotas")
    r = srv.session(w.a_admin).post(srv.url + "/v1/permission-sets", json={
        "name": name, "rules": [{"effect": "deny", "method": "GET", "path": "/v1/quotas"}]})
    assert r.status_code == 201, r.text
    op = w.users["operator"]
    r = srv.session(w.a_admin).patch(srv.url + "/v1/users/" + op["id"], json={"permission_sets": [name]})
    assert r.status_code == 200, r.text
    try:
        r, i = call(srv, w.tokens["operator"], "GET", "/v1/quotas")
        check_error(r, 403, "forbidden")
        expect_one(srv, i, actor_type="user", actor_id=op["id"], tenant=w.a, action="request",
                   resource="/v1/quotas", outcome="denied", reason="permission_set:" + name)
    finally:
        r = srv.session(w.a_admin).patch(srv.url + "/v1/users/" + op["id"],
                                         json={"permission_sets": []})
        assert r.status_code == 200, r.text
    # The platform boundary.
    r, i = call(srv, w.platform, "GET", "/v1/users")
    check_error(r, 403, "forbidden")
    expect_one(srv, i, actor_type="user", actor_id=w.platform_id, tenant=None, action="request",
               resource="/v1/users", outcome="denied", reason="platform_boundary")
    # The tenant's readers see its denials.
    denied = audit_all(srv, w.a_admin, outcome="denied")
    assert all(rec["outcome"] == "denied" for rec in denied)
    assert {"role", "permission_set:" + name} <= {rec["reason"] for rec in denied}


def test_401_is_recorded(srv, w):
    for token in (None, "not-a-token", w.a_admin[:-4] + "AAAA"):
        r, i = call(srv, token, "GET", "/v1/quotas")
        check_error(r, 401, "unauthorized")
        expect_one(srv, i, actor_type="anonymous", actor_id="", tenant=None, action="request",
                   resource="/v1/quotas", outcome="denied", reason="unauthenticated")
    # On an audited route the route's action is kept.
    r, i = call(srv, None, "GET", "/v1/audit")
    check_error(r, 401, "unauthorized")
    expect_one(srv, i, actor_type="anonymous", actor_id="", tenant=None, action="audit.read",
               resource="/v1/audit", outcome="denied", reason="unauthenticated")


# --- who sees what -----------------------------------------------------------------------

def test_tenants_never_see_each_others_records(srv, w):
    # Some activity in both tenants.
    r, a_rid = call(srv, w.a_admin, "POST", "/v1/users", json={
        "email": unique("a") + "@tenant.test", "password": USER_PASSWORD, "role": "readonly"})
    assert r.status_code == 201, r.text
    a_user = r.json()["id"]
    r, b_rid = call(srv, w.b_admin, "POST", "/v1/users", json={
        "email": unique("b") + "@tenant.test", "password": USER_PASSWORD, "role": "readonly"})
    assert r.status_code == 201, r.text
    b_user = r.json()["id"]
    a_all, b_all = audit_all(srv, w.a_admin), audit_all(srv, w.b_admin)
    assert a_all and b_all
    assert {rec["tenant_id"] for rec in a_all} == {w.a}
    assert {rec["tenant_id"] for rec in b_all} == {w.b}
    assert with_rid(a_all, a_rid) and not with_rid(a_all, b_rid)
    assert with_rid(b_all, b_rid) and not with_rid(b_all, a_rid)
    assert not {rec["seq"] for rec in a_all} & {rec["seq"] for rec in b_all}
    # Filters naming the other tenant's people and objects find nothing.
    for params in ({"actor": w.a_admin_id}, {"actor": w.users["developer"]["id"]},
                   {"resource": "/v1/users/" + a_user}, {"action": "user.", "actor": w.a_admin_id},
                   {"tenant_id": w.a, "actor": w.a_admin_id}, {"tenant": w.a, "actor": w.a_admin_id}):
        body = audit_page(srv, w.b_admin, **params)
        assert body == {"items": [], "next_cursor": None}, (params, body)
    body = audit_page(srv, w.a_admin, resource="/v1/users/" + b_user)
    assert body == {"items": [], "next_cursor": None}, body
    # A query parameter naming the other tenant changes nothing.
    for name in ("tenant_id", "tenant"):
        got = audit_all(srv, w.b_admin, **{name: w.a})
        assert {rec["tenant_id"] for rec in got} == {w.b}, name
    # B's own operator sees only B too.
    b_op = srv.login(w.b_user["email"], USER_PASSWORD)["access_token"]
    assert {rec["tenant_id"] for rec in audit_all(srv, b_op)} == {w.b}


def test_a_developer_sees_only_its_own_actions(srv, w):
    dev, token = w.users["developer"], w.tokens["developer"]
    r, denied = call(srv, token, "GET", "/v1/users")
    assert r.status_code == 403
    db_with_rid(srv, denied)  # the denial queue has written it
    audit_page(srv, token, limit=1)  # an audit.read of its own
    mine = audit_all(srv, token)
    assert mine and all(rec["actor"]["id"] == dev["id"] for rec in mine), mine
    assert with_rid(mine, denied)
    assert "auth.login" in {rec["action"] for rec in mine}
    assert "audit.read" in {rec["action"] for rec in mine}
    # Asking for someone else's actions: an empty list, not theirs.
    for other in (w.a_admin_id, w.users["operator"]["id"], w.b_admin_id, "", "usr_" + "0" * 32):
        body = audit_page(srv, token, actor=other)
        assert body == {"items": [], "next_cursor": None}, (other, body)
        body = audit_page(srv, token, actor=other, action="user.")
        assert body == {"items": [], "next_cursor": None}, (other, body)
    # Its own id as the filter is the same as no filter.
    mine_again = audit_all(srv, token, actor=dev["id"], to="2200-01-01T00:00:00Z")
    assert [rec["seq"] for rec in mine_again][:len(mine)] == [rec["seq"] for rec in mine]
    # Other filters stay inside its own actions.
    for params in ({"action": "user."}, {"outcome": "success"}, {"resource": "/v1/users"}):
        assert all(rec["actor"]["id"] == dev["id"] for rec in audit_all(srv, token, **params))
    # A Developer API key: the key's own actions only.
    key = w.dev_key
    r, i = call(srv, key["key"], "GET", "/v1/audit")
    assert r.status_code == 200, r.text
    items = audit_all(srv, key["key"])
    assert items and all(rec["actor"]["id"] == key["id"] for rec in items), items
    assert with_rid(items, i)
    assert audit_page(srv, key["key"], actor=dev["id"])["items"] == []


def test_an_operator_sees_all_of_its_tenant(srv, w):
    r, i = call(srv, w.a_admin, "PATCH", "/v1/users/" + w.users["readonly"]["id"],
                json={"role": "readonly"})
    assert r.status_code == 200, r.text
    seen = audit_all(srv, w.tokens["operator"])
    assert {rec["tenant_id"] for rec in seen} == {w.a}
    assert with_rid(seen, i)
    actors = {rec["actor"]["id"] for rec in seen}
    assert {w.a_admin_id, w.users["operator"]["id"], w.users["developer"]["id"]} <= actors
    admin_only = audit_all(srv, w.tokens["operator"], actor=w.a_admin_id)
    assert admin_only and {rec["actor"]["id"] for rec in admin_only} == {w.a_admin_id}
    # Every tenant record up to the Operator's last, the Operator saw as well.
    admin_seqs = {rec["seq"] for rec in audit_all(srv, w.a_admin) if rec["seq"] <= seen[-1]["seq"]}
    assert admin_seqs == {rec["seq"] for rec in seen}


# --- filters, paging, errors ---------------------------------------------------------

def test_filters(srv, w):
    admin = w.a_admin
    r, i = call(srv, admin, "POST", "/v1/users", json={
        "email": unique("f") + "@tenant.test", "password": USER_PASSWORD, "role": "readonly"})
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    r = srv.session(admin).delete(srv.url + "/v1/users/" + uid)
    assert r.status_code == 204, r.text
    everything = audit_all(srv, admin)
    seqs = [rec["seq"] for rec in everything]
    assert seqs == sorted(set(seqs)), "ascending seq, no repeats"
    times = [time_ns(rec["time"]) for rec in everything]
    assert times == sorted(times)

    got = audit_all(srv, admin, action="user.")
    assert got and all(rec["action"].startswith("user.") for rec in got)
    assert with_rid(got, i)
    assert {rec["action"] for rec in audit_all(srv, admin, action="auth")} <= {
        "auth.login", "auth.refresh", "auth.logout"}
    assert audit_all(srv, admin, action="user.create") == [
        rec for rec in got if rec["action"] == "user.create"]
    assert audit_page(srv, admin, action="nothing.like.this") == {"items": [], "next_cursor": None}

    for outcome in ("success", "failure", "denied"):
        recs = audit_all(srv, admin, outcome=outcome)
        assert recs and all(rec["outcome"] == outcome for rec in recs), outcome

    recs = audit_all(srv, admin, resource="/v1/users/" + uid)
    assert [rec["action"] for rec in recs] == ["user.create", "user.delete"], recs
    assert audit_all(srv, admin, resource="/v1/users/" + uid + "/") == []

    dev_id = w.users["developer"]["id"]
    recs = audit_all(srv, admin, actor=dev_id)
    assert recs and all(rec["actor"]["id"] == dev_id for rec in recs)

    both = audit_all(srv, admin, action="user.", outcome="success", actor=w.a_admin_id)
    assert both and all(rec["action"].startswith("user.") and rec["outcome"] == "success"
                        and rec["actor"]["id"] == w.a_admin_id for rec in both)

    # Time range: from is inclusive, to exclusive.
    mid = everything[len(everything) // 2]
    t = mid["time"]
    after = audit_all(srv, admin, **{"from": t})
    assert after[0]["seq"] <= mid["seq"] and with_rid(after, mid["request_id"])
    assert all(time_ns(rec["time"]) >= time_ns(t) for rec in after)
    before = audit_all(srv, admin, to=t)
    assert before and all(time_ns(rec["time"]) < time_ns(t) for rec in before)
    assert not with_rid(before, mid["request_id"])
    assert [rec["seq"] for rec in before] == [s for s, tt in zip(seqs, times) if tt < time_ns(t)]
    window = audit_all(srv, admin, **{"from": everything[1]["time"], "to": t})
    assert [rec["seq"] for rec in window] == [
        s for s, tt in zip(seqs, times) if time_ns(everything[1]["time"]) <= tt < time_ns(t)]
    assert audit_page(srv, admin, **{"from": "2200-01-01T00:00:00Z"})["items"] == []
    assert audit_page(srv, admin, to="2000-01-01T00:00:00.5Z")["items"] == []
    assert audit_page(srv, admin, **{"from": "1970-01-01T00:00:00Z"})["items"][:1] == everything[:1]


@pytest.mark.parametrize("when", ["2262-04-12T00:00:00Z", "2600-06-01T00:00:00Z",
                                  "2846-01-01T00:00:00Z", "2999-01-01T00:00:00Z",
                                  "9999-12-31T23:59:59.999999999Z"])
def test_times_past_the_nanosecond_range_are_not_misread(srv, w, when):
    """Times are int64 ns (up to 2262-04-11T23:47:16.854775807Z). A later
    `from`/`to` must be refused (400) or mean what it says (from: nothing,
    to: everything) -- never wrap around to some other time."""
    admin = w.a_admin
    everything = [rec["seq"] for rec in audit_all(srv, admin, action="user.")]
    assert everything
    r = srv.session(admin).get(srv.url + "/v1/audit", params={"from": when, "action": "user."})
    if r.status_code != 400:
        assert r.status_code == 200 and r.json()["items"] == [], (when, r.text[:300])
    r = srv.session(admin).get(srv.url + "/v1/audit", params={"to": when, "action": "user.",
                                                               "limit": 500})
    if r.status_code != 400:
        assert r.status_code == 200, r.text
        assert [rec["seq"] for rec in r.json()["items"]] == everything, (when, r.text[:300])


BAD_PARAMS = [
    {"limit": "0"}, {"limit": "501"}, {"limit": "ten"}, {"limit": ""}, {"limit": "-1"},
    {"cursor": "abc"}, {"cursor": "-1"}, {"cursor": "1.5"},
    {"from": "2026-01-01"}, {"from": "yesterday"}, {"to": "2026-02-30T00:00:00Z"},
    {"to": "2026-01-01T25:00:00Z"}, {"from": "2026-01-01T00:00:00.1234567891Z"},
    {"from": "1969-12-31T23:59:59Z"},
    {"outcome": "ok"}, {"outcome": "SUCCESS"}, {"outcome": ""},
    {"action": "User."}, {"action": "user create"}, {"action": "a" * 65},
    {"actor": "u" * 129}, {"resource": "/" + "r" * 512},
]


@pytest.mark.parametrize("params", BAD_PARAMS, ids=lambda p: "&".join("%s=%s" % kv for kv in p.items())[:40])
def test_bad_filter_values_answer_400(srv, w, oas, params):
    r, i = call(srv, w.a_admin, "GET", "/v1/audit", params=params)
    check_error(r, 400, "bad_request")
    oas_check(oas, r, "GET", "/v1/audit", 400)
    expect_one(srv, i, actor_type="user", actor_id=w.a_admin_id, tenant=w.a, action="audit.read",
               resource="/v1/audit", outcome="failure", reason="bad_request")


def test_cursor_paging(srv, w):
    admin = w.a_admin
    for _ in range(4):
        r = srv.session(admin).post(srv.url + "/v1/users", json={
            "email": unique("page") + "@tenant.test", "password": USER_PASSWORD, "role": "readonly"})
        assert r.status_code == 201, r.text
    # A filter whose result does not grow as we read (reads are audit.read).
    whole = audit_page(srv, admin, action="user.", limit=500)
    assert whole["next_cursor"] is None and len(whole["items"]) >= 5
    for limit in (1, 2, 3):
        pages, cursor = [], None
        while True:
            params = {"action": "user.", "limit": limit}
            if cursor is not None:
                params["cursor"] = cursor
            body = audit_page(srv, admin, **params)
            pages.append(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
            assert isinstance(cursor, str) and cursor
            assert len(body["items"]) == limit
        assert [rec for p in pages for rec in p] == whole["items"], limit
        assert all(len(p) <= limit for p in pages)
    # Default page size 50.
    many = audit_page(srv, admin)
    assert len(many["items"]) <= 50
    # A cursor past the end is an empty page.
    last = whole["items"][-1]["seq"]
    assert audit_page(srv, admin, action="user.", cursor=str(last))["items"] == []
    # A Developer pages through its own records the same way.
    token = w.tokens["developer"]
    dev_whole = audit_page(srv, token, action="auth.")["items"]
    dev_paged, cursor = [], None
    while True:
        params = {"action": "auth.", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        body = audit_page(srv, token, **params)
        dev_paged += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert dev_paged == dev_whole


def test_reading_is_audited(srv, w, oas):
    token = w.tokens["operator"]
    op = w.users["operator"]["id"]
    r, i = call(srv, token, "GET", "/v1/audit", params={"action": "user.", "limit": 5})
    oas_check(oas, r, "GET", "/v1/audit", 200)
    expect_one(srv, i, actor_type="user", actor_id=op, tenant=w.a, action="audit.read",
               resource="/v1/audit", outcome="success")
    r, i = call(srv, token, "GET", "/v1/audit/checkpoints")
    oas_check(oas, r, "GET", "/v1/audit/checkpoints", 200)
    expect_one(srv, i, actor_type="user", actor_id=op, tenant=w.a, action="audit.checkpoints.read",
               resource="/v1/audit/checkpoints", outcome="success")
    r, i = call(srv, token, "GET", "/v1/audit/proof", params={"seq": 1})
    oas_check(oas, r, "GET", "/v1/audit/proof", 200)
    expect_one(srv, i, actor_type="user", actor_id=op, tenant=w.a, action="audit.proof.read",
               resource="/v1/audit/proof", outcome="success")
    r, i = call(srv, token, "GET", "/v1/audit/proof")
    oas_check(oas, r, "GET", "/v1/audit/proof", 400)
    expect_one(srv, i, actor_type="user", actor_id=op, tenant=w.a, action="audit.proof.read",
               resource="/v1/audit/proof", outcome="failure", reason="bad_request")
    # The reader sees its own reads.
    reads = audit_all(srv, token, action="audit.", actor=op)
    assert {"audit.read", "audit.checkpoints.read", "audit.proof.read"} <= {
        rec["action"] for rec in reads}


def test_answers_match_openapi(srv, w, oas):
    s = srv.session(w.a_admin)
    u = srv.url
    oas_check(oas, s.get(u + "/v1/audit", params={"limit": 3}), "GET", "/v1/audit", 200)
    oas_check(oas, srv.session(w.tokens["developer"]).get(u + "/v1/audit"), "GET", "/v1/audit", 200)
    oas_check(oas, srv.session().get(u + "/v1/audit"), "GET", "/v1/audit", 401)
    oas_check(oas, srv.session(w.tokens["readonly"]).get(u + "/v1/audit"), "GET", "/v1/audit", 403)
    oas_check(oas, srv.session(w.tokens["readonly"]).get(u + "/v1/audit/checkpoints"),
              "GET", "/v1/audit/checkpoints", 403)
    oas_check(oas, srv.session().get(u + "/v1/audit/proof?seq=1"), "GET", "/v1/audit/proof", 401)
    body = wait_for_checkpoint(srv, w.a_admin, 2)
    assert body["items"]
    r = s.get(u + "/v1/audit/checkpoints")
    oas_check(oas, r, "GET", "/v1/audit/checkpoints", 200)
    size = r.json()["items"][-1]["tree_size"]
    oas_check(oas, s.get(u + "/v1/audit/proof", params={"seq": 1, "tree_size": size}),
              "GET", "/v1/audit/proof", 200)
    oas_check(oas, s.get(u + "/v1/audit/proof", params={"from": 1, "tree_size": size}),
              "GET", "/v1/audit/proof", 200)
    oas_check(oas, s.get(u + "/v1/audit/proof", params={"seq": 10**9}), "GET", "/v1/audit/proof", 400)


# --- tamper evidence, checked independently -------------------------------------------

def _single_tenant_history(srv):
    """A fresh server where one tenant acts: returns (admin token, admin id, tenant id)."""
    tenant, email, admin = new_tenant(srv)
    s = srv.session(admin)
    for role in ("operator", "developer", "readonly"):
        make_user(srv, admin, role)
    r = s.post(srv.url + "/v1/permission-sets", json={"name": unique("s"), "rules": []})
    assert r.status_code == 201, r.text
    r = s.post(srv.url + "/v1/api-keys", json={"name": unique("k"), "role": "readonly"})
    assert r.status_code == 201, r.text
    s.get(srv.url + "/v1/users")
    return admin, s.get(srv.url + "/v1/me").json()["id"], tenant["id"]


def test_hash_chain_links_in_the_listing_and_the_file(fresh_server):
    srv = fresh_server()
    admin, _, tid = _single_tenant_history(srv)
    listed = audit_all(srv, admin)
    assert {rec["tenant_id"] for rec in listed} == {tid}
    # Each record's hash is SHA-256(prev_hash || canonical bytes), recomputed here.
    for rec in listed:
        assert record_hash(rec).hex() == rec["hash"], rec
    # Consecutive seqs link.
    links = 0
    for a, b in zip(listed, listed[1:]):
        if b["seq"] == a["seq"] + 1:
            assert b["prev_hash"] == a["hash"], (a, b)
            links += 1
    assert links >= 5, links
    # The whole file (every tenant and the platform) is one gap-free chain from
    # 32 zero bytes, and the API showed exactly the file's records.
    recs = db_records(srv)
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    prev = ZERO.hex()
    for rec in recs:
        assert rec["prev_hash"] == prev, rec
        assert record_hash(rec).hex() == rec["hash"], rec
        assert leaf_hash(rec).hex() == rec["leaf_hash"], rec
        prev = rec["hash"]
    by_seq = {rec["seq"]: rec for rec in recs}
    for rec in listed:
        same_record(rec, by_seq[rec["seq"]])


def test_checkpoints_are_signed_by_the_audit_key(fresh_server, oas):
    srv = fresh_server()
    admin, _, _ = _single_tenant_history(srv)
    size = len(db_records(srv))
    body = wait_for_checkpoint(srv, admin, size)
    key = body["key"]
    assert key["alg"] == "Ed25519"
    pub = bytes.fromhex(key["public_key"])
    assert len(pub) == 32
    assert key["key_id"] == key_id(pub)
    # The key is the one in the data directory.
    assert pem_public_key(os.path.join(srv.data_dir, "keys", "audit.pem")) == pub
    recs = db_records(srv)
    leaves = [bytes.fromhex(r["leaf_hash"]) for r in recs]
    assert leaves == [leaf_hash(r) for r in recs]
    sizes = [cp["tree_size"] for cp in body["items"]]
    assert sizes == sorted(set(sizes)) and sizes[-1] >= size
    for cp in body["items"]:
        assert cp["key_id"] == key["key_id"], cp
        sig = bytes.fromhex(cp["signature"])
        assert len(sig) == 64
        assert ed25519_verify(pub, checkpoint_message(cp), sig), cp
        # The signed root is the RFC 6962 root of the first tree_size records.
        assert cp["root_hash"] == mth(leaves[:cp["tree_size"]]).hex(), cp
        # The verification is not vacuous: a changed size, time or root fails.
        for bad in (dict(cp, tree_size=cp["tree_size"] + 1),
                    dict(cp, root_hash=sha256(b"x").hex()),
                    dict(cp, time=cp["time"][:20] + "%09d" % ((int(cp["time"][20:29]) + 1) % 10**9) + "Z")):
            assert not ed25519_verify(pub, checkpoint_message(bad), sig), bad


def test_inclusion_proofs_verify(fresh_server, oas):
    srv = fresh_server()
    admin, _, _ = _single_tenant_history(srv)
    body = wait_for_checkpoint(srv, admin, len(db_records(srv)))
    cp = body["items"][-1]
    n = cp["tree_size"]
    recs = db_records(srv)
    s = srv.session(admin)
    listed = {rec["seq"]: rec for rec in audit_all(srv, admin)}
    for seq in range(1, n + 1):
        r = s.get(srv.url + "/v1/audit/proof", params={"seq": seq, "tree_size": n})
        assert r.status_code == 200, r.text
        p = r.json()
        assert (p["type"], p["seq"], p["tree_size"]) == ("inclusion", seq, n), p
        # The leaf is the record's: recomputed from the file, and from the
        # API's own view of it where the tenant may read it.
        assert p["leaf_hash"] == leaf_hash(recs[seq - 1]).hex()
        if seq in listed:
            assert p["leaf_hash"] == leaf_hash(listed[seq]).hex()
        path = [bytes.fromhex(h) for h in p["path"]]
        root = bytes.fromhex(p["root_hash"])
        assert root.hex() == cp["root_hash"], "proof root differs from the signed checkpoint"
        assert verify_inclusion(seq - 1, n, bytes.fromhex(p["leaf_hash"]), path, root), p
        # ...and not for another leaf or another position.
        assert not verify_inclusion(seq - 1, n, sha256(b"forged"), path, root)
        if n > 1:
            assert not verify_inclusion(seq % n, n, bytes.fromhex(p["leaf_hash"]), path, root)
    # Without tree_size: the current tree, whose root is ours too.
    r = s.get(srv.url + "/v1/audit/proof", params={"seq": 2})
    assert r.status_code == 200, r.text
    p = r.json()
    cur = [bytes.fromhex(x["leaf_hash"]) for x in db_records(srv)][:p["tree_size"]]
    assert p["tree_size"] >= n and p["root_hash"] == mth(cur).hex()
    assert verify_inclusion(1, p["tree_size"], bytes.fromhex(p["leaf_hash"]),
                            [bytes.fromhex(h) for h in p["path"]], bytes.fromhex(p["root_hash"]))


def test_consistency_proofs_verify(fresh_server):
    srv = fresh_server()
    admin, _, _ = _single_tenant_history(srv)
    first = wait_for_checkpoint(srv, admin, len(db_records(srv)))["items"][-1]
    make_user(srv, admin, "readonly")
    second = wait_for_checkpoint(srv, admin, first["tree_size"] + 2)["items"][-1]
    m, n = first["tree_size"], second["tree_size"]
    assert m < n
    s = srv.session(admin)
    # Between two signed checkpoints.
    r = s.get(srv.url + "/v1/audit/proof", params={"from": m, "tree_size": n})
    assert r.status_code == 200, r.text
    p = r.json()
    assert (p["type"], p["seq"], p["tree_size"], p["root_hash"]) == ("consistency", m, n,
                                                                     second["root_hash"]), p
    path = [bytes.fromhex(h) for h in p["path"]]
    assert verify_consistency(m, n, bytes.fromhex(first["root_hash"]),
                              bytes.fromhex(second["root_hash"]), path)
    assert not verify_consistency(m, n, sha256(b"other"), bytes.fromhex(second["root_hash"]), path)
    # Every older size against the newer checkpoint, roots computed here.
    leaves = [bytes.fromhex(x["leaf_hash"]) for x in db_records(srv)]
    for old in range(1, n + 1):
        r = s.get(srv.url + "/v1/audit/proof", params={"from": old, "tree_size": n})
        assert r.status_code == 200, r.text
        p = r.json()
        assert p["root_hash"] == second["root_hash"]
        assert verify_consistency(old, n, mth(leaves[:old]), mth(leaves[:n]),
                                  [bytes.fromhex(h) for h in p["path"]]), (old, p)
    # from == tree_size: the empty proof.
    r = s.get(srv.url + "/v1/audit/proof", params={"from": n, "tree_size": n})
    assert r.status_code == 200 and r.json()["path"] == [], r.text


@pytest.mark.parametrize("query", [
    "", "?", "?seq=0", "?seq=abc", "?seq=-1", "?seq=1&from=1", "?from=0", "?tree_size=1",
    "?seq=1000000000", "?seq=1&tree_size=0", "?seq=1&tree_size=1000000000",
    "?seq=3&tree_size=2", "?from=3&tree_size=2", "?from=1000000000",
])
def test_bad_proof_parameters_answer_400(srv, w, query):
    r, i = call(srv, w.a_admin, "GET", "/v1/audit/proof" + query)
    check_error(r, 400, "bad_request")
    expect_one(srv, i, actor_type="user", actor_id=w.a_admin_id, tenant=w.a,
               action="audit.proof.read", resource="/v1/audit/proof", outcome="failure",
               reason="bad_request")


# --- many records: the read indexes ---------------------------------------------------

def _matches(rec, tid, params):
    if rec["tenant_id"] != tid:
        return False
    if "action" in params and not rec["action"].startswith(params["action"]):
        return False
    for key, field in (("outcome", "outcome"), ("resource", "resource")):
        if key in params and rec[field] != params[key]:
            return False
    if "actor" in params and rec["actor"]["id"] != params["actor"]:
        return False
    if "from" in params and rec["time_ns"] < time_ns(params["from"]):
        return False
    if "to" in params and rec["time_ns"] >= time_ns(params["to"]):
        return False
    return True


def test_filtered_reads_over_many_records(fresh_server):
    """Over 4,096 records (the read indexes' bucket) written by concurrent
    callers: every filter, read right away (partly from the unindexed tail)
    and again once the writer has indexed everything, returns exactly the
    tenant's matching records of the file, also page by page."""
    srv = fresh_server()
    tenant, _, admin = new_tenant(srv)
    tid = tenant["id"]
    users = {role: make_user(srv, admin, role) for role in ("operator", "developer")}
    tokens = {role: srv.login(u["email"], USER_PASSWORD)["access_token"] for role, u in users.items()}
    tokens["admin"] = admin
    target = make_user(srv, admin, "readonly")
    # Another tenant acting at the same time, so the tenant's seqs are not contiguous.
    _, _, other = new_tenant(srv)
    jobs = ([("admin", "GET", "/v1/audit?limit=1", None)] * 1100
            + [("operator", "GET", "/v1/audit/proof?seq=1", None)] * 1100
            + [("developer", "GET", "/v1/users", None)] * 1100
            + [("admin", "PATCH", "/v1/users/" + target["id"], {"role": "readonly"})] * 300
            + [("other", "GET", "/v1/audit?limit=1", None)] * 700)
    tokens["other"] = other
    random.Random(4).shuffle(jobs)  # interleaved, so every kind spans the bucket boundary

    def run(chunk):
        sessions = {name: srv.session(tok) for name, tok in tokens.items()}
        for who, method, path, body in chunk:
            r = sessions[who].request(method, srv.url + path, json=body)
            assert r.status_code in (200, 403), r.text
    chunks = [jobs[i::16] for i in range(16)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(run, chunks))
    deadline = time.time() + 10  # the denial queue drains
    while len([r for r in db_records(srv) if r["action"] == "request"]) < 1100:
        assert time.time() < deadline
        time.sleep(0.05)
    recs = db_records(srv)
    assert len(recs) > 4096 + 100, len(recs)
    upto = recs[-1]["seq"]
    mine = [r for r in recs if r["tenant_id"] == tid]
    t1, t2 = mine[len(mine) // 3], mine[2 * len(mine) // 3]

    def iso(ns):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + ".%09dZ" % (ns % 10**9)
    cases = [{}, {"action": "audit."}, {"action": "audit.proof.read"}, {"action": "user.update"},
             {"action": "request"}, {"outcome": "denied"}, {"outcome": "success"},
             {"resource": "/v1/users"}, {"resource": "/v1/users/" + target["id"]},
             {"actor": users["developer"]["id"]}, {"actor": users["operator"]["id"], "action": "audit."},
             {"from": iso(t1["time_ns"])}, {"to": iso(t2["time_ns"])},
             {"from": iso(t1["time_ns"]), "to": iso(t2["time_ns"]), "outcome": "success"},
             {"actor": users["developer"]["id"], "outcome": "denied", "resource": "/v1/users"}]
    for when in ("at once", "indexed"):
        if when == "indexed":
            time.sleep(0.6)  # the writer indexes after 0.2 s of quiet
        for params in cases:
            want = [r["seq"] for r in recs if _matches(r, tid, params)]
            got = [r["seq"] for r in audit_all(srv, admin, **params) if r["seq"] <= upto]
            assert got == want, (when, params, len(got), len(want))
        # Paging in small pages across the bucket boundary.
        params = {"outcome": "denied", "limit": 97}
        seqs, cursor = [], None
        while True:
            body = audit_page(srv, admin, **dict(params, **({"cursor": cursor} if cursor else {})))
            seqs += [r["seq"] for r in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        want = [r["seq"] for r in recs if _matches(r, tid, {"outcome": "denied"})]
        assert [x for x in seqs if x <= upto] == want, when
        assert any(x < 4096 for x in want) and any(x > 4096 for x in want)
        # The Developer's own view, the same way.
        dev = users["developer"]["id"]
        got = [r["seq"] for r in audit_all(srv, tokens["developer"]) if r["seq"] <= upto]
        assert got == [r["seq"] for r in recs if _matches(r, tid, {"actor": dev})], when
    # A record is readable as soon as its request has been answered.
    r, i = call(srv, admin, "PATCH", "/v1/users/" + target["id"], json={"role": "readonly"})
    assert r.status_code == 200
    for params in ({"resource": "/v1/users/" + target["id"]}, {"action": "user."},
                   {"actor": World.me(srv, admin)["id"]}):
        assert with_rid(audit_all(srv, admin, **params), i), params
