/* gcm.c — see gcm.h. */
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#include "core/err.h"
#include "secrets/gcm.h"

/* Fetched once: an implicit fetch on every init costs a lock and a lookup in
 * OpenSSL 3, which shows on 1 KiB values. Held for the life of the process. */
static EVP_CIPHER *gcm_cipher;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;

static void gcm_fetch(void)
{
	gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

/* A context keyed for one operation (enc 1: encrypt, 0: decrypt), with the AAD fed in. */
static int gcm_start(int enc, const uint8_t *key, const uint8_t *nonce, const void *aad,
		     size_t aadlen, EVP_CIPHER_CTX **out)
{
	pthread_once(&gcm_once, gcm_fetch);
	if (!gcm_cipher)
		return ODX_ECRYPTO;
	if (aadlen > INT_MAX)
		return ODX_ETOOBIG;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return ODX_ENOMEM;
	/* The default IV length of AES-GCM is 12 bytes: no EVP_CTRL_GCM_SET_IVLEN needed. */
	int ok = EVP_CipherInit_ex2(ctx, gcm_cipher, key, nonce, enc, NULL) == 1;
	int len;
	if (ok && aadlen > 0)
		ok = EVP_CipherUpdate(ctx, NULL, &len, aad, (int)aadlen) == 1;
	if (!ok) {
		EVP_CIPHER_CTX_free(ctx);
		return ODX_ECRYPTO;
	}
	*out = ctx;
	return 0;
}

int secrets_gcm_encrypt(const uint8_t key[static GCM_KEY_LEN],
			const uint8_t nonce[static GCM_NONCE_LEN], const void *aad, size_t aadlen,
			const void *in, size_t n, void *out, uint8_t tag[static GCM_TAG_LEN])
{
	if (n > INT_MAX)
		return ODX_ETOOBIG;
	EVP_CIPHER_CTX *ctx;
	int rc = gcm_start(1, key, nonce, aad, aadlen, &ctx);
	if (rc < 0)
		return rc;
	int len = 0, fin = 0;
	int ok = n == 0 || EVP_EncryptUpdate(ctx, out, &len, in, (int)n) == 1;
	ok = ok && EVP_EncryptFinal_ex(ctx, (uint8_t *)out + len, &fin) == 1;
	ok = ok && (size_t)len + (size_t)fin == n;
	ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, GCM_TAG_LEN, tag) == 1;
	/* Freeing the context cleanses its key schedule (the provider clears it). */
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : ODX_ECRYPTO;
}

int secrets_gcm_decrypt(const uint8_t key[static GCM_KEY_LEN],
			const uint8_t nonce[static GCM_NONCE_LEN], const void *aad, size_t aadlen,
			const void *in, size_t n, const uint8_t tag[static GCM_TAG_LEN], void *out)
{
	if (n > INT_MAX)
		return ODX_ETOOBIG;
	EVP_CIPHER_CTX *ctx;
	int rc = gcm_start(0, key, nonce, aad, aadlen, &ctx);
	if (rc < 0)
		return rc;
	int len = 0, fin = 0;
	/* The tag goes in before the final call, which compares it (in constant time). */
	int ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, GCM_TAG_LEN, (void *)tag) == 1;
	ok = ok && (n == 0 || EVP_DecryptUpdate(ctx, out, &len, in, (int)n) == 1);
	rc = ok ? 0 : ODX_ECRYPTO;
	if (ok && EVP_DecryptFinal_ex(ctx, (uint8_t *)out + len, &fin) != 1)
		rc = ODX_ECORRUPT;
	EVP_CIPHER_CTX_free(ctx);
	if (rc < 0 && n > 0)
		OPENSSL_cleanse(out, n);
	return rc;
}
