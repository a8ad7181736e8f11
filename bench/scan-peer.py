#!/usr/bin/env python3
"""scan-peer.py: the peer of bench/scan-bench.c, a straightforward Python
implementation of the same job (stdlib json only), run by bench/scan-bench.sh
on the same files in the same invocation.

The job: load a Trivy and a Grype JSON report, make one finding per
Trivy vulnerability and per Grype match (ids, package, paths, severity, CVSS,
fixed versions, fix state, EPSS, KEV, URLs), and merge them keyed by
(CVE-or-alias, package PURL without qualifiers): the join ids are a finding's
CVEs, or all its ids when it has no CVE; the PURL is percent-decoded, Trivy's
epoch= qualifier goes into the version, npm/pypi names are lower-cased. A
finding joins the first earlier one sharing a key; aliases, paths, fixed
versions and URLs are unions, the severity is the highest. This is simpler
than src/scan/merge.c (no union-find, no splitting of multi-CVE matches, no
version-aware comparison), so the merged counts can differ: they are printed
side by side and never compared for equality.

Measured like scan-bench.c: R repetitions from the files' bytes read once
(load + build Trivy, load + build Grype, merge; median and min), and the peak
of one run (read + all three steps) in a forked child: VmHWM minus VmRSS at
its start, after resetting the peak with /proc/self/clear_refs; ru_maxrss
(resource.getrusage) is printed beside it. The child runs before any timing.

Usage: scan-peer.py [--repeat R] NAME TRIVY GRYPE
Prints one line: "peer NAME key=value ...".
"""
import json
import os
import resource
import statistics
import sys
import time
from urllib.parse import unquote

SEVERITY = {"unknown": 0, "negligible": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
TRIVY_FIX = {"fixed": "fixed", "affected": "affected", "fix_deferred": "affected",
             "under_investigation": "affected", "will_not_fix": "wont_fix",
             "end_of_life": "end_of_life"}
GRYPE_FIX = {"fixed": "fixed", "not-fixed": "affected", "wont-fix": "wont_fix"}


def package_key(purl, ptype, name, version):
    """type/namespace/name@version from the PURL (qualifiers dropped), else from the fields."""
    if not purl:
        return f"{ptype}/{name}@{version}"
    base, _, quals = purl.partition("#")[0].partition("?")
    base = unquote(base[4:] if base.startswith("pkg:") else base)
    path, _, ver = base.rpartition("@")
    kind = path.split("/", 1)[0]
    if kind in ("deb", "rpm") and ":" not in ver:
        epoch = next((q[6:] for q in quals.split("&") if q.startswith("epoch=")), "0")
        ver = f"{epoch}:{ver}"
    if kind in ("npm", "pypi"):
        path = path.lower()
    return f"{path}@{ver}"


def new_finding(ids, pkg, engine):
    cves = sorted(i for i in ids if i.startswith("CVE-"))
    return {"id": cves[0] if cves else ids[0], "aliases": set(ids), "join": cves or ids,
            "pkg": pkg, "paths": set(), "layer": None, "title": None, "severity": 0,
            "severity_source": None, "engine_severity": {}, "cvss": [], "fixed": set(),
            "fix_state": {}, "epss": -1.0, "kev": False, "urls": set(), "engines": {engine}}


def trivy_findings(doc):
    out = []
    for res in doc.get("Results") or []:
        if res.get("Class") not in ("os-pkgs", "lang-pkgs"):
            continue
        for v in res.get("Vulnerabilities") or []:
            ids = [v["VulnerabilityID"]] + list(v.get("VendorIDs") or [])
            purl = (v.get("PkgIdentifier") or {}).get("PURL")
            ptype = res.get("Type", "")
            pkg = {"name": v["PkgName"], "version": v.get("InstalledVersion", ""),
                   "type": ptype, "purl": purl,
                   "key": package_key(purl, ptype, v["PkgName"], v.get("InstalledVersion", ""))}
            f = new_finding(ids, pkg, "trivy")
            if v.get("PkgPath"):
                f["paths"].add(v["PkgPath"])
            f["layer"] = (v.get("Layer") or {}).get("DiffID")
            f["title"] = v.get("Title")
            f["severity"] = SEVERITY.get(v.get("Severity", "").lower(), 0)
            f["severity_source"] = "trivy:" + v.get("SeveritySource", "")
            f["engine_severity"]["trivy"] = f["severity"]
            for src, c in (v.get("CVSS") or {}).items():
                for ver, vec, score in (("2.0", "V2Vector", "V2Score"), ("3.1", "V3Vector", "V3Score"),
                                        ("4.0", "V40Vector", "V40Score")):
                    if vec in c or score in c:
                        f["cvss"].append((src, ver, c.get(vec, ""), c.get(score, -1)))
            fixed = [x.strip() for x in (v.get("FixedVersion") or "").split(",") if x.strip()]
            f["fixed"].update(fixed)
            f["fix_state"]["trivy"] = TRIVY_FIX.get(v.get("Status"), "fixed" if fixed else "unknown")
            f["urls"].update(u for u in (v.get("PrimaryURL"), (v.get("DataSource") or {}).get("URL")) if u)
            out.append(f)
    return out


def grype_findings(doc):
    out = []
    for m in doc.get("matches") or []:
        vuln, art = m["vulnerability"], m["artifact"]
        related = m.get("relatedVulnerabilities") or []
        ids = [vuln["id"]] + [r["id"] for r in related] + [a["id"] for a in vuln.get("advisories") or []]
        pkg = {"name": art["name"], "version": art.get("version", ""), "type": art.get("type", ""),
               "purl": art.get("purl"),
               "key": package_key(art.get("purl"), art.get("type", ""), art["name"], art.get("version", ""))}
        f = new_finding(ids, pkg, "grype")
        f["paths"].update(loc["path"] for loc in art.get("locations") or [])
        f["layer"] = next((loc.get("layerID") for loc in art.get("locations") or []), None)
        f["severity"] = SEVERITY.get(vuln.get("severity", "").lower(), 0)
        f["severity_source"] = "grype:" + vuln.get("namespace", "")
        f["engine_severity"]["grype"] = f["severity"]
        for rec in [vuln] + related:
            for c in rec.get("cvss") or []:
                f["cvss"].append((c.get("source", rec.get("namespace", "")), c.get("version"),
                                  c.get("vector", ""), (c.get("metrics") or {}).get("baseScore", -1)))
            f["kev"] = f["kev"] or bool(rec.get("knownExploited"))
        fix = vuln.get("fix") or {}
        f["fixed"].update(fix.get("versions") or [])
        f["fix_state"]["grype"] = GRYPE_FIX.get(fix.get("state"), "unknown")
        f["epss"] = max((e.get("epss", -1.0) for e in vuln.get("epss") or []), default=-1.0)
        f["urls"].update([vuln["dataSource"]] if vuln.get("dataSource") else [])
        f["urls"].update(vuln.get("urls") or [])
        out.append(f)
    return out


def absorb(into, f):
    into["aliases"] |= f["aliases"]
    into["paths"] |= f["paths"]
    if f["severity"] > into["severity"]:
        into["severity"], into["severity_source"] = f["severity"], f["severity_source"]
    for e, s in f["engine_severity"].items():
        into["engine_severity"][e] = max(s, into["engine_severity"].get(e, 0))
    into["fix_state"].update(f["fix_state"])
    into["cvss"].extend(c for c in f["cvss"] if c not in into["cvss"])
    into["fixed"] |= f["fixed"]
    into["epss"] = max(into["epss"], f["epss"])
    into["kev"] = into["kev"] or f["kev"]
    into["urls"] |= f["urls"]
    into["engines"] |= f["engines"]


def merge(*lists):
    merged, index = [], {}
    for findings in lists:
        for f in findings:
            keys = [(i, f["pkg"]["key"]) for i in f["join"]]
            into = next((index[k] for k in keys if k in index), None)
            if into is None:
                merged.append(f)
                into = f
            else:
                absorb(into, f)
            for k in keys:
                index.setdefault(k, into)
    return merged


def run(tbytes, gbytes):
    """One run: times in ms of (trivy, grype, merge) and the merged findings."""
    t0 = time.perf_counter()
    tf = trivy_findings(json.loads(tbytes))
    t1 = time.perf_counter()
    gf = grype_findings(json.loads(gbytes))
    t2 = time.perf_counter()
    merged = merge(tf, gf)
    t3 = time.perf_counter()
    return ((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3), merged, len(tf), len(gf)


def status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def measure_memory(tpath, gpath):
    """Peak bytes of one read + run in a forked child, and its ru_maxrss in bytes."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            rss0 = status_bytes("VmRSS")
            run(read(tpath), read(gpath))
            peak = status_bytes("VmHWM") - rss0
            maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            os.write(wfd, f"{peak} {maxrss}".encode())
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        text = f.read().decode()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not text:
        sys.exit("scan-peer: the memory child failed")
    return [int(x) for x in text.split()]


def main(argv):
    repeat = 5
    if len(argv) >= 2 and argv[0] == "--repeat":
        repeat, argv = int(argv[1]), argv[2:]
    if len(argv) != 3 or repeat < 1:
        sys.exit("usage: scan-peer.py [--repeat R] NAME TRIVY GRYPE")
    name, tpath, gpath = argv
    peak, maxrss = measure_memory(tpath, gpath)
    tbytes, gbytes = read(tpath), read(gpath)
    steps = [[], [], [], []]
    for _ in range(repeat):
        times, merged, nt, ng = run(tbytes, gbytes)
        for i, t in enumerate(times + (sum(times),)):
            steps[i].append(t)
        counts = (len(merged), sum(1 for f in merged if len(f["engines"]) == 2),
                  sum(1 for f in merged if f["engines"] == {"trivy"}),
                  sum(1 for f in merged if f["engines"] == {"grype"}))
        del merged
    med = [statistics.median(s) for s in steps]
    print(f"peer {name} input={len(tbytes) + len(gbytes)} trivy_ms={med[0]:.3f} "
          f"grype_ms={med[1]:.3f} merge_ms={med[2]:.3f} total_ms={med[3]:.3f} "
          f"total_min_ms={min(steps[3]):.3f} peak={peak} maxrss={maxrss} nt={nt} ng={ng} "
          "merged={} both={} only_t={} only_g={}".format(*counts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
