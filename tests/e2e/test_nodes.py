"""Nodes against the real odysseusd (docs/nodes.md, docs/pki.md), with Python
as the agent: the TLS rules of the agent port, enrollment tokens, renewal,
revocation, reachability, CA rotation. tests/e2e/test_agent.py drives the
real odysseus-agent.
"""
import hashlib
import http.client
import json
import os
import re
import sqlite3
import ssl
import subprocess
import time

import pytest

from conftest import ODYSSEUSD, check_error, clean_env, new_tenant

ALPN = "odysseus-enroll/1"
STATUS = {"agent_version": "test", "capacity": {"cpus": 2, "memory_bytes": 1 << 30,
                                                 "disk_bytes": 1 << 34},
          "usage": {"cpu_percent": 1.5, "memory_bytes": 1 << 20, "disk_bytes": 1 << 30}}


def make_csr(tmp_path, name="agent", curve="prime256v1"):
    """A P-256 key and its CSR (paths)."""
    key, csr = tmp_path / (name + ".key"), tmp_path / (name + ".csr")
    subprocess.run(["openssl", "ecparam", "-name", curve, "-genkey", "-noout", "-out", key],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=ignored", "-out", csr],
                   check=True, capture_output=True)
    return key, csr


def self_signed(tmp_path, name="rogue"):
    key, crt = tmp_path / (name + ".key"), tmp_path / (name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "1", "-subj", "/CN=nod_" + "a" * 32], check=True, capture_output=True)
    return key, crt


def admin(srv):
    return srv.session(srv.admin_token())


def new_token(srv, **body):
    r = admin(srv).post(srv.url + "/v1/nodes/enrollment-tokens", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def agent_conn(srv, cert=None, key=None, enroll=False):
    ctx = ssl.create_default_context(cafile=srv.ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    if enroll:
        ctx.set_alpn_protocols([ALPN])
    return http.client.HTTPSConnection("127.0.0.1", srv.agent_port, context=ctx, timeout=10)


def call(conn, method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if data else None)


def enroll(srv, tmp_path, token, name=None, tag="agent"):
    """Enrolls a Python agent; returns (answer, cert path, key path)."""
    key, csr = make_csr(tmp_path, tag)
    body = {"token": token, "csr": csr.read_text()}
    if name:
        body["name"] = name
    status, ans = call(agent_conn(srv, enroll=True), "POST", "/agent/v1/enroll", body)
    assert status == 201, ans
    crt = tmp_path / (tag + ".crt")
    crt.write_text(ans["certificate"])
    return ans, crt, key


def audit_rows(srv, action):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(srv.data_dir, "audit.db"), uri=True)
    try:
        return db.execute("SELECT actor_type, actor_id, resource, outcome, reason FROM records "
                          "WHERE action = ? ORDER BY seq", (action,)).fetchall()
    finally:
        db.close()


def wait_for(pred, timeout=10, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


# --- enrollment tokens -------------------------------------------------------------------

def test_token_shape_and_fingerprint(server):
    t = new_token(server)
    assert re.fullmatch(r"odx-enroll-[0-9a-f]{64}-[0-9a-f]{88}", t["token"]), t
    der = ssl.PEM_cert_to_DER_cert(open(server.ca).read())
    assert t["ca_fingerprint"] == hashlib.sha256(der).hexdigest()
    assert t["token"][11:75] == t["ca_fingerprint"]
    assert t["token"][76:100] == t["id"][4:]
    assert t["node_name"] is None
    # only the hash is stored
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(server.data_dir, "platform.db"),
                         uri=True)
    stored = db.execute("SELECT quote(secret_hash) FROM enrollment_tokens WHERE id = ?",
                        (t["id"],)).fetchone()[0]
    db.close()
    assert t["token"][100:] not in stored.lower()


@pytest.mark.parametrize("body", [{"ttl_seconds": 0}, {"ttl_seconds": 86401},
                                  {"ttl_seconds": "60"}, {"node_name": "Bad_Name"},
                                  {"node_name": "-x"}, {"extra": 1}])
def test_token_bad_requests(server, body):
    r = admin(server).post(server.url + "/v1/nodes/enrollment-tokens", json=body)
    check_error(r, 400, "bad_request")


def test_tenant_callers_cannot_make_tokens(server):
    _, _, token = new_tenant(server)
    r = server.session(token).post(server.url + "/v1/nodes/enrollment-tokens", json={})
    check_error(r, 403, "forbidden")


def test_enroll_once_then_refused(server, tmp_path):
    t = new_token(server)
    ans, crt, key = enroll(server, tmp_path, t["token"])
    assert re.fullmatch(r"nod_[0-9a-f]{32}", ans["node_id"])
    assert ans["name"] == "node-" + ans["node_id"][4:12]
    assert "BEGIN CERTIFICATE" in ans["certificate"] and "BEGIN CERTIFICATE" in ans["ca_bundle"]
    # the certificate names the node and chains to the CA
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-ext", "extendedKeyUsage",
                          "-in", crt], capture_output=True, text=True, check=True).stdout
    assert ans["node_id"] in out and "TLS Web Client Authentication" in out
    v = subprocess.run(["openssl", "verify", "-CAfile", server.ca, crt], capture_output=True,
                       text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    # the same token again
    _, csr2 = make_csr(tmp_path, "again")
    status, body = call(agent_conn(server, enroll=True), "POST", "/agent/v1/enroll",
                        {"token": t["token"], "csr": csr2.read_text()})
    assert status == 401 and body["error"]["message"] == "invalid or expired enrollment token"
    rows = audit_rows(server, "node.enroll")
    assert ("agent", ans["node_id"], "/v1/nodes/" + ans["node_id"], "success", "") in rows
    assert ("agent", t["id"], "/agent/v1/enroll", "denied", "invalid_token") in rows


def test_expired_and_forged_tokens(server, tmp_path):
    t = new_token(server, ttl_seconds=1)
    time.sleep(1.2)
    _, csr = make_csr(tmp_path)
    conn = agent_conn(server, enroll=True)
    status, body = call(conn, "POST", "/agent/v1/enroll", {"token": t["token"], "csr": csr.read_text()})
    assert status == 401
    good = new_token(server)["token"]
    for forged in (good[:-1] + ("0" if good[-1] != "0" else "1"), good.upper(), good + "0",
                   "odx-enroll-", "", "x" * 200):
        status, body = call(conn, "POST", "/agent/v1/enroll", {"token": forged, "csr": csr.read_text()})
        assert status == 401, (forged, body)
        assert body["error"]["message"] == "invalid or expired enrollment token"
    # the real one was not used up by the forgeries
    enroll(server, tmp_path, good, tag="good")


def test_bad_csr_leaves_the_token_and_bound_names(server, tmp_path):
    t = new_token(server, node_name="web-7")
    conn = agent_conn(server, enroll=True)
    for csr in ("not a csr", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"):
        status, body = call(conn, "POST", "/agent/v1/enroll", {"token": t["token"], "csr": csr})
        assert status == 400, body
    # RSA keys are refused
    key, csr = tmp_path / "rsa.key", tmp_path / "rsa.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-subj", "/CN=x", "-out", csr], check=True, capture_output=True)
    status, body = call(conn, "POST", "/agent/v1/enroll", {"token": t["token"], "csr": csr.read_text()})
    assert status == 400, body
    _, good = make_csr(tmp_path, "bound")
    status, body = call(conn, "POST", "/agent/v1/enroll",
                        {"token": t["token"], "csr": good.read_text(), "name": "other"})
    assert status == 400 and "bound" in body["error"]["message"]
    status, body = call(conn, "POST", "/agent/v1/enroll",
                        {"token": t["token"], "csr": good.read_text(), "extra": True})
    assert status == 400
    ans, _, _ = enroll(server, tmp_path, t["token"], tag="bound2")
    assert ans["name"] == "web-7"
    # a second live node may not take the name
    status, body = call(conn, "POST", "/agent/v1/enroll",
                        {"token": new_token(server)["token"], "csr": good.read_text(),
                         "name": "web-7"})
    assert status == 409, body


# --- the TLS rules of the agent port -----------------------------------------------------

def tls_refused(srv, cert=None, key=None, alpn=None):
    """True when the agent port refuses the handshake (TLS 1.3 may report it on the
    first read) and no HTTP answer comes."""
    ctx = ssl.create_default_context(cafile=srv.ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    conn = http.client.HTTPSConnection("127.0.0.1", srv.agent_port, context=ctx, timeout=5)
    try:
        conn.request("GET", "/agent/v1/assignments?wait=0")
        conn.getresponse().read()
    except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected):
        return True
    return False


def test_handshakes_without_a_ca_certificate_are_refused(server, tmp_path, fresh_server):
    before = len(audit_rows(server, "agent.handshake_rejected"))
    assert tls_refused(server)  # no certificate
    assert tls_refused(server, alpn=["http/1.1"])
    k, c = self_signed(tmp_path)
    assert tls_refused(server, c, k)  # self-signed
    other = fresh_server()  # another CA issues a real client certificate
    ans, crt, key = enroll(other, tmp_path, new_token(other)["token"], tag="other")
    assert tls_refused(server, crt, key)
    # the server's own CA certificate as a client certificate: no key, so use the
    # server's leaf instead — serverAuth only, refused for a client
    pki = os.path.join(server.data_dir, "pki")
    assert tls_refused(server, os.path.join(pki, "server.crt"), os.path.join(pki, "server.key"))
    rows = wait_for(lambda: (lambda r: r if len(r) >= before + 5 else None)(
        audit_rows(server, "agent.handshake_rejected")))
    assert rows and len(rows) >= before + 5, rows
    assert all(r[3] == "denied" for r in rows)
    assert {"certificate required", "unknown CA"} & {r[4] for r in rows}, rows
    # the enrollment protocol without a certificate serves enrollment only
    status, body = call(agent_conn(server, enroll=True), "GET", "/agent/v1/assignments?wait=0")
    assert status == 401
    # the public port never asks for a certificate
    assert admin(server).get(server.url + "/v1/nodes").status_code == 200


# --- heartbeats, inventory, revocation, renewal -------------------------------------------

def test_heartbeat_inventory_renew_and_revoke(server, tmp_path):
    ans, crt, key = enroll(server, tmp_path, new_token(server)["token"], name="hb-node")
    nid = ans["node_id"]
    conn = agent_conn(server, crt, key)
    status, body = call(conn, "POST", "/agent/v1/status", dict(STATUS, docker_root="/var/lib/docker"))
    assert status == 200 and body["heartbeat_interval_s"] == ans["heartbeat_interval_s"]
    node = admin(server).get(server.url + "/v1/nodes/" + nid).json()
    assert node["name"] == "hb-node" and node["state"] == "ready"
    assert node["capacity"] == STATUS["capacity"] and node["usage"] == STATUS["usage"]
    assert node["docker_root"] == "/var/lib/docker" and node["agent_version"] == "test"
    listed = [n["id"] for n in admin(server).get(server.url + "/v1/nodes").json()["items"]]
    assert nid in listed
    # bad heartbeats
    for bad in ({}, dict(STATUS, extra=1), dict(STATUS, capacity={"cpus": -1, "memory_bytes": 1,
                                                                   "disk_bytes": 1})):
        status, body = call(conn, "POST", "/agent/v1/status", bad)
        assert status == 400, (bad, body)
    # long poll: the current state at once, then held while nothing changes
    status, body = call(conn, "GET", "/agent/v1/assignments?wait=1")
    assert status == 200 and body["assignments"] == [] and body["revision"] >= 1
    t0 = time.monotonic()
    status, body2 = call(conn, "GET", "/agent/v1/assignments?wait=1&since=%d" % body["revision"])
    assert status == 200 and body2 == body
    assert 0.9 <= time.monotonic() - t0 < 3
    status, _ = call(conn, "GET", "/agent/v1/assignments?wait=61")
    assert status == 400
    # renewal: a new key, the same node, a new certificate
    key2, csr2 = make_csr(tmp_path, "renewed")
    status, body = call(conn, "POST", "/agent/v1/renew", {"csr": csr2.read_text()})
    assert status == 200, body
    crt2 = tmp_path / "renewed.crt"
    crt2.write_text(body["certificate"])
    fp2 = hashlib.sha256(ssl.PEM_cert_to_DER_cert(body["certificate"])).hexdigest()
    node = admin(server).get(server.url + "/v1/nodes/" + nid).json()
    assert node["certificate"]["fingerprint"] == fp2
    conn2 = agent_conn(server, crt2, key2)
    assert call(conn2, "POST", "/agent/v1/status", STATUS)[0] == 200
    # revoke: the open connections are refused on their next request
    assert admin(server).delete(server.url + "/v1/nodes/" + nid).status_code == 204
    for c in (conn, conn2):
        status, body = call(c, "POST", "/agent/v1/status", STATUS)
        assert status == 401 and body["error"]["message"] == "node revoked"
    assert admin(server).get(server.url + "/v1/nodes/" + nid).status_code == 404
    assert admin(server).delete(server.url + "/v1/nodes/" + nid).status_code == 404
    rows = audit_rows(server, "node.delete")
    assert rows and rows[-1][2] == "/v1/nodes/" + nid
    assert ("agent", nid, "/v1/nodes/" + nid, "success", "") in audit_rows(server, "node.renew")


def test_unreachable_after_the_grace_period(fresh_server, tmp_path):
    srv = fresh_server(extra=("--heartbeat-interval", "1", "--node-grace", "2"))
    ans, crt, key = enroll(srv, tmp_path, new_token(srv)["token"])
    nid = ans["node_id"]
    assert ans["heartbeat_interval_s"] == 1
    conn = agent_conn(srv, crt, key)
    assert call(conn, "POST", "/agent/v1/status", STATUS)[0] == 200
    state = lambda: admin(srv).get(srv.url + "/v1/nodes/" + nid).json()["state"]
    assert state() == "ready"
    assert wait_for(lambda: state() == "unreachable", timeout=6)
    assert wait_for(lambda: ("system", "", "/v1/nodes/" + nid, "success",
                             "no heartbeat within the grace period")
                    in audit_rows(srv, "node.unreachable"), timeout=4)
    assert call(conn, "POST", "/agent/v1/status", STATUS)[0] == 200
    assert state() == "ready"
    assert wait_for(lambda: audit_rows(srv, "node.ready"), timeout=4)
    # the last heartbeat survives a restart (written by the sweep)
    assert srv.stop() == 0, srv.logs()[-2000:]


def test_ca_rotation_keeps_enrolled_nodes_working(fresh_server, restart, tmp_path):
    srv = fresh_server()
    ans, crt, key = enroll(srv, tmp_path, new_token(srv)["token"])
    old_ca = open(srv.ca).read()
    data_dir, port, agent_port = srv.data_dir, srv.port, srv.agent_port
    assert srv.stop() == 0
    p = subprocess.run([ODYSSEUSD, "ca", "rotate", "--data-dir", data_dir],
                       capture_output=True, text=True, env=clean_env())
    assert p.returncode == 0, p.stdout + p.stderr
    srv2 = restart(data_dir, port=port, agent_port=agent_port)
    new_ca = open(srv2.ca).read()
    assert new_ca != old_ca
    # an agent that trusts only the old CA still verifies the server (cross certificate)
    # and its old certificate is still accepted
    old_ca_file = tmp_path / "old-ca.crt"
    old_ca_file.write_text(old_ca)
    ctx = ssl.create_default_context(cafile=str(old_ca_file))
    ctx.load_cert_chain(crt, key)
    conn = http.client.HTTPSConnection("127.0.0.1", agent_port, context=ctx, timeout=10)
    assert call(conn, "POST", "/agent/v1/status", STATUS)[0] == 200
    # it renews onto the new CA, and gets both CAs to trust meanwhile
    key2, csr2 = make_csr(tmp_path, "moved")
    status, body = call(conn, "POST", "/agent/v1/renew", {"csr": csr2.read_text()})
    assert status == 200, body
    assert body["ca_bundle"].count("BEGIN CERTIFICATE") == 2
    crt2 = tmp_path / "moved.crt"
    crt2.write_text(body["certificate"])
    v = subprocess.run(["openssl", "verify", "-CAfile", srv2.ca, crt2], capture_output=True,
                       text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    conn2 = agent_conn(srv2, crt2, key2)
    assert call(conn2, "POST", "/agent/v1/status", STATUS)[0] == 200
    # new enrollments carry the new fingerprint
    t = new_token(srv2)
    der = ssl.PEM_cert_to_DER_cert(new_ca)
    assert t["ca_fingerprint"] == hashlib.sha256(der).hexdigest()


def test_private_keys_never_leave_the_agent(server, tmp_path):
    ans, crt, key = enroll(server, tmp_path, new_token(server)["token"], tag="secret")
    conn = agent_conn(server, crt, key)
    call(conn, "POST", "/agent/v1/status", STATUS)
    # the private part, after the PKCS#8 header every P-256 key shares
    body = "".join(l for l in key.read_text().splitlines() if "-----" not in l)
    for root, _, files in os.walk(server.data_dir):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                assert body[48:88].encode() not in f.read(), name
