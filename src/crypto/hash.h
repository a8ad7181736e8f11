/* hash.h — SHA-256 and constant-time comparison. */
#ifndef ODX_HASH_H
#define ODX_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

/* out = SHA-256(data). Returns 0 or ODX_ECRYPTO. */
int hash_sha256(const void *data, size_t n, uint8_t out[static SHA256_LEN]);
/* Compares n bytes in time independent of their contents. */
bool hash_equal(const void *a, const void *b, size_t n);

#endif
