/* internal.h — shared between tenant.c and user.c only; not part of the module's interface. */
#ifndef ODX_TENANCY_INTERNAL_H
#define ODX_TENANCY_INTERNAL_H

#include "store/store.h"
#include "tenancy/tenancy.h"

/* Reserves email for (tenant, user) inside an open platform write transaction. */
int tenancy_directory_claim(struct store *s, struct store_tx *ptx, const char *email,
			    const char *tenant_id, const char *user_id);
/* Inserts a user row into its tenant's database (email already reserved). */
int tenancy_insert_user(struct store *s, const struct user *u, const char *hash);

#endif
