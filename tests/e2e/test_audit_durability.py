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
