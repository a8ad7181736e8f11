/*
 * model.h — the one finding model of the scanner (SPEC §7, docs/scanning.md).
 *
 * Trivy's and Grype's JSON reports are parsed (trivy.c, grype.c) into a
 * scan_report: the image it describes and one scan_finding per
 * (vulnerability, package, location) the engine listed. merge.c turns one or
 * two reports into a merged report of the same shape (engines = which
 * engines saw each finding). policy.c and recommend.c read merged reports.
 *
 * Memory: everything a report points to (strings, arrays, findings) lives in
 * the report's arena and goes with scan_report_free — no per-field frees, no
 * ownership puzzles. Strings are NUL-terminated UTF-8 (they come from
 * jansson, which refuses invalid UTF-8) and never NULL when documented as
 * "or """; optional ones are NULL when absent.
 *
 * Bounds (hostile reports): SCAN_MAX_FINDINGS findings per report,
 * SCAN_MAX_LIST items per list field, SCAN_MAX_STR bytes per string; a
 * report over a bound is refused (ODX_ETOOBIG), never truncated silently.
 */
#ifndef ODX_SCAN_MODEL_H
#define ODX_SCAN_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCAN_MAX_FINDINGS 200000
#define SCAN_MAX_LIST	  256
#define SCAN_MAX_STR	  65536
#define SCAN_MSG_LEN	  160
#define SCAN_JSON_DEPTH	  64 /* real reports nest 8 deep */
#define SCAN_MAX_REPORT	  ((size_t)256 << 20) /* bytes of one engine's JSON report */

/* Ordered: a higher value is more severe. Grype's "Negligible" keeps its own step. */
enum scan_severity {
	SCAN_SEV_UNKNOWN = 0,
	SCAN_SEV_NEGLIGIBLE,
	SCAN_SEV_LOW,
	SCAN_SEV_MEDIUM,
	SCAN_SEV_HIGH,
	SCAN_SEV_CRITICAL,
	SCAN_SEV_COUNT
};

/* The engines; a bit each in scan_finding.engines. */
enum scan_engine { SCAN_ENGINE_TRIVY = 0, SCAN_ENGINE_GRYPE = 1, SCAN_ENGINE_COUNT };
#define SCAN_ENGINE_BIT(e) (1u << (e))

/* Fix state, normalised (FORMATS.md §3.4). SCAN_FIX_NONE: the engine did not see it. */
enum scan_fix_state {
	SCAN_FIX_NONE = 0,
	SCAN_FIX_UNKNOWN,   /* Trivy unknown/missing, Grype unknown or "" */
	SCAN_FIX_FIXED,	    /* a fixed version exists */
	SCAN_FIX_AFFECTED,  /* Trivy affected/fix_deferred/under_investigation, Grype not-fixed */
	SCAN_FIX_WONT_FIX,  /* Trivy will_not_fix, Grype wont-fix */
	SCAN_FIX_EOL,	    /* Trivy end_of_life */
};

struct scan_cvss {
	const char *source;  /* "nvd", "ghsa", "redhat", ... or "" */
	const char *version; /* "2.0", "3.0", "3.1", "4.0" */
	const char *vector;  /* "CVSS:3.1/AV:N/..." or "" */
	double score;	     /* base score, -1 when absent */
};

struct scan_package {
	const char *name;    /* binary package name as the engine wrote it */
	const char *version; /* installed version, native format, epoch kept when known */
	const char *type;    /* "deb", "rpm", "apk", "npm", "java-archive"/"jar", "binary", ... */
	const char *purl;    /* as reported, or NULL */
	const char *key;     /* normalised identity (merge.c: scan_package_key), or NULL */
	const char *source;  /* source/upstream package (deb Source:, apk origin, src rpm), or NULL */
};

struct scan_finding {
	const char *id;	      /* primary id: the CVE when one is known, else the engine's id */
	const char **aliases; /* every id naming it (id included), sorted, unique */
	size_t naliases;
	struct scan_package pkg;
	const char **paths; /* where the package sits (Trivy PkgPath, Grype locations[].path) */
	size_t npaths;
	const char *layer; /* diff id of the layer holding the package, or NULL */
	const char *title; /* short text, or NULL */

	enum scan_severity severity;	      /* chosen: the highest seen */
	const char *severity_source;	      /* "trivy:debian", "grype:nvd:cpe", ... */
	enum scan_severity engine_severity[SCAN_ENGINE_COUNT]; /* per engine, when seen */
	const char *engine_severity_source[SCAN_ENGINE_COUNT]; /* Trivy SeveritySource, Grype namespace */

	struct scan_cvss *cvss;
	size_t ncvss;
	const char **fixed_versions; /* union, as written by the engines, unique */
	size_t nfixed;
	enum scan_fix_state fix_state[SCAN_ENGINE_COUNT];

	double epss;		/* 0..1, -1 when absent (Grype only) */
	double epss_percentile; /* 0..1, -1 when absent */
	bool kev;		/* CISA known exploited (Grype knownExploited) */
	bool cpe_match;		/* Grype matched only by CPE: lower confidence */

	const char **urls; /* data source and reference URLs, unique */
	size_t nurls;
	unsigned engines; /* SCAN_ENGINE_BIT()s of the engines that reported it */
};

/* What the report says of the scanned image. */
struct scan_image {
	const char *name;      /* as the user typed it (Trivy ArtifactName, Grype userInput) */
	const char *image_id;  /* "sha256:..." or NULL */
	const char **repo_digests; /* "name@sha256:..." */
	size_t nrepo_digests;
	const char *os_family;	/* "debian", "ubuntu", "alpine", ... or NULL */
	const char *os_version; /* "12.12" (Trivy) or "12" (Grype), or NULL */
	bool os_eol;		/* Trivy Metadata.OS.EOSL, or a Grype distro-eol alert */
	const char **entrypoint; /* image config Entrypoint then Cmd, argv order */
	size_t nentrypoint;
};

struct scan_arena;

struct scan_report {
	struct scan_arena *arena; /* owns everything below */
	unsigned engines;	  /* engines whose results are in it */
	const char *engine_version[SCAN_ENGINE_COUNT]; /* "0.69.1", or NULL */
	struct scan_image image;
	struct scan_finding *findings;
	size_t nfindings;
};

/* Counts of findings per severity (index: enum scan_severity). */
struct scan_counts {
	size_t by_severity[SCAN_SEV_COUNT];
	size_t total;
};

/* ---- arena (model.c) ---- */

/* New empty report with its own arena; NULL on allocation failure. Free with scan_report_free. */
struct scan_report *scan_report_new(void);
/* Frees the report and everything in its arena; NULL ok. */
void scan_report_free(struct scan_report *r);
/* n bytes from r's arena, zeroed, 16-byte aligned; NULL on failure or overflow. */
void *scan_alloc(struct scan_report *r, size_t n);
/* Copies s (len bytes, not necessarily NUL-terminated) into r's arena; NULL on failure. */
const char *scan_strndup(struct scan_report *r, const char *s, size_t len);
/* scan_strndup of a NUL-terminated string; NULL in, NULL out. */
const char *scan_strdup(struct scan_report *r, const char *s);
/* Bytes the arena holds (for the benchmark's memory figures). */
size_t scan_report_arena_bytes(const struct scan_report *r);

/* ---- names ---- */

/* "unknown", "negligible", "low", "medium", "high", "critical". */
const char *scan_severity_name(enum scan_severity s);
/* Case-insensitive parse of the names above; -1 when not one of them. */
int scan_severity_parse(const char *s);
/* "trivy", "grype". */
const char *scan_engine_name(enum scan_engine e);
/* "none", "unknown", "fixed", "affected", "wont_fix", "end_of_life". */
const char *scan_fix_state_name(enum scan_fix_state s);

/* ---- helpers shared by the parsers and merge (model.c) ---- */

/* Sorts v[0..n) by strcmp and drops repeats (the aliases invariant); returns the new n. */
size_t scan_strv_sort_unique(const char **v, size_t n);
/* Drops repeats from v[0..n), keeping the first of each in place order; returns the new n. */
size_t scan_strv_unique(const char **v, size_t n);
/*
 * Parses an engine's report text (core/jdoc.h: jansson is five times too
 * slow for reports of hundreds of MiB): at most SCAN_MAX_REPORT bytes (else
 * ODX_ETOOBIG), one JSON value nested at most SCAN_JSON_DEPTH deep,
 * duplicate keys refused (else ODX_EINVAL with the kind of error and its
 * byte offset in msg, never the input; ODX_ENOMEM). Free *out with jdoc_free.
 */
struct jdoc;
int scan_json_load(const char *buf, size_t len, struct jdoc **out, char msg[static SCAN_MSG_LEN]);

/* Counts of r's findings per chosen severity. */
void scan_report_count(const struct scan_report *r, struct scan_counts *out);

/*
 * The API's JSON for one finding / a whole report's image and findings
 * (docs/scanning.md lists the fields). New references; NULL on allocation failure.
 */
json_t *scan_finding_to_json(const struct scan_finding *f);
json_t *scan_image_to_json(const struct scan_image *img);
json_t *scan_counts_to_json(const struct scan_counts *c);

#endif
