/*
 * gcm.h — AES-256-GCM in one call each way (OpenSSL EVP), the one cipher of
 * the secrets engine: values are sealed with it under data keys, and data
 * keys under the key-encryption key.
 *
 * The nonce is always 96 bits (GCM's native size: no GHASH of the IV) and
 * the tag always 128 bits; callers never choose shorter ones. A nonce must
 * never repeat under one key: callers draw it from the CSPRNG.
 */
#ifndef ODX_SECRETS_GCM_H
#define ODX_SECRETS_GCM_H

#include <stddef.h>
#include <stdint.h>

#define GCM_KEY_LEN   32
#define GCM_NONCE_LEN 12
#define GCM_TAG_LEN   16

/*
 * Encrypts n bytes of in into out (n bytes; out may equal in) and writes the
 * tag. aad (aadlen bytes, may be NULL when 0) is authenticated, not
 * encrypted. Returns 0, ODX_ETOOBIG (n or aadlen above INT_MAX) or
 * ODX_ECRYPTO.
 */
int secrets_gcm_encrypt(const uint8_t key[static GCM_KEY_LEN],
			const uint8_t nonce[static GCM_NONCE_LEN], const void *aad, size_t aadlen,
			const void *in, size_t n, void *out, uint8_t tag[static GCM_TAG_LEN]);

/*
 * Decrypts n bytes of in into out (out may equal in) and checks the tag.
 * Returns 0, ODX_ECORRUPT when the tag does not match (out is zeroed: a
 * forgery's plaintext is never seen), ODX_ETOOBIG or ODX_ECRYPTO.
 */
int secrets_gcm_decrypt(const uint8_t key[static GCM_KEY_LEN],
			const uint8_t nonce[static GCM_NONCE_LEN], const void *aad, size_t aadlen,
			const void *in, size_t n, const uint8_t tag[static GCM_TAG_LEN], void *out);

#endif
