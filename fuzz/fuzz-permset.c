/*
 * fuzz-permset.c — permission-set rules, the body of PUT /v1/permission-sets/{name}:
 *
 *   1. the input as any JSON value (json_loadb, duplicates refused) and, wrapped as
 *      {"rules": <input>}, through jsonx_parse_object as the API reads it, each into
 *      permset_rules_parse; accepted rules are evaluated against fixed requests and
 *      the lines of the input, and fed to authz_decide for every role;
 *   2. the input split at '\n' and NUL into strings, each checked with
 *      permset_pattern_validate, and each pair with permset_path_match.
 *
 * Oracles (abort on violation): parse returns 0, ODX_EINVAL or ODX_ENOMEM; a refusal
 * leaves *out untouched and writes a NUL-terminated message naming the rule index
 * when there is one; accepted rules are exactly the JSON items (effect, method,
 * path, set) and their paths validate; permset_evaluate equals a reference
 * (any matching deny, else any matching allow, else none) with *set written only on
 * a decision; validation and matching agree with independent reference versions
 * written from the header's contract (matching compared on paths without empty
 * segments, the only ones the router lets through); authz_decide keeps its fixed
 * points (PUBLIC and, for every role, AUTHENTICATED open; PLATFORM never opened by an
 * allow; an Admin's tenant settings never denied by a set).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authz/authz.h"
#include "authz/permset.h"
#include "core/err.h"
#include "core/jsonx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SET_NAME  "fuzz-set"
#define MAX_LINES 32

static const struct {
	const char *method, *path;
} requests[] = {
    {"GET", "/v1/me"},
    {"GET", "/v1/deployments"},
    {"GET", "/v1/deployments/d1"},
    {"POST", "/v1/deployments/d1/scale"},
    {"DELETE", "/v1/secrets/s1"},
    {"PUT", "/v1/permission-sets/ops"},
    {"PATCH", "/v1/users/u1"},
    {"GET", "/v1/audit/export"},
    {"POST", "/v1/tenants"},
    {"GET", "/"},
    {"GET", "/v1/"},
};

/* ---- references, written from permset.h, not from permset.c ------------- */

static bool ref_seg_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

/* Splits "/a/b" into segments (pointer + length); false when not starting with '/'. */
static bool ref_split(const char *s, const char *seg[], size_t len[], size_t *n, size_t max)
{
	if (s[0] != '/')
		return false;
	*n = 0;
	const char *p = s + 1;
	for (;;) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (*n == max)
			return false;
		seg[*n] = p;
		len[(*n)++] = l;
		if (!e)
			return true;
		p = e + 1;
	}
}

static bool ref_pattern_valid(const char *p)
{
	size_t total = strlen(p);
	if (total >= PERMSET_PATH_MAX)
		return false;
	const char *seg[PERMSET_PATH_MAX];
	size_t len[PERMSET_PATH_MAX], n;
	if (!ref_split(p, seg, len, &n, PERMSET_PATH_MAX))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (len[i] == 0)
			return false;
		if (len[i] == 1 && seg[i][0] == '*')
			continue;
		if (len[i] == 2 && seg[i][0] == '*' && seg[i][1] == '*') {
			if (i != n - 1)
				return false;
			continue;
		}
		for (size_t j = 0; j < len[i]; j++)
			if (!ref_seg_char((unsigned char)seg[i][j]))
				return false;
	}
	return true;
}

/* A request path as the router passes it: "/" then non-empty segments. */
static bool ref_path_clean(const char *s)
{
	size_t n = strlen(s);
	return n >= 2 && s[0] == '/' && s[n - 1] != '/' && !strstr(s, "//");
}

/* For a valid pattern and a clean path. */
static bool ref_match(const char *pattern, const char *path)
{
	static const char *ps[4096], *ss[4096];
	static size_t pl[4096], sl[4096];
	size_t np, ns;
	if (!ref_split(pattern, ps, pl, &np, 4096) || !ref_split(path, ss, sl, &ns, 4096))
		abort(); /* both start with '/' here */
	for (size_t i = 0; i < np; i++) {
		if (pl[i] == 2 && ps[i][0] == '*' && ps[i][1] == '*')
			return ns > i; /* the last segment: one or more left */
		if (i >= ns)
			return false;
		if (pl[i] == 1 && ps[i][0] == '*')
			continue;
		if (pl[i] != sl[i] || memcmp(ps[i], ss[i], pl[i]) != 0)
			return false;
	}
	return np == ns;
}

static enum permset_effect ref_evaluate(const struct permset_rules *r, const char *method,
					const char *path)
{
	bool allow = false;
	for (size_t i = 0; i < r->n; i++) {
		const struct permset_rule *rule = &r->rules[i];
		if (strcmp(rule->method, "*") != 0 && strcmp(rule->method, method) != 0)
			continue;
		if (!permset_path_match(rule->path, path))
			continue;
		if (rule->effect == PERMSET_DENY)
			return PERMSET_DENY;
		allow = true;
	}
	return allow ? PERMSET_ALLOW : PERMSET_NONE;
}

/* ---- checks -------------------------------------------------------------- */

static void check_evaluate(const struct permset_rules *r, const char *method, const char *path)
{
	static const char sentinel[] = "sentinel";
	const char *set = sentinel;
	enum permset_effect got = permset_evaluate(r, method, path, &set);
	if (got != ref_evaluate(r, method, path))
		abort();
	if (got == PERMSET_NONE) {
		if (set != sentinel)
			abort();
	} else if (!set || strcmp(set, SET_NAME) != 0) {
		abort();
	}
}

static void check_decide(const struct permset_rules *r, const char *method, const char *path)
{
	static const enum role roles[] = {ROLE_READONLY, ROLE_DEVELOPER, ROLE_OPERATOR, ROLE_ADMIN};
	struct principal p;
	memset(&p, 0, sizeof(p));
	memcpy(p.id, "usr_fuzz", 9);
	memcpy(p.tenant_id, "ten_fuzz", 9);
	const char *unused = NULL;
	enum permset_effect e = permset_evaluate(r, method, path, &unused);
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		p.role = roles[i];
		for (int perm = PERM_PUBLIC; perm < PERM_COUNT; perm++) {
			const char *set = NULL;
			enum authz_reason got =
			    authz_decide(&p, (enum perm_id)perm, true, r, method, path, &set);
			enum authz_reason role = authz_check(&p, (enum perm_id)perm, true);
			bool exempt = perm == PERM_PUBLIC || perm == PERM_AUTHENTICATED ||
				      (perm == PERM_TENANT_SETTINGS && p.role == ROLE_ADMIN);
			enum authz_reason want;
			if (perm == PERM_PUBLIC)
				want = AUTHZ_OK;
			else if (e == PERMSET_DENY)
				want = exempt ? role : AUTHZ_DENY_PERMISSION_SET;
			else if (e == PERMSET_ALLOW && perm != PERM_PLATFORM && perm != PERM_AGENT)
				want = AUTHZ_OK;
			else
				want = role;
			if (got != want)
				abort();
			/* the recovery cells stay open whatever the sets say */
			if (exempt && got != AUTHZ_OK)
				abort();
			if (got == AUTHZ_DENY_PERMISSION_SET &&
			    (!set || strcmp(set, SET_NAME) != 0))
				abort();
			if (perm == PERM_PLATFORM && got == AUTHZ_OK)
				abort();
		}
	}
}

/* Parses v; on success checks the rules item by item and evaluates them. */
static void check_parse(json_t *v, char *lines[], size_t nlines)
{
	struct permset_rules r, before;
	memset(&r, 0xa5, sizeof(r));
	before = r;
	char err[160];
	memset(err, 'X', sizeof(err));
	int rc = permset_rules_parse(v, SET_NAME, &r, err, sizeof(err));
	if (rc == ODX_ENOMEM)
		return;
	if (rc == ODX_EINVAL) {
		if (memcmp(&r, &before, sizeof(r)) != 0 || !memchr(err, '\0', sizeof(err)))
			abort();
		bool arrayish = json_is_array(v) && json_array_size(v) <= PERMSET_MAX_RULES;
		if (!arrayish) {
			if (strncmp(err, "rules must be", 13) != 0)
				abort();
		} else {
			/* "rule <index>: ..." with the index of an item */
			if (strncmp(err, "rule ", 5) != 0)
				abort();
			size_t idx = 0, k = 5;
			while (err[k] >= '0' && err[k] <= '9' && k < 10)
				idx = idx * 10 + (size_t)(err[k++] - '0');
			if (k == 5 || err[k] != ':' || idx >= json_array_size(v))
				abort();
		}
		return;
	}
	if (rc != 0 || !json_is_array(v) || r.n != json_array_size(v) || r.n > PERMSET_MAX_RULES)
		abort();
	for (size_t i = 0; i < r.n; i++) {
		const struct permset_rule *rule = &r.rules[i];
		const char *effect, *method, *path;
		if (json_unpack(json_array_get(v, i), "{s:s, s:s, s:s !}", "effect", &effect,
				"method", &method, "path", &path) != 0)
			abort();
		if (rule->effect != (strcmp(effect, "allow") == 0  ? PERMSET_ALLOW
				     : strcmp(effect, "deny") == 0 ? PERMSET_DENY
								   : PERMSET_NONE) ||
		    rule->effect == PERMSET_NONE)
			abort();
		if (strcmp(rule->method, method) != 0 || strcmp(rule->path, path) != 0 ||
		    strcmp(rule->set, SET_NAME) != 0)
			abort();
		if (permset_pattern_validate(rule->path) != 0 || !ref_pattern_valid(rule->path))
			abort();
	}
	for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		check_evaluate(&r, requests[i].method, requests[i].path);
		check_decide(&r, requests[i].method, requests[i].path);
	}
	for (size_t i = 0; i < nlines; i++) {
		check_evaluate(&r, "GET", lines[i]);
		check_evaluate(&r, "DELETE", lines[i]);
	}
	/* a subject with this set twice: still the same decisions */
	if (r.n > 0 && r.n <= PERMSET_MAX_RULES) {
		struct permset_rule twice[2 * PERMSET_MAX_RULES];
		memcpy(twice, r.rules, r.n * sizeof(twice[0]));
		memcpy(twice + r.n, r.rules, r.n * sizeof(twice[0]));
		struct permset_rules both;
		memset(&both, 0, sizeof(both));
		both.n = 2 * r.n;
		both.rules = twice; /* borrows r's strings */
		for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
			const char *s1 = NULL, *s2 = NULL;
			if (permset_evaluate(&r, requests[i].method, requests[i].path, &s1) !=
			    permset_evaluate(&both, requests[i].method, requests[i].path, &s2))
				abort();
		}
	}
	permset_rules_done(&r);
}

static void check_strings(char *lines[], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool valid = permset_pattern_validate(lines[i]) == 0;
		if (valid != ref_pattern_valid(lines[i]))
			abort();
		for (size_t j = 0; j < n; j++) {
			bool m = permset_path_match(lines[i], lines[j]);
			if (m && lines[j][0] != '/')
				abort();
			if (valid && strlen(lines[j]) < 4096 && ref_path_clean(lines[j]) &&
			    m != ref_match(lines[i], lines[j]))
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;

	/* the input's lines, NUL-terminated copies */
	char *copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	char *lines[MAX_LINES];
	size_t nlines = 0;
	for (size_t start = 0, i = 0; i <= size && nlines < MAX_LINES; i++) {
		if (i == size || copy[i] == '\n' || copy[i] == '\0') {
			copy[i] = '\0';
			lines[nlines++] = copy + start;
			start = i + 1;
		}
	}
	check_strings(lines, nlines);

	/* any JSON value, as a stored set is read back */
	json_error_t e;
	json_t *v =
	    json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
	if (v) {
		check_parse(v, lines, nlines);
		json_decref(v);
	}

	/* {"rules": <input>}, as the API reads a request body */
	static const char head[] = "{\"rules\": ", tail[] = "}";
	size_t blen = sizeof(head) - 1 + size + sizeof(tail) - 1;
	char *body = malloc(blen);
	if (body) {
		memcpy(body, head, sizeof(head) - 1);
		memcpy(body + sizeof(head) - 1, data, size);
		memcpy(body + sizeof(head) - 1 + size, tail, sizeof(tail) - 1);
		json_t *obj = NULL;
		char msg[JSONX_MSG_LEN];
		if (jsonx_parse_object(body, blen, &obj, msg) == 0) {
			json_t *rules = NULL;
			if (jsonx_unpack(obj, msg, "{s:o}", "rules", &rules) == 0)
				check_parse(rules, lines, nlines);
			json_decref(obj);
		}
		free(body);
	}
	free(copy);
	return 0;
}
