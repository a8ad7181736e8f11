/* agent.c — see agent.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "agent/agent.h"
#include "core/encoding.h"
#include "core/err.h"
#include "crypto/random.h"

#define HOST_NAME_MAX_LEN 253

static bool lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int agent_token_parse(const char *token, struct agent_token *out)
{
	const size_t plen = sizeof(AGENT_TOKEN_PREFIX) - 1;
	const size_t len = plen + AGENT_FINGERPRINT_HEX + 1 + AGENT_SECRET_HEX;
	const char *fp = token + plen, *secret = fp + AGENT_FINGERPRINT_HEX + 1;

	/* strnlen: a long argument is refused without reading all of it. */
	if (token == NULL || strnlen(token, len + 1) != len ||
	    memcmp(token, AGENT_TOKEN_PREFIX, plen) != 0 || fp[AGENT_FINGERPRINT_HEX] != '-' ||
	    !lower_hex(fp, AGENT_FINGERPRINT_HEX) || !lower_hex(secret, AGENT_SECRET_HEX))
		return ODX_EINVAL;
	memcpy(out->fingerprint, fp, AGENT_FINGERPRINT_HEX);
	out->fingerprint[AGENT_FINGERPRINT_HEX] = '\0';
	memcpy(out->id, "ent_", 4);
	memcpy(out->id + 4, secret, AGENT_TOKEN_ID_HEX);
	out->id[4 + AGENT_TOKEN_ID_HEX] = '\0';
	return 0;
}

/* ---- URLs --------------------------------------------------------------------- */

static bool host_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > HOST_NAME_MAX_LEN || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* Splits the authority a[0..n) into host and port. */
static int parse_authority(const char *a, size_t n, struct agent_url *u, bool *v6)
{
	const char *colon;
	size_t hlen;
	unsigned char addr[16];
	int64_t port = 443;

	*v6 = n > 0 && a[0] == '[';
	if (*v6) {
		const char *close = memchr(a, ']', n);
		if (close == NULL)
			return ODX_EINVAL;
		hlen = (size_t)(close - a - 1);
		colon = close + 1 < a + n ? close + 1 : NULL;
		if (colon != NULL && *colon != ':')
			return ODX_EINVAL;
		if (hlen == 0 || hlen >= sizeof(u->host))
			return ODX_EINVAL;
		memcpy(u->host, a + 1, hlen);
		u->host[hlen] = '\0';
		if (inet_pton(AF_INET6, u->host, addr) != 1)
			return ODX_EINVAL;
	} else {
		colon = memchr(a, ':', n);
		hlen = colon != NULL ? (size_t)(colon - a) : n;
		if (!host_name_ok(a, hlen) || hlen >= sizeof(u->host))
			return ODX_EINVAL;
		memcpy(u->host, a, hlen);
		u->host[hlen] = '\0';
	}
	if (colon != NULL) {
		char digits[8];
		size_t dlen = (size_t)(a + n - colon - 1);
		if (dlen == 0 || dlen >= sizeof(digits))
			return ODX_EINVAL;
		memcpy(digits, colon + 1, dlen);
		digits[dlen] = '\0';
		if (parse_int64(digits, 1, 65535, &port) < 0)
			return ODX_EINVAL;
	}
	snprintf(u->port, sizeof(u->port), "%d", (int)port);
	return 0;
}

int agent_url_parse(const char *url, struct agent_url *out)
{
	static const char scheme[] = "https://";
	struct agent_url u;
	bool v6;

	if (url == NULL || strncasecmp(url, scheme, sizeof(scheme) - 1) != 0)
		return ODX_EINVAL;
	const char *a = url + sizeof(scheme) - 1;
	size_t n = strcspn(a, "/?#@");
	/* Only trailing slashes may follow the authority. */
	if (a[n] != '\0' && a[n] != '/')
		return ODX_EINVAL;
	if (a[n + strspn(a + n, "/")] != '\0')
		return ODX_EINVAL;
	if (parse_authority(a, n, &u, &v6) < 0)
		return ODX_EINVAL;
	int w = snprintf(u.base, sizeof(u.base), "https://%s%s%s:%s", v6 ? "[" : "", u.host,
			 v6 ? "]" : "", u.port);
	if (w < 0 || (size_t)w >= sizeof(u.base))
		return ODX_EINVAL;
	*out = u;
	return 0;
}

/* ---- backoff ------------------------------------------------------------------ */

void agent_backoff_reset(struct agent_backoff *b)
{
	b->bound_ms = AGENT_BACKOFF_MIN_MS;
}

int64_t agent_backoff_next(struct agent_backoff *b)
{
	int64_t bound = b->bound_ms;
	uint64_t r;

	if (bound < AGENT_BACKOFF_MIN_MS)
		bound = AGENT_BACKOFF_MIN_MS;
	if (bound > AGENT_BACKOFF_MAX_MS)
		bound = AGENT_BACKOFF_MAX_MS;
	/* Full jitter spreads agents that lost the control plane at once. */
	if (random_bytes(&r, sizeof(r)) < 0)
		r = (uint64_t)bound / 2;
	b->bound_ms = bound * 2 < AGENT_BACKOFF_MAX_MS ? bound * 2 : AGENT_BACKOFF_MAX_MS;
	return (int64_t)(r % ((uint64_t)bound + 1));
}

bool agent_node_id_valid(const char *s)
{
	size_t n = s != NULL ? strnlen(s, 65) : 0;
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}
