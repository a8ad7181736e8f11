"""`odysseus secrets set | ls | get | rotate | grant | rm` against the real
odysseusd (issue 7 point 6).

A value goes in from stdin or a file, never from the command line, and never
comes out: not on stdout or stderr of any command, not in `--output json`.
Values above 64 KiB are refused before any request. What was stored is
checked where it can be seen: delivered to a Python agent running a granted
container (test_deployments.FakeAgent). Each CLI user has a private HOME and
XDG_CONFIG_HOME. Contract: docs/cli.md (Secrets, exit codes), docs/secrets.md.
"""
import base64
import json
import os
import pty
import re
import select
import subprocess
import time

import pytest

from cli_helpers import (EXIT_FORBIDDEN, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_USAGE, Cli,
                         assert_error, assert_usage, table)
from conftest import (ODYSSEUS, TENANT_ADMIN_PASSWORD, USER_PASSWORD, make_user, new_tenant,
                      unique)
from test_deployments import FakeAgent
from test_nodes import agent_conn, call

HEADERS = ["NAME", "VERSION", "GRANTS", "ROTATED"]
VALUE = "s3cr3t-cli-" + "q" * 24
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
MAX = 64 * 1024


def tenant_cli(tmp_path, srv, name="admin"):
    """A CLI logged in as the Admin of a new tenant."""
    _, email, _ = new_tenant(srv)
    return Cli(tmp_path, srv, name).login(email, TENANT_ADMIN_PASSWORD)


@pytest.fixture
def cli(tmp_path, server):
    return tenant_cli(tmp_path, server)


def secret_api(cli, name):
    return cli.api().get(cli.server.url + "/v1/secrets/" + name)


def no_value(p, *values):
    """None of values is in the process's output."""
    for v in values or (VALUE,):
        assert v not in p.stdout and v not in p.stderr, (p.stdout, p.stderr)
    return p


# --- set, ls, get ----------------------------------------------------------------

def test_set_from_stdin_and_from_a_file_then_ls_and_get(cli, tmp_path):
    p = no_value(cli.ok("secrets", "set", "db", input=VALUE + "\n"))
    headers, rows = table(p.stdout)
    assert headers == HEADERS
    assert rows[0][:3] == ["db", "1", "-"] and TIME.fullmatch(rows[0][3]), rows
    f = tmp_path / "value.txt"
    f.write_text("from-file-" + VALUE)
    p = no_value(cli.run("--output", "json", "secrets", "set", "db", "--from-file", str(f)),
                 VALUE, "from-file-" + VALUE)
    assert p.returncode == 0, p.stderr
    m = json.loads(p.stdout)
    assert m["name"] == "db" and m["version"] == 2 and m["grants"] == []
    assert [v["version"] for v in m["versions"]] == [1, 2]
    no_value(cli.ok("secrets", "set", "api", input="another-" + VALUE), VALUE, "another-")

    # ls: a row per secret, sorted by name; JSON: every page as one, no value anywhere.
    p = no_value(cli.ok("secrets", "ls"))
    headers, rows = table(p.stdout)
    assert headers == HEADERS
    assert [r[:3] for r in rows] == [["api", "1", "-"], ["db", "2", "-"]]
    p = no_value(cli.ok("--output", "json", "secrets", "ls"), VALUE, "from-file-", "another-")
    page = json.loads(p.stdout)
    assert set(page) == {"items", "next_cursor"} and page["next_cursor"] is None
    assert [s["name"] for s in page["items"]] == ["api", "db"]
    assert page["items"][1] == secret_api(cli, "db").json()

    # get: the same row; JSON: the API's metadata.
    p = no_value(cli.ok("secrets", "get", "db"))
    assert table(p.stdout)[1][0][:3] == ["db", "2", "-"]
    p = no_value(cli.ok("-o", "json", "secrets", "get", "db"), VALUE, "from-file-")
    assert json.loads(p.stdout) == secret_api(cli, "db").json()
    assert_error(cli.run("secrets", "get", "missing"), "not_found", EXIT_NOT_FOUND)


def test_the_value_is_never_a_command_line_argument(cli):
    # A second word would be the value: refused, and not echoed.
    for verb in ("set", "rotate"):
        p = cli.run("secrets", verb, "db", "somevalue-4242", input=VALUE)
        assert_usage(p, "never taken from the command line")
        assert "somevalue-4242" not in p.stderr
    # There is no option for it; the unknown option is named without its value.
    for opt in ("--value=v4242-abc", "--stdin=v4242-abc"):
        p = cli.run("secrets", "set", "db", opt, input=VALUE)
        assert p.returncode == EXIT_USAGE and "v4242-abc" not in p.stderr, p.stderr
    assert "--value" not in cli.ok("secrets", "set", "--help").stdout
    assert_error(cli.run("secrets", "get", "db"), "not_found", EXIT_NOT_FOUND)

    # While the value is being read, the process's argv holds no trace of it.
    proc = subprocess.Popen([ODYSSEUS, "secrets", "set", "db"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli.env)
    try:
        proc.stdin.write(VALUE.encode())
        proc.stdin.flush()
        time.sleep(0.2)
        with open("/proc/%d/cmdline" % proc.pid, "rb") as f:
            argv = f.read().split(b"\0")
        assert argv[-4:-1] == [b"secrets", b"set", b"db"], argv
        assert VALUE.encode() not in b"".join(argv)
    finally:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert VALUE.encode() not in out + err
    assert secret_api(cli, "db").json()["version"] == 1


def test_bad_values_are_refused_before_any_request(tmp_path, cli, server):
    # Not logged in: a request would exit 3, so exit 2 shows nothing was sent.
    anon = Cli(tmp_path, server, "anon")
    p = anon.run("secrets", "set", "big", input="x" * (MAX + 1))
    assert p.returncode == EXIT_USAGE and "larger than 64 KiB" in p.stderr, p.stderr
    # Logged in: refused the same way, and nothing exists afterwards.
    for value in ("x" * (MAX + 1), "x" * MAX + "\n\n"):
        p = cli.run("secrets", "set", "big", input=value)
        assert p.returncode == EXIT_USAGE and "larger than 64 KiB" in p.stderr, p.stderr
        assert p.stdout == "" and "xxxx" not in p.stderr
    f = tmp_path / "big.bin"
    f.write_bytes(b"y" * (MAX + 1))
    p = cli.run("secrets", "set", "big", "--from-file", str(f))
    assert p.returncode == EXIT_USAGE and "larger than 64 KiB" in p.stderr, p.stderr
    # Empty, NUL bytes, not UTF-8, a missing file.
    for value in ("", "\n"):
        p = cli.run("secrets", "set", "big", input=value)
        assert p.returncode == EXIT_USAGE and "empty" in p.stderr, p.stderr
    p = cli.run("secrets", "set", "big", input="a\0b")
    assert p.returncode == EXIT_USAGE and "UTF-8" in p.stderr, p.stderr
    f.write_bytes(b"\xff\xfe")
    p = cli.run("secrets", "set", "big", "--from-file", str(f))
    assert p.returncode == EXIT_USAGE and "UTF-8" in p.stderr, p.stderr
    p = cli.run("secrets", "set", "big", "--from-file", str(tmp_path / "none"))
    assert p.returncode == 1 and "cannot open" in p.stderr, p.stderr
    assert_error(cli.run("secrets", "get", "big"), "not_found", EXIT_NOT_FOUND)
    recs = cli.api().get(server.url + "/v1/audit", params={"action": "secret."}).json()
    assert recs["items"] == []
    # The limit itself: 64 KiB (and the newline that is dropped) is accepted.
    assert cli.json("secrets", "set", "big", input="z" * MAX + "\n")["version"] == 1
    f.write_bytes(b"w" * MAX)
    assert cli.json("secrets", "set", "big", "--from-file", str(f))["version"] == 2


@pytest.mark.parametrize("args, words", [
    (["secrets", "set"], "missing arguments"),
    (["secrets", "set", "db", "--generate-length", "0"], "--generate-length must be"),
    (["secrets", "set", "db", "--generate-length", "257"], "at most 256"),
    (["secrets", "set", "db", "--generate-length", "x"], "--generate-length must be"),
    (["secrets", "set", "db", "--rotate-every", "1h"], "need --generate-length"),
    (["secrets", "set", "db", "--alphabet", "ab"], "need --generate-length"),
    (["secrets", "set", "db", "--generate-length", "9", "--rotate-every", "59"], "from 1m"),
    (["secrets", "set", "db", "--generate-length", "9", "--rotate-every", "367d"], "to 366d"),
    (["secrets", "set", "db", "--generate-length", "9", "--rotate-every", "1w"], "a duration"),
    (["secrets", "set", "db", "--generate-length", "9", "--rotate-every", "1.5h"], "a duration"),
    (["secrets", "set", "db", "--generate-length", "9", "--alphabet", "a"], "--alphabet must"),
    (["secrets", "set", "db", "--generate-length", "9", "--alphabet", "ab\u00e9"],
     "--alphabet must"),
    (["secrets", "rotate", "db", "--stdin", "--from-file", "f"], "exclude each other"),
    (["secrets", "rotate"], "missing arguments"),
    (["secrets", "get"], "missing arguments"),
    (["secrets", "get", "a", "b"], "unexpected argument"),
    (["secrets", "rm", "a", "b"], "unexpected argument"),
    (["secrets", "ls", "a"], "unexpected argument"),
    (["secrets", "grant"], "missing arguments"),
    (["secrets", "bogus"], "unknown command 'secrets bogus'"),
])
def test_bad_arguments_are_usage_errors(cli, args, words):
    assert_usage(no_value(cli.run(*args, input=VALUE)), words)
    assert cli.json("secrets", "ls")["items"] == []


def test_help(cli):
    out = cli.ok("--help").stdout
    for usage in ("secrets set NAME [--from-file FILE]", "secrets ls", "secrets get NAME",
                  "secrets rotate NAME [--from-file FILE | --stdin]",
                  "secrets grant NAME [DEPLOYMENT...]", "secrets rm NAME"):
        assert usage in out, usage
    assert "never an argument" in cli.ok("secrets", "set", "--help").stdout
    assert "secrets rotate" in cli.ok("secrets", "--help").stdout


# --- rotate, grant, rm -----------------------------------------------------------

def test_rotate_given_and_generated(cli, tmp_path):
    cli.ok("secrets", "set", "plain", input=VALUE)
    # Without a policy, a generated value is refused by the server.
    p = no_value(cli.run("secrets", "rotate", "plain"))
    assert "generate_length" in assert_error(p, "bad_request", EXIT_INVALID)
    p = no_value(cli.ok("secrets", "rotate", "plain", "--stdin", input="second-" + VALUE),
                 VALUE, "second-")
    assert table(p.stdout)[1][0][:2] == ["plain", "2"]
    f = tmp_path / "v"
    f.write_text("third-" + VALUE)
    assert cli.json("secrets", "rotate", "plain", "--from-file", str(f))["version"] == 3
    p = cli.run("secrets", "rotate", "plain", "--stdin", input="")
    assert p.returncode == EXIT_USAGE and "empty" in p.stderr
    assert_error(cli.run("secrets", "rotate", "missing", "--stdin", input="v"), "not_found",
                 EXIT_NOT_FOUND)

    # A policy comes with set; then rotate without a value generates one.
    m = cli.json("secrets", "set", "gen", "--generate-length", "40", "--rotate-every", "1h",
                 input=VALUE)
    assert m["rotation"] == {"every_seconds": 3600, "generate_length": 40,
                             "generate_alphabet": None}
    m = cli.json("secrets", "set", "gen", "--generate-length", "12", "--rotate-every", "30d",
                 "--alphabet", "xyz", input=VALUE)
    assert m["rotation"] == {"every_seconds": 30 * 86400, "generate_length": 12,
                             "generate_alphabet": "xyz"} and m["version"] == 2
    # set without policy options keeps the policy.
    assert cli.json("secrets", "set", "gen", input=VALUE)["rotation"]["generate_length"] == 12
    p = no_value(cli.ok("secrets", "rotate", "gen"))
    assert table(p.stdout)[1][0][:2] == ["gen", "4"]
    m = cli.json("secrets", "get", "gen")
    assert m["version"] == 4 and [v["version"] for v in m["versions"]] == [1, 2, 3, 4]
    assert m["rotated_at"] >= m["created_at"]


def test_grant_and_revoke(cli):
    cli.ok("secrets", "set", "db", input=VALUE)
    p = no_value(cli.ok("secrets", "grant", "db", "web", "api"))
    assert table(p.stdout)[1][0][:3] == ["db", "1", "api,web"] or \
        table(p.stdout)[1][0][:3] == ["db", "1", "web,api"]
    assert sorted(cli.json("secrets", "get", "db")["grants"]) == ["api", "web"]
    _, rows = table(cli.ok("secrets", "ls").stdout)
    assert rows[0][2] in ("api,web", "web,api")
    # The whole list: what is given replaces what was.
    assert cli.json("secrets", "grant", "db", "worker")["grants"] == ["worker"]
    # None: every grant revoked.
    p = cli.ok("secrets", "grant", "db")
    assert table(p.stdout)[1][0][:3] == ["db", "1", "-"]
    assert cli.json("secrets", "get", "db")["grants"] == []
    assert_error(cli.run("secrets", "grant", "db", "Bad_Name"), "bad_request", EXIT_INVALID)
    assert_error(cli.run("secrets", "grant", "missing", "web"), "not_found", EXIT_NOT_FOUND)
    assert "revokes every grant" in cli.ok("secrets", "grant", "--help").stdout


def test_rm(cli):
    cli.ok("secrets", "set", "db", input=VALUE)
    p = cli.ok("secrets", "rm", "db")
    assert p.stdout == "secret db deleted\n"
    assert_error(cli.run("secrets", "get", "db"), "not_found", EXIT_NOT_FOUND)
    assert_error(cli.run("secrets", "rm", "db"), "not_found", EXIT_NOT_FOUND)
    cli.ok("secrets", "set", "quiet", input=VALUE)
    assert cli.run("--output", "json", "secrets", "rm", "quiet").stdout == ""
    assert cli.json("secrets", "ls")["items"] == []


# --- who may ---------------------------------------------------------------------

def test_developer_lists_but_cannot_write_readonly_cannot_list(tmp_path, cli):
    cli.ok("secrets", "set", "db", input=VALUE)
    dev_user = make_user(cli.server, cli.token(), "developer")
    dev = Cli(tmp_path, cli.server, "dev").login(dev_user["email"], USER_PASSWORD)
    assert [s["name"] for s in dev.json("secrets", "ls")["items"]] == ["db"]
    assert table(dev.ok("secrets", "get", "db").stdout)[1][0][:2] == ["db", "1"]
    for args in (["set", "db"], ["set", "new"], ["rotate", "db", "--stdin"],
                 ["rotate", "db"], ["grant", "db", "web"], ["rm", "db"]):
        assert_error(dev.run("secrets", *args, input="dev-" + VALUE), "forbidden",
                     EXIT_FORBIDDEN)
    ro_user = make_user(cli.server, cli.token(), "readonly")
    ro = Cli(tmp_path, cli.server, "ro").login(ro_user["email"], USER_PASSWORD)
    assert_error(ro.run("secrets", "ls"), "forbidden", EXIT_FORBIDDEN)
    assert_error(ro.run("secrets", "get", "db"), "forbidden", EXIT_FORBIDDEN)
    m = cli.json("secrets", "get", "db")
    assert m["version"] == 1 and m["grants"] == []


# --- what was stored, as a granted container receives it --------------------------

def type_on_a_terminal(cli, name, value):
    """`secrets set name` with stdin a terminal (a pty, no controlling one):
    answers both prompts with value; returns (process, what the terminal showed)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([ODYSSEUS, "secrets", "set", name], stdin=slave,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli.env,
                         start_new_session=True)
    os.close(slave)
    shown, err = b"", b""
    try:
        for prompt in (b"Value of secret " + name.encode() + b": ", b"Repeat"):
            while prompt not in err:
                r, _, _ = select.select([p.stderr], [], [], 20)
                assert r, err
                chunk = os.read(p.stderr.fileno(), 1024)
                assert chunk, err
                err += chunk
            err = b""
            os.write(master, value.encode() + b"\n")
        out, rest = p.communicate(timeout=30)
        while select.select([master], [], [], 0.2)[0]:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            shown += data
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, (out, rest)
    assert value.encode() not in out + rest
    return out.decode(), shown


def test_stored_values_as_a_granted_container_receives_them(fresh_server, tmp_path):
    srv = fresh_server(extra=("--heartbeat-interval", "1"))
    cli = tenant_cli(tmp_path, srv)
    agent = FakeAgent(srv, tmp_path, "sec-node")
    values = {}
    # stdin: one final newline dropped, two or more kept; a file: its bytes.
    cli.ok("secrets", "set", "one", input="v-one\n")
    values["one"] = "v-one"
    cli.ok("secrets", "set", "two", input="v-two\n\n")
    values["two"] = "v-two\n\n"
    cli.ok("secrets", "set", "raw", input="v-raw")
    values["raw"] = "v-raw"
    f = tmp_path / "pem"
    f.write_text("-----BEGIN X-----\nabc\n-----END X-----\n")
    cli.ok("secrets", "set", "file", "--from-file", str(f))
    values["file"] = f.read_text()
    # A terminal: prompted for without echo, twice; the line without its newline.
    out, shown = type_on_a_terminal(cli, "typed", "typed-" + VALUE)
    assert table(out)[1][0][:2] == ["typed", "1"]
    assert b"typed-" not in shown and shown.count(b"\n") == 2, shown
    values["typed"] = "typed-" + VALUE
    # Generated by the policy, from the alphabet.
    cli.ok("secrets", "set", "gen", "--generate-length", "24", "--alphabet", "xy",
           input="initial")
    assert cli.json("secrets", "rotate", "gen")["version"] == 2
    # A rotated value replaces the old one.
    cli.ok("secrets", "set", "rot", input="old")
    cli.ok("secrets", "rotate", "rot", "--stdin", input="rotated-" + VALUE + "\n")
    values["rot"] = "rotated-" + VALUE

    names = sorted(list(values) + ["gen"])
    for n in names:
        cli.ok("secrets", "grant", n, "app")
    r = cli.api().post(srv.url + "/v1/deployments",
                       json={"name": "app", "image": "odysseus-test/busybox:1", "replicas": 1,
                             "secrets": names})
    assert r.status_code == 201, r.text
    (x,) = agent.run_all()
    status, body = call(agent_conn(srv, agent.crt, agent.key), "GET",
                        "/agent/v1/secrets/" + x["container"])
    assert status == 200, body
    got = {}
    for s in body["secrets"]:
        pad = "=" * (-len(s["value_b64"]) % 4)
        got[s["name"]] = base64.urlsafe_b64decode(s["value_b64"] + pad).decode()
    assert re.fullmatch(r"[xy]{24}", got.pop("gen")), got
    assert got == values
