/*
 * jdoc.h — a read-only JSON document for big untrusted inputs (scanner
 * reports of up to hundreds of MiB).
 *
 * jsonx.h (jansson) stays the way to read request bodies and write replies:
 * it unpacks strictly and builds mutable trees. A 200 MiB report through
 * jansson costs seconds, most of it in a malloc per value and a hash table
 * per object, then as long again to free it (bench/scan-bench.sh). jdoc
 * parses the same grammar with the same strictness into one arena: the
 * input is copied once and decoded in place (strings end with a NUL written
 * over their closing quote), values are 16-byte nodes in blocks, and
 * jdoc_free releases it all at once.
 *
 * Strict like jsonx: RFC 8259 grammar only; UTF-8 validated (no overlong
 * forms, no surrogates, nothing past U+10FFFF); \u0000 refused (strings are
 * C strings); duplicate keys refused; nesting at most max_depth; integers
 * beyond int64 refused. Error messages name the kind of problem and the
 * byte offset, never the input.
 *
 * Objects keep their members in document order; jval_get is a linear scan
 * (report objects have tens of keys at most).
 */
#ifndef ODX_JDOC_H
#define ODX_JDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JDOC_MSG_LEN	 160
#define JDOC_DEPTH_MAX 4096

enum jval_type {
	JVAL_NULL = 0,
	JVAL_FALSE,
	JVAL_TRUE,
	JVAL_INT,
	JVAL_REAL,
	JVAL_STRING,
	JVAL_ARRAY,
	JVAL_OBJECT,
};

struct jval {
	uint32_t type; /* enum jval_type */
	uint32_t n;    /* string: bytes; array: items; object: members */
	union {
		const char *s;		 /* NUL-terminated */
		int64_t i;
		double d;
		const struct jval *kids; /* array: n values; object: n (key, value) pairs */
	} u;
};

struct jdoc;

/*
 * Parses buf[0..len) as one JSON value with at most max_depth containers
 * nested (a scalar adds no level: jansson and jsonx count it as one;
 * max_depth is taken as 1 when 0 and as JDOC_DEPTH_MAX when larger, which
 * bounds the parser's recursion).
 * 0 with *out (free with jdoc_free), ODX_EINVAL with the reason in msg, or
 * ODX_ENOMEM. *out is written only on success.
 */
int jdoc_parse(const char *buf, size_t len, unsigned max_depth, struct jdoc **out,
	       char msg[static JDOC_MSG_LEN]);
/* Frees the document and every value in it; NULL ok. */
void jdoc_free(struct jdoc *d);
/* The top-level value. */
const struct jval *jdoc_root(const struct jdoc *d);
/* Bytes the document holds (input copy and nodes), for the benchmark. */
size_t jdoc_bytes(const struct jdoc *d);

/* Accessors: each takes NULL (an absent value) and answers as for a wrong type. */
static inline bool jval_is(const struct jval *v, enum jval_type t)
{
	return v && v->type == (uint32_t)t;
}
#define jval_is_null(v)	  jval_is((v), JVAL_NULL)
#define jval_is_string(v) jval_is((v), JVAL_STRING)
#define jval_is_array(v)  jval_is((v), JVAL_ARRAY)
#define jval_is_object(v) jval_is((v), JVAL_OBJECT)
#define jval_is_int(v)	  jval_is((v), JVAL_INT)
#define jval_is_true(v)	  jval_is((v), JVAL_TRUE)
static inline bool jval_is_bool(const struct jval *v)
{
	return jval_is(v, JVAL_TRUE) || jval_is(v, JVAL_FALSE);
}
static inline bool jval_is_number(const struct jval *v)
{
	return jval_is(v, JVAL_INT) || jval_is(v, JVAL_REAL);
}
/* The string (NUL-terminated), or NULL when v is not a string. */
static inline const char *jval_str(const struct jval *v)
{
	return jval_is_string(v) ? v->u.s : NULL;
}
/* Bytes of a string, items of an array, members of an object; 0 otherwise. */
static inline size_t jval_len(const struct jval *v)
{
	return v && v->type >= JVAL_STRING ? v->n : 0;
}
static inline int64_t jval_int(const struct jval *v)
{
	return jval_is_int(v) ? v->u.i : 0;
}
/* An integer or real as a double; 0 otherwise. */
static inline double jval_num(const struct jval *v)
{
	return jval_is_int(v) ? (double)v->u.i : jval_is(v, JVAL_REAL) ? v->u.d : 0;
}
/* Item i of an array (NULL past the end or when v is not an array). */
static inline const struct jval *jval_at(const struct jval *v, size_t i)
{
	return jval_is_array(v) && i < v->n ? &v->u.kids[i] : NULL;
}
/* Member i of an object: its key (*key) and value; NULL past the end. */
static inline const struct jval *jval_member(const struct jval *v, size_t i, const char **key)
{
	if (!jval_is_object(v) || i >= v->n)
		return NULL;
	*key = v->u.kids[2 * i].u.s;
	return &v->u.kids[2 * i + 1];
}
/* The value of key in object v, or NULL. */
const struct jval *jval_get(const struct jval *v, const char *key);

#define jval_array_foreach(a, i, v) for ((i) = 0; ((v) = jval_at((a), (i))) != NULL; (i)++)
#define jval_object_foreach(o, i, k, v)                                                          \
	for ((i) = 0; ((v) = jval_member((o), (i), &(k))) != NULL; (i)++)

#endif
