"""`odysseus nodes token|list|get|rm` against the real odysseusd.

The module has a server of its own, so its node inventory holds only what
these tests enroll. A node is enrolled from Python the way odysseus-agent
does it: TLS to the agent port with the ALPN protocol odysseus-enroll/1,
POST /agent/v1/enroll with the token and a CSR from `openssl req`; its
heartbeats use the certificate it got (mutual TLS).
Contract: docs/cli.md (nodes, exit codes), docs/nodes.md.
"""
import datetime
import hashlib
import http.client
import json
import os
import re
import ssl
import subprocess
import time
import urllib.parse

import pytest

from cli_helpers import (EXIT_FORBIDDEN, EXIT_INVALID, EXIT_NOT_FOUND, Cli, assert_error,
                         assert_usage, own_server, table)
from conftest import TENANT_ADMIN_PASSWORD, unique

TOKEN = re.compile(r"^odx-enroll-([0-9a-f]{64})-([0-9a-f]{88})$")
NODE_HEADERS = ["ID", "NAME", "STATE", "LAST_SEEN", "CPUS", "MEMORY", "CERT_EXPIRES"]
USAGE = "usage: odysseus nodes token"
MISSING_ID = "nod_" + "0" * 32
HEARTBEAT = {"agent_version": "0.1.0",
             "capacity": {"cpus": 2, "memory_bytes": 24 * 2**30, "disk_bytes": 100 * 2**30},
             "usage": {"cpu_percent": 3.5, "memory_bytes": 2**30, "disk_bytes": 5 * 2**30},
             "docker_root": "/var/lib/docker"}


def parse_time(s):
    s = re.sub(r"\.\d+Z$", "Z", s)
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def ca_fingerprint(ca_path):
    """SHA-256 of the DER of the (first) certificate in ca_path, as hex."""
    with open(ca_path) as f:
        pem = f.read()
    first = pem[:pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


# --- the agent side, from Python ------------------------------------------------

def make_csr(d):
    """A P-256 key in d/node.key and a CSR for it (PEM text)."""
    key = os.path.join(d, "node.key")
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out",
                    key], check=True, capture_output=True)
    r = subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=odysseus-agent"],
                       check=True, capture_output=True, text=True)
    return key, r.stdout


def agent_post(server, path, body, alpn=None, cert=None):
    """POST body as JSON to the agent port; returns (status, JSON body)."""
    ctx = ssl.create_default_context(cafile=server.ca)
    if alpn:
        ctx.set_alpn_protocols([alpn])
    if cert:
        ctx.load_cert_chain(*cert)
    u = urllib.parse.urlsplit(server.agent_url)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)
    try:
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None
    finally:
        conn.close()


def enroll(server, token, d):
    """Enrolls a node with token; returns (node id, (cert path, key path))."""
    key, csr = make_csr(d)
    status, body = agent_post(server, "/agent/v1/enroll", {"token": token, "csr": csr},
                              alpn="odysseus-enroll/1")
    assert status == 201, body
    crt = os.path.join(d, "node.crt")
    with open(crt, "w") as f:
        f.write(body["certificate"])
    return body["node_id"], (crt, key)


# --- fixtures --------------------------------------------------------------------

@pytest.fixture(scope="module")
def nodes_server():
    """A server of this module's own: its inventory starts empty."""
    yield from own_server("odx-e2e-nodes-")


@pytest.fixture
def admin(tmp_path, nodes_server):
    return Cli(tmp_path, nodes_server).login(nodes_server.admin_email,
                                             nodes_server.admin_password)


# --- an empty inventory (runs first: nothing is enrolled yet) ---------------------

def test_empty_inventory(admin):
    p = admin.ok("nodes", "list")
    headers, rows = table(p.stdout)
    assert headers == NODE_HEADERS
    assert rows == []
    assert admin.json("nodes", "list") == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("args", [("get", MISSING_ID), ("rm", MISSING_ID), ("get", "bogus"),
                                  ("rm", "nod_../../v1/tenants")])
def test_missing_node_is_not_found(admin, args):
    p = admin.run("nodes", *args)
    assert_error(p, "not_found", EXIT_NOT_FOUND)
    assert p.stdout == ""


# --- nodes token -----------------------------------------------------------------

def test_token_alone_on_stdout(admin, nodes_server):
    p = admin.ok("nodes", "token")
    assert p.stdout.endswith("\n") and p.stdout.count("\n") == 1, p.stdout
    token = p.stdout.strip()
    m = TOKEN.match(token)
    assert m, token
    assert m.group(1) == ca_fingerprint(nodes_server.ca)
    assert token not in p.stderr and m.group(2) not in p.stderr
    lines = p.stderr.splitlines()
    assert re.fullmatch(r"enrollment token ent_[0-9a-f]{24} for any node, valid until "
                        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; shown once", lines[0]), p.stderr
    # The token's id is the first 24 hex of its secret.
    assert lines[0].split()[2] == "ent_" + m.group(2)[:24]
    assert ("odysseus-agent enroll --server https://127.0.0.1:8444 --token <token>"
            in p.stderr), p.stderr
    until = parse_time(lines[0].split("valid until ")[1].split(";")[0])
    assert abs(until - (time.time() + 86400)) < 120


def test_token_json(admin, nodes_server):
    t = admin.json("nodes", "token")
    assert set(t) == {"id", "token", "expires_at", "node_name", "ca_fingerprint"}
    assert TOKEN.match(t["token"])
    assert t["ca_fingerprint"] == ca_fingerprint(nodes_server.ca)
    assert t["token"].split("-")[2] == t["ca_fingerprint"]
    assert t["node_name"] is None


def test_each_token_is_new(admin):
    a, b = admin.ok("nodes", "token").stdout, admin.ok("nodes", "token").stdout
    assert a != b


@pytest.mark.parametrize("ttl,seconds", [("90s", 90), ("30m", 1800), ("24h", 86400),
                                         ("3600", 3600), ("1s", 1), ("1440m", 86400),
                                         ("86400", 86400), ("007h", 7 * 3600)])
def test_ttl(admin, ttl, seconds):
    before = time.time()
    t = admin.json("nodes", "token", "--ttl", ttl)
    until = parse_time(t["expires_at"])
    assert before + seconds - 2 <= until <= time.time() + seconds + 2, (t, seconds)


@pytest.mark.parametrize("ttl,words", [
    ("0", "at least 1s"), ("0s", "at least 1s"), ("0h", "at least 1s"),
    ("25h", "at most 24h"), ("86401", "at most 24h"), ("1441m", "at most 24h"),
    ("99999999999999999999999999h", "at most 24h"),
    ("garbage", "a duration"), ("", "a duration"), ("-5", "a duration"),
    ("5x", "a duration"), ("1.5h", "a duration"), ("h", "a duration"),
    ("10 s", "a duration"), ("10ss", "a duration"), ("1d", "a duration"),
    ("+5", "a duration")])
def test_bad_ttl_is_a_usage_error_before_any_call(tmp_path, nodes_server, ttl, words):
    # Not logged in: a request would exit 3, so exit 2 shows nothing was sent.
    p = Cli(tmp_path, nodes_server).run("nodes", "token", "--ttl=" + ttl)
    assert_usage(p, "--ttl must be " + words, USAGE)


def test_name_binds_the_token(admin, nodes_server):
    name = unique("web").replace("_", "-")
    p = admin.ok("nodes", "token", "--name", name, "--ttl", "30m")
    assert TOKEN.match(p.stdout.strip())
    assert "for node %s, valid until" % name in p.stderr, p.stderr
    t = admin.json("nodes", "token", "--name", name)
    assert t["node_name"] == name


@pytest.mark.parametrize("name", ["Web_1", "-web", "a" * 64, "web 1"])
def test_bad_name_is_refused_by_the_server(admin, name):
    p = admin.run("nodes", "token", "--name", name)
    assert_error(p, "bad_request", EXIT_INVALID)
    assert p.stdout == ""


def test_empty_name_is_a_usage_error(admin):
    assert_usage(admin.run("nodes", "token", "--name="), "--name must not be empty", USAGE)


@pytest.mark.parametrize("args", [("token",), ("list",), ("get", MISSING_ID), ("rm", MISSING_ID)])
def test_tenant_admin_is_forbidden(tmp_path, nodes_server, args):
    email = unique("nodes-admin") + "@tenant.test"
    nodes_server.create_tenant(unique("nodes-tenant"), email)
    c = Cli(tmp_path, nodes_server, "tenant").login(email, TENANT_ADMIN_PASSWORD)
    p = c.run("nodes", *args)
    assert_error(p, "forbidden", EXIT_FORBIDDEN)
    assert p.stdout == ""


def test_help_lists_the_nodes_commands(tmp_path, nodes_server):
    p = Cli(tmp_path, nodes_server).ok("--help")
    for usage in ("nodes token [--ttl DURATION] [--name NAME]", "nodes list", "nodes get ID",
                  "nodes rm ID"):
        assert usage in p.stdout, p.stdout


# --- a real node: enroll, list, get, rm, revoked -----------------------------------

def test_enrolled_node_listed_then_revoked(admin, nodes_server, tmp_path):
    name = unique("node").replace("_", "-")
    token = admin.ok("nodes", "token", "--name", name, "--ttl", "5m").stdout.strip()
    node_id, cert = enroll(nodes_server, token, str(tmp_path))
    assert re.fullmatch(r"nod_[0-9a-f]{32}", node_id)
    # The token was used up.
    (tmp_path / "again").mkdir()
    _, csr = make_csr(str(tmp_path / "again"))
    status, _ = agent_post(nodes_server, "/agent/v1/enroll", {"token": token, "csr": csr},
                           alpn="odysseus-enroll/1")
    assert status == 401

    status, body = agent_post(nodes_server, "/agent/v1/status", HEARTBEAT, cert=cert)
    assert status == 200, body

    headers, rows = table(admin.ok("nodes", "list").stdout)
    assert headers == NODE_HEADERS
    assert len(rows) == 1, rows
    row = dict(zip(headers, rows[0]))
    assert row["ID"] == node_id and row["NAME"] == name and row["STATE"] == "ready"
    assert row["CPUS"] == "2" and row["MEMORY"] == "24.0GiB"
    for col in ("LAST_SEEN", "CERT_EXPIRES"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row[col]), row

    items = admin.json("nodes", "list")["items"]
    assert [n["id"] for n in items] == [node_id]
    node = admin.json("nodes", "get", node_id)
    assert node["id"] == node_id and node["name"] == name
    assert node["capacity"] == HEARTBEAT["capacity"]
    assert node["agent_version"] == "0.1.0"
    assert set(node["certificate"]) == {"not_after", "fingerprint"}
    headers, rows = table(admin.ok("nodes", "get", node_id).stdout)
    assert headers == NODE_HEADERS and rows[0][:3] == [node_id, name, "ready"]

    p = admin.ok("nodes", "rm", node_id)
    assert p.stdout == "node %s revoked\n" % node_id
    assert table(admin.ok("nodes", "list").stdout)[1] == []
    assert_error(admin.run("nodes", "get", node_id), "not_found", EXIT_NOT_FOUND)
    assert_error(admin.run("nodes", "rm", node_id), "not_found", EXIT_NOT_FOUND)

    status, body = agent_post(nodes_server, "/agent/v1/status", HEARTBEAT, cert=cert)
    assert status == 401, body
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["message"] == "node revoked"


def test_list_follows_every_page_and_rm_prints_nothing_with_json(admin, nodes_server,
                                                                tmp_path):
    ids = []
    for i in range(3):
        d = tmp_path / ("node%d" % i)
        d.mkdir()
        ids.append(enroll(nodes_server, admin.ok("nodes", "token").stdout.strip(), str(d))[0])
    one_per_page = {"ODYSSEUS_LIST_LIMIT": "1"}
    p = admin.run("--output", "json", "nodes", "list", env=one_per_page)
    assert p.returncode == 0, p.stderr
    page = json.loads(p.stdout)
    assert page["next_cursor"] is None
    assert sorted(n["id"] for n in page["items"]) == sorted(ids)
    # Enrolled without a name: node-<first 8 hex of the id>; no heartbeat yet.
    for n in page["items"]:
        assert n["name"] == "node-" + n["id"][4:12] and n["capacity"] is None, n
    p = admin.run("nodes", "list", env=one_per_page)
    headers, rows = table(p.stdout)
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert all(r[4] == "-" and r[5] == "-" for r in rows), rows
    for node_id in ids:
        p = admin.ok("--output", "json", "nodes", "rm", node_id)
        assert p.stdout == ""
    assert admin.json("nodes", "list")["items"] == []
