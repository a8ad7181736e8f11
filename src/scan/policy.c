/*
 * policy.c — gating policies: parsing, image matching, evaluation (see policy.h).
 *
 * A parsed policy keeps a deep copy of its JSON body; every string of the
 * struct points into that copy, so a policy is one json_t plus one block
 * (struct, exception array, pattern array) and frees in two calls.
 *
 * Evaluation walks the report once per policy and only looks at high and
 * critical findings (the only ones a rule counts). Active exceptions are
 * sorted by id so each alias costs one binary search.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "scan/policy.h"

/* ---- parsing ---- */

/* Bytes 0x21..0x7e only: ids and patterns are ASCII tokens without spaces. */
static bool token_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

/* Non-empty, at most max bytes, no control characters (free text: owner, reason). */
static bool text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* Settles the policy name in doc: body and path must agree; one of them must be there. */
static int name_resolve(json_t *doc, const char *body_name, const char *path_name,
			char msg[static JSONX_MSG_LEN])
{
	if (body_name && path_name && strcmp(body_name, path_name) != 0) {
		snprintf(msg, JSONX_MSG_LEN, "name in the body differs from the name in the path");
		return ODX_EINVAL;
	}
	const char *name = body_name ? body_name : path_name;
	if (!name) {
		snprintf(msg, JSONX_MSG_LEN, "name is required");
		return ODX_EINVAL;
	}
	if (name_validate(name, SCAN_POLICY_NAME_MAX) < 0) {
		snprintf(msg, JSONX_MSG_LEN,
			 "name must be 1-%d characters of [a-z0-9-], not starting with '-'",
			 SCAN_POLICY_NAME_MAX);
		return ODX_EINVAL;
	}
	if (!body_name && json_object_set_new(doc, "name", json_string(name)) < 0)
		return ODX_ENOMEM;
	return 0;
}

static int images_check(const json_t *images, char msg[static JSONX_MSG_LEN])
{
	if (!images)
		return 0;
	if (!json_is_array(images) || json_array_size(images) > SCAN_POLICY_MAX_IMAGES) {
		snprintf(msg, JSONX_MSG_LEN, "images must be an array of at most %d patterns",
			 SCAN_POLICY_MAX_IMAGES);
		return ODX_EINVAL;
	}
	size_t i;
	json_t *v;
	json_array_foreach(images, i, v)
	{
		if (!json_is_string(v) ||
		    !token_ok(json_string_value(v), SCAN_POLICY_PATTERN_MAX)) {
			snprintf(msg, JSONX_MSG_LEN,
				 "images[%zu] must be a pattern of 1-%d bytes without spaces", i,
				 SCAN_POLICY_PATTERN_MAX);
			return ODX_EINVAL;
		}
	}
	return 0;
}

static int max_high_get(const json_t *v, int64_t *out, char msg[static JSONX_MSG_LEN])
{
	if (!v || json_is_null(v)) {
		*out = -1;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > SCAN_POLICY_MAX_HIGH_MAX) {
		snprintf(msg, JSONX_MSG_LEN, "max_high must be an integer >= 0 or null");
		return ODX_EINVAL;
	}
	*out = json_integer_value(v);
	return 0;
}

static int exception_get(json_t *item, size_t i, struct scan_policy_exception *e,
			 char msg[static JSONX_MSG_LEN])
{
	char why[JSONX_MSG_LEN];
	if (!json_is_object(item) ||
	    jsonx_unpack(item, why, "{s:s, s:s, s:s, s:s}", "id", &e->id, "owner", &e->owner,
			 "reason", &e->reason, "expires_at", &e->expires_at) < 0) {
		snprintf(msg, JSONX_MSG_LEN,
			 "exceptions[%zu] needs exactly id, owner, reason and expires_at (strings)",
			 i);
		return ODX_EINVAL;
	}
	if (!token_ok(e->id, SCAN_POLICY_EXC_ID_MAX)) {
		snprintf(msg, JSONX_MSG_LEN, "exceptions[%zu].id must be 1-%d bytes without spaces",
			 i, SCAN_POLICY_EXC_ID_MAX);
		return ODX_EINVAL;
	}
	if (!text_ok(e->owner, SCAN_POLICY_OWNER_MAX) ||
	    !text_ok(e->reason, SCAN_POLICY_REASON_MAX)) {
		snprintf(msg, JSONX_MSG_LEN, "exceptions[%zu] needs a non-empty owner and reason",
			 i);
		return ODX_EINVAL;
	}
	if (time_parse_rfc3339(e->expires_at, &e->expires_ns) < 0) {
		snprintf(msg, JSONX_MSG_LEN,
			 "exceptions[%zu].expires_at must be an RFC 3339 UTC time (...Z)", i);
		return ODX_EINVAL;
	}
	return 0;
}

static int exceptions_get(json_t *arr, struct scan_policy *p, char msg[static JSONX_MSG_LEN])
{
	size_t i;
	json_t *item;
	json_array_foreach(arr, i, item)
	{
		int rc = exception_get(item, i, &p->exceptions[i], msg);
		if (rc < 0)
			return rc;
		for (size_t j = 0; j < i; j++) {
			if (strcasecmp(p->exceptions[j].id, p->exceptions[i].id) == 0) {
				snprintf(msg, JSONX_MSG_LEN,
					 "exceptions[%zu] repeats the id of exceptions[%zu]", i, j);
				return ODX_EINVAL;
			}
		}
	}
	p->nexceptions = json_array_size(arr);
	return 0;
}

/* One block: the struct, then the exceptions, then the pattern pointers (sizes capped above). */
static struct scan_policy *policy_alloc(size_t nimages, size_t nexc)
{
	size_t exc_bytes = nexc * sizeof(struct scan_policy_exception);
	char *b = calloc(1, sizeof(struct scan_policy) + exc_bytes + nimages * sizeof(char *));
	if (!b)
		return NULL;
	struct scan_policy *p = (struct scan_policy *)b;
	p->exceptions = (struct scan_policy_exception *)(b + sizeof(*p));
	p->images = (const char **)(b + sizeof(*p) + exc_bytes);
	return p;
}

/* Fills p from the checked parts of doc. */
static int policy_fill(struct scan_policy *p, json_t *doc, json_t *images, json_t *exceptions,
		       char msg[static JSONX_MSG_LEN])
{
	p->doc = doc;
	p->name = json_string_value(json_object_get(doc, "name"));
	p->nimages = json_array_size(images);
	for (size_t i = 0; i < p->nimages; i++)
		p->images[i] = json_string_value(json_array_get(images, i));
	return exceptions ? exceptions_get(exceptions, p, msg) : 0;
}

int scan_policy_parse(const json_t *body, const char *name_from_path, struct scan_policy **out,
		      char msg[static JSONX_MSG_LEN])
{
	struct scan_policy *p = NULL;
	const char *name = NULL;
	json_t *images = NULL, *max_high = NULL, *exceptions = NULL;
	int block_critical = 1, enabled = 1, rc;
	int64_t high_limit;
	if (!json_is_object(body)) {
		snprintf(msg, JSONX_MSG_LEN, "policy must be a JSON object");
		return ODX_EINVAL;
	}
	json_t *doc = json_deep_copy(body);
	if (!doc)
		return ODX_ENOMEM;
	rc = jsonx_unpack(doc, msg, "{s?s, s?o, s?b, s?o, s?o, s?b}", "name", &name, "images",
			  &images, "block_critical", &block_critical, "max_high", &max_high,
			  "exceptions", &exceptions, "enabled", &enabled);
	if (rc < 0)
		goto out;
	if ((rc = name_resolve(doc, name, name_from_path, msg)) < 0 ||
	    (rc = images_check(images, msg)) < 0 ||
	    (rc = max_high_get(max_high, &high_limit, msg)) < 0)
		goto out;
	if (exceptions && (!json_is_array(exceptions) ||
			   json_array_size(exceptions) > SCAN_POLICY_MAX_EXCEPTIONS)) {
		snprintf(msg, JSONX_MSG_LEN, "exceptions must be an array of at most %d items",
			 SCAN_POLICY_MAX_EXCEPTIONS);
		rc = ODX_EINVAL;
		goto out;
	}
	if (!(p = policy_alloc(json_array_size(images), json_array_size(exceptions)))) {
		rc = ODX_ENOMEM;
		goto out;
	}
	if ((rc = policy_fill(p, doc, images, exceptions, msg)) < 0)
		goto out;
	p->block_critical = block_critical;
	p->max_high = high_limit;
	p->enabled = enabled;
	*out = p;
	return 0;
out:
	free(p);
	json_decref(doc);
	return rc;
}

void scan_policy_free(struct scan_policy *p)
{
	if (!p)
		return;
	json_decref(p->doc);
	free(p);
}

static json_t *exceptions_to_json(const struct scan_policy *p)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < p->nexceptions; i++) {
		const struct scan_policy_exception *e = &p->exceptions[i];
		if (json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "id", e->id,
							 "owner", e->owner, "reason", e->reason,
							 "expires_at", e->expires_at)) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

json_t *scan_policy_to_json(const struct scan_policy *p)
{
	json_t *images = json_array();
	for (size_t i = 0; images && i < p->nimages; i++) {
		if (json_array_append_new(images, json_string(p->images[i])) < 0) {
			json_decref(images);
			images = NULL;
		}
	}
	json_t *max_high = p->max_high < 0 ? json_null() : json_integer(p->max_high);
	/* "o" steals the references, also when packing fails (or an argument is NULL). */
	return json_pack("{s:s, s:o, s:b, s:o, s:o, s:b}", "name", p->name, "images", images,
			 "block_critical", p->block_critical, "max_high", max_high, "exceptions",
			 exceptions_to_json(p), "enabled", p->enabled);
}

/* ---- image references ---- */

static bool ref_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == '/' || c == ':' || c == '@' || c == '+';
}

/* Checks characters and '/'-separated components of ref (length n, digest excluded). */
static bool ref_name_ok(const char *s, size_t n)
{
	if (n == 0 || s[0] == '/' || s[n - 1] == '/' || s[n - 1] == ':')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!ref_char_ok(s[i]) || s[i] == '@' || (s[i] == '/' && s[i + 1] == '/'))
			return false;
	return true;
}

/* A first component names a registry when it has a '.' or ':' or is "localhost" (Docker's rule). */
static bool is_registry(const char *s, size_t n)
{
	return memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && !memcmp(s, "localhost", 9));
}

int scan_image_normalise(const char *ref, char *out, size_t cap)
{
	char buf[SCAN_IMAGE_NORM_SIZE];
	size_t len = strnlen(ref, SCAN_IMAGE_REF_MAX + 1);
	if (len == 0 || len > SCAN_IMAGE_REF_MAX)
		return ODX_EINVAL;
	const char *at = strchr(ref, '@');
	size_t name_len = at ? (size_t)(at - ref) : len;
	if (!ref_name_ok(ref, name_len) || (at && (!strchr(at + 1, ':') || strchr(at + 1, '@'))))
		return ODX_EINVAL;
	for (const char *c = at; c && *c; c++)
		if (!ref_char_ok(*c))
			return ODX_EINVAL;
	const char *slash = memchr(ref, '/', name_len), *domain = "docker.io", *rest = ref;
	int domain_len = 9;
	if (slash && is_registry(ref, (size_t)(slash - ref))) {
		rest = slash + 1;
		if ((size_t)(slash - ref) != 15 || memcmp(ref, "index.docker.io", 15) != 0) {
			domain = ref;
			domain_len = (int)(slash - ref);
		}
	}
	int rest_len = (int)(name_len - (size_t)(rest - ref));
	bool hub = domain_len == 9 && !memcmp(domain, "docker.io", 9);
	bool library = hub && !memchr(rest, '/', (size_t)rest_len);
	const char *last_slash = memrchr(rest, '/', (size_t)rest_len);
	const char *tag_from = last_slash ? last_slash : rest;
	bool tagged = memchr(tag_from, ':', (size_t)(rest_len - (tag_from - rest))) != NULL;
	int n = snprintf(buf, sizeof(buf), "%.*s/%s%.*s%s%s", domain_len, domain,
			 library ? "library/" : "", rest_len, rest, tagged || at ? "" : ":latest",
			 at ? at : "");
	if (n < 0 || (size_t)n >= sizeof(buf))
		return ODX_EINVAL;
	if ((size_t)n >= cap)
		return ODX_ETOOBIG;
	memcpy(out, buf, (size_t)n + 1);
	return 0;
}

/* Glob with '*' (any run, '/' included) and '?' (one byte); backtracks to the last '*' only. */
static bool glob_match(const char *p, const char *s)
{
	const char *star = NULL, *resume = NULL;
	while (*s) {
		if (*p == '*') {
			star = p++;
			resume = s;
		} else if (*p == '?' || *p == *s) {
			p++;
			s++;
		} else if (star) {
			p = star + 1;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

bool scan_policy_applies(const struct scan_policy *p, const char *image)
{
	char norm[SCAN_IMAGE_NORM_SIZE];
	if (p->nimages == 0)
		return true;
	bool have_norm = scan_image_normalise(image, norm, sizeof(norm)) == 0;
	for (size_t i = 0; i < p->nimages; i++)
		if (glob_match(p->images[i], image) ||
		    (have_norm && glob_match(p->images[i], norm)))
			return true;
	return false;
}

/* ---- evaluation ---- */

#define MARK_EXCEPTED 1u /* waived by the current policy's exceptions */
#define MARK_CAUSE    2u /* caused a block (any policy) */

struct eval {
	const struct scan_report *r;
	unsigned char *mark; /* per finding */
	json_t *policies, *applied;
	int64_t now_unix;
};

static bool policy_blocks_anything(const struct scan_policy *p)
{
	return p->block_critical || p->max_high >= 0;
}

static bool exception_active(const struct scan_policy_exception *e, int64_t now_unix)
{
	if (now_unix > INT64_MAX / NSEC_PER_SEC)
		return false;
	if (now_unix < INT64_MIN / NSEC_PER_SEC)
		return true;
	return now_unix * NSEC_PER_SEC < e->expires_ns;
}

static int exc_cmp(const void *a, const void *b)
{
	const struct scan_policy_exception *x = *(const struct scan_policy_exception *const *)a;
	const struct scan_policy_exception *y = *(const struct scan_policy_exception *const *)b;
	return strcasecmp(x->id, y->id);
}

static int exc_key_cmp(const void *key, const void *elem)
{
	return strcasecmp(key, (*(const struct scan_policy_exception *const *)elem)->id);
}

/* The active exception matching the finding's id or an alias, or NULL. */
static const struct scan_policy_exception *
exception_find(const struct scan_finding *f, const struct scan_policy_exception *const *active,
	       size_t nactive)
{
	const struct scan_policy_exception *const *hit = NULL;
	if (nactive == 0)
		return NULL;
	if (f->id)
		hit = bsearch(f->id, active, nactive, sizeof(*active), exc_key_cmp);
	for (size_t a = 0; !hit && a < f->naliases; a++)
		hit = bsearch(f->aliases[a], active, nactive, sizeof(*active), exc_key_cmp);
	return hit ? *hit : NULL;
}

static int applied_add(struct eval *ev, const struct scan_policy *p, const bool *used)
{
	for (size_t i = 0; i < p->nexceptions; i++) {
		const struct scan_policy_exception *e = &p->exceptions[i];
		if (used[i] && json_array_append_new(
				   ev->applied,
				   json_pack("{s:s, s:s, s:s, s:s}", "policy", p->name, "id", e->id,
					     "owner", e->owner, "expires_at", e->expires_at)) < 0)
			return ODX_ENOMEM;
	}
	return 0;
}

/* Counts p's unwaived critical and high findings; marks waived ones and records applied exceptions.
 */
static int policy_count(const struct scan_policy *p, struct eval *ev, size_t *ncrit, size_t *nhigh)
{
	const struct scan_policy_exception *active[SCAN_POLICY_MAX_EXCEPTIONS];
	bool used[SCAN_POLICY_MAX_EXCEPTIONS] = {false};
	size_t nactive = 0;
	for (size_t i = 0; i < p->nexceptions; i++)
		if (exception_active(&p->exceptions[i], ev->now_unix))
			active[nactive++] = &p->exceptions[i];
	qsort(active, nactive, sizeof(active[0]), exc_cmp);
	*ncrit = *nhigh = 0;
	for (size_t i = 0; i < ev->r->nfindings; i++) {
		const struct scan_finding *f = &ev->r->findings[i];
		ev->mark[i] &= (unsigned char)~MARK_EXCEPTED;
		if (f->severity != SCAN_SEV_CRITICAL && f->severity != SCAN_SEV_HIGH)
			continue;
		const struct scan_policy_exception *e = exception_find(f, active, nactive);
		if (e) {
			used[e - p->exceptions] = true;
			ev->mark[i] |= MARK_EXCEPTED;
		} else if (f->severity == SCAN_SEV_CRITICAL) {
			(*ncrit)++;
		} else {
			(*nhigh)++;
		}
	}
	return applied_add(ev, p, used);
}

static void mark_causes(struct eval *ev, enum scan_severity sev)
{
	for (size_t i = 0; i < ev->r->nfindings; i++)
		if (ev->r->findings[i].severity == sev && !(ev->mark[i] & MARK_EXCEPTED))
			ev->mark[i] |= MARK_CAUSE;
}

static int reason_add(struct eval *ev, const char *policy, json_t *reason)
{
	return json_array_append_new(ev->policies,
				     json_pack("{s:s, s:o}", "name", policy, "reason", reason));
}

/* Applies one enabled policy that covers the image; *blocked set when a rule fired. */
static int policy_check(const struct scan_policy *p, struct eval *ev, bool *blocked)
{
	size_t ncrit, nhigh;
	if (!ev->r) {
		if (!policy_blocks_anything(p))
			return 0;
		*blocked = true;
		return reason_add(ev, p->name, json_string("no completed scan")) < 0 ? ODX_ENOMEM
										     : 0;
	}
	int rc = policy_count(p, ev, &ncrit, &nhigh);
	if (rc < 0)
		return rc;
	if (p->block_critical && ncrit > 0) {
		*blocked = true;
		mark_causes(ev, SCAN_SEV_CRITICAL);
		if (reason_add(ev, p->name, json_string("critical findings")) < 0)
			return ODX_ENOMEM;
	}
	if (p->max_high >= 0 && nhigh > (uint64_t)p->max_high) {
		*blocked = true;
		mark_causes(ev, SCAN_SEV_HIGH);
		if (reason_add(ev, p->name,
			       json_sprintf("high findings %zu > %lld", nhigh,
					    (long long)p->max_high)) < 0)
			return ODX_ENOMEM;
	}
	return 0;
}

static json_t *engines_to_json(unsigned engines)
{
	json_t *arr = json_array();
	for (int e = 0; arr && e < SCAN_ENGINE_COUNT; e++) {
		if ((engines & SCAN_ENGINE_BIT(e)) &&
		    json_array_append_new(arr, json_string(scan_engine_name(e))) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *strings_to_json(const char *const *s, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		if (json_array_append_new(arr, json_string(s[i])) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *finding_brief(const struct scan_finding *f)
{
	return json_pack("{s:s, s:{s:s?, s:s?}, s:s, s:o, s:o}", "id", f->id, "package", "name",
			 f->pkg.name, "version", f->pkg.version, "severity",
			 scan_severity_name(f->severity), "engines", engines_to_json(f->engines),
			 "fixed_versions", strings_to_json(f->fixed_versions, f->nfixed));
}

/* The causing findings, critical first, then high, each in report order; capped. */
static int findings_add(struct eval *ev, json_t *verdict)
{
	json_t *list = json_array();
	size_t total = 0;
	if (!list || json_object_set_new(verdict, "findings", list) < 0)
		return ODX_ENOMEM;
	for (int sev = SCAN_SEV_CRITICAL; ev->r && sev >= SCAN_SEV_HIGH; sev--) {
		for (size_t i = 0; i < ev->r->nfindings; i++) {
			const struct scan_finding *f = &ev->r->findings[i];
			if (!(ev->mark[i] & MARK_CAUSE) || (int)f->severity != sev)
				continue;
			if (total++ < SCAN_VERDICT_MAX_FINDINGS &&
			    json_array_append_new(list, finding_brief(f)) < 0)
				return ODX_ENOMEM;
		}
	}
	return json_object_set_new(verdict, "findings_total", json_integer((json_int_t)total)) < 0
		   ? ODX_ENOMEM
		   : 0;
}

static int evaluate_all(const struct scan_policy *const *policies, size_t n, const char *image,
			struct eval *ev, bool *blocked)
{
	for (size_t i = 0; i < n; i++) {
		const struct scan_policy *p = policies[i];
		if (!p->enabled || !scan_policy_applies(p, image))
			continue;
		int rc = policy_check(p, ev, blocked);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int scan_policy_evaluate(const struct scan_policy *const *policies, size_t n, const char *image,
			 const struct scan_report *merged, int64_t now_unix, json_t **verdict_out)
{
	struct eval ev = {.r = merged, .now_unix = now_unix};
	json_t *verdict = NULL;
	bool blocked = false;
	int rc = ODX_ENOMEM;
	if (!image || (n > 0 && !policies))
		return ODX_EINVAL;
	if (merged && !(ev.mark = calloc(merged->nfindings ? merged->nfindings : 1, 1)))
		goto out;
	ev.policies = json_array();
	ev.applied = json_array();
	if (!ev.policies || !ev.applied)
		goto out;
	if ((rc = evaluate_all(policies, n, image, &ev, &blocked)) < 0)
		goto out;
	rc = ODX_ENOMEM;
	verdict = json_pack("{s:b, s:O, s:O}", "blocked", blocked, "policies", ev.policies,
			    "exceptions_applied", ev.applied);
	if (!verdict || findings_add(&ev, verdict) < 0)
		goto out;
	*verdict_out = verdict;
	verdict = NULL;
	rc = blocked ? 1 : 0;
out:
	json_decref(verdict);
	json_decref(ev.policies);
	json_decref(ev.applied);
	free(ev.mark);
	return rc;
}
