/*
 * test-jdoc.c — the read-only JSON document (core/jdoc.h).
 *
 * Two kinds of check. Direct ones pin the contract: every value type and
 * accessor (each NULL-safe), escapes, UTF-8, numbers, literals, whitespace,
 * the depth bound, duplicate keys on both sides of the linear/sorted switch,
 * big arrays, messages that never echo the input, every prefix of a real
 * report. Differential ones hold jdoc to jansson (json_loadb with
 * JSON_DECODE_ANY | JSON_REJECT_DUPLICATES), which the header promises to
 * match: the same accept/refuse answer and, when accepted, equal trees, on a
 * written list of tricky inputs, on every input of up to three bytes over an
 * alphabet of the grammar's bytes, on every one-byte change of a small
 * document, on every prefix of a small report and on the real reports.
 *
 * Two differences are expected, pinned and allowed for by agree(): jdoc's
 * max_depth counts containers while jansson's limit counts every value, so
 * N arrays around a scalar pass jdoc at max_depth N and fail jansson at N
 * (test_depth_vs_jansson); and jansson skips a NUL byte right after a number
 * or literal, which jdoc refuses (test_nul_after_token_vs_jansson).
 */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/jdoc.h"
#include "testdata.h"
#include "jdoc-same.h"

#define MARKER	      "s3cr3tMARK"
#define JANSSON_DEPTH 2048 /* JSON_PARSER_MAX_DEPTH of Debian 12's jansson 2.14 */
#define JANSSON_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)
#define SENTINEL_DOC  ((struct jdoc *)(uintptr_t)0x1)
/* clang-format off */
#define T(lit) {lit, sizeof(lit) - 1}
/* clang-format on */

/* ---- helpers ------------------------------------------------------------- */

/* The input as C-escaped text, for failure messages (static buffer). */
static const char *show(const char *s, size_t len)
{
	static char out[512];
	size_t o = 0;
	for (size_t i = 0; i < len && o + 5 < sizeof(out); i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

/* A refusal's message: "<kind> at byte N" or out of memory, printable, no MARKER. */
static void assert_msg_clean(const char *msg, size_t len)
{
	size_t n = strnlen(msg, JDOC_MSG_LEN);
	assert_true(n > 0 && n < JDOC_MSG_LEN);
	for (size_t i = 0; i < n; i++)
		assert_true(msg[i] >= 0x20 && msg[i] < 0x7f);
	if (strstr(msg, MARKER) || strstr(msg, "s3cr3t"))
		fail_msg("message echoes the input: %s", msg);
	const char *at = strstr(msg, " at byte ");
	if (!at) {
		assert_string_equal(msg, "out of memory reading JSON");
		return;
	}
	char *end;
	unsigned long long off = strtoull(at + 9, &end, 10);
	assert_true(end != at + 9 && *end == '\0');
	assert_true(off <= len);
}

static struct jdoc *parse_ok_n(const char *buf, size_t len, unsigned depth)
{
	struct jdoc *d = NULL;
	char msg[JDOC_MSG_LEN];
	int rc = jdoc_parse(buf, len, depth, &d, msg);
	if (rc != 0)
		fail_msg("refused '%s': %s", show(buf, len), msg);
	assert_non_null(d);
	assert_true(jdoc_bytes(d) > len);
	return d;
}

static struct jdoc *parse_ok(const char *buf)
{
	return parse_ok_n(buf, strlen(buf), 64);
}

/* Expects ODX_EINVAL, *out untouched and a clean message that starts with kind (if given). */
static void refused_n(const char *buf, size_t len, unsigned depth, const char *kind)
{
	struct jdoc *d = SENTINEL_DOC;
	char msg[JDOC_MSG_LEN];
	memset(msg, 'X', sizeof(msg));
	int rc = jdoc_parse(buf, len, depth, &d, msg);
	if (rc != ODX_EINVAL)
		fail_msg("'%s': rc %d, wanted a refusal", show(buf, len), rc);
	assert_ptr_equal(d, SENTINEL_DOC);
	assert_msg_clean(msg, len);
	if (kind && strncmp(msg, kind, strlen(kind)) != 0)
		fail_msg("'%s': message '%s', wanted '%s...'", show(buf, len), msg, kind);
}

#define REFUSED(lit)	  refused_n(lit, sizeof(lit) - 1, 64, NULL)
#define REFUSED_K(lit, k) refused_n(lit, sizeof(lit) - 1, 64, k)

/* Parses a one-value document and checks its string value is exactly want[0..wlen). */
static void string_is(const char *json, const char *want, size_t wlen)
{
	struct jdoc *d = parse_ok(json);
	const struct jval *v = jdoc_root(d);
	assert_true(jval_is_string(v));
	assert_int_equal(jval_len(v), wlen);
	assert_memory_equal(jval_str(v), want, wlen);
	assert_int_equal(jval_str(v)[wlen], '\0');
	jdoc_free(d);
}

#define STRING_IS(json, lit) string_is(json, lit, sizeof(lit) - 1)

/* open^n inner close^n, NUL-terminated. */
static char *nested(const char *open, const char *close, size_t n, const char *inner, size_t *len)
{
	size_t lo = strlen(open), lc = strlen(close), li = strlen(inner);
	size_t cap = n * (lo + lc) + li + 1, o = 0;
	char *s = malloc(cap);
	assert_non_null(s);
	for (size_t i = 0; i < n; i++, o += lo)
		memcpy(s + o, open, lo);
	memcpy(s + o, inner, li);
	o += li;
	for (size_t i = 0; i < n; i++, o += lc)
		memcpy(s + o, close, lc);
	s[o] = '\0';
	*len = o;
	return s;
}


/* ---- the jansson oracle (jdoc_same: jdoc-same.h) --------------------------- */

/* Every value counts one level, as jansson's limit does. */
static size_t value_depth(const struct jval *v)
{
	size_t max = 0;
	for (size_t i = 0; i < jval_len(v) && v->type != JVAL_STRING; i++) {
		const char *k;
		const struct jval *kid =
		    v->type == JVAL_ARRAY ? jval_at(v, i) : jval_member(v, i, &k);
		size_t dk = value_depth(kid);
		max = dk > max ? dk : max;
	}
	return max + 1;
}

/*
 * jansson 2.14 drops a NUL byte that directly follows a number or a literal:
 * it puts the lookahead byte back into a one-byte buffer where 0 means
 * "empty", so "[1\0]" reads as [1]. jdoc refuses such input. True when jdoc's
 * refusal (msg) is at such a NUL; *at is its offset.
 */
static bool jansson_drops_nul(const char *buf, size_t len, const char *msg, size_t *at)
{
	const char *pos = strstr(msg, " at byte ");
	if (!pos ||
	    (strncmp(msg, "NUL character", 13) != 0 && strncmp(msg, "trailing data", 13) != 0))
		return false;
	unsigned long long k = strtoull(pos + 9, NULL, 10);
	if (k == 0 || k >= len || buf[k] != '\0')
		return false;
	char c = buf[k - 1];
	*at = (size_t)k;
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
}

/* jdoc and jansson agree on buf[0..len): both refuse, or both accept equal trees. */
static void agree(const char *buf, size_t len)
{
	struct jdoc *d = SENTINEL_DOC;
	char msg[JDOC_MSG_LEN];
	int rc = jdoc_parse(buf, len, JANSSON_DEPTH, &d, msg);
	json_error_t e;
	json_t *j = json_loadb(buf, len, JANSSON_FLAGS, &e);
	size_t at;
	if (rc != 0) {
		assert_int_equal(rc, ODX_EINVAL);
		assert_ptr_equal(d, SENTINEL_DOC);
		assert_msg_clean(msg, len);
		json_decref(j);
		if (j && jansson_drops_nul(buf, len, msg, &at)) {
			char *cut = malloc(len); /* the input as jansson read it */
			assert_non_null(cut);
			memcpy(cut, buf, at);
			memcpy(cut + at, buf + at + 1, len - at - 1);
			agree(cut, len - 1);
			free(cut);
		} else if (j) {
			fail_msg("'%s': jdoc refused (%s), jansson accepted", show(buf, len), msg);
		}
		return;
	}
	bool deep = value_depth(jdoc_root(d)) > JANSSON_DEPTH; /* the other known difference */
	if (!j && !deep)
		fail_msg("'%s': jdoc accepted, jansson refused (%s)", show(buf, len), e.text);
	if (j && !jdoc_same(jdoc_root(d), j))
		fail_msg("'%s': jdoc and jansson read different values", show(buf, len));
	json_decref(j);
	jdoc_free(d);
}

/* ---- value types and accessors ------------------------------------------- */

static void test_types_and_accessors(void **state)
{
	(void)state;
	struct jdoc *d = parse_ok("{\"n\":null,\"f\":false,\"t\":true,\"i\":-42,\"r\":1.5,"
				  "\"s\":\"h\xc3\xa9llo\",\"a\":[7,\"x\"],\"o\":{\"k\":[]}}");
	const struct jval *root = jdoc_root(d);
	assert_true(jval_is_object(root));
	assert_int_equal(jval_len(root), 8);

	const struct jval *n = jval_get(root, "n"), *f = jval_get(root, "f"),
			  *t = jval_get(root, "t"), *i = jval_get(root, "i"),
			  *r = jval_get(root, "r"), *s = jval_get(root, "s"),
			  *a = jval_get(root, "a"), *o = jval_get(root, "o");
	assert_true(jval_is_null(n) && !jval_is_bool(n) && !jval_is_number(n));
	assert_true(jval_is_bool(f) && jval_is(f, JVAL_FALSE) && !jval_is_true(f));
	assert_true(jval_is_bool(t) && jval_is_true(t));
	assert_true(jval_is_int(i) && jval_is_number(i));
	assert_int_equal(jval_int(i), -42);
	assert_true(jval_num(i) == -42.0);
	assert_true(jval_is(r, JVAL_REAL) && jval_is_number(r) && !jval_is_int(r));
	assert_true(jval_num(r) == 1.5);
	assert_int_equal(jval_int(r), 0); /* a real is not an integer */
	assert_string_equal(jval_str(s), "h\xc3\xa9llo");
	assert_int_equal(jval_len(s), 6);
	assert_true(jval_is_array(a));
	assert_int_equal(jval_len(a), 2);
	assert_int_equal(jval_int(jval_at(a, 0)), 7);
	assert_string_equal(jval_str(jval_at(a, 1)), "x");
	assert_null(jval_at(a, 2));
	assert_true(jval_is_array(jval_get(o, "k")) && jval_len(jval_get(o, "k")) == 0);

	/* wrong types answer like absent values */
	assert_null(jval_str(i));
	assert_int_equal(jval_int(s), 0);
	assert_true(jval_num(s) == 0);
	assert_int_equal(jval_len(i), 0);
	assert_int_equal(jval_len(t), 0);
	assert_null(jval_at(o, 0));
	assert_null(jval_get(a, "k"));
	assert_null(jval_get(root, "absent"));
	assert_null(jval_get(root, "")); /* a prefix of no key, nor the empty key */
	const char *key = "untouched";
	assert_null(jval_member(a, 0, &key));
	assert_null(jval_member(root, 8, &key));
	assert_string_equal(key, "untouched");

	/* members in document order */
	static const char *const keys[] = {"n", "f", "t", "i", "r", "s", "a", "o"};
	const struct jval *m = jval_member(root, 3, &key);
	assert_string_equal(key, "i");
	assert_ptr_equal(m, i);
	size_t k;
	const struct jval *v;
	jval_object_foreach(root, k, key, v)
	{
		assert_string_equal(key, keys[k]);
		assert_ptr_equal(v, jval_get(root, keys[k]));
	}
	assert_int_equal(k, 8);
	int64_t sum = 0;
	jval_array_foreach(a, k, v) sum += jval_is_int(v) ? jval_int(v) : 100;
	assert_int_equal(k, 2);
	assert_int_equal(sum, 107);
	jdoc_free(d);
}

static void test_accessors_take_null(void **state)
{
	(void)state;
	for (int t = JVAL_NULL; t <= JVAL_OBJECT; t++)
		assert_false(jval_is(NULL, (enum jval_type)t));
	assert_false(jval_is_null(NULL) || jval_is_string(NULL) || jval_is_array(NULL) ||
		     jval_is_object(NULL) || jval_is_int(NULL) || jval_is_true(NULL) ||
		     jval_is_bool(NULL) || jval_is_number(NULL));
	assert_null(jval_str(NULL));
	assert_int_equal(jval_len(NULL), 0);
	assert_int_equal(jval_int(NULL), 0);
	assert_true(jval_num(NULL) == 0);
	assert_null(jval_at(NULL, 0));
	assert_null(jval_get(NULL, "a"));
	const char *key = "untouched";
	assert_null(jval_member(NULL, 0, &key));
	assert_string_equal(key, "untouched");
	size_t i;
	const struct jval *v;
	int runs = 0;
	jval_array_foreach(NULL, i, v) runs++;
	jval_object_foreach(NULL, i, key, v) runs++;
	assert_int_equal(runs, 0);
	jdoc_free(NULL);
}

static void test_empty_containers(void **state)
{
	(void)state;
	static const char *const empties[] = {"[]",   "{}",   " [ ] ",	    "{ \n}",
					      "[[]]", "[{}]", "{\"a\":{}}", "{\"a\":[]}"};
	for (size_t e = 0; e < sizeof(empties) / sizeof(empties[0]); e++) {
		struct jdoc *d = parse_ok(empties[e]);
		const struct jval *v = jdoc_root(d);
		if (jval_len(v) == 1) /* the one-item wrappers: look inside */
			v = jval_is_array(v) ? jval_at(v, 0) : jval_get(v, "a");
		assert_true(jval_is_array(v) || jval_is_object(v));
		assert_int_equal(jval_len(v), 0);
		assert_null(jval_at(v, 0));
		size_t i;
		const struct jval *kid;
		const char *key;
		int runs = 0;
		jval_array_foreach(v, i, kid) runs++;
		jval_object_foreach(v, i, key, kid) runs++;
		assert_int_equal(runs, 0);
		jdoc_free(d);
	}
}

/* ---- strings ------------------------------------------------------------- */

static void test_escapes(void **state)
{
	(void)state;
	STRING_IS("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t");
	STRING_IS("\"a\\u0041b\"", "aAb");
	STRING_IS("\"\\u007f\\u0080\"", "\x7f\xc2\x80");
	STRING_IS("\"\\u00e9\\u00E9\"", "\xc3\xa9\xc3\xa9");
	STRING_IS("\"\\u07ff\\u0800\"", "\xdf\xbf\xe0\xa0\x80");
	STRING_IS("\"\\u20AC\\uFFFF\"", "\xe2\x82\xac\xef\xbf\xbf");
	STRING_IS("\"\\uD7FF\\uE000\"", "\xed\x9f\xbf\xee\x80\x80"); /* around the surrogates */
	STRING_IS("\"\\uD834\\uDD1E\"", "\xf0\x9d\x84\x9e");	     /* U+1D11E */
	STRING_IS("\"\\ud800\\udc00\"", "\xf0\x90\x80\x80");	     /* U+10000 */
	STRING_IS("\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf");	     /* U+10FFFF */
	STRING_IS("\"\\u0001\"", "\x01");			     /* escaped controls are fine */

	REFUSED_K("\"\\u0000\"", "NUL character");
	REFUSED_K("\"a\\u0000b\"", "NUL character");
	REFUSED_K("\"\\uD800\"", "invalid \\u escape");
	REFUSED_K("\"\\uDBFFx\"", "invalid \\u escape");
	REFUSED_K("\"\\uD800\\u0041\"", "invalid \\u escape");
	REFUSED_K("\"\\uD800\\uD800\"", "invalid \\u escape");
	REFUSED_K("\"\\uD800\\n\"", "invalid \\u escape");
	REFUSED_K("\"\\uDC00\"", "invalid \\u escape");
	REFUSED_K("\"\\uDFFF\\uD800\"", "invalid \\u escape");
	REFUSED_K("\"\\u12\"", "invalid \\u escape");
	REFUSED_K("\"\\u12G4\"", "invalid \\u escape");
	REFUSED_K("\"\\u 123\"", "invalid \\u escape");
	REFUSED("\"\\u");
	REFUSED("\"\\uD834\\uDD1");
	REFUSED_K("\"\\x41\"", "invalid escape");
	REFUSED_K("\"\\'\"", "invalid escape");
	REFUSED_K("\"\\U0041\"", "invalid escape");
	REFUSED_K("\"\\a\"", "invalid escape");
	REFUSED("\"\\");
	REFUSED_K("\"\\\"", "truncated");
	REFUSED_K("\"abc", "truncated");
	REFUSED_K("\"\x01\"", "control character");
	REFUSED_K("\"\t\"", "control character");
	REFUSED_K("\"\x1f\"", "control character");
	REFUSED_K("\"a\0b\"", "NUL character");
	STRING_IS("\"\x7f\"", "\x7f");
}

static void test_utf8(void **state)
{
	(void)state;
	STRING_IS("\"\xc2\x80\xdf\xbf\"", "\xc2\x80\xdf\xbf");
	STRING_IS("\"\xe0\xa0\x80\xef\xbf\xbf\"", "\xe0\xa0\x80\xef\xbf\xbf");
	STRING_IS("\"\xed\x9f\xbf\xee\x80\x80\"", "\xed\x9f\xbf\xee\x80\x80");
	STRING_IS("\"\xf0\x90\x80\x80\xf0\x9f\x98\x80\"", "\xf0\x90\x80\x80\xf0\x9f\x98\x80");
	STRING_IS("\"\xf4\x8f\xbf\xbf\"", "\xf4\x8f\xbf\xbf");

	REFUSED_K("\"\xc0\x80\"", "invalid UTF-8");	    /* overlong, 2 bytes */
	REFUSED_K("\"\xc1\xbf\"", "invalid UTF-8");	    /* overlong, 2 bytes */
	REFUSED_K("\"\xe0\x80\x80\"", "invalid UTF-8");	    /* overlong, 3 bytes */
	REFUSED_K("\"\xe0\x9f\xbf\"", "invalid UTF-8");	    /* overlong, 3 bytes */
	REFUSED_K("\"\xf0\x80\x80\x80\"", "invalid UTF-8"); /* overlong, 4 bytes */
	REFUSED_K("\"\xf0\x8f\xbf\xbf\"", "invalid UTF-8"); /* overlong, 4 bytes */
	REFUSED_K("\"\xed\xa0\x80\"", "invalid UTF-8");	    /* U+D800 */
	REFUSED_K("\"\xed\xbf\xbf\"", "invalid UTF-8");	    /* U+DFFF */
	REFUSED_K("\"\xf4\x90\x80\x80\"", "invalid UTF-8"); /* U+110000 */
	REFUSED_K("\"\xf5\x80\x80\x80\"", "invalid UTF-8");
	REFUSED_K("\"\xf8\x88\x80\x80\x80\"", "invalid UTF-8");
	REFUSED_K("\"\xff\"", "invalid UTF-8");
	REFUSED_K("\"\x80\"", "invalid UTF-8"); /* a lone continuation byte */
	REFUSED_K("\"\xc3\"", "invalid UTF-8"); /* truncated before the quote */
	REFUSED_K("\"\xe2\x82\"", "invalid UTF-8");
	REFUSED_K("\"\xf0\x9f\x98\"", "invalid UTF-8");
	REFUSED("\"\xc3"); /* truncated at the end of input */
	REFUSED("\"\xf0\x9f\x98");
	REFUSED_K("\"\xe2(\xa1\"", "invalid UTF-8");
	REFUSED_K("{\"\xc0\xaf\":1}", "invalid UTF-8"); /* in a key */
	REFUSED("\xc3\xa9");				/* outside a string */
}

/* ---- numbers, literals, whitespace --------------------------------------- */

static void int_is(const char *json, int64_t want)
{
	struct jdoc *d = parse_ok(json);
	assert_true(jval_is_int(jdoc_root(d)));
	assert_int_equal(jval_int(jdoc_root(d)), want);
	jdoc_free(d);
}

static void real_is(const char *json, double want)
{
	struct jdoc *d = parse_ok(json);
	const struct jval *v = jdoc_root(d);
	assert_true(jval_is(v, JVAL_REAL));
	if (jval_num(v) != want || !signbit(jval_num(v)) != !signbit(want))
		fail_msg("%s read as %.17g", json, jval_num(v));
	jdoc_free(d);
}

static void test_numbers(void **state)
{
	(void)state;
	int_is("0", 0);
	int_is("-0", 0);
	int_is("7", 7);
	int_is("-123", -123);
	int_is("9223372036854775807", INT64_MAX);
	int_is("-9223372036854775808", INT64_MIN);
	real_is("1.5", 1.5);
	real_is("-0.0", -0.0);
	real_is("0e0", 0.0);
	real_is("1e3", 1000.0);
	real_is("1E+3", 1000.0);
	real_is("25e-2", 0.25);
	real_is("1e-400", 0.0); /* underflow reads as zero, like jansson */
	real_is("1.7976931348623157e308", 1.7976931348623157e308);
	real_is("9223372036854775808.0", 9223372036854775808.0);

	REFUSED_K("01", "trailing data");
	REFUSED("-01");
	REFUSED("00");
	REFUSED_K("1.", "malformed");
	REFUSED_K(".5", "malformed");
	REFUSED_K("1e", "malformed");
	REFUSED("1e+");
	REFUSED_K("-", "malformed");
	REFUSED("+1");
	REFUSED("--1");
	REFUSED("0x10");
	REFUSED("NaN");
	REFUSED("-Infinity");
	REFUSED("[1.,2]");
	REFUSED_K("9223372036854775808", "JSON integer too large");
	REFUSED_K("-9223372036854775809", "JSON integer too large");
	REFUSED_K("[99999999999999999999]", "JSON integer too large");
	REFUSED_K("1e400", "JSON number too large");
	REFUSED_K("-1e400", "JSON number too large");
	REFUSED_K("1.7976931348623159e308", "JSON number too large");
}

static void test_literals_and_whitespace(void **state)
{
	(void)state;
	struct jdoc *d = parse_ok(" \t\r\n[ true ,false,\nnull\t]\r\n ");
	const struct jval *a = jdoc_root(d);
	assert_true(jval_is_true(jval_at(a, 0)) && jval_is(jval_at(a, 1), JVAL_FALSE) &&
		    jval_is_null(jval_at(a, 2)));
	jdoc_free(d);
	d = parse_ok("null");
	assert_true(jval_is_null(jdoc_root(d)));
	jdoc_free(d);

	REFUSED_K("t", "truncated JSON at byte 1");
	REFUSED_K("tru", "truncated JSON at byte 3");
	REFUSED_K("[fals", "truncated");
	REFUSED_K("nul", "truncated");
	REFUSED_K("True", "malformed JSON at byte 0");
	REFUSED_K("nulL", "malformed");
	REFUSED_K("truex", "trailing data after JSON at byte 4");
	REFUSED_K("[true false]", "malformed JSON at byte 6");
	REFUSED_K("", "truncated JSON at byte 0");
	REFUSED_K(" \n\t ", "truncated");
	REFUSED_K("\f1", "malformed");
	REFUSED_K("\v1", "malformed");
	REFUSED_K("1\f", "trailing data");
	REFUSED("[\xc2\xa0]");	   /* no-break space */
	REFUSED("\xef\xbb\xbf{}"); /* byte order mark */
	REFUSED_K("1\0", "trailing data");
	REFUSED_K("[1\0]", "NUL character in JSON at byte 2");
	REFUSED_K("{}{}", "trailing data after JSON at byte 2");
	REFUSED_K("[1,]", "malformed JSON at byte 3");
	REFUSED_K("{\"a\":1,}", "malformed JSON at byte 7");
	REFUSED_K("[1", "truncated JSON at byte 2");
}

/* ---- depth --------------------------------------------------------------- */

/* n containers of the given shape: accepted at max_depth n, refused at n - 1. */
static void depth_bound(const char *open, const char *close, size_t reps, const char *inner,
			unsigned containers)
{
	size_t len;
	char *s = nested(open, close, reps, inner, &len);
	jdoc_free(parse_ok_n(s, len, containers));
	jdoc_free(parse_ok_n(s, len, containers + 100));
	refused_n(s, len, containers - 1, "JSON nested too deeply");
	free(s);
}

static void test_depth(void **state)
{
	(void)state;
	static const unsigned bounds[] = {2, 3, 16, 64, 1000};
	for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
		unsigned m = bounds[b];
		depth_bound("[", "]", m, "", m);
		depth_bound("[", "]", m, "1", m); /* a scalar does not add a level */
		depth_bound("{\"k\":", "}", m - 1, "{}", m);
		depth_bound("{\"k\":", "}", m, "\"v\"", m);
		depth_bound("[{\"k\":", "}]", m / 2, "0", m / 2 * 2);
		depth_bound(" [ 0 , { \"k\" : ", "} ] ", m / 2, "[]", m / 2 * 2 + 1);
	}
	/* the bound is on nesting, not on the number of containers */
	jdoc_free(parse_ok_n("[[],[],{},[[]]]", 15, 3));
	refused_n("[[],[],{},[[[]]]]", 17, 3, "JSON nested too deeply");
	jdoc_free(parse_ok_n("1", 1, 1));
	jdoc_free(parse_ok_n("[]", 2, 1));
	refused_n("[[]]", 4, 1, "JSON nested too deeply");
}

/* The one expected difference from jansson, at jansson's own limit. */
static void test_depth_vs_jansson(void **state)
{
	(void)state;
	json_error_t e;
	size_t len;
	char *s = nested("[", "]", JANSSON_DEPTH, "1", &len);
	struct jdoc *d = parse_ok_n(s, len, JANSSON_DEPTH);
	assert_int_equal(value_depth(jdoc_root(d)), JANSSON_DEPTH + 1);
	jdoc_free(d);
	assert_null(json_loadb(s, len, JANSSON_FLAGS, &e)); /* jansson counts the 1 too */
	agree(s, len);					    /* and agree() knows */
	free(s);
	static const struct {
		size_t n;
		const char *inner;
	} cases[] = {{JANSSON_DEPTH - 1, "1"},
		     {JANSSON_DEPTH, ""},
		     {JANSSON_DEPTH + 1, ""},
		     {JANSSON_DEPTH + 1, "1"},
		     {100000, ""}};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		s = nested("[", "]", cases[c].n, cases[c].inner, &len);
		agree(s, len);
		free(s);
	}
}

/* The other expected difference: jansson skips a NUL after a number or literal. */
static void test_nul_after_token_vs_jansson(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		size_t len;
	} cases[] = {T("[1\0]"),  T("0\0"), T("[true\0]"), T("null\0"), T("{\"a\":-1.5e3\0}"),
		     T("[1\0,2]")};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		json_error_t e;
		json_t *j = json_loadb(cases[c].s, cases[c].len, JANSSON_FLAGS, &e);
		if (!j)
			fail_msg("jansson now refuses '%s': drop jansson_drops_nul",
				 show(cases[c].s, cases[c].len));
		json_decref(j);
		refused_n(cases[c].s, cases[c].len, 64, NULL);
		agree(cases[c].s, cases[c].len);
	}
}

/* ---- duplicate keys ------------------------------------------------------ */

/* {"k0":0,...} with n keys; key number dup is a copy of key number of (its k as \u006b when esc).
 */
static char *object_with(size_t n, size_t dup, size_t of, bool esc, size_t *len)
{
	size_t cap = n * 64 + 8, o = 0;
	char *s = malloc(cap);
	assert_non_null(s);
	s[o++] = '{';
	for (size_t i = 0; i < n; i++) {
		const char *k = esc && i == dup ? "\\u006b" : "k";
		o += (size_t)snprintf(s + o, cap - o, "%s\"%s%zu\":%zu", i ? "," : "", k,
				      i == dup ? of : i, i);
	}
	s[o++] = '}';
	s[o] = '\0';
	*len = o;
	return s;
}

static void dup_case(size_t n, size_t dup, size_t of, bool esc)
{
	size_t len;
	char *s = object_with(n, dup, of, esc, &len);
	if (dup < n && dup != of)
		refused_n(s, len, 4, "duplicate key in JSON object");
	else
		jdoc_free(parse_ok_n(s, len, 4));
	agree(s, len);
	free(s);
}

static void test_duplicate_keys(void **state)
{
	(void)state;
	REFUSED_K("{\"a\":1,\"a\":2}", "duplicate key in JSON object at byte 0");
	REFUSED_K("[0,{\"a\":1,\"b\":2,\"a\":3}]", "duplicate key in JSON object at byte 3");
	REFUSED("{\"a\":1,\"\\u0061\":2}");
	REFUSED("{\"\xc3\xa9\":1,\"\\u00e9\":2}");
	REFUSED("{\"\\uD834\\uDD1E\":1,\"\xf0\x9d\x84\x9e\":2}");
	REFUSED("{\"\":1,\"\":2}");
	REFUSED("{\"x\":{\"k\":1,\"k\":1}}");
	jdoc_free(parse_ok("{\"a\":1,\"A\":2,\"ab\":3,\"b\":4}"));
	jdoc_free(parse_ok("{\"a\":{\"a\":1},\"b\":{\"a\":2}}")); /* per object */

	static const size_t sizes[] = {2, 15, 16, 17, 18, 100, 5000};
	for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		size_t n = sizes[z];
		dup_case(n, n, 0, false);     /* all distinct */
		dup_case(n, n - 1, 0, false); /* last repeats first */
		dup_case(n, 1, 0, false);     /* adjacent at the start */
		dup_case(n, n - 1, n - 2, false);
		dup_case(n, n - 1, 0, true); /* same key, one spelled with \u006b */
		dup_case(n, 0, 0, true);     /* spelled with \u006b, no copy */
		if (n > 10)
			dup_case(n, n - 1, 1, false); /* "k1" again after "k10".."k19" */
	}
}

/* ---- size, messages, prefixes -------------------------------------------- */

static void test_big_array(void **state)
{
	(void)state;
	enum { N = 1000000 };
	size_t cap = (size_t)N * 12 + 4, o = 0;
	char *s = malloc(cap);
	assert_non_null(s);
	s[o++] = '[';
	for (int i = 0; i < N; i++)
		o += (size_t)snprintf(s + o, cap - o, "%s%d", i ? "," : "", i % 3 ? i : -i);
	s[o++] = ']';
	struct jdoc *d = parse_ok_n(s, o, 2);
	const struct jval *a = jdoc_root(d);
	assert_int_equal(jval_len(a), N);
	size_t i;
	const struct jval *v;
	int64_t sum = 0;
	jval_array_foreach(a, i, v)
	{
		assert_true(jval_is_int(v));
		assert_int_equal(jval_int(v), i % 3 ? (int64_t)i : -(int64_t)i);
		sum += jval_int(v);
	}
	assert_int_equal(i, N);
	assert_true(sum != 0);
	assert_true(jdoc_bytes(d) > o + (size_t)N * sizeof(struct jval));
	jdoc_free(d);
	free(s);
}

/* A report of tests/data/scanners (testdata.h). */
static char *slurp(const char *rel, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "scanners/%s", rel);
	return testdata_read(path, len);
}

static void test_bytes(void **state)
{
	(void)state;
	static const char *const docs[] = {"1", "\"\"", "[]", "{\"a\":[1,2,3]}"};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct jdoc *d = parse_ok(docs[i]);
		assert_true(jdoc_bytes(d) > strlen(docs[i]));
		jdoc_free(d);
	}
	size_t len;
	char *s = slurp("aquasecurity-trivy/alpine-39.json.golden", &len);
	struct jdoc *d = parse_ok_n(s, len, 64);
	assert_true(jdoc_bytes(d) > len);
	jdoc_free(d);
	free(s);
}

/* No refusal quotes the input: each input carries MARKER where a quoting parser would echo it. */
static void test_messages_never_echo_input(void **state)
{
	(void)state;
	REFUSED(MARKER);
	REFUSED("[" MARKER "]");
	REFUSED("{\"" MARKER "\": " MARKER "}");
	REFUSED("{\"" MARKER "\":1,\"" MARKER "\":2}");
	REFUSED("\"" MARKER "\x01\"");
	REFUSED("\"" MARKER "\xff\"");
	REFUSED("\"" MARKER "\\q\"");
	REFUSED("\"" MARKER "\\u00" MARKER "\"");
	REFUSED("\"" MARKER);
	REFUSED("1 " MARKER);
	REFUSED("[\"" MARKER "\" \"" MARKER "\"]");
	REFUSED("[1e999" MARKER "]");
	REFUSED("99999999999999999999" MARKER);
	REFUSED("{\"" MARKER "\" " MARKER "}");
	refused_n("[[\"" MARKER "\"]]", 16, 1, "JSON nested too deeply");
}

/* Every prefix of a report parses or is refused; only those holding the whole value parse. */
static void test_every_prefix(void **state)
{
	(void)state;
	size_t len;
	char *s = slurp("osv/UBUNTU-CVE-2025-38094.json", &len);
	size_t whole = len;
	while (whole > 0 && strchr(" \t\r\n", s[whole - 1]))
		whole--;
	for (size_t n = 0; n <= len; n++) {
		char *copy = malloc(n ? n : 1); /* exactly n bytes: ASan sees any overread */
		assert_non_null(copy);
		memcpy(copy, s, n);
		if (n >= whole)
			jdoc_free(parse_ok_n(copy, n, 64));
		else
			refused_n(copy, n, 64, NULL);
		free(copy);
	}
	free(s);
}

/* ---- differential against jansson ---------------------------------------- */

/* clang-format off */
static const struct {
	const char *s;
	size_t len;
} tricky[] = {
    /* literals */
    T("null"), T("true"), T("false"), T(" null "), T("nul"), T("tru"), T("fals"), T("nulll"),
    T("truee"), T("True"), T("NULL"), T("t"), T("n"), T("f"), T("[true,false,null]"),
    T("[tru]"), T("[true false]"), T("truefalse"), T("null null"), T("[null,]"), T("1true"),
    /* numbers */
    T("0"), T("-0"), T("1"), T("-1"), T("00"), T("01"), T("-01"), T("1."), T("1.0"), T("-1.0"),
    T(".5"), T("-.5"), T("0.5"), T("1e"), T("1e+"), T("1e-"), T("1e5"), T("1E5"), T("1e+5"),
    T("1e-5"), T("1.5e3"), T("-1.5E-3"), T("1e400"), T("-1e400"), T("1e-400"), T("-1e-400"),
    T("4.9e-324"), T("2.2250738585072014e-308"), T("1.7976931348623157e308"),
    T("1.7976931348623159e308"), T("9223372036854775807"), T("-9223372036854775808"),
    T("9223372036854775808"), T("-9223372036854775809"), T("18446744073709551616"), T("0.0"),
    T("-0.0"), T("0e0"), T("0E-0"), T("-"), T("+1"), T("--1"), T("0x10"), T("1_000"), T("NaN"),
    T("Infinity"), T("-Infinity"), T("1.5.5"), T("1e5e5"), T("[01]"), T("[1.]"), T("[-]"),
    T("[1e]"), T("12345678901234567890123456789.0"), T("0.000000000000000000000000000001"),
    T("[-0,0,-0.0]"), T("1 "), T(" 1"), T("1\n"), T("123abc"), T("1.e5"), T("1e05"), T("-0e-0"),
    T("[1,-1,1e1,-1e-1]"), T("100000000000000000000000000000000000000000000000000000000e-50"),
    /* strings and escapes */
    T("\"\""), T("\"a\""), T("\"\\\"\""), T("\"\\\\\""), T("\"\\/\""), T("\"\\b\\f\\n\\r\\t\""),
    T("\"\\u0041\""), T("\"\\u00e9\""), T("\"\\u00E9\""), T("\"\\u20ac\""), T("\"\\uffff\""),
    T("\"\\uD834\\uDD1E\""), T("\"\\ud834\\udd1e\""), T("\"\\uDBFF\\uDFFF\""),
    T("\"\\uD800\\uDC00\""), T("\"\\u0000\""), T("\"a\\u0000b\""), T("\"\\uD800\""),
    T("\"\\uD800x\""), T("\"\\uD800\\u0041\""), T("\"\\uD800\\uD800\""), T("\"\\uDC00\""),
    T("\"\\uDFFF\\uD800\""), T("\"\\u12\""), T("\"\\u12G4\""), T("\"\\u\""), T("\"\\x41\""),
    T("\"\\'\""), T("\"\\a\""), T("\"\\U0041\""), T("\"\\"), T("\"\\\""), T("\"abc"), T("\""),
    T("\"\\uD834\\uDD1"), T("\"\\uD834\\"), T("\"\\uD834\\u\""), T("'a'"), T("\"a\"\"b\""),
    T("\"\\u0001\\u001f\""), T("\"\\uD834\\uDD1E\\uD834\""), T("\"\\/\\/\""),
    /* raw bytes in strings */
    T("\"\x01\""), T("\"\x1f\""), T("\"\t\""), T("\"\n\""), T("\"\x7f\""), T("\"a\0b\""),
    T("\"\0\""), T("\"\xc3\xa9\""), T("\"\xe2\x82\xac\""), T("\"\xf0\x9f\x98\x80\""),
    T("\"\xc0\x80\""), T("\"\xc1\xbf\""), T("\"\xc2\x80\""), T("\"\xdf\xbf\""),
    T("\"\xe0\x80\x80\""), T("\"\xe0\x9f\xbf\""), T("\"\xe0\xa0\x80\""), T("\"\xed\x9f\xbf\""),
    T("\"\xed\xa0\x80\""), T("\"\xed\xbf\xbf\""), T("\"\xee\x80\x80\""), T("\"\xef\xbf\xbf\""),
    T("\"\xf0\x80\x80\x80\""), T("\"\xf0\x8f\xbf\xbf\""), T("\"\xf0\x90\x80\x80\""),
    T("\"\xf4\x8f\xbf\xbf\""), T("\"\xf4\x90\x80\x80\""), T("\"\xf5\x80\x80\x80\""),
    T("\"\xf8\x88\x80\x80\x80\""), T("\"\xff\""), T("\"\xfe\""), T("\"\x80\""), T("\"\xbf\""),
    T("\"\xc3\""), T("\"\xe2\x82\""), T("\"\xf0\x9f\x98\""), T("\"\xc3"), T("\"\xe2\x82"),
    T("\"\xf0\x9f\x98"), T("\"\xc3(\""), T("\"\xe2(\xa1\""), T("\"\xf0\x28\x8c\xbc\""),
    T("\xc3\xa9"), T("[\"\xc3\xa9\"]"), T("{\"\xc3\xa9\":1}"), T("{\"\xff\":1}"), T("1\xff"),
    T("\xef\xbb\xbf" "1"), T("\"\xef\xbb\xbf\""),
    /* whitespace and NULs */
    T(""), T(" "), T("\t\r\n "), T(" [ 1 , 2 ] "), T("\f1"), T("\v1"), T("1\f"),
    T("\xc2\xa0" "1"), T("[1\0]"), T("1\0"), T("\0"), T("[\0]"), T("[1,\n2]"), T("\0 1"),
    T("{\"a\"\0:1}"), T("{\"a\":1\0}"),
    /* containers */
    T("[]"), T("[ ]"), T("["), T("]"), T("[1"), T("[1,"), T("[1,]"), T("[,1]"), T("[1,,2]"),
    T("[1 2]"), T("[[]]"), T("[[[]]]"), T("[[]"), T("[]]"), T("{}"), T("{ }"), T("{"), T("}"),
    T("{\"a\"}"), T("{\"a\":}"), T("{\"a\":1"), T("{\"a\":1,}"), T("{,\"a\":1}"),
    T("{\"a\" 1}"), T("{\"a\":1 \"b\":2}"), T("{a:1}"), T("{'a':1}"), T("{1:1}"), T("{null:1}"),
    T("{\"a\":1}"), T("{\"a\":1,\"b\":[2,{\"c\":null}]}"), T("{\"a\":1,\"a\":2}"),
    T("{\"a\":1,\"b\":2,\"a\":3}"), T("{\"a\":1,\"\\u0061\":2}"), T("{\"a\":1,\"A\":2}"),
    T("{\"\":1}"), T("{\"\":1,\"\":2}"), T("{\"a\":{\"a\":1}}"), T("{\"a\":1,\"ab\":2}"),
    T("{\"ab\":1,\"a\":2}"), T("{\"a\":[],\"b\":{}}"), T("[{}]"), T("[{},{}]"),
    T("[{\"a\":1},{\"a\":1}]"), T("{\"\\uD834\\uDD1E\":1,\"\xf0\x9d\x84\x9e\":2}"),
    T("{\"\xc3\xa9\":1,\"\\u00e9\":2}"), T("{\"a\":1}x"), T("{\"a\":1}}"), T("[1]]"), T("[1]x"),
    T("{}{}"), T("[][]"), T("{\"a\":1,\"b\"}"), T("{\"a\"::1}"), T("{\"a\":1:}"), T("[:]"),
    T("{:}"), T("[\"a\":1]"), T("{\"a\",1}"), T("{\"a\":[1,{\"b\":[{}]}]}"),
    T("{\"x\":{\"k\":1,\"k\":1}}"), T("[\"\\u0000\"]"), T("{\"\\u0000\":1}"),
    T("{\"a\\u0000\":1,\"a\":2}"),
};
/* clang-format on */

static void test_differential_list(void **state)
{
	(void)state;
	size_t n = sizeof(tricky) / sizeof(tricky[0]);
	assert_true(n >= 200);
	for (size_t i = 0; i < n; i++)
		agree(tricky[i].s, tricky[i].len);
}

/* Every input of up to three bytes over the grammar's bytes and a few bad ones. */
static void test_differential_short_inputs(void **state)
{
	(void)state;
	static const char alpha[] = " \t\n0-1.eE+\"\\u[]{},:tnfa\0\x80\xc3\xa9\xff";
	size_t k = sizeof(alpha) - 1, count = 0;
	char buf[3];
	for (size_t len = 0; len <= 3; len++) {
		size_t total = 1;
		for (size_t i = 0; i < len; i++)
			total *= k;
		for (size_t x = 0; x < total; x++, count++) {
			for (size_t i = 0, y = x; i < len; i++, y /= k)
				buf[i] = alpha[y % k];
			agree(buf, len);
		}
	}
	assert_int_equal(count, 1 + k + k * k + k * k * k);
}

/* Every one-byte replacement and deletion in a small document that uses each feature. */
static void test_differential_mutations(void **state)
{
	(void)state;
	static const char doc[] =
	    "{\"a\":[1,-2.5e3,\"x\\u00e9\\ud834\\udd1e\\n\",true,false,"
	    "null,0],\"b\":{\"c\":{},\"d\":[]},\"\xc3\xa9\":\"\xf0\x9f\x98\x80\"}";
	size_t len = sizeof(doc) - 1;
	char buf[sizeof(doc)];
	agree(doc, len);
	for (size_t i = 0; i < len; i++) {
		memcpy(buf, doc, len);
		for (int c = 0; c < 256; c++) {
			buf[i] = (char)c;
			agree(buf, len);
		}
		memcpy(buf, doc, i);
		memcpy(buf + i, doc + i + 1, len - i - 1);
		agree(buf, len - 1);
	}
}

static void test_differential_prefixes(void **state)
{
	(void)state;
	size_t len;
	char *s = slurp("osv/CVE-2012-2812.json", &len);
	for (size_t n = 0; n <= len; n++)
		agree(s, n);
	free(s);
}

/* The real reports: equal trees, value for value. */
static void test_differential_reports(void **state)
{
	(void)state;
	static const char *const reports[] = {
	    "anchore-grype/ghsa-test.json",
	    "anchore-grype/keycloak-test.json",
	    "appsecsanta-research/grype-juice-shop.json",
	    "appsecsanta-research/grype-webgoat.json",
	    "appsecsanta-research/trivy-juice-shop.json",
	    "appsecsanta-research/trivy-webgoat.json",
	    "aquasecurity-trivy/alpine-39.json.golden",
	    "aquasecurity-trivy/centos-7.json.golden",
	    "aquasecurity-trivy/debian-stretch.json.golden",
	    "aquasecurity-trivy/ubuntu-1804.json.golden",
	    "defectdojo/many_vulns_with_epss_values.json",
	    "osv/CVE-2012-2812.json",
	    "osv/CVE-2022-27449.json",
	    "osv/DSA-3029-1.json",
	    "osv/UBUNTU-CVE-2025-38094.json",
	};
	for (size_t r = 0; r < sizeof(reports) / sizeof(reports[0]); r++) {
		size_t len;
		char *s = slurp(reports[r], &len);
		jdoc_free(parse_ok_n(s, len, 64)); /* accepted, not only agreed on */
		agree(s, len);
		free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_types_and_accessors),
	    cmocka_unit_test(test_accessors_take_null),
	    cmocka_unit_test(test_empty_containers),
	    cmocka_unit_test(test_escapes),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_literals_and_whitespace),
	    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_depth_vs_jansson),
	    cmocka_unit_test(test_nul_after_token_vs_jansson),
	    cmocka_unit_test(test_duplicate_keys),
	    cmocka_unit_test(test_big_array),
	    cmocka_unit_test(test_bytes),
	    cmocka_unit_test(test_messages_never_echo_input),
	    cmocka_unit_test(test_every_prefix),
	    cmocka_unit_test(test_differential_list),
	    cmocka_unit_test(test_differential_short_inputs),
	    cmocka_unit_test(test_differential_mutations),
	    cmocka_unit_test(test_differential_prefixes),
	    cmocka_unit_test(test_differential_reports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
