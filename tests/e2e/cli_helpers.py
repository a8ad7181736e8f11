"""What the e2e tests of the `odysseus` CLI share: the exit statuses, the
error line, a CLI user with a private HOME / XDG_CONFIG_HOME (`Cli`), and
the table and error parsers. Contract: docs/cli.md (Errors and exit status).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile

from conftest import ODYSSEUS, Server

# docs/cli.md, "Errors and exit status".
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_AUTH, EXIT_FORBIDDEN, EXIT_NOT_FOUND = 0, 1, 2, 3, 4, 5
EXIT_CONFLICT, EXIT_INVALID, EXIT_RATE_LIMITED, EXIT_CONNECT, EXIT_SERVER = 6, 7, 8, 9, 10
EXIT_INTEGRITY = 11

# `odysseus: <message> (<code>, request id <X-Request-Id>)`: groups message, code.
ERROR_LINE = re.compile(r"^odysseus: (.+) \((\w+), request id [A-Za-z0-9._:-]+\)$", re.M)


class Cli:
    """Runs odysseus as one CLI user with a private HOME / XDG_CONFIG_HOME
    (tmp_path/<name>-home, tmp_path/<name>-config); `server` is the conftest
    Server it logs in to (None for commands that need none)."""

    def __init__(self, tmp_path, server=None, name="cli", timeout=60):
        self.server = server
        self.timeout = timeout
        self.home = tmp_path / (name + "-home")
        self.config = tmp_path / (name + "-config")
        self.home.mkdir()
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
                    "XDG_CONFIG_HOME": str(self.config), "LANG": "C.UTF-8"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                self.env[k] = os.environ[k]

    @property
    def cred_dir(self):
        return self.config / "odysseus"

    @property
    def cred_file(self):
        return self.cred_dir / "credentials.json"

    @property
    def known_file(self):
        """Where `audit verify --server` remembers keys and checkpoints."""
        return self.cred_dir / "audit-known.json"

    def creds(self):
        with open(self.cred_file) as f:
            return json.load(f)

    def write_creds(self, data):
        # Rewrite in place so the file keeps its 0600 mode.
        with open(self.cred_file, "w") as f:
            json.dump(data, f)

    def token(self):
        """The stored access token."""
        return self.creds()["access_token"]

    def api(self):
        """A requests session with this user's current access token."""
        return self.server.session(self.token())

    def run(self, *args, input="", env=None):
        """Runs odysseus (env is added to the user's); no sanitizer report allowed."""
        p = subprocess.run([ODYSSEUS, *args], input=input, capture_output=True, text=True,
                           timeout=self.timeout, env={**self.env, **(env or {})})
        assert "AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
        return p

    def ok(self, *args, **kw):
        p = self.run(*args, **kw)
        assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
        return p

    def json(self, *args, **kw):
        return json.loads(self.ok("--output", "json", *args, **kw).stdout)

    def login_run(self, email, password):
        """`odysseus login` to self.server with password on stdin; the process."""
        return self.run("login", "--server", self.server.url, "--ca", self.server.ca,
                        "--email", email, input=password + "\n")

    def login(self, email, password):
        """Logs in (it must succeed); self, with .email."""
        p = self.login_run(email, password)
        assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
        self.email = email
        return self


def own_server(prefix):
    """For a module's own server fixture (`yield from own_server(prefix)`):
    yields a Server on a new data dir named from prefix; afterwards stops it,
    removes the dir and asserts that odysseusd exited 0."""
    d = tempfile.mkdtemp(prefix=prefix)
    srv = Server(d)
    yield srv
    rc = srv.stop()
    shutil.rmtree(d, ignore_errors=True)
    assert rc == 0, "odysseusd exited %s" % rc


def table(stdout):
    """Parses an aligned table into (headers, rows of cells)."""
    lines = [l for l in stdout.splitlines() if l.strip()]
    return lines[0].split(), [l.split() for l in lines[1:]]


def assert_error(p, code, exit_status):
    """An API error: exit_status, nothing on stdout, the error line with code
    on stderr. Returns the error's message."""
    assert p.returncode == exit_status, (p.returncode, p.stdout, p.stderr)
    m = ERROR_LINE.search(p.stderr)
    assert m, p.stderr
    assert m.group(2) == code, p.stderr
    assert p.stdout == "", (p.stdout, p.stderr)
    return m.group(1)


def assert_usage(p, words, usage="usage:"):
    """A usage error: exit 2, nothing on stdout, an `odysseus: ` line with
    words, and the usage text (from `usage` on) on stderr."""
    assert p.returncode == EXIT_USAGE, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == "", (p.stdout, p.stderr)
    assert p.stderr.startswith("odysseus: ") and words in p.stderr, p.stderr
    assert usage in p.stderr, p.stderr
