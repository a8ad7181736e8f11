"""Fixtures that start the real odysseusd on an ephemeral port.

The binaries come from ODYSSEUSD_BIN / ODYSSEUS_BIN (set by scripts/test and
by meson test); each server gets its own temporary data directory.
"""
import json
import shutil
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ODYSSEUSD = os.environ.get("ODYSSEUSD_BIN", os.path.join(ROOT, "build", "odysseusd"))
ODYSSEUS = os.environ.get("ODYSSEUS_BIN", os.path.join(ROOT, "build", "odysseus"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running odysseusd. `url` is its base URL, `ca` the CA bundle path."""

    def __init__(self, data_dir, tls=True, extra=()):
        self.data_dir = data_dir
        self.tls = tls
        self.port = free_port()
        self.admin_email = "root@platform.test"
        init = subprocess.run(
            [ODYSSEUSD, "init", "--data-dir", data_dir,
             "--admin-email", self.admin_email, "--password-stdin"],
            input="platform-admin-password-1\n", capture_output=True, text=True, timeout=60)
        assert init.returncode == 0, init.stderr
        self.admin_password = "platform-admin-password-1"
        args = [ODYSSEUSD, "serve", "--data-dir", data_dir,
                "--listen", f"127.0.0.1:{self.port}", "--argon2-memory-kib", "8192"]
        if not tls:
            args.append("--plain-http")
        args.extend(extra)
        self.log_path = os.path.join(data_dir, "odysseusd.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.ca = os.path.join(data_dir, "pki", "ca.crt")
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("odysseusd exited: " + open(self.log_path).read())
            try:
                r = requests.get(self.url + "/readyz", verify=self.ca if self.tls else None, timeout=1)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("odysseusd did not become ready")

    def session(self, token=None):
        s = requests.Session()
        # REQUESTS_CA_BUNDLE in the environment would override s.verify (requests #3829).
        s.trust_env = False
        if self.tls:
            s.verify = self.ca
        if token:
            s.headers["Authorization"] = "Bearer " + token
        return s

    def login(self, email, password):
        r = self.session().post(self.url + "/v1/auth/login",
                                json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        return r.json()

    def admin_token(self):
        return self.login(self.admin_email, self.admin_password)["access_token"]

    def create_tenant(self, name, admin_email, password="tenant-admin-password-1"):
        s = self.session(self.admin_token())
        r = s.post(self.url + "/v1/tenants",
                   json={"name": name, "admin": {"email": admin_email, "password": password}})
        assert r.status_code == 201, r.text
        return r.json()

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server():
    with tempfile.TemporaryDirectory(prefix="odx-e2e-") as d:
        srv = Server(d)
        yield srv
        rc = srv.stop()
        assert rc == 0, "odysseusd exited %s:\n%s" % (rc, open(srv.log_path).read())


@pytest.fixture
def fresh_server():
    """A server of the test's own, for tests that stop or break it."""
    servers = []

    def start(**kw):
        d = tempfile.mkdtemp(prefix="odx-e2e-")
        srv = Server(d, **kw)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()
        shutil.rmtree(srv.data_dir, ignore_errors=True)


_counter = [0]


def unique(prefix):
    _counter[0] += 1
    return "%s-%d-%d" % (prefix, os.getpid(), _counter[0])
