/*
 * tenancy.h — tenants, their quotas, users and the platform administrator.
 *
 * Where things live: a tenant row (name, quotas) and the login directory
 * (email -> tenant, user id; emails are unique across the platform) are in
 * the platform scope; a tenant's users are in that tenant's own database.
 * Writes that touch both scopes commit the platform side first (it reserves
 * the email) and undo it if the tenant side fails; a reservation left by a
 * crash in between points to no user and is reclaimed by the next claim.
 * Lock order: a platform transaction may be open while a tenant one is
 * opened, never the reverse.
 */
#ifndef ODX_TENANCY_H
#define ODX_TENANCY_H

#include <jansson.h>
#include <stdint.h>

#include "auth/password.h"
#include "authz/authz.h"
#include "crypto/random.h"
#include "store/store.h"

#define TENANT_NAME_MAX 64
#define EMAIL_MAX	255

struct quotas {
	int64_t cpu_millicores;
	int64_t memory_mb;
	int64_t containers;
	int64_t storage_mb;
};

struct tenant {
	char id[ID_MAX_LEN];
	char name[TENANT_NAME_MAX + 1];
	int64_t created_at;
	struct quotas quotas;
};

struct user {
	char id[ID_MAX_LEN];
	char tenant_id[ID_MAX_LEN]; /* "" for the platform administrator */
	char email[EMAIL_MAX + 1];
	enum role role;
	int64_t created_at;
};

/* Defaults of SPEC §4 as documented in docs/api.md. */
void quotas_default(struct quotas *q);
/* Checks the ranges (positive, bounded). 0 or ODX_EINVAL. */
int quotas_validate(const struct quotas *q);

/* Tenant names: 1-64 of [a-z0-9-], starting with a letter or digit. */
int tenant_name_validate(const char *name);
/* Lower-cases in place and checks the shape (one '@', no spaces or controls). */
int email_normalize(char *email);

/*
 * Creates a tenant with its first Admin (password already hashed).
 * ODX_ECONFLICT when the name or the email is taken (*conflict says which:
 * "name" or "email").
 */
int tenant_create(struct store *s, const char *name, const struct quotas *q,
		  const char *admin_email, const char *admin_hash, struct tenant *out,
		  struct user *admin, const char **conflict);
int tenant_get(struct store *s, const char *id, struct tenant *out);
/* Up to limit+1 tenants with id > after (after may be NULL), as JSON objects. */
int tenant_list(struct store *s, const char *after, int limit, json_t **items);
int tenant_rename(struct store *s, const char *id, const char *name, struct tenant *out);
int tenant_set_quotas(struct store *s, const char *id, const struct quotas *q, struct tenant *out);
/* Current usage: what the tenant's deployments ask for (replicas x resources). */
int tenant_usage(struct store *s, const char *id, struct quotas *usage);
/* The same inside the tenant's transaction tx, leaving out one deployment (NULL: none). */
int tenant_usage_tx(struct store_tx *tx, const char *except, struct quotas *usage);
/* Deletes a tenant and its data; ODX_ECONFLICT while a deployment has replicas. */
int tenant_delete(struct store *s, const char *id, int64_t now_ns);
/* Removes tenant database files that no tenant row names (left by a crash). */
int tenant_sweep_orphans(struct store *s, const char *data_dir);
json_t *tenant_to_json(const struct tenant *t);
json_t *quotas_to_json(const struct quotas *q);

/* Creates the platform administrator. ODX_ECONFLICT if the email is taken. */
int platform_admin_create(struct store *s, const char *email, const char *hash, struct user *out);
/* Number of platform administrators (init refuses to run twice). */
int platform_admin_count(struct store *s, int64_t *n);

int user_create(struct store *s, const char *tenant_id, const char *email, const char *hash,
		enum role role, struct user *out);
/* A tenant user, or the platform administrator when tenant_id is "". */
int user_get(struct store *s, const char *tenant_id, const char *id, struct user *out);
int user_list(struct store *s, const char *tenant_id, const char *after, int limit, json_t **items);
/* Changes role and/or password hash (NULL / ROLE_NONE leave them). */
int user_update(struct store *s, const char *tenant_id, const char *id, enum role role,
		const char *hash, struct user *out);
int user_delete(struct store *s, const char *tenant_id, const char *id);
/*
 * Finds the account behind an email for login: fills *out and the stored
 * password hash. ODX_ENOTFOUND when there is none.
 */
int user_find_login(struct store *s, const char *email, struct user *out,
		    char hash[static PASSWORD_HASH_MAX]);
json_t *user_to_json(const struct user *u);

#endif
