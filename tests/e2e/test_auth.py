"""Authentication stories, driven from outside against the real odysseusd.

Login and /v1/me, refresh-token rotation and reuse detection, logout, login
failures that do not reveal whether an email exists, throttling, forged and
malformed JWTs, the JWKS document, signing-key rotation across a restart, and
API keys. Contract: docs/api.md and SPEC.md sections 2 and 10.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import statistics
import subprocess
import tempfile
import time

import pytest

from conftest import (ODYSSEUSD, TENANT_ADMIN_PASSWORD, USER_PASSWORD, check_error, clean_env,
                      make_user, new_tenant, post_login, unique, without_request_id)


# --- helpers -----------------------------------------------------------------

def b64u_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64u_encode(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt_split(token):
    """(header dict, claims dict, signature segment) of a compact JWS."""
    h, p, s = token.split(".")
    return json.loads(b64u_decode(h)), json.loads(b64u_decode(p)), s


def jwt_join(header, claims, sig):
    h = b64u_encode(json.dumps(header, separators=(",", ":")).encode())
    p = b64u_encode(json.dumps(claims, separators=(",", ":")).encode())
    return "%s.%s.%s" % (h, p, sig)


def post_refresh(srv, refresh_token):
    return srv.session().post(srv.url + "/v1/auth/refresh",
                              json={"refresh_token": refresh_token})


def get_me(srv, token):
    return srv.session(token).get(srv.url + "/v1/me")


def make_api_key(srv, admin_token, role="readonly", name=None):
    r = srv.session(admin_token).post(srv.url + "/v1/api-keys",
                                      json={"name": name or unique("key"), "role": role})
    assert r.status_code == 201, r.text
    return r.json()


# --- login and /v1/me --------------------------------------------------------

def test_login_answer_and_token_claims(server):
    before = int(time.time())
    r = post_login(server, server.admin_email, server.admin_password)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}, body
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert re.fullmatch(r"odr_[0-9a-f]{64}", body["refresh_token"]), body["refresh_token"]

    header, claims, sig = jwt_split(body["access_token"])
    assert header["alg"] == "EdDSA" and header["typ"] == "JWT", header
    assert isinstance(header.get("kid"), str) and header["kid"], header
    assert len(b64u_decode(sig)) == 64  # an Ed25519 signature
    assert claims["iss"] == "odysseus"
    assert claims["aud"] == "odysseus-api"
    assert re.fullmatch(r"usr_[0-9a-f]{32}", claims["sub"]), claims
    assert claims["tid"] is None
    assert claims["role"] == "platform_admin"
    assert isinstance(claims["jti"], str) and claims["jti"]
    assert claims["exp"] - claims["iat"] == 900
    assert claims["nbf"] <= claims["iat"] + 1
    assert before - 5 <= claims["iat"] <= time.time() + 5

    again = post_login(server, server.admin_email, server.admin_password).json()
    assert jwt_split(again["access_token"])[1]["jti"] != claims["jti"]
    assert again["refresh_token"] != body["refresh_token"]


def test_me_platform_admin(server):
    tokens = server.login(server.admin_email, server.admin_password)
    r = get_me(server, tokens["access_token"])
    assert r.status_code == 200, r.text
    me = r.json()
    assert {"id", "email", "tenant_id", "role", "permissions"} <= set(me), me
    assert re.fullmatch(r"usr_[0-9a-f]{32}", me["id"]), me
    assert me["id"] == jwt_split(tokens["access_token"])[1]["sub"]
    assert me["email"] == server.admin_email
    assert me["tenant_id"] is None
    assert me["role"] == "platform_admin"
    assert isinstance(me["permissions"], list)


def test_me_tenant_users(server):
    tenant, admin_email, admin_token = new_tenant(server)
    r = get_me(server, admin_token)
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["email"] == admin_email
    assert me["tenant_id"] == tenant["id"]
    assert me["role"] == "admin"
    assert me["id"] == tenant["admin"]["id"]

    user = make_user(server, admin_token, "developer")
    email = user["email"]
    token = server.login(email, USER_PASSWORD)["access_token"]
    claims = jwt_split(token)[1]
    assert claims["tid"] == tenant["id"] and claims["role"] == "developer", claims
    r = get_me(server, token)
    assert r.status_code == 200, r.text
    me = r.json()
    assert (me["id"], me["email"], me["tenant_id"], me["role"]) == \
        (user["id"], email, tenant["id"], "developer")


# --- refresh tokens ----------------------------------------------------------

def test_refresh_rotates_and_reuse_revokes_the_family(server):
    _, _, admin_token = new_tenant(server)
    email = make_user(server, admin_token, "operator")["email"]
    first = server.login(email, USER_PASSWORD)

    r = post_refresh(server, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert set(second) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert second["token_type"] == "Bearer" and second["expires_in"] == 900
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert re.fullmatch(r"odr_[0-9a-f]{64}", second["refresh_token"])
    assert get_me(server, second["access_token"]).json()["role"] == "operator"
    # The old access token stays valid until it expires.
    assert get_me(server, first["access_token"]).status_code == 200

    r = post_refresh(server, second["refresh_token"])
    assert r.status_code == 200, r.text
    third = r.json()

    # A separate login is a separate family and must survive what follows.
    other = server.login(email, USER_PASSWORD)

    # The first refresh token was spent: presenting it again is refused...
    check_error(post_refresh(server, first["refresh_token"]), 401, "unauthorized")
    # ...and revokes the whole family, newest member included.
    check_error(post_refresh(server, third["refresh_token"]), 401, "unauthorized")
    check_error(post_refresh(server, second["refresh_token"]), 401, "unauthorized")

    r = post_refresh(server, other["refresh_token"])
    assert r.status_code == 200, "another family was revoked too: " + r.text


def test_refresh_rejects_unknown_and_wrong_kind_of_token(server):
    tokens = server.login(server.admin_email, server.admin_password)
    check_error(post_refresh(server, "odr_" + secrets.token_hex(32)), 401, "unauthorized")
    check_error(post_refresh(server, tokens["access_token"]), 401, "unauthorized")
    # A refresh token is not an access token.
    check_error(get_me(server, tokens["refresh_token"]), 401, "unauthorized")
    # None of that spent or revoked the real one.
    assert post_refresh(server, tokens["refresh_token"]).status_code == 200


def test_logout_revokes_the_refresh_token(server):
    _, _, admin_token = new_tenant(server)
    email = make_user(server, admin_token, "developer")["email"]
    kept = server.login(email, USER_PASSWORD)
    tokens = server.login(email, USER_PASSWORD)

    r = server.session(tokens["access_token"]).post(
        server.url + "/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert r.headers.get("X-Request-Id")
    check_error(post_refresh(server, tokens["refresh_token"]), 401, "unauthorized")
    # Logging out one session leaves the user's other sessions alone.
    assert post_refresh(server, kept["refresh_token"]).status_code == 200


def test_logout_requires_authentication(server):
    tokens = server.login(server.admin_email, server.admin_password)
    r = server.session().post(server.url + "/v1/auth/logout",
                              json={"refresh_token": tokens["refresh_token"]})
    check_error(r, 401, "unauthorized")
    # The unauthenticated attempt revoked nothing.
    assert post_refresh(server, tokens["refresh_token"]).status_code == 200


# --- login failures ----------------------------------------------------------

def test_unknown_email_and_wrong_password_are_indistinguishable(fresh_server):
    srv = fresh_server()
    _, _, admin_token = new_tenant(srv)
    email = make_user(srv, admin_token, "developer")["email"]
    unknown = unique("nobody") + "@tenant.test"

    wrong = post_login(srv, email, "wrong-password-1")
    missing = post_login(srv, unknown, "wrong-password-1")
    check_error(wrong, 401, "unauthorized")
    check_error(missing, 401, "unauthorized")
    assert without_request_id(wrong) == without_request_id(missing)
    assert wrong.json()["error"]["message"] == "invalid email or password"
    assert wrong.headers["Content-Type"] == missing.headers["Content-Type"]
    assert ("Retry-After" in wrong.headers) == ("Retry-After" in missing.headers)

    # Both paths run Argon2id: timings within a loose factor (median of 3,
    # interleaved). That makes 4 failures for the account, under the limit of 5.
    t_wrong, t_missing = [], []
    for i in range(3):
        t0 = time.perf_counter()
        r = post_login(srv, email, "wrong-password-%d" % (i + 2))
        t_wrong.append(time.perf_counter() - t0)
        assert r.status_code == 401, r.text
        t0 = time.perf_counter()
        r = post_login(srv, unknown, "wrong-password-%d" % (i + 2))
        t_missing.append(time.perf_counter() - t0)
        assert r.status_code == 401, r.text
    a, b = statistics.median(t_wrong), statistics.median(t_missing)
    assert max(a, b) / min(a, b) < 3, "wrong password %.4fs vs unknown email %.4fs" % (a, b)


def test_login_throttled_per_account(fresh_server):
    srv = fresh_server()
    _, other_admin_email, admin_token = new_tenant(srv)
    email = make_user(srv, admin_token, "developer")["email"]

    for i in range(5):
        check_error(post_login(srv, email, "wrong-password-%d" % i), 401, "unauthorized")
    r = post_login(srv, email, USER_PASSWORD)  # the right password, still refused
    check_error(r, 429, "rate_limited")
    assert re.fullmatch(r"[1-9][0-9]*", r.headers.get("Retry-After", "")), r.headers
    retry_after = int(r.headers["Retry-After"])
    assert retry_after <= 900

    # The lock is per account: another account from the same address logs in.
    assert post_login(srv, other_admin_email, TENANT_ADMIN_PASSWORD).status_code == 200

    # Backoff starts at 1 s (docs/api.md): once it has passed, the right password works.
    assert retry_after <= 20, "first lockout of %d s; documented start is 1 s" % retry_after
    time.sleep(retry_after + 0.5)
    r = post_login(srv, email, USER_PASSWORD)
    assert r.status_code == 200, r.text


def test_login_throttle_does_not_reveal_unknown_emails(fresh_server):
    srv = fresh_server()
    unknown = unique("nobody") + "@tenant.test"
    for i in range(5):
        check_error(post_login(srv, unknown, "wrong-password-%d" % i), 401, "unauthorized")
    # An account that does not exist is throttled exactly like one that does;
    # otherwise the 429 tells an attacker which emails are real.
    r = post_login(srv, unknown, "wrong-password-9")
    check_error(r, 429, "rate_limited")
    assert "Retry-After" in r.headers


def test_login_throttled_per_source_address(fresh_server):
    srv = fresh_server()
    _, admin_email, _ = new_tenant(srv)
    # 20 failures spread over 5 emails: 4 each, under the per-account limit.
    emails = [unique("nobody") + "@tenant.test" for _ in range(5)]
    for i in range(20):
        r = post_login(srv, emails[i % 5], "wrong-password-%d" % i)
        check_error(r, 401, "unauthorized")
    r = post_login(srv, admin_email, TENANT_ADMIN_PASSWORD)
    check_error(r, 429, "rate_limited")
    assert "Retry-After" in r.headers


# --- forged and malformed access tokens -------------------------------------

def _hs256(key, signing_input):
    return b64u_encode(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def _forgeries(dev_token, admin_token, jwks_x):
    header, claims, sig = jwt_split(dev_token)
    h_seg, p_seg, _ = dev_token.split(".")
    out = {}
    out["payload role flipped to admin"] = jwt_join(header, dict(claims, role="admin"), sig)
    out["payload tid changed"] = jwt_join(header, dict(claims, tid="ten_" + "0" * 32), sig)
    out["payload exp extended"] = jwt_join(header, dict(claims, exp=claims["exp"] + 86400), sig)
    none_h = {"alg": "none", "typ": "JWT", "kid": header["kid"]}
    out["alg none, empty signature"] = jwt_join(none_h, dict(claims, role="admin"), "")
    out["alg none, original signature"] = jwt_join(none_h, claims, sig)
    out["alg None capitalised"] = jwt_join(dict(none_h, alg="None"), claims, "")
    hs_h = dict(header, alg="HS256")
    unsigned = jwt_join(hs_h, dict(claims, role="admin"), "")[:-1]
    out["HS256 keyed with the raw public key"] = unsigned + "." + _hs256(b64u_decode(jwks_x), unsigned)
    out["HS256 keyed with the JWK x string"] = unsigned + "." + _hs256(jwks_x.encode(), unsigned)
    out["unknown kid"] = jwt_join(dict(header, kid="no-such-kid"), claims, sig)
    out["kid path traversal"] = jwt_join(dict(header, kid="../../../etc/passwd"), claims, sig)
    out["no kid"] = jwt_join({"alg": "EdDSA", "typ": "JWT"}, claims, sig)
    out["signature removed"] = "%s.%s." % (h_seg, p_seg)
    out["two segments"] = "%s.%s" % (h_seg, p_seg)
    out["four segments"] = dev_token + "." + sig
    out["signature of another token"] = "%s.%s.%s" % (h_seg, p_seg, admin_token.split(".")[2])
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    out["one signature character flipped"] = "%s.%s.%s" % (h_seg, p_seg, flipped)
    out["garbage"] = "garbage"
    out["garbage with dots"] = "abc.def.ghi"
    return out


FORGERY_NAMES = [
    "payload role flipped to admin", "payload tid changed", "payload exp extended",
    "alg none, empty signature", "alg none, original signature", "alg None capitalised",
    "HS256 keyed with the raw public key", "HS256 keyed with the JWK x string",
    "unknown kid", "kid path traversal", "no kid", "signature removed", "two segments",
    "four segments", "signature of another token", "one signature character flipped",
    "garbage", "garbage with dots",
]


@pytest.fixture(scope="module")
def tenant_tokens(server):
    tenant, _, admin_token = new_tenant(server)
    email = make_user(server, admin_token, "readonly")["email"]
    return {"tenant": tenant, "admin": admin_token,
            "readonly": server.login(email, USER_PASSWORD)["access_token"]}


@pytest.mark.parametrize("name", FORGERY_NAMES)
def test_forged_access_token_is_rejected(server, tenant_tokens, name):
    ro = tenant_tokens["readonly"]
    kid = jwt_split(ro)[0]["kid"]
    keys = server.session().get(server.url + "/v1/auth/jwks").json()["keys"]
    x = [k["x"] for k in keys if k["kid"] == kid][0]
    forged = _forgeries(ro, tenant_tokens["admin"], x)[name]
    assert forged != ro
    # Control: the genuine token is accepted.
    assert get_me(server, ro).status_code == 200
    check_error(get_me(server, forged), 401, "unauthorized")
    # The forgery that claims admin must not reach an admin route either.
    check_error(server.session(forged).get(server.url + "/v1/users"), 401, "unauthorized")


@pytest.mark.parametrize("value", [
    None, "", "Bearer", "Bearer ", "Bearer garbage", "Basic dXNlcjpwYXNzd29yZA==",
    "Token abc", "Bearer odk_" + "0" * 32 + "_" + "0" * 43, "Bearer odr_" + "0" * 64,
])
def test_bad_authorization_header(server, value):
    headers = {} if value is None else {"Authorization": value}
    r = server.session().get(server.url + "/v1/me", headers=headers)
    check_error(r, 401, "unauthorized")


def test_access_token_without_bearer_scheme(server):
    token = server.admin_token()
    r = server.session().get(server.url + "/v1/me", headers={"Authorization": token})
    check_error(r, 401, "unauthorized")


# --- JWKS ----------------------------------------------------------------------

def _openssl_ed25519_verify(x_b64u, message, signature):
    """True when openssl verifies `signature` over `message` with public key x."""
    der = bytes.fromhex("302a300506032b6570032100") + b64u_decode(x_b64u)
    with tempfile.TemporaryDirectory() as d:
        pub = os.path.join(d, "pub.der")
        msg = os.path.join(d, "msg")
        sig = os.path.join(d, "sig")
        for path, data in ((pub, der), (msg, message), (sig, signature)):
            with open(path, "wb") as f:
                f.write(data)
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER",
                            "-inkey", pub, "-rawin", "-in", msg, "-sigfile", sig],
                           capture_output=True, text=True)
        return r.returncode == 0


def test_jwks(server):
    r = server.session().get(server.url + "/v1/auth/jwks")  # no token needed
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"keys"}
    keys = body["keys"]
    assert keys, body
    kids = [k["kid"] for k in keys]
    assert len(kids) == len(set(kids)), kids
    for k in keys:
        assert set(k) == {"kty", "crv", "x", "kid", "alg", "use"}, k  # no private "d"
        assert (k["kty"], k["crv"], k["alg"], k["use"]) == ("OKP", "Ed25519", "EdDSA", "sig"), k
        assert len(b64u_decode(k["x"])) == 32

    token = server.admin_token()
    header = jwt_split(token)[0]
    assert header["kid"] in kids
    key = [k for k in keys if k["kid"] == header["kid"]][0]
    h, p, s = token.split(".")
    assert _openssl_ed25519_verify(key["x"], (h + "." + p).encode(), b64u_decode(s)), \
        "the access token does not verify with the JWKS key of its kid"
    # Control for the verifier: a changed message does not verify.
    assert not _openssl_ed25519_verify(key["x"], (h + "." + p + "x").encode(), b64u_decode(s))


def test_key_rotation_across_restart(fresh_server, restart):
    srv = fresh_server()
    old = srv.login(srv.admin_email, srv.admin_password)
    old_kid = jwt_split(old["access_token"])[0]["kid"]
    assert srv.stop() == 0, srv.logs()

    r = subprocess.run([ODYSSEUSD, "keys", "rotate", "--data-dir", srv.data_dir],
                       capture_output=True, text=True, timeout=60, env=clean_env())
    assert r.returncode == 0, r.stdout + r.stderr

    new_srv = restart(srv.data_dir)
    assert get_me(new_srv, old["access_token"]).status_code == 200, \
        "a token signed with the previous key was refused after rotation"

    fresh = new_srv.login(new_srv.admin_email, new_srv.admin_password)
    new_kid = jwt_split(fresh["access_token"])[0]["kid"]
    assert new_kid != old_kid
    assert get_me(new_srv, fresh["access_token"]).status_code == 200

    kids = {k["kid"] for k in new_srv.session().get(new_srv.url + "/v1/auth/jwks").json()["keys"]}
    assert {old_kid, new_kid} <= kids, kids

    # A refresh token from before the rotation still works and gets a new-key token.
    r = post_refresh(new_srv, old["refresh_token"])
    assert r.status_code == 200, r.text
    assert jwt_split(r.json()["access_token"])[0]["kid"] == new_kid


# --- API keys ------------------------------------------------------------------

def test_api_key_lifecycle(server):
    tenant, _, admin_token = new_tenant(server)
    name = unique("ci")
    r = server.session(admin_token).post(server.url + "/v1/api-keys",
                                         json={"name": name, "role": "readonly"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert re.fullmatch(r"key_[0-9a-f]{32}", created["id"]), created
    assert created["name"] == name and created["role"] == "readonly"
    assert "created_at" in created
    key = created["key"]
    assert key.startswith("odk_"), key
    assert key.startswith("odk_" + created["id"][len("key_"):] + "_"), key
    secret = key.rsplit("_", 1)[1]
    assert len(secret) >= 32, key

    # The key authenticates as a read-only member of the tenant.
    r = get_me(server, key)
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["role"] == "readonly" and me["tenant_id"] == tenant["id"], me

    # Listing never shows the secret.
    r = server.session(admin_token).get(server.url + "/v1/api-keys")
    assert r.status_code == 200, r.text
    assert secret not in r.text and key not in r.text
    items = {k["id"]: k for k in r.json()["items"]}
    assert created["id"] in items
    listed = items[created["id"]]
    assert "key" not in listed and "secret" not in listed, listed
    assert listed["name"] == name and listed["role"] == "readonly"
    assert "last_used_at" in listed

    # Read-only: may not create users.
    r = server.session(key).post(server.url + "/v1/users",
                                 json={"email": unique("x") + "@tenant.test",
                                       "password": USER_PASSWORD, "role": "developer"})
    check_error(r, 403, "forbidden")

    r = server.session(admin_token).delete(server.url + "/v1/api-keys/" + created["id"])
    assert r.status_code == 204, r.text
    check_error(get_me(server, key), 401, "unauthorized")
    r = server.session(admin_token).delete(server.url + "/v1/api-keys/" + created["id"])
    check_error(r, 404, "not_found")


def _flip(s, i):
    c = s[i]
    return s[:i] + ("a" if c != "a" else "b") + s[i + 1:]


def test_api_key_altered_is_rejected(server):
    _, _, admin_token = new_tenant(server)
    key = make_api_key(server, admin_token)["key"]
    prefix, secret = key.rsplit("_", 1)
    variants = {
        "secret first char": prefix + "_" + _flip(secret, 0),
        "secret last char": prefix + "_" + _flip(secret, len(secret) - 1),
        "secret truncated": prefix + "_" + secret[:-1],
        "secret extended": key + "a",
        "id char": _flip(key, 5),
        "no secret": prefix + "_",
        "prefix only": "odk_",
    }
    for what, bad in variants.items():
        assert bad != key
        r = get_me(server, bad)
        assert r.status_code == 401, (what, r.status_code, r.text)
        check_error(r, 401, "unauthorized")
    assert get_me(server, key).status_code == 200  # the real one still works


def test_api_key_with_admin_role_manages_users(server):
    tenant, _, admin_token = new_tenant(server)
    key = make_api_key(server, admin_token, role="admin")["key"]
    email = unique("bykey") + "@tenant.test"
    r = server.session(key).post(server.url + "/v1/users",
                                 json={"email": email, "password": USER_PASSWORD, "role": "developer"})
    assert r.status_code == 201, r.text
    assert get_me(server, server.login(email, USER_PASSWORD)["access_token"]).json()["tenant_id"] \
        == tenant["id"]


@pytest.mark.parametrize("body", [
    {"name": "k", "role": "platform_admin"},
    {"name": "k", "role": "root"},
    {"name": "k", "role": "readonly", "scope": "all"},
    {"role": "readonly"},
    {"name": "k"},
    {"name": 7, "role": "readonly"},
])
def test_api_key_create_refuses_bad_bodies(server, tenant_tokens, body):
    r = server.session(tenant_tokens["admin"]).post(server.url + "/v1/api-keys", json=body)
    check_error(r, 400, "bad_request")


@pytest.mark.parametrize("role", ["operator", "developer", "readonly"])
def test_api_keys_are_admin_only(server, tenant_tokens, role):
    email = make_user(server, tenant_tokens["admin"], role)["email"]
    token = server.login(email, USER_PASSWORD)["access_token"]
    s = server.session(token)
    check_error(s.post(server.url + "/v1/api-keys", json={"name": "k", "role": "readonly"}),
                403, "forbidden")
    check_error(s.get(server.url + "/v1/api-keys"), 403, "forbidden")


def test_platform_admin_cannot_create_tenant_api_keys(server):
    r = server.session(server.admin_token()).post(server.url + "/v1/api-keys",
                                                  json={"name": "k", "role": "admin"})
    check_error(r, 403, "forbidden")
