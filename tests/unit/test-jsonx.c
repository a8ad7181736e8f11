/* test-jsonx.c — strict JSON decoding and messages that never echo input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/jsonx.h"

#define SECRET "s3cr3t-VALUE"

static void assert_msg_clean(const char *msg)
{
	size_t n = strnlen(msg, JSONX_MSG_LEN);
	assert_true(n > 0 && n < JSONX_MSG_LEN);
	if (strstr(msg, SECRET) || strstr(msg, "s3cr3t"))
		fail_msg("message echoes the offending value: %s", msg);
}

/* Parses buf[0..len) expecting a refusal; checks out and msg. */
static void assert_parse_rejected(const char *buf, size_t len)
{
	json_t *out = (json_t *)(uintptr_t)0x1;
	char msg[JSONX_MSG_LEN] = "";
	int rc = jsonx_parse_object(buf, len, &out, msg);
	if (rc != ODX_EINVAL)
		fail_msg("jsonx_parse_object accepted '%.*s' (rc %d)", (int)len, buf, rc);
	assert_ptr_equal(out, (json_t *)(uintptr_t)0x1);
	assert_msg_clean(msg);
}

#define REJECT(lit) assert_parse_rejected(lit, sizeof(lit) - 1)

static json_t *parse_ok(const char *buf)
{
	json_t *out = NULL;
	char msg[JSONX_MSG_LEN] = "";
	int rc = jsonx_parse_object(buf, strlen(buf), &out, msg);
	if (rc != 0)
		fail_msg("jsonx_parse_object refused '%s': %s", buf, msg);
	assert_true(json_is_object(out));
	return out;
}

/* "{"a":" x depth ... "{}" ... "}" x depth: `depth` nested objects in all. */
static char *nested_objects(int depth)
{
	size_t cap = (size_t)depth * 8 + 8, o = 0;
	char *s = malloc(cap);
	assert_non_null(s);
	for (int i = 1; i < depth; i++) {
		memcpy(s + o, "{\"a\":", 5);
		o += 5;
	}
	memcpy(s + o, "{}", 2);
	o += 2;
	for (int i = 1; i < depth; i++)
		s[o++] = '}';
	s[o] = '\0';
	return s;
}

/* {"a": [[...[]...]]} with `arrays` nested arrays: depth arrays + 1. */
static char *nested_arrays(int arrays)
{
	size_t cap = (size_t)arrays * 2 + 16, o = 0;
	char *s = malloc(cap);
	assert_non_null(s);
	memcpy(s, "{\"a\":", 5);
	o = 5;
	for (int i = 0; i < arrays; i++)
		s[o++] = '[';
	for (int i = 0; i < arrays; i++)
		s[o++] = ']';
	s[o++] = '}';
	s[o] = '\0';
	return s;
}

static void test_parse_accepts_objects(void **state)
{
	(void)state;
	json_t *o = parse_ok("{}");
	json_decref(o);
	o = parse_ok(" {\"a\": 1, \"b\": [true, null, \"x\"], \"c\": {\"d\": 1.5}} ");
	assert_int_equal(json_integer_value(json_object_get(o, "a")), 1);
	json_decref(o);
	o = parse_ok("{\"name\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80\"}");
	json_decref(o);
	o = parse_ok("{\"e\":\"\\u00e9\\ud83d\\ude80\"}"); /* a valid surrogate pair */
	json_decref(o);
}

static void test_parse_rejects_non_objects(void **state)
{
	(void)state;
	REJECT("[]");
	REJECT("[{\"a\":1}]");
	REJECT("\"" SECRET "\"");
	REJECT("1");
	REJECT("true");
	REJECT("null");
	REJECT("");
	REJECT("   ");
}

static void test_parse_rejects_duplicates(void **state)
{
	(void)state;
	REJECT("{\"a\":1,\"a\":2}");
	REJECT("{\"role\":\"readonly\",\"role\":\"" SECRET "\"}");
	REJECT("{\"x\":{\"k\":1,\"k\":1}}");
}

static void test_parse_rejects_bad_utf8(void **state)
{
	(void)state;
	REJECT("{\"a\":\"\xff\"}");
	REJECT("{\"a\":\"" SECRET "\xfe\"}");
	REJECT("{\"a\":\"\xc0\xaf\"}");         /* overlong '/' */
	REJECT("{\"a\":\"\xe0\x80\xaf\"}");     /* overlong, 3 bytes */
	REJECT("{\"a\":\"\xed\xa0\x80\"}");     /* UTF-16 surrogate encoded in UTF-8 */
	REJECT("{\"a\":\"\xf4\x90\x80\x80\"}"); /* above U+10FFFF */
	REJECT("{\"a\":\"\xc3\"}");             /* truncated sequence */
	REJECT("{\"\x80\":1}");                 /* in a key */
	REJECT("{\"a\":\"\\ud800\"}");          /* lone surrogate escape */
}

static void test_parse_rejects_nul(void **state)
{
	(void)state;
	REJECT("{\"a\":\"\\u0000\"}");
	REJECT("{\"a\":\"x\\u0000" SECRET "\"}");
	REJECT("{\"\\u0000\":1}");
	REJECT("{\"a\":\"x\0y\"}"); /* a raw NUL inside the buffer */
	REJECT("{\"a\":1}\0");
}

static void test_parse_depth(void **state)
{
	(void)state;
	char *s = nested_objects(JSONX_MAX_DEPTH);
	json_t *o = parse_ok(s);
	json_decref(o);
	free(s);
	s = nested_objects(JSONX_MAX_DEPTH + 1);
	assert_parse_rejected(s, strlen(s));
	free(s);
	s = nested_objects(200);
	assert_parse_rejected(s, strlen(s));
	free(s);
	/* One object around 15 arrays is 16 levels; 16 arrays are 17. */
	s = nested_arrays(JSONX_MAX_DEPTH - 1);
	o = parse_ok(s);
	json_decref(o);
	free(s);
	s = nested_arrays(JSONX_MAX_DEPTH);
	assert_parse_rejected(s, strlen(s));
	free(s);
	s = nested_arrays(5000);
	assert_parse_rejected(s, strlen(s));
	free(s);
}

static void test_parse_rejects_trailing_and_truncated(void **state)
{
	(void)state;
	REJECT("{\"a\":1} x");
	REJECT("{\"a\":1}{}");
	REJECT("{\"a\":1},");
	REJECT("{\"a\":1}" SECRET);
	REJECT("{\"a\":");
	REJECT("{\"a\":1");
	REJECT("{\"a\" 1}");
	REJECT("{a:1}");
	REJECT("{'a':1}");
	REJECT("{\"a\":1,}");
	REJECT("{\"a\":" SECRET "}");
	REJECT("{\"a\":\"" SECRET "}");
	REJECT("{\"a\":NaN}");
	REJECT("{\"a\":01}");
	/* len is honoured: only the first 7 bytes are the document */
	json_t *o = NULL;
	char msg[JSONX_MSG_LEN];
	assert_int_equal(jsonx_parse_object("{\"a\":1}garbage", 7, &o, msg), 0);
	json_decref(o);
	assert_int_equal(jsonx_parse_object("{\"a\":1}", 6, &o, msg), ODX_EINVAL);
}

static void test_unpack_ok(void **state)
{
	(void)state;
	json_t *o = parse_ok("{\"email\":\"a@b.c\",\"password\":\"pw\"}");
	const char *email = NULL, *pw = NULL;
	char msg[JSONX_MSG_LEN];
	assert_int_equal(jsonx_unpack(o, msg, "{s:s, s:s}", "email", &email, "password", &pw), 0);
	assert_string_equal(email, "a@b.c");
	assert_string_equal(pw, "pw");
	json_decref(o);

	/* optional keys may be absent */
	o = parse_ok("{\"name\":\"x\"}");
	const char *name = NULL, *role = "unset";
	assert_int_equal(jsonx_unpack(o, msg, "{s:s, s?s}", "name", &name, "role", &role), 0);
	assert_string_equal(role, "unset");
	json_decref(o);
}

static void assert_unpack_rejected(const char *body, const char *fmt, int nargs)
{
	json_t *o = parse_ok(body);
	char msg[JSONX_MSG_LEN] = "";
	const char *s1 = NULL, *s2 = NULL, *s3 = NULL;
	json_int_t i1 = 0;
	json_t *obj = NULL;
	int rc;
	switch (nargs) {
	case 1: rc = jsonx_unpack(o, msg, fmt, "email", &s1); break;
	case 2: rc = jsonx_unpack(o, msg, fmt, "email", &s1, "password", &s2); break;
	case 3: rc = jsonx_unpack(o, msg, fmt, "count", &i1); break;
	case 4: /* the tenant-create shape: nested admin and optional quotas */
		rc = jsonx_unpack(o, msg, fmt, "name", &s1, "admin", "email", &s2, "password", &s3,
				  "quotas", &obj);
		break;
	default: fail(); return;
	}
	if (rc != ODX_EINVAL)
		fail_msg("jsonx_unpack accepted %s with %s (rc %d)", body, fmt, rc);
	assert_msg_clean(msg);
	json_decref(o);
}

static void test_unpack_rejects(void **state)
{
	(void)state;
	/* unknown keys */
	assert_unpack_rejected("{\"email\":\"a@b.c\",\"password\":\"x\",\"admin\":\"" SECRET "\"}",
			       "{s:s, s:s}", 2);
	assert_unpack_rejected("{\"email\":\"a@b.c\",\"extra\":{\"k\":\"" SECRET "\"}}", "{s:s}", 1);
	assert_unpack_rejected("{\"email\":\"a@b.c\",\"password\":\"" SECRET "\",\"role\":null}",
			       "{s:s, s:s}", 2);
	/* unknown keys inside a nested object are refused too */
	assert_unpack_rejected("{\"name\":\"t\",\"admin\":{\"email\":\"e\",\"password\":\"p\","
			       "\"is_root\":\"" SECRET "\"}}",
			       "{s:s, s:{s:s, s:s}, s?o}", 4);
	/* wrong types */
	assert_unpack_rejected("{\"email\":[\"" SECRET "\"],\"password\":\"x\"}", "{s:s, s:s}", 2);
	assert_unpack_rejected("{\"email\":\"a\",\"password\":{\"v\":\"" SECRET "\"}}",
			       "{s:s, s:s}", 2);
	assert_unpack_rejected("{\"count\":\"" SECRET "\"}", "{s:I}", 3);
	assert_unpack_rejected("{\"count\":1.5}", "{s:I}", 3);
	assert_unpack_rejected("{\"count\":true}", "{s:I}", 3);
	assert_unpack_rejected("{\"email\":12345}", "{s:s}", 1);
	assert_unpack_rejected("{\"email\":null}", "{s:s}", 1);
	assert_unpack_rejected("{\"name\":\"t\",\"admin\":\"" SECRET "\"}",
			       "{s:s, s:{s:s, s:s}, s?o}", 4);
	/* missing keys */
	assert_unpack_rejected("{\"password\":\"" SECRET "\"}", "{s:s, s:s}", 2);
	assert_unpack_rejected("{}", "{s:s}", 1);
	assert_unpack_rejected("{\"name\":\"t\",\"admin\":{\"email\":\"" SECRET "\"}}",
			       "{s:s, s:{s:s, s:s}, s?o}", 4);
}

static void test_dump(void **state)
{
	(void)state;
	json_t *o = json_pack("{s:s, s:i, s:n}", "b", "x", "a", 1, "c");
	char *s = jsonx_dump(o);
	assert_non_null(s);
	assert_string_equal(s, "{\"b\":\"x\",\"a\":1,\"c\":null}"); /* compact, insertion order */
	free(s);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_accepts_objects),
		cmocka_unit_test(test_parse_rejects_non_objects),
		cmocka_unit_test(test_parse_rejects_duplicates),
		cmocka_unit_test(test_parse_rejects_bad_utf8),
		cmocka_unit_test(test_parse_rejects_nul),
		cmocka_unit_test(test_parse_depth),
		cmocka_unit_test(test_parse_rejects_trailing_and_truncated),
		cmocka_unit_test(test_unpack_ok),
		cmocka_unit_test(test_unpack_rejects),
		cmocka_unit_test(test_dump),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
