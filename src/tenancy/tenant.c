/* tenant.c — tenants and quotas; see tenancy.h. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "tenancy/internal.h"
#include "tenancy/tenancy.h"

#define TENANT_COLUMNS                                                                             \
	"id, name, created_at, quota_cpu_millicores, quota_memory_mb, quota_containers, "          \
	"quota_storage_mb"

void quotas_default(struct quotas *q)
{
	q->cpu_millicores = 4000;
	q->memory_mb = 8192;
	q->containers = 20;
	q->storage_mb = 10240;
}

int quotas_validate(const struct quotas *q)
{
	if (q->cpu_millicores < 1 || q->cpu_millicores > 1024 * 1000)
		return ODX_EINVAL;
	if (q->memory_mb < 1 || q->memory_mb > 64LL * 1024 * 1024)
		return ODX_EINVAL;
	if (q->containers < 0 || q->containers > 100000)
		return ODX_EINVAL;
	if (q->storage_mb < 0 || q->storage_mb > 1024LL * 1024 * 1024)
		return ODX_EINVAL;
	return 0;
}

int tenant_name_validate(const char *name)
{
	return name_validate(name, TENANT_NAME_MAX);
}

json_t *quotas_to_json(const struct quotas *q)
{
	return json_pack("{s:f, s:I, s:I, s:I}", "cpu_cores", (double)q->cpu_millicores / 1000.0,
			 "memory_mb", (json_int_t)q->memory_mb, "containers",
			 (json_int_t)q->containers, "storage_mb", (json_int_t)q->storage_mb);
}

json_t *tenant_to_json(const struct tenant *t)
{
	char ts[TIME_RFC3339_LEN];
	time_format_rfc3339(t->created_at, ts);
	return json_pack("{s:s, s:s, s:s, s:o}", "id", t->id, "name", t->name, "created_at", ts,
			 "quotas", quotas_to_json(&t->quotas));
}

struct tenant_row {
	struct tenant *t;
	json_t *list;
};

static int read_tenant(struct store_stmt *q, void *arg)
{
	struct tenant *t = ((struct tenant_row *)arg)->t;
	memset(t, 0, sizeof(*t));
	store_col_copy(q, 0, t->id, sizeof(t->id));
	store_col_copy(q, 1, t->name, sizeof(t->name));
	t->created_at = store_col_int(q, 2);
	t->quotas.cpu_millicores = store_col_int(q, 3);
	t->quotas.memory_mb = store_col_int(q, 4);
	t->quotas.containers = store_col_int(q, 5);
	t->quotas.storage_mb = store_col_int(q, 6);
	return 0;
}

static int append_tenant(struct store_stmt *q, void *arg)
{
	struct tenant_row *r = arg;
	read_tenant(q, r);
	return json_array_append_new(r->list, tenant_to_json(r->t)) == 0 ? 0 : ODX_ENOMEM;
}

static int ignore_row(struct store_stmt *q, void *arg)
{
	(void)q;
	(void)arg;
	return 0;
}

/* 1 when another tenant has the name, 0 when it is free. */
static int name_taken(struct store_tx *tx, const char *name, const char *except_id)
{
	return store_each(tx, "SELECT 1 FROM tenants WHERE name = ? AND id != ?",
			  STORE_ARGS(S_TEXT(name), S_TEXT(except_id)), ignore_row, NULL);
}

/* Undoes the platform half of a tenant whose tenant half failed. */
static void tenant_forget(struct store *s, const char *id)
{
	struct store_tx *tx;
	if (store_tx_begin(s, NULL, STORE_WRITE, &tx) < 0)
		return;
	store_exec(tx, "DELETE FROM login_directory WHERE tenant_id = ?", STORE_ARGS(S_TEXT(id)));
	store_exec(tx, "DELETE FROM tenants WHERE id = ?", STORE_ARGS(S_TEXT(id)));
	store_tx_commit(tx);
	store_tenant_destroy(s, id);
}

int tenant_create(struct store *s, const char *name, const struct quotas *q,
		  const char *admin_email, const char *admin_hash, struct tenant *out,
		  struct user *admin, const char **conflict)
{
	struct tenant t = {.created_at = time_now_ns(), .quotas = *q};
	struct user u = {.role = ROLE_ADMIN, .created_at = t.created_at};
	snprintf(t.name, sizeof(t.name), "%s", name);
	snprintf(u.email, sizeof(u.email), "%s", admin_email);
	int rc = random_id("ten", t.id);
	if (rc == 0)
		rc = random_id("usr", u.id);
	if (rc < 0)
		return rc;
	snprintf(u.tenant_id, sizeof(u.tenant_id), "%s", t.id);
	struct store_tx *tx;
	rc = store_tx_begin(s, NULL, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = name_taken(tx, t.name, "");
	if (rc == 1) {
		*conflict = "name";
		rc = ODX_ECONFLICT;
	} else if (rc == 0) {
		rc = tenancy_directory_claim(s, tx, u.email, t.id, u.id);
		if (rc == ODX_ECONFLICT)
			*conflict = "email";
	}
	if (rc == 0)
		rc = store_exec(
		    tx, "INSERT INTO tenants (" TENANT_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?)",
		    STORE_ARGS(S_TEXT(t.id), S_TEXT(t.name), S_INT(t.created_at),
			       S_INT(q->cpu_millicores), S_INT(q->memory_mb), S_INT(q->containers),
			       S_INT(q->storage_mb)));
	/* The tenant's file is made while the platform lock is held: no one can see a half tenant.
	 */
	if (rc >= 0)
		rc = store_tenant_create(s, t.id);
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	rc = store_tx_commit(tx);
	if (rc < 0) {
		store_tenant_destroy(s, t.id);
		return rc;
	}
	rc = tenancy_insert_user(s, &u, admin_hash);
	if (rc < 0) {
		tenant_forget(s, t.id);
		return rc;
	}
	*out = t;
	*admin = u;
	return 0;
}

int tenant_get(struct store *s, const char *id, struct tenant *out)
{
	if (!random_id_valid("ten", id))
		return ODX_ENOTFOUND;
	struct tenant_row r = {.t = out};
	return store_read_one(s, NULL, "SELECT " TENANT_COLUMNS " FROM tenants WHERE id = ?",
			      STORE_ARGS(S_TEXT(id)), read_tenant, &r);
}

int tenant_list(struct store *s, const char *after, int limit, json_t **items)
{
	struct tenant t;
	struct tenant_row r = {.t = &t, .list = json_array()};
	if (!r.list)
		return ODX_ENOMEM;
	int rc = store_read(
	    s, NULL, "SELECT " TENANT_COLUMNS " FROM tenants WHERE id > ? ORDER BY id LIMIT ?",
	    STORE_ARGS(S_TEXT(after ? after : ""), S_INT(limit + 1)), append_tenant, &r);
	if (rc < 0) {
		json_decref(r.list);
		return rc;
	}
	*items = r.list;
	return 0;
}

/* Runs one UPDATE on a tenant row, then reads it back. */
static int tenant_update(struct store *s, const char *id, const char *sql,
			 const struct store_arg *args, size_t nargs, const char *new_name,
			 struct tenant *out)
{
	if (!random_id_valid("ten", id))
		return ODX_ENOTFOUND;
	struct store_tx *tx;
	int rc = store_tx_begin(s, NULL, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	if (new_name) {
		rc = name_taken(tx, new_name, id);
		if (rc == 1)
			rc = ODX_ECONFLICT;
	}
	if (rc == 0)
		rc = store_exec(tx, sql, args, nargs);
	if (rc == 0)
		rc = ODX_ENOTFOUND;
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	rc = store_tx_commit(tx);
	return rc < 0 ? rc : tenant_get(s, id, out);
}

int tenant_rename(struct store *s, const char *id, const char *name, struct tenant *out)
{
	return tenant_update(s, id, "UPDATE tenants SET name = ? WHERE id = ?",
			     STORE_ARGS(S_TEXT(name), S_TEXT(id)), name, out);
}

int tenant_set_quotas(struct store *s, const char *id, const struct quotas *q, struct tenant *out)
{
	return tenant_update(s, id,
			     "UPDATE tenants SET quota_cpu_millicores = ?, quota_memory_mb = ?, "
			     "quota_containers = ?, quota_storage_mb = ? WHERE id = ?",
			     STORE_ARGS(S_INT(q->cpu_millicores), S_INT(q->memory_mb),
					S_INT(q->containers), S_INT(q->storage_mb), S_TEXT(id)),
			     NULL, out);
}

static int read_usage(struct store_stmt *q, void *arg)
{
	struct quotas *usage = arg;
	usage->cpu_millicores = store_col_int(q, 0);
	usage->memory_mb = store_col_int(q, 1);
	usage->containers = store_col_int(q, 2);
	usage->storage_mb = store_col_int(q, 3);
	return 0;
}

int tenant_usage_tx(struct store_tx *tx, const char *except, struct quotas *usage)
{
	memset(usage, 0, sizeof(*usage));
	int rc = store_each(tx,
			    "SELECT coalesce(sum(replicas * cpu_millicores), 0), "
			    "coalesce(sum(replicas * memory_mb), 0), coalesce(sum(replicas), 0), "
			    "coalesce(sum(replicas * storage_mb), 0) FROM deployments WHERE name != ?",
			    STORE_ARGS(S_TEXT(except ? except : "")), read_usage, usage);
	return rc < 0 ? rc : 0;
}

int tenant_usage(struct store *s, const char *id, struct quotas *usage)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, id, STORE_READ, &tx);
	if (rc < 0)
		return rc;
	rc = tenant_usage_tx(tx, NULL, usage);
	store_tx_abort(tx); /* a read: nothing to commit */
	return rc;
}

int tenant_delete(struct store *s, const char *id, int64_t now_ns)
{
	struct tenant t;
	int rc = tenant_get(s, id, &t);
	if (rc < 0)
		return rc;
	struct store_tx *tx;
	rc = store_tx_begin(s, NULL, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	/* Checked under the platform write lock, so no new workload can be placed meanwhile. */
	struct quotas usage;
	rc = tenant_usage(s, id, &usage);
	if (rc == 0 && usage.containers > 0)
		rc = ODX_ECONFLICT;
	const char *const cleanup[] = {
	    "DELETE FROM login_directory WHERE tenant_id = ?",
	    "DELETE FROM api_key_directory WHERE tenant_id = ?",
	    "DELETE FROM tenants WHERE id = ?",
	};
	for (size_t i = 0; rc >= 0 && i < sizeof(cleanup) / sizeof(cleanup[0]); i++)
		rc = store_exec(tx, cleanup[i], STORE_ARGS(S_TEXT(id)));
	if (rc >= 0)
		rc = store_exec(tx,
				"UPDATE token_families SET revoked_at = ?, revoked_reason = "
				"'tenant_deleted' WHERE tenant_id = ? AND revoked_at IS NULL",
				STORE_ARGS(S_INT(now_ns), S_TEXT(id)));
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	rc = store_tx_commit(tx);
	/* Nothing points at the files any more; a crash here leaves them to the sweep. */
	if (rc == 0)
		rc = store_tenant_destroy(s, id);
	return rc;
}

int tenant_sweep_orphans(struct store *s, const char *data_dir)
{
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/tenants", data_dir);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n < 4 || strcmp(e->d_name + n - 3, ".db") != 0)
			continue;
		char id[ID_MAX_LEN];
		if (n - 3 >= sizeof(id))
			continue;
		memcpy(id, e->d_name, n - 3);
		id[n - 3] = '\0';
		struct tenant t;
		if (random_id_valid("ten", id) && tenant_get(s, id, &t) == ODX_ENOTFOUND)
			store_tenant_destroy(s, id);
	}
	closedir(d);
	return 0;
}
