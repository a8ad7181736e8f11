"""Vulnerability scanning against the real odysseusd (issue 8, SPEC §7,
docs/scanning.md): reports imported and merged, engines run as programs
(stand-ins that print real reports: Trivy and Grype cannot be installed
here), gating policies on deployment create/update/rollback with overrides,
scheduled rescans with their diff, and the audit records of all of it.
"""
import copy
import json
import os
import stat
import time

import pytest

from conftest import ROOT, USER_PASSWORD, check_error, make_user, new_tenant, unique

DATA = os.path.join(ROOT, "tests", "data", "scanners", "appsecsanta-research")
JUICE = "bkimminich/juice-shop:latest"
JUICE_NORMAL = "docker.io/bkimminich/juice-shop:latest"
SEVERITIES = ("critical", "high", "medium", "low", "negligible", "unknown")


def report(name):
    with open(os.path.join(DATA, name)) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def juice():
    return report("trivy-juice-shop.json"), report("grype-juice-shop.json")


def import_pair(s, url, trivy=None, grype=None, image=None):
    body = {}
    if trivy is not None:
        body["trivy"] = trivy
    if grype is not None:
        body["grype"] = grype
    if image:
        body["image"] = image
    return s.post(url + "/v1/scans/import", json=body)


def audit(srv, token, action):
    r = srv.session(token).get(srv.url + "/v1/audit", params={"action": action, "limit": 500})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_import_merges_both_reports(server, juice):
    _, _, token = new_tenant(server)
    s = server.session(token)
    r = import_pair(s, server.url, *juice)
    assert r.status_code == 201, r.text
    scan = r.json()
    assert scan["status"] == "completed" and scan["trigger"] == "import"
    assert scan["image"] == JUICE_NORMAL
    assert scan["digest"].startswith("sha256:")
    assert set(scan["engines"]) == {"trivy", "grype"}
    summary, findings = scan["summary"], scan["findings"]
    # Before merging each engine's counts are its own report's entries.
    assert summary["before"]["trivy"]["total"] == 135
    assert summary["before"]["grype"]["total"] == 136
    after = summary["after"]
    assert after["total"] == len(findings) == sum(after[k] for k in SEVERITIES)
    assert summary["both"] + sum(summary["only"].values()) == after["total"]
    assert after["total"] < 135 + 136
    for sev in SEVERITIES:
        assert after[sev] == sum(1 for f in findings if f["severity"] == sev)
    # The same vulnerability under a CVE (Trivy) and a GHSA (Grype) is one finding of both.
    ip = [f for f in findings if f["id"] == "CVE-2024-29415"]
    assert len(ip) == 1 and "GHSA-2p57-rm9w-gvfp" in ip[0]["aliases"], ip
    assert set(ip[0]["engines"]) == {"trivy", "grype"}
    # Node.js security WG ids exist only in Trivy's report.
    assert any(f["id"].startswith("NSWG-ECO-") and f["engines"] == ["trivy"] for f in findings)
    # Recommendations name fixed versions, highest priority first.
    recs = scan["recommendations"]
    assert recs and all(r["priority"] >= q["priority"] for r, q in zip(recs, recs[1:]))
    # The list shows it without the findings; GET shows them again.
    items = s.get(server.url + "/v1/scans").json()["items"]
    assert items[0]["id"] == scan["id"] and "findings" not in items[0]
    got = s.get(server.url + "/v1/scans/" + scan["id"]).json()
    assert got["findings"] == findings and got["summary"] == summary
    only = s.get(server.url + "/v1/scans", params={"image": "busybox"}).json()["items"]
    assert only == []
    assert any(a["resource"] == "/v1/scans/" + scan["id"] and a["outcome"] == "success"
               for a in audit(server, token, "scan.import"))


def test_import_webgoat_pair(server):
    """Grype names the image index.docker.io/webgoat/webgoat@sha256:..., Trivy
    webgoat/webgoat@sha256:...: the same digest, so one image."""
    _, _, token = new_tenant(server)
    s = server.session(token)
    r = import_pair(s, server.url, report("trivy-webgoat.json"), report("grype-webgoat.json"))
    assert r.status_code == 201, r.text
    summary = r.json()["summary"]
    assert summary["before"]["trivy"]["total"] == 403
    assert summary["before"]["grype"]["total"] == 496
    assert r.json()["image"] == "docker.io/webgoat/webgoat:latest"
    # The KEV entry (xstream, CVE-2021-39144) keeps its flag through the merge.
    kev = [f for f in r.json()["findings"] if f["kev"]]
    assert "CVE-2021-39144" in {f["id"] for f in kev}, kev


def test_import_refuses_bad_reports(server, juice):
    _, _, token = new_tenant(server)
    s = server.session(token)
    trivy, grype = juice
    check_error(import_pair(s, server.url), 400, "bad_request")
    # A Grype report given as Trivy's, and the other way round.
    check_error(import_pair(s, server.url, trivy=grype), 400, "bad_request")
    check_error(import_pair(s, server.url, grype=trivy), 400, "bad_request")
    bad = copy.deepcopy(trivy)
    bad["Results"][0]["Vulnerabilities"][0]["VulnerabilityID"] = 7
    r = import_pair(s, server.url, trivy=bad)
    check_error(r, 400, "bad_request")
    assert "trivy" in r.json()["error"]["message"]
    # Reports of two different images are not merged.
    other = report("grype-webgoat.json")
    check_error(import_pair(s, server.url, trivy, other), 400, "bad_request")
    check_error(s.post(server.url + "/v1/scans/import", json={"trivy": trivy, "extra": 1}),
                400, "bad_request")
    check_error(import_pair(s, server.url, trivy=trivy, image="-rf /"), 400, "bad_request")
    r = s.post(server.url + "/v1/scans/import", data=b'{"trivy": {"Results": [',
               headers={"Content-Type": "application/json"})
    check_error(r, 400, "bad_request")
    # Over the route's 32 MiB, under the connection's cap: our JSON 413.
    big = b'{"trivy": "' + b"x" * (32 * 1024 * 1024 + 1024) + b'"}'
    r = s.post(server.url + "/v1/scans/import", data=big,
               headers={"Content-Type": "application/json"})
    check_error(r, 413, "payload_too_large")
    # Nothing was stored by any of these; the daemon still answers.
    assert s.get(server.url + "/v1/scans").json()["items"] == []


def test_roles(server, juice):
    _, _, token = new_tenant(server)
    s = server.session(token)
    scan = import_pair(s, server.url, *juice).json()
    for role, can_scan, can_policies in (("operator", True, True), ("developer", True, False),
                                         ("readonly", False, False)):
        u = make_user(server, token, role)
        su = server.session(server.login(u["email"], USER_PASSWORD)["access_token"])
        assert su.get(server.url + "/v1/scans/" + scan["id"]).status_code == 200
        r = import_pair(su, server.url, trivy=juice[0])
        assert r.status_code == (201 if can_scan else 403), (role, r.text)
        r = su.put(server.url + "/v1/scan-policies/p-" + role, json={"block_critical": True})
        assert r.status_code == (201 if can_policies else 403), (role, r.text)
        r = su.put(server.url + "/v1/scan-settings", json={"rescan_interval_seconds": 7200})
        assert r.status_code == (200 if can_policies else 403), (role, r.text)
    # Another tenant sees nothing of it.
    _, _, other = new_tenant(server)
    check_error(server.session(other).get(server.url + "/v1/scans/" + scan["id"]), 404,
                "not_found")


# ---- gating --------------------------------------------------------------------------------


def deploy(s, url, image, name=None, **extra):
    body = dict(name=name or unique("dep"), image=image, **extra)
    return s.post(url + "/v1/deployments", json=body)


def put_policy(s, url, name, **body):
    r = s.put(url + "/v1/scan-policies/" + name, json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()


def blocked(r):
    check_error(r, 422, "blocked_by_policy")
    return r.json()["error"]["details"]


@pytest.fixture
def gated(server, juice):
    """A tenant with the juice-shop pair imported; (session, token, scan)."""
    _, _, token = new_tenant(server)
    s = server.session(token)
    r = import_pair(s, server.url, *juice)
    assert r.status_code == 201, r.text
    return s, token, r.json()


def test_block_on_critical(server, gated):
    s, token, scan = gated
    crit = [f["id"] for f in scan["findings"] if f["severity"] == "critical"]
    assert crit, "juice-shop has critical findings"
    assert deploy(s, server.url, JUICE).status_code == 201  # no policy yet
    put_policy(s, server.url, "no-critical", block_critical=True)
    details = blocked(deploy(s, server.url, JUICE))
    assert details["blocked"] and details["policies"][0]["name"] == "no-critical"
    assert {f["id"] for f in details["findings"]} == set(crit)
    assert details["scan_id"] == scan["id"]
    # The short and the normalised form of the reference are the same image.
    blocked(deploy(s, server.url, "docker.io/bkimminich/juice-shop:latest"))
    # Another image is not covered by the scan: no completed scan fails closed.
    details = blocked(deploy(s, server.url, "busybox:1.36"))
    assert "no completed scan" in details["policies"][0]["reason"]
    put_policy(s, server.url, "no-critical", block_critical=True, enabled=False)
    assert deploy(s, server.url, JUICE).status_code == 201
    r = audit(server, token, "deployment.create")
    assert any(a["outcome"] == "failure" and a["reason"] == "blocked_by_policy" for a in r)


def test_a_digest_reference_uses_the_scan_of_that_digest(server, gated):
    s, _, scan = gated
    put_policy(s, server.url, "no-critical", block_critical=True)
    by_digest = "example.com/shop@" + scan["digest"]  # another name, the scanned digest
    details = blocked(deploy(s, server.url, by_digest))
    assert details["scan_id"] == scan["id"] and details["findings"]
    other = "example.com/shop@sha256:" + "0" * 64
    assert "no completed scan" in blocked(deploy(s, server.url, other))["policies"][0]["reason"]


def test_block_on_high_count(server, gated):
    s, _, scan = gated
    highs = scan["summary"]["after"]["high"]
    assert highs > 1
    put_policy(s, server.url, "highs", block_critical=False, max_high=highs)
    assert deploy(s, server.url, JUICE).status_code == 201
    put_policy(s, server.url, "highs", block_critical=False, max_high=highs - 1)
    details = blocked(deploy(s, server.url, JUICE))
    assert details["findings_total"] == highs
    assert all(f["severity"] == "high" for f in details["findings"])


def test_scope_and_exceptions(server, gated):
    s, _, scan = gated
    put_policy(s, server.url, "other", images=["registry.example.com/*"], block_critical=True)
    assert deploy(s, server.url, JUICE).status_code == 201
    put_policy(s, server.url, "other", images=["docker.io/bkimminich/*"], block_critical=True)
    blocked(deploy(s, server.url, JUICE))
    crit = sorted({f["id"] for f in scan["findings"] if f["severity"] == "critical"})
    future = "2099-01-01T00:00:00Z"
    exc = [{"id": c, "owner": "sec@tenant.test", "reason": "not reachable", "expires_at": future}
           for c in crit]
    put_policy(s, server.url, "other", images=["docker.io/bkimminich/*"], block_critical=True,
               exceptions=exc)
    assert deploy(s, server.url, JUICE).status_code == 201
    for e in exc:
        e["expires_at"] = "2020-01-01T00:00:00Z"  # expired: stops applying by itself
    put_policy(s, server.url, "other", images=["docker.io/bkimminich/*"], block_critical=True,
               exceptions=exc)
    blocked(deploy(s, server.url, JUICE))
    check_error(s.put(server.url + "/v1/scan-policies/bad",
                      json={"exceptions": [{"id": "CVE-1", "reason": "r",
                                            "expires_at": future}]}), 400, "bad_request")
    check_error(s.put(server.url + "/v1/scan-policies/bad", json={"max_high": -1}), 400,
                "bad_request")
    check_error(s.put(server.url + "/v1/scan-policies/bad", json={"nope": 1}), 400, "bad_request")
    check_error(s.post(server.url + "/v1/scan-policies", json={"name": "other"}), 409, "conflict")
    assert s.delete(server.url + "/v1/scan-policies/other").status_code == 204
    check_error(s.delete(server.url + "/v1/scan-policies/other"), 404, "not_found")


def test_update_and_rollback_are_gated(server, gated):
    s, _, _ = gated
    name = unique("dep")
    assert deploy(s, server.url, "busybox:1.36", name=name).status_code == 201
    put_policy(s, server.url, "gate", block_critical=True, images=["docker.io/bkimminich/*"])
    blocked(s.patch(server.url + "/v1/deployments/" + name, json={"image": JUICE}))
    # Let the juice-shop revision in with an override, then roll back and forth.
    r = s.patch(server.url + "/v1/deployments/" + name,
                json={"image": JUICE, "policy_override": {"justification": "incident 42 hotfix"}})
    assert r.status_code == 200, r.text
    r = s.post(server.url + "/v1/deployments/" + name + "/rollback", json={})
    assert r.status_code == 200, r.text  # back to busybox: not covered
    blocked(s.post(server.url + "/v1/deployments/" + name + "/rollback", json={"revision": 2}))
    r = s.post(server.url + "/v1/deployments/" + name + "/rollback",
               json={"revision": 2, "policy_override": {"justification": "approved by CISO"}})
    assert r.status_code == 200, r.text


def test_override_needs_role_and_justification(server, gated):
    s, token, _ = gated
    put_policy(s, server.url, "gate", block_critical=True)
    dev = make_user(server, token, "developer")
    sd = server.session(server.login(dev["email"], USER_PASSWORD)["access_token"])
    why = {"justification": "emergency fix for outage"}
    r = deploy(sd, server.url, JUICE, policy_override=why)
    check_error(r, 403, "forbidden")
    blocked(deploy(sd, server.url, JUICE))
    check_error(deploy(s, server.url, JUICE, policy_override={"justification": "short"}), 400,
                "bad_request")
    check_error(deploy(s, server.url, JUICE, policy_override={}), 400, "bad_request")
    op = make_user(server, token, "operator")
    so = server.session(server.login(op["email"], USER_PASSWORD)["access_token"])
    name = unique("dep")
    r = deploy(so, server.url, JUICE, name=name, policy_override=why)
    assert r.status_code == 201, r.text
    deadline = time.time() + 10
    while time.time() < deadline:
        rec = [a for a in audit(server, token, "scan.policy.override")
               if a["resource"] == "/v1/deployments/" + name]
        if rec:
            break
        time.sleep(0.2)
    assert rec and rec[0]["actor"]["id"] == op["id"], rec
    assert why["justification"] in rec[0]["reason"]
    denied = audit(server, token, "deployment.create")
    assert any(a["outcome"] == "denied" and a["actor"]["id"] == dev["id"] for a in denied)


# ---- engines and rescans -------------------------------------------------------------------


def stand_in(tmp_path, name, body):
    """An executable `name` in tmp_path running the shell body (argv as the engine gets it)."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def wait_scan(s, url, scan_id, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        scan = s.get(url + "/v1/scans/" + scan_id).json()
        if scan["status"] in ("completed", "failed"):
            return scan
        time.sleep(0.2)
    raise AssertionError("scan did not finish: %r" % scan)


def test_engines_run_and_fail_apart(fresh_server, tmp_path):
    trivy_out = tmp_path / "trivy.json"
    trivy_out.write_text(open(os.path.join(DATA, "trivy-juice-shop.json")).read())
    args = tmp_path / "args"
    trivy = stand_in(tmp_path, "trivy", 'echo "$@" > %s; cat %s' % (args, trivy_out))
    grype = stand_in(tmp_path, "grype", 'echo "database download failed" >&2; exit 3')
    srv = fresh_server(extra=("--trivy", trivy, "--grype", grype))
    _, _, token = new_tenant(srv)
    s = srv.session(token)
    r = s.post(srv.url + "/v1/scans", json={"image": JUICE})
    assert r.status_code == 202, r.text
    assert r.json()["status"] in ("queued", "running", "completed")
    scan = wait_scan(s, srv.url, r.json()["id"])
    assert scan["status"] == "completed", scan
    assert scan["engines"]["trivy"]["status"] == "ok"
    assert scan["engines"]["grype"]["status"] == "failed"
    assert "exited with status 3" in scan["engines"]["grype"]["error"]
    assert "database download failed" in scan["engines"]["grype"]["error"]
    assert scan["summary"]["after"]["total"] == len(scan["findings"]) > 0
    assert args.read_text().split() == ["image", "--format", "json", "--quiet", JUICE_NORMAL]
    check_error(s.post(srv.url + "/v1/scans", json={"image": "--help"}), 400, "bad_request")
    # A report the parser refuses fails that engine, with the reason.
    trivy_out.write_text('{"matches": []}')
    scan = wait_scan(s, srv.url, s.post(srv.url + "/v1/scans", json={"image": JUICE}).json()["id"])
    assert scan["status"] == "failed" and scan["engines"]["trivy"]["status"] == "failed"
    assert scan["error"] == "no engine produced a report"
    # Failed scans are audited by the system.
    recs = audit(srv, token, "scan.complete")
    assert {a["outcome"] for a in recs} == {"success", "failure"}


def test_engine_timeout_and_missing(fresh_server, tmp_path):
    slow = stand_in(tmp_path, "trivy", "sleep 30")
    srv = fresh_server(extra=("--trivy", slow, "--grype", str(tmp_path / "no-such-grype"),
                              "--scan-timeout", "1"))
    _, _, token = new_tenant(srv)
    s = srv.session(token)
    t0 = time.time()
    scan = wait_scan(s, srv.url, s.post(srv.url + "/v1/scans", json={"image": JUICE}).json()["id"])
    assert time.time() - t0 < 10
    assert scan["status"] == "failed"
    assert "timed out" in scan["engines"]["trivy"]["error"]
    assert scan["engines"]["grype"]["status"] == "missing"
    # Fail closed: a failed scan is no completed scan.
    put_policy(s, srv.url, "gate", block_critical=True)
    assert "no completed scan" in blocked(deploy(s, srv.url, JUICE))["policies"][0]["reason"]


def test_shutdown_stops_a_running_scan_and_the_next_start_runs_it(fresh_server, restart,
                                                                  tmp_path):
    hang = stand_in(tmp_path, "trivy", "sleep 600")
    srv = fresh_server(extra=("--trivy", hang, "--grype", str(tmp_path / "none")))
    _, _, token = new_tenant(srv)
    s = srv.session(token)
    scan_id = s.post(srv.url + "/v1/scans", json={"image": JUICE}).json()["id"]
    deadline = time.time() + 10
    while s.get(srv.url + "/v1/scans/" + scan_id).json()["status"] != "running":
        assert time.time() < deadline
        time.sleep(0.1)
    t0 = time.time()
    srv.stop()
    assert time.time() - t0 < 10  # not the engine's 600 s
    quick = stand_in(tmp_path, "trivy-now",
                     "cat %s" % os.path.join(DATA, "trivy-juice-shop.json"))
    srv2 = restart(srv.data_dir, extra=("--trivy", quick, "--grype", str(tmp_path / "none")))
    s2 = srv2.session(token)  # the signing keys are the data dir's: the token still holds
    scan = wait_scan(s2, srv2.url, scan_id)
    assert scan["status"] == "completed", scan


def test_no_engine_installed(fresh_server, tmp_path):
    srv = fresh_server(extra=("--trivy", str(tmp_path / "none"), "--grype", str(tmp_path / "no")))
    _, _, token = new_tenant(srv)
    r = srv.session(token).post(srv.url + "/v1/scans", json={"image": JUICE})
    check_error(r, 503, "unavailable")
    assert "import" in r.json()["error"]["message"]


def without(report_json, ids):
    """The Trivy report without the vulnerabilities whose id is in ids."""
    r = copy.deepcopy(report_json)
    for res in r.get("Results", []):
        if res.get("Vulnerabilities"):
            res["Vulnerabilities"] = [v for v in res["Vulnerabilities"]
                                      if v["VulnerabilityID"] not in ids]
    return r


def test_rescans_find_new_vulnerabilities(fresh_server, tmp_path, juice):
    full = juice[0]
    gone = {"CVE-2024-29415"}
    out = tmp_path / "now.json"
    out.write_text(json.dumps(without(full, gone)))
    trivy = stand_in(tmp_path, "trivy", "cat %s" % out)
    srv = fresh_server(extra=("--trivy", trivy, "--grype", str(tmp_path / "none"),
                              "--scan-rescan-floor", "1"))
    _, _, token = new_tenant(srv)
    s = srv.session(token)
    check_error(s.put(srv.url + "/v1/scan-settings", json={"rescan_interval_seconds": 0}), 400,
                "bad_request")
    assert s.get(srv.url + "/v1/scan-settings").json() == {"rescan_interval_seconds": 86400}
    r = s.put(srv.url + "/v1/scan-settings", json={"rescan_interval_seconds": 2})
    assert r.status_code == 200 and r.json()["rescan_interval_seconds"] == 2
    assert deploy(s, srv.url, JUICE).status_code == 201

    def rescans():
        items = s.get(srv.url + "/v1/scans", params={"image": JUICE}).json()["items"]
        return [i for i in items if i["trigger"] == "rescan" and i["status"] == "completed"]

    deadline = time.time() + 30
    while time.time() < deadline and not rescans():
        time.sleep(0.3)
    first = rescans()
    assert first and first[0]["diff"] is None  # the first scan has nothing to compare with
    out.write_text(json.dumps(full))  # the advisory databases learned of more
    deadline = time.time() + 30
    found = None
    while time.time() < deadline and not found:
        found = [i for i in rescans() if i["diff"] and i["diff"]["new"]]
        time.sleep(0.3)
    assert found, rescans()
    scan = s.get(srv.url + "/v1/scans/" + found[-1]["id"]).json()
    diff = scan["diff"]
    older = [i["id"] for i in rescans() if i["created_at"] < scan["created_at"]]
    assert diff["previous_scan_id"] == older[0]
    assert {f["id"] for f in diff["new"]} == gone
    assert diff["fixed"] == []
    assert diff["unchanged"] == len(scan["findings"]) - len(diff["new"])
    assert found[-1]["diff"]["new"] == len(diff["new"])  # counts in the list
    assert audit(srv, token, "scan.rescan")


def test_upgrades_roll_up_per_package(server):
    """webgoat: xstream 1.4.5's 36 recommendations are one upgrade to 1.4.21
    (the numbers derived from the two reports in tests/unit/test-scan-recommend.c)."""
    _, _, token = new_tenant(server)
    s = server.session(token)
    r = import_pair(s, server.url, report("trivy-webgoat.json"), report("grype-webgoat.json"))
    assert r.status_code == 201, r.text
    scan = s.get(server.url + "/v1/scans/" + r.json()["id"]).json()
    ups = scan["upgrades"]
    keys = [(-u["priority"], -u["fixes"]) for u in ups]
    assert ups and keys == sorted(keys)
    xs = [u for u in ups if u["package"]["name"].endswith("xstream")]
    assert len(xs) == 1, xs
    x = xs[0]
    assert (x["package"]["version"], x["to_version"], x["fixes"], x["findings_total"]) == \
        ("1.4.5", "1.4.21", 36, 36)
    assert x["fixes_by_severity"] == {"critical": 1, "high": 22, "medium": 13, "low": 0,
                                      "negligible": 0, "unknown": 0}
    assert x["action"].endswith("xstream to 1.4.21") and x["without_version"] == 0
    recs = [c for c in scan["recommendations"] if c["package"]["name"].endswith("xstream")]
    assert sorted(c["finding"] for c in recs) == x["findings"]
    assert x["priority"] == max(c["priority"] for c in recs)
