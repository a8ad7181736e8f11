"""Fixtures and helpers shared by the end-to-end tests.

The fixtures start the real odysseusd on an ephemeral port. The binaries come
from ODYSSEUSD_BIN / ODYSSEUS_BIN (set by scripts/test and by meson test);
each server gets its own temporary data directory. The helpers below are
imported by the test files (`from conftest import check_error, ...`).
"""
import itertools
import os
import shutil
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

ADMIN_EMAIL = "root@platform.test"              # the platform admin `init` creates
ADMIN_PASSWORD = "platform-admin-password-1"
TENANT_ADMIN_PASSWORD = "tenant-admin-password-1"  # Server.create_tenant default
USER_PASSWORD = "user-password-123"
ERROR_KEYS = {"code", "message", "request_id"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(extra=None):
    """os.environ without ODYSSEUS_* (odysseusd reads its settings from
    those, so a stray one would change what a test starts), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODYSSEUS_")}
    env.update(extra or {})
    return env


def init_data_dir(data_dir):
    """`odysseusd init` with the platform admin ADMIN_EMAIL / ADMIN_PASSWORD."""
    r = subprocess.run([ODYSSEUSD, "init", "--data-dir", data_dir, "--admin-email", ADMIN_EMAIL,
                        "--password-stdin"], input=ADMIN_PASSWORD + "\n",
                       capture_output=True, text=True, timeout=60, env=clean_env())
    assert r.returncode == 0, r.stdout + r.stderr


_log_seq = itertools.count()


class Process:
    """An odysseusd child process whose output goes to the file log_path."""

    def __init__(self, cmd, log_path, env=None):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=clean_env(env))

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


class Server(Process):
    """A running odysseusd. `url` is its base URL, `ca` the CA bundle path.

    init=True initialises data_dir first; init=False serves a data dir that
    is already initialised (a restart), with the same admin credentials.
    `listen_host` is the address it binds, `url_host` the one `url` names;
    `extra` are more `serve` arguments."""

    def __init__(self, data_dir, tls=True, extra=(), init=True,
                 listen_host="127.0.0.1", url_host="127.0.0.1", port=None, agent_port=None):
        self.data_dir = data_dir
        self.tls = tls
        self.port = port or free_port()
        self.agent_port = agent_port or free_port()
        self.admin_email = ADMIN_EMAIL
        self.admin_password = ADMIN_PASSWORD
        if init:
            init_data_dir(data_dir)
            log_name = "odysseusd.log"
        else:
            log_name = "odysseusd-restart-%d.log" % next(_log_seq)
        args = [ODYSSEUSD, "serve", "--data-dir", data_dir,
                "--listen", "%s:%d" % (listen_host, self.port), "--argon2-memory-kib", "8192",
                "--agent-listen", "127.0.0.1:%d" % self.agent_port]
        if not tls:
            args.append("--plain-http")
        args.extend(extra)
        super().__init__(args, os.path.join(data_dir, log_name))
        self.url = "%s://%s:%d" % ("https" if tls else "http", url_host, self.port)
        self.agent_url = "https://127.0.0.1:%d" % self.agent_port
        self.ca = os.path.join(data_dir, "pki", "ca.crt")
        try:
            self._wait_ready()
        except Exception:
            self.stop(timeout=5)
            raise

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
        r = post_login(self, email, password)
        assert r.status_code == 200, r.text
        return r.json()

    def admin_token(self):
        return self.login(self.admin_email, self.admin_password)["access_token"]

    def create_tenant(self, name, admin_email, password=TENANT_ADMIN_PASSWORD):
        s = self.session(self.admin_token())
        r = s.post(self.url + "/v1/tenants",
                   json={"name": name, "admin": {"email": admin_email, "password": password}})
        assert r.status_code == 201, r.text
        return r.json()


@pytest.fixture(scope="session")
def server():
    with tempfile.TemporaryDirectory(prefix="odx-e2e-") as d:
        srv = Server(d)
        yield srv
        rc = srv.stop()
        assert rc == 0, "odysseusd exited %s:\n%s" % (rc, open(srv.log_path).read())


def stopped_at_teardown(make):
    """Body of a factory fixture: yields start(*args, **kw), which returns
    make(*args, **kw); everything started is stopped at teardown."""
    started = []

    def start(*args, **kw):
        p = make(*args, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def fresh_server():
    """fresh_server(**kw): a server of the test's own, for tests that stop or break it."""
    dirs = []

    def make(**kw):
        dirs.append(tempfile.mkdtemp(prefix="odx-e2e-"))
        return Server(dirs[-1], **kw)

    yield from stopped_at_teardown(make)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def restart():
    """restart(data_dir, **kw): `odysseusd serve` again on an existing data
    dir (Server with init=False); stopped at teardown."""
    yield from stopped_at_teardown(lambda data_dir, **kw: Server(data_dir, init=False, **kw))


_counter = [0]


def unique(prefix):
    _counter[0] += 1
    return "%s-%d-%d" % (prefix, os.getpid(), _counter[0])


# --- HTTP helpers --------------------------------------------------------------

def check_error(r, status, code):
    """Assert r is the documented error answer; return the error object."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    # Only a policy block says more: the findings that blocked it (docs/scanning.md).
    details = {"details"} if code == "blocked_by_policy" else set()
    assert set(err) == ERROR_KEYS | details, err
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"], err
    assert err["request_id"] == r.headers.get("X-Request-Id"), (err, r.headers)
    return err


def without_request_id(r):
    """The error body of r without its request id, to compare two answers."""
    body = r.json()
    body["error"].pop("request_id", None)
    return body


def post_login(srv, email, password):
    return srv.session().post(srv.url + "/v1/auth/login",
                              json={"email": email, "password": password})


def new_tenant(srv):
    """A new tenant; returns (tenant object as created, admin email, admin access token)."""
    email = unique("admin") + "@tenant.test"
    tenant = srv.create_tenant(unique("tenant"), email)
    return tenant, email, srv.login(email, TENANT_ADMIN_PASSWORD)["access_token"]


def create_user(srv, token, role, email=None, password=USER_PASSWORD):
    """POST /v1/users; returns the response."""
    email = email or unique(role) + "@tenant.test"
    return srv.session(token).post(srv.url + "/v1/users",
                                   json={"email": email, "password": password, "role": role})


def make_user(srv, token, role):
    """A new user of token's tenant with USER_PASSWORD; returns the user object."""
    email = unique(role) + "@tenant.test"
    r = create_user(srv, token, role, email=email)
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["email"] == email, user
    return user


def list_all(srv, token, path, limit=None):
    """GET path following next_cursor to the end; returns (items, pages)."""
    items, pages, cursor = [], [], None
    s = srv.session(token)
    for _ in range(1000):
        params = {}
        if limit is not None:
            params["limit"] = limit
        if cursor is not None:
            params["cursor"] = cursor
        r = s.get(srv.url + path, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}, body
        pages.append(body["items"])
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages
        assert isinstance(cursor, str) and cursor
    raise AssertionError("paging never ended")
