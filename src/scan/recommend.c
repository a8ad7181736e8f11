/*
 * recommend.c — fix and base-image recommendations with a priority score
 * (formula in recommend.h and docs/scan-policies.md).
 *
 * Flow: every fixable finding becomes a candidate (with its picked fix and
 * priority factors); candidates are sorted by group key (id, type, source
 * or name, and the version for language packages) and each run of equal
 * keys becomes one recommendation; recommendations are then sorted by
 * priority. Upgrades sort the recommendations by package and roll each run
 * up into one entry (the highest fix, counts by severity). Everything is
 * sorted on total orders, so the output is deterministic for a given report
 * and time.
 *
 * Execution path, from the image's entrypoint (Entrypoint then Cmd): the
 * first argument naming a runtime (node, java, python, ruby, php, or a
 * script/archive of theirs) decides it; otherwise the first non-wrapper
 * argument is a shell (scripts: unknown runtime) or a native/Go binary.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/timeutil.h"
#include "scan/recommend.h"
#include "scan/version.h"

/* ---- execution path ---- */

enum runtime { RT_NONE, RT_SHELL, RT_NATIVE, RT_NODE, RT_JAVA, RT_PYTHON, RT_RUBY, RT_PHP };
static const char *const runtime_names[] = {NULL,   "shell",  "native", "node",
					    "java", "python", "ruby",	"php"};

enum path_kind { PATH_OFF, PATH_UNKNOWN, PATH_IN };
static const char *const path_names[] = {"off", "unknown", "in"};
static const double path_points[] = {0.0, 7.5, 15.0};

struct entry {
	enum runtime rt;
	const char *argv0; /* the first argument that is not an init wrapper, or NULL */
};

struct name_rt {
	const char *name;
	enum runtime rt;
};

static const struct name_rt runtime_cmds[] = {
    {"node", RT_NODE},	    {"nodejs", RT_NODE},  {"npm", RT_NODE},	{"npx", RT_NODE},
    {"yarn", RT_NODE},	    {"pnpm", RT_NODE},	  {"java", RT_JAVA},	{"gunicorn", RT_PYTHON},
    {"uvicorn", RT_PYTHON}, {"uwsgi", RT_PYTHON}, {"pypy3", RT_PYTHON}, {"ruby", RT_RUBY},
    {"bundle", RT_RUBY},    {"rails", RT_RUBY},	  {"puma", RT_RUBY},	{"rackup", RT_RUBY},
};
static const struct name_rt runtime_prefixes[] = {{"python", RT_PYTHON}, {"php", RT_PHP}};
static const struct name_rt runtime_suffixes[] = {
    {".js", RT_NODE},  {".mjs", RT_NODE},  {".cjs", RT_NODE}, {".jar", RT_JAVA},
    {".war", RT_JAVA}, {".py", RT_PYTHON}, {".rb", RT_RUBY},  {".php", RT_PHP},
};
/* Package types per ecosystem; RT_NATIVE marks Go binaries. */
static const struct name_rt type_ecosystems[] = {
    {"npm", RT_NODE},	       {"node-pkg", RT_NODE},	{"yarn", RT_NODE},
    {"pnpm", RT_NODE},	       {"jar", RT_JAVA},	{"java-archive", RT_JAVA},
    {"maven", RT_JAVA},	       {"pom", RT_JAVA},	{"gradle", RT_JAVA},
    {"python-pkg", RT_PYTHON}, {"pip", RT_PYTHON},	{"python", RT_PYTHON},
    {"pipenv", RT_PYTHON},     {"poetry", RT_PYTHON},	{"gem", RT_RUBY},
    {"gemspec", RT_RUBY},      {"bundler", RT_RUBY},	{"composer", RT_PHP},
    {"php-composer", RT_PHP},  {"gobinary", RT_NATIVE}, {"go-module", RT_NATIVE},
};
static const char *const wrappers[] = {"tini", "tini-static", "dumb-init", "--"};
static const char *const shells[] = {"sh", "bash", "dash", "ash", "zsh", "ksh", "busybox"};
/* OS packages that are (or carry) shared libraries besides lib*: linked by any entrypoint. */
static const char *const os_libraries[] = {"openssl", "openssl-libs", "glibc",
					   "musl",    "zlib",	      "zlib1g"};
static const char *const os_types[] = {"deb", "rpm", "apk"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

static enum runtime rt_lookup(const char *s, const struct name_rt *t, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(s, t[i].name) == 0)
			return t[i].rt;
	return RT_NONE;
}

static const char *base_name(const char *s)
{
	const char *b = strrchr(s, '/');
	return b ? b + 1 : s;
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n > m && strcmp(s + n - m, suf) == 0;
}

/* The runtime an argument names, or RT_NONE. */
static enum runtime arg_runtime(const char *arg)
{
	const char *b = base_name(arg);
	enum runtime rt = rt_lookup(b, runtime_cmds, NELEM(runtime_cmds));
	for (size_t i = 0; rt == RT_NONE && i < NELEM(runtime_prefixes); i++)
		if (strncmp(b, runtime_prefixes[i].name, strlen(runtime_prefixes[i].name)) == 0)
			rt = runtime_prefixes[i].rt;
	for (size_t i = 0; rt == RT_NONE && i < NELEM(runtime_suffixes); i++)
		if (has_suffix(b, runtime_suffixes[i].name))
			rt = runtime_suffixes[i].rt;
	return rt;
}

static struct entry entry_of(const struct scan_image *img)
{
	struct entry e = {RT_NONE, NULL};
	if (!img || img->nentrypoint == 0)
		return e;
	for (size_t i = 0; i < img->nentrypoint; i++) {
		const char *arg = img->entrypoint[i];
		if (!arg)
			continue;
		if (!e.argv0 && !in_list(base_name(arg), wrappers, NELEM(wrappers)))
			e.argv0 = arg;
		if (e.rt == RT_NONE)
			e.rt = arg_runtime(arg);
	}
	if (e.rt == RT_NONE) {
		const char *b = e.argv0 ? base_name(e.argv0) : "sh";
		e.rt = in_list(b, shells, NELEM(shells)) || has_suffix(b, ".sh") ? RT_SHELL
										 : RT_NATIVE;
	}
	return e;
}

static bool is_os_type(const char *type)
{
	return in_list(type, os_types, NELEM(os_types));
}

/* A generic binary (Grype's classifier: node, openjdk, python...) that is the runtime itself. */
static bool binary_of_runtime(const char *name, enum runtime rt)
{
	static const struct name_rt bins[] = {
	    {"node", RT_NODE},	   {"nodejs", RT_NODE}, {"java", RT_JAVA},
	    {"openjdk", RT_JAVA},  {"jdk", RT_JAVA},	{"jre", RT_JAVA},
	    {"python", RT_PYTHON}, {"ruby", RT_RUBY},	{"php", RT_PHP}};
	return name && rt_lookup(name, bins, NELEM(bins)) == rt;
}

/* A Go binary is on the path when it is the entrypoint binary (or its location is unknown). */
static bool go_binary_is_entry(const struct scan_finding *f, const char *argv0)
{
	if (f->npaths == 0)
		return true;
	const char *a = argv0;
	while (a && *a == '/')
		a++;
	for (size_t i = 0; a && i < f->npaths; i++) {
		const char *p = f->paths[i];
		while (p && *p == '/')
			p++;
		if (p && strcmp(p, a) == 0)
			return true;
	}
	return false;
}

static enum path_kind exec_path(const struct scan_finding *f, const struct entry *e)
{
	const char *type = f->pkg.type, *name = f->pkg.name ? f->pkg.name : "";
	if (e->rt == RT_NONE || !type)
		return PATH_UNKNOWN;
	if (is_os_type(type))
		return strncmp(name, "lib", 3) == 0 ||
			       in_list(name, os_libraries, NELEM(os_libraries))
			   ? PATH_IN
			   : PATH_OFF;
	enum runtime eco = rt_lookup(type, type_ecosystems, NELEM(type_ecosystems));
	bool binary = strcmp(type, "binary") == 0;
	if ((eco == RT_NONE && !binary) || e->rt == RT_SHELL)
		return PATH_UNKNOWN;
	if (binary)
		return binary_of_runtime(name, e->rt) ? PATH_IN : PATH_OFF;
	if (eco == RT_NATIVE)
		return e->rt == RT_NATIVE && go_binary_is_entry(f, e->argv0) ? PATH_IN : PATH_OFF;
	return eco == e->rt ? PATH_IN : PATH_OFF;
}

/* ---- priority ---- */

struct factors {
	double sev_pts, expl_pts, threat_pts, path_pts, total;
	const char *vector; /* the vector used, NULL: none usable */
	bool network;	    /* AV:N in that vector */
	enum path_kind path;
	enum runtime rt;
	const char *why;
};

static const double severity_points[SCAN_SEV_COUNT] = {
    [SCAN_SEV_UNKNOWN] = 10, [SCAN_SEV_NEGLIGIBLE] = 5, [SCAN_SEV_LOW] = 10,
    [SCAN_SEV_MEDIUM] = 20,  [SCAN_SEV_HIGH] = 30,	[SCAN_SEV_CRITICAL] = 40,
};

/* Points of one "XX:Y" metric of a v3.x/v4.0 vector; -1 when it is not one we score. */
static int metric_points(const char *m, size_t len, bool *av)
{
	static const struct {
		const char *metric;
		int points;
	} table[] = {{"AV:N", 8}, {"AV:A", 4}, {"AV:L", 2}, {"AV:P", 0}, {"AC:L", 4},
		     {"AC:H", 0}, {"PR:N", 4}, {"PR:L", 2}, {"PR:H", 0}, {"UI:N", 4},
		     {"UI:P", 2}, {"UI:R", 0}, {"UI:A", 0}};
	for (size_t i = 0; len == 4 && i < NELEM(table); i++) {
		if (memcmp(m, table[i].metric, 4) == 0) {
			*av = *av || (m[0] == 'A' && m[1] == 'V');
			return table[i].points;
		}
	}
	return -1;
}

/* Exploitability points of a vector (0-20), or -1 without an attack vector metric. */
static int vector_points(const char *v, bool *network)
{
	int total = 0;
	bool av = false;
	*network = false;
	while (*v) {
		size_t len = strcspn(v, "/");
		int p = metric_points(v, len, &av);
		if (p > 0)
			total += p;
		if (len == 4 && memcmp(v, "AV:N", 4) == 0)
			*network = true;
		v += len + (v[len] == '/');
	}
	return av ? total : -1;
}

static bool cvss_scored(const struct scan_cvss *c)
{
	if (!c->vector || !*c->vector)
		return false;
	const char *ver = c->version ? c->version : "";
	return strncmp(ver, "3.", 2) == 0 || strcmp(ver, "4.0") == 0 ||
	       strncmp(c->vector, "CVSS:3.", 7) == 0 || strncmp(c->vector, "CVSS:4.0", 8) == 0;
}

/* The v3.x/v4.0 vector giving the most points (sources disagree: take the worst case). */
static void best_vector(const struct scan_finding *f, struct factors *x)
{
	int best = -1;
	for (size_t i = 0; i < f->ncvss; i++) {
		bool network;
		if (!cvss_scored(&f->cvss[i]))
			continue;
		int p = vector_points(f->cvss[i].vector, &network);
		if (p > best) {
			best = p;
			x->vector = f->cvss[i].vector;
			x->network = network;
		}
	}
	x->expl_pts = best >= 0 ? best : x->sev_pts / 2;
}

static const char *why_of(const struct scan_finding *f, const struct factors *x)
{
	if (f->kev)
		return "known exploited (CISA KEV)";
	if (f->epss >= 0.1)
		return "likely to be exploited (EPSS >= 0.1)";
	if (x->network && x->path == PATH_IN)
		return "network-exploitable and in the execution path";
	if (x->path == PATH_OFF)
		return "package is off the execution path";
	if (!x->vector)
		return "severity only: no CVSS v3/v4 vector";
	if (x->path == PATH_IN)
		return "in the execution path";
	return "severity and CVSS exploitability";
}

static void priority_compute(const struct scan_finding *f, const struct entry *e, struct factors *x)
{
	*x = (struct factors){.rt = e->rt};
	unsigned sev = f->severity < SCAN_SEV_COUNT ? f->severity : SCAN_SEV_UNKNOWN;
	x->sev_pts = severity_points[sev];
	best_vector(f, x);
	double epss = f->epss > 1.0 ? 1.0 : f->epss;
	x->threat_pts = f->kev ? 25.0 : epss >= 0 ? 20.0 * sqrt(epss) : 0.0;
	x->path = exec_path(f, e);
	x->path_pts = path_points[x->path];
	double t = x->sev_pts + x->expl_pts + x->threat_pts + x->path_pts;
	x->total = t < 0 ? 0 : t > 100 ? 100 : t;
	x->why = why_of(f, x);
}

double scan_priority(const struct scan_finding *f, const struct scan_image *img, const char **why)
{
	struct entry e = entry_of(img);
	struct factors x;
	priority_compute(f, &e, &x);
	if (why)
		*why = x.why;
	return x.total;
}

/* ---- candidates and groups ---- */

struct cand {
	const struct scan_finding *f;
	const char *fix;   /* picked fixed version, or NULL (fixable by state only) */
	const char *group; /* OS: source package when known; else the package name */
	bool os;
	struct factors x;
};

struct group {
	struct cand *c; /* members, sorted by name */
	size_t n;
	const struct cand *best; /* highest priority member */
	const char *fix;	 /* highest picked version of the members */
};

static int scmp(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

static bool state_fixed(const struct scan_finding *f)
{
	for (int e = 0; e < SCAN_ENGINE_COUNT; e++)
		if (f->fix_state[e] == SCAN_FIX_FIXED)
			return true;
	return false;
}

/* Fills c for f; false when f is not fixable. */
static bool cand_make(const struct scan_finding *f, const struct entry *e, struct cand *c)
{
	const char *type = f->pkg.type ? f->pkg.type : "";
	const char *fix = f->nfixed
			      ? scan_version_pick_fix(type, f->pkg.version ? f->pkg.version : "",
						      f->fixed_versions, f->nfixed)
			      : NULL;
	if (!fix && !state_fixed(f))
		return false;
	c->f = f;
	c->fix = fix;
	c->os = is_os_type(type);
	c->group = c->os && f->pkg.source && *f->pkg.source ? f->pkg.source : f->pkg.name;
	priority_compute(f, e, &c->x);
	return true;
}

/* Same recommendation: id, type, group name, and the version for language packages. */
static int group_key_cmp(const struct cand *a, const struct cand *b)
{
	int d = scmp(a->f->id, b->f->id);
	if (!d)
		d = scmp(a->f->pkg.type, b->f->pkg.type);
	if (!d)
		d = scmp(a->group, b->group);
	if (!d && !a->os)
		d = scmp(a->f->pkg.version, b->f->pkg.version);
	return d;
}

static int cand_cmp(const void *pa, const void *pb)
{
	const struct cand *a = pa, *b = pb;
	int d = group_key_cmp(a, b);
	if (!d)
		d = scmp(a->f->pkg.name, b->f->pkg.name);
	if (!d)
		d = scmp(a->f->pkg.version, b->f->pkg.version);
	if (!d)
		d = (b->x.total > a->x.total) - (b->x.total < a->x.total);
	return d;
}

/* Priorities are shown to 0.1; sorting on the shown value keeps the order and numbers agreeing. */
static double round1(double v)
{
	return round(v * 10.0) / 10.0;
}

static int group_cmp(const void *pa, const void *pb)
{
	const struct group *a = pa, *b = pb;
	double pa_ = round1(a->best->x.total), pb_ = round1(b->best->x.total);
	if (pa_ != pb_)
		return pa_ < pb_ ? 1 : -1;
	if (a->best->f->severity != b->best->f->severity)
		return a->best->f->severity < b->best->f->severity ? 1 : -1;
	int d = scmp(a->c->f->id, b->c->f->id);
	if (!d)
		d = scmp(a->c->group, b->c->group);
	if (!d)
		d = scmp(a->c->f->pkg.type, b->c->f->pkg.type);
	if (!d)
		d = scmp(a->c->f->pkg.version, b->c->f->pkg.version);
	return d;
}

/* Closes the group of c[0..n): best member and the highest fix (one upgrade must fix all). */
static void group_close(struct group *g, struct cand *c, size_t n)
{
	g->c = c;
	g->n = n;
	g->best = c;
	g->fix = NULL;
	for (size_t i = 0; i < n; i++) {
		if (c[i].x.total > g->best->x.total)
			g->best = &c[i];
		if (c[i].fix &&
		    (!g->fix || scan_version_cmp(c[i].f->pkg.type ? c[i].f->pkg.type : "", c[i].fix,
						 g->fix) > 0))
			g->fix = c[i].fix;
	}
}

/* Groups the sorted candidates into g (capacity n); returns the number of groups. */
static size_t groups_make(struct cand *c, size_t n, struct group *g)
{
	size_t ng = 0, start = 0;
	for (size_t i = 1; i <= n; i++) {
		if (i == n || group_key_cmp(&c[start], &c[i]) != 0) {
			group_close(&g[ng++], &c[start], i - start);
			start = i;
		}
	}
	return ng;
}

/* ---- JSON of one recommendation ---- */

static json_t *names_json(const struct group *g)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < g->n; i++) {
		if (i > 0 && scmp(g->c[i].f->pkg.name, g->c[i - 1].f->pkg.name) == 0)
			continue;
		if (json_array_append_new(
			arr, json_string(g->c[i].f->pkg.name ? g->c[i].f->pkg.name : "")) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* "upgrade <group> [(detail)] to <fix>" for the first candidate c of nnames binary packages. */
static json_t *action_json(const struct cand *c, size_t nnames, const char *fix)
{
	const char *what = c->group ? c->group : "";
	const char *only = c->f->pkg.name ? c->f->pkg.name : "";
	char detail[96] = "";
	if (c->os && nnames > 1)
		snprintf(detail, sizeof(detail), " (%zu binary packages)", nnames);
	else if (c->os && strcmp(only, what) != 0)
		snprintf(detail, sizeof(detail), " (%.80s)", only);
	if (!fix)
		return json_sprintf("upgrade %s%s to the release its distribution marks as fixed "
				    "(no newer version is listed)",
				    what, detail);
	return json_sprintf("upgrade %s%s to %s", what, detail, fix);
}

static json_t *factors_json(const struct scan_finding *f, const struct factors *x)
{
	return json_pack("{s:f, s:f, s:s?, s:o, s:b, s:f, s:s, s:s?, s:f}", "severity_points",
			 x->sev_pts, "exploitability_points", x->expl_pts, "vector", x->vector,
			 "epss", f->epss >= 0 ? json_real(f->epss) : json_null(), "kev", f->kev,
			 "threat_points", round1(x->threat_pts), "execution_path",
			 path_names[x->path], "runtime", runtime_names[x->rt], "path_points",
			 x->path_pts);
}

static json_t *recommendation_json(const struct group *g)
{
	const struct scan_finding *f = g->c->f;
	json_t *names = names_json(g);
	size_t nnames = json_array_size(names);
	return json_pack("{s:s?, s:s, s:{s:s?, s:s?, s:s?, s:s?}, s:o, s:s?, s:o, s:f, s:o, s:s}",
			 "finding", f->id, "severity", scan_severity_name(g->best->f->severity),
			 "package", "name", f->pkg.name, "version", f->pkg.version, "type",
			 f->pkg.type, "source", f->pkg.source, "packages", names, "fixed_version",
			 g->fix, "action", action_json(g->c, nnames, g->fix), "priority",
			 round1(g->best->x.total), "priority_factors",
			 factors_json(g->best->f, &g->best->x), "why", g->best->x.why);
}

/* ---- per-package upgrades ---- */

/*
 * The recommendations of one package rolled up into one upgrade: an OS
 * source package (or binary, when no source is known) of one type; a
 * language package of one type, name and installed version.
 */
struct upgrade {
	const struct group **g; /* members, sorted by id */
	size_t n;
	const char *to;	 /* highest fixed version of the members */
	double priority; /* highest of the members with a version, as shown (0.1) */
	size_t fixes, without_version, by_sev[SCAN_SEV_COUNT];
};

#define UPGRADE_MAX_IDS 50

static int upgrade_key_cmp(const struct group *a, const struct group *b)
{
	int d = scmp(a->c->f->pkg.type, b->c->f->pkg.type);
	if (!d)
		d = scmp(a->c->group, b->c->group);
	if (!d && !a->c->os)
		d = scmp(a->c->f->pkg.version, b->c->f->pkg.version);
	return d;
}

/* Upgrade key, then id: a total order on groups (the rest of their group key). */
static int member_cmp(const void *pa, const void *pb)
{
	const struct group *a = *(const struct group *const *)pa;
	const struct group *b = *(const struct group *const *)pb;
	int d = upgrade_key_cmp(a, b);
	return d ? d : scmp(a->c->f->id, b->c->f->id);
}

/*
 * Rolls g[0..n) into u; false when no member has a fixed version (those
 * only count in without_version). Each member's fix was picked in the
 * installed version's line when that line has one (scan_version_pick_fix),
 * so the fixes normally lie on one line and the highest fixes them all.
 * When they do not (some fix exists only on a newer line), the highest is
 * still taken: it is the only version at least as new as every fix, but it
 * means a move to that newer line and assumes the older lines' fixes are in
 * it, true of upstream releases, not always of distribution backports. Equal
 * versions spelled differently tie-break on the string, for determinism.
 */
static bool upgrade_close(struct upgrade *u, const struct group **g, size_t n)
{
	*u = (struct upgrade){.g = g, .n = n};
	for (size_t i = 0; i < n; i++) {
		const char *fix = g[i]->fix, *type = g[i]->c->f->pkg.type;
		unsigned sev = g[i]->best->f->severity;
		if (!fix) {
			u->without_version++;
			continue;
		}
		int d = u->to ? scan_version_cmp(type ? type : "", fix, u->to) : 1;
		if (d > 0 || (d == 0 && strcmp(fix, u->to) > 0))
			u->to = fix;
		u->fixes++;
		u->by_sev[sev < SCAN_SEV_COUNT ? sev : SCAN_SEV_UNKNOWN]++;
		/* rounded as shown, so that the order agrees with the numbers a reader sees */
		if (round1(g[i]->best->x.total) > u->priority)
			u->priority = round1(g[i]->best->x.total);
	}
	return u->fixes > 0;
}

/* Priority desc, fixes desc, name, then the rest of the key (total: keys are unique). */
static int upgrade_cmp(const void *pa, const void *pb)
{
	const struct upgrade *a = pa, *b = pb;
	if (a->priority != b->priority)
		return a->priority < b->priority ? 1 : -1;
	if (a->fixes != b->fixes)
		return a->fixes < b->fixes ? 1 : -1;
	int d = scmp(a->g[0]->c->group, b->g[0]->c->group);
	return d ? d : upgrade_key_cmp(a->g[0], b->g[0]);
}

/* The binary package names of every member, sorted and unique. */
static json_t *upgrade_names(const struct upgrade *u)
{
	size_t total = 0, k = 0;
	for (size_t i = 0; i < u->n; i++)
		total += u->g[i]->n; /* at most the findings: no overflow */
	const char **v = calloc(total ? total : 1, sizeof(*v));
	json_t *arr = v ? json_array() : NULL;
	for (size_t i = 0; v && i < u->n; i++)
		for (size_t j = 0; j < u->g[i]->n; j++)
			v[k++] = u->g[i]->c[j].f->pkg.name ? u->g[i]->c[j].f->pkg.name : "";
	k = v ? scan_strv_sort_unique(v, k) : 0;
	for (size_t i = 0; arr && i < k; i++)
		if (json_array_append_new(arr, json_string(v[i])) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	free(v);
	return arr;
}

/* {"critical": n, ..., "unknown": n} and the ids (at most UPGRADE_MAX_IDS) of u's fixes. */
static int upgrade_counts(const struct upgrade *u, json_t **sev, json_t **ids)
{
	*sev = json_object();
	*ids = json_array();
	int rc = *sev && *ids ? 0 : ODX_ENOMEM;
	for (int s = SCAN_SEV_COUNT - 1; rc == 0 && s >= 0; s--)
		if (json_object_set_new(*sev, scan_severity_name(s),
					json_integer((json_int_t)u->by_sev[s])) < 0)
			rc = ODX_ENOMEM;
	for (size_t i = 0; rc == 0 && i < u->n && json_array_size(*ids) < UPGRADE_MAX_IDS; i++)
		if (u->g[i]->fix &&
		    json_array_append_new(
			*ids, json_string(u->g[i]->c->f->id ? u->g[i]->c->f->id : "")) < 0)
			rc = ODX_ENOMEM;
	return rc;
}

static json_t *upgrade_json(const struct upgrade *u)
{
	const struct scan_package *p = &u->g[0]->c->f->pkg;
	json_t *sev, *ids, *names = upgrade_names(u);
	if (upgrade_counts(u, &sev, &ids) < 0 || !names) {
		json_decref(sev);
		json_decref(ids);
		json_decref(names);
		return NULL;
	}
	return json_pack(
	    "{s:{s:s?, s:s?, s:s?, s:s?}, s:o, s:s, s:I, s:o, s:o, s:I, s:I, s:f, s:o}", "package",
	    "name", p->name, "version", p->version, "type", p->type, "source", p->source,
	    "packages", names, "to_version", u->to, "fixes", (json_int_t)u->fixes,
	    "fixes_by_severity", sev, "findings", ids, "findings_total", (json_int_t)u->fixes,
	    "without_version", (json_int_t)u->without_version, "priority", u->priority, "action",
	    action_json(u->g[0]->c, json_array_size(names), u->to));
}

/* The upgrades of the groups g[0..ng) (their order does not matter); NULL on ENOMEM. */
static json_t *upgrades_json(const struct group *g, size_t ng)
{
	json_t *arr = NULL;
	size_t nu = 0;
	const struct group **p = calloc(ng ? ng : 1, sizeof(*p));
	struct upgrade *u = calloc(ng ? ng : 1, sizeof(*u));
	if (!p || !u)
		goto out;
	for (size_t i = 0; i < ng; i++)
		p[i] = &g[i];
	qsort(p, ng, sizeof(*p), member_cmp);
	for (size_t i = 1, start = 0; i <= ng; i++) {
		if (i < ng && upgrade_key_cmp(p[start], p[i]) == 0)
			continue;
		nu += upgrade_close(&u[nu], &p[start], i - start);
		start = i;
	}
	qsort(u, nu, sizeof(*u), upgrade_cmp);
	arr = json_array();
	for (size_t i = 0; arr && i < nu; i++)
		if (json_array_append_new(arr, upgrade_json(&u[i])) < 0) {
			json_decref(arr);
			arr = NULL;
		}
out:
	free(p);
	free(u);
	return arr;
}

/* ---- base image ---- */

/*
 * Releases and the end of their free security support, as of 2026-11
 * (sources and caveats in docs/scan-policies.md). Per family, oldest first.
 * The image is the floating tag of the release: it always names its newest
 * point release.
 */
struct eol_row {
	const char *family, *release, *eol, *image;
};
static const struct eol_row eol_table[] = {
    {"debian", "9", "2022-06-30", "debian:9"},
    {"debian", "10", "2024-06-30", "debian:10"},
    {"debian", "11", "2026-08-31", "debian:11"},
    {"debian", "12", "2028-06-30", "debian:12"},
    {"debian", "13", "2030-06-30", "debian:13"},
    {"ubuntu", "16.04", "2021-04-30", "ubuntu:16.04"},
    {"ubuntu", "18.04", "2023-05-31", "ubuntu:18.04"},
    {"ubuntu", "20.04", "2025-05-31", "ubuntu:20.04"},
    {"ubuntu", "22.04", "2027-06-01", "ubuntu:22.04"},
    {"ubuntu", "24.04", "2029-05-31", "ubuntu:24.04"},
    {"ubuntu", "24.10", "2025-07-10", "ubuntu:24.10"},
    {"ubuntu", "25.04", "2026-01-10", "ubuntu:25.04"},
    {"ubuntu", "25.10", "2026-07-10", "ubuntu:25.10"},
    {"ubuntu", "26.04", "2031-05-31", "ubuntu:26.04"},
    {"alpine", "3.9", "2020-11-01", "alpine:3.9"},
    {"alpine", "3.10", "2021-05-01", "alpine:3.10"},
    {"alpine", "3.11", "2021-11-01", "alpine:3.11"},
    {"alpine", "3.12", "2022-05-01", "alpine:3.12"},
    {"alpine", "3.13", "2022-11-01", "alpine:3.13"},
    {"alpine", "3.14", "2023-05-01", "alpine:3.14"},
    {"alpine", "3.15", "2023-11-01", "alpine:3.15"},
    {"alpine", "3.16", "2024-05-23", "alpine:3.16"},
    {"alpine", "3.17", "2024-11-22", "alpine:3.17"},
    {"alpine", "3.18", "2025-05-09", "alpine:3.18"},
    {"alpine", "3.19", "2025-11-01", "alpine:3.19"},
    {"alpine", "3.20", "2026-04-01", "alpine:3.20"},
    {"alpine", "3.21", "2026-11-01", "alpine:3.21"},
    {"alpine", "3.22", "2027-05-01", "alpine:3.22"},
    {"alpine", "3.23", "2027-11-01", "alpine:3.23"},
    {"alpine", "3.24", "2028-06-01", "alpine:3.24"},
    {"centos", "6", "2020-11-30", "centos:6"},
    {"centos", "7", "2024-06-30", "centos:7"},
    {"centos", "8", "2021-12-31", "centos:8"},
    {"centos", "9", "2027-05-31", "quay.io/centos/centos:stream9"},
    {"centos", "10", "2030-01-01", "quay.io/centos/centos:stream10"},
    {"redhat", "7", "2024-06-30", "registry.access.redhat.com/ubi7/ubi"},
    {"redhat", "8", "2029-05-31", "registry.access.redhat.com/ubi8/ubi"},
    {"redhat", "9", "2032-05-31", "registry.access.redhat.com/ubi9/ubi"},
    {"redhat", "10", "2035-05-31", "registry.access.redhat.com/ubi10/ubi"},
    {"rocky", "8", "2029-05-31", "rockylinux/rockylinux:8"},
    {"rocky", "9", "2032-05-31", "rockylinux/rockylinux:9"},
    {"rocky", "10", "2035-05-31", "rockylinux/rockylinux:10"},
    {"alma", "8", "2029-03-01", "almalinux:8"},
    {"alma", "9", "2032-05-31", "almalinux:9"},
    {"alma", "10", "2035-05-31", "almalinux:10"},
    {"amazon", "2018.03", "2023-12-31", "amazonlinux:1"},
    {"amazon", "2", "2026-06-30", "amazonlinux:2"},
    {"amazon", "2023", "2029-06-30", "amazonlinux:2023"},
    {"oracle", "7", "2024-12-31", "oraclelinux:7"},
    {"oracle", "8", "2029-07-31", "oraclelinux:8"},
    {"oracle", "9", "2032-06-30", "oraclelinux:9"},
    {"oracle", "10", "2035-06-30", "oraclelinux:10"},
};

/* The table's name for an OS family as Trivy or Grype spell it, or NULL. */
static const char *family_canonical(const char *family)
{
	static const char *const aliases[][2] = {
	    {"debian", "debian"},  {"ubuntu", "ubuntu"},    {"alpine", "alpine"},
	    {"centos", "centos"},  {"redhat", "redhat"},    {"rhel", "redhat"},
	    {"rocky", "rocky"},	   {"rockylinux", "rocky"}, {"alma", "alma"},
	    {"almalinux", "alma"}, {"amazon", "amazon"},    {"amazonlinux", "amazon"},
	    {"amzn", "amazon"},	   {"oracle", "oracle"},    {"oraclelinux", "oracle"},
	    {"ol", "oracle"},
	};
	for (size_t i = 0; family && i < NELEM(aliases); i++)
		if (strcasecmp(family, aliases[i][0]) == 0)
			return aliases[i][1];
	return NULL;
}

/* "12.12" is release "12", "7.6.1810" is "7", "2 (Karoo)" is "2", "3.9.4" is "3.9". */
static bool release_match(const char *version, const char *release)
{
	size_t n = strlen(release);
	return strncmp(version, release, n) == 0 &&
	       (version[n] == '\0' || version[n] == '.' || version[n] == ' ');
}

static const struct eol_row *row_find(const char *family, const char *version)
{
	for (size_t i = 0; family && version && i < NELEM(eol_table); i++)
		if (strcmp(eol_table[i].family, family) == 0 &&
		    release_match(version, eol_table[i].release))
			return &eol_table[i];
	return NULL;
}

/* Start of the EOL day (UTC) in Unix seconds. */
static int64_t row_eol_unix(const struct eol_row *r)
{
	char buf[32];
	int64_t ns;
	snprintf(buf, sizeof(buf), "%sT00:00:00Z", r->eol);
	return time_parse_rfc3339(buf, &ns) == 0 ? ns / NSEC_PER_SEC : INT64_MAX;
}

/* The family's supported release with the latest end of life at now, or NULL. */
static const struct eol_row *newest_supported(const char *family, int64_t now)
{
	const struct eol_row *best = NULL;
	for (size_t i = 0; family && i < NELEM(eol_table); i++) {
		const struct eol_row *r = &eol_table[i];
		if (strcmp(r->family, family) == 0 && row_eol_unix(r) > now &&
		    (!best || row_eol_unix(r) > row_eol_unix(best)))
			best = r;
	}
	return best;
}

struct os_counts {
	size_t total, fixable;
};

static json_t *base_action(const struct scan_image *img, const struct eol_row *row,
			   const struct eol_row *upgrade, bool eol, const struct os_counts *n)
{
	const char *fam = img->os_family ? img->os_family : "the base image";
	const char *ver = img->os_version ? img->os_version : "";
	if (eol && upgrade)
		return json_sprintf("%s %s is end of life: move to %s, the newest supported "
				    "release; until then rebuilding on %s picks up fixes for "
				    "%zu of %zu OS findings",
				    fam, ver, upgrade->image, row ? row->image : "the same release",
				    n->fixable, n->total);
	if (row)
		return json_sprintf("rebuild on %s (the newest %s %s point release): picks up "
				    "fixes for %zu of %zu OS findings",
				    row->image, row->family, row->release, n->fixable, n->total);
	return json_sprintf("rebuild on the newest point release of %s %s: picks up fixes for "
			    "%zu of %zu OS findings",
			    fam, ver, n->fixable, n->total);
}

static json_t *base_image_json(const struct scan_image *img, int64_t now, const struct os_counts *n)
{
	const char *family = family_canonical(img->os_family);
	const struct eol_row *row = row_find(family, img->os_version);
	bool eol = img->os_eol || (row && now >= row_eol_unix(row));
	const struct eol_row *upgrade = eol ? newest_supported(family, now) : NULL;
	if (upgrade == row)
		upgrade = NULL;
	return json_pack("{s:s?, s:s?, s:s?, s:b, s:s?, s:s?, s:s?, s:I, s:I, s:o, s:s}", "family",
			 img->os_family, "version", img->os_version, "release",
			 row ? row->release : NULL, "eol", eol, "eol_date", row ? row->eol : NULL,
			 "rebuild_on", row ? row->image : NULL, "upgrade_to",
			 upgrade ? upgrade->image : NULL, "fixes", (json_int_t)n->fixable,
			 "os_findings", (json_int_t)n->total, "action",
			 base_action(img, row, upgrade, eol, n), "table_date", SCAN_EOL_TABLE_DATE);
}

/* ---- the whole report ---- */

/* Candidates of r (fixable findings) into c; counts OS findings. Returns the number. */
static size_t cands_collect(const struct scan_report *r, struct cand *c, struct os_counts *os)
{
	struct entry e = entry_of(&r->image);
	size_t n = 0;
	*os = (struct os_counts){0, 0};
	for (size_t i = 0; i < r->nfindings; i++) {
		bool fixable = cand_make(&r->findings[i], &e, &c[n]);
		if (is_os_type(r->findings[i].pkg.type)) {
			os->total++;
			os->fixable += fixable;
		}
		n += fixable;
	}
	return n;
}

static json_t *recommendations_json(struct group *g, size_t ng)
{
	json_t *arr = json_array();
	qsort(g, ng, sizeof(*g), group_cmp);
	for (size_t i = 0; arr && i < ng; i++) {
		if (json_array_append_new(arr, recommendation_json(&g[i])) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

json_t *scan_recommend(const struct scan_report *merged, int64_t now_unix)
{
	json_t *out = NULL;
	struct os_counts os;
	if (!merged)
		return NULL;
	size_t cap = merged->nfindings ? merged->nfindings : 1;
	struct cand *c = calloc(cap, sizeof(*c));
	struct group *g = calloc(cap, sizeof(*g));
	if (!c || !g)
		goto out;
	size_t n = cands_collect(merged, c, &os);
	qsort(c, n, sizeof(*c), cand_cmp);
	size_t ng = groups_make(c, n, g);
	json_t *upgrades = upgrades_json(g, ng); /* before recommendations_json reorders g */
	out = json_pack("{s:o, s:o, s:o}", "recommendations", recommendations_json(g, ng),
			"base_image",
			os.total ? base_image_json(&merged->image, now_unix, &os) : json_null(),
			"upgrades", upgrades);
out:
	free(c);
	free(g);
	return out;
}
