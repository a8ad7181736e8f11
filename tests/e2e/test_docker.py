"""Deployments on the real Docker Engine with the real agent (issue 6):
hardening checked with `docker inspect` and from inside, tenant networks
isolated, a killed container replaced and its death reaching the audit log,
an agent restart adopting its containers, rollback restoring the previous
image, logs through the actions channel.

Needs the engine and the test images: scripts/test runs scripts/docker-up and
tests/images/build.sh first (docs/docker.md).
"""
import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import clean_env, new_tenant
from test_agent import AGENT
from test_nodes import admin, new_token, wait_for

IMG1, IMG2 = "odysseus-test/busybox:1", "odysseus-test/busybox:2"
SERVE = ["sh", "-c", "echo hello-from-odysseus; while true; do echo hi | nc -l -p 8080; done"]


def docker(*args, check=True):
    env = dict(os.environ, DOCKER_API_VERSION="1.41")
    p = subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p


def ours(tenant_id):
    """Docker ids of a tenant's containers on this engine."""
    out = docker("ps", "-q", "--no-trunc", "--filter", "label=odysseus.tenant=" + tenant_id).stdout
    return out.split()


def inspect(cid):
    return json.loads(docker("inspect", cid).stdout)[0]


@pytest.fixture
def cluster(fresh_server, tmp_path):
    p = docker("info", check=False)
    assert p.returncode == 0, "no Docker Engine: run scripts/docker-up\n" + p.stderr
    assert docker("image", "inspect", IMG1, check=False).returncode == 0, \
        "no test image: run tests/images/build.sh"
    srv = fresh_server(extra=("--heartbeat-interval", "1"))
    state = tmp_path / "agent"
    t = new_token(srv, node_name="docker-node")
    p = subprocess.run([AGENT, "enroll", "--server", srv.agent_url, "--token", t["token"],
                        "--state-dir", str(state)], capture_output=True, text=True,
                       env=clean_env())
    assert p.returncode == 0, p.stderr
    agents = []

    def running_agent():
        """odysseus-agent run on the real Docker socket (the default)."""
        log = open(tmp_path / ("agent-%d.log" % len(agents)), "w")
        proc = subprocess.Popen([AGENT, "run", "--state-dir", str(state)], stdout=log,
                                stderr=subprocess.STDOUT, env=clean_env())
        agents.append((proc, log))
        return proc

    running_agent()
    tenants = []
    yield srv, running_agent, agents, tenants
    for proc, log in agents:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
    for tid in tenants:
        for cid in ours(tid):
            docker("rm", "-f", cid, check=False)
        docker("network", "rm", "odx-" + tid, check=False)
    # the agent, stopped first, left its containers' secret tmpfs mounted: undo them
    for line in open("/proc/self/mountinfo").read().splitlines():
        point = line.split()[4]
        if point.startswith(str(state)):
            subprocess.run(["umount", "-l", point], capture_output=True)


def status(srv, s, name):
    return s.get(srv.url + "/v1/deployments/" + name).json()


def wait_running(srv, s, name, n, timeout=90, revision=None):
    def ok():
        d = status(srv, s, name)
        live = [c for c in d.get("containers", []) if not c["retiring"]]
        return (d["status"]["running"] == n and len(live) == n and
                (revision is None or all(c["revision"] == revision and c["state"] == "running"
                                         for c in live)))
    assert wait_for(ok, timeout=timeout, step=0.5), json.dumps(status(srv, s, name), indent=1)
    return status(srv, s, name)


def test_hardened_isolated_replaced_adopted_rolled_back(cluster):
    srv, running_agent, agents, tenants = cluster
    ta, _, tok_a = new_tenant(srv)
    tb, _, tok_b = new_tenant(srv)
    tenants += [ta["id"], tb["id"]]
    sa, sb = srv.session(tok_a), srv.session(tok_b)
    r = sa.post(srv.url + "/v1/deployments", json={
        "name": "web", "image": IMG1, "replicas": 3, "command": SERVE,
        "resources": {"cpu_millicores": 100, "memory_mb": 32, "pids": 64},
        "writable_paths": ["/tmp"]})
    assert r.status_code == 201, r.text
    assert sb.post(srv.url + "/v1/deployments", json={
        "name": "other", "image": IMG1, "replicas": 1, "command": SERVE,
        "resources": {"cpu_millicores": 100, "memory_mb": 32}}).status_code == 201
    d = wait_running(srv, sa, "web", 3)
    wait_running(srv, sb, "other", 1)
    # the Engine's stats travel with the heartbeats
    assert wait_for(lambda: all((c.get("stats") or {}).get("memory_bytes", 0) > 0
                                for c in status(srv, sa, "web")["containers"]), timeout=20)

    # every hardening setting, on every container
    a_ids = ours(ta["id"])
    assert len(a_ids) == 3
    for cid in a_ids:
        i = inspect(cid)
        hc, cfg = i["HostConfig"], i["Config"]
        assert hc["CapDrop"] == ["ALL"] and not hc.get("CapAdd")
        assert "no-new-privileges" in hc["SecurityOpt"] or "no-new-privileges:true" in hc["SecurityOpt"]
        assert hc["Privileged"] is False and hc["ReadonlyRootfs"] is True
        assert hc["Memory"] == 32 << 20 and hc["NanoCpus"] == 100_000_000 and hc["PidsLimit"] == 64
        assert not hc.get("Binds") and not hc.get("Devices") and not hc.get("PortBindings")
        assert hc["NetworkMode"] == "odx-" + ta["id"]
        assert list(i["NetworkSettings"]["Networks"]) == ["odx-" + ta["id"]]
        assert "/tmp" in (hc.get("Tmpfs") or {})
        assert cfg["User"] and cfg["User"].split(":")[0] != "0"
        assert cfg["Labels"]["odysseus.tenant"] == ta["id"]
    cid = a_ids[0]
    assert docker("exec", cid, "id", "-u").stdout.strip() == "65534"
    assert docker("exec", cid, "touch", "/x", check=False).returncode != 0
    assert docker("exec", cid, "touch", "/tmp/x", check=False).returncode == 0

    # tenant networks: A reaches A, not B
    ip = lambda c: list(inspect(c)["NetworkSettings"]["Networks"].values())[0]["IPAddress"]
    a2, b1 = ip(a_ids[1]), ip(ours(tb["id"])[0])
    got = docker("exec", cid, "sh", "-c", "echo x | nc -w 3 %s 8080" % a2, check=False)
    assert "hi" in got.stdout, got
    got = docker("exec", cid, "sh", "-c", "echo x | nc -w 3 %s 8080" % b1, check=False)
    assert "hi" not in got.stdout and got.returncode != 0, got

    # logs come from the node
    ctr = d["containers"][0]["id"]
    r = sa.get(srv.url + "/v1/containers/%s/logs" % ctr, params={"tail": 50})
    assert r.status_code == 200 and "hello-from-odysseus" in r.text, r.text

    # a killed container is replaced, and its death is in the audit log
    victim = d["containers"][0]
    docker("kill", victim["docker_id"])
    assert wait_for(lambda: any(c["id"] == victim["id"] and c["state"] == "running" and
                                c["restarts"] >= 1 and c["docker_id"] != victim["docker_id"]
                                for c in status(srv, sa, "web")["containers"]), timeout=30)
    db = os.path.join(srv.data_dir, "audit.db")
    died = lambda: sqlite3.connect("file:%s?mode=ro" % db, uri=True).execute(
        "SELECT count(*) FROM records WHERE action = 'container.die' AND resource = ?",
        ("/v1/containers/" + victim["id"],)).fetchone()[0]
    assert wait_for(lambda: died() >= 1, timeout=15)

    # the agent restarts: it adopts what runs and makes no duplicates
    proc, _ = agents[-1]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    before = sorted(ours(ta["id"]))
    running_agent()
    time.sleep(4)
    assert sorted(ours(ta["id"])) == before
    wait_running(srv, sa, "web", 3)

    # a new image rolls out; rollback brings the old one back
    assert sa.patch(srv.url + "/v1/deployments/web", json={"image": IMG2}).status_code == 200
    wait_running(srv, sa, "web", 3, revision=2, timeout=120)
    def images():
        """Images of the tenant's containers (one removed meanwhile is skipped)."""
        got = []
        for c in ours(ta["id"]):
            p = docker("inspect", c, check=False)
            if p.returncode == 0:
                got.append(json.loads(p.stdout)[0]["Config"]["Image"])
        return sorted(got)
    assert wait_for(lambda: images() == [IMG2] * 3, timeout=30), images()
    assert docker("exec", ours(ta["id"])[0], "cat", "/VERSION").stdout.strip() == "2"
    r = sa.post(srv.url + "/v1/deployments/web/rollback", json={})
    assert r.status_code == 200 and r.json()["revision"] == 3 and r.json()["image"] == IMG1
    wait_running(srv, sa, "web", 3, revision=3, timeout=120)
    assert wait_for(lambda: images() == [IMG1] * 3, timeout=30), images()

    # deleting removes the containers from the engine
    assert sa.delete(srv.url + "/v1/deployments/web").status_code == 204
    assert wait_for(lambda: ours(ta["id"]) == [], timeout=30)


def test_secrets_reach_only_granted_containers_on_a_tmpfs(cluster):
    srv, running_agent, agents, tenants = cluster
    t, _, token = new_tenant(srv)
    tenants.append(t["id"])
    s = srv.session(token)
    value = "delivered-secret-9d1e"
    assert s.put(srv.url + "/v1/secrets/db", json={"value": value}).status_code == 201
    assert s.post(srv.url + "/v1/secrets/db/grants",
                  json={"deployments": ["with"]}).status_code == 200
    for name, secrets in (("with", ["db"]), ("without", [])):
        r = s.post(srv.url + "/v1/deployments", json={
            "name": name, "image": IMG1, "replicas": 1, "command": ["sleep", "3600"],
            "resources": {"cpu_millicores": 100, "memory_mb": 32}, "secrets": secrets})
        assert r.status_code == 201, r.text
    w = wait_running(srv, s, "with", 1)["containers"][0]
    wo = wait_running(srv, s, "without", 1)["containers"][0]
    # readable by the container's user, exactly the value; not writable
    assert docker("exec", w["docker_id"], "cat", "/run/secrets/db").stdout == value
    assert docker("exec", w["docker_id"], "sh", "-c", "echo x > /run/secrets/db",
                  check=False).returncode != 0
    assert docker("exec", wo["docker_id"], "ls", "/run/secrets", check=False).returncode != 0
    # nowhere in the container's configuration; its mount comes from a host tmpfs
    i = inspect(w["docker_id"])
    assert value not in json.dumps(i)
    (m,) = [m for m in i["Mounts"] if m["Destination"] == "/run/secrets"]
    assert m["RW"] is False
    src = m["Source"]
    mounts = open("/proc/self/mountinfo").read().splitlines()
    line = [l for l in mounts if " %s " % src in l]
    assert line and " - tmpfs " in line[0], line
    # the container goes: so does the tmpfs
    assert s.delete(srv.url + "/v1/deployments/with").status_code == 204
    assert wait_for(lambda: not any(" %s " % src in l
                                    for l in open("/proc/self/mountinfo").read().splitlines()),
                    timeout=30)
    assert not os.path.exists(src)


def test_secret_rotation_rolls_three_replicas_keeping_two_up(cluster):
    srv, running_agent, agents, tenants = cluster
    t, _, token = new_tenant(srv)
    tenants.append(t["id"])
    s = srv.session(token)
    assert s.put(srv.url + "/v1/secrets/db", json={"value": "first-value"}).status_code == 201
    assert s.post(srv.url + "/v1/secrets/db/grants",
                  json={"deployments": ["trio"]}).status_code == 200
    assert s.post(srv.url + "/v1/deployments", json={
        "name": "trio", "image": IMG1, "replicas": 3, "command": ["sleep", "3600"],
        "resources": {"cpu_millicores": 100, "memory_mb": 32}, "secrets": ["db"]}).status_code == 201
    wait_running(srv, s, "trio", 3)
    assert s.post(srv.url + "/v1/secrets/db/rotate",
                  json={"value": "second-value"}).json()["version"] == 2
    low = 3
    deadline = time.time() + 120
    done = False
    while time.time() < deadline and not done:
        d = status(srv, s, "trio")
        live = [c for c in d["containers"] if c["state"] == "running"]
        low = min(low, len(live))
        values = set()
        for c in d["containers"]:
            if not c["retiring"] and c["state"] == "running":
                p = docker("exec", c["docker_id"], "cat", "/run/secrets/db", check=False)
                values.add(p.stdout)
        done = (values == {"second-value"} and
                len([c for c in d["containers"] if not c["retiring"]]) == 3 and
                not any(c["retiring"] for c in d["containers"]))
        time.sleep(0.3)
    assert done, json.dumps(status(srv, s, "trio"), indent=1)
    assert low >= 2, low  # never fewer than two running while it rolled
    # version 1 is revoked once no container holds it (the daemon looks every 30 s)
    assert wait_for(lambda: [v["version"] for v in
                             s.get(srv.url + "/v1/secrets/db").json()["versions"]] == [2],
                    timeout=45)
