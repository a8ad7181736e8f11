/*
 * jread.c — the field readers, severity and parse frame trivy.c and
 * grype.c share (jread.h).
 *
 * The place prefix is formatted only when a report is refused, so keeping
 * it up to date costs a parser two stores per item, not a snprintf. Output
 * parameters are written only on success; a refusal leaves them alone (the
 * parser then drops the whole report).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "scan/jread.h"

int jread_fail(struct jread *c, int rc, const char *fmt, ...)
{
	char what[SCAN_MSG_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (c->list && c->sub)
		snprintf(c->msg, SCAN_MSG_LEN, "%s[%zu].%s[%zu]: %s", c->list, c->i, c->sub, c->si,
			 what);
	else if (c->list)
		snprintf(c->msg, SCAN_MSG_LEN, "%s[%zu]: %s", c->list, c->i, what);
	else
		snprintf(c->msg, SCAN_MSG_LEN, "%s", what);
	return rc;
}

int jread_oom(struct jread *c)
{
	return jread_fail(c, ODX_ENOMEM, "out of memory");
}

int jread_raw(struct jread *c, const struct jval *o, const char *name, enum jread_need need,
	      const char **s, size_t *len)
{
	const struct jval *v = jread_member(o, name);
	size_t n = jval_len(v);
	if (!v && need == JREAD_REQ)
		return jread_fail(c, ODX_EINVAL, "%s is missing", name);
	if (v && !jval_is_string(v))
		return jread_fail(c, ODX_EINVAL, "%s must be a string", name);
	if (n > SCAN_MAX_STR)
		return jread_fail(c, ODX_ETOOBIG, "%s is longer than %d bytes", name, SCAN_MAX_STR);
	if (need == JREAD_REQ && n == 0)
		return jread_fail(c, ODX_EINVAL, "%s must not be empty", name);
	*s = jval_str(v);
	*len = n;
	return 0;
}

int jread_str(struct jread *c, const struct jval *o, const char *name, enum jread_need need,
	      const char **out)
{
	const char *s, *copy = NULL;
	size_t n;
	int rc = jread_raw(c, o, name, need, &s, &n);
	if (rc < 0)
		return rc;
	if (n > 0 && !(copy = scan_strndup(c->r, s, n)))
		return jread_oom(c);
	*out = copy;
	return 0;
}

int jread_strs(struct jread *c, const struct jval *o, const struct jread_field *f, size_t n)
{
	int rc = 0;
	for (size_t k = 0; k < n && rc == 0; k++)
		rc = jread_str(c, o, f[k].name, f[k].need, f[k].out);
	return rc;
}

int jread_typed(struct jread *c, const struct jval *o, const char *name, enum jval_type t,
		const struct jval **out)
{
	const struct jval *v = jread_member(o, name);
	if (v && !jval_is(v, t))
		return jread_fail(c, ODX_EINVAL, "%s must be %s", name,
				  t == JVAL_ARRAY ? "an array" : "an object");
	*out = v;
	return 0;
}

int jread_num(struct jread *c, const struct jval *o, const char *name, double max,
	      const char *range, double *out)
{
	const struct jval *v = jread_member(o, name);
	if (!v) {
		*out = -1;
		return 0;
	}
	if (!jval_is_number(v))
		return jread_fail(c, ODX_EINVAL, "%s must be a number", name);
	double d = jval_num(v);
	if (!(d >= 0 && d <= max))
		return jread_fail(c, ODX_EINVAL, "%s %s", name, range);
	*out = d;
	return 0;
}

int jread_strv(struct jread *c, const struct jval *o, const char *name, const char **v, size_t *n,
	       size_t cap)
{
	const struct jval *a, *s;
	size_t i, k = *n;
	int rc = jread_typed(c, o, name, JVAL_ARRAY, &a);
	if (rc < 0 || !a)
		return rc;
	if (jval_len(a) > cap - k)
		return jread_fail(c, ODX_ETOOBIG, "%s has more than %zu items", name, cap);
	jval_array_foreach(a, i, s)
	{
		if (!jval_is_string(s))
			return jread_fail(c, ODX_EINVAL, "%s[%zu] must be a string", name, i);
		if (jval_len(s) > SCAN_MAX_STR)
			return jread_fail(c, ODX_ETOOBIG, "%s[%zu] is longer than %d bytes", name,
					  i, SCAN_MAX_STR);
		if (!(v[k++] = scan_strndup(c->r, jval_str(s), jval_len(s))))
			return jread_oom(c);
	}
	*n = k;
	return 0;
}

int jread_keep_strv(struct jread *c, const char **v, size_t n, const char ***out, size_t *nout)
{
	const char **a = NULL;
	if (n > 0) {
		a = scan_alloc(c->r, n * sizeof(*a));
		if (!a)
			return jread_oom(c);
		memcpy(a, v, n * sizeof(*a));
	}
	*out = a;
	*nout = n;
	return 0;
}

/* The source of f's severity: "<engine>:<src>" (src: len bytes), or "<engine>" when len is 0. */
static int severity_source(struct jread *c, struct scan_finding *f, enum scan_engine e,
			   const char *src, size_t len)
{
	const char *name = scan_engine_name(e);
	size_t nl = strlen(name);
	if (len == 0) {
		f->severity_source = f->engine_severity_source[e] = name;
		return 0;
	}
	char *both = scan_alloc(c->r, nl + 1 + len + 1); /* zeroed: the NUL is there */
	if (!both)
		return jread_oom(c);
	memcpy(both, name, nl);
	both[nl] = ':';
	memcpy(both + nl + 1, src, len);
	f->severity_source = both;
	f->engine_severity_source[e] = both + nl + 1;
	return 0;
}

int jread_severity(struct jread *c, const struct jval *o, const char *sev, const char *src,
		   enum scan_engine e, struct scan_finding *f)
{
	const char *s, *from;
	size_t n, len;
	int rc = jread_raw(c, o, sev, JREAD_REQ, &s, &n);
	if (rc == 0)
		rc = jread_raw(c, o, src, JREAD_OPT, &from, &len);
	if (rc < 0)
		return rc;
	int step = scan_severity_parse(s);
	if (step < 0 || (e == SCAN_ENGINE_TRIVY && step == SCAN_SEV_NEGLIGIBLE))
		return jread_fail(c, ODX_EINVAL, "%s is not one of %s's severities", sev,
				  e == SCAN_ENGINE_TRIVY ? "Trivy" : "Grype");
	f->severity = f->engine_severity[e] = (enum scan_severity)step;
	return severity_source(c, f, e, from, len);
}

int jread_report(const struct jval *root, enum scan_engine e, jread_step check, jread_step fill,
		 struct scan_report **out, char *msg)
{
	struct jread c = {.msg = msg};
	int rc = check(&c, root);
	if (rc < 0)
		return rc;
	c.r = scan_report_new();
	if (!c.r)
		return jread_oom(&c);
	rc = fill(&c, root);
	if (rc < 0)
		goto out;
	c.r->engines = SCAN_ENGINE_BIT(e);
	*out = c.r;
	c.r = NULL;
out:
	scan_report_free(c.r);
	return rc;
}

int jread_parse(const char *buf, size_t len, jread_from_json from_json, struct scan_report **out,
		char *msg)
{
	struct jdoc *doc;
	int rc = scan_json_load(buf, len, &doc, msg);
	if (rc < 0)
		return rc;
	rc = from_json(jdoc_root(doc), out, msg);
	jdoc_free(doc);
	return rc;
}
