"""Deployments, quotas and the scheduler against the real odysseusd, with
Python agents (docs/deployments.md): validation, quotas under concurrency,
revisions and rollback, placement and spreading, capacity never
over-committed, long-poll wake-ups, reported states, replicas moved off an
unreachable node, rolling restarts. tests/e2e/test_docker.py runs the real
agent on the real Docker Engine.
"""
import concurrent.futures
import json
import time

import pytest

from conftest import check_error, make_user, new_tenant, unique, USER_PASSWORD
from test_nodes import STATUS, admin, agent_conn, call, enroll, new_token, wait_for

IMAGE = "odysseus-test/busybox:1"


class FakeAgent:
    """A node enrolled and heartbeating from Python."""

    def __init__(self, srv, tmp_path, name, cpus=4, memory_mb=8192):
        self.srv = srv
        ans, self.crt, self.key = enroll(srv, tmp_path, new_token(srv)["token"], name=name,
                                         tag=name)
        self.id = ans["node_id"]
        self.status = dict(STATUS, capacity={"cpus": cpus, "memory_bytes": memory_mb << 20,
                                             "disk_bytes": 1 << 36})
        self.conn = agent_conn(srv, self.crt, self.key)
        self.revision = 0
        self.beat()

    def beat(self, containers=None):
        body = dict(self.status)
        if containers is not None:
            body["containers"] = containers
        status, answer = call(self.conn, "POST", "/agent/v1/status", body)
        assert status == 200, answer
        return answer

    def assignments(self, wait=0, since=None):
        q = "/agent/v1/assignments?wait=%d" % wait
        if since is not None:
            q += "&since=%d" % since
        status, body = call(self.conn, "GET", q)
        assert status == 200, body
        self.revision = body["revision"]
        return body["assignments"]

    def run_all(self):
        """Reports every assignment as running (what a reconciler would)."""
        a = self.assignments()
        self.beat([{"container": x["container"], "state": "running", "docker_id": "0" * 64,
                    "restarts": 0} for x in a])
        return a


def deploy(s, url, **body):
    body.setdefault("name", unique("dep"))
    body.setdefault("image", IMAGE)
    return s.post(url + "/v1/deployments", json=body)


@pytest.fixture
def world(fresh_server):
    srv = fresh_server(extra=("--heartbeat-interval", "1", "--node-grace", "3"))
    t, email, token = new_tenant(srv)
    return srv, t, srv.session(token)


# --- the API ------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    {"name": "Bad_Name"}, {"image": "UPPER/case"}, {"image": "x" * 300}, {"image": "a:b:c"},
    {"image": "busybox@sha256:1234"}, {"replicas": -1}, {"replicas": 101}, {"replicas": "3"},
    {"resources": {"cpu_millicores": 1}}, {"resources": {"memory_mb": 1 << 30}},
    {"resources": {"gpus": 1}}, {"env": {"1BAD": "x"}}, {"env": {"A": 1}},
    {"writable_paths": ["relative"]}, {"writable_paths": ["/a/../etc"]}, {"writable_paths": ["/"]},
    {"user": "root"}, {"user": "1:2:3"}, {"command": "sh -c x"}, {"privileged": True},
    {"volumes": ["/:/host"]}, {"network_mode": "host"},
])
def test_bad_specs_are_refused(server, body):
    _, _, token = new_tenant(server)
    s = server.session(token)
    r = deploy(s, server.url, **body)
    check_error(r, 400, "bad_request")
    assert s.get(server.url + "/v1/deployments").json()["items"] == []


def test_create_get_update_revisions_rollback_delete(server):
    _, _, token = new_tenant(server)
    s = server.session(token)
    r = deploy(s, server.url, name="web", replicas=0, env={"MODE": "a"},
               resources={"cpu_millicores": 100, "memory_mb": 32}, writable_paths=["/tmp"])
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["revision"] == 1 and d["image"] == IMAGE and d["resources"]["pids"] == 128
    assert d["status"] == {"containers": 0, "running": 0, "pending": 0}
    check_error(deploy(s, server.url, name="web"), 409, "conflict")
    r = s.patch(server.url + "/v1/deployments/web", json={"image": "odysseus-test/busybox:2"})
    assert r.status_code == 200 and r.json()["revision"] == 2
    # the same template again: no new revision
    r = s.patch(server.url + "/v1/deployments/web", json={"image": "odysseus-test/busybox:2"})
    assert r.json()["revision"] == 2
    check_error(s.patch(server.url + "/v1/deployments/web", json={"name": "other"}), 400,
                "bad_request")
    revs = s.get(server.url + "/v1/deployments/web/revisions").json()["items"]
    assert [x["revision"] for x in revs] == [2, 1]
    assert revs[1]["template"]["image"] == IMAGE
    r = s.post(server.url + "/v1/deployments/web/rollback", json={})
    assert r.status_code == 200 and r.json()["revision"] == 3 and r.json()["image"] == IMAGE
    check_error(s.post(server.url + "/v1/deployments/web/rollback", json={"revision": 99}), 400,
                "bad_request")
    r = s.post(server.url + "/v1/deployments/web/scale", json={"replicas": 2})
    assert r.status_code == 200 and r.json()["replicas"] == 2 and r.json()["revision"] == 3
    assert s.delete(server.url + "/v1/deployments/web").status_code == 204
    check_error(s.get(server.url + "/v1/deployments/web"), 404, "not_found")


def test_quotas_hold_under_concurrent_scaling(server):
    t, _, token = new_tenant(server)
    padm = admin(server)
    assert padm.put(server.url + "/v1/tenants/%s/quotas" % t["id"], json={
        "cpu_cores": 100, "memory_mb": 100000, "containers": 5, "storage_mb": 1000}).status_code == 200
    s = server.session(token)
    names = [unique("q") for _ in range(4)]
    for n in names:
        assert deploy(s, server.url, name=n, replicas=0).status_code == 201

    def scale(n):
        return server.session(token).post(server.url + "/v1/deployments/%s/scale" % n,
                                          json={"replicas": 2})
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(scale, names))
    ok = [r for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code == 409]
    assert len(ok) == 2 and len(refused) == 2, [r.text for r in results]
    for r in refused:
        assert r.json()["error"]["code"] == "quota_exceeded"
        assert "containers" in r.json()["error"]["message"]
    q = s.get(server.url + "/v1/quotas").json()
    assert q["usage"]["containers"] == 4, q
    # memory: refused with nothing created
    r = deploy(s, server.url, replicas=1, resources={"memory_mb": 200000})
    check_error(r, 409, "quota_exceeded")
    assert "memory_mb" in r.json()["error"]["message"]
    assert len(s.get(server.url + "/v1/deployments").json()["items"]) == 4
    # the shared server has no room for these: leave nothing to be placed later
    for n in names:
        assert s.delete(server.url + "/v1/deployments/" + n).status_code == 204


# --- placement ------------------------------------------------------------------------------

def test_placement_spread_capacity_and_states(world, tmp_path):
    srv, t, s = world
    a = FakeAgent(srv, tmp_path, "node-a", cpus=2, memory_mb=1024)
    b = FakeAgent(srv, tmp_path, "node-b", cpus=2, memory_mb=1024)
    r = deploy(s, srv.url, name="web", replicas=4, resources={"cpu_millicores": 500,
                                                              "memory_mb": 128})
    assert r.status_code == 201, r.text
    aa, bb = a.assignments(), b.assignments()
    assert len(aa) == 2 and len(bb) == 2  # spread
    x = aa[0]
    assert x["tenant"] == t["id"] and x["deployment"] == "web" and x["image"] == IMAGE
    assert x["user"] == "65534:65534" and x["state"] == "running"
    assert x["resources"] == {"cpu_millicores": 500, "memory_mb": 128, "pids": 128, "storage_mb": 0}
    # capacity: 2 CPUs each, 4 x 500 placed; one more replica of 500 cannot fit anywhere
    r = deploy(s, srv.url, name="big", replicas=1, resources={"cpu_millicores": 1500})
    assert r.status_code == 201
    d = s.get(srv.url + "/v1/deployments/big").json()
    assert d["status"]["pending"] == 1 and d["containers"][0]["node_id"] is None
    # reported states show through
    a.run_all()
    b.run_all()
    d = s.get(srv.url + "/v1/deployments/web").json()
    assert d["status"] == {"containers": 4, "running": 4, "pending": 0}, d["status"]
    ctrs = s.get(srv.url + "/v1/containers", params={"deployment": "web"}).json()["items"]
    assert {c["state"] for c in ctrs} == {"running"}
    one = s.get(srv.url + "/v1/containers/" + ctrs[0]["id"]).json()
    assert one["id"] == ctrs[0]["id"]
    # another tenant sees none of it
    _, _, token_b = new_tenant(srv)
    sb = srv.session(token_b)
    assert sb.get(srv.url + "/v1/containers").json()["items"] == []
    check_error(sb.get(srv.url + "/v1/containers/" + ctrs[0]["id"]), 404, "not_found")
    # a node cannot report another node's containers
    a.beat([{"container": bb[0]["container"], "state": "exited"}])
    assert s.get(srv.url + "/v1/containers/" + bb[0]["container"]).json()["state"] == "running"


def test_long_poll_wakes_on_change(world, tmp_path):
    srv, t, s = world
    a = FakeAgent(srv, tmp_path, "waiter")
    a.assignments()
    rev = a.revision
    conn = agent_conn(srv, a.crt, a.key)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(call, conn, "GET", "/agent/v1/assignments?wait=20&since=%d" % rev)
        time.sleep(0.5)
        assert deploy(s, srv.url, name="wake", replicas=1).status_code == 201
        status, body = fut.result(timeout=10)
    assert status == 200 and body["revision"] > rev and len(body["assignments"]) == 1
    assert time.monotonic() - t0 < 5  # woken, not timed out
    # nothing changed: held for the wait
    t0 = time.monotonic()
    status, body = call(conn, "GET", "/agent/v1/assignments?wait=1&since=%d" % body["revision"])
    assert status == 200 and 0.9 <= time.monotonic() - t0 < 4


def test_replicas_leave_an_unreachable_node(world, tmp_path):
    srv, t, s = world
    a = FakeAgent(srv, tmp_path, "stays")
    b = FakeAgent(srv, tmp_path, "goes")
    assert deploy(s, srv.url, name="moving", replicas=2).status_code == 201
    assert len(a.assignments()) == 1 and len(b.assignments()) == 1
    # b goes quiet; a keeps beating; b's replica moves to a
    deadline = time.time() + 15
    while time.time() < deadline and len(a.assignments()) < 2:
        a.beat()
        time.sleep(0.5)
    assert len(a.assignments()) == 2
    assert b.assignments() == []


def test_rolling_restart_one_at_a_time(world, tmp_path):
    srv, t, s = world
    a = FakeAgent(srv, tmp_path, "roller")
    assert deploy(s, srv.url, name="roll", replicas=3).status_code == 201
    first = {x["container"] for x in a.run_all()}
    assert len(first) == 3
    assert s.post(srv.url + "/v1/deployments/roll/restart").status_code == 202
    seen = set()
    for _ in range(10):
        now = a.assignments()
        ids = {x["container"] for x in now}
        new = ids - first
        # never more than one replica in replacement at a time
        assert len(now) <= 4, now
        seen |= new
        if len(seen) == 3 and not (ids & first):
            break
        a.run_all()
        time.sleep(1.2)  # the scheduler's tick moves the rollout on
    assert len(seen) == 3 and not ({x["container"] for x in a.assignments()} & first)
    # a new image rolls the same way and the replicas carry the new revision
    assert s.patch(srv.url + "/v1/deployments/roll",
                   json={"image": "odysseus-test/busybox:2"}).status_code == 200
    for _ in range(10):
        a.run_all()
        revs = {x["revision"] for x in a.assignments()}
        if revs == {2}:
            break
        time.sleep(1.2)
    assert revs == {2}


def test_containers_stop_and_replace(world, tmp_path):
    srv, t, s = world
    a = FakeAgent(srv, tmp_path, "ops")
    assert deploy(s, srv.url, name="ops", replicas=1).status_code == 201
    (x,) = a.run_all()
    cid = x["container"]
    r = s.post(srv.url + "/v1/containers/%s/stop" % cid)
    assert r.status_code == 202 and r.json()["desired"] == "stopped"
    assert a.assignments()[0]["state"] == "stopped"
    r = s.post(srv.url + "/v1/containers/%s/restart" % cid)
    assert r.status_code in (202, 204)
    ids = {y["container"] for y in a.assignments()}
    assert len(ids) == 2 and cid in ids  # the old one stays until the new one runs
    a.run_all()
    time.sleep(1.5)
    ids = {y["container"] for y in a.assignments()}
    assert cid not in ids and len(ids) == 1


def test_logs_travel_through_the_actions_channel(world, tmp_path):
    import base64
    srv, t, s = world
    a = FakeAgent(srv, tmp_path, "logger")
    assert deploy(s, srv.url, name="talk", replicas=1).status_code == 201
    (x,) = a.run_all()
    cid = x["container"]
    conn = agent_conn(srv, a.crt, a.key)

    def agent_side(reply):
        status, body = call(conn, "GET", "/agent/v1/actions?wait=10")
        assert status == 200 and len(body["actions"]) == 1, body
        act = body["actions"][0]
        assert act["type"] == "logs" and act["container"] == cid and act["tail"] == 5
        return call(conn, "POST", "/agent/v1/actions/%s/result" % act["id"], reply(act))

    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(agent_side, lambda act: {
            "output_b64": base64.urlsafe_b64encode(b"hello\nworld \xff\n").decode().rstrip("=")})
        r = s.get(srv.url + "/v1/containers/%s/logs" % cid, params={"tail": 5})
        assert fut.result(timeout=15)[0] == 204
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    assert r.content == b"hello\nworld \xff\n"
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(agent_side, lambda act: {"error": "not_found"})
        r = s.get(srv.url + "/v1/containers/%s/logs" % cid, params={"tail": 5})
        fut.result(timeout=15)
    check_error(r, 404, "not_found")
    # an answer to an action that is not this node's, or not waiting
    status, _ = call(conn, "POST", "/agent/v1/actions/act_%s/result" % ("0" * 32), {"error": "x"})
    assert status == 404
    check_error(s.get(srv.url + "/v1/containers/%s/logs" % cid, params={"tail": 0}), 400,
                "bad_request")


def test_a_restarted_control_plane_keeps_its_containers(world, restart, tmp_path):
    """The scheduler reloads each container with its revision's template: the same
    containers are assigned after a restart, none is replaced."""
    srv, _, s = world
    node = FakeAgent(srv, tmp_path, "keep-a")
    assert deploy(s, srv.url, name="kept", replicas=2).status_code == 201
    before = sorted(x["container"] for x in node.run_all())
    assert len(before) == 2
    srv.stop()
    srv2 = restart(srv.data_dir, extra=("--heartbeat-interval", "1", "--node-grace", "3"))
    node.srv = srv2
    node.conn = agent_conn(srv2, node.crt, node.key)
    node.beat()
    after = sorted(x["container"] for x in node.assignments())
    assert after == before
    assert all(x["image"] == IMAGE for x in node.assignments())
