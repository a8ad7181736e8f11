/*
 * query.c — reading the audit log: filtered pages, streaming exports
 * (JSON lines, CSV), checkpoints, roots and proofs.
 *
 * Filters become SQL: the WHERE clause is assembled from fixed fragments
 * (never from caller text; every value is a bound parameter). One idx_*
 * table drives the walk (actor, else resource, else tenant+action, else
 * tenant; db.c), bucket by bucket up to the indexed mark, joined to the
 * records, where every filter is applied again — so which table drives
 * never changes the answer, only its cost. Then the short unindexed tail
 * of records is scanned with the same conditions. A time range is first
 * turned into a seq range by binary search (time never decreases along
 * seq). Each call reads one snapshot (one read transaction); an export
 * reads one per window of seqs, bounded by the size at its start.
 *
 * Export line formats (docs/audit.md):
 *   JSON: {"seq":N,"time":"<RFC 3339>","time_ns":N,"actor":{"type":..,"id":..,
 *          "email":..},"tenant_id":..,"action":..,"resource":..,"outcome":..,
 *          "reason":..,"request_id":..,"source_ip":..,"prev_hash":"<hex>","hash":"<hex>"}
 *   CSV:  header, then every field double-quoted; a cell starting with = + - @
 *         TAB or CR gets a leading ' (spreadsheet formula injection), so CSV
 *         is for reading, JSON lines for verifying.
 * Bytes that are not valid UTF-8 (only in a tampered file) are written as
 * U+FFFD, so the line stays valid and its hash check fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"

#define OUTBUF_CAP 65536
#define OUT_SLACK 64 /* room kept for one escaped character or a number */

/* ---- output buffer ---- */

int audit_out_flush(struct audit_outbuf *o)
{
	if (o->len == 0)
		return 0;
	int rc = o->write(o->buf, o->len, o->arg);
	o->len = 0;
	return rc;
}

static int out_room(struct audit_outbuf *o, size_t n)
{
	if (o->cap - o->len >= n)
		return 0;
	return audit_out_flush(o);
}

/* n must be < OUT_SLACK or the buffer flushes first and n <= cap. */
static int out_bytes(struct audit_outbuf *o, const void *p, size_t n)
{
	int rc = out_room(o, n);
	if (rc)
		return rc;
	if (n > o->cap)
		return o->write(p, n, o->arg);
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

static int out_str(struct audit_outbuf *o, const char *s)
{
	return out_bytes(o, s, strlen(s));
}

static int out_u64(struct audit_outbuf *o, uint64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
	return out_bytes(o, tmp, (size_t)n);
}

static int out_i64(struct audit_outbuf *o, int64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
	return out_bytes(o, tmp, (size_t)n);
}

static int out_hex(struct audit_outbuf *o, const uint8_t *p, size_t n)
{
	char tmp[2 * AUDIT_SIG_LEN + 1];
	if (n > AUDIT_SIG_LEN)
		return ODX_EINTERNAL;
	hex_encode(p, n, tmp);
	return out_bytes(o, tmp, 2 * n);
}

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

/* A JSON string literal of s (escaped; invalid UTF-8 becomes U+FFFD). */
static int out_json_str(struct audit_outbuf *o, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str);
	int rc = out_bytes(o, "\"", 1);
	for (size_t i = 0; rc == 0 && i < n;) {
		rc = out_room(o, OUT_SLACK);
		if (rc)
			break;
		char *w = o->buf + o->len;
		unsigned c = s[i];
		if (c == '"' || c == '\\') {
			w[0] = '\\', w[1] = (char)c;
			o->len += 2, i++;
		} else if (c < 0x20) {
			static const char hexd[] = "0123456789abcdef";
			memcpy(w, "\\u00", 4);
			w[4] = hexd[c >> 4], w[5] = hexd[c & 15];
			o->len += 6, i++;
		} else if (c < 0x80) {
			w[0] = (char)c;
			o->len++, i++;
		} else {
			size_t len = audit_utf8_len(s + i, n - i);
			if (len == 0) {
				memcpy(w, replacement, 3);
				o->len += 3, i++;
			} else {
				memcpy(w, s + i, len);
				o->len += len, i += len;
			}
		}
	}
	if (rc == 0)
		rc = out_bytes(o, "\"", 1);
	return rc;
}

/* A CSV cell: always quoted, "" for ", formula guard, U+FFFD for invalid UTF-8. */
static int out_csv_str(struct audit_outbuf *o, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str);
	int rc = out_bytes(o, "\"", 1);
	if (rc == 0 && n && strchr("=+-@\t\r", s[0]))
		rc = out_bytes(o, "'", 1);
	for (size_t i = 0; rc == 0 && i < n;) {
		rc = out_room(o, OUT_SLACK);
		if (rc)
			break;
		char *w = o->buf + o->len;
		unsigned c = s[i];
		if (c == '"') {
			w[0] = '"', w[1] = '"';
			o->len += 2, i++;
		} else if (c < 0x80) {
			w[0] = (char)c;
			o->len++, i++;
		} else {
			size_t len = audit_utf8_len(s + i, n - i);
			if (len == 0) {
				memcpy(w, replacement, 3);
				o->len += 3, i++;
			} else {
				memcpy(w, s + i, len);
				o->len += len, i += len;
			}
		}
	}
	if (rc == 0)
		rc = out_bytes(o, "\"", 1);
	return rc;
}

int audit_out_record_json(struct audit_outbuf *o, const struct audit_record *r)
{
	char when[TIME_RFC3339_LEN];
	time_format_rfc3339(r->time_ns, when);
	const char *at = audit_actor_type_name(r->actor_type);
	const char *oc = audit_outcome_name(r->outcome);
	int rc = out_str(o, "{\"seq\":");
	if (rc == 0)
		rc = out_u64(o, r->seq);
	if (rc == 0)
		rc = out_str(o, ",\"time\":\"");
	if (rc == 0)
		rc = out_str(o, when);
	if (rc == 0)
		rc = out_str(o, "\",\"time_ns\":");
	if (rc == 0)
		rc = out_i64(o, r->time_ns);
	if (rc == 0)
		rc = out_str(o, ",\"actor\":{\"type\":");
	if (rc == 0)
		rc = out_json_str(o, at ? at : "");
	if (rc == 0)
		rc = out_str(o, ",\"id\":");
	if (rc == 0)
		rc = out_json_str(o, r->actor_id ? r->actor_id : "");
	if (rc == 0)
		rc = out_str(o, ",\"email\":");
	if (rc == 0)
		rc = out_json_str(o, r->actor_email ? r->actor_email : "");
	const char *names[] = {"},\"tenant_id\":", ",\"action\":", ",\"resource\":",
			       ",\"outcome\":", ",\"reason\":", ",\"request_id\":",
			       ",\"source_ip\":"};
	const char *vals[] = {r->tenant_id, r->action, r->resource, oc,
			      r->reason, r->request_id, r->source_ip};
	for (size_t i = 0; rc == 0 && i < sizeof(names) / sizeof(names[0]); i++) {
		rc = out_str(o, names[i]);
		if (rc == 0)
			rc = out_json_str(o, vals[i] ? vals[i] : "");
	}
	if (rc == 0)
		rc = out_str(o, ",\"prev_hash\":\"");
	if (rc == 0)
		rc = out_hex(o, r->prev_hash, AUDIT_HASH_LEN);
	if (rc == 0)
		rc = out_str(o, "\",\"hash\":\"");
	if (rc == 0)
		rc = out_hex(o, r->hash, AUDIT_HASH_LEN);
	if (rc == 0)
		rc = out_str(o, "\"}\n");
	return rc;
}

static const char csv_header[] = "seq,time,time_ns,actor_type,actor_id,actor_email,tenant_id,"
				 "action,resource,outcome,reason,request_id,source_ip,prev_hash,"
				 "hash\r\n";

static int out_record_csv(struct audit_outbuf *o, const struct audit_record *r)
{
	char when[TIME_RFC3339_LEN];
	time_format_rfc3339(r->time_ns, when);
	const char *at = audit_actor_type_name(r->actor_type);
	const char *oc = audit_outcome_name(r->outcome);
	int rc = out_u64(o, r->seq);
	if (rc == 0)
		rc = out_bytes(o, ",", 1);
	if (rc == 0)
		rc = out_str(o, when);
	if (rc == 0)
		rc = out_bytes(o, ",", 1);
	if (rc == 0)
		rc = out_i64(o, r->time_ns);
	const char *vals[] = {at, r->actor_id, r->actor_email, r->tenant_id, r->action,
			      r->resource, oc, r->reason, r->request_id, r->source_ip};
	for (size_t i = 0; rc == 0 && i < sizeof(vals) / sizeof(vals[0]); i++) {
		rc = out_bytes(o, ",", 1);
		if (rc == 0)
			rc = out_csv_str(o, vals[i] ? vals[i] : "");
	}
	if (rc == 0)
		rc = out_bytes(o, ",", 1);
	if (rc == 0)
		rc = out_hex(o, r->prev_hash, AUDIT_HASH_LEN);
	if (rc == 0)
		rc = out_bytes(o, ",", 1);
	if (rc == 0)
		rc = out_hex(o, r->hash, AUDIT_HASH_LEN);
	if (rc == 0)
		rc = out_bytes(o, "\r\n", 2);
	return rc;
}

int audit_out_checkpoint_json(struct audit_outbuf *o, const struct audit_checkpoint *cp,
			      const uint8_t pub[static AUDIT_PUB_LEN])
{
	char when[TIME_RFC3339_LEN];
	time_format_rfc3339(cp->time_ns, when);
	int rc = out_str(o, "{\"tree_size\":");
	if (rc == 0)
		rc = out_u64(o, cp->tree_size);
	if (rc == 0)
		rc = out_str(o, ",\"root_hash\":\"");
	if (rc == 0)
		rc = out_hex(o, cp->root_hash, AUDIT_HASH_LEN);
	if (rc == 0)
		rc = out_str(o, "\",\"time\":\"");
	if (rc == 0)
		rc = out_str(o, when);
	if (rc == 0)
		rc = out_str(o, "\",\"time_ns\":");
	if (rc == 0)
		rc = out_i64(o, cp->time_ns);
	if (rc == 0)
		rc = out_str(o, ",\"key_id\":");
	if (rc == 0)
		rc = out_json_str(o, cp->key_id);
	if (rc == 0)
		rc = out_str(o, ",\"signature\":\"");
	if (rc == 0)
		rc = out_hex(o, cp->signature, AUDIT_SIG_LEN);
	if (rc == 0)
		rc = out_str(o, "\",\"public_key\":\"");
	if (rc == 0)
		rc = out_hex(o, pub, AUDIT_PUB_LEN);
	if (rc == 0)
		rc = out_str(o, "\"}\n");
	return rc;
}

/* ---- filters ---- */

static bool action_prefix_ok(const char *p)
{
	size_t n = strnlen(p, AUDIT_MAX_ACTION + 1);
	if (n > AUDIT_MAX_ACTION)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return false;
	}
	return true;
}

static bool short_utf8(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	return n <= max && audit_utf8_valid(s, n);
}

static int filter_check(const struct audit_filter *f)
{
	if (!f)
		return ODX_EINVAL;
	if (f->scope == AUDIT_SCOPE_TENANT) {
		if (!f->tenant_id || !short_utf8(f->tenant_id, AUDIT_MAX_ID))
			return ODX_EINVAL;
	} else if (f->scope == AUDIT_SCOPE_ALL) {
		if (f->tenant_id)
			return ODX_EINVAL;
	} else {
		return ODX_EINVAL;
	}
	if (f->action_prefix && !action_prefix_ok(f->action_prefix))
		return ODX_EINVAL;
	if (f->actor_id && !short_utf8(f->actor_id, AUDIT_MAX_ID))
		return ODX_EINVAL;
	if (f->resource && !short_utf8(f->resource, AUDIT_MAX_RESOURCE))
		return ODX_EINVAL;
	if (f->outcome && !audit_outcome_name(f->outcome))
		return ODX_EINVAL;
	if (f->from_ns < 0 || f->to_ns < 0)
		return ODX_EINVAL;
	return 0;
}

/* One integer from a one-row query with an optional integer parameter. */
static int query_int(sqlite3 *db, const char *sql, int64_t arg, bool *found, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return audit_map_sqlite(rc);
	if (sqlite3_bind_parameter_count(st) > 0)
		sqlite3_bind_int64(st, 1, arg);
	rc = sqlite3_step(st);
	*found = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : audit_map_sqlite(rc);
}

/*
 * The smallest seq with time_ns >= t, or 0 when there is none: a binary
 * search over seq (O(log n) row reads), valid because time_ns never
 * decreases along seq.
 */
static int seq_at_time(sqlite3 *db, int64_t t, uint64_t *out)
{
	bool found;
	int64_t v = 0;
	int rc = query_int(db, "SELECT coalesce(max(seq), 0) FROM records", 0, &found, &v);
	uint64_t max = (uint64_t)v, lo = 1, hi = max + 1;
	/* every seq < lo has time < t; every seq in [hi, max] has time >= t */
	while (rc == 0 && lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		rc = query_int(db, "SELECT time_ns FROM records WHERE seq = ?1", (int64_t)mid, &found,
			       &v);
		if (rc == 0 && !found)
			rc = ODX_ECORRUPT; /* a hole in seq */
		if (rc == 0 && v >= t)
			hi = mid;
		else if (rc == 0)
			lo = mid + 1;
	}
	if (rc == 0)
		*out = lo > max ? 0 : lo;
	return rc;
}

struct sql {
	char text[1536];
	size_t len;
};

static void sql_add(struct sql *q, const char *frag)
{
	size_t n = strlen(frag);
	if (q->len + n < sizeof(q->text)) {
		memcpy(q->text + q->len, frag, n + 1);
		q->len += n;
	}
}

/* Which idx_* table drives a query; every filter is applied on the record row anyway. */
enum driver { DRV_SCAN, DRV_ACTOR, DRV_RESOURCE, DRV_TENANT_ACTION, DRV_TENANT };

static enum driver driver_of(const struct audit_filter *f)
{
	if (f->actor_id)
		return DRV_ACTOR; /* the most selective first */
	if (f->resource)
		return DRV_RESOURCE;
	if (f->scope == AUDIT_SCOPE_TENANT && f->action_prefix && f->action_prefix[0])
		return DRV_TENANT_ACTION;
	if (f->scope == AUDIT_SCOPE_TENANT)
		return DRV_TENANT;
	return DRV_SCAN;
}

/* The filter as conditions on records r (all values are bound parameters). */
static void add_record_filters(struct sql *q, const struct audit_filter *f, bool hi)
{
	if (f->scope == AUDIT_SCOPE_TENANT)
		sql_add(q, " AND r.tenant_id = :tenant");
	if (f->action_prefix && f->action_prefix[0])
		sql_add(q, " AND r.action >= :ap AND r.action < :aphi");
	if (f->actor_id)
		sql_add(q, " AND r.actor_id = :actor");
	if (f->outcome)
		sql_add(q, " AND r.outcome = :outcome");
	if (f->resource)
		sql_add(q, " AND r.resource = :resource");
	if (f->from_ns)
		sql_add(q, " AND r.time_ns >= :from");
	if (f->to_ns)
		sql_add(q, " AND r.time_ns < :to");
	if (hi)
		sql_add(q, " AND r.seq < :hi");
}

struct run {
	sqlite3 *db;
	const struct audit_filter *f;
	char aphi[AUDIT_MAX_ACTION + 1];
	uint64_t hi; /* seq < hi (0: no bound) */
};

static int run_prepare(struct run *r, const char *sql, sqlite3_stmt **out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return audit_map_sqlite(rc);
	const struct audit_filter *f = r->f;
#define BIND_TEXT(name, v)                                                                   \
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, name), v, -1, SQLITE_STATIC)
#define BIND_INT(name, v) sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, name), (int64_t)(v))
	BIND_TEXT(":tenant", f->tenant_id);
	BIND_TEXT(":ap", f->action_prefix);
	BIND_TEXT(":aphi", r->aphi);
	BIND_TEXT(":actor", f->actor_id);
	BIND_TEXT(":outcome", f->outcome ? audit_outcome_name(f->outcome) : NULL);
	BIND_TEXT(":resource", f->resource);
	BIND_INT(":from", f->from_ns);
	BIND_INT(":to", f->to_ns);
	BIND_INT(":hi", r->hi);
#undef BIND_TEXT
#undef BIND_INT
	*out = st;
	return 0;
}

typedef int (*row_fn)(sqlite3_stmt *st, void *arg);

/* Steps st, handing each row to fn, up to *left rows (when limited). */
static int run_rows(sqlite3_stmt *st, bool limited, int64_t *left, row_fn fn, void *arg)
{
	int rc = 0;
	while (!limited || *left > 0) {
		int s = sqlite3_step(st);
		if (s == SQLITE_DONE)
			break;
		if (s != SQLITE_ROW) {
			rc = audit_map_sqlite(s);
			break;
		}
		rc = fn(st, arg);
		if (rc)
			break;
		(*left)--;
	}
	sqlite3_reset(st);
	return rc;
}

/*
 * Runs a filter inside the caller's read transaction: records with
 * after < seq < hi (hi 0: no bound) matching f, ascending, at most limit (0: all), each handed
 * to fn. First the idx_* table that fits the filter, bucket by bucket up
 * to the indexed mark, then the unindexed tail of records after it.
 */
static int run_filter(sqlite3 *db, const struct audit_filter *f, uint64_t after, uint64_t hi,
		      int limit, row_fn fn, void *arg)
{
	struct run r = {.db = db, .f = f};
	if (f->action_prefix && f->action_prefix[0]) {
		size_t n = strlen(f->action_prefix);
		memcpy(r.aphi, f->action_prefix, n + 1);
		r.aphi[n - 1]++; /* [a-z0-9_.-] are all below 0x7f: no carry */
	}
	uint64_t lo = 0;
	int rc;
	if (f->from_ns) {
		rc = seq_at_time(db, f->from_ns, &lo);
		if (rc < 0 || lo == 0)
			return rc; /* nothing that late */
		if (lo - 1 > after)
			after = lo - 1;
	}
	if (f->to_ns) {
		rc = seq_at_time(db, f->to_ns, &r.hi);
		if (rc < 0)
			return rc;
	}
	if (hi && (!r.hi || hi < r.hi))
		r.hi = hi;
	if (r.hi && r.hi <= after + 1)
		return 0;
	bool found;
	int64_t v = 0;
	rc = query_int(db, "SELECT coalesce(max(upto), 0) FROM idx_marks", 0, &found, &v);
	if (rc < 0)
		return rc;
	uint64_t upto = (uint64_t)v;
	if (r.hi && upto >= r.hi)
		upto = r.hi - 1;
	bool limited = limit > 0;
	int64_t left = limit;
	enum driver drv = driver_of(f);
	sqlite3_stmt *st = NULL;
	if (drv != DRV_SCAN && upto > after) {
		static const char *const heads[] = {
			[DRV_ACTOR] = " FROM idx_actor i JOIN records r ON r.seq = i.seq "
				      "WHERE i.bucket = :bucket AND i.actor_id = :actor",
			[DRV_RESOURCE] = " FROM idx_resource i JOIN records r ON r.seq = i.seq "
					 "WHERE i.bucket = :bucket AND i.resource = :resource",
			[DRV_TENANT_ACTION] = " FROM idx_tenant_action i JOIN records r ON r.seq = i.seq "
					      "WHERE i.bucket = :bucket AND i.tenant_id = :tenant "
					      "AND i.action >= :ap AND i.action < :aphi",
			[DRV_TENANT] = " FROM idx_tenant i JOIN records r ON r.seq = i.seq "
				       "WHERE i.bucket = :bucket AND i.tenant_id = :tenant",
		};
		struct sql q = {0};
		sql_add(&q, "SELECT r.seq, r.time_ns, r.actor_type, r.actor_id, r.actor_email, "
			    "r.tenant_id, r.action, r.resource, r.outcome, r.reason, r.request_id, "
			    "r.source_ip, r.prev_hash, r.hash, r.leaf_hash");
		sql_add(&q, heads[drv]);
		sql_add(&q, " AND i.seq > :after AND i.seq <= :upto");
		add_record_filters(&q, f, false);
		sql_add(&q, " ORDER BY i.seq");
		rc = run_prepare(&r, q.text, &st);
		if (rc < 0)
			return rc;
		sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":after"), (int64_t)after);
		sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":upto"), (int64_t)upto);
		int bi = sqlite3_bind_parameter_index(st, ":bucket");
		for (uint64_t b = (after + 1) >> AUDIT_BUCKET_BITS;
		     rc == 0 && b <= upto >> AUDIT_BUCKET_BITS && (!limited || left > 0); b++) {
			sqlite3_bind_int64(st, bi, (int64_t)b);
			rc = run_rows(st, limited, &left, fn, arg);
		}
		sqlite3_finalize(st);
		if (rc)
			return rc;
		after = upto; /* the tail starts after the indexed part */
	}
	if (limited && left <= 0)
		return 0;
	/* The tail (or, with no index to use, everything): records in seq order. */
	struct sql q = {0};
	sql_add(&q, "SELECT " AUDIT_RECORD_COLS " FROM records r WHERE r.seq > :after");
	add_record_filters(&q, f, r.hi != 0);
	sql_add(&q, " ORDER BY r.seq");
	rc = run_prepare(&r, q.text, &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":after"), (int64_t)after);
	rc = run_rows(st, limited, &left, fn, arg);
	sqlite3_finalize(st);
	return rc;
}

static int begin_read(sqlite3 *db)
{
	return audit_map_sqlite(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL));
}

struct query_arg {
	audit_record_fn cb;
	void *arg;
};

static int query_row(sqlite3_stmt *st, void *arg)
{
	struct query_arg *q = arg;
	struct audit_row row;
	int rc = audit_row_read(st, &row);
	return rc ? rc : q->cb(&row.rec, q->arg);
}

int audit_query(struct audit_log *log, const struct audit_filter *f, uint64_t after_seq,
		int limit, audit_record_fn cb, void *arg)
{
	if (limit < 1 || limit > AUDIT_QUERY_MAX || !cb)
		return ODX_EINVAL;
	int rc = filter_check(f);
	if (rc < 0)
		return rc;
	struct audit_rconn *c;
	rc = audit_rconn_get(log, &c);
	if (rc < 0)
		return rc;
	struct query_arg q = {.cb = cb, .arg = arg};
	rc = begin_read(c->db);
	if (rc == 0)
		rc = run_filter(c->db, f, after_seq, 0, limit, query_row, &q);
	audit_rconn_put(log, c);
	return rc;
}

struct export_arg {
	struct audit_outbuf *o;
	enum audit_format fmt;
};

static int export_row(sqlite3_stmt *st, void *arg)
{
	struct export_arg *e = arg;
	struct audit_row row;
	int rc = audit_row_read(st, &row);
	if (rc == 0)
		rc = e->fmt == AUDIT_FORMAT_JSONL ? audit_out_record_json(e->o, &row.rec)
						  : out_record_csv(e->o, &row.rec);
	return rc;
}

int audit_export_begin(struct audit_log *log, const struct audit_filter *f,
		       enum audit_format fmt, struct audit_export_cursor *cur)
{
	if (fmt != AUDIT_FORMAT_JSONL && fmt != AUDIT_FORMAT_CSV)
		return ODX_EINVAL;
	int rc = filter_check(f);
	if (rc == 0)
		rc = audit_size(log, &cur->end_seq);
	if (rc < 0)
		return rc;
	cur->f = *f;
	cur->fmt = fmt;
	cur->done_seq = 0;
	cur->header_sent = false;
	return 0;
}

/*
 * One part is one read transaction over a window of seqs: its cost is
 * bounded by the window whatever the filter matches, and records are never
 * changed once written, so the parts join into the snapshot of begin.
 */
int audit_export_next(struct audit_log *log, struct audit_export_cursor *cur,
		      uint64_t window, audit_write_fn write, void *arg)
{
	if (!write || window == 0)
		return ODX_EINVAL;
	if (cur->done_seq >= cur->end_seq && cur->header_sent)
		return 0;
	struct audit_outbuf o = {.buf = malloc(OUTBUF_CAP), .cap = OUTBUF_CAP, .write = write,
				 .arg = arg};
	if (!o.buf)
		return ODX_ENOMEM;
	uint64_t hi = cur->end_seq - cur->done_seq > window ? cur->done_seq + window
							     : cur->end_seq;
	struct audit_rconn *c;
	int rc = 0;
	if (!cur->header_sent && cur->fmt == AUDIT_FORMAT_CSV)
		rc = out_str(&o, csv_header);
	if (rc == 0 && hi > cur->done_seq) {
		rc = audit_rconn_get(log, &c);
		if (rc == 0) {
			struct export_arg e = {.o = &o, .fmt = cur->fmt};
			rc = begin_read(c->db);
			if (rc == 0)
				rc = run_filter(c->db, &cur->f, cur->done_seq, hi + 1, 0, export_row,
						&e);
			audit_rconn_put(log, c);
		}
	}
	if (rc == 0)
		rc = audit_out_flush(&o);
	free(o.buf);
	if (rc < 0)
		return rc;
	cur->header_sent = true;
	cur->done_seq = hi;
	return cur->done_seq < cur->end_seq ? 1 : 0;
}

int audit_export(struct audit_log *log, const struct audit_filter *f, enum audit_format fmt,
		 audit_write_fn write, void *arg)
{
	struct audit_export_cursor cur;
	int rc = write ? audit_export_begin(log, f, fmt, &cur) : ODX_EINVAL;
	while (rc == 0 && (rc = audit_export_next(log, &cur, AUDIT_EXPORT_WINDOW, write, arg)) == 1)
		;
	return rc;
}

/* ---- checkpoints ---- */

#define CP_COLS "tree_size, root_hash, time_ns, key_id, signature"

static int checkpoint_one(struct audit_log *log, const char *sql, int64_t arg,
			  struct audit_checkpoint *out)
{
	struct audit_rconn *c;
	int rc = audit_rconn_get(log, &c);
	if (rc < 0)
		return rc;
	sqlite3_stmt *st;
	rc = audit_map_sqlite(sqlite3_prepare_v2(c->db, sql, -1, &st, NULL));
	if (rc == 0) {
		if (sqlite3_bind_parameter_count(st) > 0)
			sqlite3_bind_int64(st, 1, arg);
		int s = sqlite3_step(st);
		struct audit_checkpoint cp;
		if (s == SQLITE_ROW)
			rc = audit_checkpoint_row(st, &cp);
		else
			rc = s == SQLITE_DONE ? ODX_ENOTFOUND : audit_map_sqlite(s);
		if (rc == 0)
			*out = cp;
		sqlite3_finalize(st);
	}
	audit_rconn_put(log, c);
	return rc;
}

int audit_checkpoint_latest(struct audit_log *log, struct audit_checkpoint *out)
{
	return checkpoint_one(log,
			      "SELECT " CP_COLS " FROM checkpoints ORDER BY tree_size DESC LIMIT 1",
			      0, out);
}

int audit_checkpoint_get(struct audit_log *log, uint64_t tree_size, struct audit_checkpoint *out)
{
	if (tree_size == 0 || tree_size > (uint64_t)INT64_MAX)
		return ODX_ENOTFOUND;
	return checkpoint_one(log, "SELECT " CP_COLS " FROM checkpoints WHERE tree_size = ?1",
			      (int64_t)tree_size, out);
}

int audit_checkpoints_list(struct audit_log *log, uint64_t after_size, int limit,
			   audit_checkpoint_fn cb, void *arg)
{
	if (limit < 1 || limit > AUDIT_QUERY_MAX || !cb)
		return ODX_EINVAL;
	struct audit_rconn *c;
	int rc = audit_rconn_get(log, &c);
	if (rc < 0)
		return rc;
	sqlite3_stmt *st;
	rc = audit_map_sqlite(sqlite3_prepare_v2(c->db,
						 "SELECT " CP_COLS " FROM checkpoints WHERE tree_size > ?1 "
						 "ORDER BY tree_size LIMIT ?2",
						 -1, &st, NULL));
	if (rc == 0) {
		sqlite3_bind_int64(st, 1, after_size > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)after_size);
		sqlite3_bind_int(st, 2, limit);
		int s;
		while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
			struct audit_checkpoint cp;
			rc = audit_checkpoint_row(st, &cp);
			if (rc == 0)
				rc = cb(&cp, arg);
		}
		if (rc == 0 && s != SQLITE_DONE)
			rc = audit_map_sqlite(s);
		sqlite3_finalize(st);
	}
	audit_rconn_put(log, c);
	return rc;
}

int audit_export_checkpoints(struct audit_log *log, uint64_t max_tree_size, audit_write_fn write,
			     void *arg)
{
	if (!write)
		return ODX_EINVAL;
	struct audit_outbuf o = {.buf = malloc(OUTBUF_CAP), .cap = OUTBUF_CAP, .write = write,
				 .arg = arg};
	if (!o.buf)
		return ODX_ENOMEM;
	struct audit_rconn *c;
	int rc = audit_rconn_get(log, &c);
	if (rc < 0) {
		free(o.buf);
		return rc;
	}
	sqlite3_stmt *st;
	rc = audit_map_sqlite(sqlite3_prepare_v2(
		c->db,
		"SELECT c.tree_size, c.root_hash, c.time_ns, c.key_id, c.signature, k.public_key "
		"FROM checkpoints c JOIN signing_keys k ON k.key_id = c.key_id "
		"WHERE c.tree_size <= ?1 ORDER BY c.tree_size",
		-1, &st, NULL));
	if (rc == 0) {
		int s;
		sqlite3_bind_int64(st, 1, max_tree_size == 0 || max_tree_size > (uint64_t)INT64_MAX
						  ? INT64_MAX
						  : (int64_t)max_tree_size);
		while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
			struct audit_checkpoint cp;
			rc = audit_checkpoint_row(st, &cp);
			if (rc == 0 && sqlite3_column_bytes(st, 5) != AUDIT_PUB_LEN)
				rc = ODX_ECORRUPT;
			if (rc == 0)
				rc = audit_out_checkpoint_json(&o, &cp, sqlite3_column_blob(st, 5));
		}
		if (rc == 0 && s != SQLITE_DONE)
			rc = audit_map_sqlite(s);
		sqlite3_finalize(st);
	}
	if (rc == 0)
		rc = audit_out_flush(&o);
	audit_rconn_put(log, c);
	free(o.buf);
	return rc;
}

/* ---- tree ---- */

/* Begins a read transaction on c and reads the snapshot's size. */
static int snapshot_size(struct audit_rconn *c, uint64_t *out)
{
	int rc = begin_read(c->db);
	if (rc < 0)
		return rc;
	sqlite3_stmt *st;
	rc = audit_map_sqlite(
		sqlite3_prepare_v2(c->db, "SELECT coalesce(max(seq), 0) FROM records", -1, &st, NULL));
	if (rc < 0)
		return rc;
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_int64(st, 0);
	else
		rc = audit_map_sqlite(s);
	sqlite3_finalize(st);
	return rc;
}

enum proof_kind { PROOF_ROOT, PROOF_INCLUSION, PROOF_CONSISTENCY };

static int tree_op(struct audit_log *log, enum proof_kind kind, uint64_t a, uint64_t n,
		   uint8_t root[static AUDIT_HASH_LEN], struct audit_proof *proof)
{
	struct audit_rconn *c;
	int rc = audit_rconn_get(log, &c);
	if (rc < 0)
		return rc;
	struct audit_tree_src src = {0};
	uint64_t size = 0;
	rc = snapshot_size(c, &size);
	if (rc == 0 && (n == 0 || n > size || a > n || (kind != PROOF_ROOT && a == 0)))
		rc = ODX_EINVAL;
	if (rc == 0)
		rc = audit_tree_src_init(&src, c->db, c->h);
	if (rc == 0) {
		struct audit_proof p = {.tree_size = n, .seq = a};
		switch (kind) {
		case PROOF_ROOT:
			rc = merkle_range_hash(c->h, audit_tree_subtree, &src, 0, n, root);
			break;
		case PROOF_INCLUSION:
			rc = audit_tree_subtree(&src, 0, a - 1, p.leaf_hash);
			if (rc == 0)
				rc = merkle_inclusion_proof(c->h, audit_tree_subtree, &src, a - 1, n,
							    p.path, &p.n);
			break;
		case PROOF_CONSISTENCY:
			rc = merkle_consistency_proof(c->h, audit_tree_subtree, &src, a, n, p.path,
						      &p.n);
			break;
		}
		if (rc == 0 && proof)
			*proof = p;
	}
	audit_tree_src_done(&src);
	audit_rconn_put(log, c);
	return rc;
}

int audit_root(struct audit_log *log, uint64_t tree_size, uint8_t out[static AUDIT_HASH_LEN])
{
	uint8_t r[AUDIT_HASH_LEN];
	int rc = tree_op(log, PROOF_ROOT, 0, tree_size, r, NULL);
	if (rc == 0)
		memcpy(out, r, AUDIT_HASH_LEN);
	return rc;
}

int audit_inclusion_proof(struct audit_log *log, uint64_t seq, uint64_t tree_size,
			  struct audit_proof *out)
{
	uint8_t unused[AUDIT_HASH_LEN];
	return tree_op(log, PROOF_INCLUSION, seq, tree_size, unused, out);
}

int audit_consistency_proof(struct audit_log *log, uint64_t m, uint64_t n,
			    struct audit_proof *out)
{
	uint8_t unused[AUDIT_HASH_LEN];
	return tree_op(log, PROOF_CONSISTENCY, m, n, unused, out);
}
