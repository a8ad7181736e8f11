/*
 * jread.h — the field readers of the report parsers (trivy.c, grype.c): a
 * member of a core/jdoc.h object read with its type and bounds checked
 * (model.h: SCAN_MAX_STR, SCAN_MAX_LIST), copied into the report's arena,
 * or the report refused with a message that names the place and the field,
 * never a value.
 *
 * Names: a reader takes a label such as "Metadata.OS.Family" whose part
 * after the last dot is the key it reads ("Family"); the whole label goes
 * into messages. A JSON null reads as an absent member.
 *
 * Messages start with the place the parser keeps in struct jread:
 * "Results[3].Vulnerabilities[7]: PkgName is missing" (list, i, sub, si),
 * "matches[2]: ..." (list and i; sub NULL), or no prefix (list NULL).
 *
 * Also here, as the rest the two parsers share: the severity of a finding
 * with its source, and the frame of a parse (check the kind of report, fill
 * a new one, hand it out only when all of it was read).
 */
#ifndef ODX_SCAN_JREAD_H
#define ODX_SCAN_JREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "core/jdoc.h"
#include "scan/model.h"

/* What a parser reads through, and where it is in the report. */
struct jread {
	struct scan_report *r; /* strings are copied into its arena */
	char *msg;	       /* SCAN_MSG_LEN bytes: why the report was refused */
	const char *list;      /* the top-level list ("Results", "matches") it is in, or NULL */
	size_t i;	       /* the item of list */
	const char *sub;       /* a list inside that item ("Vulnerabilities"), or NULL */
	size_t si;	       /* the item of sub */
};

enum jread_need { JREAD_OPT = 0, JREAD_REQ = 1 };

/* One string member of a table read by jread_strs. */
struct jread_field {
	const char *name;
	enum jread_need need;
	const char **out;
};

/* Writes "<place>: <fmt ...>" into c->msg; returns rc (a negative ODX_E* code). */
__attribute__((format(printf, 3, 4))) int jread_fail(struct jread *c, int rc, const char *fmt, ...);
/* jread_fail(c, ODX_ENOMEM, "out of memory"). */
int jread_oom(struct jread *c);

/*
 * The member of o the label name ends with; NULL when absent or null (or o
 * is no object). Inline: every reader calls it, and an exported function
 * built with -fPIC is not inlined even within its own file.
 */
static inline const struct jval *jread_member(const struct jval *o, const char *name)
{
	const char *dot = strrchr(name, '.');
	const struct jval *v = jval_get(o, dot ? dot + 1 : name);
	return jval_is_null(v) ? NULL : v;
}

/* True for a CVE id ("CVE-..."): the id a finding is named by when it has one. */
static inline bool jread_is_cve(const char *s)
{
	return strncmp(s, "CVE-", 4) == 0;
}

/*
 * A string member borrowed from the tree: *s and *len, or NULL and 0 when
 * absent. Refused (ODX_EINVAL) when not a string or, with JREAD_REQ, absent
 * or empty; ODX_ETOOBIG over SCAN_MAX_STR bytes.
 */
int jread_raw(struct jread *c, const struct jval *o, const char *name, enum jread_need need,
	      const char **s, size_t *len);
/* jread_raw copied into the arena: *out is NULL when the member is absent or empty. */
int jread_str(struct jread *c, const struct jval *o, const char *name, enum jread_need need,
	      const char **out);
/* jread_str of each field of f[0..n), in order; stops at the first refusal. */
int jread_strs(struct jread *c, const struct jval *o, const struct jread_field *f, size_t n);
/* A member of type t (JVAL_ARRAY or JVAL_OBJECT) in *out, NULL when absent; else refused. */
int jread_typed(struct jread *c, const struct jval *o, const char *name, enum jval_type t,
		const struct jval **out);
/*
 * A number member in [0, max] in *out, -1 when absent. Refused when not a
 * number, or when out of range with the message "<name> <range>" (each
 * engine's parser words that its own way).
 */
int jread_num(struct jread *c, const struct jval *o, const char *name, double max,
	      const char *range, double *out);
/*
 * Appends the strings of array member name to v[*n..cap), copied into the
 * arena; nothing when absent. Refused when not an array of strings, over
 * cap items in all or over SCAN_MAX_STR bytes in one.
 */
int jread_strv(struct jread *c, const struct jval *o, const char *name, const char **v, size_t *n,
	       size_t cap);
/* v[0..n) copied into an arena array: *out (NULL when n is 0) and *nout. */
int jread_keep_strv(struct jread *c, const char **v, size_t n, const char ***out, size_t *nout);

/* ---- the rest the two parsers share ---- */

/*
 * f's severity as engine e saw it, from the string members sev (required)
 * and src (optional) of o: severity and engine_severity[e] the step sev
 * names (refused when it names none, or Negligible for Trivy, which has no
 * such step); severity_source "<engine>:<src>" and engine_severity_source[e]
 * its <src> part, or both "<engine>" when src is absent or empty.
 */
int jread_severity(struct jread *c, const struct jval *o, const char *sev, const char *src,
		   enum scan_engine e, struct scan_finding *f);

/* A step of a parser on the report's root: 0, or a refusal in c->msg. */
typedef int (*jread_step)(struct jread *c, const struct jval *root);

/*
 * The frame of engine e's parser: check refuses what is not e's report, then
 * fill reads the rest into a new report (c->r). 0 with *out that report
 * (engines: e; scan_report_free), or a step's refusal or ODX_ENOMEM with
 * msg (SCAN_MSG_LEN bytes) written. *out is written only on success.
 */
int jread_report(const struct jval *root, enum scan_engine e, jread_step check, jread_step fill,
		 struct scan_report **out, char *msg);

/* trivy_from_json, grype_from_json. */
typedef int (*jread_from_json)(const struct jval *root, struct scan_report **out, char *msg);

/* scan_json_load of buf[0..len), then from_json on its root; frees the tree before returning. */
int jread_parse(const char *buf, size_t len, jread_from_json from_json, struct scan_report **out,
		char *msg);

#endif
