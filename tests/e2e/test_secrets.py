"""Secrets against the real odysseusd (issue 7, docs/secrets.md): values in,
never out; grants checked when a deployment names a secret; rotation (given
or generated) restarting the deployments that use it; delivery to the agent
of the node that runs a granted container, and to no one else; audit; no
plaintext in the data directory; a wrong key-encryption key stops the start.
"""
import base64
import os
import subprocess
import time

import pytest

from conftest import ODYSSEUSD, USER_PASSWORD, check_error, clean_env, make_user, new_tenant, unique
from test_deployments import FakeAgent, deploy
from test_nodes import agent_conn, call

VALUE = "s3cr3t-" + "x" * 20


def put(s, url, name, value=VALUE, **kw):
    return s.put(url + "/v1/secrets/" + name, json=dict(value=value, **kw))


def test_values_go_in_and_never_come_out(server):
    _, _, token = new_tenant(server)
    s = server.session(token)
    r = put(s, server.url, "db")
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["version"] == 1 and m["grants"] == [] and len(m["versions"]) == 1
    r = put(s, server.url, "db", value="second-value-123")
    assert r.status_code == 200 and r.json()["version"] == 2
    for r in (s.get(server.url + "/v1/secrets"), s.get(server.url + "/v1/secrets/db")):
        assert r.status_code == 200
        assert VALUE not in r.text and "second-value-123" not in r.text
    check_error(put(s, server.url, "db", value="v" * (64 * 1024 + 1)), 413, "payload_too_large")
    check_error(put(s, server.url, "Bad_Name"), 404, "not_found")
    check_error(s.put(server.url + "/v1/secrets/x", json={"value": 5}), 400, "bad_request")
    check_error(s.put(server.url + "/v1/secrets/x", json={"value": "v", "extra": 1}), 400,
                "bad_request")
    check_error(s.get(server.url + "/v1/secrets/nope"), 404, "not_found")
    assert s.delete(server.url + "/v1/secrets/db").status_code == 204
    check_error(s.get(server.url + "/v1/secrets/db"), 404, "not_found")
    # no plaintext in the data directory, nor in the key file's place
    put(s, server.url, "kept", value="needle-value-4242-unique")
    for root, _, files in os.walk(server.data_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert b"needle-value-4242-unique" not in fh.read(), f


def test_roles(server):
    _, _, token = new_tenant(server)
    s = server.session(token)
    put(s, server.url, "r1")
    for role, can_list, can_write in (("operator", True, True), ("developer", True, False),
                                      ("readonly", False, False)):
        u = make_user(server, token, role)
        su = server.session(server.login(u["email"], USER_PASSWORD)["access_token"])
        assert (su.get(server.url + "/v1/secrets").status_code == 200) == can_list, role
        assert (put(su, server.url, unique("w")).status_code == 201) == can_write, role


def test_grants_rotation_and_delivery(fresh_server, tmp_path):
    srv = fresh_server(extra=("--heartbeat-interval", "1"))
    t, _, token = new_tenant(srv)
    s = srv.session(token)
    a = FakeAgent(srv, tmp_path, "sec-node")
    assert put(s, srv.url, "db").status_code == 201
    # a deployment naming an ungranted (or missing) secret is refused, naming it
    r = deploy(s, srv.url, name="app", replicas=1, secrets=["db"])
    check_error(r, 400, "bad_request")
    assert "db" in r.json()["error"]["message"]
    r = deploy(s, srv.url, name="app", replicas=1, secrets=["nope"])
    check_error(r, 400, "bad_request")
    assert s.post(srv.url + "/v1/secrets/db/grants",
                  json={"deployments": ["app"]}).json()["grants"] == ["app"]
    assert deploy(s, srv.url, name="app", replicas=1, secrets=["db"]).status_code == 201
    (x,) = a.run_all()
    assert x["secrets"] == ["db"]
    conn = agent_conn(srv, a.crt, a.key)
    status, body = call(conn, "GET", "/agent/v1/secrets/" + x["container"])
    assert status == 200, body
    (got,) = body["secrets"]
    assert got["name"] == "db" and got["version"] == 1
    pad = "=" * (-len(got["value_b64"]) % 4)
    assert base64.urlsafe_b64decode(got["value_b64"] + pad).decode() == VALUE
    # another node gets nothing for it: refused (403), and an unknown id is 404
    b = FakeAgent(srv, tmp_path, "other-node")
    bconn = agent_conn(srv, b.crt, b.key)
    status, _ = call(bconn, "GET", "/agent/v1/secrets/" + x["container"])
    assert status == 403
    status, _ = call(bconn, "GET", "/agent/v1/secrets/ctr_" + "0" * 32)
    assert status == 404
    # rotation: a new version, and the deployment's replicas are replaced
    r = s.post(srv.url + "/v1/secrets/db/rotate", json={"value": "rotated-value-77"})
    assert r.status_code == 200 and r.json()["version"] == 2
    deadline = time.time() + 10
    while time.time() < deadline and x["container"] in {y["container"] for y in a.run_all()} and \
            len(a.assignments()) < 2:
        time.sleep(0.3)
    new = [y for y in a.assignments() if y["container"] != x["container"]]
    assert new, a.assignments()
    status, body = call(conn, "GET", "/agent/v1/secrets/" + new[0]["container"])
    assert status == 200 and body["secrets"][0]["version"] == 2
    # the rotation's progress: which deployment's containers hold which version
    in_use = s.get(srv.url + "/v1/secrets/db").json()["in_use"]
    assert {"deployment": "app", "version": 2, "containers": 1} in in_use, in_use
    # generated rotation needs a policy
    check_error(s.post(srv.url + "/v1/secrets/db/rotate", json={}), 400, "bad_request")
    r = put(s, srv.url, "db", rotation={"every_seconds": 3600, "generate_length": 40})
    assert r.status_code == 200 and r.json()["rotation"]["generate_length"] == 40
    assert s.post(srv.url + "/v1/secrets/db/rotate").json()["version"] == 4
    check_error(s.post(srv.url + "/v1/secrets/nope/rotate", json={"value": "v"}), 404,
                "not_found")
    # revoking the grant stops delivery
    assert s.post(srv.url + "/v1/secrets/db/grants", json={"deployments": []}).status_code == 200
    status, _ = call(conn, "GET", "/agent/v1/secrets/" + new[0]["container"])
    assert status == 403
    # all of it audited in the tenant's records, values nowhere
    recs = s.get(srv.url + "/v1/audit", params={"action": "secret.", "limit": 500}).json()["items"]
    actions = [r["action"] for r in recs]
    for want in ("secret.write", "secret.grant", "secret.rotate", "secret.deliver"):
        assert want in actions, actions
    deliveries = [r for r in recs if r["action"] == "secret.deliver"]
    assert {r["actor"]["type"] for r in deliveries} == {"agent"}
    assert {r["outcome"] for r in deliveries} >= {"success", "denied"}
    for log in os.listdir(srv.data_dir):
        if log.endswith(".log"):
            text = open(os.path.join(srv.data_dir, log)).read()
            assert VALUE not in text and "rotated-value-77" not in text


def test_a_wrong_key_encryption_key_stops_the_start(fresh_server, restart):
    srv = fresh_server()
    s = srv.session(new_tenant(srv)[2])
    assert put(s, srv.url, "k").status_code == 201
    data_dir = srv.data_dir
    assert srv.stop() == 0
    kek = data_dir.rstrip("/") + ".kek"
    good = open(kek).read()
    assert os.stat(kek).st_mode & 0o077 == 0
    with open(kek, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    p = subprocess.run([ODYSSEUSD, "serve", "--data-dir", data_dir, "--listen", "127.0.0.1:0",
                        "--agent-listen", "127.0.0.1:0"], capture_output=True, text=True,
                       env=clean_env(), timeout=30)
    assert p.returncode != 0
    assert "does not open the data keys" in p.stderr, p.stderr
    with open(kek, "w") as f:
        f.write(good)
    srv2 = restart(data_dir)
    assert srv2.session(srv2.admin_token()).get(srv2.url + "/readyz").status_code == 200


def test_rotation_policy_rotates_by_itself_and_old_versions_go(fresh_server, tmp_path):
    import sqlite3
    srv = fresh_server(extra=("--heartbeat-interval", "1"))
    t, _, token = new_tenant(srv)
    s = srv.session(token)
    r = put(s, srv.url, "auto", rotation={"every_seconds": 60, "generate_length": 24})
    assert r.status_code == 201, r.text
    # a replica that holds version 1
    a = FakeAgent(srv, tmp_path, "holder")
    assert s.post(srv.url + "/v1/secrets/auto/grants", json={"deployments": ["user"]}).status_code == 200
    assert deploy(s, srv.url, name="user", replicas=1, secrets=["auto"]).status_code == 201
    conn = agent_conn(srv, a.crt, a.key)
    (x,) = a.run_all()
    assert call(conn, "GET", "/agent/v1/secrets/" + x["container"])[1]["secrets"][0]["version"] == 1
    # as if the last rotation were long ago (the daemon looks every 30 s)
    db = os.path.join(srv.data_dir, "tenants", t["id"] + ".db")
    with sqlite3.connect(db) as c:
        c.execute("UPDATE secrets SET rotated_at = 0 WHERE name = 'auto'")
    deadline = time.time() + 45
    while time.time() < deadline:
        a.beat()  # heartbeats keep the node ready (and its connection open)
        if s.get(srv.url + "/v1/secrets/auto").json()["version"] >= 2:
            break
        time.sleep(1)
    conn = agent_conn(srv, a.crt, a.key)
    m = s.get(srv.url + "/v1/secrets/auto").json()
    assert m["version"] == 2, m
    recs = s.get(srv.url + "/v1/audit", params={"action": "secret.rotate"}).json()["items"]
    assert any(r["actor"]["type"] == "system" and r["reason"] == "rotation policy" for r in recs)
    # the replica is replaced and the new one gets version 2; version 1 is then revoked
    deadline = time.time() + 15
    new = []
    while time.time() < deadline and not new:
        new = [y for y in a.run_all() if y["container"] != x["container"]]
        time.sleep(0.5)
    assert new
    assert call(conn, "GET", "/agent/v1/secrets/" + new[0]["container"])[1]["secrets"][0]["version"] == 2
    deadline = time.time() + 45
    while time.time() < deadline:
        a.run_all()
        if [v["version"] for v in s.get(srv.url + "/v1/secrets/auto").json()["versions"]] == [2]:
            break
        time.sleep(1)
    assert [v["version"] for v in s.get(srv.url + "/v1/secrets/auto").json()["versions"]] == [2]
    recs = s.get(srv.url + "/v1/audit", params={"action": "secret.revoke_version"}).json()["items"]
    assert recs and recs[0]["resource"] == "/v1/secrets/auto"


def test_kek_rotation_keeps_every_value(fresh_server, restart, tmp_path):
    srv = fresh_server()
    t, _, token = new_tenant(srv)
    s = srv.session(token)
    assert put(s, srv.url, "kept", value="value-before-rotation").status_code == 201
    data_dir = srv.data_dir
    assert srv.stop() == 0
    old = data_dir.rstrip("/") + ".kek"
    new = str(tmp_path / "new.kek")
    p = subprocess.run([ODYSSEUSD, "kek", "rotate", "--data-dir", data_dir, "--new-kek-file", new],
                       capture_output=True, text=True, env=clean_env())
    assert p.returncode == 0, p.stdout + p.stderr
    os.unlink(old)  # only the new key is needed now
    srv2 = restart(data_dir, extra=("--kek-file", new))
    a = FakeAgent(srv2, tmp_path, "after-kek")
    s = srv2.session(token)
    assert s.post(srv2.url + "/v1/secrets/kept/grants", json={"deployments": ["k"]}).status_code == 200
    assert deploy(s, srv2.url, name="k", replicas=1, secrets=["kept"]).status_code == 201
    (x,) = a.run_all()
    status, body = call(agent_conn(srv2, a.crt, a.key), "GET", "/agent/v1/secrets/" + x["container"])
    assert status == 200
    got = body["secrets"][0]["value_b64"]
    assert base64.urlsafe_b64decode(got + "=" * (-len(got) % 4)) == b"value-before-rotation"
