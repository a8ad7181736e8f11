/*
 * kek.h — the key-encryption key (KEK): its file, its check value, and its
 * rotation.
 *
 * The KEK is 32 random bytes that wrap every tenant's data key. It is never
 * stored beside the data: it lives in a file outside the data directory
 * (odysseusd --kek-file), 64 lowercase hex digits and an optional newline,
 * mode 0600, owned by the daemon's user (or root). A file that group or
 * others may access, or that is not exactly that, is refused.
 *
 * Its id is the hex of the first 8 bytes of SHA-256(KEK). platform.db
 * records the current KEK's id and check value HMAC-SHA256(KEK,
 * "odysseus-kek-check-v1"), so a wrong key is told at start, before any
 * data key is read. docs/secrets.md has the whole key hierarchy.
 */
#ifndef ODX_SECRETS_KEK_H
#define ODX_SECRETS_KEK_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

#define SECRETS_KEK_ID_LEN 17 /* 16 hex + NUL */

/*
 * Creates a new random KEK file at path (mode 0600, written to a temporary
 * file, then linked into place so a half-written key is never seen and an
 * existing file is never replaced). An existing file is left alone. Sets
 * *created (may be NULL) to say which. 0 or -errno / ODX_ECRYPTO.
 */
int secrets_kek_init(const char *path, bool *created);

/* 0 when kek_path (existing or not) resolves outside data_dir; ODX_EINVAL when inside. */
int secrets_kek_outside(const char *kek_path, const char *data_dir);

/* Writes the id of the KEK recorded as current in platform.db; ODX_ENOTFOUND when none yet. */
int secrets_kek_current_id(struct store *s, char id[static SECRETS_KEK_ID_LEN]);

/*
 * Re-wraps every tenant's data key from the KEK in old_path to the one in
 * new_path, one transaction per tenant; values are not touched. Run it with
 * odysseusd stopped. Resumable: after a crash run it again with the same
 * two files and it finishes what is left (a data key wrapped by either key
 * is accepted). When it returns 0, only the new KEK is needed. ODX_EAUTH
 * when old_path is not the recorded KEK, ODX_ECONFLICT when another
 * rotation is unfinished, ODX_ECORRUPT when a data key opens with neither.
 */
int secrets_kek_rotate(const char *old_path, const char *new_path, struct store *s);

/*
 * secrets_kek_rotate that stops after re-wrapping max_tenants tenants' keys,
 * leaving the rotation unfinished exactly as a crash would (*finished says
 * whether it completed). For batches and for tests.
 */
int secrets_kek_rotate_some(const char *old_path, const char *new_path, struct store *s,
			    size_t max_tenants, bool *finished);

/*
 * A sentence for the operator about a KEK error from secrets_kek_* or
 * secrets_keyring_open (a wrong key, an open file mode, a bad file, an
 * unfinished rotation); odx_strerror for the rest. Static, never NULL.
 */
const char *secrets_kek_strerror(int rc);

#endif
