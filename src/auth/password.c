/* password.c — see password.h. */
#include <argon2.h>
#include <pthread.h>
#include <string.h>

#include "auth/password.h"
#include "core/err.h"
#include "crypto/random.h"

#define SALT_LEN 16
#define HASH_LEN 32

static uint32_t cost_m = 19456, cost_t = 2;
static char dummy_hash[PASSWORD_HASH_MAX];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

void password_set_params(uint32_t memory_kib, uint32_t iterations)
{
	cost_m = memory_kib;
	cost_t = iterations;
}

int password_hash(const char *pw, size_t len, char out[static PASSWORD_HASH_MAX])
{
	uint8_t salt[SALT_LEN];
	int rc = random_bytes(salt, sizeof(salt));
	if (rc < 0)
		return rc;
	if (len > PASSWORD_MAX_LEN)
		return ODX_EINVAL;
	if (argon2id_hash_encoded(cost_t, cost_m, 1, pw, len, salt, SALT_LEN, HASH_LEN, out,
				  PASSWORD_HASH_MAX) != ARGON2_OK)
		return ODX_ECRYPTO;
	return 0;
}

static void make_dummy(void)
{
	static const char pw[] = "odysseus-dummy-password";
	if (password_hash(pw, sizeof(pw) - 1, dummy_hash) < 0)
		dummy_hash[0] = '\0';
}

int password_verify(const char *encoded, const char *pw, size_t len)
{
	if (len > PASSWORD_MAX_LEN)
		return ODX_EAUTH;
	if (!encoded) {
		pthread_once(&dummy_once, make_dummy);
		if (dummy_hash[0])
			(void)argon2id_verify(dummy_hash, pw, len);
		return ODX_EAUTH;
	}
	/* argon2's verify compares the tags in constant time. */
	return argon2id_verify(encoded, pw, len) == ARGON2_OK ? 0 : ODX_EAUTH;
}

int password_policy_check(const char *pw, size_t len)
{
	if (len > PASSWORD_MAX_LEN || memchr(pw, '\0', len))
		return ODX_EINVAL;
	/* The minimum counts characters, not bytes: skip UTF-8 continuation bytes. */
	size_t chars = 0;
	for (size_t i = 0; i < len; i++)
		chars += ((unsigned char)pw[i] & 0xc0) != 0x80;
	return chars < PASSWORD_MIN_LEN ? ODX_EINVAL : 0;
}
