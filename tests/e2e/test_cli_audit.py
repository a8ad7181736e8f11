"""`odysseus audit verify` and `odysseus audit list` against the real odysseusd.

verify --data-dir: the daemon is stopped (so audit.db ends with a signed
checkpoint), the file verifies; then copies of it are tampered with the
sqlite3 module the way someone with write access to the file would (drop the
append-only triggers first) and every change is named with exit status 11,
the right problem (docs/audit.md's table) and the first bad seq.

verify --server: the first run remembers the audit key and the newest
checkpoint (trust on first use, 0600); after more activity the next run
proves consistency from the remembered checkpoint; after the daemon is
restarted on a log cut short behind that checkpoint the runs fail.

audit list: the table, the filters, --limit, --output json and paging.
Contract: docs/cli.md, docs/audit.md.
"""
import hashlib
import json
import os
import re
import sqlite3
import stat
import struct
import time

import pytest

from cli_helpers import EXIT_FORBIDDEN, EXIT_INTEGRITY, EXIT_USAGE, Cli
from conftest import TENANT_ADMIN_PASSWORD, USER_PASSWORD, make_user, new_tenant

# verify reads and checks whole logs: more time than other commands get.
CLI_TIMEOUT = 120
OK_LINE = re.compile(r"^audit log verified: (\d+) records, (\d+) checkpoints, root ([0-9a-f]{64})$",
                     re.M)
FAIL_LINE = re.compile(r"^odysseus: audit log integrity failure: ([a-z-]+)"
                       r"(?: at seq (\d+)| \(checkpoint of (\d+) records\))?: .+$", re.M)


def verified(p):
    """(records, checkpoints, root) of a successful verify."""
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    m = OK_LINE.search(p.stdout)
    assert m, p.stdout
    return int(m.group(1)), int(m.group(2)), m.group(3)


def failed(p, problem, seq=None, checkpoint=None):
    """Asserts exit 11 naming problem (and its first bad seq / checkpoint size)."""
    assert p.returncode == EXIT_INTEGRITY, (p.returncode, p.stdout, p.stderr)
    m = FAIL_LINE.search(p.stderr)
    assert m, p.stderr
    assert m.group(1) == problem, p.stderr
    if seq is not None:
        assert m.group(2) == str(seq), p.stderr
    if checkpoint is not None:
        assert m.group(3) == str(checkpoint), p.stderr


def activity(srv, n_users=8):
    """A tenant, its Admin's token, and some audited changes."""
    tenant, email, token = new_tenant(srv)
    for i in range(n_users):
        make_user(srv, token, ("developer", "operator", "readonly")[i % 3])
    return tenant, email, token


def wait_for_checkpoint(srv, token, size, timeout=15):
    """The checkpoint list once its newest covers at least size records."""
    deadline = time.time() + timeout
    while True:
        r = srv.session(token).get(srv.url + "/v1/audit/checkpoints")
        assert r.status_code == 200, r.text
        body = r.json()
        if body["items"] and body["items"][-1]["tree_size"] >= size:
            return body
        assert time.time() < deadline, "no checkpoint of %d records: %s" % (size, body)
        time.sleep(0.2)


def log_size(data_dir):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "audit.db"), uri=True)
    try:
        return db.execute("SELECT coalesce(max(seq), 0) FROM records").fetchone()[0]
    finally:
        db.close()


# --- tampering, as someone who can write the file ------------------------------------------

def copy_db(src_dir, dst_dir):
    os.makedirs(dst_dir)
    src = sqlite3.connect("file:%s?mode=ro" % os.path.join(src_dir, "audit.db"), uri=True)
    dst = sqlite3.connect(os.path.join(dst_dir, "audit.db"))
    src.backup(dst)
    src.close()
    dst.close()
    return dst_dir


def tamper(data_dir, *statements, fn=None):
    """Drops the append-only triggers, then runs the statements (and fn(db))."""
    db = sqlite3.connect(os.path.join(data_dir, "audit.db"))
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        db.execute('DROP TRIGGER "%s"' % name)
    for st in statements:
        if isinstance(st, tuple):
            db.execute(*st)
        else:
            db.execute(st)
    if fn is not None:
        fn(db)
    db.commit()
    db.close()


def cut_tail(db, keep):
    """Everything beyond record `keep`, as a careful attacker removes it: records,
    checkpoints, the derived Merkle nodes and read indexes."""
    db.execute("DELETE FROM records WHERE seq > ?", (keep,))
    db.execute("DELETE FROM checkpoints WHERE tree_size > ?", (keep,))
    db.execute("DELETE FROM merkle_nodes WHERE (idx + 1) * (1 << level) > ?", (keep,))
    for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' "
                           "AND name LIKE 'idx_%'").fetchall():
        col = "upto" if t == "idx_marks" else "seq"
        db.execute('DELETE FROM "%s" WHERE %s > ?' % (t, col), (keep,))


def _str(v):
    b = (v or "").encode()
    return struct.pack(">I", len(b)) + b


def canonical(r):
    return (b"\x01" + struct.pack(">Qq", r["seq"], r["time_ns"]) +
            b"".join(_str(r[k]) for k in ("actor_type", "actor_id", "actor_email", "tenant_id",
                                          "action", "resource", "outcome", "reason",
                                          "request_id", "source_ip")))


RECORD_COLS = ("time_ns", "actor_type", "actor_id", "actor_email", "tenant_id", "action",
               "resource", "outcome", "reason", "request_id", "source_ip", "prev_hash", "hash",
               "leaf_hash")


# --- verify --data-dir, --export ------------------------------------------------------------

@pytest.fixture
def stopped(fresh_server, tmp_path):
    """A server with some activity, stopped: (data_dir, public key hex, record count)."""
    srv = fresh_server()
    _, _, token = activity(srv)
    key = srv.session(token).get(srv.url + "/v1/audit/checkpoints").json()["key"]
    data_dir = srv.data_dir
    assert srv.stop() == 0, srv.logs()
    return data_dir, key["public_key"], log_size(data_dir)


def test_verify_data_dir_and_every_kind_of_tampering(stopped, tmp_path):
    data_dir, pub, n = stopped
    assert n >= 10
    cli = Cli(tmp_path, timeout=CLI_TIMEOUT)

    # The untouched file, with and without the pinned key; read-only.
    before = hashlib.sha256(open(os.path.join(data_dir, "audit.db"), "rb").read()).digest()
    records, cps, root = verified(cli.run("audit", "verify", "--data-dir", data_dir))
    assert records == n and cps >= 1
    assert verified(cli.run("audit", "verify", "--data-dir", data_dir, "--pin-key", pub)) == \
        (records, cps, root)
    pin_file = tmp_path / "audit.pub"
    pin_file.write_text(pub + "\n")
    verified(cli.run("audit", "verify", "--data-dir", data_dir, "--pin-key-file", str(pin_file)))
    verified(cli.run("audit", "verify", "--data-dir", data_dir, "--seen", "%d:%s" % (n, root)))
    after = hashlib.sha256(open(os.path.join(data_dir, "audit.db"), "rb").read()).digest()
    assert before == after
    j = json.loads(cli.ok("--output", "json", "audit", "verify", "--data-dir", data_dir).stdout)
    assert j["verified"] is True and j["records"] == n and j["root"] == root

    # A key other than the pinned one signed the checkpoints.
    failed(cli.run("audit", "verify", "--data-dir", data_dir, "--pin-key", "ab" * 32),
           "checkpoint-signature")
    # A checkpoint seen before with another root.
    failed(cli.run("audit", "verify", "--data-dir", data_dir, "--seen", "%d:%s" % (n, "00" * 32)),
           "seen-mismatch")

    k = 5
    work = tmp_path / "tampered"

    def case(name, *statements, fn=None):
        d = copy_db(data_dir, str(work / name))
        tamper(d, *statements, fn=fn)
        return cli.run("audit", "verify", "--data-dir", d)

    # One byte of one field flipped.
    def flip(db):
        rid = db.execute("SELECT request_id FROM records WHERE seq = ?", (k,)).fetchone()[0]
        assert rid
        flipped = chr(ord(rid[0]) ^ 1) + rid[1:]
        db.execute("UPDATE records SET request_id = ? WHERE seq = ?", (flipped, k))
    failed(case("flip", fn=flip), "altered", seq=k)

    # One record deleted.
    failed(case("delete", ("DELETE FROM records WHERE seq = ?", (k,))), "missing", seq=k)

    # Two records' contents swapped (each keeps its seq number).
    def swap(db):
        cols = ", ".join(RECORD_COLS)
        a = db.execute("SELECT %s FROM records WHERE seq = ?" % cols, (k,)).fetchone()
        b = db.execute("SELECT %s FROM records WHERE seq = ?" % cols, (k + 1,)).fetchone()
        sets = ", ".join("%s = ?" % c for c in RECORD_COLS)
        db.execute("UPDATE records SET %s WHERE seq = ?" % sets, (*b, k))
        db.execute("UPDATE records SET %s WHERE seq = ?" % sets, (*a, k + 1))
    failed(case("swap", fn=swap), "reordered", seq=k)

    # The tail cut, checkpoints beyond it too: only a checkpoint seen before shows it.
    keep = n - 3
    d = copy_db(data_dir, str(work / "truncate"))
    tamper(d, fn=lambda db: cut_tail(db, keep))
    p = cli.run("audit", "verify", "--data-dir", d, "--allow-unsigned",
                "--seen", "%d:%s" % (n, root))
    failed(p, "truncated", seq=keep + 1)
    # The records cut but the checkpoint left: it covers more than there is.
    failed(case("truncate-records", ("DELETE FROM records WHERE seq > ?", (keep,))),
           "truncated", seq=keep + 1)

    # A forged record appended, its hashes computed by the book: not signed.
    def forge(db):
        db.row_factory = sqlite3.Row
        last = db.execute("SELECT * FROM records WHERE seq = ?", (n,)).fetchone()
        r = dict(last)
        r.update(seq=n + 1, time_ns=last["time_ns"] + 1, action="user.delete",
                 request_id="forged", prev_hash=last["hash"])
        c = canonical(r)
        r["hash"] = hashlib.sha256(r["prev_hash"] + c).digest()
        r["leaf_hash"] = hashlib.sha256(b"\0" + c).digest()
        cols = ("seq",) + RECORD_COLS
        db.execute("INSERT INTO records (%s) VALUES (%s)" % (", ".join(cols),
                                                             ", ".join("?" * len(cols))),
                   [r[c] for c in cols])
        db.row_factory = None
    failed(case("forge", fn=forge), "unsigned", seq=n + 1)

    # A checkpoint's signature replaced.
    def resign(db):
        size = db.execute("SELECT max(tree_size) FROM checkpoints").fetchone()[0]
        db.execute("UPDATE checkpoints SET signature = ? WHERE tree_size = ?",
                   (os.urandom(64), size))
        resign.size = size
    p = case("signature", fn=resign)
    failed(p, "checkpoint-signature", checkpoint=resign.size)
    j = json.loads(cli.run("--output", "json", "audit", "verify", "--data-dir",
                           str(work / "signature")).stdout)
    assert j["verified"] is False and j["problem"] == "checkpoint-signature"


def export_files(data_dir, out_dir):
    """A JSON-lines export and its checkpoints, written from the file (docs/audit.md)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "audit.db"), uri=True)
    db.row_factory = sqlite3.Row
    pub = {r["key_id"]: r["public_key"].hex() for r in db.execute("SELECT * FROM signing_keys")}

    def rfc3339(ns):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + \
            ".%09dZ" % (ns % 10**9)

    recs = os.path.join(out_dir, "records.jsonl")
    with open(recs, "w") as f:
        for r in db.execute("SELECT * FROM records ORDER BY seq"):
            f.write(json.dumps({
                "seq": r["seq"], "time": rfc3339(r["time_ns"]), "time_ns": r["time_ns"],
                "actor": {"type": r["actor_type"], "id": r["actor_id"],
                          "email": r["actor_email"]},
                "tenant_id": r["tenant_id"], "action": r["action"], "resource": r["resource"],
                "outcome": r["outcome"], "reason": r["reason"], "request_id": r["request_id"],
                "source_ip": r["source_ip"], "prev_hash": r["prev_hash"].hex(),
                "hash": r["hash"].hex()}) + "\n")
    cps = os.path.join(out_dir, "checkpoints.jsonl")
    with open(cps, "w") as f:
        for c in db.execute("SELECT * FROM checkpoints ORDER BY tree_size"):
            f.write(json.dumps({
                "tree_size": c["tree_size"], "root_hash": c["root_hash"].hex(),
                "time": rfc3339(c["time_ns"]), "time_ns": c["time_ns"], "key_id": c["key_id"],
                "signature": c["signature"].hex(), "public_key": pub[c["key_id"]]}) + "\n")
    db.close()
    return recs, cps


def test_verify_export(stopped, tmp_path):
    data_dir, pub, n = stopped
    cli = Cli(tmp_path, timeout=CLI_TIMEOUT)
    recs, cps = export_files(data_dir, str(tmp_path))
    records, _, root = verified(cli.run("audit", "verify", "--export", recs, "--checkpoints", cps,
                                        "--pin-key", pub))
    assert records == n
    assert verified(cli.run("audit", "verify", "--data-dir", data_dir))[2] == root
    # Without checkpoints nothing is signed.
    failed(cli.run("audit", "verify", "--export", recs), "unsigned", seq=1)
    verified(cli.run("audit", "verify", "--export", recs, "--allow-unsigned"))
    # One record's field changed in the export.
    lines = open(recs).read().splitlines()
    rec = json.loads(lines[2])
    rec["action"] = rec["action"] + "x"
    lines[2] = json.dumps(rec)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    failed(cli.run("audit", "verify", "--export", str(bad), "--checkpoints", cps), "altered",
           seq=3)
    # Usage and I/O errors keep their own exit codes.
    assert cli.run("audit", "verify", "--checkpoints", cps).returncode == EXIT_USAGE
    assert cli.run("audit", "verify", "--export", recs, "--data-dir", data_dir).returncode == \
        EXIT_USAGE
    assert cli.run("audit", "verify", "--data-dir", data_dir, "--pin-key", "xyz").returncode == \
        EXIT_USAGE
    assert cli.run("audit", "verify", "--data-dir", data_dir, "--seen", "5").returncode == \
        EXIT_USAGE
    assert cli.run("audit", "verify", "--data-dir", str(tmp_path / "nope")).returncode == 1


def test_verify_data_dir_while_the_daemon_runs(fresh_server, tmp_path):
    srv = fresh_server()
    _, _, token = activity(srv, n_users=2)
    cli = Cli(tmp_path, timeout=CLI_TIMEOUT)
    records, _, _ = verified(cli.run("audit", "verify", "--data-dir", srv.data_dir,
                                     "--allow-unsigned"))
    assert records >= 5
    r = srv.session(token).get(srv.url + "/readyz")
    assert r.status_code == 200


# --- verify --server ------------------------------------------------------------------------

def test_verify_server_remembers_key_and_checkpoint(fresh_server, restart, tmp_path):
    srv = fresh_server()
    _, email, token = activity(srv)
    wait_for_checkpoint(srv, token, log_size(srv.data_dir))
    cli = Cli(tmp_path, srv, timeout=CLI_TIMEOUT).login(email, TENANT_ADMIN_PASSWORD)

    # First use: the key and the newest checkpoint are remembered, privately.
    p = cli.run("audit", "verify", "--server")
    size1, k1, root1 = verified(p)
    assert size1 >= 10 and k1 >= 1
    assert "remembering the audit key" in p.stderr
    mode = stat.S_IMODE(os.stat(cli.known_file).st_mode)
    assert mode == 0o600, oct(mode)
    known = json.loads(cli.known_file.read_text())["servers"][srv.url]
    key = srv.session(token).get(srv.url + "/v1/audit/checkpoints").json()["key"]
    assert known["public_key"] == key["public_key"] and known["key_id"] == key["key_id"]
    assert (known["tree_size"], known["root_hash"]) == (size1, root1)

    # More activity: the next run proves the new log extends the remembered checkpoint.
    for _ in range(6):
        make_user(srv, token, "readonly")
    wait_for_checkpoint(srv, token, size1 + 6)
    p = cli.run("audit", "verify", "--server")
    size2, _, root2 = verified(p)
    assert size2 >= size1 + 6 and root2 != root1
    assert "remembering" not in p.stderr
    known = json.loads(cli.known_file.read_text())["servers"][srv.url]
    assert (known["tree_size"], known["root_hash"]) == (size2, root2)

    # A pinned key that is not the server's; then a remembered key that changed.
    failed(cli.run("audit", "verify", "--server", "--pin-key", "cd" * 32),
           "checkpoint-signature")
    verified(cli.run("audit", "verify", "--server", "--pin-key", key["public_key"]))
    saved = cli.known_file.read_text()
    data = json.loads(saved)
    data["servers"][srv.url]["public_key"] = "ef" * 32
    cli.known_file.write_text(json.dumps(data))
    failed(cli.run("audit", "verify", "--server"), "checkpoint-signature")
    cli.known_file.write_text(saved)
    size3, _, root3 = verified(cli.run("audit", "verify", "--server"))
    seen = json.loads(cli.known_file.read_text())["servers"][srv.url]
    assert seen["tree_size"] == size3

    # The daemon stopped, the log cut far behind the remembered checkpoint, restarted
    # on the same address (the stored login and the remembered state are per URL).
    data_dir, port = srv.data_dir, srv.port
    assert srv.stop() == 0, srv.logs()
    keep = size3 // 2
    tamper(data_dir, fn=lambda db: cut_tail(db, keep))
    srv2 = restart(data_dir, port=port)
    assert srv2.url == srv.url
    p = cli.run("audit", "verify", "--server")
    failed(p, "truncated")
    assert json.loads(cli.known_file.read_text())["servers"][srv.url] == seen

    # Once the rewritten log has grown past the remembered size, the consistency
    # proof from the remembered checkpoint fails.
    while log_size(data_dir) <= size3 + 2:
        make_user(srv2, token, "readonly")
    wait_for_checkpoint(srv2, token, size3 + 1)
    failed(cli.run("audit", "verify", "--server"), "seen-mismatch")
    assert json.loads(cli.known_file.read_text())["servers"][srv.url] == seen


def test_verify_server_needs_audit_read(server, tmp_path):
    _, _, token = new_tenant(server)
    ro = make_user(server, token, "readonly")
    cli = Cli(tmp_path, server, timeout=CLI_TIMEOUT).login(ro["email"], USER_PASSWORD)
    assert cli.run("audit", "verify", "--server").returncode == EXIT_FORBIDDEN
    assert not cli.known_file.exists()


# --- audit list -----------------------------------------------------------------------------

def test_audit_list(fresh_server, tmp_path):
    srv = fresh_server()
    _, email, token = activity(srv)
    cli = Cli(tmp_path, srv, timeout=CLI_TIMEOUT).login(email, TENANT_ADMIN_PASSWORD)

    p = cli.ok("audit", "list")
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["SEQ", "TIME", "ACTOR", "ACTION", "RESOURCE", "OUTCOME"]
    rows = [l.split() for l in lines[1:]]
    assert all(len(r) == 6 for r in rows), p.stdout
    actions = [r[3] for r in rows]
    assert actions.count("user.create") == 8, actions
    seqs = [int(r[0]) for r in rows]
    assert seqs == sorted(seqs)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r[1]) for r in rows)

    # JSON: the API's records, every page.
    full = json.loads(cli.ok("--output", "json", "audit", "list").stdout)
    assert set(full) == {"items", "next_cursor"} and full["next_cursor"] is None
    assert [i["seq"] for i in full["items"]][:len(seqs)] == seqs
    assert {"prev_hash", "hash", "actor", "request_id"} <= set(full["items"][0])
    paged = json.loads(cli.ok("--output", "json", "audit", "list",
                              env={"ODYSSEUS_LIST_LIMIT": "2"}).stdout)
    assert [i["seq"] for i in paged["items"]][:len(seqs)] == seqs

    # Filters.
    users = json.loads(cli.ok("-o", "json", "audit", "list", "--action", "user.").stdout)["items"]
    assert len(users) == 8 and all(i["action"].startswith("user.") for i in users)
    mine = json.loads(cli.ok("-o", "json", "audit", "list", "--actor",
                             users[0]["actor"]["id"]).stdout)["items"]
    assert mine and all(i["actor"]["id"] == users[0]["actor"]["id"] for i in mine)
    assert json.loads(cli.ok("-o", "json", "audit", "list", "--outcome", "denied").stdout)[
        "items"] == []
    t = users[1]["time"]
    later = json.loads(cli.ok("-o", "json", "audit", "list", "--action", "user.",
                              "--from", t).stdout)["items"]
    assert [i["seq"] for i in later] == [i["seq"] for i in users[1:]]
    earlier = json.loads(cli.ok("-o", "json", "audit", "list", "--action", "user.",
                                "--to", t).stdout)["items"]
    assert [i["seq"] for i in earlier] == [users[0]["seq"]]
    two = json.loads(cli.ok("-o", "json", "audit", "list", "--limit", "2",
                            env={"ODYSSEUS_LIST_LIMIT": "1"}).stdout)["items"]
    assert [i["seq"] for i in two] == seqs[:2]
    p = cli.ok("audit", "list", "--action", "user.create", "--limit", "3")
    assert len(p.stdout.splitlines()) == 4

    # Bad filters are usage errors; a read-only member has no audit:read.
    assert cli.run("audit", "list", "--outcome", "maybe").returncode == EXIT_USAGE
    assert cli.run("audit", "list", "--from", "yesterday").returncode == EXIT_USAGE
    assert cli.run("audit", "list", "--limit", "0").returncode == EXIT_USAGE
    ro = make_user(srv, token, "readonly")
    reader = Cli(tmp_path, srv, "readonly", CLI_TIMEOUT).login(ro["email"], USER_PASSWORD)
    assert reader.run("audit", "list").returncode == EXIT_FORBIDDEN
