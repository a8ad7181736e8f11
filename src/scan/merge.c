/*
 * merge.c — package identity and the merge of Trivy and Grype reports.
 *
 * A merged finding is one (vulnerability, package): the same vulnerability
 * class on the same package key, whatever the engine and wherever the
 * package sits; its paths are the union (minimatch 3.1.2 in 9 node_modules
 * folders is one finding with 9 paths). Recommendations and gating act on
 * package@version, and per-location rows would count one upgrade 9 times.
 *
 * Package key (scan_package_key): the PURL without qualifiers and subpath,
 * percent-decoded, "type/namespace/name@version", npm and pypi names in lower
 * case, deb and rpm versions always "epoch:rest" — Trivy moves the epoch to an
 * epoch= qualifier, Grype keeps it in the version ("1%3A4.13..."), and a
 * missing epoch is 0. Trivy's "groupId:artifactId" and Grype's "artifactId"
 * agree through their common pkg:maven/group/artifact PURL. Without a PURL:
 * normalised type, name and version ("maven/g/a@v" from "g:a").
 *
 * Vulnerability class: union-find over ids. Each finding's join ids are tied
 * together: its CVE and its other non-advisory ids (GHSA-, NSWG-, GO-, ...).
 * Distro advisory ids (DSA-, DLA-, RHSA-, ELSA-, ALAS-, USN-, ...) cover many
 * CVEs: they stay aliases but join only findings that have no other id, else
 * DSA-6113-1 would glue 8 libssl3 CVEs into one finding. A finding naming
 * several CVEs (Grype's ELSA-2022-9221 match, related to three CVEs) is split
 * into one piece per CVE, each joined by its CVE alone, keeping the other ids
 * as aliases.
 *
 * One engine's duplicates — Grype matching one package by GHSA and again by
 * an NVD CPE (anchore-grype/ghsa-test.json) — land in the same group as the
 * cross-engine matches: grouping is done once, which is the same as
 * collapsing them first. engine_duplicates_collapsed counts the input
 * findings that repeat, for their engine, a place (path) of the group.
 *
 * The merged finding: id = a CVE when the group has one (the first piece's,
 * else the smallest), aliases, paths and urls = sorted unions; severity = the
 * highest, with the source of the first piece (input order) that had it;
 * per engine the highest severity and the most telling fix state (fixed >
 * wont_fix > affected > end_of_life > unknown); cvss = union by (source,
 * version, vector); fixed_versions = union by version equality
 * (scan_version_cmp), ascending; epss = max; kev = any; cpe_match = all;
 * engines = or; package, layer, title and source package from the first piece
 * that has them. Output order: severity descending, id, package key.
 * Everything is copied into the new report's arena, each distinct string
 * once (interned).
 *
 * Cost: O(N log N) sorts of pieces and ids; package keys are built in a
 * scratch arena and only each group's key is copied. 50,000 + 50,000
 * findings merge in about 0.2 s here.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "scan/merge.h"
#include "scan/version.h"

/* ---------------------------------------------------------------- ids */

static bool id_is_cve(const char *s)
{
	return s && strncasecmp(s, "CVE-", 4) == 0;
}

/* Ids that name a distro's fix bundle (or wrap a CVE, OSV's DEBIAN-CVE-...), not one vulnerability.
 */
static bool id_is_advisory(const char *s)
{
	static const char *const prefixes[] = {
	    "DSA-",   "DLA-",	     "DTSA-",	    "RHSA-",	   "RHBA-",	   "RHEA-",
	    "ELSA-",  "ELBA-",	     "ALAS",	    "ALSA-",	   "ALBA-",	   "RLSA-",
	    "USN-",   "CESA-",	     "GLSA-",	    "SUSE-SU-",	   "openSUSE-SU-", "FEDORA-",
	    "MGASA-", "DEBIAN-CVE-", "UBUNTU-CVE-", "ALPINE-CVE-", "PHSA-",	   "CGA-",
	};
	char c0 = s && *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : (s ? *s : 0);
	for (size_t i = 0; c0 && i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if ((prefixes[i][0] & ~0x20) == c0 &&
		    strncasecmp(s, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* ------------------------------------------------------ growable arrays */

/* Makes room for one more element in *v (n used, *cap allocated, size each). */
static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap : 16;
	while (ncap <= n) {
		if (ncap > SIZE_MAX / 2 / size)
			return ODX_ENOMEM;
		ncap *= 2;
	}
	void *p = realloc(*v, ncap * size);
	if (!p)
		return ODX_ENOMEM;
	*v = p;
	*cap = ncap;
	return 0;
}

struct strv {
	const char **v;
	size_t n, cap;
};

static int strv_push(struct strv *s, const char *str)
{
	if (!str)
		return 0;
	int rc = grow((void **)&s->v, &s->cap, s->n, sizeof(*s->v));
	if (rc == 0)
		s->v[s->n++] = str;
	return rc;
}

/* f's ids: its aliases, and its id when the parser left it out of them. */
static int finding_ids(const struct scan_finding *f, struct strv *out)
{
	out->n = 0;
	bool listed = false;
	for (size_t i = 0; i < f->naliases; i++) {
		if (strv_push(out, f->aliases[i]) < 0)
			return ODX_ENOMEM;
		listed |= f->id && f->aliases[i] && strcmp(f->id, f->aliases[i]) == 0;
	}
	if (!listed && f->id && *f->id && strv_push(out, f->id) < 0)
		return ODX_ENOMEM;
	return 0;
}

/* ------------------------------------------------------ package keys */

struct sbuf {
	char *p;
	size_t n, cap;
	bool overflow;
};

static void put(struct sbuf *b, const char *s, size_t n)
{
	if (n > b->cap - b->n) {
		b->overflow = true;
		return;
	}
	if (n)
		memcpy(b->p + b->n, s, n);
	b->n += n;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum fold { FOLD_NONE, FOLD_LOWER, FOLD_PYPI };

/* Percent-decodes s[0..n) ("%00" and broken escapes stay as they are), folding case for npm/pypi.
 */
static void put_decoded(struct sbuf *b, const char *s, size_t n, enum fold fold)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int hi = -1, lo = -1;
		if (c == '%' && i + 2 < n) {
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
		}
		if (hi >= 0 && lo >= 0 && (hi | lo)) {
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (fold != FOLD_NONE && c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (fold == FOLD_PYPI && (c == '_' || c == '.'))
			c = '-'; /* PEP 503 name normalisation */
		put(b, &c, 1);
	}
}

static size_t digits(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	return i;
}

/* Writes "epoch:rest": v's own epoch, else the qualifier's (q), else 0; leading zeros dropped. */
static void put_evr(struct sbuf *b, const char *v, size_t n, const char *q, size_t qn)
{
	size_t e = digits(v, n);
	const char *ep = "0";
	size_t en = 1;
	if (e > 0 && e < n && v[e] == ':') {
		ep = v, en = e;
		v += e + 1, n -= e + 1;
	} else if (qn > 0 && digits(q, qn) == qn) {
		ep = q, en = qn;
	}
	while (en > 1 && *ep == '0')
		ep++, en--;
	put(b, ep, en);
	put(b, ":", 1);
	put(b, v, n);
}

static bool span_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

static bool in_list(const char *s, size_t n, const char *const *list)
{
	for (; *list; list++)
		if (span_is(s, n, *list))
			return true;
	return false;
}

/* The PURL type for an engine's package type ("node-pkg" -> "npm", "jar" -> "maven", "ubuntu" ->
 * "deb"). */
static const char *purl_type(const char *type)
{
	static const struct {
		const char *purl;
		const char *const names[18];
	} map[] = {
	    {"deb", {"deb", "debian", "ubuntu", "dpkg", NULL}},
	    {"rpm",
	     {"rpm", "redhat", "rhel", "centos", "rocky", "alma", "almalinux", "oracle", "amazon",
	      "fedora", "photon", "suse", "opensuse", "sles", "cbl-mariner", "azurelinux", NULL}},
	    {"apk", {"apk", "alpine", "wolfi", "chainguard", NULL}},
	    {"npm", {"npm", "node-pkg", "nodejs", "yarn", "pnpm", NULL}},
	    {"maven", {"maven", "java-archive", "jar", "pom", "gradle", "war", "ear", NULL}},
	    {"golang", {"golang", "go", "go-module", "gomod", "gobinary", NULL}},
	    {"pypi",
	     {"pypi", "python", "python-pkg", "pip", "pipenv", "poetry", "wheel", "egg", NULL}},
	    {"gem", {"gem", "gemspec", "bundler", NULL}},
	};
	for (size_t i = 0; type && i < sizeof(map) / sizeof(map[0]); i++)
		if (in_list(type, strlen(type), map[i].names))
			return map[i].purl;
	return "generic";
}

static enum fold fold_of(const char *type, size_t n)
{
	if (span_is(type, n, "npm"))
		return FOLD_LOWER;
	return span_is(type, n, "pypi") ? FOLD_PYPI : FOLD_NONE;
}

static void put_version(struct sbuf *b, const char *type, size_t tn, const char *v, size_t n,
			const char *q, size_t qn)
{
	if (span_is(type, tn, "deb") || span_is(type, tn, "rpm"))
		put_evr(b, v, n, q, qn);
	else
		put(b, v, n);
}

/* The epoch= qualifier's value (raw), or an empty span. */
static void qualifier_epoch(const char *q, size_t n, const char **val, size_t *vn)
{
	*val = q, *vn = 0;
	size_t i = 0;
	while (i < n) {
		size_t e = i;
		while (e < n && q[e] != '&')
			e++;
		if (e - i > 6 && strncasecmp(q + i, "epoch=", 6) == 0) {
			*val = q + i + 6, *vn = e - i - 6;
			return;
		}
		i = e + 1;
	}
}

static bool is_os_type(const char *type, size_t n)
{
	return span_is(type, n, "deb") || span_is(type, n, "rpm") || span_is(type, n, "apk");
}

/*
 * A distro namespace in lower case, in Trivy's spelling (the OS family):
 * Grype writes the os-release ID (pkg:rpm/rhel/nss in keycloak-test.json
 * where Trivy writes pkg:rpm/redhat/...). Other namespaces: decoded, folded
 * like names for npm.
 */
static void put_namespace(struct sbuf *b, const char *type, size_t tn, const char *ns, size_t n,
			  enum fold fold)
{
	static const struct {
		const char *id, *family;
	} os_ids[] = {{"rhel", "redhat"},
		      {"ol", "oracle"},
		      {"oraclelinux", "oracle"},
		      {"almalinux", "alma"},
		      {"amzn", "amazon"}};
	if (!is_os_type(type, tn)) {
		put_decoded(b, ns, n, fold == FOLD_PYPI ? FOLD_NONE : fold);
		return;
	}
	for (size_t i = 0; i < sizeof(os_ids) / sizeof(os_ids[0]); i++)
		if (span_is(ns, n, os_ids[i].id)) {
			put(b, os_ids[i].family, strlen(os_ids[i].family));
			return;
		}
	put_decoded(b, ns, n, FOLD_LOWER);
}

/* The parts of "pkg:type/namespace/name@version?qualifiers#subpath", still percent-encoded. */
struct purl {
	const char *type, *ns, *name, *version, *epoch; /* epoch: the epoch= qualifier */
	size_t type_n, ns_n, name_n, version_n, epoch_n;
	bool has_version;
};

static bool purl_split(const char *purl, struct purl *u)
{
	if (strncasecmp(purl, "pkg:", 4) != 0)
		return false;
	const char *s = purl + 4;
	while (*s == '/')
		s++;
	size_t end = strcspn(s, "#"), q = strcspn(s, "?"), slash = strcspn(s, "/");
	q = q < end ? q : end;
	if (slash >= q)
		return false; /* no name */
	size_t last = q;      /* the name starts after the last '/' (s[slash] is one) */
	while (s[last - 1] != '/')
		last--;
	const char *at = memchr(s + last, '@', q - last);
	size_t name_end = at ? (size_t)(at - s) : q;
	if (name_end == last)
		return false;
	*u = (struct purl){.type = s,
			   .type_n = slash,
			   .name = s + last,
			   .name_n = name_end - last,
			   .has_version = at != NULL};
	u->ns = s + slash + 1;
	u->ns_n = last > slash + 1 ? last - slash - 2 : 0; /* between the first and the last '/' */
	if (at)
		u->version = at + 1, u->version_n = q - name_end - 1;
	if (q < end)
		qualifier_epoch(s + q + 1, end - q - 1, &u->epoch, &u->epoch_n);
	return true;
}

/* Key from a PURL; tmp holds the decoded epoch qualifier and version. */
static void key_from_purl(struct sbuf *b, struct sbuf *tmp, const struct purl *u,
			  const char *fallback_version)
{
	tmp->n = 0;
	put_decoded(tmp, u->epoch, u->epoch_n, FOLD_NONE);
	size_t vstart = tmp->n;
	if (u->has_version)
		put_decoded(tmp, u->version, u->version_n, FOLD_NONE);
	else if (fallback_version)
		put(tmp, fallback_version, strlen(fallback_version));

	put_decoded(b, u->type, u->type_n, FOLD_LOWER);
	const char *type = b->p;
	size_t tn = b->n;
	enum fold fold = fold_of(type, tn);
	put(b, "/", 1);
	if (u->ns_n) {
		put_namespace(b, type, tn, u->ns, u->ns_n, fold);
		put(b, "/", 1);
	}
	put_decoded(b, u->name, u->name_n, fold);
	put(b, "@", 1);
	put_version(b, type, tn, tmp->p + vstart, tmp->n - vstart, tmp->p, vstart);
}

/* Key from the engine's type, name and version. */
static void key_from_fields(struct sbuf *b, const struct scan_package *p)
{
	const char *type = purl_type(p->type), *name = p->name ? p->name : "";
	const char *v = p->version ? p->version : "";
	size_t tn = strlen(type);
	put(b, type, tn);
	put(b, "/", 1);
	size_t mark = b->n;
	put_decoded(b, name, strlen(name), fold_of(type, tn));
	if (span_is(type, tn, "maven")) /* "groupId:artifactId" -> "groupId/artifactId" */
		for (size_t i = mark; i < b->n; i++)
			if (b->p[i] == ':')
				b->p[i] = '/';
	put(b, "@", 1);
	put_version(b, type, tn, v, strlen(v), NULL, 0);
}

const char *scan_package_key(struct scan_report *r, const struct scan_package *p)
{
	if (!r || !p)
		return NULL;
	size_t lp = p->purl ? strlen(p->purl) : 0, ln = p->name ? strlen(p->name) : 0;
	size_t lv = p->version ? strlen(p->version) : 0;
	if (lp > SIZE_MAX / 16 || ln > SIZE_MAX / 16 || lv > SIZE_MAX / 16)
		return NULL;
	/* The key never exceeds purl (or name) + version + an epoch from the purl + type and
	 * separators. */
	size_t cap = 2 * lp + ln + lv + 64;
	char *mem = malloc(2 * cap);
	if (!mem)
		return NULL;
	struct sbuf b = {mem, 0, cap, false}, tmp = {mem + cap, 0, cap, false};
	struct purl u;
	if (p->purl && purl_split(p->purl, &u))
		key_from_purl(&b, &tmp, &u, p->version);
	else
		key_from_fields(&b, p);
	const char *key = b.overflow || tmp.overflow ? NULL : scan_strndup(r, b.p, b.n);
	free(mem);
	return key;
}

/* ------------------------------------------------------------- merge */

/* qsort, which must not see a NULL array even when empty. */
static void sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

/* One finding, or one CVE of a finding that names several. */
struct piece {
	const struct scan_finding *f;
	const char *cve; /* a split piece's one CVE; NULL: all of f's ids */
	const char *key; /* package key, in the scratch report */
	size_t order;	 /* input position: the first piece wins ties */
	size_t node;	 /* union-find node, then the class */
	unsigned engines;
};

struct ref {
	const char *id;
	size_t piece;
	size_t num; /* number of the distinct id */
};

struct merge {
	struct scan_report *out;
	struct scan_report *scratch; /* package keys of every piece */
	struct islot {
		uint64_t h;
		const char *s;
	} * itab; /* interned output strings, open addressing */
	size_t icap, n_interned;
	struct piece *pieces;
	size_t np, cap;
	struct ref *refs;
	size_t nrefs, refcap;
	struct strv ids, sv; /* scratch lists */
	void *tmp;	     /* scratch array for the cvss, fixed-version and place sorts */
	size_t tmpcap;	     /* bytes */
};

static void merge_done(struct merge *m)
{
	scan_report_free(m->scratch);
	free(m->pieces);
	free(m->refs);
	free(m->ids.v);
	free(m->sv.v);
	free(m->tmp);
	free(m->itab);
}

static enum scan_severity sev_of(enum scan_severity s)
{
	return s < SCAN_SEV_COUNT ? s : SCAN_SEV_UNKNOWN;
}

static int add_piece(struct merge *m, const struct scan_finding *f, const char *cve,
		     const char *key, unsigned engines)
{
	if (m->np >= (size_t)SCAN_MAX_FINDINGS * SCAN_MERGE_MAX_INPUTS)
		return ODX_ETOOBIG;
	int rc = grow((void **)&m->pieces, &m->cap, m->np, sizeof(*m->pieces));
	if (rc == 0)
		m->pieces[m->np] = (struct piece){f, cve, key, m->np, 0, engines}, m->np++;
	return rc;
}

/* One piece per finding, or per CVE when a finding names several. */
static int make_pieces(struct merge *m, struct scan_report *const *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < in[i]->nfindings; j++) {
			const struct scan_finding *f = &in[i]->findings[j];
			unsigned engines = f->engines ? f->engines : in[i]->engines;
			const char *key = scan_package_key(m->scratch, &f->pkg);
			if (!key || finding_ids(f, &m->ids) < 0)
				return ODX_ENOMEM;
			size_t ncve = 0;
			for (size_t k = 0; k < m->ids.n; k++)
				ncve += id_is_cve(m->ids.v[k]);
			int rc = ncve > 1 ? 0 : add_piece(m, f, NULL, key, engines);
			for (size_t k = 0; rc == 0 && ncve > 1 && k < m->ids.n; k++)
				if (id_is_cve(m->ids.v[k]))
					rc = add_piece(m, f, m->ids.v[k], key, engines);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static int add_ref(struct merge *m, const char *id, size_t piece)
{
	if (!id || !*id)
		return 0;
	int rc = grow((void **)&m->refs, &m->refcap, m->nrefs, sizeof(*m->refs));
	if (rc == 0)
		m->refs[m->nrefs++] = (struct ref){id, piece, 0};
	return rc;
}

/*
 * The ids that join piece p to others: a split piece's CVE; else the CVE and
 * the non-advisory ids; advisory ids only when there is nothing else.
 */
static int piece_refs(struct merge *m, size_t p)
{
	const struct piece *pc = &m->pieces[p];
	if (pc->cve)
		return add_ref(m, pc->cve, p);
	if (finding_ids(pc->f, &m->ids) < 0)
		return ODX_ENOMEM;
	size_t before = m->nrefs;
	for (size_t k = 0; k < m->ids.n; k++)
		if (!id_is_advisory(m->ids.v[k]) && add_ref(m, m->ids.v[k], p) < 0)
			return ODX_ENOMEM;
	for (size_t k = 0; m->nrefs == before && k < m->ids.n; k++)
		if (add_ref(m, m->ids.v[k], p) < 0)
			return ODX_ENOMEM;
	return 0;
}

static int cmp_ref(const void *a, const void *b)
{
	return strcmp(((const struct ref *)a)->id, ((const struct ref *)b)->id);
}

static size_t uf_find(size_t *parent, size_t x)
{
	while (parent[x] != x) {
		parent[x] = parent[parent[x]]; /* path halving */
		x = parent[x];
	}
	return x;
}

static void uf_union(size_t *parent, size_t a, size_t b)
{
	a = uf_find(parent, a), b = uf_find(parent, b);
	if (a != b)
		parent[a > b ? a : b] = a < b ? a : b;
}

/* Sets each piece's node to its vulnerability class (union-find over join ids). */
static int classify(struct merge *m)
{
	for (size_t p = 0; p < m->np; p++)
		if (piece_refs(m, p) < 0)
			return ODX_ENOMEM;
	sort(m->refs, m->nrefs, sizeof(*m->refs), cmp_ref);
	size_t d = 0;
	for (size_t i = 0; i < m->nrefs; i++) {
		if (i > 0 && strcmp(m->refs[i].id, m->refs[i - 1].id) != 0)
			d++;
		m->refs[i].num = d;
	}
	size_t nodes = m->np + d + 1; /* pieces first, then the distinct ids */
	if (nodes > SIZE_MAX / sizeof(size_t))
		return ODX_ENOMEM;
	size_t *parent = malloc(nodes * sizeof(*parent));
	if (!parent)
		return ODX_ENOMEM;
	for (size_t i = 0; i < nodes; i++)
		parent[i] = i;
	for (size_t i = 0; i < m->nrefs; i++)
		uf_union(parent, m->refs[i].piece, m->np + m->refs[i].num);
	for (size_t p = 0; p < m->np; p++)
		m->pieces[p].node = uf_find(parent, p);
	free(parent);
	return 0;
}

static int cmp_group(const struct piece *x, const struct piece *y)
{
	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* By group (class, key), then input order. */
static int cmp_piece(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;
	int c = cmp_group(x, y);
	return c ? c : (x->order < y->order ? -1 : (x->order > y->order));
}

/* ---- building one merged finding from its pieces g[0..k) ---- */

/* FNV-1a of "/" + s when slash, else of s, with a final mix. */
static uint64_t str_hash(const char *s, bool slash)
{
	uint64_t h = 1469598103934665603u;
	if (slash)
		h = (h ^ '/') * 1099511628211u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	h ^= h >> 33; /* FNV's low bits, which pick the slot, mix poorly: finish like murmur3 */
	h *= 0xff51afd7ed558ccdu;
	return h ^ (h >> 33);
}

static bool str_is(const char *e, const char *s, bool slash)
{
	return slash ? e[0] == '/' && strcmp(e + 1, s) == 0 : strcmp(e, s) == 0;
}

static const char *str_copy(struct scan_report *r, const char *s, bool slash)
{
	size_t len = strlen(s);
	char *p = len < SIZE_MAX - 2 ? scan_alloc(r, len + 1 + slash) : NULL;
	if (p) {
		p[0] = '/';
		memcpy(p + slash, s, len + 1);
	}
	return p;
}

static int intern_grow(struct merge *m)
{
	size_t cap = m->icap ? 2 * m->icap : 1024;
	struct islot *t = cap <= SIZE_MAX / sizeof(*t) ? calloc(cap, sizeof(*t)) : NULL;
	if (!t)
		return ODX_ENOMEM;
	for (size_t i = 0; i < m->icap; i++) {
		if (!m->itab[i].s)
			continue;
		size_t j = m->itab[i].h & (cap - 1);
		for (int probe = 0; t[j].s && probe < 32; probe++)
			j = (j + 1) & (cap - 1);
		if (!t[j].s) /* else forgotten: later copies of it are not shared */
			t[j] = m->itab[i];
	}
	free(m->itab);
	m->itab = t;
	m->icap = cap;
	return 0;
}

/*
 * One copy of each distinct string in the output ("/" + s when slash):
 * sources, types, layers, titles, urls and paths repeat across findings.
 * The probe is bounded, so colliding strings cost a copy, never a long scan.
 */
static const char *intern(struct merge *m, const char *s, bool slash)
{
	if (m->n_interned >= m->icap / 2 && intern_grow(m) < 0)
		return str_copy(m->out, s, slash);
	uint64_t h = str_hash(s, slash);
	size_t mask = m->icap - 1, j = h & mask;
	for (int probe = 0; probe < 32; probe++, j = (j + 1) & mask) {
		struct islot *e = &m->itab[j];
		if (!e->s) {
			e->s = str_copy(m->out, s, slash);
			e->h = h;
			m->n_interned += e->s != NULL;
			return e->s;
		}
		if (e->h == h && str_is(e->s, s, slash))
			return e->s;
	}
	return str_copy(m->out, s, slash);
}

/* *dst = s in the output report (NULL stays NULL). */
static int dup(struct merge *m, const char *s, const char **dst)
{
	*dst = s ? intern(m, s, false) : NULL;
	return s && !*dst ? ODX_ENOMEM : 0;
}

/* Sorted unique copy of v[0..n) into the output. */
static int strv_out(struct merge *m, struct strv *v, const char ***dst, size_t *ndst)
{
	struct scan_report *r = m->out;
	size_t n = scan_strv_sort_unique(v->v, v->n);
	const char **a = NULL;
	if (n && !(a = n <= SIZE_MAX / sizeof(*a) ? scan_alloc(r, n * sizeof(*a)) : NULL))
		return ODX_ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (dup(m, v->v[i], &a[i]) < 0)
			return ODX_ENOMEM;
	*dst = a;
	*ndst = n;
	return 0;
}

/* Room for n elements of size bytes in m->tmp, kept across calls (grown by doubling). */
static int tmp_room(struct merge *m, size_t n, size_t size)
{
	if (n > SIZE_MAX / 2 / size)
		return ODX_ENOMEM;
	if (n * size <= m->tmpcap)
		return 0;
	void *p = realloc(m->tmp, 2 * n * size);
	if (!p)
		return ODX_ENOMEM;
	m->tmp = p;
	m->tmpcap = 2 * n * size;
	return 0;
}

static int fix_rank(enum scan_fix_state s)
{
	static const int rank[] = {
	    [SCAN_FIX_NONE] = 0,     [SCAN_FIX_UNKNOWN] = 1,  [SCAN_FIX_EOL] = 2,
	    [SCAN_FIX_AFFECTED] = 3, [SCAN_FIX_WONT_FIX] = 4, [SCAN_FIX_FIXED] = 5,
	};
	return (size_t)s < sizeof(rank) / sizeof(rank[0]) ? rank[s] : 0;
}

/* Severity, per-engine fields and scalars of piece p folded into o (strings still the input's). */
static void fold(struct scan_finding *o, const struct piece *p, bool first)
{
	const struct scan_finding *f = p->f;
	if (first || sev_of(f->severity) > o->severity) {
		o->severity = sev_of(f->severity);
		o->severity_source = f->severity_source;
	}
	for (int e = 0; e < SCAN_ENGINE_COUNT; e++) {
		if (!(p->engines & SCAN_ENGINE_BIT(e)))
			continue;
		if (!(o->engines & SCAN_ENGINE_BIT(e)) ||
		    sev_of(f->engine_severity[e]) > o->engine_severity[e]) {
			o->engine_severity[e] = sev_of(f->engine_severity[e]);
			o->engine_severity_source[e] = f->engine_severity_source[e];
		}
		if (fix_rank(f->fix_state[e]) > fix_rank(o->fix_state[e]))
			o->fix_state[e] = f->fix_state[e];
	}
	o->engines |= p->engines;
	o->epss = f->epss > o->epss ? f->epss : o->epss;
	o->epss_percentile =
	    f->epss_percentile > o->epss_percentile ? f->epss_percentile : o->epss_percentile;
	o->kev |= f->kev;
	o->cpe_match &= f->cpe_match;
	o->layer = o->layer ? o->layer : f->layer;
	o->title = o->title ? o->title : f->title;
	o->pkg.source = o->pkg.source ? o->pkg.source : f->pkg.source;
}

/* Aliases (a split piece keeps its CVE and the non-CVE ids) and the id. */
static int merge_ids(struct merge *m, const struct piece *g, size_t k, struct scan_finding *o)
{
	const char *id = NULL;
	m->sv.n = 0;
	for (size_t i = 0; i < k; i++) {
		if (finding_ids(g[i].f, &m->ids) < 0)
			return ODX_ENOMEM;
		for (size_t j = 0; j < m->ids.n; j++)
			if ((!g[i].cve || !id_is_cve(m->ids.v[j])) &&
			    strv_push(&m->sv, m->ids.v[j]) < 0)
				return ODX_ENOMEM;
		if (g[i].cve && strv_push(&m->sv, g[i].cve) < 0)
			return ODX_ENOMEM;
		if (!id)
			id = g[i].cve ? g[i].cve : (id_is_cve(g[i].f->id) ? g[i].f->id : NULL);
	}
	if (strv_out(m, &m->sv, &o->aliases, &o->naliases) < 0)
		return ODX_ENOMEM;
	for (size_t i = 0; !id && i < o->naliases; i++)
		id = id_is_cve(o->aliases[i]) ? o->aliases[i] : NULL;
	if (!id)
		id = g[0].f->id ? g[0].f->id : (o->naliases ? o->aliases[0] : "");
	return dup(m, id, &o->id);
}

/* A path without its leading slashes: Trivy writes "juice-shop/node_modules/...", Grype
 * "/juice-shop/...". */
static const char *path_rel(const char *p)
{
	while (p && *p == '/')
		p++;
	return p;
}

/* The union of the pieces' urls. */
static int merge_urls(struct merge *m, const struct piece *g, size_t k, struct scan_finding *o)
{
	m->sv.n = 0;
	for (size_t i = 0; i < k; i++)
		for (size_t j = 0; j < g[i].f->nurls; j++)
			if (strv_push(&m->sv, g[i].f->urls[j]) < 0)
				return ODX_ENOMEM;
	return strv_out(m, &m->sv, &o->urls, &o->nurls);
}

/* The union of the pieces' paths, each written "/" + path_rel(). */
static int merge_paths(struct merge *m, const struct piece *g, size_t k, struct scan_finding *o)
{
	m->sv.n = 0;
	for (size_t i = 0; i < k; i++)
		for (size_t j = 0; j < g[i].f->npaths; j++) {
			const char *p = path_rel(g[i].f->paths[j]);
			if (p && *p && strv_push(&m->sv, p) < 0)
				return ODX_ENOMEM;
		}
	size_t n = scan_strv_sort_unique(m->sv.v, m->sv.n);
	if (n &&
	    !(o->paths =
		  n <= SIZE_MAX / sizeof(char *) ? scan_alloc(m->out, n * sizeof(char *)) : NULL))
		return ODX_ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(o->paths[i] = intern(m, m->sv.v[i], true)))
			return ODX_ENOMEM;
	o->npaths = n;
	return 0;
}

struct cvss_ref {
	const struct scan_cvss *c;
	size_t pos;
};

static int nstrcmp(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

static int cvss_key_cmp(const struct scan_cvss *a, const struct scan_cvss *b)
{
	int c = nstrcmp(a->source, b->source);
	if (!c)
		c = nstrcmp(a->version, b->version);
	return c ? c : nstrcmp(a->vector, b->vector);
}

static int cmp_cvss_ref(const void *a, const void *b)
{
	const struct cvss_ref *x = a, *y = b;
	int c = cvss_key_cmp(x->c, y->c);
	return c ? c : (x->pos < y->pos ? -1 : (x->pos > y->pos));
}

/* CVSS entries, one per (source, version, vector): the first piece's score. */
static int merge_cvss(struct merge *m, const struct piece *g, size_t k, struct scan_finding *o)
{
	size_t n = 0;
	for (size_t i = 0; i < k; i++)
		for (size_t j = 0; j < g[i].f->ncvss; j++, n++) {
			if (tmp_room(m, n + 1, sizeof(struct cvss_ref)) < 0)
				return ODX_ENOMEM;
			((struct cvss_ref *)m->tmp)[n] = (struct cvss_ref){&g[i].f->cvss[j], n};
		}
	struct cvss_ref *v = m->tmp;
	sort(v, n, sizeof(*v), cmp_cvss_ref);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || cvss_key_cmp(v[i].c, v[u - 1].c) != 0)
			v[u++] = v[i];
	if (u &&
	    !(o->cvss = u <= SIZE_MAX / sizeof(*o->cvss) ? scan_alloc(m->out, u * sizeof(*o->cvss))
							 : NULL))
		return ODX_ENOMEM;
	for (size_t i = 0; i < u; i++) {
		struct scan_cvss *c = &o->cvss[i];
		c->score = v[i].c->score;
		if (dup(m, v[i].c->source, &c->source) < 0 ||
		    dup(m, v[i].c->version, &c->version) < 0 ||
		    dup(m, v[i].c->vector, &c->vector) < 0)
			return ODX_ENOMEM;
	}
	o->ncvss = u;
	return 0;
}

struct fix_ref {
	const char *v;
	const char *type;
	size_t pos;
};

static int cmp_fix_ref(const void *a, const void *b)
{
	const struct fix_ref *x = a, *y = b;
	int c = scan_version_cmp(x->type, x->v, y->v);
	return c ? c : (x->pos < y->pos ? -1 : (x->pos > y->pos));
}

/* Fixed versions, one per version (scan_version_cmp of the package type), ascending. */
static int merge_fixed(struct merge *m, const struct piece *g, size_t k, struct scan_finding *o)
{
	const char *type = g[0].f->pkg.type;
	size_t n = 0;
	for (size_t i = 0; i < k; i++)
		for (size_t j = 0; j < g[i].f->nfixed; j++) {
			if (!g[i].f->fixed_versions[j])
				continue;
			if (tmp_room(m, n + 1, sizeof(struct fix_ref)) < 0)
				return ODX_ENOMEM;
			((struct fix_ref *)m->tmp)[n] =
			    (struct fix_ref){g[i].f->fixed_versions[j], type, n};
			n++;
		}
	struct fix_ref *v = m->tmp;
	sort(v, n, sizeof(*v), cmp_fix_ref);
	m->sv.n = 0;
	for (size_t i = 0; i < n; i++)
		if ((i == 0 || scan_version_cmp(type, v[i].v, m->sv.v[m->sv.n - 1]) != 0) &&
		    strv_push(&m->sv, v[i].v) < 0)
			return ODX_ENOMEM;
	size_t u = m->sv.n;
	if (u &&
	    !(o->fixed_versions =
		  u <= SIZE_MAX / sizeof(char *) ? scan_alloc(m->out, u * sizeof(char *)) : NULL))
		return ODX_ENOMEM;
	for (size_t i = 0; i < u; i++)
		if (dup(m, m->sv.v[i], &o->fixed_versions[i]) < 0)
			return ODX_ENOMEM;
	o->nfixed = u;
	return 0;
}

struct place {
	unsigned engine;
	const char *path;
	const struct scan_finding *f;
	size_t piece;
};

static int cmp_place(const void *a, const void *b)
{
	const struct place *x = a, *y = b;
	if (x->engine != y->engine)
		return x->engine < y->engine ? -1 : 1;
	int c = strcmp(x->path, y->path);
	return c ? c : (x->piece < y->piece ? -1 : (x->piece > y->piece));
}

/* Pieces that repeat, for their engine, a place already reported by another finding of the group.
 */
static int count_duplicates(struct merge *m, const struct piece *g, size_t k, size_t *dups)
{
	size_t n = 0;
	for (size_t i = 0; i < k; i++)
		for (unsigned e = 0; e < SCAN_ENGINE_COUNT; e++) {
			if (!(g[i].engines & SCAN_ENGINE_BIT(e)))
				continue;
			size_t np = g[i].f->npaths ? g[i].f->npaths : 1;
			for (size_t j = 0; j < np; j++, n++) {
				if (tmp_room(m, n + 1, sizeof(struct place)) < 0)
					return ODX_ENOMEM;
				const char *path =
				    g[i].f->npaths ? path_rel(g[i].f->paths[j]) : NULL;
				path = path ? path : "";
				((struct place *)m->tmp)[n] = (struct place){e, path, g[i].f, i};
			}
		}
	struct place *v = m->tmp;
	sort(v, n, sizeof(*v), cmp_place);
	/* a piece counts once, even when several of its places repeat */
	size_t last = SIZE_MAX;
	for (size_t i = 1, first = 0; i < n; i++) {
		if (v[i].engine != v[first].engine || strcmp(v[i].path, v[first].path) != 0) {
			first = i;
			continue;
		}
		if (v[i].f != v[first].f && v[i].piece != last) {
			(*dups)++;
			last = v[i].piece;
		}
	}
	return 0;
}

/* The package of the first piece, with the group's key; strings copied into r. */
static int merge_package(struct merge *m, const struct piece *g, struct scan_finding *o)
{
	const struct scan_package *p = &g[0].f->pkg;
	const char *source = o->pkg.source;
	if (dup(m, p->name, &o->pkg.name) < 0 || dup(m, p->version, &o->pkg.version) < 0 ||
	    dup(m, p->type, &o->pkg.type) < 0 || dup(m, p->purl, &o->pkg.purl) < 0 ||
	    dup(m, g[0].key, &o->pkg.key) < 0 || dup(m, source, &o->pkg.source) < 0)
		return ODX_ENOMEM;
	return 0;
}

/* Copies the strings fold() left pointing into the inputs. */
static int own_scalars(struct merge *m, struct scan_finding *o)
{
	if (dup(m, o->severity_source, &o->severity_source) < 0 ||
	    dup(m, o->layer, &o->layer) < 0 || dup(m, o->title, &o->title) < 0)
		return ODX_ENOMEM;
	for (int e = 0; e < SCAN_ENGINE_COUNT; e++)
		if (dup(m, o->engine_severity_source[e], &o->engine_severity_source[e]) < 0)
			return ODX_ENOMEM;
	return 0;
}

static int merge_group(struct merge *m, const struct piece *g, size_t k, struct scan_finding *o,
		       size_t *dups)
{
	*o = (struct scan_finding){.epss = -1, .epss_percentile = -1, .cpe_match = true};
	for (size_t i = 0; i < k; i++)
		fold(o, &g[i], i == 0);
	int rc = merge_package(m, g, o);
	if (rc == 0)
		rc = own_scalars(m, o);
	if (rc == 0)
		rc = merge_ids(m, g, k, o);
	if (rc == 0)
		rc = merge_paths(m, g, k, o);
	if (rc == 0)
		rc = merge_urls(m, g, k, o);
	if (rc == 0)
		rc = merge_cvss(m, g, k, o);
	if (rc == 0)
		rc = merge_fixed(m, g, k, o);
	if (rc == 0)
		rc = count_duplicates(m, g, k, dups);
	return rc;
}

/* ---- the merged report ---- */

struct row {
	struct scan_finding f;
	size_t first; /* order of the group's first piece: the last tie-break */
};

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->f.severity != y->f.severity)
		return x->f.severity > y->f.severity ? -1 : 1;
	int c = strcmp(x->f.id, y->f.id);
	if (!c)
		c = strcmp(x->f.pkg.key, y->f.pkg.key);
	return c ? c : (x->first < y->first ? -1 : (x->first > y->first));
}

/* One merged finding per run of pieces with the same class and key, sorted into r. */
static int build(struct merge *m, struct scan_report *r, size_t *dups)
{
	sort(m->pieces, m->np, sizeof(*m->pieces), cmp_piece);
	size_t ng = 0;
	for (size_t i = 0; i < m->np; i++)
		ng += i == 0 || cmp_group(&m->pieces[i - 1], &m->pieces[i]) != 0;
	struct row *rows =
	    ng <= SIZE_MAX / sizeof(*rows) ? calloc(ng ? ng : 1, sizeof(*rows)) : NULL;
	if (!rows)
		return ODX_ENOMEM;
	int rc = 0;
	size_t g = 0;
	for (size_t i = 0, j; rc == 0 && i < m->np; i = j) {
		for (j = i + 1; j < m->np && cmp_group(&m->pieces[i], &m->pieces[j]) == 0; j++)
			;
		rows[g].first = m->pieces[i].order;
		rc = merge_group(m, &m->pieces[i], j - i, &rows[g].f, dups);
		g++;
	}
	if (rc == 0) {
		sort(rows, ng, sizeof(*rows), cmp_row);
		r->findings = ng ? scan_alloc(r, ng * sizeof(*r->findings)) : NULL;
		if (ng && !r->findings)
			rc = ODX_ENOMEM;
		for (size_t i = 0; rc == 0 && i < ng; i++)
			r->findings[i] = rows[i].f;
		r->nfindings = rc == 0 ? ng : 0;
	}
	free(rows);
	return rc;
}

static int copy_argv(struct merge *m, struct scan_report *r, const struct scan_image *from,
		     struct scan_image *to)
{
	size_t n = from->nentrypoint;
	to->entrypoint = n <= SIZE_MAX / sizeof(char *) ? scan_alloc(r, n * sizeof(char *)) : NULL;
	if (!to->entrypoint)
		return ODX_ENOMEM;
	for (size_t j = 0; j < n; j++)
		if (dup(m, from->entrypoint[j], &to->entrypoint[j]) < 0)
			return ODX_ENOMEM;
	to->nentrypoint = n;
	return 0;
}

/* The image as the inputs describe it: the first that names each field; digests unioned. */
static int merge_image(struct merge *m, struct scan_report *r, struct scan_report *const *in,
		       size_t n)
{
	struct scan_image *o = &r->image;
	m->sv.n = 0;
	for (size_t i = 0; i < n; i++) {
		const struct scan_image *im = &in[i]->image;
		r->engines |= in[i]->engines;
		for (int e = 0; e < SCAN_ENGINE_COUNT; e++)
			if (!r->engine_version[e] &&
			    dup(m, in[i]->engine_version[e], &r->engine_version[e]) < 0)
				return ODX_ENOMEM;
		if ((!o->name && dup(m, im->name, &o->name) < 0) ||
		    (!o->image_id && dup(m, im->image_id, &o->image_id) < 0) ||
		    (!o->os_family && dup(m, im->os_family, &o->os_family) < 0) ||
		    (!o->os_version && dup(m, im->os_version, &o->os_version) < 0))
			return ODX_ENOMEM;
		o->os_eol |= im->os_eol;
		for (size_t j = 0; j < im->nrepo_digests; j++)
			if (strv_push(&m->sv, im->repo_digests[j]) < 0)
				return ODX_ENOMEM;
		if (!o->nentrypoint && im->nentrypoint && copy_argv(m, r, im, o) < 0)
			return ODX_ENOMEM;
	}
	size_t nd = scan_strv_unique(m->sv.v, m->sv.n);
	if (nd &&
	    !(o->repo_digests =
		  nd <= SIZE_MAX / sizeof(char *) ? scan_alloc(r, nd * sizeof(char *)) : NULL))
		return ODX_ENOMEM;
	for (size_t j = 0; j < nd; j++)
		if (dup(m, m->sv.v[j], &o->repo_digests[j]) < 0)
			return ODX_ENOMEM;
	o->nrepo_digests = nd;
	return 0;
}

static void count_into(struct scan_counts *c, enum scan_severity s)
{
	c->by_severity[sev_of(s)]++;
	c->total++;
}

static void stats_before(struct scan_report *const *in, size_t n, struct scan_merge_stats *st)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < in[i]->nfindings; j++) {
			const struct scan_finding *f = &in[i]->findings[j];
			unsigned engines = f->engines ? f->engines : in[i]->engines;
			for (int e = 0; e < SCAN_ENGINE_COUNT; e++)
				if (engines & SCAN_ENGINE_BIT(e))
					count_into(&st->before[e], f->severity);
		}
}

static void stats_after(const struct scan_report *r, struct scan_merge_stats *st)
{
	const unsigned both =
	    SCAN_ENGINE_BIT(SCAN_ENGINE_TRIVY) | SCAN_ENGINE_BIT(SCAN_ENGINE_GRYPE);
	scan_report_count(r, &st->after);
	for (size_t i = 0; i < r->nfindings; i++) {
		unsigned e = r->findings[i].engines;
		st->both += (e & both) == both;
		for (int k = 0; k < SCAN_ENGINE_COUNT; k++)
			st->only[k] += e == SCAN_ENGINE_BIT(k);
	}
}

int scan_merge(struct scan_report *const *in, size_t n, struct scan_report **out,
	       struct scan_merge_stats *st)
{
	struct merge m = {0};
	struct scan_merge_stats s = {0};
	struct scan_report *r = NULL;
	int rc = ODX_EINVAL;
	if (!in || !out || n < 1 || n > SCAN_MERGE_MAX_INPUTS)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (!in[i])
			goto out;
	rc = ODX_ENOMEM;
	m.out = r = scan_report_new();
	m.scratch = scan_report_new();
	if (!r || !m.scratch)
		goto out;
	stats_before(in, n, &s);
	if ((rc = make_pieces(&m, in, n)) < 0 || (rc = classify(&m)) < 0 ||
	    (rc = build(&m, r, &s.engine_duplicates_collapsed)) < 0 ||
	    (rc = merge_image(&m, r, in, n)) < 0)
		goto out;
	for (size_t i = 0; i < r->nfindings; i++)
		r->engines |= r->findings[i].engines;
	stats_after(r, &s);
	*out = r;
	r = NULL;
	if (st)
		*st = s;
	rc = 0;
out:
	scan_report_free(r);
	merge_done(&m);
	return rc;
}
