/* permset.c — see permset.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz/permset.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/jsonx.h"
#include "core/timeutil.h"
#include "crypto/random.h"

#define CACHE_SLOTS 64 /* per thread; a slot holds one subject's compiled rules */

static atomic_uint_fast64_t generation = 1;

int permset_name_validate(const char *name)
{
	return name_validate(name, PERMSET_NAME_MAX);
}

static bool segment_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

int permset_pattern_validate(const char *p)
{
	size_t n = strlen(p);
	if (n < 2 || n >= PERMSET_PATH_MAX || p[0] != '/' || p[n - 1] == '/')
		return ODX_EINVAL;
	const char *seg = p + 1;
	while (*seg) {
		const char *end = strchr(seg, '/');
		size_t len = end ? (size_t)(end - seg) : strlen(seg);
		if (len == 0)
			return ODX_EINVAL; /* "//" */
		bool star = len == 1 && seg[0] == '*', rest = len == 2 && !memcmp(seg, "**", 2);
		if (rest && end)
			return ODX_EINVAL; /* "**" only as the last segment */
		for (size_t i = 0; !star && !rest && i < len; i++)
			if (!segment_char_ok(seg[i]))
				return ODX_EINVAL;
		seg = end ? end + 1 : seg + len;
	}
	return 0;
}

bool permset_path_match(const char *pattern, const char *path)
{
	const char *p = pattern, *s = path;
	if (*p++ != '/' || *s++ != '/')
		return false;
	for (;;) {
		const char *pe = strchr(p, '/'), *se = strchr(s, '/');
		size_t plen = pe ? (size_t)(pe - p) : strlen(p);
		size_t slen = se ? (size_t)(se - s) : strlen(s);
		if (plen == 2 && !memcmp(p, "**", 2))
			return slen > 0; /* one or more segments left */
		if (slen == 0)
			return false;
		if (!(plen == 1 && *p == '*') && (plen != slen || memcmp(p, s, plen) != 0))
			return false;
		if (!pe || !se)
			return !pe && !se;
		p = pe + 1;
		s = se + 1;
	}
}

/* The canonical method string, or NULL when m is not one. */
static const char *method_canonical(const char *m)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "*"};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(m, methods[i]) == 0)
			return methods[i];
	return NULL;
}

/* Checks one rule object; fills r except its path and set. */
static int rule_check(json_t *item, size_t i, struct permset_rule *r, const char **path, char *err,
		      size_t errlen)
{
	const char *effect, *method;
	char msg[JSONX_MSG_LEN];
	if (!json_is_object(item) || jsonx_unpack(item, msg, "{s:s, s:s, s:s}", "effect", &effect,
						  "method", &method, "path", path) < 0) {
		snprintf(err, errlen, "rule %zu: needs exactly effect, method and path", i);
		return ODX_EINVAL;
	}
	if (strcmp(effect, "allow") && strcmp(effect, "deny")) {
		snprintf(err, errlen, "rule %zu: effect must be allow or deny", i);
		return ODX_EINVAL;
	}
	if (!(r->method = method_canonical(method))) {
		snprintf(err, errlen, "rule %zu: method must be GET, POST, PUT, PATCH, DELETE or *",
			 i);
		return ODX_EINVAL;
	}
	if (permset_pattern_validate(*path) < 0) {
		snprintf(
		    err, errlen,
		    "rule %zu: path must be /segments, with * for one segment and ** only last", i);
		return ODX_EINVAL;
	}
	r->effect = effect[0] == 'a' ? PERMSET_ALLOW : PERMSET_DENY;
	return 0;
}

int permset_rules_parse(json_t *rules, const char *set, struct permset_rules *out, char *err,
			size_t errlen)
{
	if (!json_is_array(rules) || json_array_size(rules) > PERMSET_MAX_RULES) {
		snprintf(err, errlen, "rules must be an array of at most %d rules",
			 PERMSET_MAX_RULES);
		return ODX_EINVAL;
	}
	size_t n = json_array_size(rules), pool_len = strlen(set) + 1;
	struct permset_rule *r = calloc(n ? n : 1, sizeof(*r));
	const char *paths[PERMSET_MAX_RULES];
	if (!r)
		return ODX_ENOMEM;
	size_t i;
	json_t *item;
	json_array_foreach(rules, i, item)
	{
		if (rule_check(item, i, &r[i], &paths[i], err, errlen) < 0) {
			free(r);
			return ODX_EINVAL;
		}
		pool_len += strlen(paths[i]) + 1;
	}
	/* One pool per set: its name first, then each path. */
	char *pool = malloc(pool_len), *w = pool;
	if (!pool) {
		free(r);
		return ODX_ENOMEM;
	}
	memcpy(w, set, strlen(set) + 1);
	w += strlen(set) + 1;
	for (i = 0; i < n; i++) {
		size_t len = strlen(paths[i]) + 1;
		memcpy(w, paths[i], len);
		r[i].path = w;
		r[i].set = pool;
		w += len;
	}
	memset(out, 0, sizeof(*out));
	out->rules = r;
	out->n = n;
	out->pools[0] = pool;
	out->npools = 1;
	return 0;
}

void permset_rules_done(struct permset_rules *r)
{
	free(r->rules);
	for (size_t i = 0; i < r->npools; i++)
		free(r->pools[i]);
	memset(r, 0, sizeof(*r));
}

enum permset_effect permset_evaluate(const struct permset_rules *r, const char *method,
				     const char *path, const char **set)
{
	enum permset_effect result = PERMSET_NONE;
	for (size_t i = 0; i < r->n; i++) {
		const struct permset_rule *rule = &r->rules[i];
		if (result == PERMSET_ALLOW && rule->effect == PERMSET_ALLOW)
			continue; /* already allowed: only a deny can change the answer */
		if ((rule->method[0] != '*' && strcmp(rule->method, method) != 0) ||
		    !permset_path_match(rule->path, path))
			continue;
		*set = rule->set;
		if (rule->effect == PERMSET_DENY)
			return PERMSET_DENY;
		result = PERMSET_ALLOW;
	}
	return result;
}

/* ---- storage ------------------------------------------------------------ */

struct set_row {
	json_t *list; /* list mode: append objects */
	json_t *obj;  /* get mode */
};

static json_t *set_json(struct store_stmt *q)
{
	json_error_t e;
	const char *rules_text = store_col_text(q, 1);
	json_t *rules = json_loads(rules_text, 0, &e);
	char c[TIME_RFC3339_LEN], u[TIME_RFC3339_LEN];
	time_format_rfc3339(store_col_int(q, 2), c);
	time_format_rfc3339(store_col_int(q, 3), u);
	json_t *subjects = json_loads(store_col_text(q, 4), 0, &e);
	return json_pack("{s:s, s:o, s:o, s:s, s:s}", "name", store_col_text(q, 0), "rules",
			 rules ? rules : json_array(), "subjects",
			 subjects ? subjects : json_array(), "created_at", c, "updated_at", u);
}

static int append_set(struct store_stmt *q, void *arg)
{
	struct set_row *r = arg;
	return json_array_append_new(r->list, set_json(q)) == 0 ? 0 : ODX_ENOMEM;
}

static int read_set(struct store_stmt *q, void *arg)
{
	struct set_row *r = arg;
	r->obj = set_json(q);
	return r->obj ? 0 : ODX_ENOMEM;
}

/* The subjects column is a JSON array built by SQL (json_group_array is in SQLite and, as
 * json_agg, in PostgreSQL). */
#define SET_SELECT                                                                                 \
	"SELECT s.name, s.rules, s.created_at, s.updated_at, "                                     \
	"(SELECT coalesce(json_group_array(m.subject_id), '[]') FROM permission_set_members m "    \
	"WHERE m.set_name = s.name) FROM permission_sets s "

int permset_list(struct store *s, const char *tenant_id, const char *after, int limit,
		 json_t **items)
{
	struct set_row r = {.list = json_array()};
	if (!r.list)
		return ODX_ENOMEM;
	int rc =
	    store_read(s, tenant_id, SET_SELECT "WHERE s.name > ? ORDER BY s.name LIMIT ?",
		       STORE_ARGS(S_TEXT(after ? after : ""), S_INT(limit + 1)), append_set, &r);
	if (rc < 0) {
		json_decref(r.list);
		return rc;
	}
	*items = r.list;
	return 0;
}

int permset_get(struct store *s, const char *tenant_id, const char *name, json_t **out)
{
	if (permset_name_validate(name) < 0)
		return ODX_ENOTFOUND;
	struct set_row r = {0};
	int rc = store_read_one(s, tenant_id, SET_SELECT "WHERE s.name = ?",
				STORE_ARGS(S_TEXT(name)), read_set, &r);
	if (rc == 0)
		*out = r.obj;
	return rc;
}

int permset_put(struct store *s, const char *tenant_id, const char *name, json_t *rules,
		bool create, json_t **out)
{
	char *text = jsonx_dump(rules);
	if (!text)
		return ODX_ENOMEM;
	int64_t now = time_now_ns();
	int rc;
	if (create)
		rc =
		    store_write(s, tenant_id,
				"INSERT INTO permission_sets (name, rules, created_at, updated_at) "
				"VALUES (?, ?, ?, ?)",
				STORE_ARGS(S_TEXT(name), S_TEXT(text), S_INT(now), S_INT(now)));
	else
		rc = store_write(
		    s, tenant_id,
		    "UPDATE permission_sets SET rules = ?, updated_at = ? WHERE name = ?",
		    STORE_ARGS(S_TEXT(text), S_INT(now), S_TEXT(name)));
	free(text);
	if (rc == 0)
		rc = ODX_ENOTFOUND;
	if (rc < 0)
		return rc;
	permset_invalidate();
	return permset_get(s, tenant_id, name, out);
}

int permset_delete(struct store *s, const char *tenant_id, const char *name)
{
	if (permset_name_validate(name) < 0)
		return ODX_ENOTFOUND;
	/* Members go with it (ON DELETE CASCADE). */
	int rc = store_write(s, tenant_id, "DELETE FROM permission_sets WHERE name = ?",
			     STORE_ARGS(S_TEXT(name)));
	if (rc == 0)
		rc = ODX_ENOTFOUND;
	if (rc < 0)
		return rc;
	permset_invalidate();
	return 0;
}

static int ignore_row(struct store_stmt *q, void *arg)
{
	(void)q;
	(void)arg;
	return 0;
}

int permset_assign(struct store *s, const char *tenant_id, const char *subject, json_t *names,
		   const char **missing)
{
	if (!json_is_array(names) || json_array_size(names) > PERMSET_MAX_PER_SUBJECT)
		return ODX_EINVAL;
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v) if (!json_is_string(v) ||
					    permset_name_validate(json_string_value(v)) <
						0) return ODX_EINVAL;
	struct store_tx *tx;
	int rc = store_tx_begin(s, tenant_id, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = store_exec(tx, "DELETE FROM permission_set_members WHERE subject_id = ?",
			STORE_ARGS(S_TEXT(subject)));
	json_array_foreach(names, i, v)
	{
		if (rc < 0)
			break;
		const char *name = json_string_value(v);
		rc = store_each(tx, "SELECT 1 FROM permission_sets WHERE name = ?",
				STORE_ARGS(S_TEXT(name)), ignore_row, NULL);
		if (rc == 0) {
			*missing = name;
			rc = ODX_ENOTFOUND;
			break;
		}
		if (rc > 0)
			rc = store_exec(tx,
					"INSERT INTO permission_set_members (subject_id, set_name) "
					"VALUES (?, ?) "
					"ON CONFLICT DO NOTHING",
					STORE_ARGS(S_TEXT(subject), S_TEXT(name)));
	}
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	rc = store_tx_commit(tx);
	if (rc == 0)
		permset_invalidate();
	return rc;
}

int permset_forget(struct store *s, const char *tenant_id, const char *subject)
{
	int rc =
	    store_write(s, tenant_id, "DELETE FROM permission_set_members WHERE subject_id = ?",
			STORE_ARGS(S_TEXT(subject)));
	if (rc < 0)
		return rc;
	permset_invalidate();
	return 0;
}

/* ---- the per-thread cache of compiled rules ----------------------------- */

struct cache_slot {
	char subject[ID_MAX_LEN];
	uint64_t gen;
	struct permset_rules rules;
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_free(void *p)
{
	struct cache_slot *c = p;
	for (size_t i = 0; c && i < CACHE_SLOTS; i++)
		permset_rules_done(&c[i].rules);
	free(c);
}

static void cache_key_init(void)
{
	pthread_key_create(&cache_key, cache_free);
}

void permset_invalidate(void)
{
	atomic_fetch_add(&generation, 1);
}

/* Appends the rules of one stored set to the subject's list. */
static int add_stored_rules(struct store_stmt *q, void *arg)
{
	struct permset_rules *all = arg;
	json_error_t e;
	json_t *rules = json_loads(store_col_text(q, 1), 0, &e);
	struct permset_rules one = {0};
	char err[160];
	int rc = rules ? permset_rules_parse(rules, store_col_text(q, 0), &one, err, sizeof(err))
		       : ODX_ECORRUPT;
	json_decref(rules);
	if (rc < 0)
		return rc == ODX_EINVAL ? ODX_ECORRUPT : rc; /* we validated it before storing it */
	if (all->npools == PERMSET_MAX_PER_SUBJECT) { /* assignments are capped at that many */
		permset_rules_done(&one);
		return ODX_ECORRUPT;
	}
	struct permset_rule *grown = realloc(all->rules, (all->n + one.n + 1) * sizeof(*grown));
	if (!grown) {
		permset_rules_done(&one);
		return ODX_ENOMEM;
	}
	memcpy(grown + all->n, one.rules, one.n * sizeof(*grown));
	all->rules = grown;
	all->n += one.n;
	/* The strings move with their pool; the set's name is the pool's first string. */
	all->sets[all->nsets++] = one.pools[0];
	all->pools[all->npools++] = one.pools[0];
	free(one.rules);
	return 0;
}

int permset_rules_for(struct store *s, const char *tenant_id, const char *subject,
		      const struct permset_rules **out)
{
	pthread_once(&cache_once, cache_key_init);
	struct cache_slot *cache = pthread_getspecific(cache_key);
	if (!cache) {
		cache = calloc(CACHE_SLOTS, sizeof(*cache));
		if (!cache || pthread_setspecific(cache_key, cache) != 0) {
			free(cache);
			return ODX_ENOMEM;
		}
	}
	uint32_t h = 2166136261u; /* FNV-1a over the id picks the slot */
	for (const char *c = subject; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	struct cache_slot *slot = &cache[h % CACHE_SLOTS];
	uint64_t gen = atomic_load(&generation);
	if (slot->gen == gen && strcmp(slot->subject, subject) == 0) {
		*out = &slot->rules;
		return 0;
	}
	struct permset_rules fresh = {0};
	int rc = store_read(
	    s, tenant_id,
	    "SELECT s.name, s.rules FROM permission_set_members m JOIN permission_sets s "
	    "ON s.name = m.set_name WHERE m.subject_id = ? ORDER BY s.name",
	    STORE_ARGS(S_TEXT(subject)), add_stored_rules, &fresh);
	if (rc < 0) {
		permset_rules_done(&fresh);
		return rc;
	}
	permset_rules_done(&slot->rules);
	slot->rules = fresh;
	slot->gen = gen;
	snprintf(slot->subject, sizeof(slot->subject), "%s", subject);
	*out = &slot->rules;
	return 0;
}
