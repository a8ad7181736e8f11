/* sign.c — see sign.h. Keys are OpenSSL EVP_PKEYs of type ED25519. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/err.h"
#include "crypto/sign.h"
#include "crypto/x509.h"

struct sign_key {
	EVP_PKEY *pkey;
};

static int wrap(EVP_PKEY *pkey, struct sign_key **out)
{
	struct sign_key *k = calloc(1, sizeof(*k));
	if (!k) {
		EVP_PKEY_free(pkey);
		return ODX_ENOMEM;
	}
	k->pkey = pkey;
	*out = k;
	return 0;
}

int sign_key_generate(struct sign_key **out)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!pkey)
		return ODX_ECRYPTO;
	return wrap(pkey, out);
}

int sign_key_load(const char *path, struct sign_key **out)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!pkey)
		return ODX_ECORRUPT;
	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pkey);
		return ODX_ECORRUPT;
	}
	return wrap(pkey, out);
}

int sign_key_save(const struct sign_key *key, const char *path)
{
	return x509_write_private_key(key->pkey, path);
}

void sign_key_free(struct sign_key *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	free(key);
}

int sign_key_public(const struct sign_key *key, uint8_t out[static SIGN_PUB_LEN])
{
	size_t len = SIGN_PUB_LEN;
	if (EVP_PKEY_get_raw_public_key(key->pkey, out, &len) != 1 || len != SIGN_PUB_LEN)
		return ODX_ECRYPTO;
	return 0;
}

int sign_message(const struct sign_key *key, const void *msg, size_t n,
		 uint8_t sig[static SIGN_SIG_LEN])
{
	int rc = ODX_ECRYPTO;
	size_t siglen = SIGN_SIG_LEN;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		return ODX_ENOMEM;
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
	    EVP_DigestSign(ctx, sig, &siglen, msg, n) == 1 && siglen == SIGN_SIG_LEN)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	return rc;
}

int sign_verify(const uint8_t pub[static SIGN_PUB_LEN], const void *msg, size_t n,
		const uint8_t *sig, size_t siglen)
{
	if (siglen != SIGN_SIG_LEN)
		return ODX_EAUTH;
	EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, SIGN_PUB_LEN);
	if (!pkey)
		return ODX_ECRYPTO;
	int rc = ODX_ENOMEM;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx) {
		rc = ODX_EAUTH;
		if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
		    EVP_DigestVerify(ctx, sig, siglen, msg, n) == 1)
			rc = 0;
		EVP_MD_CTX_free(ctx);
	}
	EVP_PKEY_free(pkey);
	return rc;
}
