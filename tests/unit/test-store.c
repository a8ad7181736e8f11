/* test-store.c — the SQLite store: migrations, tenant files, transactions, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/err.h"
#include "crypto/random.h"
#include "store/migrations.h"
#include "store/store.h"
#include "tmpdir.h"

struct ctx {
	char dir[64];
	struct store *s;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	if (tmpdir_make(c->dir, sizeof(c->dir), "store") != 0 || store_open(c->dir, &c->s) != 0)
		return -1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	store_free(c->s);
	tmpdir_remove(c->dir);
	free(c);
	return 0;
}

static int64_t user_version(const char *path)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void make_db_with_version(const char *path, int64_t version)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
			 SQLITE_OK);
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld", (long long)version);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE future (x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void path_in(char *out, size_t n, const char *dir, const char *rel)
{
	snprintf(out, n, "%s/%s", dir, rel);
}

static void tenant_file(char *out, size_t n, const char *dir, const char *tid)
{
	snprintf(out, n, "%s/tenants/%s.db", dir, tid);
}

static int64_t count(struct store *s, const char *tenant, const char *sql)
{
	struct store_tx *tx;
	assert_int_equal(store_tx_begin(s, tenant, STORE_READ, &tx), 0);
	struct store_stmt *q;
	assert_int_equal(store_query(tx, sql, STORE_NOARGS, &q), 0);
	assert_int_equal(store_step(q), 1);
	int64_t n = store_col_int(q, 0);
	assert_int_equal(store_step(q), 0);
	store_stmt_free(q);
	store_tx_abort(tx);
	return n;
}

static const char *const INSERT_USER =
	"INSERT INTO users (id, email, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?)";

static int insert_user(struct store_tx *tx, const char *id, const char *email, const char *role)
{
	return store_exec(tx, INSERT_USER,
			  STORE_ARGS(S_TEXT(id), S_TEXT(email), S_TEXT(role), S_TEXT("$argon2id$x"),
				     S_INT(1)));
}

/* ---- migrations --------------------------------------------------------- */

/* A failed attempt on a missing tenant must not make it look like it exists. */
static void test_missing_tenant_stays_missing(void **state)
{
	struct ctx *c = *state;
	char id[ID_MAX_LEN];
	struct store_tx *tx = NULL;
	assert_int_equal(random_id("ten", id), 0);
	assert_false(store_tenant_exists(c->s, id));
	assert_int_equal(store_tx_begin(c->s, id, STORE_READ, &tx), ODX_ENOTFOUND);
	assert_int_equal(store_tx_begin(c->s, id, STORE_WRITE, &tx), ODX_ENOTFOUND);
	assert_false(store_tenant_exists(c->s, id));
	assert_int_equal(store_tenant_create(c->s, id), 0);
	assert_true(store_tenant_exists(c->s, id));
	assert_int_equal(store_tenant_destroy(c->s, id), 0);
	assert_false(store_tenant_exists(c->s, id));
}

static void test_migrations_fresh(void **state)
{
	struct ctx *c = *state;
	size_t np, nt;
	assert_non_null(migrations_for(STORE_PLATFORM, &np));
	assert_non_null(migrations_for(STORE_TENANT, &nt));
	assert_true(np >= 1);
	assert_true(nt >= 1);
	char path[256];
	path_in(path, sizeof(path), c->dir, "platform.db");
	assert_int_equal(user_version(path), (int64_t)np);

	char tid[ID_MAX_LEN];
	assert_int_equal(random_id("ten", tid), 0);
	assert_int_equal(store_tenant_create(c->s, tid), 0);
	tenant_file(path, sizeof(path), c->dir, tid);
	assert_int_equal(user_version(path), (int64_t)nt);
	/* the schema of each step is there */
	assert_int_equal(count(c->s, NULL, "SELECT count(*) FROM tenants"), 0);
	assert_int_equal(count(c->s, tid, "SELECT count(*) FROM users"), 0);
}

static void test_migrations_not_rerun(void **state)
{
	struct ctx *c = *state;
	struct store_tx *tx;
	assert_int_equal(store_tx_begin(c->s, NULL, STORE_WRITE, &tx), 0);
	assert_int_equal(store_exec(tx,
				    "INSERT INTO tenants (id, name, created_at, quota_cpu_millicores, "
				    "quota_memory_mb, quota_containers, quota_storage_mb) "
				    "VALUES ('ten_x', 'keep-me', 1, 1, 1, 1, 1)",
				    STORE_NOARGS),
			 1);
	assert_int_equal(store_tx_commit(tx), 0);
	size_t np;
	migrations_for(STORE_PLATFORM, &np);
	for (int i = 0; i < 3; i++) {
		store_free(c->s);
		c->s = NULL;
		assert_int_equal(store_open(c->dir, &c->s), 0);
		char path[256];
		path_in(path, sizeof(path), c->dir, "platform.db");
		assert_int_equal(user_version(path), (int64_t)np);
		/* a re-run first step would have failed on CREATE TABLE, or lost the row */
		assert_int_equal(count(c->s, NULL, "SELECT count(*) FROM tenants WHERE name = 'keep-me'"),
				 1);
	}
}

static void test_migrations_newer_refused(void **state)
{
	/* a data dir of its own inside the fixture's, so teardown removes it on failure too */
	struct ctx *c = *state;
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/newer", c->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	size_t np;
	migrations_for(STORE_PLATFORM, &np);
	char path[256];
	path_in(path, sizeof(path), dir, "platform.db");
	make_db_with_version(path, (int64_t)np + 1);
	struct store *s = (struct store *)(uintptr_t)0x1;
	assert_int_equal(store_open(dir, &s), ODX_ECORRUPT);
	assert_ptr_equal(s, (struct store *)(uintptr_t)0x1);
	/* nothing was changed in it */
	assert_int_equal(user_version(path), (int64_t)np + 1);
}

static void test_migrations_newer_tenant_refused(void **state)
{
	struct ctx *c = *state;
	char tid[ID_MAX_LEN], path[256];
	assert_int_equal(random_id("ten", tid), 0);
	size_t nt;
	migrations_for(STORE_TENANT, &nt);
	tenant_file(path, sizeof(path), c->dir, tid);
	make_db_with_version(path, (int64_t)nt + 5);
	struct store_tx *tx;
	assert_int_equal(store_tx_begin(c->s, tid, STORE_READ, &tx), ODX_ECORRUPT);
	assert_int_equal(user_version(path), (int64_t)nt + 5);
}

/* ---- tenants ------------------------------------------------------------ */

static void test_tenant_create_destroy(void **state)
{
	struct ctx *c = *state;
	char tid[ID_MAX_LEN], path[256];
	assert_int_equal(random_id("ten", tid), 0);
	tenant_file(path, sizeof(path), c->dir, tid);
	struct store_tx *tx;
	assert_int_equal(store_tx_begin(c->s, tid, STORE_READ, &tx), ODX_ENOTFOUND);
	assert_int_equal(access(path, F_OK), -1); /* the probe did not create it */

	assert_int_equal(store_tenant_create(c->s, tid), 0);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(store_tenant_create(c->s, tid), ODX_ECONFLICT);
	assert_int_equal(store_tx_begin(c->s, tid, STORE_WRITE, &tx), 0);
	assert_int_equal(insert_user(tx, "usr_1", "a@example.com", "admin"), 1);
	assert_int_equal(store_tx_commit(tx), 0);

	assert_int_equal(store_tenant_destroy(c->s, tid), 0);
	assert_int_equal(access(path, F_OK), -1);
	char wal[300];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	assert_int_equal(access(wal, F_OK), -1);
	assert_int_equal(store_tx_begin(c->s, tid, STORE_READ, &tx), ODX_ENOTFOUND);

	/* created again, it starts empty */
	assert_int_equal(store_tenant_create(c->s, tid), 0);
	assert_int_equal(count(c->s, tid, "SELECT count(*) FROM users"), 0);
	assert_int_equal(store_tenant_destroy(c->s, tid), 0);
}

static void test_missing_tenant(void **state)
{
	struct ctx *c = *state;
	struct store_tx *tx = (struct store_tx *)(uintptr_t)0x1;
	char tid[ID_MAX_LEN];
	assert_int_equal(random_id("ten", tid), 0);
	assert_int_equal(store_tx_begin(c->s, tid, STORE_READ, &tx), ODX_ENOTFOUND);
	assert_int_equal(store_tx_begin(c->s, tid, STORE_WRITE, &tx), ODX_ENOTFOUND);
	assert_ptr_equal(tx, (struct store_tx *)(uintptr_t)0x1);
}

static void test_tenant_id_paths_refused(void **state)
{
	struct ctx *c = *state;
	const char *bad[] = {
		"../x",
		"ten_../../etc",
		"ten_../platform",
		"/etc/passwd",
		"ten_",
		"ten_0123456789abcdef0123456789abcdeg",
		"ten_0123456789ABCDEF0123456789ABCDEF",
		"ten_0123456789abcdef0123456789abcdef0",
		"ten_0123456789abcdef0123456789abcde/",
		"usr_0123456789abcdef0123456789abcdef",
		"ten_0123456789abcdef0123456789abcdef/../../x",
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = store_tenant_create(c->s, bad[i]);
		if (rc != ODX_EINVAL) {
			print_error("store_tenant_create accepted '%s' (rc %d)\n", bad[i], rc);
			failures++;
		}
		struct store_tx *tx = NULL;
		rc = store_tx_begin(c->s, bad[i], STORE_WRITE, &tx);
		if (rc >= 0) {
			print_error("store_tx_begin opened a transaction for tenant '%s'\n", bad[i]);
			store_tx_abort(tx);
			failures++;
		}
		if (store_tenant_destroy(c->s, bad[i]) == 0) {
			print_error("store_tenant_destroy accepted '%s'\n", bad[i]);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
	/* nothing appeared beside or above the tenants folder */
	char path[256];
	path_in(path, sizeof(path), c->dir, "x.db");
	assert_int_equal(access(path, F_OK), -1);
	path_in(path, sizeof(path), c->dir, "tenants/ten_..");
	assert_int_equal(access(path, F_OK), -1);
	/* the platform database survived "ten_../platform" */
	assert_int_equal(store_ping(c->s), 0);
}

static void test_empty_tenant_id_is_not_platform(void **state)
{
	/*
	 * NULL is the platform scope; "" is not a tenant id and must not be a
	 * second name for the platform database (a principal's tenant_id is ""
	 * for the platform administrator, so a tenant-scoped call made with it
	 * has to fail, not land in platform.db).
	 */
	struct ctx *c = *state;
	struct store_tx *tx = NULL;
	int rc = store_tx_begin(c->s, "", STORE_WRITE, &tx);
	if (rc >= 0) {
		store_tx_abort(tx);
		fail_msg("store_tx_begin(tenant \"\") opened a transaction (on platform.db)");
	}
	assert_int_equal(store_tenant_create(c->s, ""), ODX_EINVAL);
	assert_int_not_equal(store_tenant_destroy(c->s, ""), 0);
}

/* ---- transactions ------------------------------------------------------- */

static void test_constraint_conflict(void **state)
{
	struct ctx *c = *state;
	char tid[ID_MAX_LEN];
	assert_int_equal(random_id("ten", tid), 0);
	assert_int_equal(store_tenant_create(c->s, tid), 0);
	struct store_tx *tx;
	assert_int_equal(store_tx_begin(c->s, tid, STORE_WRITE, &tx), 0);
	assert_int_equal(insert_user(tx, "usr_1", "a@example.com", "admin"), 1);
	/* primary key */
	assert_int_equal(insert_user(tx, "usr_1", "b@example.com", "admin"), ODX_ECONFLICT);
	/* UNIQUE email */
	assert_int_equal(insert_user(tx, "usr_2", "a@example.com", "admin"), ODX_ECONFLICT);
	/* CHECK on role */
	assert_int_equal(insert_user(tx, "usr_3", "c@example.com", "root"), ODX_ECONFLICT);
	/* NOT NULL */
	assert_int_equal(store_exec(tx, INSERT_USER,
				    STORE_ARGS(S_TEXT("usr_4"), S_NULL, S_TEXT("admin"), S_TEXT("h"),
					       S_INT(1))),
			 ODX_ECONFLICT);
	/* STRICT tables refuse a wrong type */
	assert_int_equal(store_exec(tx, INSERT_USER,
				    STORE_ARGS(S_TEXT("usr_5"), S_TEXT("e@example.com"), S_TEXT("admin"),
					       S_TEXT("h"), S_TEXT("not a number"))),
			 ODX_ECONFLICT);
	/* the tx is still usable after a failed statement, and commits the good row */
	assert_int_equal(insert_user(tx, "usr_6", "f@example.com", "readonly"), 1);
	assert_int_equal(store_tx_commit(tx), 0);
	assert_int_equal(count(c->s, tid, "SELECT count(*) FROM users"), 2);

	/* rows changed are reported */
	assert_int_equal(store_tx_begin(c->s, tid, STORE_WRITE, &tx), 0);
	assert_int_equal(store_exec(tx, "UPDATE users SET role = 'operator'", STORE_NOARGS), 2);
	assert_int_equal(store_exec(tx, "DELETE FROM users WHERE id = ?", STORE_ARGS(S_TEXT("none"))),
			 0);
	store_tx_abort(tx);
	assert_int_equal(count(c->s, tid, "SELECT count(*) FROM users WHERE role = 'operator'"), 0);
	assert_int_equal(store_tenant_destroy(c->s, tid), 0);
}

static void test_rollback(void **state)
{
	struct ctx *c = *state;
	char tid[ID_MAX_LEN];
	assert_int_equal(random_id("ten", tid), 0);
	assert_int_equal(store_tenant_create(c->s, tid), 0);
	struct store_tx *tx;
	assert_int_equal(store_tx_begin(c->s, tid, STORE_WRITE, &tx), 0);
	assert_int_equal(insert_user(tx, "usr_1", "a@example.com", "admin"), 1);
	assert_int_equal(insert_user(tx, "usr_2", "b@example.com", "admin"), 1);
	store_tx_abort(tx);
	assert_int_equal(count(c->s, tid, "SELECT count(*) FROM users"), 0);
	store_tx_abort(NULL);

	/* platform scope too */
	assert_int_equal(store_tx_begin(c->s, NULL, STORE_WRITE, &tx), 0);
	assert_int_equal(store_exec(tx, "INSERT INTO api_key_directory VALUES (?, ?)",
				    STORE_ARGS(S_TEXT("key_1"), S_TEXT(tid))),
			 1);
	store_tx_abort(tx);
	assert_int_equal(count(c->s, NULL, "SELECT count(*) FROM api_key_directory"), 0);

	/* and a commit keeps them */
	assert_int_equal(store_tx_begin(c->s, tid, STORE_WRITE, &tx), 0);
	assert_int_equal(insert_user(tx, "usr_1", "a@example.com", "admin"), 1);
	assert_int_equal(store_tx_commit(tx), 0);
	assert_int_equal(count(c->s, tid, "SELECT count(*) FROM users"), 1);
	assert_int_equal(store_tenant_destroy(c->s, tid), 0);
}

static void test_tenants_are_separate_files(void **state)
{
	struct ctx *c = *state;
	char a[ID_MAX_LEN], b[ID_MAX_LEN];
	assert_int_equal(random_id("ten", a), 0);
	assert_int_equal(random_id("ten", b), 0);
	assert_int_equal(store_tenant_create(c->s, a), 0);
	assert_int_equal(store_tenant_create(c->s, b), 0);
	char pa[256], pb[256];
	tenant_file(pa, sizeof(pa), c->dir, a);
	tenant_file(pb, sizeof(pb), c->dir, b);
	struct stat sa, sb;
	assert_int_equal(stat(pa, &sa), 0);
	assert_int_equal(stat(pb, &sb), 0);
	assert_true(sa.st_ino != sb.st_ino);

	struct store_tx *tx;
	assert_int_equal(store_tx_begin(c->s, a, STORE_WRITE, &tx), 0);
	assert_int_equal(insert_user(tx, "usr_a", "alice@a.example", "admin"), 1);
	assert_int_equal(store_tx_commit(tx), 0);

	assert_int_equal(count(c->s, a, "SELECT count(*) FROM users"), 1);
	assert_int_equal(count(c->s, b, "SELECT count(*) FROM users"), 0);
	/* B can take the same id and email: nothing is shared */
	assert_int_equal(store_tx_begin(c->s, b, STORE_WRITE, &tx), 0);
	assert_int_equal(insert_user(tx, "usr_a", "alice@a.example", "readonly"), 1);
	assert_int_equal(store_tx_commit(tx), 0);
	assert_int_equal(count(c->s, a, "SELECT count(*) FROM users WHERE role = 'admin'"), 1);
	assert_int_equal(count(c->s, b, "SELECT count(*) FROM users WHERE role = 'admin'"), 0);

	/* the platform scope has no users table at all */
	assert_int_equal(store_tx_begin(c->s, NULL, STORE_READ, &tx), 0);
	struct store_stmt *q = NULL;
	assert_true(store_query(tx, "SELECT count(*) FROM users", STORE_NOARGS, &q) < 0);
	store_tx_abort(tx);

	/* destroying A leaves B */
	assert_int_equal(store_tenant_destroy(c->s, a), 0);
	assert_int_equal(count(c->s, b, "SELECT count(*) FROM users"), 1);
	assert_int_equal(store_tenant_destroy(c->s, b), 0);
}

static void test_query_values(void **state)
{
	struct ctx *c = *state;
	struct store_tx *tx;
	assert_int_equal(store_tx_begin(c->s, NULL, STORE_READ, &tx), 0);
	const uint8_t blob[] = {0, 1, 2, 0xff};
	struct store_stmt *q;
	assert_int_equal(store_query(tx, "SELECT ?, ?, ?, ?, ?",
				     STORE_ARGS(S_TEXT("it's; DROP TABLE tenants; --"), S_INT(-42),
						S_REAL(1.5), S_BLOB(blob, sizeof(blob)), S_NULL),
				     &q),
			 0);
	assert_int_equal(store_step(q), 1);
	assert_string_equal(store_col_text(q, 0), "it's; DROP TABLE tenants; --");
	assert_int_equal(store_col_int(q, 1), -42);
	assert_true(store_col_real(q, 2) == 1.5);
	size_t n = 0;
	const void *p = store_col_blob(q, 3, &n);
	assert_int_equal(n, sizeof(blob));
	assert_memory_equal(p, blob, sizeof(blob));
	assert_true(store_col_is_null(q, 4));
	assert_false(store_col_is_null(q, 1));
	assert_int_equal(store_step(q), 0);
	store_stmt_free(q);
	/* argument count must match the placeholders */
	assert_true(store_query(tx, "SELECT ?", STORE_NOARGS, &q) < 0);
	store_tx_abort(tx);
	assert_int_equal(store_ping(c->s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_missing_tenant_stays_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrations_fresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrations_not_rerun, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrations_newer_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrations_newer_tenant_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tenant_create_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_tenant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tenant_id_paths_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_tenant_id_is_not_platform, setup, teardown),
		cmocka_unit_test_setup_teardown(test_constraint_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tenants_are_separate_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_values, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
