"""The `odysseus` CLI, run as a subprocess against the real odysseusd.

Each test gets its own HOME and XDG_CONFIG_HOME, so the stored login is the
test's own. Passwords go in on stdin (never a terminal here). Contract:
docs/cli.md (commands, output, exit codes), docs/api.md.
"""
import concurrent.futures
import os
import re
import stat

import pytest

from cli_helpers import (EXIT_AUTH, EXIT_CONFLICT, EXIT_CONNECT, EXIT_FORBIDDEN, EXIT_INVALID,
                         EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, Cli, assert_error, table)
from conftest import TENANT_ADMIN_PASSWORD, USER_PASSWORD, free_port, unique

CRED_KEYS = {"server", "ca", "access_token", "refresh_token", "access_expires_at"}


@pytest.fixture
def cli(tmp_path, server):
    return Cli(tmp_path, server)


@pytest.fixture
def admin_cli(cli, server):
    """A CLI logged in as the platform administrator."""
    return cli.login(server.admin_email, server.admin_password)


@pytest.fixture
def tenant_cli(tmp_path, server):
    """A CLI logged in as the Admin of a new tenant; .tenant is the tenant."""
    email = unique("cli-admin") + "@tenant.test"
    tenant = server.create_tenant(unique("cli-tenant"), email)
    c = Cli(tmp_path, server).login(email, TENANT_ADMIN_PASSWORD)
    c.tenant = tenant
    return c


# --- login, whoami, the credentials file ---------------------------------------

def test_login_stores_a_private_credentials_file(cli, server):
    p = cli.login_run(server.admin_email, server.admin_password)
    assert p.returncode == 0, p.stderr
    assert server.admin_email in p.stdout
    mode = stat.S_IMODE(os.stat(cli.cred_dir).st_mode)
    assert mode == 0o700, oct(mode)
    mode = stat.S_IMODE(os.stat(cli.cred_file).st_mode)
    assert mode == 0o600, oct(mode)
    creds = cli.creds()
    assert set(creds) == CRED_KEYS
    assert creds["server"] == server.url
    assert creds["ca"] == os.path.realpath(server.ca)
    assert re.fullmatch(r"odr_[0-9a-f]{64}", creds["refresh_token"])
    assert creds["access_token"].count(".") == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", creds["access_expires_at"])
    # Nothing but the credentials file (and the refresh lock) is left behind.
    assert set(os.listdir(cli.cred_dir)) <= {"credentials.json", "credentials.lock"}
    with open(cli.cred_file) as f:
        assert server.admin_password not in f.read()
    for secret in (server.admin_password, creds["access_token"], creds["refresh_token"]):
        assert secret not in p.stdout + p.stderr


def test_login_uses_environment_defaults(cli, server):
    p = cli.run("login", "--email", server.admin_email, input=server.admin_password + "\n",
                env={"ODYSSEUS_SERVER": server.url, "ODYSSEUS_CA": server.ca})
    assert p.returncode == 0, p.stderr
    assert cli.json("whoami")["email"] == server.admin_email


def test_whoami_json_and_table(admin_cli, server):
    me = admin_cli.json("whoami")
    assert me["email"] == server.admin_email
    assert me["role"] == "platform_admin"
    assert me["tenant_id"] is None
    # --output json prints the server's JSON as it is.
    r = server.session(admin_cli.creds()["access_token"]).get(server.url + "/v1/me")
    assert me == r.json()

    headers, rows = table(admin_cli.ok("whoami").stdout)
    assert headers[:3] == ["ID", "EMAIL", "ROLE"]
    assert rows == [[me["id"], me["email"], "platform_admin", "-"]]


def test_whoami_as_tenant_admin(tenant_cli):
    me = tenant_cli.json("whoami")
    assert me["email"] == tenant_cli.email
    assert me["role"] == "admin"
    assert me["tenant_id"] == tenant_cli.tenant["id"]


def test_wrong_password_exits_3_and_stores_nothing(cli):
    # An unknown email answers exactly like a wrong password (and locks no real account).
    p = cli.login_run(unique("nobody") + "@nowhere.test", "not-the-password-1")
    assert_error(p, "unauthorized", EXIT_AUTH)
    assert not cli.cred_file.exists()


def test_no_password_on_stdin_is_a_usage_error(cli, server):
    p = cli.run("login", "--server", server.url, "--ca", server.ca,
                "--email", server.admin_email, input="")
    assert p.returncode == EXIT_USAGE, p.stderr


def test_logged_out_commands_exit_3(cli):
    for args in (["whoami"], ["tenants", "list"], ["users", "list"], ["api-keys", "list"]):
        p = cli.run(*args)
        assert p.returncode == EXIT_AUTH, (args, p.stderr)
        assert "not logged in" in p.stderr


def test_logout_revokes_the_session_and_removes_the_file(admin_cli, server):
    old = admin_cli.creds()
    p = admin_cli.ok("logout")
    assert not admin_cli.cred_file.exists()
    # The refresh token is dead on the server too.
    r = server.session().post(server.url + "/v1/auth/refresh",
                              json={"refresh_token": old["refresh_token"]})
    assert r.status_code == 401, r.text
    assert admin_cli.run("whoami").returncode == EXIT_AUTH
    # Logging out again is not an error.
    assert admin_cli.run("logout").returncode == EXIT_OK
    for secret in (old["access_token"], old["refresh_token"]):
        assert secret not in p.stdout + p.stderr


def test_logout_with_expired_access_token(admin_cli, server):
    creds = admin_cli.creds()
    creds["access_expires_at"] = "2000-01-01T00:00:00Z"
    admin_cli.write_creds(creds)
    admin_cli.ok("logout")
    assert not admin_cli.cred_file.exists()
    r = server.session().post(server.url + "/v1/auth/refresh",
                              json={"refresh_token": creds["refresh_token"]})
    assert r.status_code == 401


def test_loose_credentials_file_is_refused(admin_cli):
    os.chmod(admin_cli.cred_file, 0o644)
    p = admin_cli.run("whoami")
    assert p.returncode == EXIT_AUTH
    assert "other users" in p.stderr


def test_other_server_than_the_stored_login_is_refused(admin_cli):
    # The stored tokens must never be sent to another server.
    p = admin_cli.run("whoami", "--server", "https://127.0.0.1:%d" % free_port())
    assert p.returncode == EXIT_AUTH
    assert "not logged in to" in p.stderr


# --- automatic refresh ---------------------------------------------------------

def test_expired_access_token_is_refreshed(admin_cli, server):
    before = admin_cli.creds()
    before["access_expires_at"] = "2000-01-01T00:00:00Z"
    admin_cli.write_creds(before)

    assert admin_cli.json("whoami")["email"] == server.admin_email
    after = admin_cli.creds()
    assert after["refresh_token"] != before["refresh_token"]
    assert after["access_token"] != before["access_token"]
    assert after["access_expires_at"] > "2001"
    assert stat.S_IMODE(os.stat(admin_cli.cred_file).st_mode) == 0o600
    assert set(os.listdir(admin_cli.cred_dir)) <= {"credentials.json", "credentials.lock"}
    # The new pair keeps working without another refresh.
    admin_cli.ok("whoami")
    assert admin_cli.creds()["refresh_token"] == after["refresh_token"]


def test_401_with_a_live_refresh_token_is_refreshed(admin_cli):
    creds = admin_cli.creds()
    header, payload, sig = creds["access_token"].split(".")
    creds["access_token"] = ".".join([header, payload, sig[::-1]])  # bad signature
    admin_cli.write_creds(creds)

    admin_cli.ok("whoami")
    assert admin_cli.creds()["refresh_token"] != creds["refresh_token"]


def test_revoked_session_exits_3(admin_cli, server):
    creds = admin_cli.creds()
    r = server.session(creds["access_token"]).post(
        server.url + "/v1/auth/logout", json={"refresh_token": creds["refresh_token"]})
    assert r.status_code == 204, r.text
    creds["access_expires_at"] = "2000-01-01T00:00:00Z"
    admin_cli.write_creds(creds)
    p = admin_cli.run("whoami")
    assert p.returncode == EXIT_AUTH, p.stderr
    assert "odysseus login" in p.stderr


def test_concurrent_commands_refresh_once(admin_cli):
    """Refresh tokens are single use: parallel commands must not race on one."""
    creds = admin_cli.creds()
    creds["access_expires_at"] = "2000-01-01T00:00:00Z"
    admin_cli.write_creds(creds)
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: admin_cli.run("whoami"), range(6)))
    for p in results:
        assert p.returncode == 0, p.stderr
    # The family was not revoked by a reused token: the session still refreshes.
    creds = admin_cli.creds()
    creds["access_expires_at"] = "2000-01-01T00:00:00Z"
    admin_cli.write_creds(creds)
    admin_cli.ok("whoami")


# --- tenants -------------------------------------------------------------------

def test_tenants_lifecycle(admin_cli, server):
    name = unique("cli-t")
    admin_email = unique("cli-t-admin") + "@tenant.test"
    created = admin_cli.json("tenants", "create", "--name", name, "--admin-email", admin_email,
                             "--admin-password-stdin", "--cpu-cores", "2.5",
                             "--memory-mb", "2048", "--containers", "7", "--storage-mb", "4096",
                             input=TENANT_ADMIN_PASSWORD + "\n")
    tid = created["id"]
    assert created["name"] == name
    assert created["quotas"] == {"cpu_cores": 2.5, "memory_mb": 2048, "containers": 7,
                                 "storage_mb": 4096}
    assert created["admin"]["email"] == admin_email
    assert created["admin"]["role"] == "admin"

    # list: table and json; every tenant is there.
    headers, rows = table(admin_cli.ok("tenants", "list").stdout)
    assert headers[:2] == ["ID", "NAME"] and "CREATED" in headers
    assert [tid, name] in [r[:2] for r in rows]
    items = admin_cli.json("tenants", "list")["items"]
    assert tid in [t["id"] for t in items]

    got = admin_cli.json("tenants", "get", tid)
    r = server.session(admin_cli.creds()["access_token"]).get(server.url + "/v1/tenants/" + tid)
    assert got == r.json()
    headers, rows = table(admin_cli.ok("tenants", "get", tid).stdout)
    assert rows[0][:2] == [tid, name]

    q = admin_cli.json("tenants", "set-quotas", tid, "--cpu-cores", "1", "--memory-mb", "512",
                       "--containers", "3", "--storage-mb", "1024")
    assert q["quotas"] == {"cpu_cores": 1, "memory_mb": 512, "containers": 3,
                           "storage_mb": 1024}
    assert admin_cli.json("tenants", "get", tid)["quotas"] == q["quotas"]

    new_name = unique("cli-renamed")
    assert admin_cli.json("tenants", "rename", tid, "--name", new_name)["name"] == new_name

    # The tenant's Admin can log in with the password given on stdin.
    server.login(admin_email, TENANT_ADMIN_PASSWORD)

    p = admin_cli.ok("tenants", "delete", tid)
    assert tid in p.stdout
    assert_error(admin_cli.run("tenants", "get", tid), "not_found", EXIT_NOT_FOUND)
    assert_error(admin_cli.run("tenants", "delete", tid), "not_found", EXIT_NOT_FOUND)


def test_tenants_list_follows_next_cursor(admin_cli, server):
    token = admin_cli.creds()["access_token"]
    ids = [server.create_tenant(unique("cli-page"), unique("cli-page") + "@tenant.test")["id"]
           for _ in range(3)]
    everything = admin_cli.json("tenants", "list")
    paged = admin_cli.json("tenants", "list", env={"ODYSSEUS_LIST_LIMIT": "1"})
    assert paged == everything
    assert paged["next_cursor"] is None
    got = [t["id"] for t in paged["items"]]
    assert len(got) == len(set(got))
    assert set(ids) <= set(got)
    # The same set the API gives page by page.
    s = server.session(token)
    api, cursor = [], None
    while True:
        r = s.get(server.url + "/v1/tenants", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        api += [t["id"] for t in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert got == api
    _, rows = table(admin_cli.ok("tenants", "list", env={"ODYSSEUS_LIST_LIMIT": "2"}).stdout)
    assert [r[0] for r in rows] == api


def test_tenants_create_requires_a_password(admin_cli):
    p = admin_cli.run("tenants", "create", "--name", unique("cli-t"),
                      "--admin-email", unique("x") + "@tenant.test", input="")
    assert p.returncode == EXIT_USAGE, p.stderr


def test_tenant_admin_cannot_manage_tenants(tenant_cli):
    assert_error(tenant_cli.run("tenants", "list"), "forbidden", EXIT_FORBIDDEN)


# --- users and API keys ----------------------------------------------------------

def test_users_lifecycle_as_tenant_admin(tenant_cli, server):
    email = unique("cli-user") + "@tenant.test"
    user = tenant_cli.json("users", "create", "--email", email, "--role", "developer",
                           input=USER_PASSWORD + "\n")
    uid = user["id"]
    assert user["email"] == email and user["role"] == "developer"
    server.login(email, USER_PASSWORD)  # the password from stdin is the user's

    headers, rows = table(tenant_cli.ok("users", "list").stdout)
    assert headers[:3] == ["ID", "EMAIL", "ROLE"]
    assert [uid, email, "developer"] in [r[:3] for r in rows]
    assert tenant_cli.email in [r[1] for r in rows]

    assert tenant_cli.json("users", "set-role", uid, "operator")["role"] == "operator"
    assert tenant_cli.json("users", "get", uid)["role"] == "operator"

    # 409 for an email in use, 400 for a short password or a bad role.
    p = tenant_cli.run("users", "create", "--email", email, "--role", "readonly",
                       input=USER_PASSWORD + "\n")
    assert_error(p, "conflict", EXIT_CONFLICT)
    p = tenant_cli.run("users", "create", "--email", unique("u") + "@tenant.test",
                       "--role", "readonly", input="short\n")
    assert_error(p, "bad_request", EXIT_INVALID)
    assert_error(tenant_cli.run("users", "set-role", uid, "emperor"), "bad_request",
                 EXIT_INVALID)

    tenant_cli.ok("users", "delete", uid)
    assert_error(tenant_cli.run("users", "get", uid), "not_found", EXIT_NOT_FOUND)
    assert_error(tenant_cli.run("users", "delete", uid), "not_found", EXIT_NOT_FOUND)


def test_missing_ids_exit_5(tenant_cli):
    missing = "usr_" + "0" * 32
    assert_error(tenant_cli.run("users", "get", missing), "not_found", EXIT_NOT_FOUND)
    # Path tricks stay one escaped path segment.
    assert tenant_cli.run("users", "get", "../tenants").returncode == EXIT_NOT_FOUND


def test_api_keys_lifecycle(tenant_cli, server):
    name = unique("cli-key")
    key = tenant_cli.json("api-keys", "create", "--name", name, "--role", "readonly")
    assert key["key"].startswith("odk_")
    assert key["name"] == name and key["role"] == "readonly"
    # The key works as a bearer token.
    r = server.session(key["key"]).get(server.url + "/v1/me")
    assert r.status_code == 200, r.text

    listed = tenant_cli.json("api-keys", "list")["items"]
    mine = [k for k in listed if k["id"] == key["id"]]
    assert len(mine) == 1 and "key" not in mine[0]
    assert key["key"] not in tenant_cli.ok("api-keys", "list").stdout

    # Table output shows the key this once.
    p = tenant_cli.ok("api-keys", "create", "--name", unique("cli-key"), "--role", "developer")
    headers, rows = table(p.stdout)
    assert headers == ["ID", "NAME", "ROLE", "KEY"]
    assert rows[0][3].startswith("odk_")

    tenant_cli.ok("api-keys", "delete", key["id"])
    r = server.session(key["key"]).get(server.url + "/v1/me")
    assert r.status_code == 401
    assert_error(tenant_cli.run("api-keys", "delete", key["id"]), "not_found", EXIT_NOT_FOUND)


# --- usage and connection errors ---------------------------------------------------

@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["tenants"],
    ["tenants", "frob"],
    ["tenants", "get"],
    ["tenants", "get", "a", "b"],
    ["tenants", "get", ""],
    ["tenants", "list", "--bogus"],
    ["tenants", "rename", "ten_x"],
    ["tenants", "create", "--name", "x"],
    ["tenants", "set-quotas", "ten_x", "--cpu-cores", "1"],
    ["tenants", "set-quotas", "ten_x", "--cpu-cores", "x", "--memory-mb", "1",
     "--containers", "1", "--storage-mb", "1"],
    ["tenants", "set-quotas", "ten_x", "--cpu-cores", "1", "--memory-mb", "1.5",
     "--containers", "1", "--storage-mb", "1"],
    ["users", "create", "--email", "a@b.test"],
    ["users", "set-role", "usr_x"],
    ["api-keys", "create", "--name", "x"],
    ["whoami", "--output", "yaml"],
    ["whoami", "--output"],
    ["login", "--email", "a@b.test"],
])
def test_usage_errors_exit_2(cli, args):
    p = cli.run(*args)
    assert p.returncode == EXIT_USAGE, (p.returncode, p.stderr)
    assert p.stderr.startswith("odysseus: ") or p.stderr.startswith("usage:"), p.stderr
    assert p.stdout == ""


def test_help_and_version(cli):
    p = cli.ok("--help")
    for word in ("login", "tenants", "users", "api-keys", "--output"):
        assert word in p.stdout
    assert "set-quotas" in cli.ok("tenants", "set-quotas", "--help").stdout
    assert re.fullmatch(r"odysseus \S+\n", cli.ok("--version").stdout)


def test_closed_port_exits_9(cli, server):
    p = cli.run("login", "--server", "https://127.0.0.1:%d" % free_port(), "--ca", server.ca,
                "--email", "a@b.test", input="whatever-password\n")
    assert p.returncode == EXIT_CONNECT, p.stderr
    assert not cli.cred_file.exists()


def test_untrusted_certificate_exits_9(cli, server):
    # Without --ca the internal CA is not trusted: a TLS failure, not a login.
    p = cli.run("login", "--server", server.url, "--email", server.admin_email,
                input=server.admin_password + "\n")
    assert p.returncode == EXIT_CONNECT, p.stderr
    assert "TLS" in p.stderr
    assert not cli.cred_file.exists()


def test_server_gone_after_login_exits_9(tmp_path, fresh_server):
    srv = fresh_server()
    c = Cli(tmp_path, srv).login(srv.admin_email, srv.admin_password)
    srv.stop()
    assert c.run("whoami").returncode == EXIT_CONNECT


def test_no_secret_is_printed(tenant_cli, server):
    creds = tenant_cli.creds()
    out = ""
    for args in (["whoami"], ["--output", "json", "whoami"], ["users", "list"],
                 ["--output", "json", "users", "list"]):
        p = tenant_cli.ok(*args)
        out += p.stdout + p.stderr
    for secret in (TENANT_ADMIN_PASSWORD, creds["access_token"], creds["refresh_token"]):
        assert secret not in out


# --- permission sets (issue 3) -----------------------------------------------------

def test_permission_sets_lifecycle(tenant_cli, server):
    name = unique("cli-set")
    created = tenant_cli.json("permission-sets", "create", name, "--rule", "allow:GET:/v1/users",
                              "--rule", "deny:DELETE:/v1/users/*", "--rule=allow:*:/v1/api-keys/**")
    assert created["name"] == name and created["subjects"] == []
    assert created["rules"] == [
        {"effect": "allow", "method": "GET", "path": "/v1/users"},
        {"effect": "deny", "method": "DELETE", "path": "/v1/users/*"},
        {"effect": "allow", "method": "*", "path": "/v1/api-keys/**"}]
    # --output json is the server's answer as it is.
    r = server.session(tenant_cli.creds()["access_token"]).get(
        server.url + "/v1/permission-sets/" + name)
    assert tenant_cli.json("permission-sets", "get", name) == r.json()

    # Table: a summary line, then the rules in order.
    lines = tenant_cli.ok("permission-sets", "get", name).stdout.split("\n\n")
    headers, rows = table(lines[0])
    assert headers == ["NAME", "RULES", "SUBJECTS", "CREATED", "UPDATED"]
    assert rows[0][:3] == [name, "3", "0"]
    headers, rows = table(lines[1])
    assert headers == ["EFFECT", "METHOD", "PATH"]
    assert rows == [["allow", "GET", "/v1/users"], ["deny", "DELETE", "/v1/users/*"],
                    ["allow", "*", "/v1/api-keys/**"]]

    headers, rows = table(tenant_cli.ok("permission-sets", "list").stdout)
    assert headers == ["NAME", "RULES", "SUBJECTS", "CREATED", "UPDATED"]
    assert [name, "3", "0"] in [row[:3] for row in rows]
    listed = tenant_cli.json("permission-sets", "list")
    assert listed["next_cursor"] is None and created["name"] in [s["name"] for s in listed["items"]]

    # update replaces every rule.
    updated = tenant_cli.json("permission-sets", "update", name, "--rule", "deny:*:/**")
    assert updated["rules"] == [{"effect": "deny", "method": "*", "path": "/**"}]
    assert tenant_cli.json("permission-sets", "update", name, "--no-rules")["rules"] == []

    p = tenant_cli.ok("permission-sets", "delete", name)
    assert name in p.stdout and "deleted" in p.stdout
    assert_error(tenant_cli.run("permission-sets", "get", name), "not_found", EXIT_NOT_FOUND)
    assert_error(tenant_cli.run("permission-sets", "delete", name), "not_found", EXIT_NOT_FOUND)
    assert_error(tenant_cli.run("permission-sets", "update", name, "--no-rules"), "not_found",
                 EXIT_NOT_FOUND)


def test_permission_sets_list_follows_next_cursor(tenant_cli):
    names = sorted(unique("cli-pg") for _ in range(3))
    for n in names:
        tenant_cli.ok("permission-sets", "create", n)
    everything = tenant_cli.json("permission-sets", "list")
    paged = tenant_cli.json("permission-sets", "list", env={"ODYSSEUS_LIST_LIMIT": "1"})
    assert paged == everything
    got = [s["name"] for s in paged["items"]]
    assert got == sorted(got) and set(names) <= set(got)


def test_permission_sets_errors(tenant_cli):
    name = unique("cli-err")
    tenant_cli.ok("permission-sets", "create", name, "--rule", "allow:GET:/v1/users")
    # The server checks the rules: 400 -> exit 7, with its message.
    for rule in ("permit:GET:/v1/users", "allow:get:/v1/users", "allow:GET:/v1/**/x",
                 "allow:GET:v1/users", "allow:GET:/v1//users", "allow:GET:"):
        p = tenant_cli.run("permission-sets", "create", unique("cli-err"), "--rule", rule)
        assert_error(p, "bad_request", EXIT_INVALID)
        assert "rule 0" in p.stderr
        assert_error(tenant_cli.run("permission-sets", "update", name, "--rule", rule),
                     "bad_request", EXIT_INVALID)
    assert_error(tenant_cli.run("permission-sets", "create", "Upper-Case"), "bad_request",
                 EXIT_INVALID)
    assert_error(tenant_cli.run("permission-sets", "create", name), "conflict", EXIT_CONFLICT)
    # Nothing changed by the refused updates.
    assert tenant_cli.json("permission-sets", "get", name)["rules"] == [
        {"effect": "allow", "method": "GET", "path": "/v1/users"}]


def test_users_set_permission_sets(tenant_cli, server):
    allow, deny = unique("cli-allow"), unique("cli-deny")
    tenant_cli.ok("permission-sets", "create", allow, "--rule", "allow:GET:/v1/users")
    tenant_cli.ok("permission-sets", "create", deny, "--rule", "deny:GET:/v1/quotas")
    email = unique("cli-ro") + "@tenant.test"
    user = tenant_cli.json("users", "create", "--email", email, "--role", "readonly",
                           input=USER_PASSWORD + "\n")
    ro = server.session(server.login(email, USER_PASSWORD)["access_token"])
    assert ro.get(server.url + "/v1/users").status_code == 403

    got = tenant_cli.json("users", "set-permission-sets", user["id"], allow, deny)
    assert got["id"] == user["id"] and got["role"] == "readonly"
    assert sorted(ro.get(server.url + "/v1/me").json()["permission_sets"]) == sorted([allow, deny])
    assert ro.get(server.url + "/v1/users").status_code == 200
    assert ro.get(server.url + "/v1/quotas").status_code == 403
    assert tenant_cli.json("permission-sets", "get", allow)["subjects"] == [user["id"]]
    # Table: the user, like set-role.
    headers, rows = table(tenant_cli.ok("users", "set-permission-sets", user["id"], allow).stdout)
    assert headers[:3] == ["ID", "EMAIL", "ROLE"] and rows[0][:3] == [user["id"], email, "readonly"]
    headers, rows = table(tenant_cli.ok("permission-sets", "get", allow).stdout.split("\n\n")[2])
    assert headers == ["SUBJECT"] and rows == [[user["id"]]]

    # No names: every set is taken away.
    tenant_cli.ok("users", "set-permission-sets", user["id"])
    assert ro.get(server.url + "/v1/me").json()["permission_sets"] == []
    assert ro.get(server.url + "/v1/users").status_code == 403

    assert_error(tenant_cli.run("users", "set-permission-sets", user["id"], "no-such-set"),
                 "bad_request", EXIT_INVALID)
    assert_error(tenant_cli.run("users", "set-permission-sets", "usr_" + "0" * 32, allow),
                 "not_found", EXIT_NOT_FOUND)
    too_many = [unique("cli-many") for _ in range(17)]
    assert_error(tenant_cli.run("users", "set-permission-sets", user["id"], *too_many),
                 "bad_request", EXIT_INVALID)


def test_api_key_with_permission_sets(tenant_cli, server):
    allow = unique("cli-kset")
    tenant_cli.ok("permission-sets", "create", allow, "--rule", "allow:GET:/v1/users")
    key = tenant_cli.json("api-keys", "create", "--name", unique("cli-k"), "--role", "readonly",
                          "--permission-set", allow)
    ks = server.session(key["key"])
    assert ks.get(server.url + "/v1/users").status_code == 200
    assert ks.get(server.url + "/v1/me").json()["permission_sets"] == [allow]
    assert key["id"] in tenant_cli.json("permission-sets", "get", allow)["subjects"]
    p = tenant_cli.run("api-keys", "create", "--name", unique("cli-k"), "--role", "readonly",
                       "--permission-set", "no-such-set")
    assert_error(p, "bad_request", EXIT_INVALID)


def test_permission_sets_forbidden_and_logged_out(tenant_cli, server, tmp_path):
    email = unique("cli-op") + "@tenant.test"
    tenant_cli.ok("users", "create", "--email", email, "--role", "operator",
                  input=USER_PASSWORD + "\n")
    op = Cli(tmp_path, server, "op").login(email, USER_PASSWORD)
    for args in (["permission-sets", "list"], ["permission-sets", "get", "x"],
                 ["permission-sets", "create", "x"], ["permission-sets", "delete", "x"],
                 ["permission-sets", "update", "x", "--no-rules"],
                 ["users", "set-permission-sets", "usr_x", "a"]):
        assert_error(op.run(*args), "forbidden", EXIT_FORBIDDEN)
    fresh = Cli(tmp_path, server, "none")
    assert fresh.run("permission-sets", "list").returncode == EXIT_AUTH


@pytest.mark.parametrize("args", [
    ["permission-sets"],
    ["permission-sets", "frob"],
    ["permission-sets", "get"],
    ["permission-sets", "get", "a", "b"],
    ["permission-sets", "create"],
    ["permission-sets", "create", "x", "--rule"],
    ["permission-sets", "create", "x", "--rule", "allow"],
    ["permission-sets", "create", "x", "--rule", "allow:GET"],
    ["permission-sets", "create", "x", "--rule", "allow:GET:/a", "--no-rules"],
    ["permission-sets", "update", "x"],
    ["permission-sets", "update", "x", "--rule", "allow:GET:/a", "--no-rules"],
    ["permission-sets", "update", "x", "--rule", "deny-everything"],
    ["permission-sets", "delete"],
    ["users", "set-permission-sets"],
    ["api-keys", "create", "--name", "x", "--role", "readonly", "--permission-set"],
])
def test_permission_sets_usage_errors_exit_2(cli, args):
    p = cli.run(*args)
    assert p.returncode == EXIT_USAGE, (p.returncode, p.stderr)
    assert p.stdout == ""


def test_permission_sets_help(cli):
    assert "permission-sets" in cli.ok("--help").stdout
    assert "set-permission-sets" in cli.ok("--help").stdout
    out = cli.ok("permission-sets", "create", "--help").stdout
    assert "EFFECT:METHOD:PATH" in out
    out = cli.ok("permission-sets", "--help").stdout
    for sub in ("list", "get", "create", "update", "delete"):
        assert "permission-sets " + sub in out
