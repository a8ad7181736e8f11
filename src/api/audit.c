/*
 * audit.c — reading the audit log through the API (SPEC §9, §3).
 *
 * A tenant sees only its own records; a Developer only its own actions —
 * both applied as filters in the store's query, not afterwards. Reading is
 * itself audited (the routes have actions).
 */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "api/api.h"
#include "audit/audit.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"

static json_t *record_json(const struct audit_record *r)
{
	char ts[TIME_RFC3339_LEN], prev[2 * AUDIT_HASH_LEN + 1], hash[2 * AUDIT_HASH_LEN + 1];
	time_format_rfc3339(r->time_ns, ts);
	hex_encode(r->prev_hash, AUDIT_HASH_LEN, prev);
	hex_encode(r->hash, AUDIT_HASH_LEN, hash);
	return json_pack(
	    "{s:I, s:s, s:{s:s, s:s, s:s}, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "seq",
	    (json_int_t)r->seq, "time", ts, "actor", "type", audit_actor_type_name(r->actor_type),
	    "id", r->actor_id, "email", r->actor_email, "tenant_id",
	    r->tenant_id[0] ? json_string(r->tenant_id) : json_null(), "action", r->action,
	    "resource", r->resource, "outcome", audit_outcome_name(r->outcome), "reason", r->reason,
	    "request_id", r->request_id, "source_ip", r->source_ip, "prev_hash", prev, "hash",
	    hash);
}

struct page {
	json_t *items;
	uint64_t last;
};

static int add_record(const struct audit_record *r, void *arg)
{
	struct page *pg = arg;
	pg->last = r->seq;
	return json_array_append_new(pg->items, record_json(r)) == 0 ? 0 : ODX_ENOMEM;
}

/* Reads one optional query parameter into the filter; replies 400 on a bad one. */
static int read_filter(struct http_exchange *ex, struct evkeyvalq *q, struct audit_filter *f,
		       uint64_t *after, int *limit)
{
	const char *v;
	int64_t n;
	if (api_limit_param(ex, q, limit) < 0)
		return ODX_EINVAL;
	if ((v = evhttp_find_header(q, "cursor")) && *v) {
		if (parse_int64(v, 0, INT64_MAX, &n) < 0) {
			reply_error(ex, 400, "bad_request", "invalid cursor");
			return ODX_EINVAL;
		}
		*after = (uint64_t)n;
	}
	if (((v = evhttp_find_header(q, "from")) && time_parse_rfc3339(v, &f->from_ns) < 0) ||
	    ((v = evhttp_find_header(q, "to")) && time_parse_rfc3339(v, &f->to_ns) < 0)) {
		reply_error(ex, 400, "bad_request", "from and to must be RFC 3339 UTC times");
		return ODX_EINVAL;
	}
	if ((v = evhttp_find_header(q, "outcome")) && audit_outcome_parse(v, &f->outcome) < 0) {
		reply_error(ex, 400, "bad_request", "outcome must be success, failure or denied");
		return ODX_EINVAL;
	}
	f->action_prefix = evhttp_find_header(q, "action");
	f->resource = evhttp_find_header(q, "resource");
	const char *actor = evhttp_find_header(q, "actor");
	if (actor)
		f->actor_id = actor;
	return 0;
}

void api_audit_list(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const struct principal *p = api_principal(ex);
	struct evkeyvalq q;
	if (api_query(ex, &q) < 0)
		return;
	struct audit_filter f = {.scope = AUDIT_SCOPE_TENANT, .tenant_id = p->tenant_id};
	uint64_t after = 0;
	int limit;
	if (read_filter(ex, &q, &f, &after, &limit) < 0)
		goto out;
	/* A Developer reads its own actions only: the filter, not a check afterwards. */
	if (p->role == ROLE_DEVELOPER) {
		if (f.actor_id && strcmp(f.actor_id, p->id) != 0) {
			reply_json(ex, 200, json_pack("{s:[], s:n}", "items", "next_cursor"));
			goto out;
		}
		f.actor_id = p->id;
	}
	struct page pg = {.items = json_array()};
	int rc =
	    pg.items ? audit_query(api->audit, &f, after, limit + 1, add_record, &pg) : ODX_ENOMEM;
	if (rc == ODX_EINVAL) {
		json_decref(pg.items);
		reply_error(ex, 400, "bad_request", "invalid filter");
		goto out;
	}
	if (rc < 0) {
		json_decref(pg.items);
		reply_odx_error(ex, rc, NULL);
		goto out;
	}
	json_t *next = json_null();
	if (json_array_size(pg.items) > (size_t)limit) {
		json_array_remove(pg.items, (size_t)limit);
		json_t *last = json_array_get(pg.items, (size_t)limit - 1);
		char cur[24];
		snprintf(cur, sizeof(cur), "%lld",
			 (long long)json_integer_value(json_object_get(last, "seq")));
		next = json_string(cur);
	}
	reply_json(ex, 200, json_pack("{s:o, s:o}", "items", pg.items, "next_cursor", next));
out:
	evhttp_clear_headers(&q);
}

/* ---- export ---- */

/* An export in flight: its filter's strings live here with the cursor. */
struct export_state {
	struct api *api;
	struct audit_export_cursor cur;
	char *strings; /* the query's values, NUL-separated */
};

/* Windows small enough that one step stays well under a millisecond of SQLite. */
#define EXPORT_WINDOW 1024

static int export_next(void *arg, http_emit_fn emit, void *sink)
{
	struct export_state *st = arg;
	return audit_export_next(st->api->audit, &st->cur, EXPORT_WINDOW, emit, sink);
}

static void export_release(void *arg)
{
	struct export_state *st = arg;
	free(st->strings);
	free(st);
}

/* Copies the filter's strings into one block the stream owns. */
static int keep_strings(struct export_state *st, struct audit_filter *f)
{
	const char **fields[] = {&f->tenant_id, &f->action_prefix, &f->actor_id, &f->resource};
	size_t total = 0;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		total += *fields[i] ? strlen(*fields[i]) + 1 : 0;
	char *w = st->strings = malloc(total ? total : 1);
	if (!w)
		return ODX_ENOMEM;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (!*fields[i])
			continue;
		size_t n = strlen(*fields[i]) + 1;
		memcpy(w, *fields[i], n);
		*fields[i] = w;
		w += n;
	}
	return 0;
}

/*
 * GET /v1/audit/export?format=json|csv and the filters of GET /v1/audit:
 * the caller's tenant's records (the platform's own for the platform
 * administrator) as they stood when the request arrived, streamed.
 */
void api_audit_export(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const struct principal *p = api_principal(ex);
	struct evkeyvalq q;
	if (api_query(ex, &q) < 0)
		return;
	struct audit_filter f = {.scope = AUDIT_SCOPE_TENANT, .tenant_id = p->tenant_id};
	uint64_t after = 0;
	int limit;
	const char *format = evhttp_find_header(&q, "format");
	enum audit_format fmt = !format || strcmp(format, "json") == 0 ? AUDIT_FORMAT_JSONL
				: strcmp(format, "csv") == 0	       ? AUDIT_FORMAT_CSV
								       : 0;
	struct export_state *st = NULL;
	if (!fmt) {
		reply_error(ex, 400, "bad_request", "format must be json or csv");
		goto out;
	}
	if (evhttp_find_header(&q, "cursor") || evhttp_find_header(&q, "limit")) {
		reply_error(ex, 400, "bad_request", "an export takes no cursor or limit");
		goto out;
	}
	if (read_filter(ex, &q, &f, &after, &limit) < 0)
		goto out;
	int rc = (st = calloc(1, sizeof(*st))) ? keep_strings(st, &f) : ODX_ENOMEM;
	if (rc == 0)
		rc = audit_export_begin(api->audit, &f, fmt, &st->cur);
	if (rc == ODX_EINVAL) {
		reply_error(ex, 400, "bad_request", "invalid filter");
		goto out;
	}
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		goto out;
	}
	st->api = api;
	reply_stream(
	    ex, 200, fmt == AUDIT_FORMAT_CSV ? "text/csv; charset=utf-8" : "application/x-ndjson",
	    (struct http_stream){.next = export_next, .release = export_release, .state = st});
	st = NULL;
out:
	if (st)
		export_release(st);
	evhttp_clear_headers(&q);
}

static json_t *checkpoint_json(const struct audit_checkpoint *cp)
{
	char ts[TIME_RFC3339_LEN], root[2 * AUDIT_HASH_LEN + 1], sig[2 * AUDIT_SIG_LEN + 1];
	time_format_rfc3339(cp->time_ns, ts);
	hex_encode(cp->root_hash, AUDIT_HASH_LEN, root);
	hex_encode(cp->signature, AUDIT_SIG_LEN, sig);
	return json_pack("{s:I, s:s, s:s, s:s, s:s}", "tree_size", (json_int_t)cp->tree_size,
			 "root_hash", root, "time", ts, "key_id", cp->key_id, "signature", sig);
}

static int add_checkpoint(const struct audit_checkpoint *cp, void *arg)
{
	return json_array_append_new(arg, checkpoint_json(cp)) == 0 ? 0 : ODX_ENOMEM;
}

void api_audit_checkpoints(struct http_exchange *ex)
{
	struct api *api = ex->app;
	struct evkeyvalq q;
	TAILQ_INIT(&q);
	int64_t after = 0, limit = API_LIST_MAX;
	const char *v;
	int rc = ex->query && evhttp_parse_query_str(ex->query, &q) != 0 ? ODX_EINVAL : 0;
	if (rc == 0 && (v = evhttp_find_header(&q, "cursor")) && *v &&
	    parse_int64(v, 0, INT64_MAX, &after) < 0)
		rc = ODX_EINVAL;
	if (rc == 0 && (v = evhttp_find_header(&q, "limit")) &&
	    parse_int64(v, 1, API_LIST_MAX, &limit) < 0)
		rc = ODX_EINVAL;
	evhttp_clear_headers(&q);
	if (rc < 0) {
		reply_error(ex, 400, "bad_request", "limit must be 1 to 500; cursor as given");
		return;
	}
	json_t *items = json_array();
	uint8_t pub[AUDIT_PUB_LEN];
	char kid[AUDIT_KEY_ID_LEN], pubx[2 * AUDIT_PUB_LEN + 1];
	rc = items ? audit_checkpoints_list(api->audit, (uint64_t)after, (int)limit + 1,
					    add_checkpoint, items)
		   : ODX_ENOMEM;
	if (rc == 0)
		rc = audit_public_key(api->audit, pub, kid);
	if (rc < 0) {
		json_decref(items);
		reply_odx_error(ex, rc, NULL);
		return;
	}
	json_t *next = json_null();
	if (json_array_size(items) > (size_t)limit) {
		json_array_remove(items, (size_t)limit);
		json_t *last = json_array_get(items, (size_t)limit - 1);
		char cur[24];
		snprintf(cur, sizeof(cur), "%lld",
			 (long long)json_integer_value(json_object_get(last, "tree_size")));
		json_decref(next);
		next = json_string(cur);
	}
	hex_encode(pub, AUDIT_PUB_LEN, pubx);
	/* The checkpoints cover the whole log; the key lets anyone check them offline. */
	reply_json(ex, 200,
		   json_pack("{s:o, s:o, s:{s:s, s:s, s:s}}", "items", items, "next_cursor", next,
			     "key", "key_id", kid, "alg", "Ed25519", "public_key", pubx));
}

static json_t *proof_json(const struct audit_proof *pr, const char *kind)
{
	json_t *path = json_array();
	for (size_t i = 0; i < pr->n; i++) {
		char h[2 * AUDIT_HASH_LEN + 1];
		hex_encode(pr->path[i], AUDIT_HASH_LEN, h);
		json_array_append_new(path, json_string(h));
	}
	return json_pack("{s:s, s:I, s:I, s:o}", "type", kind, "tree_size",
			 (json_int_t)pr->tree_size, "seq", (json_int_t)pr->seq, "path", path);
}

/* GET /v1/audit/proof?seq=S[&tree_size=N] (inclusion) or ?from=M&tree_size=N (consistency). */
void api_audit_proof(struct http_exchange *ex)
{
	struct api *api = ex->app;
	struct evkeyvalq q;
	TAILQ_INIT(&q);
	if (!ex->query || evhttp_parse_query_str(ex->query, &q) != 0) {
		reply_error(ex, 400, "bad_request", "give seq (inclusion) or from (consistency)");
		goto out;
	}
	const char *seq = evhttp_find_header(&q, "seq"), *from = evhttp_find_header(&q, "from");
	const char *size = evhttp_find_header(&q, "tree_size");
	int64_t s = 0, m = 0, n = 0;
	uint64_t current = 0;
	int rc = audit_size(api->audit, &current);
	if (rc == 0 && size && parse_int64(size, 1, INT64_MAX, &n) < 0)
		rc = ODX_EINVAL;
	if (rc == 0 && !size)
		n = (int64_t)current;
	if (rc == 0 && !!seq == !!from)
		rc = ODX_EINVAL;
	if (rc == 0 && seq && parse_int64(seq, 1, INT64_MAX, &s) < 0)
		rc = ODX_EINVAL;
	if (rc == 0 && from && parse_int64(from, 1, INT64_MAX, &m) < 0)
		rc = ODX_EINVAL;
	struct audit_proof pr;
	if (rc == 0)
		rc = seq ? audit_inclusion_proof(api->audit, (uint64_t)s, (uint64_t)n, &pr)
			 : audit_consistency_proof(api->audit, (uint64_t)m, (uint64_t)n, &pr);
	if (rc == ODX_EINVAL || rc == ODX_ENOTFOUND) {
		reply_error(ex, 400, "bad_request",
			    "seq (or from) and tree_size must name records inside the log");
		goto out;
	}
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		goto out;
	}
	json_t *res = proof_json(&pr, seq ? "inclusion" : "consistency");
	if (seq) {
		char leaf[2 * AUDIT_HASH_LEN + 1];
		hex_encode(pr.leaf_hash, AUDIT_HASH_LEN, leaf);
		json_object_set_new(res, "leaf_hash", json_string(leaf));
	}
	uint8_t root[AUDIT_HASH_LEN];
	if (audit_root(api->audit, (uint64_t)n, root) == 0) {
		char r[2 * AUDIT_HASH_LEN + 1];
		hex_encode(root, AUDIT_HASH_LEN, r);
		json_object_set_new(res, "root_hash", json_string(r));
	}
	reply_json(ex, 200, res);
out:
	evhttp_clear_headers(&q);
}
