/* secret.c — see secret.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/random.h"
#include "secrets/seal.h"
#include "secrets/secret.h"

#define DEFAULT_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

bool secret_name_valid(const char *name)
{
	return name_validate(name, SECRET_NAME_MAX) == 0;
}

static int read_int(struct store_stmt *q, void *arg)
{
	*(int64_t *)arg = store_col_int(q, 0);
	return 0;
}

/* Stores an already sealed `version` of name, inside tx. */
static int write_version(struct store_tx *tx, const char *name, int64_t version,
			 const uint8_t *blob, size_t n)
{
	int rc = store_exec(tx,
			    "INSERT INTO secret_versions (name, version, sealed, created_at) "
			    "VALUES (?, ?, ?, ?)",
			    STORE_ARGS(S_TEXT(name), S_INT(version), S_BLOB(blob, n),
				       S_INT(time_now_ns())));
	return rc < 0 ? rc : 0;
}

/*
 * One attempt: the version after cur, sealed before the write transaction
 * (sealing may create the tenant's data key in a transaction of its own),
 * then written if nobody wrote another version meanwhile (ODX_EBUSY: again).
 */
static int put_once(struct store *s, struct secrets_keyring *kr, const char *tenant,
		    const char *name, const uint8_t *value, size_t len, const char *actor,
		    int64_t *version)
{
	int64_t cur = 0, now = time_now_ns();
	int rc = store_read(s, tenant, "SELECT version FROM secrets WHERE name = ?",
			    STORE_ARGS(S_TEXT(name)), read_int, &cur);
	uint8_t *blob = NULL;
	size_t n = 0;
	if (rc >= 0)
		rc = secrets_seal(kr, tenant, name, (uint64_t)cur + 1, value, len, &blob, &n);
	struct store_tx *tx = NULL;
	if (rc >= 0)
		rc = store_tx_begin(s, tenant, STORE_WRITE, &tx);
	int64_t again = 0;
	if (rc >= 0)
		rc = store_each(tx, "SELECT version FROM secrets WHERE name = ?",
				STORE_ARGS(S_TEXT(name)), read_int, &again);
	if (rc >= 0 && again != cur)
		rc = ODX_EBUSY;
	if (rc >= 0 && cur == 0)
		rc = store_exec(tx,
				"INSERT INTO secrets (name, version, created_by, created_at, "
				"rotated_at) VALUES (?, 1, ?, ?, ?)",
				STORE_ARGS(S_TEXT(name), S_TEXT(actor), S_INT(now), S_INT(now)));
	else if (rc >= 0)
		rc = store_exec(tx, "UPDATE secrets SET version = ?, rotated_at = ? WHERE name = ?",
				STORE_ARGS(S_INT(cur + 1), S_INT(now), S_TEXT(name)));
	if (rc >= 0)
		rc = write_version(tx, name, cur + 1, blob, n);
	free(blob);
	if (rc >= 0)
		*version = cur + 1;
	return tx ? store_tx_end(tx, rc < 0 ? rc : 0) : rc;
}

int secret_put(struct store *s, struct secrets_keyring *kr, const char *tenant, const char *name,
	       const uint8_t *value, size_t len, const char *actor, int64_t *version)
{
	if (!secret_name_valid(name))
		return ODX_EINVAL;
	if (len > SECRETS_VALUE_MAX)
		return ODX_ETOOBIG;
	int rc = ODX_EBUSY;
	for (int i = 0; i < 3 && rc == ODX_EBUSY; i++)
		rc = put_once(s, kr, tenant, name, value, len, actor, version);
	return rc;
}

struct policy {
	int64_t length;
	char alphabet[SECRET_GEN_MAX + 1];
	bool found;
};

static int read_policy(struct store_stmt *q, void *arg)
{
	struct policy *p = arg;
	p->found = true;
	p->length = store_col_is_null(q, 0) ? 0 : store_col_int(q, 0);
	if (!store_col_is_null(q, 1))
		store_col_copy(q, 1, p->alphabet, sizeof(p->alphabet));
	return 0;
}

/* length characters drawn uniformly from alphabet (rejection sampling: no modulo bias). */
static int generate(const struct policy *p, uint8_t *out)
{
	const char *a = p->alphabet[0] ? p->alphabet : DEFAULT_ALPHABET;
	size_t n = strlen(a), limit = 256 - 256 % n;
	for (int64_t i = 0; i < p->length;) {
		uint8_t b[64];
		if (random_bytes(b, sizeof(b)) < 0)
			return ODX_EINTERNAL;
		for (size_t j = 0; j < sizeof(b) && i < p->length; j++)
			if (b[j] < limit)
				out[i++] = (uint8_t)a[b[j] % n];
		explicit_bzero(b, sizeof(b));
	}
	return 0;
}

int secret_rotate(struct store *s, struct secrets_keyring *kr, const char *tenant,
		  const char *name, const uint8_t *value, size_t len, const char *actor,
		  int64_t *version)
{
	struct policy p = {0};
	int rc = store_read(s, tenant,
			    "SELECT generate_length, generate_alphabet FROM secrets WHERE name = ?",
			    STORE_ARGS(S_TEXT(name)), read_policy, &p);
	if (rc < 0)
		return rc;
	if (!p.found)
		return ODX_ENOTFOUND; /* rotating makes no new secret: PUT does */
	if (value)
		return secret_put(s, kr, tenant, name, value, len, actor, version);
	if (p.length <= 0)
		return ODX_EINVAL; /* nothing to generate from: a value is needed */
	uint8_t gen[SECRET_GEN_MAX];
	rc = generate(&p, gen);
	if (rc == 0)
		rc = secret_put(s, kr, tenant, name, gen, (size_t)p.length, actor, version);
	explicit_bzero(gen, sizeof(gen));
	return rc;
}

int secret_set_policy(struct store *s, const char *tenant, const char *name, int64_t interval_s,
		      int64_t length, const char *alphabet)
{
	int rc = store_write(s, tenant,
			     "UPDATE secrets SET rotate_every_s = ?, generate_length = ?, "
			     "generate_alphabet = ? WHERE name = ?",
			     STORE_ARGS(interval_s > 0 ? S_INT(interval_s) : S_NULL,
					length > 0 ? S_INT(length) : S_NULL,
					alphabet && alphabet[0] ? S_TEXT(alphabet) : S_NULL,
					S_TEXT(name)));
	return rc < 0 ? rc : rc == 0 ? ODX_ENOTFOUND : 0;
}

int secret_grant(struct store *s, const char *tenant, const char *name, const json_t *deployments)
{
	struct store_tx *tx;
	int64_t cur = 0;
	int rc = store_tx_begin(s, tenant, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = store_each(tx, "SELECT version FROM secrets WHERE name = ?", STORE_ARGS(S_TEXT(name)),
			read_int, &cur);
	if (rc >= 0 && cur == 0)
		rc = ODX_ENOTFOUND;
	if (rc >= 0)
		rc = store_exec(tx, "DELETE FROM secret_grants WHERE name = ?", STORE_ARGS(S_TEXT(name)));
	size_t i;
	json_t *v;
	json_array_foreach(deployments, i, v)
	{
		if (rc < 0)
			break;
		rc = store_exec(tx, "INSERT OR IGNORE INTO secret_grants (name, deployment) VALUES (?, ?)",
				STORE_ARGS(S_TEXT(name), S_TEXT(json_string_value(v))));
	}
	return store_tx_end(tx, rc < 0 ? rc : 0);
}

int secret_delete(struct store *s, const char *tenant, const char *name)
{
	int rc = store_write(s, tenant, "DELETE FROM secrets WHERE name = ?",
			     STORE_ARGS(S_TEXT(name)));
	return rc < 0 ? rc : rc == 0 ? ODX_ENOTFOUND : 0;
}

static int append_name(struct store_stmt *q, void *arg)
{
	return json_array_append_new(arg, json_string(store_col_text(q, 0))) == 0 ? 0 : ODX_ENOMEM;
}

static int append_version(struct store_stmt *q, void *arg)
{
	char at[TIME_RFC3339_LEN];
	time_format_rfc3339(store_col_int(q, 1), at);
	return json_array_append_new(arg, json_pack("{s:I, s:s}", "version",
						    (json_int_t)store_col_int(q, 0), "created_at",
						    at)) == 0
		   ? 0
		   : ODX_ENOMEM;
}

struct meta {
	json_t *list; /* secret_list: append here */
	json_t *one;  /* secret_get: the result */
};

static int read_meta(struct store_stmt *q, void *arg)
{
	struct meta *m = arg;
	char created[TIME_RFC3339_LEN], rotated[TIME_RFC3339_LEN];
	time_format_rfc3339(store_col_int(q, 3), created);
	time_format_rfc3339(store_col_int(q, 4), rotated);
	const char *name = store_col_text(q, 0);
	json_t *o = json_pack(
	    "{s:s, s:I, s:s, s:s, s:s, s:{s:o, s:o, s:o}}", "name", name, "version",
	    (json_int_t)store_col_int(q, 1), "created_by", store_col_text(q, 2), "created_at",
	    created, "rotated_at", rotated, "rotation", "every_seconds",
	    store_col_is_null(q, 5) ? json_null() : json_integer(store_col_int(q, 5)),
	    "generate_length",
	    store_col_is_null(q, 6) ? json_null() : json_integer(store_col_int(q, 6)),
	    "generate_alphabet",
	    store_col_is_null(q, 7) ? json_null() : json_string(store_col_text(q, 7)));
	if (!o)
		return ODX_ENOMEM;
	if (m->list)
		return json_array_append_new(m->list, o) == 0 ? 0 : ODX_ENOMEM;
	m->one = o;
	return 0;
}

#define META_COLS                                                                              \
	"SELECT name, version, created_by, created_at, rotated_at, rotate_every_s, "           \
	"generate_length, generate_alphabet FROM secrets "

/* Grants and versions of one secret, added to its metadata; in the reader's transaction. */
static int add_details(struct store_tx *tx, json_t *o)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	json_t *grants = json_array(), *versions = json_array();
	int rc = grants && versions ? 0 : ODX_ENOMEM;
	if (rc == 0)
		rc = store_each(tx,
				"SELECT deployment FROM secret_grants WHERE name = ? ORDER BY deployment",
				STORE_ARGS(S_TEXT(name)), append_name, grants);
	if (rc >= 0)
		rc = store_each(tx,
				"SELECT version, created_at FROM secret_versions WHERE name = ? ORDER BY "
				"version",
				STORE_ARGS(S_TEXT(name)), append_version, versions);
	json_object_set_new(o, "grants", grants ? grants : json_array());
	json_object_set_new(o, "versions", versions ? versions : json_array());
	return rc < 0 ? rc : 0;
}

/* Reads metadata rows (sql) into m and adds each one's details, all in one read transaction. */
static int read_metas(struct store *s, const char *tenant, const char *sql,
		      const struct store_arg *args, size_t nargs, struct meta *m)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, tenant, STORE_READ, &tx);
	if (rc < 0)
		return rc;
	rc = store_each(tx, sql, args, nargs, read_meta, m);
	if (rc == 0 && !m->list)
		rc = ODX_ENOTFOUND;
	if (m->one && rc >= 0)
		rc = add_details(tx, m->one);
	size_t i;
	json_t *v;
	json_array_foreach(m->list, i, v) if (rc >= 0) rc = add_details(tx, v);
	store_tx_abort(tx);
	return rc < 0 ? rc : 0;
}

int secret_get(struct store *s, const char *tenant, const char *name, json_t **out)
{
	struct meta m = {0};
	int rc = secret_name_valid(name) ? read_metas(s, tenant, META_COLS "WHERE name = ?",
						     STORE_ARGS(S_TEXT(name)), &m)
					 : ODX_ENOTFOUND;
	if (rc < 0) {
		json_decref(m.one);
		return rc;
	}
	*out = m.one;
	return 0;
}

int secret_list(struct store *s, const char *tenant, const char *after, int limit, json_t **items)
{
	struct meta m = {.list = json_array()};
	if (!m.list)
		return ODX_ENOMEM;
	int rc = read_metas(s, tenant, META_COLS "WHERE name > ? ORDER BY name LIMIT ?",
			    STORE_ARGS(S_TEXT(after ? after : ""), S_INT(limit + 1)), &m);
	if (rc < 0) {
		json_decref(m.list);
		return rc;
	}
	*items = m.list;
	return 0;
}

int secret_granted(struct store *s, const char *tenant, const char *name, const char *deployment)
{
	int64_t granted = 0;
	/* One read: no row when the secret does not exist, else whether the grant does. */
	int rc = store_read_one(s, tenant,
				"SELECT (SELECT count(*) FROM secret_grants g WHERE g.name = s.name AND "
				"g.deployment = ?) FROM secrets s WHERE s.name = ?",
				STORE_ARGS(S_TEXT(deployment), S_TEXT(name)), read_int, &granted);
	return rc < 0 ? rc : granted ? 0 : ODX_EFORBIDDEN;
}

struct sealed {
	int64_t version;
	uint8_t *blob;
	size_t len;
};

static int read_sealed(struct store_stmt *q, void *arg)
{
	struct sealed *x = arg;
	size_t n = 0;
	const void *b = store_col_blob(q, 1, &n);
	x->version = store_col_int(q, 0);
	x->blob = malloc(n ? n : 1);
	if (!x->blob)
		return ODX_ENOMEM;
	memcpy(x->blob, b, n);
	x->len = n;
	return 0;
}

int secret_value(struct store *s, struct secrets_keyring *kr, const char *tenant,
		 const char *name, uint8_t **value, size_t *len, int64_t *version)
{
	struct sealed x = {0};
	int rc = store_read_one(s, tenant,
				"SELECT v.version, v.sealed FROM secrets s JOIN secret_versions v "
				"ON v.name = s.name AND v.version = s.version WHERE s.name = ?",
				STORE_ARGS(S_TEXT(name)), read_sealed, &x);
	if (rc == 0)
		rc = secrets_open(kr, tenant, name, (uint64_t)x.version, x.blob, x.len, value, len);
	if (rc == 0)
		*version = x.version;
	free(x.blob);
	return rc;
}

int secret_deployments(struct store *s, const char *tenant, const char *name, json_t **out)
{
	json_t *a = json_array();
	int rc = a ? store_read(s, tenant, "SELECT deployment FROM secret_grants WHERE name = ?",
				STORE_ARGS(S_TEXT(name)), append_name, a)
		   : ODX_ENOMEM;
	if (rc < 0) {
		json_decref(a);
		return rc;
	}
	*out = a;
	return 0;
}

struct due_arg {
	const char *tenant;
	json_t *out;
};

static int append_due(struct store_stmt *q, void *arg)
{
	struct due_arg *d = arg;
	return json_array_append_new(d->out, json_pack("{s:s, s:s}", "tenant", d->tenant, "name",
						       store_col_text(q, 0))) == 0
		   ? 0
		   : ODX_ENOMEM;
}

int secret_due(struct store *s, const char *tenant, int64_t now_s, json_t *out)
{
	struct due_arg d = {tenant, out};
	int rc = store_read(s, tenant,
			    "SELECT name FROM secrets WHERE rotate_every_s IS NOT NULL AND "
			    "generate_length IS NOT NULL AND rotated_at / 1000000000 + rotate_every_s <= ?",
			    STORE_ARGS(S_INT(now_s)), append_due, &d);
	return rc < 0 ? rc : 0;
}

int secret_prune(struct store *s, const char *tenant, const char *name, int64_t keep_from,
		 int64_t *removed)
{
	int rc = store_write(s, tenant,
			     "DELETE FROM secret_versions WHERE name = ? AND version < ? AND "
			     "version < (SELECT version FROM secrets WHERE name = ?)",
			     STORE_ARGS(S_TEXT(name), S_INT(keep_from), S_TEXT(name)));
	if (rc < 0)
		return rc;
	*removed = rc;
	return 0;
}

static int append_old(struct store_stmt *q, void *arg)
{
	return json_array_append_new(arg, json_pack("{s:s, s:I}", "name", store_col_text(q, 0),
						    "version", (json_int_t)store_col_int(q, 1))) == 0
		   ? 0
		   : ODX_ENOMEM;
}

int secret_with_old_versions(struct store *s, const char *tenant, json_t **out)
{
	json_t *a = json_array();
	int rc = a ? store_read(s, tenant,
				"SELECT s.name, s.version FROM secrets s WHERE EXISTS (SELECT 1 FROM "
				"secret_versions v WHERE v.name = s.name AND v.version < s.version)",
				STORE_NOARGS, append_old, a)
		   : ODX_ENOMEM;
	if (rc < 0) {
		json_decref(a);
		return rc;
	}
	*out = a;
	return 0;
}
