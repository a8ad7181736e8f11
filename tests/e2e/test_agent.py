"""The real odysseus-agent against the real odysseusd (docs/nodes.md, docs/agent.md):
enrollment end to end, a token for another control plane, certificate
renewal across several rotations with lifetimes of seconds, revocation,
a control plane restarted under running agents, the state directory's
permissions, and the private key staying on the node.
"""
import hashlib
import os
import signal
import sqlite3
import stat
import subprocess
import time

import pytest

from conftest import ROOT, clean_env
from test_nodes import admin, new_token, wait_for

AGENT = os.environ.get("ODYSSEUS_AGENT_BIN", os.path.join(ROOT, "build", "odysseus-agent"))
EXIT_REFUSED, EXIT_PIN = 3, 4


def agent(*args, timeout=30):
    return subprocess.run([AGENT, *args], capture_output=True, text=True, env=clean_env(),
                          timeout=timeout)


class Running:
    """odysseus-agent run in the background, its output in a file."""

    def __init__(self, state_dir, log_path):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([AGENT, "run", "--state-dir", state_dir,
                                      "--docker-socket", "/nonexistent.sock"],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=clean_env())

    def logs(self):
        self.log.flush()
        return open(self.log_path).read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def running():
    started = []

    def start(state_dir, log_path):
        r = Running(str(state_dir), str(log_path))
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def enroll(srv, state_dir, **kw):
    t = new_token(srv, **kw)
    p = agent("enroll", "--server", srv.agent_url, "--token", t["token"],
              "--state-dir", str(state_dir))
    return t, p


def node_of(srv, name=None):
    items = admin(srv).get(srv.url + "/v1/nodes", params={"limit": 500}).json()["items"]
    return [n for n in items if name is None or n["name"] == name]


def test_enroll_end_to_end_and_state_dir(server, tmp_path):
    state = tmp_path / "agent"
    t, p = enroll(server, state, node_name="e2e-node")
    assert p.returncode == 0, p.stdout + p.stderr
    assert t["token"] not in p.stdout + p.stderr
    st = os.stat(state)
    assert stat.S_IMODE(st.st_mode) == 0o700
    for name in ("node.key", "node.crt", "ca.crt", "agent.json"):
        mode = stat.S_IMODE(os.stat(state / name).st_mode)
        assert mode & 0o077 == 0, (name, oct(mode))
    nodes = node_of(server, "e2e-node")
    assert len(nodes) == 1
    # the key never left: its private part (after the PKCS#8 header every P-256 key
    # shares) is nowhere in the control plane's files
    key_body = "".join(l for l in (state / "node.key").read_text().splitlines() if "---" not in l)
    for root, _, files in os.walk(server.data_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert key_body[48:88].encode() not in fh.read(), f
    # the same token a second time, from another state directory
    p = agent("enroll", "--server", server.agent_url, "--token", t["token"],
              "--state-dir", str(tmp_path / "again"))
    assert p.returncode == EXIT_REFUSED, p.stdout + p.stderr


def test_expired_token(server, tmp_path):
    t = new_token(server, ttl_seconds=1)
    time.sleep(1.3)
    p = agent("enroll", "--server", server.agent_url, "--token", t["token"],
              "--state-dir", str(tmp_path / "a"))
    assert p.returncode == EXIT_REFUSED, p.stdout + p.stderr


def test_token_of_another_control_plane_is_not_sent(server, fresh_server, tmp_path):
    """The token names another CA: the agent refuses to talk to this server and
    sends nothing — no enrollment attempt reaches its audit log."""
    other = fresh_server()
    t = new_token(other)
    db = os.path.join(server.data_dir, "audit.db")
    count = lambda: sqlite3.connect("file:%s?mode=ro" % db, uri=True).execute(
        "SELECT count(*) FROM records WHERE action = 'node.enroll'").fetchone()[0]
    before = count()
    p = agent("enroll", "--server", server.agent_url, "--token", t["token"],
              "--state-dir", str(tmp_path / "a"))
    assert p.returncode == EXIT_PIN, p.stdout + p.stderr
    assert "not the control plane" in p.stderr
    time.sleep(0.5)
    assert count() == before
    assert not (tmp_path / "a" / "node.key").exists()
    # a malformed token is a usage error
    p = agent("enroll", "--server", server.agent_url, "--token", "odx-enroll-nope",
              "--state-dir", str(tmp_path / "b"))
    assert p.returncode == 2


def cert_fp(state):
    pem = (state / "node.crt").read_text()
    import ssl
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def test_renewal_across_rotations_and_revocation(fresh_server, running, tmp_path):
    srv = fresh_server(extra=("--agent-cert-lifetime", "6", "--heartbeat-interval", "1"))
    state = tmp_path / "agent"
    _, p = enroll(srv, state, node_name="short-lived")
    assert p.returncode == 0, p.stderr
    nid = node_of(srv, "short-lived")[0]["id"]
    a = running(state, tmp_path / "agent.log")
    seen = {cert_fp(state)}
    last_seen = set()
    start = time.time()
    while time.time() < start + 25 and (len(seen) < 4 or time.time() < start + 10):
        time.sleep(0.5)
        try:
            seen.add(cert_fp(state))
        except (OSError, ValueError):
            pass  # mid-swap
        n = admin(srv).get(srv.url + "/v1/nodes/" + nid).json()
        last_seen.add(n["last_seen_at"])
        assert n["state"] == "ready", n
    assert len(seen) >= 4, (seen, a.logs()[-3000:])  # three renewals at least
    assert len(last_seen) >= 8  # heartbeats kept coming across the renewals (1 s apart)
    assert a.proc.poll() is None, a.logs()[-3000:]
    # revoked: the agent stops at once with status 3
    assert admin(srv).delete(srv.url + "/v1/nodes/" + nid).status_code == 204
    try:
        rc = a.proc.wait(timeout=8)
    except subprocess.TimeoutExpired:
        pytest.fail("the agent kept running after revocation:\n" + a.logs()[-3000:])
    assert rc == EXIT_REFUSED, a.logs()[-3000:]
    assert "revoked" in a.logs()


def test_agents_reconnect_after_a_control_plane_restart(fresh_server, restart, running, tmp_path):
    srv = fresh_server(extra=("--heartbeat-interval", "1"))
    state = tmp_path / "agent"
    _, p = enroll(srv, state, node_name="survivor")
    assert p.returncode == 0, p.stderr
    a = running(state, tmp_path / "agent.log")
    nid = node_of(srv, "survivor")[0]["id"]
    assert wait_for(lambda: node_of(srv, "survivor")[0]["agent_version"], timeout=10)
    data_dir, port, agent_port = srv.data_dir, srv.port, srv.agent_port
    assert srv.stop() == 0, srv.logs()[-2000:]
    time.sleep(3)  # the agent backs off meanwhile
    assert a.proc.poll() is None, a.logs()[-3000:]
    srv2 = restart(data_dir, port=port, agent_port=agent_port,
                   extra=("--heartbeat-interval", "1"))
    t0 = admin(srv2).get(srv2.url + "/v1/nodes/" + nid).json()["last_seen_at"]
    # backoff is at most 30 s with jitter; with 3 s down it is back within a few seconds
    assert wait_for(lambda: admin(srv2).get(srv2.url + "/v1/nodes/" + nid).json()
                    ["last_seen_at"] != t0, timeout=40), a.logs()[-3000:]
    assert a.proc.poll() is None
    assert a.stop() == 0, a.logs()[-3000:]
