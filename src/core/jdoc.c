/* jdoc.c — see jdoc.h. A recursive-descent parser bounded by max_depth. */
#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jdoc.h"

struct block {
	struct block *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

struct jdoc {
	char *text; /* the input, copied, decoded in place; NUL after its end */
	struct block *blocks;
	size_t bytes;
	struct jval root;
};

struct parser {
	char *p, *end;
	const char *text;
	struct jdoc *d;
	struct jval *stack; /* values of the containers being read, innermost last */
	size_t sp, cap;
	unsigned max_depth;
	char *msg;
};

#define BLOCK_MIN (64u * 1024)
#define BLOCK_MAX (16u * 1024 * 1024)
#define DUP_LINEAR_MAX 16

static void *arena_alloc(struct jdoc *d, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct block *b = d->blocks;
	if (!b || b->cap - b->used < n) {
		size_t cap = b ? b->cap * 2 : BLOCK_MIN;
		if (cap > BLOCK_MAX)
			cap = BLOCK_MAX;
		if (cap < n)
			cap = n;
		if (cap > SIZE_MAX - sizeof(*b))
			return NULL;
		struct block *nb = malloc(sizeof(*nb) + cap);
		if (!nb)
			return NULL;
		nb->next = b;
		nb->used = 0;
		nb->cap = cap;
		d->blocks = nb;
		d->bytes += sizeof(*nb) + cap;
		b = nb;
	}
	void *p = b->data + b->used;
	b->used += n;
	return p;
}

/* Records the first error (its kind and where) and returns ODX_EINVAL. */
static int fail(struct parser *ps, const char *kind, const char *at)
{
	if (!ps->msg[0])
		snprintf(ps->msg, JDOC_MSG_LEN, "%s at byte %zu", kind, (size_t)(at - ps->text));
	return ODX_EINVAL;
}

static int oom(struct parser *ps)
{
	if (!ps->msg[0])
		snprintf(ps->msg, JDOC_MSG_LEN, "out of memory reading JSON");
	return ODX_ENOMEM;
}

static void skip_ws(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t')
		ps->p++;
}

/* A byte that ends the input or is a raw NUL inside it. */
static int bad_nul(struct parser *ps)
{
	return ps->p >= ps->end ? fail(ps, "truncated JSON", ps->p)
				: fail(ps, "NUL character in JSON", ps->p);
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static char *put_utf8(char *w, unsigned cp)
{
	if (cp < 0x80) {
		*w++ = (char)cp;
	} else if (cp < 0x800) {
		*w++ = (char)(0xc0 | (cp >> 6));
		*w++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*w++ = (char)(0xe0 | (cp >> 12));
		*w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*w++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*w++ = (char)(0xf0 | (cp >> 18));
		*w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*w++ = (char)(0x80 | (cp & 0x3f));
	}
	return w;
}

/* \uXXXX (and its low surrogate) at ps->p (after the backslash and 'u'); writes UTF-8 at *w. */
static int unicode_escape(struct parser *ps, char **w)
{
	unsigned cp, lo;
	if (ps->end - ps->p < 4 || hex4(ps->p, &cp) < 0)
		return fail(ps, "invalid \\u escape in JSON", ps->p);
	ps->p += 4;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return fail(ps, "invalid \\u escape in JSON", ps->p);
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' ||
		    hex4(ps->p + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
			return fail(ps, "invalid \\u escape in JSON", ps->p);
		ps->p += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (cp == 0)
		return fail(ps, "NUL character in JSON", ps->p);
	*w = put_utf8(*w, cp);
	return 0;
}

/* Length of the valid multi-byte UTF-8 sequence at s (lead byte >= 0x80), or 0. */
static size_t utf8_len(const unsigned char *s, const unsigned char *end)
{
	unsigned char c = s[0];
	size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	if (!n || (size_t)(end - s) < n)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* overlong 3- and 4-byte forms, surrogates, past U+10FFFF */
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
	    (c == 0xf4 && s[1] > 0x8f))
		return 0;
	return n;
}

static int escape(struct parser *ps, char **w)
{
	char c = *ps->p++;
	switch (c) {
	case '"': *(*w)++ = '"'; return 0;
	case '\\': *(*w)++ = '\\'; return 0;
	case '/': *(*w)++ = '/'; return 0;
	case 'b': *(*w)++ = '\b'; return 0;
	case 'f': *(*w)++ = '\f'; return 0;
	case 'n': *(*w)++ = '\n'; return 0;
	case 'r': *(*w)++ = '\r'; return 0;
	case 't': *(*w)++ = '\t'; return 0;
	case 'u': return unicode_escape(ps, w);
	default: return fail(ps, "invalid escape in JSON", ps->p - 1);
	}
}

/* A string at ps->p (after its opening quote), decoded in place. */
static int parse_string(struct parser *ps, struct jval *out)
{
	char *start = ps->p, *w = ps->p;
	for (;;) {
		unsigned char c = (unsigned char)*ps->p;
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			*w++ = (char)c;
			ps->p++;
		} else if (c == '"') {
			*w = '\0';
			ps->p++;
			break;
		} else if (c == '\\') {
			ps->p++;
			int rc = escape(ps, &w);
			if (rc < 0)
				return rc;
		} else if (c == 0) {
			return bad_nul(ps);
		} else if (c < 0x20) {
			return fail(ps, "control character in JSON string", ps->p);
		} else {
			size_t n = utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);
			if (!n)
				return fail(ps, "invalid UTF-8 in JSON", ps->p);
			memmove(w, ps->p, n);
			w += n;
			ps->p += n;
		}
	}
	if ((size_t)(w - start) > UINT32_MAX)
		return fail(ps, "JSON string too long", start);
	out->type = JVAL_STRING;
	out->n = (uint32_t)(w - start);
	out->u.s = start;
	return 0;
}

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

static locale_t numeric_c;
static pthread_once_t numeric_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
	numeric_c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* JSON's decimal point is '.', whatever the process's locale says. */
static locale_t c_locale(void)
{
	pthread_once(&numeric_once, make_c_locale);
	return numeric_c ? numeric_c : LC_GLOBAL_LOCALE;
}

static int parse_number(struct parser *ps, struct jval *out)
{
	char *start = ps->p, *p = ps->p;
	bool neg = *p == '-', real = false;
	p += neg;
	if (*p == '0')
		p++;
	else if (digit(*p))
		while (digit(*p))
			p++;
	else
		return fail(ps, "malformed JSON", p);
	if (*p == '.') {
		real = true;
		if (!digit(*++p))
			return fail(ps, "malformed JSON", p);
		while (digit(*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		real = true;
		p++;
		p += *p == '+' || *p == '-';
		if (!digit(*p))
			return fail(ps, "malformed JSON", p);
		while (digit(*p))
			p++;
	}
	ps->p = p;
	if (real) {
		errno = 0;
		double d = strtod_l(start, NULL, c_locale());
		if (errno == ERANGE && (d > 1 || d < -1))
			return fail(ps, "JSON number too large", start);
		out->type = JVAL_REAL;
		out->u.d = d;
		return 0;
	}
	/* Accumulate negatively: INT64_MIN has no positive twin. */
	int64_t v = 0;
	for (const char *q = start + neg; q < p; q++) {
		int dgt = *q - '0';
		if (v < (INT64_MIN + dgt) / 10)
			return fail(ps, "JSON integer too large", start);
		v = v * 10 - dgt;
	}
	if (!neg && v == INT64_MIN)
		return fail(ps, "JSON integer too large", start);
	out->type = JVAL_INT;
	out->u.i = neg ? v : -v;
	return 0;
}

static int parse_literal(struct parser *ps, const char *word, enum jval_type t, struct jval *out)
{
	size_t n = strlen(word), left = (size_t)(ps->end - ps->p);
	if (left < n || memcmp(ps->p, word, n) != 0)
		return left < n && memcmp(ps->p, word, left) == 0
			   ? fail(ps, "truncated JSON", ps->end)
			   : fail(ps, "malformed JSON", ps->p);
	ps->p += n;
	out->type = t;
	return 0;
}

static int push(struct parser *ps, const struct jval *v)
{
	if (ps->sp == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 256;
		struct jval *s = cap < SIZE_MAX / sizeof(*s) ? realloc(ps->stack, cap * sizeof(*s)) : NULL;
		if (!s)
			return oom(ps);
		ps->stack = s;
		ps->cap = cap;
	}
	ps->stack[ps->sp++] = *v;
	return 0;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* True when two of the n pairs at kids have the same key. */
static int has_duplicate(const struct jval *kids, size_t n, bool *dup)
{
	*dup = false;
	if (n <= DUP_LINEAR_MAX) {
		for (size_t i = 0; i < n; i++)
			for (size_t j = i + 1; j < n; j++)
				if (kids[2 * i].n == kids[2 * j].n &&
				    memcmp(kids[2 * i].u.s, kids[2 * j].u.s, kids[2 * i].n) == 0)
					*dup = true;
		return 0;
	}
	const char **keys = malloc(n * sizeof(*keys));
	if (!keys)
		return ODX_ENOMEM;
	for (size_t i = 0; i < n; i++)
		keys[i] = kids[2 * i].u.s;
	qsort(keys, n, sizeof(*keys), by_key);
	for (size_t i = 1; i < n && !*dup; i++)
		*dup = strcmp(keys[i - 1], keys[i]) == 0;
	free(keys);
	return 0;
}

/* Moves the values pushed since base into the arena as out's children. */
static int close_container(struct parser *ps, size_t base, enum jval_type t, struct jval *out,
			   const char *at)
{
	size_t n = ps->sp - base;
	struct jval *kids = NULL;
	if (n) {
		kids = arena_alloc(ps->d, n * sizeof(*kids));
		if (!kids)
			return oom(ps);
		memcpy(kids, ps->stack + base, n * sizeof(*kids));
	}
	ps->sp = base;
	size_t count = t == JVAL_OBJECT ? n / 2 : n;
	if (count > UINT32_MAX)
		return fail(ps, "JSON container too large", at);
	bool dup = false;
	if (t == JVAL_OBJECT && has_duplicate(kids, count, &dup) < 0)
		return oom(ps);
	if (dup)
		return fail(ps, "duplicate key in JSON object", at);
	out->type = t;
	out->n = (uint32_t)count;
	out->u.kids = kids;
	return 0;
}

static int parse_value(struct parser *ps, struct jval *out, unsigned depth);

/* The members or items of the container opened at ps->p[-1], up to close. */
static int parse_container(struct parser *ps, struct jval *out, unsigned depth, bool object)
{
	const char *at = ps->p - 1;
	char close = object ? '}' : ']';
	if (depth > ps->max_depth)
		return fail(ps, "JSON nested too deeply", at);
	size_t base = ps->sp;
	skip_ws(ps);
	if (*ps->p == close) {
		ps->p++;
		return close_container(ps, base, object ? JVAL_OBJECT : JVAL_ARRAY, out, at);
	}
	for (;;) {
		struct jval v;
		int rc;
		skip_ws(ps);
		if (object) {
			if (*ps->p != '"')
				return *ps->p ? fail(ps, "malformed JSON", ps->p) : bad_nul(ps);
			ps->p++;
			if ((rc = parse_string(ps, &v)) < 0 || (rc = push(ps, &v)) < 0)
				return rc;
			skip_ws(ps);
			if (*ps->p != ':')
				return *ps->p ? fail(ps, "malformed JSON", ps->p) : bad_nul(ps);
			ps->p++;
		}
		if ((rc = parse_value(ps, &v, depth + 1)) < 0 || (rc = push(ps, &v)) < 0)
			return rc;
		skip_ws(ps);
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p == close)
			break;
		return *ps->p ? fail(ps, "malformed JSON", ps->p) : bad_nul(ps);
	}
	ps->p++;
	return close_container(ps, base, object ? JVAL_OBJECT : JVAL_ARRAY, out, at);
}

static int parse_value(struct parser *ps, struct jval *out, unsigned depth)
{
	skip_ws(ps);
	memset(out, 0, sizeof(*out));
	switch (*ps->p) {
	case '{': ps->p++; return parse_container(ps, out, depth, true);
	case '[': ps->p++; return parse_container(ps, out, depth, false);
	case '"': ps->p++; return parse_string(ps, out);
	case 't': return parse_literal(ps, "true", JVAL_TRUE, out);
	case 'f': return parse_literal(ps, "false", JVAL_FALSE, out);
	case 'n': return parse_literal(ps, "null", JVAL_NULL, out);
	case '\0': return bad_nul(ps);
	default:
		if (*ps->p == '-' || digit(*ps->p))
			return parse_number(ps, out);
		return fail(ps, "malformed JSON", ps->p);
	}
}

int jdoc_parse(const char *buf, size_t len, unsigned max_depth, struct jdoc **out,
	       char msg[static JDOC_MSG_LEN])
{
	msg[0] = '\0';
	struct jdoc *d = calloc(1, sizeof(*d));
	char *text = d && len < SIZE_MAX ? malloc(len + 1) : NULL;
	if (!text) {
		free(d);
		snprintf(msg, JDOC_MSG_LEN, "out of memory reading JSON");
		return ODX_ENOMEM;
	}
	memcpy(text, buf, len);
	text[len] = '\0';
	d->text = text;
	d->bytes = len + 1;
	struct parser ps = {.p = text, .end = text + len, .text = text, .d = d,
			    .max_depth = max_depth < 1		   ? 1
					 : max_depth > JDOC_DEPTH_MAX ? JDOC_DEPTH_MAX
								      : max_depth,
			    .msg = msg};
	int rc = parse_value(&ps, &d->root, 1);
	if (rc == 0) {
		skip_ws(&ps);
		if (ps.p != ps.end)
			rc = fail(&ps, "trailing data after JSON", ps.p);
	}
	free(ps.stack);
	if (rc < 0) {
		jdoc_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void jdoc_free(struct jdoc *d)
{
	if (!d)
		return;
	for (struct block *b = d->blocks, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(d->text);
	free(d);
}

const struct jval *jdoc_root(const struct jdoc *d)
{
	return &d->root;
}

size_t jdoc_bytes(const struct jdoc *d)
{
	return d->bytes;
}

const struct jval *jval_get(const struct jval *v, const char *key)
{
	if (!jval_is_object(v))
		return NULL;
	for (uint32_t i = 0; i < v->n; i++)
		if (strcmp(v->u.kids[2 * i].u.s, key) == 0)
			return &v->u.kids[2 * i + 1];
	return NULL;
}
