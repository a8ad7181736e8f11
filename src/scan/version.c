/*
 * version.c — package version ordering (see version.h).
 *
 * Each scheme turns a version into a stream of tokens and compares the
 * streams left to right; a token is a number (compared by value, any length:
 * leading zeros dropped, then length, then digits), a byte run (compared
 * bytewise) or a marker whose place in the order is its rank. Since the
 * stream is a function of the string and tokens are totally preordered, each
 * scheme is a total preorder on all strings, malformed ones included — what
 * a sort needs. dpkg and rpm use their reference algorithms (dpkg verrevcmp,
 * rpmvercmp) on the epoch, version and release parts instead of tokens.
 *
 * Schemes: dpkg ("~" before everything, even the end), rpm EVR (missing
 * epoch = 0; "~" before the end, "^" after it), apk (-rN revision,
 * _alpha/_beta/_pre/_rc before the release, _cvs/_svn/_git/_hg/_p after),
 * semver-ish (leading "v" ignored, missing components are 0, a pre-release
 * sorts before its release, "+build" ignored; strings without a leading
 * number sort first, among themselves by the generic order), Maven-ish
 * (numbers and qualifiers; alpha < beta < milestone < rc < snapshot <
 * release (""/ga/final) < sp < other qualifiers < numbers; trailing zeros and
 * release qualifiers dropped so 1.0 = 1 = 1.0-ga) and a generic natural order
 * (digit runs by value, other runs bytewise).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "scan/version.h"

enum vkind { VK_GENERIC, VK_SEMVER, VK_DEB, VK_RPM, VK_APK, VK_MAVEN };

struct span {
	const char *p;
	size_t n;
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char at(struct span s, size_t i)
{
	return i < s.n ? s.p[i] : '\0';
}

static struct span span_of(const char *s)
{
	return (struct span){s ? s : "", s ? strlen(s) : 0};
}

static struct span sub(struct span s, size_t from, size_t to)
{
	return (struct span){s.p + from, to - from};
}

static int sign(int v)
{
	return (v > 0) - (v < 0);
}

/* Digit strings by value, without converting (no overflow on long runs). */
static int num_cmp(struct span a, struct span b)
{
	while (a.n && a.p[0] == '0') /* "", "0" and "00" are all zero */
		a.p++, a.n--;
	while (b.n && b.p[0] == '0')
		b.p++, b.n--;
	if (a.n != b.n)
		return a.n < b.n ? -1 : 1;
	return a.n ? sign(memcmp(a.p, b.p, a.n)) : 0;
}

static int bytes_cmp(struct span a, struct span b, bool fold)
{
	size_t n = a.n < b.n ? a.n : b.n;
	int c = 0;
	if (n) /* a span of length 0 may have a NULL pointer */
		c = fold ? strncasecmp(a.p, b.p, n) : memcmp(a.p, b.p, n);
	if (c)
		return sign(c);
	return a.n == b.n ? 0 : (a.n < b.n ? -1 : 1);
}

static size_t digits_end(struct span s, size_t i)
{
	while (i < s.n && is_digit(s.p[i]))
		i++;
	return i;
}

/* ---- tokens shared by the apk, Maven and generic schemes ---- */

struct tok {
	int rank;  /* order between tokens of different kinds */
	bool num;  /* text is a digit run compared by value */
	bool fold; /* text compared case-insensitively */
	int val;   /* order among tokens of one kind (suffix index) */
	struct span text;
};

static int tok_cmp(const struct tok *a, const struct tok *b)
{
	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	if (a->val != b->val)
		return a->val < b->val ? -1 : 1;
	if (a->num)
		return num_cmp(a->text, b->text);
	return bytes_cmp(a->text, b->text, a->fold);
}

/* ---- generic: digit runs by value, other runs bytewise ---- */

enum { GEN_END, GEN_STR, GEN_NUM };

static struct tok gen_next(struct span s, size_t *i)
{
	struct tok t = {.rank = GEN_END};
	size_t b = *i, e = b;
	if (b >= s.n)
		return t;
	if (is_digit(s.p[b])) {
		e = digits_end(s, b);
		t.rank = GEN_NUM;
		t.num = true;
	} else {
		while (e < s.n && !is_digit(s.p[e]))
			e++;
		t.rank = GEN_STR;
	}
	t.text = sub(s, b, e);
	*i = e;
	return t;
}

static int generic_cmp(struct span a, struct span b)
{
	size_t i = 0, j = 0;
	for (;;) {
		struct tok x = gen_next(a, &i), y = gen_next(b, &j);
		int c = tok_cmp(&x, &y);
		if (c || x.rank == GEN_END)
			return c;
	}
}

/* ---- dpkg (deb-version(7); verrevcmp from dpkg's lib/dpkg/version.c) ---- */

static int dpkg_order(char c)
{
	if (is_digit(c))
		return 0;
	if (is_alpha(c))
		return (unsigned char)c;
	if (c == '~')
		return -1;
	if (c)
		return (unsigned char)c + 256;
	return 0;
}

static int dpkg_verrevcmp(struct span a, struct span b)
{
	size_t i = 0, j = 0;
	while (i < a.n || j < b.n) {
		while ((i < a.n && !is_digit(a.p[i])) || (j < b.n && !is_digit(b.p[j]))) {
			int ac = dpkg_order(at(a, i)), bc = dpkg_order(at(b, j));
			if (ac != bc)
				return ac < bc ? -1 : 1;
			i += i < a.n, j += j < b.n;
		}
		size_t ie = digits_end(a, i), je = digits_end(b, j);
		int c = num_cmp(sub(a, i, ie), sub(b, j, je));
		if (c)
			return c;
		i = ie, j = je;
	}
	return 0;
}

/* [epoch:]rest, the epoch being all digits; "0" when absent. */
static void split_epoch(struct span v, struct span *epoch, struct span *rest)
{
	size_t e = digits_end(v, 0);
	if (e > 0 && at(v, e) == ':') {
		*epoch = sub(v, 0, e);
		*rest = sub(v, e + 1, v.n);
	} else {
		*epoch = (struct span){"0", 1};
		*rest = v;
	}
}

/* upstream[-revision], split at the last '-'; revision "" when absent. */
static void split_revision(struct span v, struct span *up, struct span *rev)
{
	size_t k = v.n;
	while (k > 0 && v.p[k - 1] != '-')
		k--;
	if (k == 0) {
		*up = v;
		*rev = (struct span){"", 0};
	} else {
		*up = sub(v, 0, k - 1);
		*rev = sub(v, k, v.n);
	}
}

typedef int (*part_cmp_fn)(struct span, struct span);

/* Epoch, then version, then release/revision, each with cmp. */
static int evr_cmp(struct span a, struct span b, part_cmp_fn cmp)
{
	struct span ea, ra, eb, rb, ua, va, ub, vb;
	split_epoch(a, &ea, &ra);
	split_epoch(b, &eb, &rb);
	int c = num_cmp(ea, eb);
	if (c)
		return c;
	split_revision(ra, &ua, &va);
	split_revision(rb, &ub, &vb);
	c = cmp(ua, ub);
	return c ? c : cmp(va, vb);
}

/* ---- rpm (rpmvercmp from rpm's rpmio/rpmvercmp.c) ---- */

static bool rpm_skip(char c)
{
	return !is_digit(c) && !is_alpha(c) && c != '~' && c != '^';
}

static size_t alpha_end(struct span s, size_t i)
{
	while (i < s.n && is_alpha(s.p[i]))
		i++;
	return i;
}

/* "~" sorts before everything (even the end), "^" after the end only. */
static int rpm_marker(char ca, char cb, bool *handled)
{
	*handled = true;
	if (ca == '~' || cb == '~') {
		if (ca != cb)
			return ca == '~' ? -1 : 1;
		return 0;
	}
	if (ca == '^' || cb == '^') {
		if (!ca || !cb)
			return ca ? 1 : -1;
		if (ca != cb)
			return ca == '^' ? -1 : 1;
		return 0;
	}
	*handled = false;
	return 0;
}

static int rpm_vercmp(struct span a, struct span b)
{
	size_t i = 0, j = 0;
	for (;;) {
		while (i < a.n && rpm_skip(a.p[i]))
			i++;
		while (j < b.n && rpm_skip(b.p[j]))
			j++;
		char ca = at(a, i), cb = at(b, j);
		bool handled;
		int c = rpm_marker(ca, cb, &handled);
		if (handled) {
			if (c)
				return c;
			i++, j++;
			continue;
		}
		if (!ca || !cb)
			return ca ? 1 : (cb ? -1 : 0);
		bool num = is_digit(ca);
		size_t ie = num ? digits_end(a, i) : alpha_end(a, i);
		size_t je = num ? digits_end(b, j) : alpha_end(b, j);
		if (je == j) /* different kinds: a number is newer than letters */
			return num ? 1 : -1;
		c = num ? num_cmp(sub(a, i, ie), sub(b, j, je))
			: bytes_cmp(sub(a, i, ie), sub(b, j, je), false);
		if (c)
			return c;
		i = ie, j = je;
	}
}

/* ---- apk (apk-tools' version.c token order) ---- */

/* Ranks: a pre-release suffix < end < revision < suffix number < post-release suffix < letter <
 * number. */
enum { APK_PRE, APK_END, APK_REST, APK_REV, APK_SUFNO, APK_POST, APK_LETTER, APK_DIGIT };

static const char *const apk_pre[] = {"alpha", "beta", "pre", "rc"};
static const char *const apk_post[] = {"cvs", "svn", "git", "hg", "p"};

static int suffix_index(struct span name, const char *const *list, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (strlen(list[k]) == name.n && memcmp(list[k], name.p, name.n) == 0)
			return (int)k;
	return -1;
}

/* "_name": a known suffix token, or rank APK_REST when unknown. */
static struct tok apk_suffix(struct span s, size_t *i)
{
	struct tok t = {.rank = APK_REST};
	size_t e = *i + 1;
	while (e < s.n && s.p[e] >= 'a' && s.p[e] <= 'z')
		e++;
	struct span name = sub(s, *i + 1, e);
	int k = suffix_index(name, apk_pre, sizeof(apk_pre) / sizeof(apk_pre[0]));
	if (k >= 0) {
		t.rank = APK_PRE, t.val = k;
	} else if ((k = suffix_index(name, apk_post, sizeof(apk_post) / sizeof(apk_post[0]))) >=
		   0) {
		t.rank = APK_POST, t.val = k;
	} else {
		t.text = sub(s, *i, s.n);
		*i = s.n;
		return t;
	}
	*i = e;
	return t;
}

static struct tok apk_next(struct span s, size_t *i, int prev)
{
	struct tok t = {.rank = APK_END, .num = true};
	size_t b = *i;
	char c = at(s, b);
	if (b >= s.n)
		return t;
	if (c == '.' && is_digit(at(s, b + 1)))
		c = s.p[++b];
	if (is_digit(c)) {
		t.rank = (prev == APK_PRE || prev == APK_POST) ? APK_SUFNO : APK_DIGIT;
		*i = digits_end(s, b);
		t.text = sub(s, b, *i);
		return t;
	}
	if (c >= 'a' && c <= 'z' && prev == APK_DIGIT && !is_alpha(at(s, b + 1))) {
		t.rank = APK_LETTER, t.val = c, *i = b + 1;
		return t;
	}
	if (c == '_')
		return apk_suffix(s, i);
	if (c == '-' && at(s, b + 1) == 'r' && is_digit(at(s, b + 2))) {
		t.rank = APK_REV;
		*i = digits_end(s, b + 2);
		t.text = sub(s, b + 2, *i);
		return t;
	}
	t.rank = APK_REST, t.num = false,
	t.text = sub(s, b, s.n); /* not apk syntax: compared bytewise */
	*i = s.n;
	return t;
}

static int apk_cmp(struct span a, struct span b)
{
	size_t i = 0, j = 0;
	int pa = APK_END, pb = APK_END;
	for (;;) {
		struct tok x = apk_next(a, &i, pa), y = apk_next(b, &j, pb);
		int c = tok_cmp(&x, &y);
		if (c || x.rank == APK_END)
			return c;
		pa = x.rank, pb = y.rank;
	}
}

/* ---- semver-ish (npm, Go, Python, Ruby, ...) ---- */

struct semver {
	bool ok;	  /* starts with a number (after an optional v) */
	struct span core; /* "1.2.3" */
	struct span pre;  /* after '-' (or letters right after the core); empty = release */
};

static struct semver semver_parse(struct span s)
{
	struct semver v = {0};
	size_t i = (at(s, 0) == 'v' || at(s, 0) == 'V') ? 1 : 0, b = i;
	if (!is_digit(at(s, i)))
		return v;
	while (is_digit(at(s, i))) {
		i = digits_end(s, i);
		if (at(s, i) == '.' && is_digit(at(s, i + 1)))
			i++;
	}
	v.ok = true;
	v.core = sub(s, b, i);
	size_t e = i;
	while (e < s.n && s.p[e] != '+')
		e++;
	if (at(s, i) == '-' || at(s, i) == '.')
		i++;
	v.pre = sub(s, i < e ? i : e, e);
	return v;
}

/* Dot-separated numbers, a missing one counting as 0. */
static int core_cmp(struct span a, struct span b)
{
	size_t i = 0, j = 0;
	while (i < a.n || j < b.n) {
		size_t ie = digits_end(a, i), je = digits_end(b, j);
		struct span x = ie > i ? sub(a, i, ie) : (struct span){"0", 1};
		struct span y = je > j ? sub(b, j, je) : (struct span){"0", 1};
		int c = num_cmp(x, y);
		if (c)
			return c;
		i = ie < a.n ? ie + 1 : ie;
		j = je < b.n ? je + 1 : je;
	}
	return 0;
}

static int semver_cmp(struct span a, struct span b)
{
	struct semver x = semver_parse(a), y = semver_parse(b);
	if (!x.ok || !y.ok)
		return x.ok == y.ok ? generic_cmp(a, b) : (x.ok ? 1 : -1);
	int c = core_cmp(x.core, y.core);
	if (c)
		return c;
	if (!x.pre.n || !y.pre.n)
		return x.pre.n == y.pre.n ? 0 : (x.pre.n ? -1 : 1);
	return generic_cmp(x.pre, y.pre);
}

/* ---- Maven-ish (ComparableVersion, flattened) ---- */

enum {
	MVN_ALPHA = 1,
	MVN_BETA,
	MVN_MILESTONE,
	MVN_RC,
	MVN_SNAPSHOT,
	MVN_END,
	MVN_SP,
	MVN_OTHER,
	MVN_NUM
};

static bool mvn_sep(char c)
{
	return c == '.' || c == '-' || c == '_';
}

static int mvn_qualifier(struct span q, bool before_digit)
{
	static const struct {
		const char *name;
		int rank;
	} known[] = {
	    {"alpha", MVN_ALPHA}, {"beta", MVN_BETA}, {"milestone", MVN_MILESTONE},
	    {"rc", MVN_RC},	  {"cr", MVN_RC},     {"snapshot", MVN_SNAPSHOT},
	    {"ga", MVN_END},	  {"final", MVN_END}, {"release", MVN_END},
	    {"sp", MVN_SP},
	};
	if (q.n == 1 && before_digit) {
		char c = (char)(q.p[0] | 0x20);
		if (c == 'a' || c == 'b' || c == 'm')
			return c == 'a' ? MVN_ALPHA : (c == 'b' ? MVN_BETA : MVN_MILESTONE);
	}
	for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
		if (strlen(known[k].name) == q.n && strncasecmp(known[k].name, q.p, q.n) == 0)
			return known[k].rank;
	return MVN_OTHER;
}

/* One raw item: a digit run or a run of other non-separator bytes. */
static struct tok mvn_raw(struct span s, size_t *i)
{
	struct tok t = {.rank = MVN_END};
	size_t b = *i;
	while (b < s.n && mvn_sep(s.p[b]))
		b++;
	if (b >= s.n) {
		*i = b;
		return t;
	}
	size_t e = b;
	if (is_digit(s.p[b])) {
		e = digits_end(s, b);
		t.rank = MVN_NUM, t.num = true;
	} else {
		while (e < s.n && !is_digit(s.p[e]) && !mvn_sep(s.p[e]))
			e++;
		t.rank = mvn_qualifier(sub(s, b, e), is_digit(at(s, e)));
		t.fold = true;
		t.val = t.rank == MVN_END; /* marks "ga", "final", "release" */
		if (t.rank != MVN_OTHER) {
			*i = e; /* known qualifiers compare by rank alone ("cr" = "rc") */
			return t;
		}
	}
	t.text = sub(s, b, e);
	*i = e;
	return t;
}

static bool mvn_zero(const struct tok *t)
{
	return t->rank == MVN_NUM && num_cmp(t->text, (struct span){"0", 1}) == 0;
}

struct mvn_iter {
	struct span s;
	size_t i;
	size_t zeros; /* zeros still to return before the number that ended their run */
};

/*
 * Next significant item: release qualifiers vanish, and so does a run of
 * zeros that ends at a qualifier or at the end (1.0-rc1 = 1-rc1).
 */
static struct tok mvn_next(struct mvn_iter *it)
{
	static const struct tok zero = {.rank = MVN_NUM, .num = true, .text = {"0", 1}};
	if (it->zeros) {
		it->zeros--;
		return zero;
	}
	for (;;) {
		struct tok t = mvn_raw(it->s, &it->i);
		if (t.rank == MVN_END && t.val)
			continue; /* "ga", "final", "release" */
		if (!mvn_zero(&t))
			return t;
		size_t run = 1, before = it->i;
		struct tok u = mvn_raw(it->s, &it->i);
		while (mvn_zero(&u) || (u.rank == MVN_END && u.val)) {
			run += mvn_zero(&u);
			before = it->i;
			u = mvn_raw(it->s, &it->i);
		}
		it->i = before; /* u is read again by the next call */
		if (u.rank == MVN_NUM) {
			it->zeros = run - 1;
			return zero;
		}
	}
}

static int maven_cmp(struct span a, struct span b)
{
	struct mvn_iter x = {a, 0, 0}, y = {b, 0, 0};
	for (;;) {
		struct tok p = mvn_next(&x), q = mvn_next(&y);
		int c = tok_cmp(&p, &q);
		if (c || (p.rank == MVN_END && q.rank == MVN_END))
			return c;
	}
}

/* ---- dispatch ---- */

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* The list is lower case; the first-byte test keeps the hot path (a sort's compare) cheap. */
static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (lower(s[0]) == (*list)[0] && strcasecmp(s, *list) == 0)
			return true;
	return false;
}

static enum vkind kind_of(const char *type)
{
	static const char *const deb[] = {"deb", "debian", "ubuntu", "dpkg", NULL};
	static const char *const rpm[] = {
	    "rpm",	 "redhat", "rhel",	  "centos",	"rocky",  "alma",
	    "almalinux", "oracle", "amazon",	  "fedora",	"photon", "suse",
	    "opensuse",	 "sles",   "cbl-mariner", "azurelinux", NULL};
	static const char *const apk[] = {"apk", "alpine", "wolfi", "chainguard", NULL};
	static const char *const mvn[] = {"java-archive", "jar", "maven", "pom", "gradle", NULL};
	static const char *const gen[] = {"", "binary", "generic", "unknown", NULL};
	if (!type || in_list(type, gen))
		return VK_GENERIC;
	if (in_list(type, deb))
		return VK_DEB;
	if (in_list(type, rpm))
		return VK_RPM;
	if (in_list(type, apk))
		return VK_APK;
	if (in_list(type, mvn))
		return VK_MAVEN;
	return VK_SEMVER;
}

static int cmp_kind(enum vkind k, struct span a, struct span b)
{
	switch (k) {
	case VK_DEB: return evr_cmp(a, b, dpkg_verrevcmp);
	case VK_RPM: return evr_cmp(a, b, rpm_vercmp);
	case VK_APK: return apk_cmp(a, b);
	case VK_MAVEN: return maven_cmp(a, b);
	case VK_SEMVER: return semver_cmp(a, b);
	case VK_GENERIC: break;
	}
	return generic_cmp(a, b);
}

int scan_version_cmp(const char *type, const char *a, const char *b)
{
	return cmp_kind(kind_of(type), span_of(a), span_of(b));
}

/* ---- picking a fix ---- */

/* A single version: not empty, not a range or list, with a digit somewhere. */
static bool fix_usable(const char *v)
{
	if (!v || !*v || strchr("<>=!~^*", v[0]))
		return false;
	if (strpbrk(v, " \t,|"))
		return false;
	return strpbrk(v, "0123456789") != NULL;
}

struct line {
	struct span epoch, major;
};

/* The epoch (deb/rpm, "0" when absent) and the first number of the upstream version. */
static struct line line_of(enum vkind k, const char *v)
{
	struct span s = span_of(v), rest = s;
	struct line l = {{"0", 1}, {"", 0}};
	if (k == VK_DEB || k == VK_RPM)
		split_epoch(s, &l.epoch, &rest);
	size_t i = 0;
	while (i < rest.n && !is_digit(rest.p[i]))
		i++;
	l.major = sub(rest, i, digits_end(rest, i));
	return l;
}

static bool same_line(struct line a, struct line b)
{
	return a.major.n && b.major.n && num_cmp(a.epoch, b.epoch) == 0 &&
	       num_cmp(a.major, b.major) == 0;
}

const char *scan_version_pick_fix(const char *type, const char *installed, const char *const *fixed,
				  size_t n)
{
	enum vkind k = kind_of(type);
	struct span inst = span_of(installed);
	struct line il = line_of(k, installed);
	const char *best_line = NULL, *best_any = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *f = fixed[i];
		if (!fix_usable(f) || cmp_kind(k, span_of(f), inst) <= 0)
			continue;
		if (!best_any || cmp_kind(k, span_of(f), span_of(best_any)) < 0)
			best_any = f;
		if (same_line(il, line_of(k, f)) &&
		    (!best_line || cmp_kind(k, span_of(f), span_of(best_line)) < 0))
			best_line = f;
	}
	return best_line ? best_line : best_any;
}
