/*
 * internal.h — shared by the secrets engine's files only (gcm.c, kek.c,
 * rotate.c, keyring.c, seal.c); not part of its interface.
 *
 * Tables (src/store/migrations.c):
 *   platform.db  secrets_kek(kek_id PK, role 'current'|'next' UNIQUE,
 *                            check_mac, created_at)
 *                one 'current' row: the KEK the data keys are wrapped by;
 *                a 'next' row only while a rotation is unfinished.
 *   tenant db    secret_data_keys(generation PK, kek_id, wrapped,
 *                                 created_at, wrapped_at)
 *                generation 1 is the tenant's data key (the only one yet).
 */
#ifndef ODX_SECRETS_INTERNAL_H
#define ODX_SECRETS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/hash.h"
#include "secrets/gcm.h"
#include "secrets/kek.h"
#include "secrets/keyring.h"
#include "store/store.h"

#define SECRETS_FORMAT_V1   1 /* first byte of a wrapped data key and of a sealed value */
#define SECRETS_WRAPPED_LEN (1 + GCM_NONCE_LEN + GCM_KEY_LEN + GCM_TAG_LEN)
#define SECRETS_DEK_GEN	    1
#define SECRETS_KEK_HEX_LEN (2 * GCM_KEY_LEN)
#define SECRETS_TENANT_MAX  47 /* the longest tenant id taken (ID_MAX_LEN - 1) */

/* A loaded KEK; always lives in memory from secrets_locked_alloc. */
struct secrets_kek {
	uint8_t key[GCM_KEY_LEN];
	char id[SECRETS_KEK_ID_LEN];
	char text[SECRETS_KEK_HEX_LEN + 2]; /* the file's bytes while they are parsed */
};

/*
 * Maps n bytes (rounded up to pages) of zeroed memory that stays out of
 * core dumps and forked children and, where RLIMIT_MEMLOCK allows, out of
 * swap; *locked tells whether mlock held. NULL when mmap fails.
 */
void *secrets_locked_alloc(size_t n, bool *locked);
/* Zeroes, unlocks and unmaps what secrets_locked_alloc(n) returned; NULL is fine. */
void secrets_locked_free(void *p, size_t n);

/* Reads and checks a KEK file into k. 0, -errno, ODX_EFORBIDDEN or ODX_EINVAL. */
int secrets_kek_load(const char *path, struct secrets_kek *k);
/* Sets k from raw key bytes and computes its id. 0 or ODX_ECRYPTO. */
int secrets_kek_set(const uint8_t key[static GCM_KEY_LEN], struct secrets_kek *k);
/*
 * Checks k against the KEK recorded in the platform database: 0 when it is
 * the current one, ODX_EAUTH when it is not, ODX_ECONFLICT while a rotation
 * is unfinished. With no KEK recorded: records k when record is true,
 * else ODX_ENOTFOUND. Reads only, unless it records.
 */
int secrets_kek_verify(struct store *s, const struct secrets_kek *k, bool record);

/* The KEK rows of platform.db. */
struct secrets_kek_row {
	char id[SECRETS_KEK_ID_LEN];
	uint8_t mac[SHA256_LEN];
	bool present;
};
struct secrets_kek_rows {
	struct secrets_kek_row current, next;
};
/* Reads them in tx (platform scope). 0 or ODX_ECORRUPT / a store error. */
int secrets_kek_rows_read(struct store_tx *tx, struct secrets_kek_rows *rows);
/* True when row records k (its id and its check value, compared in constant time). */
bool secrets_kek_row_is(const struct secrets_kek_row *row, const struct secrets_kek *k);
/* Inserts k's row with role ("current" or "next") in tx. */
int secrets_kek_row_insert(struct store_tx *tx, const struct secrets_kek *k, const char *role);

/* Wraps dek for tenant under k into out (SECRETS_WRAPPED_LEN bytes). 0 or ODX_ECRYPTO. */
int secrets_dek_wrap(const struct secrets_kek *k, const char *tenant,
		     const uint8_t dek[static GCM_KEY_LEN],
		     uint8_t out[static SECRETS_WRAPPED_LEN]);
/* Unwraps into dek. 0, or ODX_ECORRUPT when in is not a data key of tenant wrapped by k. */
int secrets_dek_unwrap(const struct secrets_kek *k, const char *tenant, const uint8_t *in, size_t n,
		       uint8_t dek[static GCM_KEY_LEN]);

/*
 * Finds (loading it, or creating it when create is true) the tenant's data
 * key and holds it for use: on 0, *dek points into locked memory and stays
 * valid until secrets_keyring_dek_release, which must follow soon (it holds
 * a read lock). ODX_ENOTFOUND: no such tenant; ODX_ECORRUPT: the key does
 * not open, or is missing when create is false.
 */
int secrets_keyring_dek_acquire(struct secrets_keyring *kr, const char *tenant, bool create,
				const uint8_t **dek);
void secrets_keyring_dek_release(struct secrets_keyring *kr);

#endif
