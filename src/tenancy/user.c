/* user.c — users, the platform administrator and the login directory; see tenancy.h. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/timeutil.h"
#include "tenancy/internal.h"
#include "tenancy/tenancy.h"

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

static void user_from_row(struct store_stmt *q, const char *tenant_id, struct user *u)
{
	memset(u, 0, sizeof(*u));
	store_col_copy(q, 0, u->id, sizeof(u->id));
	store_col_copy(q, 1, u->email, sizeof(u->email));
	u->role = role_parse(store_col_text(q, 2));
	u->created_at = store_col_int(q, 3);
	snprintf(u->tenant_id, sizeof(u->tenant_id), "%s", tenant_id);
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

/* True when the directory row points at nothing (left by a crash or a half-done delete). */
static bool directory_row_orphaned(struct store *s, struct store_tx *ptx, const char *tenant_id,
				   const char *user_id)
{
	struct store_stmt *q;
	int found = 1;
	if (!tenant_id[0]) {
		if (store_query(ptx, "SELECT 1 FROM platform_admins WHERE id = ?",
				STORE_ARGS(S_TEXT(user_id)), &q) < 0)
			return false;
		found = store_step(q);
		store_stmt_free(q);
		return found == 0;
	}
	struct store_tx *ttx;
	int rc = store_tx_begin(s, tenant_id, STORE_READ, &ttx);
	if (rc == ODX_ENOTFOUND)
		return true;
	if (rc < 0)
		return false;
	if (store_query(ttx, "SELECT 1 FROM users WHERE id = ?", STORE_ARGS(S_TEXT(user_id)),
			&q) == 0) {
		found = store_step(q);
		store_stmt_free(q);
	}
	store_tx_abort(ttx);
	return found == 0;
}

/* Reserves email for (tenant, user) inside a platform write transaction. */
static int directory_claim(struct store *s, struct store_tx *ptx, const char *email,
			   const char *tenant_id, const char *user_id)
{
	struct store_stmt *q;
	int rc = store_query(ptx, "SELECT coalesce(tenant_id, ''), user_id FROM login_directory "
				  "WHERE email = ?",
			     STORE_ARGS(S_TEXT(email)), &q);
	if (rc < 0)
		return rc;
	rc = store_step(q);
	if (rc == 1) {
		char tid[ID_MAX_LEN], uid[ID_MAX_LEN];
		store_col_copy(q, 0, tid, sizeof(tid));
		store_col_copy(q, 1, uid, sizeof(uid));
		store_stmt_free(q);
		if (!directory_row_orphaned(s, ptx, tid, uid))
			return ODX_ECONFLICT;
		rc = store_exec(ptx, "DELETE FROM login_directory WHERE email = ?",
				STORE_ARGS(S_TEXT(email)));
	} else {
		store_stmt_free(q);
	}
	if (rc < 0)
		return rc;
	rc = store_exec(ptx, "INSERT INTO login_directory (email, tenant_id, user_id) VALUES (?, ?, ?)",
			STORE_ARGS(S_TEXT(email), tenant_id[0] ? S_TEXT(tenant_id) : S_NULL,
				   S_TEXT(user_id)));
	return rc < 0 ? rc : 0;
}

static int directory_release(struct store *s, const char *email, const char *user_id)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, NULL, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = store_exec(tx, "DELETE FROM login_directory WHERE email = ? AND user_id = ?",
			STORE_ARGS(S_TEXT(email), S_TEXT(user_id)));
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	return store_tx_commit(tx);
}

/* Reserves email in its own platform transaction. */
static int directory_reserve(struct store *s, const char *email, const char *tenant_id,
			     const char *user_id)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, NULL, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = directory_claim(s, tx, email, tenant_id, user_id);
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
	if (rc < 0)
		return rc;
	struct store_tx *tx;
	rc = store_tx_begin(s, NULL, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = directory_claim(s, tx, u.email, "", u.id);
	if (rc == 0)
		rc = store_exec(tx,
				"INSERT INTO platform_admins (id, email, password_hash, created_at) "
				"VALUES (?, ?, ?, ?)",
				STORE_ARGS(S_TEXT(u.id), S_TEXT(u.email), S_TEXT(hash),
					   S_INT(u.created_at)));
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	rc = store_tx_commit(tx);
	if (rc == 0 && out)
		*out = u;
	return rc;
}

int platform_admin_count(struct store *s, int64_t *n)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, NULL, STORE_READ, &tx);
	if (rc < 0)
		return rc;
	struct store_stmt *q;
	rc = store_query(tx, "SELECT count(*) FROM platform_admins", STORE_NOARGS, &q);
	if (rc == 0) {
		rc = store_step(q) == 1 ? 0 : ODX_EIO;
		if (rc == 0)
			*n = store_col_int(q, 0);
		store_stmt_free(q);
	}
	store_tx_abort(tx);
	return rc;
}

/* Inserts the user row in the tenant's database (email already reserved). */
static int insert_user(struct store *s, const struct user *u, const char *hash)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, u->tenant_id, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = store_exec(tx,
			"INSERT INTO users (id, email, role, password_hash, created_at) "
			"VALUES (?, ?, ?, ?, ?)",
			STORE_ARGS(S_TEXT(u->id), S_TEXT(u->email), S_TEXT(role_name(u->role)),
				   S_TEXT(hash), S_INT(u->created_at)));
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	return store_tx_commit(tx);
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
		rc = directory_reserve(s, u.email, tenant_id, u.id);
	if (rc < 0)
		return rc;
	rc = insert_user(s, &u, hash);
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
	struct store_tx *tx;
	int rc = store_tx_begin(s, tenant_id[0] ? tenant_id : NULL, STORE_READ, &tx);
	if (rc < 0)
		return rc;
	struct store_stmt *q;
	if (tenant_id[0])
		rc = store_query(tx, "SELECT id, email, role, created_at FROM users WHERE id = ?",
				 STORE_ARGS(S_TEXT(id)), &q);
	else
		rc = store_query(tx,
				 "SELECT id, email, 'platform_admin', created_at FROM platform_admins "
				 "WHERE id = ?",
				 STORE_ARGS(S_TEXT(id)), &q);
	if (rc == 0) {
		rc = store_step(q);
		if (rc == 1) {
			user_from_row(q, tenant_id, out);
			rc = 0;
		} else if (rc == 0) {
			rc = ODX_ENOTFOUND;
		}
		store_stmt_free(q);
	}
	store_tx_abort(tx);
	return rc;
}

int user_list(struct store *s, const char *tenant_id, const char *after, int limit,
	      json_t **items)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, tenant_id, STORE_READ, &tx);
	if (rc < 0)
		return rc;
	struct store_stmt *q = NULL;
	rc = store_query(tx,
			 "SELECT id, email, role, created_at FROM users WHERE id > ? "
			 "ORDER BY id LIMIT ?",
			 STORE_ARGS(S_TEXT(after ? after : ""), S_INT(limit + 1)), &q);
	json_t *arr = json_array();
	if (rc == 0 && !arr)
		rc = ODX_ENOMEM;
	while (rc == 0 && (rc = store_step(q)) == 1) {
		struct user u;
		user_from_row(q, tenant_id, &u);
		rc = json_array_append_new(arr, user_to_json(&u)) == 0 ? 0 : ODX_ENOMEM;
	}
	store_stmt_free(q);
	store_tx_abort(tx);
	if (rc < 0) {
		json_decref(arr);
		return rc;
	}
	*items = arr;
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
	if (role != ROLE_NONE)
		rc = store_exec(tx, "UPDATE users SET role = ? WHERE id = ?",
				STORE_ARGS(S_TEXT(role_name(role)), S_TEXT(id)));
	if (rc >= 0 && hash)
		rc = store_exec(tx, "UPDATE users SET password_hash = ? WHERE id = ?",
				STORE_ARGS(S_TEXT(hash), S_TEXT(id)));
	if (rc == 0 && role == ROLE_NONE && !hash) {
		struct store_stmt *q;
		rc = store_query(tx, "SELECT 1 FROM users WHERE id = ?", STORE_ARGS(S_TEXT(id)), &q);
		if (rc == 0) {
			rc = store_step(q);
			store_stmt_free(q);
		}
	}
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
	if (rc < 0)
		return rc;
	struct store_tx *tx;
	rc = store_tx_begin(s, tenant_id, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = store_exec(tx, "DELETE FROM users WHERE id = ?", STORE_ARGS(S_TEXT(id)));
	if (rc == 0)
		rc = ODX_ENOTFOUND;
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	rc = store_tx_commit(tx);
	/* The user is gone; a leftover directory row would only be reclaimed later. */
	if (rc == 0)
		rc = directory_release(s, u.email, u.id);
	return rc;
}

int user_find_login(struct store *s, const char *email, struct user *out,
		    char hash[static PASSWORD_HASH_MAX])
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, NULL, STORE_READ, &tx);
	if (rc < 0)
		return rc;
	struct store_stmt *q;
	char tid[ID_MAX_LEN] = "", uid[ID_MAX_LEN] = "";
	rc = store_query(tx,
			 "SELECT coalesce(tenant_id, ''), user_id FROM login_directory WHERE email = ?",
			 STORE_ARGS(S_TEXT(email)), &q);
	if (rc == 0) {
		rc = store_step(q);
		if (rc == 1) {
			store_col_copy(q, 0, tid, sizeof(tid));
			store_col_copy(q, 1, uid, sizeof(uid));
			rc = 0;
		} else if (rc == 0) {
			rc = ODX_ENOTFOUND;
		}
		store_stmt_free(q);
	}
	if (rc == 0 && !tid[0]) {
		rc = store_query(tx,
				 "SELECT id, email, 'platform_admin', created_at, password_hash "
				 "FROM platform_admins WHERE id = ?",
				 STORE_ARGS(S_TEXT(uid)), &q);
		if (rc == 0) {
			rc = store_step(q);
			if (rc == 1) {
				user_from_row(q, "", out);
				store_col_copy(q, 4, hash, PASSWORD_HASH_MAX);
				rc = 0;
			} else if (rc == 0) {
				rc = ODX_ENOTFOUND;
			}
			store_stmt_free(q);
		}
		store_tx_abort(tx);
		return rc;
	}
	store_tx_abort(tx);
	if (rc < 0)
		return rc;
	rc = store_tx_begin(s, tid, STORE_READ, &tx);
	if (rc < 0)
		return rc;
	rc = store_query(tx,
			 "SELECT id, email, role, created_at, password_hash FROM users WHERE id = ?",
			 STORE_ARGS(S_TEXT(uid)), &q);
	if (rc == 0) {
		rc = store_step(q);
		if (rc == 1) {
			user_from_row(q, tid, out);
			store_col_copy(q, 4, hash, PASSWORD_HASH_MAX);
			rc = 0;
		} else if (rc == 0) {
			rc = ODX_ENOTFOUND;
		}
		store_stmt_free(q);
	}
	store_tx_abort(tx);
	return rc;
}

int tenancy_directory_claim(struct store *s, struct store_tx *ptx, const char *email,
			    const char *tenant_id, const char *user_id)
{
	return directory_claim(s, ptx, email, tenant_id, user_id);
}

int tenancy_insert_user(struct store *s, const struct user *u, const char *hash)
{
	return insert_user(s, u, hash);
}
