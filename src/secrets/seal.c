/* seal.c — see seal.h. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "crypto/random.h"
#include "secrets/internal.h"
#include "secrets/seal.h"

#define SEAL_AAD_LABEL "odysseus-secret-v1"
#define SEAL_AAD_MAX   (sizeof(SEAL_AAD_LABEL) + SECRETS_TENANT_MAX + 1 + SECRETS_NAME_MAX + 1 + 8)

/* A plaintext buffer: its length sits in front, so freeing knows how much to zero. */
#define PLAIN_HEAD 16

/* Builds the associated data into aad (SEAL_AAD_MAX bytes); 0 when tenant or name is bad. */
static size_t seal_aad(const char *tenant, const char *name, uint64_t version, uint8_t *aad)
{
	size_t tl = strlen(tenant), nl = strlen(name), off = 0;
	if (tl == 0 || tl > SECRETS_TENANT_MAX || nl == 0 || nl > SECRETS_NAME_MAX)
		return 0;
	/* Each string ends with its NUL, so no two (tenant, name) pairs give the same bytes. */
	memcpy(aad, SEAL_AAD_LABEL, sizeof(SEAL_AAD_LABEL));
	off += sizeof(SEAL_AAD_LABEL);
	memcpy(aad + off, tenant, tl + 1);
	off += tl + 1;
	memcpy(aad + off, name, nl + 1);
	off += nl + 1;
	for (int i = 7; i >= 0; i--)
		aad[off++] = (uint8_t)(version >> (8 * i));
	return off;
}

int secrets_seal(struct secrets_keyring *kr, const char *tenant, const char *name, uint64_t version,
		 const void *plain, size_t n, uint8_t **blob, size_t *bloblen)
{
	uint8_t aad[SEAL_AAD_MAX];
	size_t aadlen = seal_aad(tenant, name, version, aad);
	if (aadlen == 0 || (!plain && n > 0))
		return ODX_EINVAL;
	if (n > SECRETS_VALUE_MAX)
		return ODX_ETOOBIG;
	uint8_t *out = malloc(n + SECRETS_SEAL_OVERHEAD);
	if (!out)
		return ODX_ENOMEM;
	uint8_t *nonce = out + 1, *ct = nonce + GCM_NONCE_LEN, *tag = ct + n;
	out[0] = SECRETS_FORMAT_V1;
	int rc = random_bytes(nonce, GCM_NONCE_LEN);
	const uint8_t *dek;
	if (rc == 0)
		rc = secrets_keyring_dek_acquire(kr, tenant, true, &dek);
	if (rc == 0) {
		rc = secrets_gcm_encrypt(dek, nonce, aad, aadlen, plain, n, ct, tag);
		secrets_keyring_dek_release(kr);
	}
	if (rc < 0) {
		free(out);
		return rc;
	}
	*blob = out;
	*bloblen = n + SECRETS_SEAL_OVERHEAD;
	return 0;
}

static uint8_t *plain_alloc(size_t n)
{
	uint8_t *p = malloc(PLAIN_HEAD + n + 1);
	if (!p)
		return NULL;
	memcpy(p, &n, sizeof(n));
	p[PLAIN_HEAD + n] = '\0';
	return p + PLAIN_HEAD;
}

void secrets_free_plain(uint8_t *plain)
{
	if (!plain)
		return;
	uint8_t *p = plain - PLAIN_HEAD;
	size_t n;
	memcpy(&n, p, sizeof(n));
	explicit_bzero(p, PLAIN_HEAD + n + 1);
	free(p);
}

int secrets_open(struct secrets_keyring *kr, const char *tenant, const char *name, uint64_t version,
		 const uint8_t *blob, size_t bloblen, uint8_t **plain, size_t *n)
{
	uint8_t aad[SEAL_AAD_MAX];
	size_t aadlen = seal_aad(tenant, name, version, aad);
	if (aadlen == 0)
		return ODX_EINVAL;
	/* A blob's size and format byte are checked before any key is touched. */
	if (!blob || bloblen < SECRETS_SEAL_OVERHEAD || blob[0] != SECRETS_FORMAT_V1 ||
	    bloblen - SECRETS_SEAL_OVERHEAD > SECRETS_VALUE_MAX)
		return ODX_ECORRUPT;
	size_t len = bloblen - SECRETS_SEAL_OVERHEAD;
	const uint8_t *nonce = blob + 1, *ct = nonce + GCM_NONCE_LEN, *tag = ct + len;
	uint8_t *out = plain_alloc(len);
	if (!out)
		return ODX_ENOMEM;
	const uint8_t *dek;
	int rc = secrets_keyring_dek_acquire(kr, tenant, false, &dek);
	if (rc == 0) {
		rc = secrets_gcm_decrypt(dek, nonce, aad, aadlen, ct, len, tag, out);
		secrets_keyring_dek_release(kr);
	}
	if (rc < 0) {
		secrets_free_plain(out);
		return rc;
	}
	*plain = out;
	*n = len;
	return 0;
}
