/* jsonx.c — see jsonx.h. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jsonx.h"

static int depth_ok(const json_t *v, int depth)
{
	if (depth > JSONX_MAX_DEPTH)
		return 0;
	if (json_is_object(v)) {
		const char *k;
		json_t *child;
		json_object_foreach((json_t *)v, k,
				    child) if (!depth_ok(child, depth + 1)) return 0;
	} else if (json_is_array(v)) {
		size_t i;
		json_t *child;
		json_array_foreach(v, i, child) if (!depth_ok(child, depth + 1)) return 0;
	}
	return 1;
}

/* jansson's messages may quote input ("invalid token near 'x'"): keep only the kind. */
static void describe_parse_error(const json_error_t *e, char msg[static JSONX_MSG_LEN])
{
	const char *kind = "malformed JSON";
	switch (json_error_code(e)) {
	case json_error_invalid_utf8: kind = "invalid UTF-8 in JSON"; break;
	case json_error_duplicate_key: kind = "duplicate key in JSON object"; break;
	case json_error_null_character: kind = "NUL character in JSON"; break;
	case json_error_premature_end_of_input: kind = "truncated JSON"; break;
	case json_error_end_of_input_expected: kind = "trailing data after JSON"; break;
	case json_error_stack_overflow: kind = "JSON nested too deeply"; break;
	default: break;
	}
	snprintf(msg, JSONX_MSG_LEN, "%s at byte %d", kind, e->position);
}

int jsonx_parse_object(const char *buf, size_t len, json_t **out, char msg[static JSONX_MSG_LEN])
{
	json_error_t e;
	json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
	if (!v) {
		describe_parse_error(&e, msg);
		return ODX_EINVAL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		snprintf(msg, JSONX_MSG_LEN, "body must be a JSON object");
		return ODX_EINVAL;
	}
	if (!depth_ok(v, 1)) {
		json_decref(v);
		snprintf(msg, JSONX_MSG_LEN, "JSON nested deeper than %d levels", JSONX_MAX_DEPTH);
		return ODX_EINVAL;
	}
	*out = v;
	return 0;
}

int jsonx_vunpack(json_t *obj, char msg[static JSONX_MSG_LEN], const char *fmt, va_list ap)
{
	json_error_t e;
	if (json_vunpack_ex(obj, &e, JSON_STRICT, fmt, ap) == 0)
		return 0;
	/* Unpack errors name keys and types ("Expected string, got integer"), never values. */
	snprintf(msg, JSONX_MSG_LEN, "%s", e.text);
	return ODX_EINVAL;
}

int jsonx_unpack(json_t *obj, char msg[static JSONX_MSG_LEN], const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = jsonx_vunpack(obj, msg, fmt, ap);
	va_end(ap);
	return rc;
}

struct dump_buf {
	char *p;
	size_t len, cap;
};

/* Appends into a buffer that starts at 1 KiB and doubles: a reply is built in a few steps. */
static int dump_append(const char *chunk, size_t n, void *arg)
{
	struct dump_buf *b = arg;
	if (n >= b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 1024;
		while (n >= cap - b->len) {
			if (cap > SIZE_MAX / 2)
				return -1;
			cap *= 2;
		}
		char *p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, chunk, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

char *jsonx_dump(const json_t *v)
{
	struct dump_buf b = {NULL, 0, 0};
	if (json_dump_callback(v, dump_append, &b, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 ||
	    !b.p) {
		free(b.p);
		return NULL;
	}
	return b.p;
}
