/*
 * test-audit.c — the audit log: record bytes (golden vector from an
 * independent encoder), append and group commit, triggers, filters,
 * exports, checkpoints, tampering with the file on disk (as an attacker
 * with file access: triggers dropped first) and with exports, 8 writer
 * threads, write failures (a failing SQLite VFS) and kill -9 during appends.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "audit/audit.h"
#include "audit/merkle.h"
#include "core/encoding.h"
#include "core/err.h"
#include "crypto/hash.h"
#include "crypto/sign.h"

#define H AUDIT_HASH_LEN
#define NEVER (INT64_MAX / 4)

struct ctx {
	char dir[64], db[128], key[128];
	struct audit_log *log;
	uint8_t pub[AUDIT_PUB_LEN];
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int64_t index_idle; /* 0: the default */

static int open_log(struct ctx *c, uint64_t every, int64_t interval, const char *vfs)
{
	struct audit_options o = {.key_path = c->key, .checkpoint_every = every,
				  .checkpoint_interval_ns = interval, .sqlite_vfs = vfs,
				  .index_idle_ns = index_idle};
	return audit_open(c->db, &o, &c->log);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/odx-test-audit-XXXXXX");
	if (!mkdtemp(c->dir))
		return -1;
	snprintf(c->db, sizeof(c->db), "%s/audit.db", c->dir);
	snprintf(c->key, sizeof(c->key), "%s/%s", c->dir, AUDIT_KEY_FILE);
	struct sign_key *k;
	if (audit_key_init(c->dir) != 0 || sign_key_load(c->key, &k) != 0)
		return -1;
	int rc = sign_key_public(k, c->pub);
	sign_key_free(k);
	if (rc != 0 || open_log(c, 10, NEVER, NULL) != 0)
		return -1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	audit_close(c->log);
	nftw(c->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(c);
	return 0;
}

static void reopen(struct ctx *c, uint64_t every, int64_t interval, const char *vfs)
{
	audit_close(c->log);
	c->log = NULL;
	assert_int_equal(open_log(c, every, interval, vfs), 0);
}

static const char *const tenants[] = {"ten_a", "ten_b", ""};
static const char *const actions[] = {"auth.login", "auth.logout", "user.create", "user.delete",
				      "authz.denied"};

/* Record i of the standard mix; strings live in buf. */
struct recbuf {
	char actor[32], email[48], resource[48], reason[48], req[48];
};

static void mkrec(struct audit_record *r, struct recbuf *b, int i)
{
	snprintf(b->actor, sizeof(b->actor), "usr_%d", i % 5);
	snprintf(b->email, sizeof(b->email), "u%d@example.com", i % 5);
	snprintf(b->resource, sizeof(b->resource), "users/usr_%d", i % 7);
	snprintf(b->reason, sizeof(b->reason), "reason %d", i);
	snprintf(b->req, sizeof(b->req), "req_%d", i);
	*r = (struct audit_record){
		.actor_type = (enum audit_actor_type)(1 + i % 5),
		.actor_id = b->actor,
		.actor_email = b->email,
		.tenant_id = tenants[i % 3],
		.action = actions[i % 5],
		.resource = b->resource,
		.outcome = (enum audit_outcome)(1 + i % 3),
		.reason = b->reason,
		.request_id = b->req,
		.source_ip = "192.0.2.7",
	};
}

static void append_n(struct audit_log *log, int from, int n)
{
	for (int i = from; i < from + n; i++) {
		struct audit_record r;
		struct recbuf b;
		mkrec(&r, &b, i);
		assert_int_equal(audit_append(log, &r), 0);
	}
}

/* ---- the documented bytes, encoded here independently ---- */

struct bytes {
	uint8_t b[AUDIT_CANONICAL_MAX];
	size_t n;
};

static void put_be(struct bytes *o, uint64_t v, int len)
{
	for (int i = len - 1; i >= 0; i--)
		o->b[o->n++] = (uint8_t)(v >> (8 * i));
}

static void put_s(struct bytes *o, const char *s)
{
	s = s ? s : "";
	put_be(o, strlen(s), 4);
	memcpy(o->b + o->n, s, strlen(s));
	o->n += strlen(s);
}

static const char *actor_name(enum audit_actor_type t)
{
	static const char *n[] = {"?", "user", "api_key", "agent", "system", "anonymous"};
	return n[t];
}

static const char *outcome_name(enum audit_outcome o)
{
	static const char *n[] = {"?", "success", "failure", "denied"};
	return n[o];
}

static void my_canonical(const struct audit_record *r, struct bytes *o)
{
	o->n = 0;
	o->b[o->n++] = 1;
	put_be(o, r->seq, 8);
	put_be(o, (uint64_t)r->time_ns, 8);
	put_s(o, actor_name(r->actor_type));
	put_s(o, r->actor_id);
	put_s(o, r->actor_email);
	put_s(o, r->tenant_id);
	put_s(o, r->action);
	put_s(o, r->resource);
	put_s(o, outcome_name(r->outcome));
	put_s(o, r->reason);
	put_s(o, r->request_id);
	put_s(o, r->source_ip);
}

static void my_chain_hash(const uint8_t prev[H], const struct audit_record *r, uint8_t out[H])
{
	struct bytes c;
	my_canonical(r, &c);
	uint8_t buf[H + AUDIT_CANONICAL_MAX];
	memcpy(buf, prev, H);
	memcpy(buf + H, c.b, c.n);
	assert_int_equal(hash_sha256(buf, H + c.n, out), 0);
}

static void test_golden_vector(void **state)
{
	(void)state;
	/* Computed with the Python recipe in docs/audit.md. */
	static const char want_canon[] =
		"01000000000000000117979cfe3d85cd150000000475736572000000057573725f310000000d61"
		"406578616d706c652e636f6d0000000574656e5f310000000b757365722e637265617465000000"
		"0b75736572732f7573725f32000000077375636365737300000000000000057265715f31000000"
		"093139322e302e322e31";
	static const char want_hash[] =
		"dc002390d82acc923fd3b3d1fb0ec84fae44bfd66cd662ea460060a19266a8f9";
	static const char want_leaf[] =
		"26c15e452dc5bd2b58a2f0ed338cdbde190bf229767e73982432f33d8a3cb8f3";
	struct audit_record r = {.seq = 1, .time_ns = 1700000000123456789LL,
				 .actor_type = AUDIT_ACTOR_USER, .actor_id = "usr_1",
				 .actor_email = "a@example.com", .tenant_id = "ten_1",
				 .action = "user.create", .resource = "users/usr_2",
				 .outcome = AUDIT_SUCCESS, .reason = NULL, .request_id = "req_1",
				 .source_ip = "192.0.2.1"};
	uint8_t buf[AUDIT_CANONICAL_MAX];
	size_t n;
	assert_int_equal(audit_record_encode(&r, buf, &n), 0);
	char hex[2 * sizeof(want_canon)];
	assert_int_equal(n * 2, strlen(want_canon));
	hex_encode(buf, n, hex);
	assert_string_equal(hex, want_canon);
	struct bytes mine;
	my_canonical(&r, &mine);
	assert_int_equal(mine.n, n);
	assert_memory_equal(mine.b, buf, n);
	uint8_t zero[H] = {0}, h[H];
	my_chain_hash(zero, &r, h);
	hex_encode(h, H, hex);
	assert_string_equal(hex, want_hash);
	struct merkle_hasher *mh;
	assert_int_equal(merkle_hasher_new(&mh), 0);
	assert_int_equal(merkle_leaf_hash(mh, buf, n, h), 0);
	hex_encode(h, H, hex);
	assert_string_equal(hex, want_leaf);
	merkle_hasher_free(mh);
}

static void test_key_init(void **state)
{
	struct ctx *c = *state;
	struct stat st;
	assert_int_equal(stat(c->key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/keys", c->dir);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* idempotent: the same key stays */
	assert_int_equal(audit_key_init(c->dir), 0);
	struct sign_key *k;
	uint8_t pub[AUDIT_PUB_LEN];
	assert_int_equal(sign_key_load(c->key, &k), 0);
	assert_int_equal(sign_key_public(k, pub), 0);
	sign_key_free(k);
	assert_memory_equal(pub, c->pub, AUDIT_PUB_LEN);
	/* key_id: base64url of the first 12 bytes of SHA-256(pub) */
	uint8_t d[32];
	char want[AUDIT_KEY_ID_LEN], kid[AUDIT_KEY_ID_LEN];
	assert_int_equal(hash_sha256(pub, sizeof(pub), d), 0);
	b64url_encode(d, 12, want);
	assert_int_equal(audit_key_id(pub, kid), 0);
	assert_string_equal(kid, want);
	uint8_t lp[AUDIT_PUB_LEN];
	assert_int_equal(audit_public_key(c->log, lp, kid), 0);
	assert_memory_equal(lp, pub, AUDIT_PUB_LEN);
	assert_string_equal(kid, want);
	/* a file that is not a key is left alone and reported */
	char other[128], bad[160];
	snprintf(other, sizeof(other), "%s/other", c->dir);
	assert_int_equal(mkdir(other, 0700), 0);
	snprintf(bad, sizeof(bad), "%s/keys", other);
	assert_int_equal(mkdir(bad, 0700), 0);
	snprintf(bad, sizeof(bad), "%s/%s", other, AUDIT_KEY_FILE);
	FILE *f = fopen(bad, "w");
	assert_non_null(f);
	fputs("not a key\n", f);
	fclose(f);
	assert_int_equal(audit_key_init(other), ODX_ECORRUPT);
}

static void test_append_fills_and_chains(void **state)
{
	struct ctx *c = *state;
	uint8_t prev[H] = {0};
	int64_t last_time = 0;
	for (int i = 0; i < 25; i++) {
		struct audit_record r;
		struct recbuf b;
		mkrec(&r, &b, i);
		r.seq = 999; /* ignored: the log assigns it */
		assert_int_equal(audit_append(c->log, &r), 0);
		assert_int_equal(r.seq, (uint64_t)i + 1);
		assert_true(r.time_ns >= last_time);
		assert_true(r.time_ns > 1600000000LL * 1000000000LL);
		assert_memory_equal(r.prev_hash, prev, H);
		uint8_t want[H];
		my_chain_hash(prev, &r, want);
		assert_memory_equal(r.hash, want, H);
		memcpy(prev, r.hash, H);
		last_time = r.time_ns;
	}
	uint64_t n;
	assert_int_equal(audit_size(c->log, &n), 0);
	assert_int_equal(n, 25);
}

static void test_append_refuses_bad_records(void **state)
{
	struct ctx *c = *state;
	struct audit_record r;
	struct recbuf b;
	char longs[AUDIT_MAX_REASON + 2];
	memset(longs, 'x', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = 0;
	for (int i = 0; i < 8; i++) {
		mkrec(&r, &b, 1);
		switch (i) {
		case 0: r.action = NULL; break;
		case 1: r.action = "User.Create"; break;
		case 2: r.actor_type = 0; break;
		case 3: r.actor_type = 99; break;
		case 4: r.outcome = 0; break;
		case 5: r.reason = longs; break;
		case 6: r.actor_email = "a\xc3(@example.com"; break;
		case 7: r.action = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; break;
		}
		r.seq = 77;
		assert_int_equal(audit_append(c->log, &r), ODX_EINVAL);
		assert_int_equal(r.seq, 77); /* untouched on failure */
	}
	/* no seq was used up */
	mkrec(&r, &b, 1);
	r.reason = longs + 1; /* exactly AUDIT_MAX_REASON */
	assert_int_equal(audit_append(c->log, &r), 0);
	assert_int_equal(r.seq, 1);
}

/* ---- the file refuses changes by itself ---- */

static sqlite3 *raw_open(const char *path)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fprintf(stderr, "sql failed: %s: %s\n", sql, err ? err : "?");
	sqlite3_free(err);
	assert_int_equal(rc, SQLITE_OK);
}

static void exec_refused(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	assert_int_not_equal(rc, SQLITE_OK);
	assert_non_null(err);
	assert_non_null(strstr(err, "append-only"));
	sqlite3_free(err);
}

static void test_triggers_refuse_update_delete(void **state)
{
	struct ctx *c = *state;
	append_n(c->log, 0, 25);
	struct audit_checkpoint cp;
	assert_int_equal(audit_checkpoint_now(c->log, &cp), 0);
	sqlite3 *db = raw_open(c->db);
	exec_refused(db, "UPDATE records SET reason = 'nothing happened' WHERE seq = 3");
	exec_refused(db, "UPDATE records SET seq = 100 WHERE seq = 25");
	exec_refused(db, "DELETE FROM records WHERE seq = 3");
	exec_refused(db, "DELETE FROM records");
	exec_refused(db, "INSERT OR REPLACE INTO records SELECT * FROM records WHERE seq = 4");
	exec_refused(db, "INSERT INTO records (seq, time_ns, actor_type, actor_id, actor_email, "
			 "tenant_id, action, resource, outcome, reason, request_id, source_ip, "
			 "prev_hash, hash, leaf_hash) VALUES (40, 0, 'user', '', '', '', 'x', '', "
			 "'success', '', '', '', zeroblob(32), zeroblob(32), zeroblob(32))");
	exec_refused(db, "UPDATE checkpoints SET root_hash = zeroblob(32)");
	exec_refused(db, "DELETE FROM checkpoints");
	exec_refused(db, "INSERT OR REPLACE INTO checkpoints SELECT * FROM checkpoints");
	exec_refused(db, "UPDATE signing_keys SET public_key = zeroblob(32)");
	exec_refused(db, "DELETE FROM signing_keys");
	exec_refused(db, "DELETE FROM merkle_nodes");
	exec_refused(db, "UPDATE merkle_nodes SET hash = zeroblob(32)");
	sqlite3_close(db);
	struct audit_verify_report rep;
	assert_int_equal(audit_verify_file(c->db, NULL, &rep), 0);
	assert_int_equal(rep.records, 25);
}

/* ---- reading ---- */

struct collect {
	int n;
	uint64_t seq[2000];
	char tenant[2000][8];
	char action[2000][16];
};

static int collect_cb(const struct audit_record *r, void *arg)
{
	struct collect *col = arg;
	assert_true(col->n < 2000);
	col->seq[col->n] = r->seq;
	snprintf(col->tenant[col->n], sizeof(col->tenant[0]), "%s", r->tenant_id);
	snprintf(col->action[col->n], sizeof(col->action[0]), "%s", r->action);
	col->n++;
	return 0;
}

static int query_all(struct audit_log *log, const struct audit_filter *f, struct collect *col)
{
	memset(col, 0, sizeof(*col));
	uint64_t after = 0;
	for (;;) {
		int before = col->n;
		int rc = audit_query(log, f, after, 7, collect_cb, col);
		if (rc)
			return rc;
		if (col->n == before)
			return 0;
		assert_true(col->n - before <= 7);
		after = col->seq[col->n - 1];
	}
}

static void test_query_filters(void **state)
{
	struct ctx *c = *state;
	int64_t times[120];
	for (int i = 0; i < 120; i++) {
		struct audit_record r;
		struct recbuf b;
		mkrec(&r, &b, i);
		assert_int_equal(audit_append(c->log, &r), 0);
		times[i] = r.time_ns;
	}
	static struct collect col; /* big: not on the stack */
	struct audit_filter f = {0};
	/* scope is required; ALL takes no tenant */
	assert_int_equal(query_all(c->log, &f, &col), ODX_EINVAL);
	f.scope = AUDIT_SCOPE_TENANT;
	assert_int_equal(query_all(c->log, &f, &col), ODX_EINVAL);
	f.scope = AUDIT_SCOPE_ALL;
	f.tenant_id = "ten_a";
	assert_int_equal(query_all(c->log, &f, &col), ODX_EINVAL);
	f.tenant_id = NULL;
	assert_int_equal(query_all(c->log, &f, &col), 0);
	assert_int_equal(col.n, 120);
	for (int i = 0; i < 120; i++)
		assert_int_equal(col.seq[i], (uint64_t)i + 1);
	assert_int_equal(audit_query(c->log, &f, 0, 0, collect_cb, &col), ODX_EINVAL);
	assert_int_equal(audit_query(c->log, &f, 0, AUDIT_QUERY_MAX + 1, collect_cb, &col),
			 ODX_EINVAL);

	/* each tenant sees exactly its own; "" is the platform's own */
	for (int t = 0; t < 3; t++) {
		struct audit_filter ft = {.scope = AUDIT_SCOPE_TENANT, .tenant_id = tenants[t]};
		assert_int_equal(query_all(c->log, &ft, &col), 0);
		assert_int_equal(col.n, 40);
		for (int i = 0; i < col.n; i++) {
			assert_string_equal(col.tenant[i], tenants[t]);
			assert_int_equal((col.seq[i] - 1) % 3, (uint64_t)t);
		}
	}
	struct audit_filter nobody = {.scope = AUDIT_SCOPE_TENANT, .tenant_id = "ten_zzz"};
	assert_int_equal(query_all(c->log, &nobody, &col), 0);
	assert_int_equal(col.n, 0);

	/* action prefix */
	struct audit_filter fa = {.scope = AUDIT_SCOPE_TENANT, .tenant_id = "ten_a",
				  .action_prefix = "auth."};
	assert_int_equal(query_all(c->log, &fa, &col), 0);
	int want = 0;
	for (int i = 0; i < 120; i++)
		want += i % 3 == 0 && (i % 5 == 0 || i % 5 == 1);
	assert_int_equal(col.n, want);
	for (int i = 0; i < col.n; i++)
		assert_int_equal(strncmp(col.action[i], "auth.", 5), 0);
	fa.action_prefix = "auth";
	assert_int_equal(query_all(c->log, &fa, &col), 0);
	want = 0;
	for (int i = 0; i < 120; i++)
		want += i % 3 == 0 && (i % 5 == 0 || i % 5 == 1 || i % 5 == 4);
	assert_int_equal(col.n, want); /* "authz.denied" too */
	fa.action_prefix = "AUTH";
	assert_int_equal(query_all(c->log, &fa, &col), ODX_EINVAL);
	fa.action_prefix = "a' OR 1=1 --";
	assert_int_equal(query_all(c->log, &fa, &col), ODX_EINVAL);

	/* actor, outcome, resource, combined */
	struct audit_filter fx = {.scope = AUDIT_SCOPE_ALL, .actor_id = "usr_3",
				  .outcome = AUDIT_DENIED, .resource = "users/usr_3"};
	assert_int_equal(query_all(c->log, &fx, &col), 0);
	want = 0;
	for (int i = 0; i < 120; i++)
		want += i % 5 == 3 && i % 3 == 2 && i % 7 == 3;
	assert_int_equal(col.n, want);
	for (int i = 0; i < col.n; i++) {
		uint64_t k = col.seq[i] - 1;
		assert_true(k % 5 == 3 && k % 3 == 2 && k % 7 == 3);
	}
	fx.outcome = 7;
	assert_int_equal(query_all(c->log, &fx, &col), ODX_EINVAL);

	/* time range [from, to) */
	struct audit_filter ftime = {.scope = AUDIT_SCOPE_ALL, .from_ns = times[30],
				     .to_ns = times[70]};
	assert_int_equal(query_all(c->log, &ftime, &col), 0);
	want = 0;
	for (int i = 0; i < 120; i++)
		want += times[i] >= times[30] && times[i] < times[70];
	assert_int_equal(col.n, want);
	assert_true(col.n >= 1);
	for (int i = 0; i < col.n; i++) {
		int64_t t = times[col.seq[i] - 1];
		assert_true(t >= times[30] && t < times[70]);
	}
	ftime.from_ns = times[119] + 1;
	ftime.to_ns = 0;
	assert_int_equal(query_all(c->log, &ftime, &col), 0);
	assert_int_equal(col.n, 0);
	ftime.from_ns = 0;
	ftime.to_ns = 1;
	assert_int_equal(query_all(c->log, &ftime, &col), 0);
	assert_int_equal(col.n, 0);
	ftime.to_ns = -5;
	assert_int_equal(query_all(c->log, &ftime, &col), ODX_EINVAL);

}

static int stop_at_3(const struct audit_record *r, void *arg)
{
	(void)arg;
	return r->seq == 3 ? 42 : 0;
}

static void test_query_callback_stops(void **state)
{
	struct ctx *c = *state;
	struct audit_record in[5];
	struct recbuf b[5];
	for (int i = 0; i < 5; i++) {
		mkrec(&in[i], &b[i], i);
		assert_int_equal(audit_append(c->log, &in[i]), 0);
	}
	struct audit_filter f = {.scope = AUDIT_SCOPE_ALL};
	assert_int_equal(audit_query(c->log, &f, 0, 10, stop_at_3, NULL), 42);
}

/*
 * The indexed read path against brute force: > 2 buckets of records from
 * 8 threads, every filter combination compared with filtering all records
 * in memory, once with an unindexed tail and once fully indexed.
 */
#define BIG 9500

struct truth {
	uint64_t seq;
	int64_t time;
	char tenant[8], action[16], actor[16], resource[24];
	enum audit_outcome outcome;
};

static struct truth truth[BIG + 1];

static int truth_cb(const struct audit_record *r, void *arg)
{
	int *n = arg;
	assert_true(*n < BIG);
	struct truth *t = &truth[(*n)++];
	t->seq = r->seq;
	t->time = r->time_ns;
	snprintf(t->tenant, sizeof(t->tenant), "%s", r->tenant_id);
	snprintf(t->action, sizeof(t->action), "%s", r->action);
	snprintf(t->actor, sizeof(t->actor), "%s", r->actor_id);
	snprintf(t->resource, sizeof(t->resource), "%s", r->resource);
	t->outcome = r->outcome;
	return 0;
}

static bool truth_match(const struct truth *t, const struct audit_filter *f)
{
	return (f->scope == AUDIT_SCOPE_ALL || strcmp(t->tenant, f->tenant_id) == 0) &&
	       (!f->action_prefix || strncmp(t->action, f->action_prefix, strlen(f->action_prefix)) == 0) &&
	       (!f->actor_id || strcmp(t->actor, f->actor_id) == 0) &&
	       (!f->outcome || t->outcome == f->outcome) &&
	       (!f->resource || strcmp(t->resource, f->resource) == 0) &&
	       (!f->from_ns || t->time >= f->from_ns) && (!f->to_ns || t->time < f->to_ns);
}

struct seqs {
	int n;
	uint64_t s[BIG];
};

static int seqs_cb(const struct audit_record *r, void *arg)
{
	struct seqs *q = arg;
	assert_true(q->n < BIG);
	q->s[q->n++] = r->seq;
	return 0;
}

static int bulk_start;

static void *bulk_main(void *arg)
{
	struct audit_log *log = arg;
	for (;;) {
		int i = __atomic_fetch_add(&bulk_start, 1, __ATOMIC_RELAXED);
		if (i >= BIG)
			return NULL;
		struct audit_record r;
		struct recbuf b;
		mkrec(&r, &b, i);
		if (audit_append(log, &r) != 0)
			return (void *)1;
	}
}

static void check_filters_against_truth(struct audit_log *log, int n)
{
	static struct seqs got;
	static const char *const prefixes[] = {NULL, "auth.", "auth", "user.delete", "zzz"};
	static const char *const actors[] = {NULL, "usr_3", "usr_9"};
	static const char *const resources[] = {NULL, "users/usr_4"};
	int64_t times[][2] = {{0, 0}, {truth[n / 3].time, truth[2 * n / 3].time}, {truth[n - 10].time, 0}};
	int combos = 0;
	for (int sc = 0; sc < 4; sc++)
		for (size_t p = 0; p < 5; p++)
			for (size_t a = 0; a < 3; a++)
				for (size_t rs = 0; rs < 2; rs++)
					for (int o = 0; o < 4; o += 3)
						for (int t = 0; t < 3; t++) {
							struct audit_filter f = {
								.scope = sc == 3 ? AUDIT_SCOPE_ALL
										 : AUDIT_SCOPE_TENANT,
								.tenant_id = sc == 3 ? NULL : tenants[sc],
								.action_prefix = prefixes[p],
								.actor_id = actors[a],
								.resource = resources[rs],
								.outcome = (enum audit_outcome)o,
								.from_ns = times[t][0],
								.to_ns = times[t][1]};
							/* page through with a cursor, 97 at a time */
							got.n = 0;
							uint64_t after = 0;
							for (;;) {
								int before = got.n;
								assert_int_equal(audit_query(log, &f, after, 97,
											     seqs_cb, &got),
										 0);
								if (got.n == before)
									break;
								after = got.s[got.n - 1];
							}
							int k = 0;
							for (int i = 0; i < n; i++)
								if (truth_match(&truth[i], &f)) {
									assert_true(k < got.n);
									assert_int_equal(got.s[k], truth[i].seq);
									k++;
								}
							assert_int_equal(k, got.n);
							combos++;
						}
	assert_int_equal(combos, 4 * 5 * 3 * 2 * 2 * 3);
}

static int64_t indexed_upto(const char *path)
{
	sqlite3 *db = raw_open(path);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT coalesce(max(upto), 0) FROM idx_marks", -1,
					    &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t upto = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return upto;
}

static void test_query_indexed_matches_scan(void **state)
{
	struct ctx *c = *state;
	index_idle = NEVER; /* only index_every indexes: the tail stays */
	reopen(c, 0, NEVER, NULL);
	bulk_start = 0;
	pthread_t th[8];
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, bulk_main, c->log), 0);
	for (int i = 0; i < 8; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		assert_null(ret);
	}
	/* The truth: every record, read straight from the table. */
	int n = 0;
	struct audit_filter all = {.scope = AUDIT_SCOPE_ALL};
	for (uint64_t after = 0;;) {
		int before = n;
		assert_int_equal(audit_query(c->log, &all, after, AUDIT_QUERY_MAX, truth_cb, &n), 0);
		if (n == before)
			break;
		after = truth[n - 1].seq;
	}
	assert_int_equal(n, BIG);
	/* Part of the log is indexed (every 1024 records), a tail is not ... */
	int64_t upto = indexed_upto(c->db);
	assert_true(upto >= 8192 && upto < BIG); /* > 2 buckets indexed, a tail left */
	check_filters_against_truth(c->log, n);
	/* ... and once closed (or after a quiet moment) all of it is. */
	index_idle = 0;
	reopen(c, 0, NEVER, NULL);
	assert_int_equal(indexed_upto(c->db), BIG);
	check_filters_against_truth(c->log, n);
}

/* ---- exports ---- */

struct sink {
	char *buf;
	size_t len, cap;
};

static int sink_write(const void *p, size_t n, void *arg)
{
	struct sink *s = arg;
	if (s->len + n + 1 > s->cap) {
		size_t cap = (s->len + n + 1) * 2;
		char *nb = realloc(s->buf, cap);
		if (!nb)
			return ODX_ENOMEM;
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	s->buf[s->len] = 0;
	return 0;
}

static void write_file(const char *path, const char *data, size_t n)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Copies the export without line `skip` (1-based), or with lines a and b swapped. */
static char *edit_lines(const char *s, int skip, int swap_a, int swap_b)
{
	int n = count_lines(s);
	const char **start = calloc((size_t)n + 1, sizeof(*start));
	assert_non_null(start);
	int k = 0;
	start[k++] = s;
	for (const char *p = s; *p; p++)
		if (*p == '\n' && k < n)
			start[k++] = p + 1;
	char *out = calloc(strlen(s) + 1, 1);
	assert_non_null(out);
	size_t o = 0;
	for (int i = 1; i <= n; i++) {
		int src = i == swap_a ? swap_b : i == swap_b ? swap_a : i;
		if (i == skip)
			continue;
		const char *a = start[src - 1];
		const char *e = strchr(a, '\n');
		memcpy(out + o, a, (size_t)(e - a + 1));
		o += (size_t)(e - a + 1);
	}
	free(start);
	return out;
}

/* Exporting in small parts gives the whole export, bounded by the size at begin. */
static void test_export_in_parts(void **state)
{
	struct ctx *c = *state;
	append_n(c->log, 0, 50);
	struct audit_filter fa = {.scope = AUDIT_SCOPE_TENANT, .tenant_id = "ten_a"};
	for (enum audit_format fmt = AUDIT_FORMAT_JSONL; fmt <= AUDIT_FORMAT_CSV; fmt++) {
		struct sink whole = {0}, parts = {0};
		assert_int_equal(audit_export(c->log, &fa, fmt, sink_write, &whole), 0);
		struct audit_export_cursor cur;
		assert_int_equal(audit_export_begin(c->log, &fa, fmt, &cur), 0);
		append_n(c->log, 50, 7); /* after begin: not part of this export */
		int rc, calls = 0;
		while ((rc = audit_export_next(c->log, &cur, 3, sink_write, &parts)) == 1)
			calls++;
		assert_int_equal(rc, 0);
		assert_int_equal((uint64_t)calls + 1, (cur.end_seq + 2) / 3); /* windows of 3 */
		assert_int_equal(audit_export_next(c->log, &cur, 3, sink_write, &parts), 0);
		assert_non_null(whole.buf);
		assert_non_null(parts.buf);
		assert_string_equal(whole.buf, parts.buf);
		free(whole.buf);
		free(parts.buf);
	}
	struct audit_export_cursor cur;
	struct audit_filter bad = {.scope = AUDIT_SCOPE_ALL, .tenant_id = "ten_a"};
	assert_int_equal(audit_export_begin(c->log, &bad, AUDIT_FORMAT_JSONL, &cur), ODX_EINVAL);
	assert_int_equal(audit_export_begin(c->log, &fa, 9, &cur), ODX_EINVAL);
}

static void test_export_and_verify(void **state)
{
	struct ctx *c = *state;
	append_n(c->log, 0, 60);
	struct audit_record odd = {.actor_type = AUDIT_ACTOR_ANONYMOUS,
				   .actor_email = "=HYPERLINK(\"http://x\")", .tenant_id = "ten_a",
				   .action = "auth.login", .outcome = AUDIT_FAILURE,
				   .reason = "line\nbreak, \"quoted\" \x01 ü", .source_ip = "::1"};
	assert_int_equal(audit_append(c->log, &odd), 0);
	struct audit_checkpoint cp;
	assert_int_equal(audit_checkpoint_now(c->log, &cp), 0);
	assert_int_equal(cp.tree_size, 61);

	struct audit_filter all = {.scope = AUDIT_SCOPE_ALL};
	struct sink js = {0}, cs = {0}, cps = {0}, ten = {0};
	assert_int_equal(audit_export(c->log, &all, AUDIT_FORMAT_JSONL, sink_write, &js), 0);
	assert_int_equal(audit_export(c->log, &all, AUDIT_FORMAT_CSV, sink_write, &cs), 0);
	assert_int_equal(audit_export_checkpoints(c->log, 0, sink_write, &cps), 0);
	struct audit_filter fa = {.scope = AUDIT_SCOPE_TENANT, .tenant_id = "ten_a"};
	assert_int_equal(audit_export(c->log, &fa, AUDIT_FORMAT_JSONL, sink_write, &ten), 0);
	assert_int_equal(count_lines(js.buf), 61);
	assert_int_equal(count_lines(ten.buf), 21);
	assert_int_equal(count_lines(cps.buf), 7); /* 10, 20, ..., 60, 61 */
	struct sink few = {0};
	assert_int_equal(audit_export_checkpoints(c->log, 35, sink_write, &few), 0);
	assert_int_equal(count_lines(few.buf), 3);
	free(few.buf);
	assert_int_equal(audit_export(c->log, &all, 3, sink_write, &cs), ODX_EINVAL);

	/* every JSON line parses and carries the record's hashes */
	char *line = js.buf;
	for (int i = 1; i <= 61; i++) {
		char *e = strchr(line, '\n');
		json_error_t err;
		json_t *o = json_loadb(line, (size_t)(e - line), JSON_REJECT_DUPLICATES, &err);
		assert_non_null(o);
		assert_int_equal(json_integer_value(json_object_get(o, "seq")), i);
		assert_int_equal(strlen(json_string_value(json_object_get(o, "hash"))), 64);
		if (i == 61) {
			assert_string_equal(json_string_value(json_object_get(o, "reason")),
					    odd.reason);
			char hex[65];
			hex_encode(odd.hash, H, hex);
			assert_string_equal(json_string_value(json_object_get(o, "hash")), hex);
		}
		json_decref(o);
		line = e + 1;
	}
	/* CSV: header, quoted cells, the formula guard */
	assert_int_equal(strncmp(cs.buf, "seq,time,time_ns,actor_type,", 28), 0);
	assert_non_null(strstr(cs.buf, "\"'=HYPERLINK(\"\"http://x\"\")\""));
	assert_non_null(strstr(cs.buf, "\"line\nbreak, \"\"quoted\"\" \x01 ü\""));

	char rp[160], cpp[160], tp[160];
	snprintf(rp, sizeof(rp), "%s/export.jsonl", c->dir);
	snprintf(cpp, sizeof(cpp), "%s/checkpoints.jsonl", c->dir);
	snprintf(tp, sizeof(tp), "%s/tenant.jsonl", c->dir);
	write_file(rp, js.buf, js.len);
	write_file(cpp, cps.buf, cps.len);
	write_file(tp, ten.buf, ten.len);
	struct audit_verify_report rep;
	struct audit_verify_opts pinned = {.pinned_pub = c->pub};
	assert_int_equal(audit_verify_export(rp, cpp, &pinned, &rep), 0);
	assert_int_equal(rep.records, 61);
	assert_int_equal(rep.checkpoints, 7);
	assert_int_equal(rep.signed_size, 61);
	uint8_t root[H];
	assert_int_equal(audit_root(c->log, 61, root), 0);
	assert_memory_equal(rep.root, root, H);
	/* without checkpoints nothing is signed */
	assert_int_equal(audit_verify_export(rp, NULL, NULL, &rep), ODX_ECORRUPT);
	assert_int_equal(rep.problem, AUDIT_PROBLEM_UNSIGNED);
	struct audit_verify_opts loose = {.allow_unsigned = true};
	assert_int_equal(audit_verify_export(rp, NULL, &loose, &rep), 0);
	/* a tenant's filtered export: each record checks on its own */
	struct audit_verify_opts partial = {.partial = true};
	assert_int_equal(audit_verify_export(tp, NULL, &partial, &rep), 0);
	assert_int_equal(rep.records, 21);
	/* ... but not as a whole log */
	assert_int_equal(audit_verify_export(tp, cpp, &pinned, &rep), ODX_ECORRUPT);

	/* tampered exports */
	char *t = edit_lines(js.buf, 17, 0, 0); /* line 17 gone */
	write_file(rp, t, strlen(t));
	free(t);
	assert_int_equal(audit_verify_export(rp, cpp, &pinned, &rep), ODX_ECORRUPT);
	assert_int_equal(rep.problem, AUDIT_PROBLEM_MISSING);
	assert_int_equal(rep.bad_seq, 17);
	t = edit_lines(js.buf, 0, 12, 40); /* two lines swapped */
	write_file(rp, t, strlen(t));
	free(t);
	assert_int_equal(audit_verify_export(rp, cpp, &pinned, &rep), ODX_ECORRUPT);
	assert_int_equal(rep.problem, AUDIT_PROBLEM_REORDERED);
	assert_int_equal(rep.bad_seq, 12);
	t = strdup(js.buf);
	assert_non_null(t);
	char *victim = strstr(t, "\"reason\":\"reason 33\"");
	assert_non_null(victim);
	victim[17] = '4'; /* "reason 34" in record 34 */
	write_file(rp, t, strlen(t));
	assert_int_equal(audit_verify_export(rp, cpp, &pinned, &rep), ODX_ECORRUPT);
	assert_int_equal(rep.problem, AUDIT_PROBLEM_ALTERED);
	assert_int_equal(rep.bad_seq, 34);
	write_file(tp, t, strlen(t)); /* also caught by a partial check */
	assert_int_equal(audit_verify_export(tp, NULL, &partial, &rep), ODX_ECORRUPT);
	assert_int_equal(rep.bad_seq, 34);
	free(t);
	/* tail cut off, with the checkpoints that covered it */
	t = strdup(js.buf);
	assert_non_null(t);
	*strstr(t, "{\"seq\":51,") = 0;
	write_file(rp, t, strlen(t));
	free(t);
	assert_int_equal(audit_verify_export(rp, cpp, &pinned, &rep), ODX_ECORRUPT);
	assert_int_equal(rep.problem, AUDIT_PROBLEM_TRUNCATED);
	assert_int_equal(rep.bad_seq, 51);
	/* a garbage line */
	write_file(rp, "{\"seq\":1}\n", 10);
	assert_int_equal(audit_verify_export(rp, cpp, &pinned, &rep), ODX_ECORRUPT);
	assert_int_equal(rep.problem, AUDIT_PROBLEM_MALFORMED);
	free(js.buf);
	free(cs.buf);
	free(cps.buf);
	free(ten.buf);
}

/* ---- checkpoints ---- */

struct cplist {
	int n;
	struct audit_checkpoint cp[64];
};

static int cp_collect(const struct audit_checkpoint *cp, void *arg)
{
	struct cplist *l = arg;
	assert_true(l->n < 64);
	l->cp[l->n++] = *cp;
	return 0;
}

static void test_checkpoints(void **state)
{
	struct ctx *c = *state;
	struct audit_checkpoint cp;
	assert_int_equal(audit_checkpoint_now(c->log, &cp), ODX_ENOTFOUND);
	assert_int_equal(audit_checkpoint_latest(c->log, &cp), ODX_ENOTFOUND);
	append_n(c->log, 0, 25); /* every 10: checkpoints at 10 and 20 */
	struct cplist l = {0};
	assert_int_equal(audit_checkpoints_list(c->log, 0, 100, cp_collect, &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.cp[0].tree_size, 10);
	assert_int_equal(l.cp[1].tree_size, 20);
	assert_int_equal(audit_checkpoint_now(c->log, &cp), 0);
	assert_int_equal(cp.tree_size, 25);
	struct audit_checkpoint again;
	assert_int_equal(audit_checkpoint_now(c->log, &again), 0);
	assert_memory_equal(&again, &cp, sizeof(cp)); /* nothing new: the same one */
	assert_int_equal(audit_checkpoint_latest(c->log, &again), 0);
	assert_memory_equal(&again, &cp, sizeof(cp));
	assert_int_equal(audit_checkpoint_get(c->log, 20, &again), 0);
	assert_int_equal(again.tree_size, 20);
	assert_int_equal(audit_checkpoint_get(c->log, 21, &again), ODX_ENOTFOUND);
	memset(&l, 0, sizeof(l));
	assert_int_equal(audit_checkpoints_list(c->log, 10, 1, cp_collect, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.cp[0].tree_size, 20);
	memset(&l, 0, sizeof(l));
	assert_int_equal(audit_checkpoints_list(c->log, 0, 100, cp_collect, &l), 0);
	assert_int_equal(l.n, 3);
	int64_t prev_time = 0;
	struct merkle_hasher *h;
	assert_int_equal(merkle_hasher_new(&h), 0);
	for (int i = 0; i < l.n; i++) {
		const struct audit_checkpoint *x = &l.cp[i];
		assert_int_equal(audit_checkpoint_verify(x, c->pub), 0);
		uint8_t root[H];
		assert_int_equal(audit_root(c->log, x->tree_size, root), 0);
		assert_memory_equal(root, x->root_hash, H);
		assert_true(x->time_ns >= prev_time);
		prev_time = x->time_ns;
		/* the signed bytes, spelled out */
		uint8_t msg[AUDIT_CHECKPOINT_MSG_LEN], want[AUDIT_CHECKPOINT_MSG_LEN];
		audit_checkpoint_message(x, msg);
		memcpy(want, "odysseus-audit-checkpoint-v1", 28);
		want[28] = 0;
		for (int k = 0; k < 8; k++) {
			want[29 + k] = (uint8_t)(x->tree_size >> (56 - 8 * k));
			want[37 + k] = (uint8_t)((uint64_t)x->time_ns >> (56 - 8 * k));
		}
		memcpy(want + 45, x->root_hash, H);
		assert_memory_equal(msg, want, sizeof(msg));
		assert_int_equal(sign_verify(c->pub, msg, sizeof(msg), x->signature, AUDIT_SIG_LEN), 0);
		struct audit_checkpoint bad = *x;
		bad.root_hash[0] ^= 1;
		assert_int_equal(audit_checkpoint_verify(&bad, c->pub), ODX_EAUTH);
		bad = *x;
		bad.key_id[0] ^= 1;
		assert_int_equal(audit_checkpoint_verify(&bad, c->pub), ODX_EAUTH);
	}
	/* consistency 10 -> 25 and inclusion of record 7 in 20, as a client checks them */
	struct audit_proof p;
	assert_int_equal(audit_consistency_proof(c->log, 10, 25, &p), 0);
	assert_int_equal(merkle_consistency_verify(h, 10, 25, l.cp[0].root_hash, l.cp[2].root_hash,
						   (const uint8_t(*)[H])p.path, p.n),
			 0);
	assert_int_equal(audit_inclusion_proof(c->log, 7, 20, &p), 0);
	assert_int_equal(merkle_inclusion_verify(h, 6, 20, p.leaf_hash, (const uint8_t(*)[H])p.path,
						 p.n, l.cp[1].root_hash),
			 0);
	merkle_hasher_free(h);
	/* close signs what is unsigned: 26..27 */
	append_n(c->log, 25, 2);
	reopen(c, 10, NEVER, NULL);
	assert_int_equal(audit_checkpoint_latest(c->log, &cp), 0);
	assert_int_equal(cp.tree_size, 27);
}

static void test_checkpoint_interval(void **state)
{
	struct ctx *c = *state;
	reopen(c, 1000000, 50 * 1000000LL, NULL); /* every 50 ms */
	append_n(c->log, 0, 3);
	struct audit_checkpoint cp;
	for (int i = 0; i < 200; i++) {
		if (audit_checkpoint_latest(c->log, &cp) == 0 && cp.tree_size == 3)
			break;
		usleep(10000);
	}
	assert_int_equal(audit_checkpoint_latest(c->log, &cp), 0);
	assert_int_equal(cp.tree_size, 3);
	/* idle: no new checkpoint for the same size */
	usleep(150000);
	struct cplist l = {0};
	assert_int_equal(audit_checkpoints_list(c->log, 0, 100, cp_collect, &l), 0);
	assert_int_equal(l.n, 1);
}

/* ---- tampering with the file ---- */

/* A closed log of 50 records with checkpoints at 10, 20, ..., 50; returns an open raw handle. */
static sqlite3 *tamper_start(struct ctx *c)
{
	append_n(c->log, 0, 50);
	audit_close(c->log);
	c->log = NULL;
	struct audit_verify_report rep;
	struct audit_verify_opts o = {.pinned_pub = c->pub};
	assert_int_equal(audit_verify_file(c->db, &o, &rep), 0);
	assert_int_equal(rep.records, 50);
	assert_int_equal(rep.checkpoints, 5);
	assert_int_equal(rep.signed_size, 50);
	sqlite3 *db = raw_open(c->db);
	/* what an attacker with the file does first */
	exec_ok(db, "DROP TRIGGER records_no_update; DROP TRIGGER records_no_delete;"
		    "DROP TRIGGER records_in_sequence; DROP TRIGGER checkpoints_no_update;"
		    "DROP TRIGGER checkpoints_no_delete; DROP TRIGGER checkpoints_in_sequence;"
		    "DROP TRIGGER merkle_nodes_no_update; DROP TRIGGER merkle_nodes_no_delete;"
		    "DROP TRIGGER merkle_nodes_once; DROP TRIGGER signing_keys_once;");
	return db;
}

static void expect_problem(struct ctx *c, const struct audit_verify_opts *o, enum audit_problem p,
			   uint64_t bad_seq)
{
	struct audit_verify_opts pinned = {.pinned_pub = c->pub};
	struct audit_verify_report rep;
	int rc = audit_verify_file(c->db, o ? o : &pinned, &rep);
	if (rc != ODX_ECORRUPT || rep.problem != p || rep.bad_seq != bad_seq)
		fprintf(stderr, "verify: rc %d problem %s bad_seq %llu: %s\n", rc,
			audit_problem_name(rep.problem), (unsigned long long)rep.bad_seq, rep.detail);
	assert_int_equal(rc, ODX_ECORRUPT);
	assert_int_equal(rep.problem, p);
	assert_int_equal(rep.bad_seq, bad_seq);
	assert_true(strlen(rep.detail) > 10);
}

static void read_record(sqlite3 *db, uint64_t seq, struct audit_record *r, char strs[10][256])
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT time_ns, actor_type, actor_id, actor_email, "
					    "tenant_id, action, resource, outcome, reason, request_id, "
					    "source_ip FROM records WHERE seq = ?",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, (int64_t)seq);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	for (int i = 0; i < 10; i++)
		snprintf(strs[i], 256, "%s", sqlite3_column_text(st, i + 1));
	*r = (struct audit_record){.seq = seq, .time_ns = sqlite3_column_int64(st, 0)};
	assert_int_equal(audit_actor_type_parse(strs[0], &r->actor_type), 0);
	r->actor_id = strs[1];
	r->actor_email = strs[2];
	r->tenant_id = strs[3];
	r->action = strs[4];
	r->resource = strs[5];
	assert_int_equal(audit_outcome_parse(strs[6], &r->outcome), 0);
	r->reason = strs[7];
	r->request_id = strs[8];
	r->source_ip = strs[9];
	sqlite3_finalize(st);
}

static void get_hash(sqlite3 *db, uint64_t seq, uint8_t out[H])
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT hash FROM records WHERE seq = ?", -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, (int64_t)seq);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	memcpy(out, sqlite3_column_blob(st, 0), H);
	sqlite3_finalize(st);
}

/* Writes record r at r->seq with a correct chain hash and leaf after prev (as a forger would). */
static void forge_insert(sqlite3 *db, struct audit_record *r, const uint8_t prev[H])
{
	uint8_t leaf[H];
	my_chain_hash(prev, r, r->hash);
	struct bytes cb;
	my_canonical(r, &cb);
	uint8_t buf[1 + AUDIT_CANONICAL_MAX];
	buf[0] = 0;
	memcpy(buf + 1, cb.b, cb.n);
	assert_int_equal(hash_sha256(buf, cb.n + 1, leaf), 0);
	sqlite3_stmt *st;
	assert_int_equal(
		sqlite3_prepare_v2(db,
				   "INSERT INTO records (seq, time_ns, actor_type, actor_id, actor_email, "
				   "tenant_id, action, resource, outcome, reason, request_id, source_ip, "
				   "prev_hash, hash, leaf_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
				   -1, &st, NULL),
		SQLITE_OK);
	const char *t[] = {actor_name(r->actor_type), r->actor_id, r->actor_email, r->tenant_id,
			   r->action, r->resource, outcome_name(r->outcome), r->reason,
			   r->request_id, r->source_ip};
	sqlite3_bind_int64(st, 1, (int64_t)r->seq);
	sqlite3_bind_int64(st, 2, r->time_ns);
	for (int i = 0; i < 10; i++)
		sqlite3_bind_text(st, 3 + i, t[i] ? t[i] : "", -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 13, prev, H, SQLITE_STATIC);
	sqlite3_bind_blob(st, 14, r->hash, H, SQLITE_STATIC);
	sqlite3_bind_blob(st, 15, leaf, H, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

static void test_tamper_flip_byte(void **state)
{
	struct ctx *c = *state;
	sqlite3 *db = tamper_start(c);
	exec_ok(db, "UPDATE records SET reason = 'reason 61' WHERE seq = 17");
	sqlite3_close(db);
	expect_problem(c, NULL, AUDIT_PROBLEM_ALTERED, 17);
}

static void test_tamper_flip_hash_byte(void **state)
{
	struct ctx *c = *state;
	sqlite3 *db = tamper_start(c);
	exec_ok(db, "UPDATE records SET hash = randomblob(32) WHERE seq = 33");
	sqlite3_close(db);
	expect_problem(c, NULL, AUDIT_PROBLEM_ALTERED, 33);
}

static void test_tamper_delete_record(void **state)
{
	struct ctx *c = *state;
	sqlite3 *db = tamper_start(c);
	exec_ok(db, "DELETE FROM records WHERE seq = 23");
	sqlite3_close(db);
	expect_problem(c, NULL, AUDIT_PROBLEM_MISSING, 23);
}

static void test_tamper_delete_and_renumber(void **state)
{
	struct ctx *c = *state;
	sqlite3 *db = tamper_start(c);
	exec_ok(db, "DELETE FROM records WHERE seq = 23;"
		    "UPDATE records SET seq = seq + 1000 WHERE seq > 23;"
		    "UPDATE records SET seq = seq - 1001 WHERE seq > 1000;");
	sqlite3_close(db);
	expect_problem(c, NULL, AUDIT_PROBLEM_MISSING, 23);
}

static void test_tamper_swap(void **state)
{
	struct ctx *c = *state;
	sqlite3 *db = tamper_start(c);
	exec_ok(db, "UPDATE records SET seq = 1000 WHERE seq = 12;"
		    "UPDATE records SET seq = 12 WHERE seq = 30;"
		    "UPDATE records SET seq = 30 WHERE seq = 1000;");
	sqlite3_close(db);
	expect_problem(c, NULL, AUDIT_PROBLEM_REORDERED, 12);
}

static void test_tamper_swap_neighbours(void **state)
{
	struct ctx *c = *state;
	sqlite3 *db = tamper_start(c);
	exec_ok(db, "UPDATE records SET seq = 1000 WHERE seq = 41;"
		    "UPDATE records SET seq = 41 WHERE seq = 42;"
		    "UPDATE records SET seq = 42 WHERE seq = 1000;");
	sqlite3_close(db);
	expect_problem(c, NULL, AUDIT_PROBLEM_REORDERED, 41);
}

static void test_tamper_insert_in_middle(void **state)
{
	struct ctx *c = *state;
	sqlite3 *db = tamper_start(c);
	exec_ok(db, "UPDATE records SET seq = seq + 1000 WHERE seq >= 25;"
		    "UPDATE records SET seq = seq - 999 WHERE seq > 1000;");
	struct audit_record r;
	char s[10][256];
	read_record(db, 24, &r, s);
	uint8_t prev[H];
	get_hash(db, 24, prev);
	r.seq = 25;
	r.reason = "nothing to see here";
	forge_insert(db, &r, prev);
	sqlite3_close(db);
	expect_problem(c, NULL, AUDIT_PROBLEM_INSERTED, 25);
}

static void test_tamper_truncate_tail(void **state)
{
	struct ctx *c = *state;
	sqlite3 *db = tamper_start(c);
	uint8_t root50[H];
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT root_hash FROM checkpoints WHERE tree_size = 50",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	memcpy(root50, sqlite3_column_blob(st, 0), H);
	sqlite3_finalize(st);
	exec_ok(db, "DELETE FROM records WHERE seq > 44");
	/* the checkpoint at 50 still says there were 50 */
	expect_problem(c, NULL, AUDIT_PROBLEM_TRUNCATED, 45);
	/* the attacker removes it too: the tail 41..44 is now unsigned */
	exec_ok(db, "DELETE FROM checkpoints WHERE tree_size > 40");
	expect_problem(c, NULL, AUDIT_PROBLEM_UNSIGNED, 41);
	/* cut exactly at a checkpoint: only a checkpoint seen before tells */
	exec_ok(db, "DELETE FROM records WHERE seq > 40");
	struct audit_verify_report rep;
	struct audit_verify_opts o = {.pinned_pub = c->pub};
	assert_int_equal(audit_verify_file(c->db, &o, &rep), 0);
	o.seen_size = 50;
	o.seen_root = root50;
	expect_problem(c, &o, AUDIT_PROBLEM_TRUNCATED, 41);
	sqlite3_close(db);
}

static void test_tamper_append_forged(void **state)
{
	struct ctx *c = *state;
	sqlite3 *db = tamper_start(c);
	struct audit_record r;
	char s[10][256];
	read_record(db, 50, &r, s);
	uint8_t prev[H];
	get_hash(db, 50, prev);
	r.seq = 51;
	r.time_ns += 1000;
	r.action = "user.create";
	r.reason = "a perfectly chained forgery";
	forge_insert(db, &r, prev);
	/* The chain holds, but no signature covers 51. */
	expect_problem(c, NULL, AUDIT_PROBLEM_UNSIGNED, 51);
	/* A forgery that does not even chain. */
	exec_ok(db, "DELETE FROM records WHERE seq = 51");
	r.reason = "sloppy";
	uint8_t wrong[H] = {1};
	forge_insert(db, &r, wrong);
	sqlite3_close(db);
	expect_problem(c, NULL, AUDIT_PROBLEM_INSERTED, 51);
}

static void test_tamper_checkpoint(void **state)
{
	struct ctx *c = *state;
	sqlite3 *db = tamper_start(c);
	/* a flipped signature byte */
	exec_ok(db, "UPDATE checkpoints SET signature = randomblob(64) WHERE tree_size = 30");
	struct audit_verify_report rep;
	struct audit_verify_opts o = {.pinned_pub = c->pub};
	assert_int_equal(audit_verify_file(c->db, &o, &rep), ODX_ECORRUPT);
	assert_int_equal(rep.problem, AUDIT_PROBLEM_CHECKPOINT_SIGNATURE);
	assert_int_equal(rep.checkpoint_size, 30);
	assert_int_equal(rep.checkpoints, 2);
	/* replaced by one the attacker signed with a key of their own, registered in the file */
	struct sign_key *evil;
	uint8_t epub[AUDIT_PUB_LEN];
	char ekid[AUDIT_KEY_ID_LEN];
	assert_int_equal(sign_key_generate(&evil), 0);
	assert_int_equal(sign_key_public(evil, epub), 0);
	assert_int_equal(audit_key_id(epub, ekid), 0);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT tree_size, root_hash, time_ns FROM checkpoints "
					    "WHERE tree_size = 30",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	struct audit_checkpoint cp = {.tree_size = 30, .time_ns = sqlite3_column_int64(st, 2)};
	memcpy(cp.root_hash, sqlite3_column_blob(st, 1), H);
	sqlite3_finalize(st);
	memcpy(cp.key_id, ekid, sizeof(ekid));
	uint8_t msg[AUDIT_CHECKPOINT_MSG_LEN];
	audit_checkpoint_message(&cp, msg);
	assert_int_equal(sign_message(evil, msg, sizeof(msg), cp.signature), 0);
	sign_key_free(evil);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "UPDATE checkpoints SET key_id = ?1, signature = ?2 "
					    "WHERE tree_size = 30",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, ekid, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, cp.signature, AUDIT_SIG_LEN, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	/* unknown key */
	assert_int_equal(audit_verify_file(c->db, &(struct audit_verify_opts){0}, &rep), ODX_ECORRUPT);
	assert_int_equal(rep.problem, AUDIT_PROBLEM_CHECKPOINT_SIGNATURE);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "INSERT INTO signing_keys (key_id, public_key, created_ns) "
					    "VALUES (?1, ?2, 0)",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, ekid, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, epub, AUDIT_PUB_LEN, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* Trusting the file's own keys, this passes: that is why verifiers pin the key. */
	assert_int_equal(audit_verify_file(c->db, NULL, &rep), 0);
	assert_int_equal(audit_verify_file(c->db, &o, &rep), ODX_ECORRUPT);
	assert_int_equal(rep.problem, AUDIT_PROBLEM_CHECKPOINT_SIGNATURE);
	assert_int_equal(rep.checkpoint_size, 30);
}

static int emit_insert(void *arg, unsigned level, uint64_t index, const uint8_t hash[H])
{
	if (level % 4)
		return 0;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(arg, "INSERT INTO merkle_nodes VALUES (?, ?, ?)", -1, &st,
					    NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, level);
	sqlite3_bind_int64(st, 2, (int64_t)index);
	sqlite3_bind_blob(st, 3, hash, H, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	return 0;
}

static void test_tamper_rewritten_chain(void **state)
{
	struct ctx *c = *state;
	sqlite3 *db = tamper_start(c);
	/*
	 * Change record 17 and recompute every hash after it, leaves and stored
	 * Merkle nodes included: only the signed checkpoints can tell.
	 */
	uint8_t prev[H];
	get_hash(db, 16, prev);
	for (uint64_t seq = 17; seq <= 50; seq++) {
		struct audit_record r;
		char s[10][256];
		read_record(db, seq, &r, s);
		if (seq == 17)
			r.reason = "rewritten";
		char del[64];
		snprintf(del, sizeof(del), "DELETE FROM records WHERE seq = %llu",
			 (unsigned long long)seq);
		exec_ok(db, del);
		forge_insert(db, &r, prev);
		memcpy(prev, r.hash, H);
	}
	exec_ok(db, "DELETE FROM merkle_nodes");
	struct merkle_hasher *h;
	assert_int_equal(merkle_hasher_new(&h), 0);
	struct merkle_frontier f;
	merkle_frontier_init(&f);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT leaf_hash FROM records ORDER BY seq", -1, &st,
					    NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		assert_int_equal(merkle_frontier_push(h, &f, sqlite3_column_blob(st, 0), emit_insert, db),
				 0);
	sqlite3_finalize(st);
	merkle_hasher_free(h);
	sqlite3_close(db);
	struct audit_verify_report rep;
	struct audit_verify_opts o = {.pinned_pub = c->pub};
	assert_int_equal(audit_verify_file(c->db, &o, &rep), ODX_ECORRUPT);
	assert_int_equal(rep.problem, AUDIT_PROBLEM_CHECKPOINT_ROOT);
	assert_int_equal(rep.checkpoint_size, 20);
	assert_int_equal(rep.bad_seq, 11); /* somewhere in 11..20 */
	assert_int_equal(rep.checkpoints, 1);
}

static void test_tamper_derived_node(void **state)
{
	struct ctx *c = *state;
	sqlite3 *db = tamper_start(c);
	exec_ok(db, "DELETE FROM merkle_nodes WHERE level = 4 AND idx = 1;"
		    "INSERT INTO merkle_nodes VALUES (4, 1, randomblob(32))");
	sqlite3_close(db);
	expect_problem(c, NULL, AUDIT_PROBLEM_DERIVED, 17);
}

static void test_verify_not_a_log(void **state)
{
	struct ctx *c = *state;
	char p[160];
	snprintf(p, sizeof(p), "%s/other.db", c->dir);
	sqlite3 *db = raw_open(p);
	exec_ok(db, "CREATE TABLE t (x)");
	sqlite3_close(db);
	struct audit_verify_report rep;
	assert_int_equal(audit_verify_file(p, NULL, &rep), ODX_ECORRUPT);
	assert_int_equal(rep.problem, AUDIT_PROBLEM_MALFORMED);
	snprintf(p, sizeof(p), "%s/absent.db", c->dir);
	assert_true(audit_verify_file(p, NULL, &rep) < 0);
	/* and audit_open refuses a foreign file */
	snprintf(p, sizeof(p), "%s/other.db", c->dir);
	struct audit_options o = {.key_path = c->key};
	struct audit_log *log;
	assert_int_equal(audit_open(p, &o, &log), ODX_ECORRUPT);
}

/* ---- 8 writers ---- */

#define THREADS 8
#ifndef PER_THREAD
#define PER_THREAD 10000
#endif

struct worker {
	struct audit_log *log;
	int id;
	uint64_t *seqs;
	int fails;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t last = 0;
	for (int i = 0; i < PER_THREAD; i++) {
		struct audit_record r;
		struct recbuf b;
		mkrec(&r, &b, w->id * PER_THREAD + i);
		if (audit_append(w->log, &r) != 0 || r.seq <= last) {
			w->fails++;
			continue;
		}
		w->seqs[i] = last = r.seq;
	}
	return NULL;
}

static void test_concurrent_appends(void **state)
{
	struct ctx *c = *state;
	reopen(c, 0, 0, NULL); /* the defaults: every 10000 records or 1 s */
	const uint64_t total = (uint64_t)THREADS * PER_THREAD;
	uint64_t *seqs = calloc(total, sizeof(*seqs));
	uint8_t *seen = calloc(total + 1, 1);
	assert_non_null(seqs);
	assert_non_null(seen);
	pthread_t th[THREADS];
	struct worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.log = c->log, .id = i, .seqs = seqs + (size_t)i * PER_THREAD};
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].fails, 0);
	}
	for (uint64_t i = 0; i < total; i++) {
		assert_true(seqs[i] >= 1 && seqs[i] <= total);
		assert_int_equal(seen[seqs[i]], 0);
		seen[seqs[i]] = 1;
	}
	uint64_t n;
	assert_int_equal(audit_size(c->log, &n), 0);
	assert_int_equal(n, total);
	/* durable: a fresh reader (another connection) sees all of them, chained */
	struct audit_verify_report rep;
	struct audit_verify_opts o = {.pinned_pub = c->pub, .allow_unsigned = true};
	assert_int_equal(audit_verify_file(c->db, &o, &rep), 0);
	assert_int_equal(rep.records, total);
	audit_close(c->log);
	c->log = NULL;
	o.allow_unsigned = false;
	assert_int_equal(audit_verify_file(c->db, &o, &rep), 0);
	assert_int_equal(rep.records, total);
	assert_int_equal(rep.signed_size, total);
	free(seqs);
	free(seen);
	assert_int_equal(open_log(c, 10, NEVER, NULL), 0);
	assert_int_equal(audit_size(c->log, &n), 0);
	assert_int_equal(n, total);
}

/* ---- write failures: a VFS whose writes and syncs fail on demand ---- */

static atomic_int fail_writes;
static sqlite3_vfs *real_vfs;
static sqlite3_vfs faulty_vfs;

struct ffile {
	sqlite3_file base;
	sqlite3_file *real;
};

#define REAL(f) (((struct ffile *)(f))->real)

static int ff_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}
static int ff_read(sqlite3_file *f, void *b, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, off);
}
static int ff_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 off)
{
	if (atomic_load(&fail_writes))
		return SQLITE_FULL;
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, off);
}
static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	if (atomic_load(&fail_writes))
		return SQLITE_IOERR_TRUNCATE;
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int ff_sync(sqlite3_file *f, int flags)
{
	if (atomic_load(&fail_writes))
		return SQLITE_IOERR_FSYNC;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int ff_size(sqlite3_file *f, sqlite3_int64 *s)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), s);
}
static int ff_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int ff_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int ff_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int ff_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int ff_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int ff_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int ff_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int ff_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void ff_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int ff_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int ff_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}
static int ff_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods ff_methods = {
	3, ff_close, ff_read, ff_write, ff_truncate, ff_sync, ff_size, ff_lock, ff_unlock,
	ff_reserved, ff_fcntl, ff_sector, ff_devchar, ff_shm_map, ff_shm_lock, ff_shm_barrier,
	ff_shm_unmap, ff_fetch, ff_unfetch,
};

static int ff_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	(void)vfs;
	struct ffile *p = (struct ffile *)f;
	p->real = (sqlite3_file *)(p + 1);
	int rc = real_vfs->xOpen(real_vfs, name, p->real, flags, out);
	p->base.pMethods = rc == SQLITE_OK && p->real->pMethods ? &ff_methods : NULL;
	return rc;
}

static void register_faulty_vfs(void)
{
	if (real_vfs)
		return;
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	faulty_vfs = *real_vfs;
	faulty_vfs.zName = "odx-faulty";
	faulty_vfs.szOsFile = (int)sizeof(struct ffile) + real_vfs->szOsFile;
	faulty_vfs.xOpen = ff_open;
	faulty_vfs.pNext = NULL;
	assert_int_equal(sqlite3_vfs_register(&faulty_vfs, 0), SQLITE_OK);
}

struct failing_worker {
	struct audit_log *log;
	int rc;
};

static void *failing_main(void *arg)
{
	struct failing_worker *w = arg;
	struct audit_record r;
	struct recbuf b;
	mkrec(&r, &b, 3);
	w->rc = audit_append(w->log, &r);
	return NULL;
}

static void test_write_failure_and_recovery(void **state)
{
	struct ctx *c = *state;
	register_faulty_vfs();
	reopen(c, 10, NEVER, "odx-faulty");
	append_n(c->log, 0, 5);
	assert_false(audit_failing(c->log));
	atomic_store(&fail_writes, 1);
	/* every waiting append fails, nothing is half-written */
	pthread_t th[6];
	struct failing_worker w[6];
	for (int i = 0; i < 6; i++) {
		w[i] = (struct failing_worker){.log = c->log};
		assert_int_equal(pthread_create(&th[i], NULL, failing_main, &w[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].rc, ODX_EUNAVAIL);
	}
	struct audit_record r;
	struct recbuf b;
	mkrec(&r, &b, 9);
	r.seq = 1234;
	assert_int_equal(audit_append(c->log, &r), ODX_EUNAVAIL);
	assert_int_equal(r.seq, 1234);
	struct audit_checkpoint cp;
	assert_int_equal(audit_checkpoint_now(c->log, &cp), ODX_EUNAVAIL);
	uint64_t n;
	assert_int_equal(audit_size(c->log, &n), 0);
	assert_int_equal(n, 5);
	assert_true(audit_failing(c->log));
	/* the disk works again: the next append succeeds, with no gap */
	atomic_store(&fail_writes, 0);
	assert_int_equal(audit_append(c->log, &r), 0);
	assert_int_equal(r.seq, 6);
	assert_false(audit_failing(c->log));
	append_n(c->log, 10, 10); /* crosses the checkpoint at 10 */
	assert_int_equal(audit_checkpoint_now(c->log, &cp), 0);
	assert_int_equal(cp.tree_size, 16);
	audit_close(c->log);
	c->log = NULL;
	struct audit_verify_report rep;
	struct audit_verify_opts o = {.pinned_pub = c->pub};
	assert_int_equal(audit_verify_file(c->db, &o, &rep), 0);
	assert_int_equal(rep.records, 16);
	assert_int_equal(open_log(c, 10, NEVER, NULL), 0);
}

/* ---- kill -9 during appends ---- */

struct killer_arg {
	int fd;
	struct audit_log *log;
};

static void *killer_worker(void *arg)
{
	struct killer_arg *a = arg;
	for (int i = 0;; i++) {
		struct audit_record r;
		struct recbuf b;
		mkrec(&r, &b, i);
		if (audit_append(a->log, &r) != 0)
			_exit(3);
		if (write(a->fd, &r.seq, sizeof(r.seq)) != sizeof(r.seq))
			_exit(4);
	}
	return NULL;
}

static void test_kill9_keeps_acknowledged(void **state)
{
	struct ctx *c = *state;
	audit_close(c->log);
	c->log = NULL;
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		if (open_log(c, 0, 0, NULL) != 0)
			_exit(2);
		struct killer_arg arg = {.fd = p[1], .log = c->log};
		pthread_t th[8];
		for (int i = 0; i < 8; i++)
			if (pthread_create(&th[i], NULL, killer_worker, &arg) != 0)
				_exit(5);
		for (;;)
			pause();
	}
	close(p[1]);
	uint64_t max_acked = 0, seq;
	int got = 0;
	while (got < 3000 && read(p[0], &seq, sizeof(seq)) == (ssize_t)sizeof(seq)) {
		if (seq > max_acked)
			max_acked = seq;
		got++;
	}
	kill(pid, SIGKILL);
	int status;
	waitpid(pid, &status, 0);
	assert_true(WIFSIGNALED(status));
	while (read(p[0], &seq, sizeof(seq)) == (ssize_t)sizeof(seq))
		if (seq > max_acked)
			max_acked = seq; /* acknowledged before the kill */
	close(p[0]);
	assert_int_equal(got, 3000);
	/* Every acknowledged record is there and the chain verifies (the tail may be unsigned). */
	struct audit_verify_report rep;
	struct audit_verify_opts o = {.pinned_pub = c->pub, .allow_unsigned = true};
	assert_int_equal(audit_verify_file(c->db, &o, &rep), 0);
	assert_true(rep.records >= max_acked);
	/* Restarted, the log continues the sequence and signs the tail. */
	assert_int_equal(open_log(c, 10, NEVER, NULL), 0);
	struct audit_record r;
	struct recbuf b;
	mkrec(&r, &b, 1);
	assert_int_equal(audit_append(c->log, &r), 0);
	assert_int_equal(r.seq, rep.records + 1);
	audit_close(c->log);
	c->log = NULL;
	o.allow_unsigned = false;
	assert_int_equal(audit_verify_file(c->db, &o, &rep), 0);
	assert_int_equal(open_log(c, 10, NEVER, NULL), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_vector),
		T(test_key_init),
		T(test_append_fills_and_chains),
		T(test_append_refuses_bad_records),
		T(test_triggers_refuse_update_delete),
		T(test_query_filters),
		T(test_query_callback_stops),
		T(test_query_indexed_matches_scan),
		T(test_export_and_verify),
		T(test_export_in_parts),
		T(test_checkpoints),
		T(test_checkpoint_interval),
		T(test_tamper_flip_byte),
		T(test_tamper_flip_hash_byte),
		T(test_tamper_delete_record),
		T(test_tamper_delete_and_renumber),
		T(test_tamper_swap),
		T(test_tamper_swap_neighbours),
		T(test_tamper_insert_in_middle),
		T(test_tamper_truncate_tail),
		T(test_tamper_append_forged),
		T(test_tamper_checkpoint),
		T(test_tamper_rewritten_chain),
		T(test_tamper_derived_node),
		T(test_verify_not_a_log),
		T(test_concurrent_appends),
		T(test_write_failure_and_recovery),
		T(test_kill9_keeps_acknowledged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
