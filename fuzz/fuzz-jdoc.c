/*
 * fuzz-jdoc.c — the read-only JSON document (core/jdoc.c) that scanner
 * reports and scan imports are read with, held to jansson, whose strictness
 * it promises to match:
 *
 *   1. jdoc_parse on the input with max_depth 2048, jansson's own limit
 *      (JSON_PARSER_MAX_DEPTH of Debian 12's jansson 2.14), and json_loadb
 *      with JSON_DECODE_ANY | JSON_REJECT_DUPLICATES on the same bytes;
 *   2. jdoc_parse again with small bounds: 1, 2, and the document's own
 *      nesting, one less and one more.
 *
 * Oracles (abort on violation): results are 0, ODX_EINVAL or ODX_ENOMEM; a
 * refusal leaves *out untouched and its message is exactly one of jdoc's
 * kinds followed by " at byte N" with N <= the input size (so it can carry
 * no input byte), or the out-of-memory message. jdoc and jansson agree on
 * accept/refuse, and accepted trees are equal (types, int64s, reals with
 * their sign, strings byte for byte with their length and a NUL after,
 * arrays in order, objects by key), with two known differences allowed for
 * exactly: jansson counts scalars as a level (so it refuses, and jdoc
 * accepts, 2048 containers around a scalar), and jansson drops a NUL byte
 * right after a number or literal (jdoc refuses there; both are then run on
 * the input without that byte). jdoc_bytes exceeds the input size. With a
 * bound m, jdoc accepts exactly the accepted inputs nested at most m
 * containers deep (an input refused at 2048 stays refused), and reads the
 * same tree.
 */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jdoc.h"
#include "../tests/unit/jdoc-same.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define JANSSON_DEPTH 2048
#define JANSSON_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)
#define MAX_INPUT     (256 * 1024)
#define MAX_NUL_CUTS  64
#define SENTINEL_DOC  ((struct jdoc *)(uintptr_t)0x1)

static const char *const kinds[] = {
    "truncated JSON",
    "NUL character in JSON",
    "invalid \\u escape in JSON",
    "invalid escape in JSON",
    "control character in JSON string",
    "invalid UTF-8 in JSON",
    "JSON string too long",
    "malformed JSON",
    "JSON number too large",
    "JSON integer too large",
    "JSON container too large",
    "duplicate key in JSON object",
    "JSON nested too deeply",
    "trailing data after JSON",
};

/* The message of a refusal (rc): one known kind and an offset within the input. */
static void check_msg(const char msg[JDOC_MSG_LEN], int rc, size_t size)
{
	if (!memchr(msg, '\0', JDOC_MSG_LEN))
		abort();
	if (rc == ODX_ENOMEM) {
		if (strcmp(msg, "out of memory reading JSON") != 0)
			abort();
		return;
	}
	const char *at = strstr(msg, " at byte ");
	if (!at)
		abort();
	size_t klen = (size_t)(at - msg);
	bool known = false;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		known |= strlen(kinds[i]) == klen && memcmp(msg, kinds[i], klen) == 0;
	const char *p = at + 9;
	size_t off = 0;
	if (!known || *p < '0' || *p > '9')
		abort();
	for (; *p >= '0' && *p <= '9'; p++)
		off = off * 10 + (size_t)(*p - '0');
	if (*p != '\0' || off > size)
		abort();
}


/* Depth in containers (scalars 0) and in values (scalars 1, as jansson counts). */
static void depths(const struct jval *v, size_t *containers, size_t *values)
{
	size_t c = 0, n = 0;
	for (size_t i = 0; i < v->n && (v->type == JVAL_ARRAY || v->type == JVAL_OBJECT); i++) {
		const char *k;
		const struct jval *kid =
		    v->type == JVAL_ARRAY ? jval_at(v, i) : jval_member(v, i, &k);
		size_t kc, kn;
		depths(kid, &kc, &kn);
		c = kc > c ? kc : c;
		n = kn > n ? kn : n;
	}
	bool container = v->type == JVAL_ARRAY || v->type == JVAL_OBJECT;
	*containers = container ? c + 1 : 0;
	*values = n + 1;
}

/* jdoc with bound m: accepted exactly when nest <= m, then the same tree as jansson's j. */
static void check_bound(const char *buf, size_t len, unsigned m, size_t nest, const json_t *j)
{
	struct jdoc *d = SENTINEL_DOC;
	char msg[JDOC_MSG_LEN];
	int rc = jdoc_parse(buf, len, m, &d, msg);
	if (rc == ODX_ENOMEM)
		return;
	if ((rc == 0) != (nest <= m))
		abort();
	if (rc != 0) {
		if (rc != ODX_EINVAL || d != SENTINEL_DOC)
			abort();
		check_msg(msg, rc, len);
		return;
	}
	if (j && !jdoc_same(jdoc_root(d), j))
		abort();
	jdoc_free(d);
}

/* jansson dropped the NUL at jdoc's refusal (msg): its offset, or 0 when not that case. */
static size_t dropped_nul(const char *buf, size_t len, const char *msg)
{
	const char *at = strstr(msg, " at byte ");
	if (!at ||
	    (strncmp(msg, "NUL character", 13) != 0 && strncmp(msg, "trailing data", 13) != 0))
		return 0;
	size_t k = 0;
	for (const char *p = at + 9; *p >= '0' && *p <= '9'; p++)
		k = k * 10 + (size_t)(*p - '0');
	if (k == 0 || k >= len || buf[k] != '\0')
		return 0;
	char c = buf[k - 1];
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ? k : 0;
}

/* Step 1 and 2 on buf[0..*len); false when buf was cut at a NUL and must be run again. */
static bool check(char *buf, size_t *len)
{
	struct jdoc *d = SENTINEL_DOC;
	char msg[JDOC_MSG_LEN];
	memset(msg, 'X', sizeof(msg));
	int rc = jdoc_parse(buf, *len, JANSSON_DEPTH, &d, msg);
	if (rc == ODX_ENOMEM)
		return true;
	json_error_t e;
	json_t *j = json_loadb(buf, *len, JANSSON_FLAGS, &e);
	if (rc != 0) {
		if (rc != ODX_EINVAL || d != SENTINEL_DOC)
			abort();
		check_msg(msg, rc, *len);
		check_bound(buf, *len, 2, SIZE_MAX, NULL);
		json_decref(j);
		if (!j)
			return true;
		size_t k = dropped_nul(buf, *len, msg);
		if (!k)
			abort(); /* jdoc refused what jansson accepted */
		memmove(buf + k, buf + k + 1, *len - k - 1);
		(*len)--;
		return false;
	}
	size_t nest, values;
	depths(jdoc_root(d), &nest, &values);
	if ((j != NULL) != (values <= JANSSON_DEPTH))
		abort();
	if (j && !jdoc_same(jdoc_root(d), j))
		abort();
	if (jdoc_bytes(d) <= *len)
		abort();
	jdoc_free(d);
	const size_t bounds[] = {1, 2, nest - 1, nest, nest + 1};
	for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++)
		if (bounds[i] >= 1 && bounds[i] <= JANSSON_DEPTH)
			check_bound(buf, *len, (unsigned)bounds[i], nest, j);
	json_decref(j);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > MAX_INPUT)
		return 0;
	char *buf = malloc(size ? size : 1); /* exactly size bytes: ASan sees any overread */
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	size_t len = size;
	for (int cuts = 0; cuts <= MAX_NUL_CUTS && !check(buf, &len); cuts++)
		;
	free(buf);
	return 0;
}
