/*
 * keyring.h — the running secrets keyring: the KEK and the tenants' data
 * keys, held in memory that is kept out of core dumps and, where allowed,
 * locked out of swap.
 *
 * Each tenant has one data key (DEK, 32 random bytes), made on first use
 * and stored in the tenant's database wrapped by the KEK (kek.c has the
 * format). Unwrapped DEKs are cached in the locked region (a fixed number
 * of slots; the least recently filled goes first), so a seal or an open
 * costs no store access once the tenant's key is loaded.
 *
 * A keyring is safe to share between threads. It borrows the store, which
 * must outlive it.
 */
#ifndef ODX_SECRETS_KEYRING_H
#define ODX_SECRETS_KEYRING_H

#include <stdbool.h>
#include <stdint.h>

#include "secrets/kek.h"
#include "store/store.h"

struct secrets_keyring;

/*
 * Loads the KEK file at kek_path and checks it against the KEK recorded in
 * platform.db (recording it on the very first start). Reads only otherwise:
 * a wrong key changes nothing. Returns 0, or an error for
 * secrets_kek_strerror: ODX_EAUTH (wrong key), ODX_EFORBIDDEN (file mode
 * or owner), ODX_EINVAL (file contents), ODX_ECONFLICT (rotation
 * unfinished), -ENOENT. Caller frees with secrets_keyring_free.
 */
int secrets_keyring_open(const char *kek_path, struct store *s, struct secrets_keyring **out);
/* The same with the key given at start (e.g. from a pipe); the caller wipes its copy. */
int secrets_keyring_open_key(const uint8_t kek[static 32], struct store *s,
			     struct secrets_keyring **out);
/* Wipes every key and frees; NULL is fine. */
void secrets_keyring_free(struct secrets_keyring *kr);

/* True when the key memory is mlock'ed; false means RLIMIT_MEMLOCK refused it (log it). */
bool secrets_keyring_locked(const struct secrets_keyring *kr);
/* The id of the KEK in use. */
void secrets_keyring_kek_id(const struct secrets_keyring *kr, char id[static SECRETS_KEK_ID_LEN]);
/* Drops the tenant's cached data key (call when the tenant is deleted). */
void secrets_keyring_forget(struct secrets_keyring *kr, const char *tenant);

#endif
