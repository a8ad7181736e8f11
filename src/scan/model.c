/*
 * model.c — the report arena, the names of the model's enums, counts, and the
 * API's JSON of findings (see model.h).
 *
 * Arena: a list of chunks, each one calloc'd block. Allocations bump a
 * cursor in the newest chunk; memory is never reused, so every allocation
 * is already zero. Chunks start at ARENA_CHUNK_MIN and double up to
 * ARENA_CHUNK_MAX, so a small report costs 64 KiB and a 100k-finding one
 * a few dozen mallocs. A request bigger than a quarter of the next chunk
 * (a findings array) gets a chunk of its own, linked behind the newest one,
 * so the free tail of the current chunk is not thrown away.
 */
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/jdoc.h"
#include "scan/model.h"

#define ARENA_CHUNK_MIN (64u * 1024)
#define ARENA_CHUNK_MAX (1024u * 1024)
#define ARENA_ALIGN	16

struct chunk {
	struct chunk *next;
	size_t size, used;
	alignas(ARENA_ALIGN) unsigned char data[];
};

struct scan_arena {
	struct chunk *head; /* where small allocations go */
	size_t next_size;   /* size of the next regular chunk */
	size_t bytes;	    /* sum of chunk sizes, for scan_report_arena_bytes */
};

static struct chunk *chunk_new(struct scan_arena *a, size_t size)
{
	if (size > SIZE_MAX - sizeof(struct chunk))
		return NULL;
	struct chunk *c = calloc(1, sizeof(*c) + size);
	if (!c)
		return NULL;
	c->size = size;
	a->bytes += size;
	return c;
}

/* n bytes aligned to align (a power of two <= ARENA_ALIGN), zeroed. */
static void *arena_take(struct scan_arena *a, size_t n, size_t align)
{
	struct chunk *h = a->head;
	if (h) {
		size_t off = (h->used + align - 1) & ~(align - 1);
		if (off <= h->size && n <= h->size - off) {
			h->used = off + n;
			return h->data + off;
		}
	}
	if (n > a->next_size / 4) {
		/* oversize: its own chunk, behind the head so the head keeps its tail */
		struct chunk *big = chunk_new(a, n);
		if (!big)
			return NULL;
		big->used = n;
		if (h) {
			big->next = h->next;
			h->next = big;
		} else {
			a->head = big;
		}
		return big->data;
	}
	struct chunk *c = chunk_new(a, a->next_size);
	if (!c)
		return NULL;
	if (a->next_size < ARENA_CHUNK_MAX)
		a->next_size *= 2;
	c->next = h;
	a->head = c;
	c->used = n;
	return c->data;
}

struct scan_report *scan_report_new(void)
{
	struct scan_report *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->arena = calloc(1, sizeof(*r->arena));
	if (!r->arena) {
		free(r);
		return NULL;
	}
	r->arena->next_size = ARENA_CHUNK_MIN;
	return r;
}

void scan_report_free(struct scan_report *r)
{
	if (!r)
		return;
	if (r->arena) {
		struct chunk *c = r->arena->head;
		while (c) {
			struct chunk *next = c->next;
			free(c);
			c = next;
		}
		free(r->arena);
	}
	free(r);
}

void *scan_alloc(struct scan_report *r, size_t n)
{
	return arena_take(r->arena, n ? n : 1, ARENA_ALIGN);
}

const char *scan_strndup(struct scan_report *r, const char *s, size_t len)
{
	if (len == SIZE_MAX)
		return NULL;
	char *p = arena_take(r->arena, len + 1, 1);
	if (!p)
		return NULL;
	if (len)
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

const char *scan_strdup(struct scan_report *r, const char *s)
{
	return s ? scan_strndup(r, s, strlen(s)) : NULL;
}

size_t scan_report_arena_bytes(const struct scan_report *r)
{
	return r && r->arena ? r->arena->bytes : 0;
}

/* ---- names ---- */

static const char *const severity_names[SCAN_SEV_COUNT] = {
    "unknown", "negligible", "low", "medium", "high", "critical",
};

const char *scan_severity_name(enum scan_severity s)
{
	return (unsigned)s < SCAN_SEV_COUNT ? severity_names[s] : "unknown";
}

int scan_severity_parse(const char *s)
{
	if (!s)
		return -1;
	for (int i = 0; i < SCAN_SEV_COUNT; i++)
		if (strcasecmp(s, severity_names[i]) == 0)
			return i;
	return -1;
}

const char *scan_engine_name(enum scan_engine e)
{
	return e == SCAN_ENGINE_GRYPE ? "grype" : "trivy";
}

const char *scan_fix_state_name(enum scan_fix_state s)
{
	switch (s) {
	case SCAN_FIX_UNKNOWN: return "unknown";
	case SCAN_FIX_FIXED: return "fixed";
	case SCAN_FIX_AFFECTED: return "affected";
	case SCAN_FIX_WONT_FIX: return "wont_fix";
	case SCAN_FIX_EOL: return "end_of_life";
	case SCAN_FIX_NONE: break;
	}
	return "none";
}

void scan_report_count(const struct scan_report *r, struct scan_counts *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < r->nfindings; i++) {
		enum scan_severity s = r->findings[i].severity;
		out->by_severity[(unsigned)s < SCAN_SEV_COUNT ? s : SCAN_SEV_UNKNOWN]++;
	}
	out->total = r->nfindings;
}

/* ---- string lists ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t scan_strv_sort_unique(const char **v, size_t n)
{
	if (n < 2)
		return n;
	qsort(v, n, sizeof(*v), cmp_str);
	size_t k = 1;
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i], v[k - 1]) != 0)
			v[k++] = v[i];
	return k;
}

struct ranked {
	const char *s;
	size_t pos;
};

static int cmp_ranked(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;
	int c = strcmp(x->s, y->s);
	return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* Quadratic, for short lists (and when the index below cannot be allocated). */
static size_t unique_small(const char **v, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		size_t j = 0;
		while (j < k && strcmp(v[j], v[i]) != 0)
			j++;
		if (j == k)
			v[k++] = v[i];
	}
	return k;
}

size_t scan_strv_unique(const char **v, size_t n)
{
	if (n <= 32)
		return unique_small(v, n);
	/* sort (string, position), keep the first position of each string, then restore order */
	struct ranked *r = n <= SIZE_MAX / sizeof(*r) ? malloc(n * sizeof(*r)) : NULL;
	if (!r)
		return unique_small(v, n);
	for (size_t i = 0; i < n; i++)
		r[i] = (struct ranked){v[i], i};
	qsort(r, n, sizeof(*r), cmp_ranked);
	for (size_t i = 1; i < n; i++)
		if (strcmp(r[i].s, r[i - 1].s) == 0)
			v[r[i].pos] = NULL; /* a repeat: a later position than the first */
	free(r);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i])
			v[k++] = v[i];
	return k;
}

/* ---- loading a report ---- */

int scan_json_load(const char *buf, size_t len, struct jdoc **out, char msg[static SCAN_MSG_LEN])
{
	if (len > SCAN_MAX_REPORT) {
		snprintf(msg, SCAN_MSG_LEN, "report larger than %zu bytes", SCAN_MAX_REPORT);
		return ODX_ETOOBIG;
	}
	char why[JDOC_MSG_LEN];
	int rc = jdoc_parse(buf, len, SCAN_JSON_DEPTH, out, why);
	if (rc < 0)
		snprintf(msg, SCAN_MSG_LEN, "%s", why);
	return rc;
}

/* ---- JSON ---- */

/*
 * The builders below add to an object and return false on allocation
 * failure; json_object_set_new consumes the value even when it fails, so a
 * failed step leaks nothing and the caller drops the whole object.
 */

static bool set_str(json_t *o, const char *key, const char *s)
{
	return !s || json_object_set_new(o, key, json_string(s)) == 0;
}

static bool set_strv(json_t *o, const char *key, const char *const *v, size_t n)
{
	json_t *a = json_array();
	if (!a)
		return false;
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) != 0) {
			json_decref(a);
			return false;
		}
	return json_object_set_new(o, key, a) == 0;
}

static json_t *package_json(const struct scan_package *p)
{
	json_t *o = json_object();
	if (o && set_str(o, "name", p->name) && set_str(o, "version", p->version) &&
	    set_str(o, "type", p->type) && set_str(o, "purl", p->purl) &&
	    set_str(o, "key", p->key) && set_str(o, "source", p->source))
		return o;
	json_decref(o);
	return NULL;
}

static json_t *cvss_json(const struct scan_cvss *c, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++) {
		json_t *o = json_object();
		bool ok =
		    o && set_str(o, "source", c[i].source) && set_str(o, "version", c[i].version) &&
		    set_str(o, "vector", c[i].vector) &&
		    (c[i].score < 0 || json_object_set_new(o, "score", json_real(c[i].score)) == 0);
		if (!ok || json_array_append_new(a, o) != 0) {
			if (!ok)
				json_decref(o);
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* engine_severity and fix_state: one member per engine that reported the finding. */
static bool per_engine_json(json_t *f, const struct scan_finding *s)
{
	json_t *sev = json_object(), *fix = json_object();
	json_t *engines = json_array();
	if (!sev || !fix || !engines)
		goto fail;
	for (int e = 0; e < SCAN_ENGINE_COUNT; e++) {
		const char *name = scan_engine_name((enum scan_engine)e);
		if (s->engines & SCAN_ENGINE_BIT(e)) {
			json_t *o = json_object();
			if (!o || json_object_set_new(sev, name, o) != 0 ||
			    !set_str(o, "severity", scan_severity_name(s->engine_severity[e])) ||
			    !set_str(o, "source", s->engine_severity_source[e]) ||
			    json_array_append_new(engines, json_string(name)) != 0)
				goto fail;
		}
		if (s->fix_state[e] != SCAN_FIX_NONE &&
		    !set_str(fix, name, scan_fix_state_name(s->fix_state[e])))
			goto fail;
	}
	/* each set_new consumes its value, success or not */
	int rc = json_object_set_new(f, "engine_severity", sev);
	rc |= json_object_set_new(f, "fix_state", fix);
	rc |= json_object_set_new(f, "engines", engines);
	return rc == 0;
fail:
	json_decref(sev);
	json_decref(fix);
	json_decref(engines);
	return false;
}

json_t *scan_finding_to_json(const struct scan_finding *s)
{
	json_t *f = json_object();
	if (!f)
		return NULL;
	bool ok = set_str(f, "id", s->id) && set_strv(f, "aliases", s->aliases, s->naliases) &&
		  json_object_set_new(f, "package", package_json(&s->pkg)) == 0 &&
		  set_strv(f, "paths", s->paths, s->npaths) && set_str(f, "layer", s->layer) &&
		  set_str(f, "title", s->title) &&
		  set_str(f, "severity", scan_severity_name(s->severity)) &&
		  set_str(f, "severity_source", s->severity_source) && per_engine_json(f, s) &&
		  json_object_set_new(f, "cvss", cvss_json(s->cvss, s->ncvss)) == 0 &&
		  set_strv(f, "fixed_versions", s->fixed_versions, s->nfixed) &&
		  (s->epss < 0 || json_object_set_new(f, "epss", json_real(s->epss)) == 0) &&
		  (s->epss_percentile < 0 ||
		   json_object_set_new(f, "epss_percentile", json_real(s->epss_percentile)) == 0) &&
		  json_object_set_new(f, "kev", json_boolean(s->kev)) == 0 &&
		  json_object_set_new(f, "cpe_match", json_boolean(s->cpe_match)) == 0 &&
		  set_strv(f, "urls", s->urls, s->nurls);
	if (ok)
		return f;
	json_decref(f);
	return NULL;
}

json_t *scan_image_to_json(const struct scan_image *img)
{
	json_t *o = json_object();
	if (o && set_str(o, "name", img->name) && set_str(o, "image_id", img->image_id) &&
	    set_strv(o, "repo_digests", img->repo_digests, img->nrepo_digests) &&
	    set_str(o, "os_family", img->os_family) && set_str(o, "os_version", img->os_version) &&
	    json_object_set_new(o, "os_eol", json_boolean(img->os_eol)) == 0 &&
	    set_strv(o, "entrypoint", img->entrypoint, img->nentrypoint))
		return o;
	json_decref(o);
	return NULL;
}

json_t *scan_counts_to_json(const struct scan_counts *c)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	for (int s = SCAN_SEV_COUNT - 1; s >= 0; s--)
		if (json_object_set_new(o, severity_names[s],
					json_integer((json_int_t)c->by_severity[s])) != 0)
			goto fail;
	if (json_object_set_new(o, "total", json_integer((json_int_t)c->total)) == 0)
		return o;
fail:
	json_decref(o);
	return NULL;
}
