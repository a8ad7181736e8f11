"""GET /v1/audit/export against the real odysseusd (docs/openapi.yaml, docs/audit.md).

- The export is the caller's tenant's records as they stood when it began,
  the same records GET /v1/audit pages through, in JSON lines (each record
  with its hashes: `odysseus audit verify --export F --partial` checks them
  and names a tampered one) or CSV.
- Filters, formats and bad parameters; who may export (Admin; the platform
  administrator gets the platform's own records only).
- Streaming: chunked, thousands of records; clients that stop reading or
  leave mid-stream neither stall other requests nor leak (the daemon runs
  under ASan and must exit 0 afterwards).
"""
import csv
import io
import json
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import (ODYSSEUS, USER_PASSWORD, check_error, list_all, make_user,
                      new_tenant)

EXIT_INTEGRITY = 11


def export(srv, token, **params):
    return srv.session(token).get(srv.url + "/v1/audit/export", params=params)


def lines(r):
    return [json.loads(x) for x in r.text.splitlines()]


@pytest.fixture(scope="module")
def tenant(server):
    t, email, token = new_tenant(server)
    for role in ("operator", "developer", "readonly"):
        make_user(server, token, role)
    # a denial, so outcome filters have something to find
    r = server.session(token).get(server.url + "/v1/tenants")
    assert r.status_code == 403
    return t, token


def test_json_export_is_the_records_of_the_list(server, tenant):
    t, token = tenant
    before = [x["seq"] for x in list_all(server, token, "/v1/audit")[0]]
    r = export(server, token)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/x-ndjson"
    assert r.headers.get("Transfer-Encoding") == "chunked"
    got = lines(r)
    seqs = [x["seq"] for x in got]
    after = [x["seq"] for x in list_all(server, token, "/v1/audit")[0]]
    assert seqs == sorted(seqs)
    assert set(before) <= set(seqs)
    assert seqs == [s for s in after if s <= seqs[-1]]
    assert all(x["tenant_id"] == t["id"] for x in got)
    assert "user.create" in {x["action"] for x in got}
    assert "denied" in {x["outcome"] for x in got}
    for x in got:
        assert len(x["hash"]) == 64 and len(x["prev_hash"]) == 64
        assert isinstance(x["time_ns"], int)


def test_export_verifies_and_tampering_is_named(server, tenant, tmp_path):
    _, token = tenant
    r = export(server, token)
    assert r.status_code == 200
    good = tmp_path / "export.jsonl"
    good.write_text(r.text)
    p = subprocess.run([ODYSSEUS, "audit", "verify", "--export", str(good), "--partial"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "audit log verified: %d records" % len(r.text.splitlines()) in p.stdout

    recs = lines(r)
    victim = recs[len(recs) // 2]
    victim["action"] = "user.delete"
    bad = tmp_path / "tampered.jsonl"
    bad.write_text("".join(json.dumps(x, separators=(",", ":")) + "\n" for x in recs))
    p = subprocess.run([ODYSSEUS, "audit", "verify", "--export", str(bad), "--partial"],
                       capture_output=True, text=True)
    assert p.returncode == EXIT_INTEGRITY, p.stdout + p.stderr
    assert "altered at seq %d" % victim["seq"] in p.stderr


def test_csv_export(server, tenant):
    _, token = tenant
    j = lines(export(server, token, action="user."))
    r = export(server, token, format="csv", action="user.")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    header, body = rows[0], rows[1:]
    assert "seq" in header and "hash" in header
    col = header.index("seq")
    assert [int(x[col]) for x in body] == [x["seq"] for x in j]


def test_filters(server, tenant):
    _, token = tenant
    users = lines(export(server, token, action="user."))
    assert users and all(x["action"].startswith("user.") for x in users)
    denied = lines(export(server, token, outcome="denied"))
    assert denied and all(x["outcome"] == "denied" for x in denied)
    first = lines(export(server, token))[0]
    mine = lines(export(server, token, actor=first["actor"]["id"]))
    assert mine and all(x["actor"]["id"] == first["actor"]["id"] for x in mine)
    assert lines(export(server, token, **{"from": "2999-01-01T00:00:00Z"})) == []


@pytest.mark.parametrize("params", [
    {"format": "xml"}, {"cursor": "5"}, {"limit": "10"}, {"from": "yesterday"},
    {"outcome": "maybe"}, {"action": "UPPER"},
])
def test_bad_parameters(server, tenant, params):
    _, token = tenant
    check_error(export(server, token, **params), 400, "bad_request")


def test_who_may_export(server, tenant):
    _, token = tenant
    # Every role is in test_authz.py's route x role matrix; here what each gets.
    op = make_user(server, token, "operator")
    op_token = server.login(op["email"], USER_PASSWORD)["access_token"]
    check_error(export(server, op_token), 403, "forbidden")
    check_error(export(server, None), 401, "unauthorized")
    # The platform administrator: the platform's own records, no tenant's (an
    # export writes the platform's tenant_id as "", the record's canonical bytes).
    pa = lines(export(server, server.admin_token()))
    assert pa and all(x["tenant_id"] == "" for x in pa)
    assert "tenant.create" in {x["action"] for x in pa}


def test_export_is_audited(server, tenant):
    _, token = tenant
    r = export(server, token, action="auth.")
    assert r.status_code == 200
    rid = r.headers["X-Request-Id"]
    recs = list_all(server, token, "/v1/audit")[0]
    mine = [x for x in recs if x["request_id"] == rid]
    assert [(x["action"], x["outcome"]) for x in mine] == [("audit.export", "success")]


# --- streaming -------------------------------------------------------------------


def fill(srv, token, n, threads=16):
    """Makes about n audit records quickly: concurrent audited reads share commits."""
    def work(k):
        s = srv.session(token)
        for _ in range(k):
            assert s.get(srv.url + "/v1/audit", params={"limit": 1}).status_code == 200
    ts = [threading.Thread(target=work, args=(n // threads,)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return threads * (n // threads)


def raw_export(srv, token):
    """Opens a TLS socket and sends the export request; returns the socket."""
    host, port = "127.0.0.1", srv.port
    sock = socket.create_connection((host, port))
    ctx = ssl.create_default_context(cafile=srv.ca)
    s = ctx.wrap_socket(sock, server_hostname="localhost")
    s.sendall(("GET /v1/audit/export HTTP/1.1\r\nHost: localhost\r\n"
               "Authorization: Bearer %s\r\n\r\n" % token).encode())
    return s


def test_big_export_streams_and_clients_may_leave(fresh_server):
    srv = fresh_server()
    _, _, token = new_tenant(srv)
    made = fill(srv, token, 4000)
    with srv.session(token).get(srv.url + "/v1/audit/export", stream=True) as r:
        assert r.status_code == 200
        n, last = 0, 0
        for line in r.iter_lines():
            rec = json.loads(line)
            assert rec["seq"] > last
            last, n = rec["seq"], n + 1
    assert n >= made

    # Clients that read a little and leave, or stop reading with the socket open.
    stalled = []
    for i in range(12):
        s = raw_export(srv, token)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        if i % 2:
            s.close()
        else:
            stalled.append(s)
    # Other requests are not held up by the stalled exports.
    me = srv.session(token)
    for _ in range(20):
        t0 = time.monotonic()
        assert me.get(srv.url + "/v1/me").status_code == 200
        assert time.monotonic() - t0 < 1.0
    for s in stalled:
        s.close()
    # A complete export still works afterwards, and the daemon ends cleanly
    # (under ASan: no leaked request or stream).
    r = srv.session(token).get(srv.url + "/v1/audit/export", params={"format": "csv"})
    assert r.status_code == 200 and len(r.text.splitlines()) >= n + 1
    assert srv.stop() == 0, srv.logs()[-3000:]


def test_export_over_plain_http_and_shutdown_mid_stream(fresh_server):
    srv = fresh_server(tls=False)
    _, _, token = new_tenant(srv)
    made = fill(srv, token, 1500, threads=8)
    r = srv.session(token).get(srv.url + "/v1/audit/export")
    assert r.status_code == 200 and len(r.text.splitlines()) >= made
    # A stalled export while the daemon stops: the drain gives up on it, no leak.
    sock = socket.create_connection(("127.0.0.1", srv.port))
    sock.sendall(("GET /v1/audit/export HTTP/1.1\r\nHost: x\r\n"
                  "Authorization: Bearer %s\r\n\r\n" % token).encode())
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    assert srv.stop() == 0, srv.logs()[-3000:]
    sock.close()
