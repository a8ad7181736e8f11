/*
 * fuzz-b64url.c — the strict decoders of core/encoding.h.
 *
 * base64url: a text that decodes must be the canonical encoding of what it
 * decodes to (re-encoding gives the same bytes back), with the length the
 * format implies; and any bytes encode and decode back to themselves.
 * hex: the same for lowercase hex. parse_int64: an accepted string lies in
 * the range asked for and means what strtoll reads in it.
 * Any mismatch aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/encoding.h"
#include "core/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void b64_text(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	uint8_t *out = malloc(size + 1);
	if (!out)
		return;
	size_t n = (size_t)-1;
	int rc = b64url_decode(in, size, out, size, &n);
	if (rc == 0) {
		if (size % 4 == 1 || n != size / 4 * 3 + (size % 4 ? size % 4 - 1 : 0))
			abort();
		if (b64url_encoded_len(n) != size)
			abort();
		char *enc = malloc(size + 1);
		if (!enc)
			abort();
		b64url_encode(out, n, enc);
		if (memcmp(enc, in, size) != 0 || enc[size] != '\0')
			abort();
		free(enc);
		/* a buffer one byte short is refused, never overrun */
		if (n > 0) {
			size_t m = 12345;
			if (b64url_decode(in, size, out, n - 1, &m) != ODX_ETOOBIG || m != 12345)
				abort();
		}
	} else if (rc != ODX_EINVAL) {
		abort();
	} else if (n != (size_t)-1) {
		abort(); /* output parameter written on failure */
	}
	free(out);
}

static void b64_bytes(const uint8_t *data, size_t size)
{
	size_t elen = b64url_encoded_len(size);
	char *enc = malloc(elen + 1);
	uint8_t *back = malloc(size + 1);
	if (enc && back) {
		b64url_encode(data, size, enc);
		if (strlen(enc) != elen)
			abort();
		size_t n;
		if (b64url_decode(enc, elen, back, size, &n) != 0 || n != size ||
		    memcmp(back, data, size) != 0)
			abort();
	}
	free(enc);
	free(back);
}

static void hex(const uint8_t *data, size_t size)
{
	if (size % 2)
		return;
	uint8_t *out = malloc(size / 2 + 1);
	char *enc = malloc(size + 1);
	if (out && enc && hex_decode((const char *)data, size / 2, out) == 0) {
		hex_encode(out, size / 2, enc);
		if (memcmp(enc, data, size) != 0)
			abort();
	}
	free(out);
	free(enc);
}

static void int64(const uint8_t *data, size_t size)
{
	if (size > 40 || size < 2 || memchr(data + 1, '\0', size - 1))
		return;
	/* the first byte picks the range */
	static const int64_t ranges[][2] = {
		{INT64_MIN, INT64_MAX}, {0, 64}, {-100, 100}, {1, 4194304}, {0, 0},
	};
	const int64_t *r = ranges[data[0] % 5];
	char s[48];
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	int64_t v = 42;
	int rc = parse_int64(s, r[0], r[1], &v);
	if (rc == 0) {
		if (v < r[0] || v > r[1])
			abort();
		errno = 0;
		char *end;
		long long w = strtoll(s, &end, 10);
		if (errno || *end || w != v || s[0] == '+' || s[0] == ' ')
			abort();
	} else if (rc != ODX_EINVAL || v != 42) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	b64_text(data, size);
	b64_bytes(data, size);
	hex(data, size);
	int64(data, size);
	return 0;
}
