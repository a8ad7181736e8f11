/* random.c — see random.h. */
#include <openssl/rand.h>
#include <string.h>

#include "core/encoding.h"
#include "core/err.h"
#include "crypto/random.h"

int random_bytes(void *buf, size_t n)
{
	if (n > (size_t)INT32_MAX || RAND_bytes(buf, (int)n) != 1)
		return ODX_ECRYPTO;
	return 0;
}

int random_id(const char *prefix, char out[static ID_MAX_LEN])
{
	size_t plen = strlen(prefix);
	if (plen + 1 + ID_HEX_LEN + 1 > ID_MAX_LEN)
		return ODX_EINVAL;
	uint8_t raw[ID_HEX_LEN / 2];
	int rc = random_bytes(raw, sizeof(raw));
	if (rc < 0)
		return rc;
	memcpy(out, prefix, plen);
	out[plen] = '_';
	hex_encode(raw, sizeof(raw), out + plen + 1);
	return 0;
}

int random_id_valid(const char *prefix, const char *s)
{
	size_t plen = strlen(prefix);
	if (strncmp(s, prefix, plen) != 0 || s[plen] != '_')
		return 0;
	s += plen + 1;
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return 0;
	return n == ID_HEX_LEN;
}
