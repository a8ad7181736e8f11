"""TLS and configuration of the real odysseusd.

The internal CA's server certificate (verifies with DIR/pki/ca.crt, names
127.0.0.1 and localhost), TLS versions, an operator-supplied certificate,
the plain-HTTP guard, and where settings come from: flag > environment >
config file (`key = value` lines, keys named like the long flags, `#`
comments).
"""
import hashlib
import itertools
import os
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import time
import warnings

import pytest
import requests

from conftest import (ADMIN_EMAIL, ADMIN_PASSWORD, ODYSSEUSD, TENANT_ADMIN_PASSWORD, Process,
                      clean_env, free_port, init_data_dir, stopped_at_teardown)


# --- helpers -----------------------------------------------------------------

@pytest.fixture
def data_dir():
    """An initialised data dir of the test's own."""
    d = tempfile.mkdtemp(prefix="odx-e2e-tls-")
    init_data_dir(d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


_seq = itertools.count()


class Serve(Process):
    """`odysseusd serve` with exactly the given arguments and environment."""

    def __init__(self, data_dir, args, env=None, data_dir_flag=True):
        self.data_dir = data_dir
        cmd = [ODYSSEUSD, "serve", "--argon2-memory-kib", "8192"]
        if data_dir_flag:
            cmd += ["--data-dir", data_dir]
        super().__init__(cmd + list(args), os.path.join(data_dir, "serve-%d.log" % next(_seq)), env)

    def wait_listening(self, port, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("odysseusd exited %s: %s" % (self.proc.returncode, self.logs()))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nothing listens on %d: %s" % (port, self.logs()))

    def wait_exit(self, timeout=15):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("odysseusd kept running; expected it to refuse to start")


@pytest.fixture
def serve():
    """serve(data_dir, args, env=None, data_dir_flag=True): a Serve, stopped at teardown."""
    yield from stopped_at_teardown(Serve)


def tls_connect(port, cafile=None, server_hostname="127.0.0.1", context=None):
    """Handshake; returns (version, DER certificate, decoded certificate)."""
    ctx = context or ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with ctx.wrap_socket(sock, server_hostname=server_hostname) as tls:
            return tls.version(), tls.getpeercert(binary_form=True), tls.getpeercert()


def healthz(port, cafile):
    r = requests.get("https://127.0.0.1:%d/healthz" % port, verify=cafile, timeout=10)
    return r.status_code


def port_is_closed(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def run_refused(args, env=None, timeout=15):
    """Run serve expecting it to refuse; returns (exit status, output)."""
    try:
        r = subprocess.run([ODYSSEUSD, "serve"] + list(args), capture_output=True, text=True,
                           timeout=timeout, env=clean_env(env))
    except subprocess.TimeoutExpired:
        raise AssertionError("odysseusd kept running; expected it to refuse to start")
    return r.returncode, r.stdout + r.stderr


# --- the internal CA's certificate ---------------------------------------------

def test_certificate_verifies_with_the_internal_ca(server):
    version, der, cert = tls_connect(server.port, cafile=server.ca, server_hostname="127.0.0.1")
    assert version in ("TLSv1.2", "TLSv1.3")
    sans = set(cert.get("subjectAltName", ()))
    assert ("IP Address", "127.0.0.1") in sans, sans
    assert ("DNS", "localhost") in sans, sans
    tls_connect(server.port, cafile=server.ca, server_hostname="localhost")
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_connect(server.port, cafile=server.ca, server_hostname="example.com")
    # Not trusted by anything but its own CA.
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_connect(server.port, context=ssl.create_default_context())
    # ca.crt is a CA certificate and not the server's own.
    ca_der = ssl.PEM_cert_to_DER_cert(open(server.ca).read())
    assert ca_der != der


def _version_context(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # so the client can still offer old versions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


@pytest.mark.parametrize("name", ["TLSv1", "TLSv1_1"])
def test_old_tls_versions_are_refused(server, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        version = getattr(ssl.TLSVersion, name)
    with pytest.raises(ssl.SSLError) as e:
        tls_connect(server.port, context=_version_context(version))
    # The refusal must come from the server, not from this client's own policy.
    assert "NO_PROTOCOLS_AVAILABLE" not in str(e.value).upper(), e.value


@pytest.mark.parametrize("name,expected", [("TLSv1_2", "TLSv1.2"), ("TLSv1_3", "TLSv1.3")])
def test_modern_tls_versions_are_served(server, name, expected):
    version, _, _ = tls_connect(server.port, context=_version_context(getattr(ssl.TLSVersion, name)))
    assert version == expected


def _reachable_by_others(data_dir, path):
    """True when a user other than the owner can open `path`: every
    directory from the data dir down lets others through (o+x) and the file
    lets them read (o+r)."""
    d = os.path.dirname(path)
    while True:
        if not os.stat(d).st_mode & stat.S_IXOTH:
            return False
        if os.path.samefile(d, data_dir):
            break
        d = os.path.dirname(d)
    return bool(os.stat(path).st_mode & stat.S_IROTH)


def test_private_files_are_not_readable_by_others(serve):
    """init into an existing directory made with a common 0755 mode (as a
    package or an operator would), serve, create a tenant; no private file
    (database with password hashes, keys) is then readable by other users.
    Key files are owner-only whatever the directory modes."""
    d = tempfile.mkdtemp(prefix="odx-e2e-perm-")
    try:
        os.chmod(d, 0o755)
        init_data_dir(d)
        port = free_port()
        s = serve(d, ["--listen", "127.0.0.1:%d" % port])
        s.wait_listening(port)
        url = "https://127.0.0.1:%d" % port
        ca = _ca(d)
        tok = requests.post(url + "/v1/auth/login", verify=ca,
                            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()["access_token"]
        r = requests.post(url + "/v1/tenants", verify=ca, headers={"Authorization": "Bearer " + tok},
                          json={"name": "perm", "admin": {"email": "perm@tenant.test",
                                                          "password": TENANT_ADMIN_PASSWORD}})
        assert r.status_code == 201, r.text
        exposed, loose_keys = [], []
        for root, _, files in os.walk(d):
            for f in files:
                if f.endswith(".log") or f.endswith(".crt"):  # harness logs; public certificates
                    continue
                path = os.path.join(root, f)
                rel = os.path.relpath(path, d)
                mode = stat.S_IMODE(os.stat(path).st_mode)
                if _reachable_by_others(d, path):
                    exposed.append("%s %o" % (rel, mode))
                if f.endswith((".key", ".pem")) and mode & 0o077:  # private key material
                    loose_keys.append("%s %o" % (rel, mode))
        assert not exposed and not loose_keys, \
            "readable by any local user (data dir %o): %s; key files not owner-only: %s" % (
                stat.S_IMODE(os.stat(d).st_mode), exposed, loose_keys)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --- --tls-cert / --tls-key ---------------------------------------------------

def _make_cert(d, name="op", san="IP:127.0.0.1,DNS:localhost"):
    key = os.path.join(d, name + ".key")
    crt = os.path.join(d, name + ".crt")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=operator-cert",
                        "-addext", "subjectAltName=" + san], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    der = subprocess.run(["openssl", "x509", "-in", crt, "-outform", "DER"],
                         capture_output=True, check=True).stdout
    return crt, key, hashlib.sha256(der).hexdigest()


def test_operator_certificate_is_served(data_dir, serve):
    crt, key, fingerprint = _make_cert(data_dir)
    port = free_port()
    s = serve(data_dir, ["--listen", "127.0.0.1:%d" % port, "--tls-cert", crt, "--tls-key", key])
    s.wait_listening(port)
    _, der, _ = tls_connect(port, cafile=crt)
    assert hashlib.sha256(der).hexdigest() == fingerprint
    assert healthz(port, crt) == 200


def test_tls_cert_without_key_is_refused(data_dir):
    crt, key, _ = _make_cert(data_dir)
    port = free_port()
    rc, out = run_refused(["--data-dir", data_dir, "--listen", "127.0.0.1:%d" % port,
                           "--tls-cert", crt])
    assert rc != 0 and out.strip(), out
    rc, out = run_refused(["--data-dir", data_dir, "--listen", "127.0.0.1:%d" % port,
                           "--tls-key", key])
    assert rc != 0 and out.strip(), out


def test_tls_key_not_matching_cert_is_refused(data_dir):
    crt, _, _ = _make_cert(data_dir, "one")
    _, other_key, _ = _make_cert(data_dir, "two")
    rc, out = run_refused(["--data-dir", data_dir, "--listen", "127.0.0.1:%d" % free_port(),
                           "--tls-cert", crt, "--tls-key", other_key])
    assert rc != 0 and out.strip(), out


def test_missing_tls_files_are_refused(data_dir):
    rc, out = run_refused(["--data-dir", data_dir, "--listen", "127.0.0.1:%d" % free_port(),
                           "--tls-cert", os.path.join(data_dir, "absent.crt"),
                           "--tls-key", os.path.join(data_dir, "absent.key")])
    assert rc != 0 and out.strip(), out
    assert "absent.crt" in out or "absent.key" in out, out


# --- plain HTTP guard ----------------------------------------------------------

def _mentions_the_rule(out):
    low = out.lower()
    return "plain" in low and "loopback" in low


def test_plain_http_on_a_public_address_is_refused(data_dir):
    port = free_port()
    rc, out = run_refused(["--data-dir", data_dir, "--plain-http", "--listen", "0.0.0.0:%d" % port])
    assert rc != 0, out
    assert _mentions_the_rule(out), "unclear refusal message: %r" % out
    assert port_is_closed(port)


def test_plain_http_on_a_public_address_is_refused_from_the_environment(data_dir):
    port = free_port()
    rc, out = run_refused(["--data-dir", data_dir],
                          env={"ODYSSEUS_PLAIN_HTTP": "1", "ODYSSEUS_LISTEN": "0.0.0.0:%d" % port})
    assert rc != 0, out
    assert _mentions_the_rule(out), "unclear refusal message: %r" % out


def test_plain_http_on_loopback_is_served(data_dir, serve):
    port = free_port()
    s = serve(data_dir, ["--plain-http", "--listen", "127.0.0.1:%d" % port])
    s.wait_listening(port)
    r = requests.get("http://127.0.0.1:%d/healthz" % port, timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ok"}


# --- config file, environment, flags -------------------------------------------

def _config(data_dir, text):
    path = os.path.join(data_dir, "odysseusd-%d.conf" % next(_seq))
    with open(path, "w") as f:
        f.write(text)
    return path


def _ca(data_dir):
    return os.path.join(data_dir, "pki", "ca.crt")


def test_config_file_is_read(data_dir, serve):
    p1 = free_port()
    conf = _config(data_dir, "# odysseusd settings\n\nlisten = 127.0.0.1:%d\n  threads=2  \n"
                             "# listen = 127.0.0.1:1\n" % p1)
    s = serve(data_dir, ["--config", conf])
    s.wait_listening(p1)
    assert healthz(p1, _ca(data_dir)) == 200


def test_flag_beats_config_file(data_dir, serve):
    p1, p2 = free_port(), free_port()
    conf = _config(data_dir, "listen = 127.0.0.1:%d\nthreads = 2\n" % p1)
    s = serve(data_dir, ["--config", conf, "--listen", "127.0.0.1:%d" % p2])
    s.wait_listening(p2)
    assert healthz(p2, _ca(data_dir)) == 200
    assert port_is_closed(p1)


def test_environment_beats_config_file(data_dir, serve):
    p1, p2 = free_port(), free_port()
    conf = _config(data_dir, "listen = 127.0.0.1:%d\n" % p1)
    s = serve(data_dir, ["--config", conf], env={"ODYSSEUS_LISTEN": "127.0.0.1:%d" % p2})
    s.wait_listening(p2)
    assert healthz(p2, _ca(data_dir)) == 200
    assert port_is_closed(p1)


def test_flag_beats_environment_and_config_file(data_dir, serve):
    p1, p2, p3 = free_port(), free_port(), free_port()
    conf = _config(data_dir, "listen = 127.0.0.1:%d\n" % p1)
    s = serve(data_dir, ["--config", conf, "--listen", "127.0.0.1:%d" % p3],
              env={"ODYSSEUS_LISTEN": "127.0.0.1:%d" % p2})
    s.wait_listening(p3)
    assert healthz(p3, _ca(data_dir)) == 200
    assert port_is_closed(p1) and port_is_closed(p2)


def test_environment_data_dir(data_dir, serve):
    port = free_port()
    s = serve(data_dir, ["--listen", "127.0.0.1:%d" % port],
              env={"ODYSSEUS_DATA_DIR": data_dir}, data_dir_flag=False)
    s.wait_listening(port)
    assert healthz(port, _ca(data_dir)) == 200


@pytest.mark.parametrize("text,word", [
    ("listen = 127.0.0.1:%(port)d\nlisten_adress = 127.0.0.1:1\n", "listen_adress"),
    ("listen = 127.0.0.1:%(port)d\nthreads = many\n", "threads"),
    ("listen = 127.0.0.1:%(port)d\nthis line has no equals sign\n", None),
])
def test_bad_config_file_is_refused(data_dir, text, word):
    port = free_port()
    conf = _config(data_dir, text % {"port": port})
    rc, out = run_refused(["--data-dir", data_dir, "--config", conf])
    assert rc != 0, out
    assert out.strip(), "refused without a word"
    # Clear: names the offending key, or points at the file and line.
    assert (word and word in out) or (conf + ":2") in out, out
    assert port_is_closed(port)


def test_missing_config_file_is_refused(data_dir):
    rc, out = run_refused(["--data-dir", data_dir, "--config", os.path.join(data_dir, "nope.conf")])
    assert rc != 0 and "nope.conf" in out, out
