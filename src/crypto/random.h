/* random.h — cryptographically secure random bytes and ids (OpenSSL's DRBG). */
#ifndef ODX_RANDOM_H
#define ODX_RANDOM_H

#include <stddef.h>
#include <stdint.h>

#define ID_HEX_LEN 32 /* 128 random bits */
#define ID_MAX_LEN 48 /* prefix + '_' + 32 hex + NUL, prefix up to 14 chars */

/* Fills buf with n random bytes. Returns 0 or ODX_ECRYPTO. */
int random_bytes(void *buf, size_t n);
/* Writes "<prefix>_<32 hex>" into out. Returns 0 or ODX_ECRYPTO/ODX_EINVAL. */
int random_id(const char *prefix, char out[static ID_MAX_LEN]);
/* True when s is "<prefix>_<32 lowercase hex>" exactly. */
int random_id_valid(const char *prefix, const char *s);

#endif
