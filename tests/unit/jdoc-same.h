/*
 * jdoc-same.h — whether a core/jdoc.h value and a jansson value are the same
 * JSON value: the oracle of the differential checks in tests/unit/test-jdoc.c
 * and fuzz/fuzz-jdoc.c (types, int64, reals with their sign, strings byte for
 * byte with their length, arrays in order, objects by key).
 *
 * Header-only, one static function: both users are executables of their own.
 */
#ifndef ODX_TEST_JDOC_SAME_H
#define ODX_TEST_JDOC_SAME_H

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "core/jdoc.h"

/* True when jdoc's value v and jansson's j are the same JSON value. */
static bool jdoc_same(const struct jval *v, const json_t *j)
{
	switch (v->type) {
	case JVAL_NULL: return json_is_null(j);
	case JVAL_TRUE: return json_is_true(j);
	case JVAL_FALSE: return json_is_false(j);
	case JVAL_INT: return json_is_integer(j) && json_integer_value(j) == v->u.i;
	case JVAL_REAL:
		return json_is_real(j) && json_real_value(j) == v->u.d &&
		       !signbit(json_real_value(j)) == !signbit(v->u.d);
	case JVAL_STRING:
		return json_is_string(j) && json_string_length(j) == v->n &&
		       memcmp(json_string_value(j), v->u.s, v->n) == 0 && strlen(v->u.s) == v->n;
	case JVAL_ARRAY:
		if (!json_is_array(j) || json_array_size(j) != v->n)
			return false;
		for (size_t i = 0; i < v->n; i++)
			if (!jdoc_same(jval_at(v, i), json_array_get(j, i)))
				return false;
		return true;
	case JVAL_OBJECT:
		if (!json_is_object(j) || json_object_size(j) != v->n)
			return false;
		for (size_t i = 0; i < v->n; i++) {
			const char *k = NULL;
			const struct jval *m = jval_member(v, i, &k);
			size_t klen = v->u.kids[2 * i].n;
			const json_t *jm = json_object_getn(j, k, klen);
			if (!jm || strlen(k) != klen || !jdoc_same(m, jm))
				return false;
		}
		return true;
	default: return false;
	}
}

#endif
