/*
 * fuzz-json-body.c — request bodies: jsonx_parse_object, then the
 * jsonx_unpack formats the API uses (the handlers in src/api/):
 *   login, refresh, logout     {s:s, s:s} / {s:s}
 *   user create / update       {s:s, s:s, s:s} / {s?s, s?s}
 *   tenant create              {s:s, s:{s:s, s:s}, s?o} with optional quotas,
 *   quotas (PUT / nested)      {s:F, s:I, s:I, s:I} / {s?F, s?I, s?I, s?I}
 *   tenant rename, API key     {s:s} / {s:s, s:s}
 *
 * Oracles (abort on violation): a parsed value is an object no deeper than
 * JSONX_MAX_DEPTH; its compact dump parses back to an equal value; every
 * message is NUL-terminated inside JSONX_MSG_LEN; strings unpacked with `s`
 * are valid UTF-8 without NUL (jansson guarantees, we rely on it).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jsonx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int depth_of(const json_t *v)
{
	int d = 0;
	const char *k;
	json_t *child;
	size_t i;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, child) {
			int c = depth_of(child);
			d = c > d ? c : d;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child) {
			int c = depth_of(child);
			d = c > d ? c : d;
		}
	}
	return d + 1;
}

static void check_msg(const char msg[static JSONX_MSG_LEN])
{
	if (strnlen(msg, JSONX_MSG_LEN) >= JSONX_MSG_LEN)
		abort();
}

static void check_str(const char *s)
{
	if (!s)
		abort();
	/* jansson refuses \u0000 by default: an unpacked string has no NUL inside */
	size_t n = strlen(s);
	json_t *round = json_stringn(s, n);
	if (!round)
		abort(); /* json_stringn validates UTF-8 */
	json_decref(round);
}

/* Runs one jsonx_unpack and checks what it returns. */
#define UNPACK(obj, ...)                                                                           \
	do {                                                                                       \
		char msg_[JSONX_MSG_LEN];                                                          \
		memset(msg_, 'X', sizeof(msg_));                                                   \
		int rc_ = jsonx_unpack(obj, msg_, __VA_ARGS__);                                    \
		if (rc_ != 0 && rc_ != ODX_EINVAL)                                                 \
			abort();                                                                   \
		if (rc_ != 0)                                                                      \
			check_msg(msg_);                                                           \
		ok = rc_ == 0;                                                                     \
	} while (0)

static void quotas(json_t *q, bool partial)
{
	double cpu = -1;
	json_int_t mem = 0, cont = 0, stor = 0;
	bool ok;
	if (partial)
		UNPACK(q, "{s?F, s?I, s?I, s?I}", "cpu_cores", &cpu, "memory_mb", &mem, "containers",
		       &cont, "storage_mb", &stor);
	else
		UNPACK(q, "{s:F, s:I, s:I, s:I}", "cpu_cores", &cpu, "memory_mb", &mem, "containers",
		       &cont, "storage_mb", &stor);
	(void)ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1024 * 1024)
		return 0;
	json_t *obj = NULL;
	char msg[JSONX_MSG_LEN];
	memset(msg, 'X', sizeof(msg));
	int rc = jsonx_parse_object((const char *)data, size, &obj, msg);
	if (rc != 0) {
		if (rc != ODX_EINVAL || obj)
			abort();
		check_msg(msg);
		return 0;
	}
	if (!json_is_object(obj) || depth_of(obj) > JSONX_MAX_DEPTH)
		abort();

	/* dump and parse back: equal */
	char *text = jsonx_dump(obj);
	if (text) {
		json_t *again = NULL;
		if (jsonx_parse_object(text, strlen(text), &again, msg) != 0 || !json_equal(obj, again))
			abort();
		json_decref(again);
		free(text);
	}

	bool ok;
	const char *a = NULL, *b = NULL, *c = NULL;
	/* login */
	UNPACK(obj, "{s:s, s:s}", "email", &a, "password", &b);
	if (ok) {
		check_str(a);
		check_str(b);
	}
	/* refresh, logout, tenant rename */
	UNPACK(obj, "{s:s}", "refresh_token", &a);
	if (ok)
		check_str(a);
	UNPACK(obj, "{s:s}", "name", &a);
	/* user create, user update, API key create */
	UNPACK(obj, "{s:s, s:s, s:s}", "email", &a, "password", &b, "role", &c);
	if (ok) {
		check_str(a);
		check_str(b);
		check_str(c);
	}
	a = b = NULL;
	UNPACK(obj, "{s?s, s?s}", "role", &a, "password", &b);
	if (ok) {
		if (a)
			check_str(a);
		if (b)
			check_str(b);
	}
	UNPACK(obj, "{s:s, s:s}", "name", &a, "role", &b);
	/* tenant create with its nested admin and optional quotas */
	json_t *q = NULL;
	UNPACK(obj, "{s:s, s:{s:s, s:s}, s?o}", "name", &a, "admin", "email", &b, "password", &c,
	       "quotas", &q);
	if (ok) {
		check_str(a);
		check_str(b);
		check_str(c);
		if (q && json_is_object(q))
			quotas(q, true);
	}
	/* PUT /v1/tenants/{id}/quotas */
	quotas(obj, false);
	json_decref(obj);
	return 0;
}
