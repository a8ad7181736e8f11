/*
 * password.h — Argon2id password hashes in the PHC string format
 * ($argon2id$v=19$m=...,t=...,p=...$salt$hash), so the parameters travel
 * with each hash and can be raised later without breaking old ones.
 */
#ifndef ODX_PASSWORD_H
#define ODX_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PASSWORD_HASH_MAX 128
#define PASSWORD_MIN_LEN  12
#define PASSWORD_MAX_LEN  1024

/* Sets the cost of new hashes (memory in KiB, iterations). Call before threads start. */
void password_set_params(uint32_t memory_kib, uint32_t iterations);
/* Hashes pw with a fresh random salt into out. Returns 0 or ODX_ECRYPTO/ODX_EINVAL. */
int password_hash(const char *pw, size_t len, char out[static PASSWORD_HASH_MAX]);
/*
 * Verifies pw against an encoded hash: 0 on match, ODX_EAUTH otherwise.
 * With encoded NULL, spends the same work against a dummy hash and fails,
 * so an unknown account costs what a wrong password costs.
 */
int password_verify(const char *encoded, const char *pw, size_t len);
/* Checks length limits and valid text (no NUL); 0 or ODX_EINVAL. */
int password_policy_check(const char *pw, size_t len);

#endif
