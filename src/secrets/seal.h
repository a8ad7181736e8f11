/*
 * seal.h — sealing secret values: AES-256-GCM under the tenant's data key,
 * bound to where the value belongs.
 *
 * A sealed value (a "blob", SECRETS_SEAL_OVERHEAD = 29 bytes longer than
 * the value):
 *   0x01 | nonce (12, fresh from the CSPRNG) | ciphertext (n) | tag (16)
 * with associated data
 *   "odysseus-secret-v1" 0x00 tenant-id 0x00 name 0x00 version (u64, big-endian)
 * so a blob moved to another tenant, name or version does not open. The
 * blob is not secret (store it as it is); the plaintext is.
 */
#ifndef ODX_SECRETS_SEAL_H
#define ODX_SECRETS_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "secrets/gcm.h"
#include "secrets/keyring.h"

#define SECRETS_VALUE_MAX     (64 * 1024) /* bytes of one value */
#define SECRETS_NAME_MAX      255	  /* bytes of a name (the API validates its alphabet) */
#define SECRETS_SEAL_OVERHEAD (1 + GCM_NONCE_LEN + GCM_TAG_LEN)

/*
 * Seals n bytes of plain (n <= SECRETS_VALUE_MAX) for the tenant's secret
 * name at version, creating the tenant's data key on first use. *blob is
 * n + SECRETS_SEAL_OVERHEAD bytes, the caller frees it with free().
 * Returns 0, ODX_ETOOBIG, ODX_EINVAL (empty or too long tenant or name),
 * ODX_ENOTFOUND (no such tenant), ODX_ECORRUPT (the tenant's data key does
 * not open), a store error.
 */
int secrets_seal(struct secrets_keyring *kr, const char *tenant, const char *name, uint64_t version,
		 const void *plain, size_t n, uint8_t **blob, size_t *bloblen);

/*
 * Opens a blob sealed for exactly this tenant, name and version. *plain
 * (NUL-terminated after its *n bytes, for text values) is freed by the
 * caller with secrets_free_plain, which zeroes it. Returns 0, ODX_ECORRUPT
 * when the blob was altered or belongs elsewhere (nothing is written out),
 * or the errors of secrets_seal.
 */
int secrets_open(struct secrets_keyring *kr, const char *tenant, const char *name, uint64_t version,
		 const uint8_t *blob, size_t bloblen, uint8_t **plain, size_t *n);

/* Zeroes and frees a plaintext from secrets_open; NULL is fine. */
void secrets_free_plain(uint8_t *plain);

#endif
