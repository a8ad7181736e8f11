"""docs/openapi.yaml against the daemon.

(a) the set of operations equals `odysseusd routes`;
(b) live answers of the running server match the declared status codes,
    headers and response schemas (a small validator for the JSON Schema
    subset the document uses);
(c) the document's own rules: every error response is the shared Error
    schema, every response declares X-Request-Id, request bodies are closed.
"""
import os
import re
import subprocess

import pytest
import yaml

from conftest import ODYSSEUSD, ROOT, TENANT_ADMIN_PASSWORD, unique

SPEC_PATH = os.path.join(ROOT, "docs", "openapi.yaml")
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

# Error codes each status may carry (docs/api.md, Conventions).
CODES_BY_STATUS = {
    400: {"bad_request"}, 401: {"unauthorized"}, 403: {"forbidden"},
    404: {"not_found"}, 405: {"method_not_allowed"},
    409: {"conflict", "quota_exceeded"}, 413: {"payload_too_large"},
    415: {"unsupported_media_type"}, 422: {"blocked_by_policy"},
    429: {"rate_limited"}, 500: {"internal"}, 503: {"unavailable"},
}


@pytest.fixture(scope="module")
def spec():
    with open(SPEC_PATH) as f:
        return yaml.safe_load(f)


def operations(spec):
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def resolve(spec, node):
    """Follow local $ref chains ('#/a/b') to the referenced object."""
    seen = set()
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        ref = node["$ref"]
        assert ref.startswith("#/"), "only local $ref are used: " + ref
        assert ref not in seen, "$ref loop at " + ref
        seen.add(ref)
        target = spec
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


# --- a validator for the JSON Schema subset used in docs/openapi.yaml -------

SUPPORTED_KEYWORDS = {
    "$ref", "type", "const", "enum", "required", "properties",
    "additionalProperties", "items", "pattern", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "oneOf",
    # annotations, no effect on validation
    "description", "default", "format", "title", "examples",
}


def _type_ok(kind, value):
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    raise AssertionError("unknown type " + kind)


def validate(spec, schema, value, where="$"):
    """Return a list of 'where: problem' strings; empty when value fits schema."""
    errors = []
    unknown = set(schema) - SUPPORTED_KEYWORDS
    assert not unknown, "validator does not support %s at %s" % (unknown, where)
    if "$ref" in schema:
        errors += validate(spec, resolve(spec, {"$ref": schema["$ref"]}), value, where)
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(k, value) for k in kinds):
            return errors + ["%s: %r is not of type %s" % (where, value, "|".join(kinds))]
    if "const" in schema and value != schema["const"]:
        errors.append("%s: %r != const %r" % (where, value, schema["const"]))
    if "enum" in schema and value not in schema["enum"]:
        errors.append("%s: %r not in %r" % (where, value, schema["enum"]))
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append("%s: %r does not match %s" % (where, value, schema["pattern"]))
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append("%s: shorter than %d" % (where, schema["minLength"]))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append("%s: longer than %d" % (where, schema["maxLength"]))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append("%s: %r < minimum %r" % (where, value, schema["minimum"]))
        if "maximum" in schema and value > schema["maximum"]:
            errors.append("%s: %r > maximum %r" % (where, value, schema["maximum"]))
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append("%s: %r <= exclusiveMinimum %r" % (where, value, schema["exclusiveMinimum"]))
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            errors.append("%s: %r >= exclusiveMaximum %r" % (where, value, schema["exclusiveMaximum"]))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append("%s: missing required property %r" % (where, name))
        for name, v in value.items():
            if name in props:
                errors += validate(spec, props[name], v, "%s.%s" % (where, name))
            elif schema.get("additionalProperties") is False:
                errors.append("%s: undeclared property %r" % (where, name))
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += validate(spec, schema["additionalProperties"], v, "%s.%s" % (where, name))
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errors += validate(spec, schema["items"], v, "%s[%d]" % (where, i))
    if "oneOf" in schema:
        fits = [s for s in schema["oneOf"] if not validate(spec, s, value, where)]
        if len(fits) != 1:
            errors.append("%s: %r matches %d of oneOf" % (where, value, len(fits)))
    return errors


def test_validator_self_check(spec):
    user = {"$ref": "#/components/schemas/User"}
    good = {"id": "usr_" + "0" * 32, "email": "a@b.test", "role": "admin",
            "created_at": "2026-11-28T15:52:22.123456789Z"}
    assert validate(spec, user, good) == []
    assert validate(spec, user, dict(good, extra=1))
    assert validate(spec, user, {k: v for k, v in good.items() if k != "role"})
    assert validate(spec, user, dict(good, role="root"))
    assert validate(spec, user, dict(good, created_at="2026-11-28T15:52:22Z"))
    assert validate(spec, {"$ref": "#/components/schemas/UserList"},
                    {"items": [good], "next_cursor": None}) == []
    assert validate(spec, {"$ref": "#/components/schemas/UserList"}, {"items": [good]})


# --- (a) route table ---------------------------------------------------------

def test_routes_match_openapi(spec):
    out = subprocess.run([ODYSSEUSD, "routes"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    routes = set()
    for line in out.stdout.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        assert len(parts) == 2, "route line is not 'METHOD PATH': %r" % line
        routes.add((parts[0], parts[1]))
    documented = {(m, p) for m, p, _ in operations(spec)}
    only_daemon = sorted(routes - documented)
    only_spec = sorted(documented - routes)
    report = "in `odysseusd routes` only: %s\nin docs/openapi.yaml only: %s" % (
        ["%s %s" % r for r in only_daemon], ["%s %s" % r for r in only_spec])
    print(report)
    assert routes == documented, report


# --- (c) rules of the document ------------------------------------------------

def test_error_responses_use_shared_error_schema(spec):
    bad = []
    for method, path, op in operations(spec):
        for status, resp in op["responses"].items():
            if status != "default" and int(status) < 400:
                continue
            r = resolve(spec, resp)
            schema = r.get("content", {}).get("application/json", {}).get("schema")
            if schema != {"$ref": "#/components/schemas/Error"}:
                bad.append("%s %s %s" % (method, path, status))
    assert not bad, "error responses not using the Error schema: %s" % bad


def test_every_response_declares_request_id(spec):
    bad = []
    for method, path, op in operations(spec):
        for status, resp in op["responses"].items():
            headers = resolve(spec, resp).get("headers", {})
            if headers.get("X-Request-Id") != {"$ref": "#/components/headers/XRequestId"}:
                bad.append("%s %s %s" % (method, path, status))
    assert not bad, "responses without X-Request-Id: %s" % bad


def _objects_are_closed(spec, schema, where, bad, depth=0):
    schema = resolve(spec, schema)
    assert depth < 20, where
    if schema.get("type") == "object":
        # closed, or a map whose every value the schema types (env)
        if not (schema.get("additionalProperties") is False or
                (isinstance(schema.get("additionalProperties"), dict) and "properties" not in schema)):
            bad.append(where)
        for name, sub in schema.get("properties", {}).items():
            _objects_are_closed(spec, sub, where + "." + name, bad, depth + 1)
    if "items" in schema:
        _objects_are_closed(spec, schema["items"], where + "[]", bad, depth + 1)
    if "$ref" in schema:
        _objects_are_closed(spec, {"$ref": schema["$ref"]}, where, bad, depth + 1)


def test_request_bodies_are_closed_objects(spec):
    bad = []
    for method, path, op in operations(spec):
        if "requestBody" not in op:
            continue
        body = resolve(spec, op["requestBody"])
        schema = body["content"]["application/json"]["schema"]
        assert resolve(spec, schema).get("type") == "object", (method, path)
        _objects_are_closed(spec, schema, "%s %s" % (method, path), bad)
    assert not bad, "request objects without additionalProperties: false: %s" % bad


def test_operations_are_complete(spec):
    tags = {t["name"] for t in spec["tags"]}
    ids = []
    for method, path, op in operations(spec):
        assert op.get("operationId"), (method, path)
        ids.append(op["operationId"])
        assert op.get("tags") and set(op["tags"]) <= tags, (method, path)
        assert op.get("x-odysseus-access"), (method, path)
        for name in re.findall(r"{([^}]+)}", path):
            params = [resolve(spec, p) for p in
                      spec["paths"][path].get("parameters", []) + op.get("parameters", [])]
            assert any(p["in"] == "path" and p["name"] == name for p in params), (method, path)
    assert len(ids) == len(set(ids)), "duplicate operationId"


def test_schemas_use_only_validated_keywords(spec):
    def walk(node, where):
        if isinstance(node, dict):
            if "type" in node or "$ref" in node or "properties" in node:
                unknown = set(node) - SUPPORTED_KEYWORDS
                assert not unknown, "%s uses %s" % (where, unknown)
                for name, sub in node.get("properties", {}).items():
                    walk(sub, where + "." + name)
                for key in ("items", "additionalProperties"):
                    if isinstance(node.get(key), dict):
                        walk(node[key], where + "." + key)
                for i, sub in enumerate(node.get("oneOf", [])):
                    walk(sub, "%s.oneOf[%d]" % (where, i))
            else:
                for i, sub in enumerate(node.get("oneOf", [])):
                    walk(sub, "%s.oneOf[%d]" % (where, i))
    for name, schema in spec["components"]["schemas"].items():
        walk(schema, name)


def test_document_is_valid_openapi_31(spec):
    validator = pytest.importorskip("openapi_spec_validator")
    assert spec["openapi"].startswith("3.1")
    validator.validate(spec)


# --- (b) live answers against the schemas ---------------------------------------

def check(spec, resp, method, template, status=None):
    """Assert resp is a declared answer of (method, template); return its body."""
    if status is not None:
        assert resp.status_code == status, "%s %s: %d %s" % (method, template, resp.status_code, resp.text)
    op = spec["paths"][template][method.lower()]
    code = str(resp.status_code)
    assert code in op["responses"], "%s %s answered undeclared %s: %s" % (
        method, template, code, resp.text)
    declared = resolve(spec, op["responses"][code])
    for name, header in declared.get("headers", {}).items():
        header = resolve(spec, header)
        if name not in resp.headers:
            assert not header.get("required"), "%s %s %s: no %s header" % (method, template, code, name)
            continue
        value = resp.headers[name]
        hschema = resolve(spec, header["schema"])
        if hschema.get("type") == "integer":
            assert re.fullmatch(r"[0-9]+", value), "%s: %r" % (name, value)
            value = int(value)
        errors = validate(spec, header["schema"], value, name)
        assert not errors, errors
    content = declared.get("content")
    if not content:
        assert resp.content == b"", "%s %s %s: unexpected body %r" % (method, template, code, resp.content)
        return None
    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
    assert ctype in content, "%s %s %s: Content-Type %r, declared %s" % (
        method, template, code, ctype, list(content))
    if ctype != "application/json":
        return resp.text
    body = resp.json()
    errors = validate(spec, content[ctype]["schema"], body)
    assert not errors, "%s %s %s: %s\nbody: %s" % (method, template, code, errors, body)
    if resp.status_code >= 400:
        assert body["error"]["code"] in CODES_BY_STATUS[resp.status_code], body
        assert body["error"]["request_id"] == resp.headers["X-Request-Id"]
    return body


def test_live_health_and_jwks(spec, server):
    s = server.session()
    check(spec, s.get(server.url + "/healthz"), "GET", "/healthz", 200)
    check(spec, s.get(server.url + "/readyz"), "GET", "/readyz", 200)
    check(spec, s.get(server.url + "/metrics"), "GET", "/metrics", 200)
    jwks = check(spec, s.get(server.url + "/v1/auth/jwks"), "GET", "/v1/auth/jwks", 200)
    assert jwks["keys"]


def test_live_auth_flow(spec, server):
    s = server.session()
    pair = check(spec, s.post(server.url + "/v1/auth/login",
                              json={"email": server.admin_email, "password": server.admin_password}),
                 "POST", "/v1/auth/login", 200)
    check(spec, s.post(server.url + "/v1/auth/login",
                       json={"email": server.admin_email, "password": "wrong-password-123"}),
          "POST", "/v1/auth/login", 401)
    check(spec, s.post(server.url + "/v1/auth/login",
                       json={"email": server.admin_email, "password": "x", "extra": 1}),
          "POST", "/v1/auth/login", 400)
    check(spec, s.post(server.url + "/v1/auth/login", data="{}",
                       headers={"Content-Type": "text/plain"}),
          "POST", "/v1/auth/login", 415)
    check(spec, s.post(server.url + "/v1/auth/login",
                       json={"email": "a" * 9000 + "@example.test", "password": "x"}),
          "POST", "/v1/auth/login", 413)
    pair2 = check(spec, s.post(server.url + "/v1/auth/refresh",
                               json={"refresh_token": pair["refresh_token"]}),
                  "POST", "/v1/auth/refresh", 200)
    a = server.session(pair2["access_token"])
    me = check(spec, a.get(server.url + "/v1/me"), "GET", "/v1/me", 200)
    assert me["role"] == "platform_admin" and me["tenant_id"] is None
    check(spec, s.get(server.url + "/v1/me"), "GET", "/v1/me", 401)
    check(spec, a.post(server.url + "/v1/auth/logout",
                       json={"refresh_token": pair2["refresh_token"]}),
          "POST", "/v1/auth/logout", 204)
    check(spec, s.post(server.url + "/v1/auth/refresh",
                       json={"refresh_token": pair2["refresh_token"]}),
          "POST", "/v1/auth/refresh", 401)


def test_live_tenants(spec, server):
    s = server.session(server.admin_token())
    u = server.url
    created = check(spec, s.post(u + "/v1/tenants", json={
        "name": unique("oas"), "admin": {"email": unique("oas") + "@example.test",
                                         "password": TENANT_ADMIN_PASSWORD}}),
        "POST", "/v1/tenants", 201)
    tid = created["id"]
    check(spec, s.get(u + "/v1/tenants/" + tid), "GET", "/v1/tenants/{id}", 200)
    listed = check(spec, s.get(u + "/v1/tenants", params={"limit": 500}), "GET", "/v1/tenants", 200)
    assert tid in [t["id"] for t in listed["items"]]
    check(spec, s.get(u + "/v1/tenants", params={"limit": 0}), "GET", "/v1/tenants", 400)
    check(spec, s.get(u + "/v1/tenants", params={"limit": 501}), "GET", "/v1/tenants", 400)
    check(spec, s.patch(u + "/v1/tenants/" + tid, json={"name": unique("oas-renamed")}),
          "PATCH", "/v1/tenants/{id}", 200)
    quotas = {"cpu_cores": 2, "memory_mb": 4096, "containers": 10, "storage_mb": 2048}
    t = check(spec, s.put(u + "/v1/tenants/" + tid + "/quotas", json=quotas),
              "PUT", "/v1/tenants/{id}/quotas", 200)
    assert t["quotas"] == quotas
    check(spec, s.put(u + "/v1/tenants/" + tid + "/quotas", json={"cpu_cores": 2}),
          "PUT", "/v1/tenants/{id}/quotas", 400)
    check(spec, s.post(u + "/v1/tenants", json={"name": unique("oas"), "bogus": True}),
          "POST", "/v1/tenants", 400)
    check(spec, s.get(u + "/v1/tenants/ten_" + "0" * 32), "GET", "/v1/tenants/{id}", 404)
    check(spec, s.delete(u + "/v1/tenants/" + tid), "DELETE", "/v1/tenants/{id}", 204)
    check(spec, s.get(u + "/v1/tenants/" + tid), "GET", "/v1/tenants/{id}", 404)


def test_live_tenant_resources(spec, server):
    u = server.url
    admin_email = unique("oas-admin") + "@example.test"
    server.create_tenant(unique("oas"), admin_email)
    token = server.login(admin_email, TENANT_ADMIN_PASSWORD)["access_token"]
    s = server.session(token)

    me = check(spec, s.get(u + "/v1/me"), "GET", "/v1/me", 200)
    assert me["role"] == "admin" and me["tenant_id"]
    check(spec, s.get(u + "/v1/quotas"), "GET", "/v1/quotas", 200)
    check(spec, s.get(u + "/v1/tenants"), "GET", "/v1/tenants", 403)

    email = unique("oas-user") + "@example.test"
    user = check(spec, s.post(u + "/v1/users", json={
        "email": email, "password": "developer-password-1", "role": "developer"}),
        "POST", "/v1/users", 201)
    check(spec, s.post(u + "/v1/users", json={
        "email": email, "password": "developer-password-1", "role": "developer"}),
        "POST", "/v1/users", 409)
    check(spec, s.post(u + "/v1/users", json={
        "email": unique("oas-user") + "@example.test", "password": "short", "role": "developer"}),
        "POST", "/v1/users", 400)
    check(spec, s.post(u + "/v1/users", json={
        "email": unique("oas-user") + "@example.test", "password": "developer-password-1",
        "role": "root"}), "POST", "/v1/users", 400)
    check(spec, s.get(u + "/v1/users/" + user["id"]), "GET", "/v1/users/{id}", 200)
    page = check(spec, s.get(u + "/v1/users", params={"limit": 1}), "GET", "/v1/users", 200)
    assert len(page["items"]) == 1 and page["next_cursor"]
    page2 = check(spec, s.get(u + "/v1/users", params={"limit": 1, "cursor": page["next_cursor"]}),
                  "GET", "/v1/users", 200)
    assert page2["items"][0]["id"] > page["items"][0]["id"]
    changed = check(spec, s.patch(u + "/v1/users/" + user["id"], json={"role": "operator"}),
                    "PATCH", "/v1/users/{id}", 200)
    assert changed["role"] == "operator"

    dev = server.session(server.login(email, "developer-password-1")["access_token"])
    check(spec, dev.get(u + "/v1/users"), "GET", "/v1/users", 403)

    key = check(spec, s.post(u + "/v1/api-keys", json={"name": unique("ci"), "role": "readonly"}),
                "POST", "/v1/api-keys", 201)
    assert key["key"].startswith("odk_")
    listed = check(spec, s.get(u + "/v1/api-keys"), "GET", "/v1/api-keys", 200)
    assert key["id"] in [k["id"] for k in listed["items"]]
    check(spec, server.session(key["key"]).get(u + "/v1/me"), "GET", "/v1/me", 200)
    check(spec, s.delete(u + "/v1/api-keys/" + key["id"]), "DELETE", "/v1/api-keys/{id}", 204)
    check(spec, server.session(key["key"]).get(u + "/v1/me"), "GET", "/v1/me", 401)
    check(spec, s.delete(u + "/v1/api-keys/" + key["id"]), "DELETE", "/v1/api-keys/{id}", 404)

    check(spec, s.delete(u + "/v1/users/" + user["id"]), "DELETE", "/v1/users/{id}", 204)
    check(spec, s.get(u + "/v1/users/" + user["id"]), "GET", "/v1/users/{id}", 404)


def test_live_error_carries_client_request_id(spec, server):
    r = server.session().get(server.url + "/v1/me", headers={"X-Request-Id": "oas-test.1:a_b-c"})
    body = check(spec, r, "GET", "/v1/me", 401)
    assert r.headers["X-Request-Id"] == "oas-test.1:a_b-c"
    assert body["error"]["request_id"] == "oas-test.1:a_b-c"
    r = server.session().get(server.url + "/v1/me", headers={"X-Request-Id": "bad id!"})
    body = check(spec, r, "GET", "/v1/me", 401)
    assert r.headers["X-Request-Id"] != "bad id!"
