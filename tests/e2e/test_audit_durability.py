"""The audit log survives kill -9 (issue 4): every change the API acknowledged
has its durable record after a crash, and the file still verifies.

The library's unit tests kill appends inside one process; this drives the
real daemon over HTTP from several threads and kills it with SIGKILL, so
nothing gets a chance to flush or sign on the way out.
"""
import os
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import ODYSSEUS, USER_PASSWORD, clean_env, new_tenant, unique


def test_kill_9_keeps_every_acknowledged_record(fresh_server, restart):
    srv = fresh_server()
    _, _, token = new_tenant(srv)
    acked, stop = [], threading.Event()
    lock = threading.Lock()

    def create_users():
        s = srv.session(token)
        while not stop.is_set():
            email = unique("crash") + "@tenant.test"
            try:
                r = s.post(srv.url + "/v1/users", timeout=5,
                           json={"email": email, "password": USER_PASSWORD, "role": "readonly"})
            except Exception:
                return  # the daemon is gone
            if r.status_code == 201:
                with lock:
                    acked.append(r.json()["id"])

    threads = [threading.Thread(target=create_users) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert len(acked) > 20, "too little load before the kill: %d" % len(acked)

    # Every acknowledged creation has its success record in the file, once.
    db = os.path.join(srv.data_dir, "audit.db")
    with sqlite3.connect("file:%s?mode=ro" % db, uri=True) as con:
        rows = con.execute("SELECT resource, count(*) FROM records WHERE action = 'user.create' "
                           "AND outcome = 'success' GROUP BY resource").fetchall()
    recorded = {res: n for res, n in rows}
    for uid in acked:
        assert recorded.get("/v1/users/" + uid) == 1, uid

    # The file verifies as it was left (records after the last checkpoint are allowed:
    # the daemon had no chance to sign them)...
    env = clean_env({"HOME": srv.data_dir, "XDG_CONFIG_HOME": srv.data_dir})
    r = subprocess.run([ODYSSEUS, "audit", "verify", "--data-dir", srv.data_dir,
                        "--allow-unsigned"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    # ...and after a restart and a clean stop, which signs the tail, without that allowance.
    again = restart(srv.data_dir)
    assert again.session().get(again.url + "/healthz").status_code == 200
    assert again.stop() == 0
    r = subprocess.run([ODYSSEUS, "audit", "verify", "--data-dir", srv.data_dir],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "audit log verified" in r.stdout


# --- a full audit disk ------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (root only; skipped where mounting is not allowed)."""
    mnt = tmp_path / "auditdisk"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + p.stderr.strip())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def fill_disk(path):
    """Writes a filler file until the disk is full."""
    with open(os.path.join(path, "filler"), "wb") as f:
        block = b"\0" * 65536
        try:
            while True:
                f.write(block)
                f.flush()
        except OSError:
            pass


def test_full_audit_disk_refuses_changes_and_loses_nothing(fresh_server, small_disk):
    srv = fresh_server(extra=("--audit-dir", str(small_disk)))
    _, _, token = new_tenant(srv)
    s = srv.session(token)

    def create():
        email = unique("fulldisk") + "@tenant.test"
        r = s.post(srv.url + "/v1/users",
                   json={"email": email, "password": USER_PASSWORD, "role": "readonly"})
        return r, email

    fill_disk(small_disk)
    # SQLite reuses WAL space it already has: the first failure comes after a while.
    statuses = []
    deadline = time.time() + 60
    while time.time() < deadline:
        r, _ = create()
        statuses.append(r.status_code)
        if r.status_code == 503:
            break
    print("requests until the first 503:", len(statuses))
    assert statuses[-1] == 503, statuses[-20:]
    assert set(statuses) <= {201, 503}

    # From now on audited changes are refused before they happen.
    r, email = create()
    assert r.status_code == 503 and r.headers.get("Retry-After") == "1", r.text
    assert r.json()["error"]["code"] == "unavailable"
    users = s.get(srv.url + "/v1/users", params={"limit": 500}).json()["items"]
    assert email not in {u["email"] for u in users}
    assert s.get(srv.url + "/v1/me").status_code == 200  # reads go on

    # Room again: the daemon recovers by itself, and every user that exists
    # has its user.create record (the one whose record failed included).
    os.unlink(os.path.join(small_disk, "filler"))
    deadline = time.time() + 20
    while True:
        r, email = create()
        if r.status_code == 201 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 201, r.text
    users = s.get(srv.url + "/v1/users", params={"limit": 500}).json()["items"]
    deadline = time.time() + 10
    while True:
        recs = s.get(srv.url + "/v1/audit", params={"action": "user.create", "outcome": "success",
                                                     "limit": 500}).json()["items"]
        audited = {rec["resource"] for rec in recs}
        missing = [u["id"] for u in users
                   if u["role"] != "admin" and "/v1/users/" + u["id"] not in audited]
        if not missing or time.time() > deadline:
            break
        time.sleep(0.2)
    assert not missing, (missing, sorted(audited))
    refused = s.get(srv.url + "/v1/audit", params={"outcome": "failure", "limit": 500}).json()
    assert any(x["reason"] == "audit_unavailable" for x in refused["items"])
    assert srv.stop() == 0, srv.logs()[-3000:]
    p = subprocess.run([ODYSSEUS, "audit", "verify", "--data-dir", str(small_disk)],
                       capture_output=True, text=True, env=clean_env())
    assert p.returncode == 0, p.stdout + p.stderr
