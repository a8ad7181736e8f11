/* test-encoding.c — hex, base64url (strict) and parse_int64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/encoding.h"
#include "core/err.h"
#include "crypto/random.h"

/* ---- hex ---------------------------------------------------------------- */

static void test_hex_round_trip(void **state)
{
	(void)state;
	uint8_t in[64], back[64];
	char text[2 * sizeof(in) + 1];
	for (size_t n = 0; n <= sizeof(in); n++) {
		assert_int_equal(random_bytes(in, sizeof(in)), 0);
		hex_encode(in, n, text);
		assert_int_equal(strlen(text), 2 * n);
		for (size_t i = 0; i < 2 * n; i++)
			assert_non_null(strchr("0123456789abcdef", text[i]));
		memset(back, 0xa5, sizeof(back));
		assert_int_equal(hex_decode(text, n, back), 0);
		assert_memory_equal(in, back, n);
	}
	const uint8_t known[] = {0x00, 0x01, 0xab, 0xff};
	hex_encode(known, sizeof(known), text);
	assert_string_equal(text, "0001abff");
}

static void test_hex_rejects(void **state)
{
	(void)state;
	uint8_t out[4];
	assert_int_equal(hex_decode("0G", 1, out), ODX_EINVAL);
	assert_int_equal(hex_decode("AB", 1, out), ODX_EINVAL); /* upper case is not canonical */
	assert_int_equal(hex_decode("a ", 1, out), ODX_EINVAL);
	assert_int_equal(hex_decode("-1", 1, out), ODX_EINVAL);
	assert_int_equal(hex_decode("00zz", 2, out), ODX_EINVAL);
	assert_int_equal(hex_decode("0\0", 1, out), ODX_EINVAL);
	assert_int_equal(hex_decode("0a1b", 2, out), 0);
	assert_int_equal(out[0], 0x0a);
	assert_int_equal(out[1], 0x1b);
}

/* ---- base64url ---------------------------------------------------------- */

static void test_b64url_vectors(void **state)
{
	(void)state;
	/* RFC 4648 §10 test vectors (without the padding of §4). */
	static const struct {
		const char *plain, *enc;
	} v[] = {
		{"", ""},         {"f", "Zg"},         {"fo", "Zm8"},          {"foo", "Zm9v"},
		{"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char out[16];
		size_t n = strlen(v[i].plain);
		assert_int_equal(b64url_encoded_len(n), strlen(v[i].enc));
		b64url_encode((const uint8_t *)v[i].plain, n, out);
		assert_string_equal(out, v[i].enc);
		uint8_t dec[16];
		size_t dlen = 999;
		assert_int_equal(b64url_decode(v[i].enc, strlen(v[i].enc), dec, sizeof(dec), &dlen), 0);
		assert_int_equal(dlen, n);
		assert_memory_equal(dec, v[i].plain, n);
	}
	/* The URL alphabet: 62 is '-', 63 is '_' (standard base64 has '+' and '/'). */
	const uint8_t hi[] = {0xfb, 0xff, 0xbf};
	char out[8];
	b64url_encode(hi, sizeof(hi), out);
	assert_string_equal(out, "-_-_");
}

static void test_b64url_round_trip(void **state)
{
	(void)state;
	uint8_t in[100], back[100];
	char text[200];
	for (size_t n = 0; n <= sizeof(in); n++) {
		assert_int_equal(random_bytes(in, sizeof(in)), 0);
		b64url_encode(in, n, text);
		assert_int_equal(strlen(text), b64url_encoded_len(n));
		assert_null(strchr(text, '='));
		assert_null(strchr(text, '+'));
		assert_null(strchr(text, '/'));
		size_t dlen = 0;
		assert_int_equal(b64url_decode(text, strlen(text), back, n, &dlen), 0);
		assert_int_equal(dlen, n);
		assert_memory_equal(in, back, n);
	}
}

static void assert_b64_rejected(const char *text, size_t len)
{
	uint8_t out[64];
	size_t dlen = 12345;
	int rc = b64url_decode(text, len, out, sizeof(out), &dlen);
	if (rc != ODX_EINVAL)
		fail_msg("b64url_decode accepted or misreported '%.*s': %d", (int)len, text, rc);
	assert_int_equal(dlen, 12345); /* output parameter untouched on failure */
}

static void test_b64url_rejects(void **state)
{
	(void)state;
	/* padding */
	assert_b64_rejected("Zg==", 4);
	assert_b64_rejected("Zm8=", 4);
	assert_b64_rejected("Zg=", 3);
	assert_b64_rejected("=", 1);
	assert_b64_rejected("Zm9v====", 8);
	/* characters outside the URL alphabet */
	assert_b64_rejected("Zm+v", 4);
	assert_b64_rejected("Zm/v", 4);
	assert_b64_rejected("Zm v", 4);
	assert_b64_rejected(" Zm9", 4);
	assert_b64_rejected("Zm8\n", 4);
	assert_b64_rejected("Zm9v\r\n", 6);
	assert_b64_rejected("Zm\0v", 4);
	assert_b64_rejected("Zm.v", 4);
	assert_b64_rejected("Zm\xc3\xa9", 4);
	/* non-zero trailing bits: "Zg" is the only text for "f", "Zm8" for "fo" */
	assert_b64_rejected("Zh", 2);
	assert_b64_rejected("Zv", 2);
	assert_b64_rejected("Zm9", 3);
	assert_b64_rejected("Zm_", 3);
	/* len % 4 == 1 can encode no whole byte */
	assert_b64_rejected("Z", 1);
	assert_b64_rejected("Zm9vY", 5);
	assert_b64_rejected("Zm9vYmFyZ", 9);
	assert_b64_rejected("A", 1); /* even with all-zero bits */
	assert_b64_rejected("Zm9vA", 5);
	assert_b64_rejected("AAAAA", 5);
}

static void test_b64url_capacity(void **state)
{
	(void)state;
	uint8_t out[6];
	size_t dlen = 77;
	assert_int_equal(b64url_decode("Zm9vYmFy", 8, out, 5, &dlen), ODX_ETOOBIG);
	assert_int_equal(dlen, 77);
	assert_int_equal(b64url_decode("Zm9vYmFy", 8, out, 6, &dlen), 0);
	assert_int_equal(dlen, 6);
	assert_memory_equal(out, "foobar", 6);
	assert_int_equal(b64url_decode("", 0, out, 0, &dlen), 0);
	assert_int_equal(dlen, 0);
}

/* ---- parse_int64 ------------------------------------------------------- */

static void assert_int_rejected(const char *s, int64_t min, int64_t max)
{
	int64_t v = 4242;
	int rc = parse_int64(s, min, max, &v);
	if (rc != ODX_EINVAL)
		fail_msg("parse_int64 accepted '%s' (rc %d)", s ? s : "(null)", rc);
	assert_int_equal(v, 4242);
}

static void test_parse_int64(void **state)
{
	(void)state;
	int64_t v = 0;
	assert_int_equal(parse_int64("0", INT64_MIN, INT64_MAX, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_int64("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(parse_int64("-17", -20, 0, &v), 0);
	assert_int_equal(v, -17);
	assert_int_equal(parse_int64("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(parse_int64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(parse_int64("100", 0, 100, &v), 0);
	assert_int_equal(v, 100);

	/* overflow */
	assert_int_rejected("9223372036854775808", INT64_MIN, INT64_MAX);
	assert_int_rejected("-9223372036854775809", INT64_MIN, INT64_MAX);
	assert_int_rejected("99999999999999999999999", INT64_MIN, INT64_MAX);
	/* range */
	assert_int_rejected("101", 0, 100);
	assert_int_rejected("-1", 0, 100);
	/* shape */
	assert_int_rejected(NULL, INT64_MIN, INT64_MAX);
	assert_int_rejected("", INT64_MIN, INT64_MAX);
	assert_int_rejected("-", INT64_MIN, INT64_MAX);
	assert_int_rejected("+", INT64_MIN, INT64_MAX);
	assert_int_rejected("+1", INT64_MIN, INT64_MAX);
	assert_int_rejected("--1", INT64_MIN, INT64_MAX);
	assert_int_rejected("-+1", INT64_MIN, INT64_MAX);
	assert_int_rejected(" 1", INT64_MIN, INT64_MAX);
	assert_int_rejected("1 ", INT64_MIN, INT64_MAX);
	assert_int_rejected("\t1", INT64_MIN, INT64_MAX);
	assert_int_rejected("1\n", INT64_MIN, INT64_MAX);
	assert_int_rejected("1x", INT64_MIN, INT64_MAX);
	assert_int_rejected("0x10", INT64_MIN, INT64_MAX);
	assert_int_rejected("1e3", INT64_MIN, INT64_MAX);
	assert_int_rejected("1.0", INT64_MIN, INT64_MAX);
	assert_int_rejected("1-", INT64_MIN, INT64_MAX);
	assert_int_rejected("\xd9\xa1", INT64_MIN, INT64_MAX); /* ARABIC-INDIC DIGIT ONE */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex_round_trip),
		cmocka_unit_test(test_hex_rejects),
		cmocka_unit_test(test_b64url_vectors),
		cmocka_unit_test(test_b64url_round_trip),
		cmocka_unit_test(test_b64url_rejects),
		cmocka_unit_test(test_b64url_capacity),
		cmocka_unit_test(test_parse_int64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
