"""`odysseus deploy | ls | scale | restart | rollback | revisions | rm | logs` and
`odysseus containers ls | restart | stop` against the real odysseusd.

Most tests share a server of this module's own with no node enrolled, so
every replica stays `pending`; the container tests enroll Python agents
(test_deployments.FakeAgent) on a server of their own, which places the
replicas and reports them running. Each CLI user has a private HOME and
XDG_CONFIG_HOME. Contract: docs/cli.md (Deployments and containers, exit
codes), docs/deployments.md.
"""
import base64
import re
import signal
import subprocess
import threading
import time

import pytest

from cli_helpers import (EXIT_CONFLICT, EXIT_FORBIDDEN, EXIT_INVALID, EXIT_NOT_FOUND, Cli,
                         assert_error, assert_usage, own_server, table)
from conftest import ODYSSEUS, TENANT_ADMIN_PASSWORD, USER_PASSWORD, make_user, new_tenant
from test_deployments import FakeAgent
from test_nodes import agent_conn, call

IMAGE = "odysseus-test/busybox:1"
IMAGE2 = "odysseus-test/busybox:2"
ROW_HEADERS = ["NAME", "IMAGE", "REVISION", "REPLICAS", "RUNNING"]
LS_HEADERS = ROW_HEADERS + ["PENDING", "UPDATED"]
REPLICA_HEADERS = ["ID", "REPLICA", "REVISION", "NODE", "STATE", "RESTARTS"]
CONTAINER_HEADERS = ["ID", "DEPLOYMENT", "REPLICA", "REVISION", "NODE", "DESIRED", "STATE",
                     "RESTARTS"]
REVISION_HEADERS = ["REVISION", "IMAGE", "CREATED_BY", "CREATED"]


# --- fixtures --------------------------------------------------------------------

@pytest.fixture(scope="module")
def dep_server():
    """A server of this module's own with no node: replicas stay pending."""
    yield from own_server("odx-e2e-cli-dep-")


def tenant_cli(tmp_path, srv, name="admin"):
    """A CLI logged in as the Admin of a new tenant; .tenant is the tenant."""
    tenant, email, _ = new_tenant(srv)
    c = Cli(tmp_path, srv, name).login(email, TENANT_ADMIN_PASSWORD)
    c.tenant = tenant
    return c


@pytest.fixture
def cli(tmp_path, dep_server):
    return tenant_cli(tmp_path, dep_server)


# --- deploy ----------------------------------------------------------------------

def test_deploy_with_secrets_needs_a_grant(cli):
    api, url = cli.api(), cli.server.url
    assert api.put(url + "/v1/secrets/db", json={"value": "v"}).status_code == 201
    # not granted yet: the server's refusal names the secret
    p = cli.run("deploy", "sec", "--image", IMAGE, "--replicas", "0", "--secret", "db")
    assert p.returncode == EXIT_INVALID and "db" in p.stderr, p.stderr
    assert api.post(url + "/v1/secrets/db/grants", json={"deployments": ["sec"]}).status_code == 200
    cli.ok("deploy", "sec", "--image", IMAGE, "--replicas", "0", "--secret", "db")
    assert api.get(url + "/v1/deployments/sec").json()["secrets"] == ["db"]


def test_deploy_creates_then_updates_with_new_revisions(cli):
    p = cli.ok("deploy", "web", "--image", IMAGE, "--replicas", "0", "--env", "MODE=a",
               "--env", "EMPTY=", "--env", "EQ=a=b", "--writable", "/tmp", "--cpu", "100",
               "--memory", "32", "--user", "1000:1000")
    headers, rows = table(p.stdout)
    assert headers == ROW_HEADERS
    assert rows == [["web", IMAGE, "1", "0", "0"]]
    d = cli.api().get(cli.server.url + "/v1/deployments/web").json()
    assert d["env"] == {"MODE": "a", "EMPTY": "", "EQ": "a=b"}
    assert d["writable_paths"] == ["/tmp"] and d["user"] == "1000:1000"
    assert d["resources"] == {"cpu_millicores": 100, "memory_mb": 32, "pids": 128,
                              "storage_mb": 0}
    assert d["command"] == []

    # Deploying again with another image updates it: revision 2, the rest kept.
    p = cli.ok("deploy", "web", "--image", IMAGE2)
    assert table(p.stdout) == (ROW_HEADERS, [["web", IMAGE2, "2", "0", "0"]])
    d = cli.api().get(cli.server.url + "/v1/deployments/web").json()
    assert d["env"] == {"MODE": "a", "EMPTY": "", "EQ": "a=b"} and d["user"] == "1000:1000"
    assert d["resources"]["cpu_millicores"] == 100 and d["replicas"] == 0

    # The same template again: no new revision.
    assert table(cli.ok("deploy", "web", "--image", IMAGE2).stdout)[1][0][2] == "2"

    # One resource given: the others keep their values (not the API's defaults).
    d = cli.json("deploy", "web", "--image", IMAGE2, "--memory", "64", "--replicas", "1")
    assert d["revision"] == 3 and d["replicas"] == 1
    assert d["resources"] == {"cpu_millicores": 100, "memory_mb": 64, "pids": 128,
                              "storage_mb": 0}
    assert d["status"] == {"containers": 1, "running": 0, "pending": 1}

    # The command after --, every word kept (options after -- are words too).
    d = cli.json("deploy", "web", "--image", IMAGE2, "--", "sh", "-c", "httpd -f", "--env")
    assert d["command"] == ["sh", "-c", "httpd -f", "--env"] and d["revision"] == 4
    # ... or one word per --cmd; --env given replaces the whole env.
    d = cli.json("deploy", "web", "--image", IMAGE2, "--cmd", "sleep", "--cmd", "-1",
                 "--env", "ONLY=1")
    assert d["command"] == ["sleep", "-1"] and d["env"] == {"ONLY": "1"}
    assert d["revision"] == 5

    # --output json prints the API's deployment.
    api = cli.api().get(cli.server.url + "/v1/deployments/web").json()
    api.pop("containers", None)
    assert {k: v for k, v in d.items() if k != "status"} == \
        {k: v for k, v in api.items() if k != "status"}


def test_deploy_errors_from_the_server(cli):
    # A name the API refuses, an image it refuses: exit 7 with its message.
    p = cli.run("deploy", "Bad_Name", "--image", IMAGE)
    assert "name" in assert_error(p, "bad_request", EXIT_INVALID)
    p = cli.run("deploy", "web", "--image", "UPPER/case")
    assert "image" in assert_error(p, "bad_request", EXIT_INVALID)
    p = cli.run("deploy", "web", "--image", IMAGE, "--replicas", "101")
    assert "replicas" in assert_error(p, "bad_request", EXIT_INVALID)
    p = cli.run("deploy", "web", "--image", IMAGE, "--writable", "relative")
    assert_error(p, "bad_request", EXIT_INVALID)
    assert cli.json("ls")["items"] == []


@pytest.mark.parametrize("args, words", [
    (["deploy", "web"], "--image is required"),
    (["deploy", "--image", IMAGE], "missing arguments"),
    (["deploy", "web", "more", "--image", IMAGE], "unexpected argument"),
    (["deploy", "web", "--image", IMAGE, "--env", "NOEQUALS"], "--env must be NAME=VALUE"),
    (["deploy", "web", "--image", IMAGE, "--env", "=value"], "--env must be NAME=VALUE"),
    (["deploy", "web", "--image", IMAGE, "--env", "1X=v"], "--env must be NAME=VALUE"),
    (["deploy", "web", "--image", IMAGE, "--env", "A-B=v"], "--env must be NAME=VALUE"),
    (["deploy", "web", "--image", IMAGE, "--env", "A=1", "--env", "A=2"], "given twice"),
    (["deploy", "web", "--image", IMAGE, "--replicas", "two"], "--replicas must be"),
    (["deploy", "web", "--image", IMAGE, "--replicas", "-1"], "--replicas must be"),
    (["deploy", "web", "--image", IMAGE, "--cpu", "1.5"], "--cpu must be"),
    (["deploy", "web", "--image", IMAGE, "--memory", "64M"], "--memory must be"),
    (["deploy", "web", "--image", IMAGE, "--pids", ""], "--pids must be"),
    (["deploy", "web", "--image", IMAGE, "--storage", "+5"], "--storage must be"),
    (["deploy", "web", "--image", IMAGE, "--user", "root"], "--user must be"),
    (["deploy", "web", "--image", IMAGE, "--user", "1:"], "--user must be"),
    (["deploy", "web", "--image", IMAGE, "--bogus"], "unknown option --bogus"),
    (["deploy", "web", "--image", IMAGE, "--cmd"], "needs a value"),
    (["ls", "a", "b"], "unexpected argument"),
    (["scale", "web"], "missing arguments"),
    (["scale", "web", "x"], "REPLICAS must be"),
    (["scale", "web", "-2"], "unknown option -2"),
    (["rollback", "web", "--to", "0"], "--to must be"),
    (["rollback", "web", "--to", "x"], "--to must be"),
    (["restart"], "missing arguments"),
    (["rm", "a", "b"], "unexpected argument"),
    (["revisions"], "missing arguments"),
    (["logs", "ctr_x", "--tail", "ten"], "--tail must be"),
    (["logs", "ctr_x", "--tail", "0"], "--tail must be"),
    (["logs"], "missing arguments"),
    (["containers", "ls", "--deployment", ""], "must not be empty"),
    (["containers", "stop"], "missing arguments"),
    (["containers", "bogus"], "unknown command 'containers bogus'"),
])
def test_bad_arguments_are_usage_errors(cli, args, words):
    assert_usage(cli.run(*args), words)
    # Nothing was sent: no deployment appeared.
    assert cli.json("ls")["items"] == []


# --- ls, scale, restart, rollback, revisions, rm ---------------------------------

def test_ls_tables_and_json(cli):
    cli.ok("deploy", "api", "--image", IMAGE, "--replicas", "2")
    cli.ok("deploy", "worker", "--image", IMAGE2, "--replicas", "0")

    headers, rows = table(cli.ok("ls").stdout)
    assert headers == LS_HEADERS
    assert [r[:6] for r in rows] == [["api", IMAGE, "1", "2", "0", "2"],
                                    ["worker", IMAGE2, "1", "0", "0", "0"]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r[6]) for r in rows)
    page = cli.json("ls")
    assert set(page) == {"items", "next_cursor"} and page["next_cursor"] is None
    assert [d["name"] for d in page["items"]] == ["api", "worker"]
    assert page["items"][0]["status"] == {"containers": 2, "running": 0, "pending": 2}

    # ls NAME: the deployment's containers; pending without a node.
    headers, rows = table(cli.ok("ls", "api").stdout)
    assert headers == REPLICA_HEADERS
    assert sorted(r[1] for r in rows) == ["0", "1"]
    for r in rows:
        assert re.fullmatch(r"ctr_[0-9a-f]{32}", r[0]), r
        assert r[2] == "1" and r[3] == "-" and r[4] == "pending", r
    d = cli.json("ls", "api")
    assert d["name"] == "api" and {c["id"] for c in d["containers"]} == {r[0] for r in rows}
    assert table(cli.ok("ls", "worker").stdout) == (REPLICA_HEADERS, [])
    assert_error(cli.run("ls", "missing"), "not_found", EXIT_NOT_FOUND)


def test_scale_restart_rollback_revisions_rm(cli):
    cli.ok("deploy", "web", "--image", IMAGE, "--replicas", "1")
    cli.ok("deploy", "web", "--image", IMAGE2)

    # scale: replicas change, the revision does not.
    assert table(cli.ok("scale", "web", "3").stdout) == (ROW_HEADERS,
                                                          [["web", IMAGE2, "2", "3", "0"]])
    assert cli.json("scale", "web", "0")["replicas"] == 0
    assert_error(cli.run("scale", "missing", "1"), "not_found", EXIT_NOT_FOUND)

    # restart: 202 with the deployment.
    assert table(cli.ok("restart", "web").stdout)[1] == [["web", IMAGE2, "2", "0", "0"]]
    assert cli.json("restart", "web")["name"] == "web"
    assert_error(cli.run("restart", "missing"), "not_found", EXIT_NOT_FOUND)

    # rollback: default to the revision before, as a new revision.
    assert table(cli.ok("rollback", "web").stdout)[1] == [["web", IMAGE, "3", "0", "0"]]
    # --to a kept revision.
    d = cli.json("rollback", "web", "--to", "2")
    assert d["revision"] == 4 and d["image"] == IMAGE2
    p = cli.run("rollback", "web", "--to", "99")
    assert "revision" in assert_error(p, "bad_request", EXIT_INVALID)

    # revisions: newest first.
    headers, rows = table(cli.ok("revisions", "web").stdout)
    assert headers == REVISION_HEADERS
    assert [r[:2] for r in rows] == [["4", IMAGE2], ["3", IMAGE], ["2", IMAGE2], ["1", IMAGE]]
    me = cli.api().get(cli.server.url + "/v1/me").json()["id"]
    assert {r[2] for r in rows} == {me}
    revs = cli.json("revisions", "web")
    assert [x["revision"] for x in revs["items"]] == [4, 3, 2, 1]
    assert revs["next_cursor"] is None and revs["items"][1]["template"]["image"] == IMAGE
    assert_error(cli.run("revisions", "missing"), "not_found", EXIT_NOT_FOUND)

    # rm
    p = cli.ok("rm", "web")
    assert p.stdout == "deployment web deleted\n"
    assert_error(cli.run("ls", "web"), "not_found", EXIT_NOT_FOUND)
    assert_error(cli.run("rm", "web"), "not_found", EXIT_NOT_FOUND)
    cli.ok("deploy", "quiet", "--image", IMAGE, "--replicas", "0")
    assert cli.run("--output", "json", "rm", "quiet").stdout == ""


# --- who may ---------------------------------------------------------------------

def test_readonly_user_is_forbidden_to_deploy(tmp_path, cli):
    cli.ok("deploy", "web", "--image", IMAGE, "--replicas", "0")
    user = make_user(cli.server, cli.token(), "readonly")
    ro = Cli(tmp_path, cli.server, "ro").login(user["email"], USER_PASSWORD)
    # Reading is allowed ...
    assert [d["name"] for d in ro.json("ls")["items"]] == ["web"]
    assert table(ro.ok("revisions", "web").stdout)[1][0][:2] == ["1", IMAGE]
    # ... changing is not: a new deployment, an update, and the other verbs.
    for args in (["deploy", "other", "--image", IMAGE], ["deploy", "web", "--image", IMAGE2],
                 ["scale", "web", "2"], ["restart", "web"], ["rollback", "web"], ["rm", "web"]):
        assert_error(ro.run(*args), "forbidden", EXIT_FORBIDDEN)
    d = cli.json("ls", "web")
    assert d["revision"] == 1 and d["image"] == IMAGE
    assert [x["name"] for x in cli.json("ls")["items"]] == ["web"]


def test_quota_exceeded_is_a_conflict_with_the_api_message(cli):
    padm = cli.server.session(cli.server.admin_token())
    r = padm.put(cli.server.url + "/v1/tenants/%s/quotas" % cli.tenant["id"],
                 json={"cpu_cores": 100, "memory_mb": 100000, "containers": 2,
                       "storage_mb": 1000})
    assert r.status_code == 200, r.text
    msg = assert_error(cli.run("deploy", "web", "--image", IMAGE, "--replicas", "3"),
                       "quota_exceeded", EXIT_CONFLICT)
    assert msg == "quota exceeded: containers"
    assert cli.json("ls")["items"] == []  # nothing created

    cli.ok("deploy", "web", "--image", IMAGE, "--replicas", "2")
    # Deploying the existing one again fits (it is an update, not a second deployment).
    assert table(cli.ok("deploy", "web", "--image", IMAGE2, "--replicas", "2").stdout)[1] == \
        [["web", IMAGE2, "2", "2", "0"]]
    assert_error(cli.run("scale", "web", "3"), "quota_exceeded", EXIT_CONFLICT)
    msg = assert_error(cli.run("deploy", "web", "--image", IMAGE, "--memory", "100001"),
                       "quota_exceeded", EXIT_CONFLICT)
    assert "memory_mb" in msg
    assert cli.json("ls", "web")["replicas"] == 2


# --- containers, with Python agents ---------------------------------------------

@pytest.fixture
def placed(fresh_server, tmp_path):
    """A server with one FakeAgent and a CLI of a tenant's Admin."""
    srv = fresh_server(extra=("--heartbeat-interval", "1", "--node-grace", "30"))
    agent = FakeAgent(srv, tmp_path, "node-a", cpus=2)
    return srv, agent, tenant_cli(tmp_path, srv)


def test_containers_ls_restart_stop_with_an_agent(placed):
    srv, agent, cli = placed
    cli.ok("deploy", "web", "--image", IMAGE, "--replicas", "2")
    cli.ok("deploy", "db", "--image", IMAGE2, "--replicas", "1")
    assigned = agent.run_all()
    assert len(assigned) == 3

    headers, rows = table(cli.ok("containers", "ls").stdout)
    assert headers == CONTAINER_HEADERS
    assert {r[0] for r in rows} == {a["container"] for a in assigned}
    assert sorted(r[1] for r in rows) == ["db", "web", "web"]
    for r in rows:
        assert r[4] == agent.id and r[5] == "running" and r[6] == "running", r
    page = cli.json("containers", "ls", "--deployment", "web")
    assert page["next_cursor"] is None and len(page["items"]) == 2
    assert {c["deployment"] for c in page["items"]} == {"web"}
    _, rows = table(cli.ok("containers", "ls", "--deployment", "db").stdout)
    assert len(rows) == 1 and rows[0][1] == "db"
    assert table(cli.ok("containers", "ls", "--deployment", "nothing").stdout)[1] == []
    assert_error(cli.run("containers", "ls", "--deployment", "Bad_Name"), "bad_request",
                 EXIT_INVALID)

    # ls and ls NAME show them running on the node.
    _, rows = table(cli.ok("ls").stdout)
    assert [r[:6] for r in rows] == [["db", IMAGE2, "1", "1", "1", "0"],
                                    ["web", IMAGE, "1", "2", "2", "0"]]
    _, rows = table(cli.ok("ls", "web").stdout)
    assert {(r[3], r[4]) for r in rows} == {(agent.id, "running")}

    # stop: the container stays, desired stopped.
    cid = rows[0][0]
    headers, rows = table(cli.ok("containers", "stop", cid).stdout)
    assert headers == CONTAINER_HEADERS and rows[0][0] == cid and rows[0][5] == "stopped"
    assert {a["container"]: a["state"] for a in agent.assignments()}[cid] == "stopped"
    # restart: a replacement is placed; the old one goes once it runs.
    p = cli.ok("containers", "restart", cid)
    assert cid in p.stdout
    assert len({a["container"] for a in agent.assignments()}) == 4
    missing = "ctr_" + "0" * 32
    for verb in ("stop", "restart"):
        assert_error(cli.run("containers", verb, missing), "not_found", EXIT_NOT_FOUND)

    # Another tenant sees none of it.
    other = tenant_cli(cli.home.parent, srv, "other")
    assert other.json("containers", "ls")["items"] == []
    assert_error(other.run("containers", "stop", cid), "not_found", EXIT_NOT_FOUND)


# --- logs ------------------------------------------------------------------------

class LogAnswers:
    """The agent side of logs: answers every `logs` action of agent's node
    with the output reply(action) gives (bytes, or None: not_found), from a
    thread, and keeps the actions it saw."""

    def __init__(self, srv, agent, reply):
        self.conn = agent_conn(srv, agent.crt, agent.key)
        self.reply = reply
        self.actions = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done.is_set():
            status, body = call(self.conn, "GET", "/agent/v1/actions?wait=1")
            assert status == 200, body
            for act in body["actions"]:
                self.actions.append(act)
                out = self.reply(act)
                answer = {"error": "not_found"} if out is None else {
                    "output_b64": base64.urlsafe_b64encode(out).decode().rstrip("=")}
                call(self.conn, "POST", "/agent/v1/actions/%s/result" % act["id"], answer)

    def stop(self):
        self.done.set()
        self.thread.join(timeout=15)


def run_bytes(cli, *args):
    """odysseus with stdout as bytes (log text need not be UTF-8)."""
    p = subprocess.run([ODYSSEUS, *args], capture_output=True, timeout=60, env=cli.env)
    assert b"AddressSanitizer" not in p.stderr and b"runtime error" not in p.stderr, p.stderr
    return p


def test_logs(placed):
    srv, agent, cli = placed
    p = cli.run("logs", "ctr_" + "0" * 32)
    assert_error(p, "not_found", EXIT_NOT_FOUND)
    cli.ok("deploy", "web", "--image", IMAGE, "--replicas", "1")
    (a,) = agent.run_all()
    cid = a["container"]

    # Not placed on a node yet (no room on the 2-CPU node): the API's conflict.
    cli.ok("deploy", "huge", "--image", IMAGE, "--replicas", "1", "--cpu", "3000")
    (pending,) = cli.json("ls", "huge")["containers"]
    assert_error(cli.run("logs", pending["id"]), "conflict", EXIT_CONFLICT)

    # The text exactly as the node sent it, bytes that are not UTF-8 included; --tail passed on.
    text = b"hello\nworld \xff\n"
    node = LogAnswers(srv, agent, lambda act: text if act["container"] == cid else None)
    try:
        p = run_bytes(cli, "logs", cid, "--tail", "5")
        assert p.returncode == 0, p.stderr
        assert p.stdout == text
        assert node.actions[-1]["tail"] == 5 and node.actions[-1]["since"] == 0
        # --output json changes nothing: the answer is text.
        assert run_bytes(cli, "--output", "json", "logs", cid).stdout == text
        # --follow: the text, then every 2 s what came since the poll before, until ^C.
        start = int(time.time())
        f = subprocess.Popen([ODYSSEUS, "logs", cid, "--follow"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=cli.env)
        time.sleep(5)
        assert f.poll() is None, f.communicate()
        f.send_signal(signal.SIGINT)
        out, err = f.communicate(timeout=10)
        assert f.returncode == -signal.SIGINT, (f.returncode, err)
        assert b"AddressSanitizer" not in err and b"runtime error" not in err, err
        polls = len(node.actions) - 2  # the two runs above
        assert polls >= 3, node.actions
        # ^C may have come while an answer was on its way.
        assert out in (text * polls, text * (polls - 1)), (out, polls)
        sinces = [x["since"] for x in node.actions[2:]]
        assert sinces[0] == 0 and all(start - 1 <= t <= time.time() for t in sinces[1:])
        assert sinces[1:] == sorted(sinces[1:]), sinces
    finally:
        node.stop()

    # The node knows no such container: not found.
    node = LogAnswers(srv, agent, lambda act: None)
    try:
        assert_error(cli.run("logs", cid), "not_found", EXIT_NOT_FOUND)
    finally:
        node.stop()
