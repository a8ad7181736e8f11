"""`odysseus scan IMAGE | scan import`, `scans ls | show`, `scan-policies` and
the scan gating of `deploy` / `rollback` against the real odysseusd (issue 8,
SPEC §7).

The reports are real Trivy and Grype output for one image
(tests/data/scanners/appsecsanta-research, juice-shop). What the CLI prints
is checked against the API's JSON of the same scan, and the per-engine
counts also against the reports' own counts (README.md there). `scan IMAGE`
runs a stand-in engine: a shell script given to odysseusd as --trivy that
prints the Trivy report (or fails, or is slow, by the image's name). Each CLI
user has a private HOME and XDG_CONFIG_HOME. Contract: docs/cli.md.
"""
import json
import os
import re

import pytest

from cli_helpers import (EXIT_ERROR, EXIT_FORBIDDEN, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_SERVER,
                         EXIT_USAGE, Cli, assert_error, assert_usage, table)
from conftest import ROOT, TENANT_ADMIN_PASSWORD, USER_PASSWORD, make_user, new_tenant

DATA = os.path.join(ROOT, "tests", "data", "scanners", "appsecsanta-research")
TRIVY = os.path.join(DATA, "trivy-juice-shop.json")
GRYPE = os.path.join(DATA, "grype-juice-shop.json")
IMAGE = "docker.io/bkimminich/juice-shop:latest"  # the reports' image, normalised
DIGEST = "sha256:e68bd19091f952a0cdf75c5ca318d92e7a06b350ab5a88446f2bf62daf2e88c9"
KNOWN_ID = "CVE-2024-29415"  # ip 2.0.1, HIGH in both reports

SEVERITIES = ["critical", "high", "medium", "low", "negligible", "unknown", "total"]
# Counted in the reports themselves (Trivy Severity, Grype vulnerability.severity).
TRIVY_COUNTS = {"critical": 10, "high": 77, "medium": 31, "low": 17, "negligible": 0,
                "unknown": 0, "total": 135}
GRYPE_COUNTS = {"critical": 11, "high": 81, "medium": 29, "low": 3, "negligible": 12,
                "unknown": 0, "total": 136}

HEAD = ["ID", "IMAGE", "DIGEST", "STATUS", "TRIGGER", "CREATED", "ERROR"]
COUNTS = ["ENGINE", "STATUS", "VERSION", "CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE",
          "UNKNOWN", "TOTAL", "BOTH", "ONLY", "ERROR"]
DIFF = ["PREVIOUS", "NEW", "FIXED", "UNCHANGED"]
LS = ["ID", "IMAGE", "STATUS", "TRIGGER", "CRITICAL", "HIGH", "MEDIUM", "LOW", "NEW", "FIXED",
      "CREATED"]
FINDINGS = ["ID", "SEVERITY", "PACKAGE", "VERSION", "FIXED", "ENGINES"]
RECS = ["PRIORITY", "FINDING", "PACKAGE", "ACTION"]
UPGRADES = ["PRIORITY", "PACKAGE", "VERSION", "TO", "FIXES"]
POLICY = ["NAME", "ENABLED", "BLOCK_CRITICAL", "MAX_HIGH", "EXCEPTIONS", "IMAGES"]
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def tenant_cli(tmp_path, srv, name="admin"):
    """A CLI logged in as the Admin of a new tenant; .admin_token is its API token."""
    _, email, token = new_tenant(srv)
    c = Cli(tmp_path, srv, name).login(email, TENANT_ADMIN_PASSWORD)
    c.admin_token = token
    return c


@pytest.fixture
def cli(tmp_path, server):
    return tenant_cli(tmp_path, server)


def tables(stdout):
    """Every table of the output (they are separated by blank lines) as (headers, rows)."""
    return [table(block) for block in stdout.strip("\n").split("\n\n")]


def cell(v):
    """How a table shows a JSON value (numbers as printf's %.15g)."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    return "%.15g" % v if isinstance(v, float) else str(v)


def api_scan(cli, scan_id):
    r = cli.api().get(cli.server.url + "/v1/scans/" + scan_id)
    assert r.status_code == 200, r.text
    return r.json()


def check_summary(stdout, scan):
    """stdout is the summary of scan (the API's object): the scan, the counts per
    engine before the merge and merged after it, and the diff. Returns the tables."""
    t = tables(stdout)
    headers, rows = t[0]
    assert headers == HEAD and len(rows) == 1
    assert rows[0][:5] == [scan["id"], scan["image"], cell(scan["digest"]), scan["status"],
                           scan["trigger"]], rows
    assert TIME.fullmatch(rows[0][5]), rows
    headers, rows = t[1]
    assert headers == COUNTS
    summary = scan["summary"] or {"before": {}, "only": {}, "after": {}, "both": None}
    assert [r[0] for r in rows] == list(scan["engines"]) + ["merged"], rows
    for r in rows[:-1]:
        engine, before = scan["engines"][r[0]], summary["before"].get(r[0], {})
        assert r[1:3] == [engine["status"], cell(engine.get("version"))], r
        assert r[3:10] == [cell(before.get(k)) for k in SEVERITIES], r
        assert r[10:12] == ["-", cell(summary["only"].get(r[0]))], r
        assert " ".join(r[12:]) == " ".join(cell(engine.get("error")).split()), r
    merged = rows[-1]
    assert merged[1:3] == ["-", "-"]
    assert merged[3:10] == [cell(summary["after"].get(k)) for k in SEVERITIES], merged
    assert merged[10:] == [cell(summary["both"]), "-", "-"], merged
    if scan["diff"] is None:
        assert len(t) == 2 or t[2][0] != DIFF, stdout
    else:
        headers, rows = t[2]
        d = scan["diff"]
        assert headers == DIFF
        assert rows == [[cell(d["previous_scan_id"]), str(len(d["new"])), str(len(d["fixed"])),
                         cell(d["unchanged"])]]
    return t


def import_both(cli):
    """`scan import` of both juice-shop reports; the API's scan object."""
    p = cli.ok("scan", "import", TRIVY, GRYPE)
    scan = api_scan(cli, tables(p.stdout)[0][1][0][0])
    check_summary(p.stdout, scan)
    return scan


# --- scan import, scans ls, scans show ----------------------------------------------

def test_import_prints_the_counts_of_the_api(cli):
    scan = import_both(cli)
    assert scan["status"] == "completed" and scan["trigger"] == "import"
    assert scan["image"] == IMAGE and scan["digest"] == DIGEST
    assert set(scan["engines"]) == {"trivy", "grype"}
    assert all(e["status"] == "imported" for e in scan["engines"].values())
    # What the CLI printed (checked equal above) is what the reports hold.
    assert scan["summary"]["before"]["trivy"] == TRIVY_COUNTS
    assert scan["summary"]["before"]["grype"] == GRYPE_COUNTS
    after = scan["summary"]["after"]
    assert 0 < after["total"] <= TRIVY_COUNTS["total"] + GRYPE_COUNTS["total"]
    assert after["total"] == sum(after[k] for k in SEVERITIES[:-1])

    # The same reports again, the other way round and as JSON: the whole scan object,
    # with a diff against the first (nothing new, nothing fixed).
    again = cli.json("scan", "import", GRYPE, TRIVY, "--image", "bkimminich/juice-shop:latest")
    assert again == api_scan(cli, again["id"])
    assert again["summary"] == scan["summary"]
    assert again["diff"]["previous_scan_id"] == scan["id"]
    assert again["diff"]["new"] == [] and again["diff"]["fixed"] == []
    assert again["diff"]["unchanged"] == after["total"]
    t = check_summary(cli.ok("scans", "show", again["id"]).stdout, again)
    assert len(t) == 3  # no new or fixed findings to list

    # One report alone: one engine's row, then the merged counts.
    p = cli.ok("scan", "import", GRYPE)
    one = api_scan(cli, tables(p.stdout)[0][1][0][0])
    check_summary(p.stdout, one)
    assert list(one["engines"]) == ["grype"]
    assert one["summary"]["before"]["grype"] == GRYPE_COUNTS


def test_scans_ls_shows_the_imports(cli):
    first = import_both(cli)
    second = cli.json("scan", "import", TRIVY)
    headers, rows = table(cli.ok("scans", "ls").stdout)
    assert headers == LS
    assert [r[0] for r in rows] == [second["id"], first["id"]]  # newest first
    listed = cli.api().get(cli.server.url + "/v1/scans").json()["items"]
    for row, item in zip(rows, listed):
        after = item["summary"]["after"]
        diff = item["diff"] or {}
        assert row[:10] == [item["id"], IMAGE, "completed", "import"] + \
            [cell(after[k]) for k in SEVERITIES[:4]] + \
            [cell(diff.get("new")), cell(diff.get("fixed"))], (row, item)
        assert TIME.fullmatch(row[10]), row
    assert rows[1][4:8] == [cell(first["summary"]["after"][k]) for k in SEVERITIES[:4]]

    # --image: the image as the user writes it, or normalised; another image has none.
    for ref in ("bkimminich/juice-shop:latest", IMAGE):
        assert len(table(cli.ok("scans", "ls", "--image", ref).stdout)[1]) == 2
    assert table(cli.ok("scans", "ls", "--image", "alpine:3.19").stdout) == (LS, [])
    page = cli.json("scans", "ls")
    assert [i["id"] for i in page["items"]] == [second["id"], first["id"]]
    assert page["next_cursor"] is None


def test_scans_show_findings_and_recommendations(cli):
    scan = import_both(cli)
    p = cli.ok("scans", "show", scan["id"], "--findings", "--recommendations")
    (fh, frows), (uh, urows), (rh, rlines) = check_summary(p.stdout, scan)[-3:]
    assert fh == FINDINGS and uh == UPGRADES and rh == RECS
    # Upgrades: a package a row, as the API's roll-up has them.
    assert [r for r in urows] == [
        [cell(u["priority"]), u["package"]["name"], u["package"]["version"],
         cell(u["to_version"]), cell(u["fixes"])] for u in scan["upgrades"]], urows
    assert len(frows) == len(scan["findings"])
    assert [r[0] for r in frows] == [f["id"] for f in scan["findings"]]
    known = [f for f in scan["findings"] if f["id"] == KNOWN_ID]
    assert len(known) == 1, known
    f = known[0]
    assert f["package"]["name"] == "ip" and f["package"]["version"] == "2.0.1"
    assert sorted(f["engines"]) == ["grype", "trivy"]
    row = frows[[r[0] for r in frows].index(KNOWN_ID)]
    assert row == [KNOWN_ID, f["severity"], "ip", "2.0.1", ",".join(f["fixed_versions"]) or "-",
                   ",".join(f["engines"])], row

    # Recommendations: PRIORITY FINDING PACKAGE, then the action (words).
    recs = scan["recommendations"]
    assert recs and len(rlines) == len(recs)
    for r, rec in zip(rlines, recs):
        assert r[:3] == [cell(rec["priority"]), cell(rec["finding"]),
                         cell(rec["package"]["name"])], (r, rec)
        assert " ".join(r[3:]) == " ".join(rec["action"].split()), (r, rec)

    # --output json: the whole scan object, findings and all.
    assert cli.json("scans", "show", scan["id"], "--findings") == scan
    p = cli.run("scans", "show", "scn_doesnotexist000000000000")
    assert_error(p, "not_found", EXIT_NOT_FOUND)


def test_import_refuses_bad_files_before_sending(cli, tmp_path):
    def refused(*args, words):
        p = cli.run("scan", "import", *args)
        assert p.returncode == EXIT_USAGE and p.stdout == "", (p.returncode, p.stdout, p.stderr)
        assert p.stderr.startswith("odysseus: ") and words in p.stderr, p.stderr
        assert "nothing was sent" in p.stderr, p.stderr

    refused(GRYPE, GRYPE, words="both files are grype reports")
    refused(TRIVY, TRIVY, words="both files are trivy reports")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"bomFormat": "CycloneDX", "components": []}))
    refused(str(other), words="neither a Trivy JSON report")
    refused(TRIVY, str(other), words="neither a Trivy JSON report")
    text = tmp_path / "notes.txt"
    text.write_text("not json at all\n")
    refused(str(text), words="is not JSON")
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(32 * 1024 * 1024 + 1)
    refused(str(big), words="larger than 32 MiB")
    # Nothing reached the server.
    assert cli.api().get(cli.server.url + "/v1/scans").json()["items"] == []

    p = cli.run("scan", "import", str(tmp_path / "missing.json"))
    assert p.returncode == EXIT_ERROR and "cannot open" in p.stderr, p.stderr
    assert_usage(cli.run("scan", "import"), "missing arguments")
    assert_usage(cli.run("scan", "import", TRIVY, GRYPE, TRIVY), "unexpected argument")
    # The server's own checks: exit 7 with its message.
    empty = tmp_path / "empty-trivy.json"
    empty.write_text(json.dumps({"SchemaVersion": 2, "ArtifactName": 5}))
    assert "trivy" in assert_error(cli.run("scan", "import", str(empty)), "bad_request",
                                   EXIT_INVALID)


# --- scan IMAGE ---------------------------------------------------------------------

@pytest.fixture
def engine_server(tmp_path, fresh_server):
    """A server whose trivy is a stand-in: it prints the juice-shop report, fails for
    an image named *fail*, and takes 5 s for one named *slow*."""
    script = tmp_path / "trivy"
    script.write_text("#!/bin/sh\n"
                      "case \"$*\" in\n"
                      "  *fail*) echo 'stand-in: no such image' >&2; exit 3 ;;\n"
                      "  *slow*) sleep 5 ;;\n"
                      "esac\n"
                      "exec cat '%s'\n" % TRIVY)
    script.chmod(0o755)
    return fresh_server(extra=["--trivy", str(script), "--grype", str(tmp_path / "no-grype")])


def test_scan_waits_and_prints_the_completed_summary(tmp_path, engine_server):
    cli = tenant_cli(tmp_path, engine_server)
    p = cli.ok("scan", "bkimminich/juice-shop:latest")
    t = tables(p.stdout)
    scan = api_scan(cli, t[0][1][0][0])
    check_summary(p.stdout, scan)
    assert scan["status"] == "completed" and scan["trigger"] == "manual"
    assert scan["engines"]["trivy"]["status"] == "ok"
    assert scan["summary"]["before"]["trivy"] == TRIVY_COUNTS

    # --no-wait: the queued scan, at once; --output json of a waited-for scan.
    p = cli.ok("scan", "bkimminich/juice-shop:latest", "--no-wait")
    headers, rows = tables(p.stdout)[0]
    assert headers == HEAD and rows[0][3] in ("queued", "running", "completed"), rows
    done = cli.json("scan", "bkimminich/juice-shop:latest", "--wait", "--timeout", "60")
    assert done["status"] == "completed" and done == api_scan(cli, done["id"])

    # A failed scan: its summary, then the server's reason; exit 1.
    p = cli.run("scan", "example/fail:1")
    assert p.returncode == EXIT_ERROR, (p.returncode, p.stdout, p.stderr)
    failed = api_scan(cli, tables(p.stdout)[0][1][0][0])
    check_summary(p.stdout, failed)  # the engine's ERROR column too
    assert failed["status"] == "failed" and failed["error"], failed
    assert "no such image" in failed["engines"]["trivy"]["error"], failed
    assert "no such image" in p.stdout
    assert p.stderr == "odysseus: scan %s failed: %s\n" % (failed["id"], failed["error"])

    # Not done within --timeout: exit 1, naming the scan to look at later.
    p = cli.run("scan", "example/slow:1", "--timeout", "1")
    assert p.returncode == EXIT_ERROR and p.stdout == "", (p.returncode, p.stdout, p.stderr)
    assert "has not finished after 1 s" in p.stderr and "odysseus scans show scn_" in p.stderr

    assert_usage(cli.run("scan", "x:1", "--wait", "--no-wait"), "exclude each other")
    assert_usage(cli.run("scan", "x:1", "--timeout", "0"), "--timeout")
    assert_usage(cli.run("scan"), "missing arguments")


def test_scan_without_an_engine_fails_with_the_servers_message(tmp_path, fresh_server):
    srv = fresh_server(extra=["--trivy", str(tmp_path / "no-trivy"),
                              "--grype", str(tmp_path / "no-grype")])
    cli = tenant_cli(tmp_path, srv)
    message = assert_error(cli.run("scan", "alpine:3.19"), "unavailable", EXIT_SERVER)
    assert "no scan engine is installed" in message
    assert cli.api().get(srv.url + "/v1/scans").json()["items"] == []


# --- scan policies and gating -------------------------------------------------------

def write_policy(tmp_path, name, **policy):
    path = tmp_path / (name + ".json")
    path.write_text(json.dumps(policy))
    return str(path)


def test_scan_policies_set_ls_get_rm(cli, tmp_path):
    f = write_policy(tmp_path, "gate", images=["*juice-shop*"], block_critical=True,
                     max_high=5, exceptions=[{"id": KNOWN_ID, "owner": "sec@example.test",
                                             "reason": "not reachable",
                                             "expires_at": "2099-01-01T00:00:00Z"}])
    p = cli.ok("scan-policies", "set", "gate", "--file", f)
    stored = cli.api().get(cli.server.url + "/v1/scan-policies/gate").json()
    t = tables(p.stdout)
    assert t[0] == (POLICY, [["gate", "true", "true", "5", "1", "*juice-shop*"]])
    assert t[1] == (["ID", "OWNER", "EXPIRES", "REASON"],
                    [[KNOWN_ID, "sec@example.test", "2099-01-01T00:00:00Z", "not", "reachable"]])
    assert cli.json("scan-policies", "get", "gate") == stored

    # Replaced from another file; a second policy for every image.
    cli.ok("scan-policies", "set", "gate", "--file",
           write_policy(tmp_path, "gate2", images=["a/*", "b/*"], max_high=None))
    cli.ok("scan-policies", "set", "all", "--file", write_policy(tmp_path, "all"))
    headers, rows = table(cli.ok("scan-policies", "ls").stdout)
    assert headers == POLICY
    items = cli.api().get(cli.server.url + "/v1/scan-policies").json()["items"]
    assert [r[0] for r in rows] == [i["name"] for i in items] and len(rows) == 2
    byname = {r[0]: r for r in rows}
    assert byname["gate"][3:] == ["-", "0", "a/*,b/*"]
    assert byname["all"][5] == "(all)"

    # Refused: not JSON (before sending), not an object, a bad field (the server's 400).
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    p = cli.run("scan-policies", "set", "gate", "--file", str(bad))
    assert p.returncode == EXIT_USAGE and "is not JSON" in p.stderr, p.stderr
    bad.write_text("[]")
    p = cli.run("scan-policies", "set", "gate", "--file", str(bad))
    assert p.returncode == EXIT_USAGE and "JSON object" in p.stderr, p.stderr
    assert_error(cli.run("scan-policies", "set", "gate", "--file",
                         write_policy(tmp_path, "bad", max_high="many")),
                 "bad_request", EXIT_INVALID)
    assert_usage(cli.run("scan-policies", "set", "gate"), "--file is required")

    assert cli.ok("scan-policies", "rm", "gate").stdout == "scan policy gate deleted\n"
    assert_error(cli.run("scan-policies", "get", "gate"), "not_found", EXIT_NOT_FOUND)
    assert [i["name"] for i in cli.json("scan-policies", "ls")["items"]] == ["all"]


def check_blocked(p, policy, scan):
    """A deployment refused by the scan policy (block_critical, max_high 3) for the
    findings of scan: exit 7, the error line, then on stderr the policy's reasons, the
    first 20 blocking findings (critical first) and how many there are in all."""
    assert_error(p, "blocked_by_policy", EXIT_INVALID)
    after = scan["summary"]["after"]
    assert re.search(r"^  policy %s: critical findings$" % policy, p.stderr, re.M), p.stderr
    assert re.search(r"^  policy %s: high findings %d > 3$" % (policy, after["high"]),
                     p.stderr, re.M), p.stderr
    shown = re.findall(r"^  \S+ (critical|high) \S+ \S+$", p.stderr, re.M)
    assert shown == ["critical"] * after["critical"] + ["high"] * (20 - after["critical"])
    total = after["critical"] + after["high"]
    assert "  (%d in all: odysseus scans show %s --findings)\n" % (total, scan["id"]) in p.stderr
    assert "--override-justification" in p.stderr


def test_deploy_update_and_rollback_are_gated(cli, tmp_path):
    scan = import_both(cli)
    cli.ok("scan-policies", "set", "crit", "--file",
           write_policy(tmp_path, "crit", images=["*juice-shop*"], block_critical=True,
                        max_high=3))
    url, api = cli.server.url, cli.api()
    why = "emergency fix, approved in INC-42"

    # Create (POST): blocked, then let through by the Admin's override.
    check_blocked(cli.run("deploy", "shop", "--image", "bkimminich/juice-shop:latest",
                          "--replicas", "0"), "crit", scan)
    assert api.get(url + "/v1/deployments/shop").status_code == 404
    cli.ok("deploy", "shop", "--image", "bkimminich/juice-shop:latest", "--replicas", "0",
           "--override-justification", why)
    # An image no policy covers, then an update (PATCH) back to the blocked image.
    cli.ok("deploy", "shop", "--image", "alpine:3.19")
    check_blocked(cli.run("deploy", "shop", "--image", "bkimminich/juice-shop:latest"), "crit",
                  scan)
    assert api.get(url + "/v1/deployments/shop").json()["revision"] == 2
    # A rollback to the blocked revision.
    check_blocked(cli.run("rollback", "shop", "--to", "1"), "crit", scan)
    d = cli.json("rollback", "shop", "--to", "1", "--override-justification", why)
    assert d["revision"] == 3 and d["image"].endswith("juice-shop:latest"), d

    # Each override is audited with its justification.
    r = api.get(url + "/v1/audit", params={"action": "scan.policy.override"})
    reasons = [i["reason"] for i in r.json()["items"]]
    assert len(reasons) == 2 and all(x.endswith(": " + why) for x in reasons), reasons

    # A developer may not override: 403 from the server.
    dev = make_user(cli.server, cli.admin_token, "developer")
    dcli = Cli(tmp_path, cli.server, "dev").login(dev["email"], USER_PASSWORD)
    p = dcli.run("deploy", "shop2", "--image", "bkimminich/juice-shop:latest", "--replicas", "0",
                 "--override-justification", why)
    assert_error(p, "forbidden", EXIT_FORBIDDEN)
    assert_usage(cli.run("deploy", "x", "--image", "a:1", "--override-justification", ""),
                 "must not be empty")
