/* user.c — users, the platform administrator and the login directory; see tenancy.h. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/timeutil.h"
#include "tenancy/internal.h"
#include "tenancy/tenancy.h"

#define USER_COLUMNS "id, email, role, created_at, password_hash"
/* The platform administrator's row has the same shape as a tenant user's. */
#define ADMIN_COLUMNS "id, email, 'platform_admin', created_at, password_hash"

int email_normalize(char *email)
{
	size_t n = strlen(email);
	if (n < 3 || n > EMAIL_MAX)
		return ODX_EINVAL;
	const char *at = strchr(email, '@');
	if (!at || at == email || at[1] == '\0' || strchr(at + 1, '@'))
		return ODX_EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)email[i];
		if (c <= 0x20 || c == 0x7f)
			return ODX_EINVAL;
		email[i] = (char)tolower(c);
	}
	return 0;
}

json_t *user_to_json(const struct user *u)
{
	char ts[TIME_RFC3339_LEN];
	time_format_rfc3339(u->created_at, ts);
	/* Built field by field: json_pack's format parsing showed up in the list benchmark. */
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new_nocheck(o, "id", json_string_nocheck(u->id));
	json_object_set_new_nocheck(o, "email", json_string(u->email));
	json_object_set_new_nocheck(o, "role", json_string_nocheck(role_name(u->role)));
	json_object_set_new_nocheck(o, "created_at", json_string_nocheck(ts));
	return o;
}

/* Where a row of USER_COLUMNS goes; hash may be NULL when the caller does not need it. */
struct user_row {
	const char *tenant_id;
	struct user *u;
	char *hash;
	json_t *list;
};

static int read_user(struct store_stmt *q, void *arg)
{
	struct user_row *r = arg;
	struct user *u = r->u;
	memset(u, 0, sizeof(*u));
	store_col_copy(q, 0, u->id, sizeof(u->id));
	store_col_copy(q, 1, u->email, sizeof(u->email));
	u->role = role_parse(store_col_text(q, 2));
	u->created_at = store_col_int(q, 3);
	snprintf(u->tenant_id, sizeof(u->tenant_id), "%s", r->tenant_id);
	if (r->hash)
		store_col_copy(q, 4, r->hash, PASSWORD_HASH_MAX);
	return 0;
}

static int append_user(struct store_stmt *q, void *arg)
{
	struct user_row *r = arg;
	read_user(q, r);
	return json_array_append_new(r->list, user_to_json(r->u)) == 0 ? 0 : ODX_ENOMEM;
}

/* Reads a user of tenant_id ("" = the platform administrator) by id. */
static int read_user_by_id(struct store *s, const char *tenant_id, const char *id, struct user *u,
			   char *hash)
{
	struct user_row r = {.tenant_id = tenant_id, .u = u, .hash = hash};
	if (tenant_id[0])
		return store_read_one(s, tenant_id,
				      "SELECT " USER_COLUMNS " FROM users WHERE id = ?",
				      STORE_ARGS(S_TEXT(id)), read_user, &r);
	return store_read_one(s, NULL, "SELECT " ADMIN_COLUMNS " FROM platform_admins WHERE id = ?",
			      STORE_ARGS(S_TEXT(id)), read_user, &r);
}

static int ignore_row(struct store_stmt *q, void *arg)
{
	(void)q;
	(void)arg;
	return 0;
}

/* True when a directory row points at nothing (left by a crash or a half-done delete). */
static bool directory_row_orphaned(struct store *s, struct store_tx *ptx, const char *tenant_id,
				   const char *user_id)
{
	int rc;
	if (!tenant_id[0])
		rc = store_each(ptx, "SELECT 1 FROM platform_admins WHERE id = ?",
				STORE_ARGS(S_TEXT(user_id)), ignore_row, NULL);
	else
		rc = store_read(s, tenant_id, "SELECT 1 FROM users WHERE id = ?",
				STORE_ARGS(S_TEXT(user_id)), ignore_row, NULL);
	return rc == 0 || rc == ODX_ENOTFOUND; /* no row, or no tenant any more */
}

struct directory_entry {
	char tenant_id[ID_MAX_LEN];
	char user_id[ID_MAX_LEN];
};

static int read_directory(struct store_stmt *q, void *arg)
{
	struct directory_entry *d = arg;
	store_col_copy(q, 0, d->tenant_id, sizeof(d->tenant_id));
	store_col_copy(q, 1, d->user_id, sizeof(d->user_id));
	return 0;
}

#define DIRECTORY_LOOKUP                                                                           \
	"SELECT coalesce(tenant_id, ''), user_id FROM login_directory WHERE email = ?"

int tenancy_directory_claim(struct store *s, struct store_tx *ptx, const char *email,
			    const char *tenant_id, const char *user_id)
{
	struct directory_entry d;
	int rc = store_each(ptx, DIRECTORY_LOOKUP, STORE_ARGS(S_TEXT(email)), read_directory, &d);
	if (rc == 1) {
		if (!directory_row_orphaned(s, ptx, d.tenant_id, d.user_id))
			return ODX_ECONFLICT;
		rc = store_exec(ptx, "DELETE FROM login_directory WHERE email = ?",
				STORE_ARGS(S_TEXT(email)));
	}
	if (rc < 0)
		return rc;
	rc = store_exec(
	    ptx, "INSERT INTO login_directory (email, tenant_id, user_id) VALUES (?, ?, ?)",
	    STORE_ARGS(S_TEXT(email), tenant_id[0] ? S_TEXT(tenant_id) : S_NULL, S_TEXT(user_id)));
	return rc < 0 ? rc : 0;
}

static int directory_release(struct store *s, const char *email, const char *user_id)
{
	int rc = store_write(s, NULL, "DELETE FROM login_directory WHERE email = ? AND user_id = ?",
			     STORE_ARGS(S_TEXT(email), S_TEXT(user_id)));
	return rc < 0 ? rc : 0;
}

/* Runs claim (and then sql, when given) in one platform write transaction. */
static int directory_claim_and(struct store *s, const struct user *u, const char *sql,
			       const struct store_arg *args, size_t nargs)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, NULL, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = tenancy_directory_claim(s, tx, u->email, u->tenant_id, u->id);
	if (rc == 0 && sql)
		rc = store_exec(tx, sql, args, nargs);
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	return store_tx_commit(tx);
}

int platform_admin_create(struct store *s, const char *email, const char *hash, struct user *out)
{
	struct user u = {.role = ROLE_PLATFORM_ADMIN, .created_at = time_now_ns()};
	snprintf(u.email, sizeof(u.email), "%s", email);
	int rc = random_id("usr", u.id);
	if (rc == 0)
		rc = directory_claim_and(
		    s, &u,
		    "INSERT INTO platform_admins (id, email, password_hash, "
		    "created_at) VALUES (?, ?, ?, ?)",
		    STORE_ARGS(S_TEXT(u.id), S_TEXT(u.email), S_TEXT(hash), S_INT(u.created_at)));
	if (rc == 0 && out)
		*out = u;
	return rc;
}

static int read_count(struct store_stmt *q, void *arg)
{
	*(int64_t *)arg = store_col_int(q, 0);
	return 0;
}

int platform_admin_count(struct store *s, int64_t *n)
{
	return store_read_one(s, NULL, "SELECT count(*) FROM platform_admins", STORE_NOARGS,
			      read_count, n);
}

int tenancy_insert_user(struct store *s, const struct user *u, const char *hash)
{
	int rc = store_write(s, u->tenant_id,
			     "INSERT INTO users (id, email, role, password_hash, created_at) "
			     "VALUES (?, ?, ?, ?, ?)",
			     STORE_ARGS(S_TEXT(u->id), S_TEXT(u->email), S_TEXT(role_name(u->role)),
					S_TEXT(hash), S_INT(u->created_at)));
	return rc < 0 ? rc : 0;
}

int user_create(struct store *s, const char *tenant_id, const char *email, const char *hash,
		enum role role, struct user *out)
{
	if (!role_is_tenant_role(role) || !tenant_id[0])
		return ODX_EINVAL;
	struct user u = {.role = role, .created_at = time_now_ns()};
	snprintf(u.email, sizeof(u.email), "%s", email);
	snprintf(u.tenant_id, sizeof(u.tenant_id), "%s", tenant_id);
	int rc = random_id("usr", u.id);
	if (rc == 0)
		rc = directory_claim_and(s, &u, NULL, STORE_NOARGS);
	if (rc < 0)
		return rc;
	rc = tenancy_insert_user(s, &u, hash);
	if (rc < 0) {
		directory_release(s, u.email, u.id);
		return rc;
	}
	*out = u;
	return 0;
}

int user_get(struct store *s, const char *tenant_id, const char *id, struct user *out)
{
	if (!random_id_valid("usr", id))
		return ODX_ENOTFOUND;
	return read_user_by_id(s, tenant_id, id, out, NULL);
}

int user_list(struct store *s, const char *tenant_id, const char *after, int limit, json_t **items)
{
	struct user u;
	struct user_row r = {.tenant_id = tenant_id, .u = &u, .list = json_array()};
	if (!r.list)
		return ODX_ENOMEM;
	int rc = store_read(
	    s, tenant_id, "SELECT " USER_COLUMNS " FROM users WHERE id > ? ORDER BY id LIMIT ?",
	    STORE_ARGS(S_TEXT(after ? after : ""), S_INT(limit + 1)), append_user, &r);
	if (rc < 0) {
		json_decref(r.list);
		return rc;
	}
	*items = r.list;
	return 0;
}

int user_update(struct store *s, const char *tenant_id, const char *id, enum role role,
		const char *hash, struct user *out)
{
	if (!random_id_valid("usr", id))
		return ODX_ENOTFOUND;
	struct store_tx *tx;
	int rc = store_tx_begin(s, tenant_id, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	/* An empty update still has to name an existing user. */
	rc = store_exec(tx, "UPDATE users SET id = id WHERE id = ?", STORE_ARGS(S_TEXT(id)));
	if (rc > 0 && role != ROLE_NONE)
		rc = store_exec(tx, "UPDATE users SET role = ? WHERE id = ?",
				STORE_ARGS(S_TEXT(role_name(role)), S_TEXT(id)));
	if (rc > 0 && hash)
		rc = store_exec(tx, "UPDATE users SET password_hash = ? WHERE id = ?",
				STORE_ARGS(S_TEXT(hash), S_TEXT(id)));
	if (rc == 0)
		rc = ODX_ENOTFOUND;
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	rc = store_tx_commit(tx);
	return rc < 0 ? rc : user_get(s, tenant_id, id, out);
}

int user_delete(struct store *s, const char *tenant_id, const char *id)
{
	struct user u;
	int rc = user_get(s, tenant_id, id, &u);
	if (rc == 0)
		rc = store_write(s, tenant_id, "DELETE FROM users WHERE id = ?",
				 STORE_ARGS(S_TEXT(id)));
	if (rc == 0)
		rc = ODX_ENOTFOUND;
	if (rc < 0)
		return rc;
	/* The user is gone; a directory row left by a crash here is reclaimed by the next claim. */
	return directory_release(s, u.email, u.id);
}

int user_find_login(struct store *s, const char *email, struct user *out,
		    char hash[static PASSWORD_HASH_MAX])
{
	struct directory_entry d;
	int rc = store_read_one(s, NULL, DIRECTORY_LOOKUP, STORE_ARGS(S_TEXT(email)),
				read_directory, &d);
	if (rc < 0)
		return rc;
	return read_user_by_id(s, d.tenant_id, d.user_id, out, hash);
}
