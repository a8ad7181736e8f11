/* hash.c — see hash.h. */
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/err.h"
#include "crypto/hash.h"

int hash_sha256(const void *data, size_t n, uint8_t out[static SHA256_LEN])
{
	unsigned int len = 0;
	if (EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) != 1 || len != SHA256_LEN)
		return ODX_ECRYPTO;
	return 0;
}

bool hash_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}
