/* scandb.c — see scandb.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jsonx.h"
#include "core/timeutil.h"
#include "scan/scandb.h"

/* Runs a read whose row callback appends to a new JSON array; *out gets the array. */
static int read_list(struct store *s, const char *tenant, const char *sql,
		     const struct store_arg *args, size_t nargs, store_row_fn fn, json_t **out)
{
	json_t *list = json_array();
	int rc = list ? store_read(s, tenant, sql, args, nargs, fn, list) : ODX_ENOMEM;
	if (rc < 0) {
		json_decref(list);
		return rc;
	}
	*out = list;
	return 0;
}

int scandb_create(struct store *s, const char *tenant, const char *image, const char *trigger,
		  const char *actor, char id[static ID_MAX_LEN])
{
	char made[ID_MAX_LEN];
	int rc = random_id(SCANDB_ID_PREFIX, made);
	if (rc < 0)
		return rc;
	rc = store_write(s, tenant,
			 "INSERT INTO scans (id, image, status, trigger, created_by, created_at) "
			 "VALUES (?, ?, 'queued', ?, ?, ?)",
			 STORE_ARGS(S_TEXT(made), S_TEXT(image), S_TEXT(trigger), S_TEXT(actor),
				    S_INT(time_now_ns())));
	if (rc < 0)
		return rc;
	memcpy(id, made, sizeof(made));
	return 0;
}

int scandb_start(struct store *s, const char *tenant, const char *id)
{
	int rc = store_write(s, tenant,
			     "UPDATE scans SET status = 'running' WHERE id = ? AND status = 'queued'",
			     STORE_ARGS(S_TEXT(id)));
	return rc < 0 ? rc : rc == 0 ? ODX_ECONFLICT : 0;
}

static int read_json_col(struct store_stmt *q, void *arg)
{
	json_t **out = arg;
	json_decref(*out);
	*out = json_loads(store_col_text(q, 0), 0, NULL);
	return *out ? 0 : ODX_ECORRUPT;
}

static int copy_id(struct store_stmt *q, void *arg)
{
	store_col_copy(q, 0, arg, ID_MAX_LEN);
	return 0;
}

/* {"previous_scan_id", "new", "fixed", "unchanged"} against the image's previous completed scan. */
static int make_diff(struct store_tx *tx, const char *id, const json_t *findings, char **out)
{
	char prev[ID_MAX_LEN] = "";
	int rc = store_each(tx,
			    "SELECT p.id FROM scans p JOIN scans c ON c.image = p.image "
			    "WHERE c.id = ? AND p.status = 'completed' AND p.seq < c.seq "
			    "ORDER BY p.seq DESC LIMIT 1",
			    STORE_ARGS(S_TEXT(id)), copy_id, prev);
	if (rc < 0)
		return rc;
	*out = NULL;
	if (!prev[0])
		return 0;
	json_t *result = NULL;
	rc = store_each(tx, "SELECT result FROM scans WHERE id = ?", STORE_ARGS(S_TEXT(prev)),
			read_json_col, &result);
	if (rc < 0)
		return rc;
	json_t *d = scandb_diff(json_object_get(result, "findings"), findings);
	json_decref(result);
	if (!d || json_object_set_new(d, "previous_scan_id", json_string(prev)) < 0) {
		json_decref(d);
		return ODX_ENOMEM;
	}
	*out = jsonx_dump(d);
	json_decref(d);
	return *out ? 0 : ODX_ENOMEM;
}

int scandb_finish(struct store *s, const char *tenant, const char *id, const char *digest,
		  const json_t *engines, const json_t *summary, const json_t *result,
		  const char *error)
{
	char *e = jsonx_dump(engines), *sum = summary ? jsonx_dump(summary) : NULL;
	char *res = result ? jsonx_dump(result) : NULL, *diff = NULL;
	struct store_tx *tx = NULL;
	int rc = !e || (summary && !sum) || (result && !res) ? ODX_ENOMEM : 0;
	if (rc == 0)
		rc = store_tx_begin(s, tenant, STORE_WRITE, &tx);
	if (rc == 0 && result)
		rc = make_diff(tx, id, json_object_get(result, "findings"), &diff);
	if (rc == 0)
		rc = store_exec(tx,
				"UPDATE scans SET status = ?, digest = ?, completed_at = ?, error = ?, "
				"engines = ?, summary = ?, result = ?, diff = ? WHERE id = ?",
				STORE_ARGS(S_TEXT(result ? "completed" : "failed"),
					   digest ? S_TEXT(digest) : S_NULL, S_INT(time_now_ns()),
					   error ? S_TEXT(error) : S_NULL, S_TEXT(e),
					   sum ? S_TEXT(sum) : S_NULL, res ? S_TEXT(res) : S_NULL,
					   diff ? S_TEXT(diff) : S_NULL, S_TEXT(id)));
	if (rc == 0)
		rc = ODX_ENOTFOUND;
	if (tx)
		rc = store_tx_end(tx, rc > 0 ? 0 : rc);
	free(e);
	free(sum);
	free(res);
	free(diff);
	return rc;
}

/* ---- reading scans ------------------------------------------------------------------------ */

#define SCAN_COLS                                                                              \
	"SELECT id, image, digest, status, trigger, created_by, created_at, completed_at, error, " \
	"engines, summary, diff FROM scans "

static int set_time(json_t *o, const char *key, struct store_stmt *q, int col)
{
	char t[TIME_RFC3339_LEN];
	if (store_col_is_null(q, col))
		return json_object_set_new(o, key, json_null());
	time_format_rfc3339(store_col_int(q, col), t);
	return json_object_set_new(o, key, json_string(t));
}

static int set_text(json_t *o, const char *key, struct store_stmt *q, int col)
{
	return json_object_set_new(o, key,
				   store_col_is_null(q, col) ? json_null()
							     : json_string(store_col_text(q, col)));
}

/* A stored JSON column, or null; ODX_ECORRUPT when it does not parse. */
static int set_json(json_t *o, const char *key, struct store_stmt *q, int col)
{
	if (store_col_is_null(q, col))
		return json_object_set_new(o, key, json_null());
	json_t *v = json_loads(store_col_text(q, col), 0, NULL);
	return v ? json_object_set_new(o, key, v) : ODX_ECORRUPT;
}

/* The scan's summary fields (no findings) as a new object. */
static int scan_of_row(struct store_stmt *q, json_t **out)
{
	json_t *o = json_object();
	if (!o)
		return ODX_ENOMEM;
	int rc = json_object_set_new(o, "id", json_string(store_col_text(q, 0)));
	rc = rc ? rc : set_text(o, "image", q, 1);
	rc = rc ? rc : set_text(o, "digest", q, 2);
	rc = rc ? rc : set_text(o, "status", q, 3);
	rc = rc ? rc : set_text(o, "trigger", q, 4);
	rc = rc ? rc : set_text(o, "created_by", q, 5);
	rc = rc ? rc : set_time(o, "created_at", q, 6);
	rc = rc ? rc : set_time(o, "completed_at", q, 7);
	rc = rc ? rc : set_text(o, "error", q, 8);
	rc = rc ? rc : set_json(o, "engines", q, 9);
	rc = rc ? rc : set_json(o, "summary", q, 10);
	rc = rc ? rc : set_json(o, "diff", q, 11);
	if (rc) {
		json_decref(o);
		return rc < 0 ? rc : ODX_ENOMEM;
	}
	*out = o;
	return 0;
}

static int append_scan(struct store_stmt *q, void *arg)
{
	json_t *o;
	int rc = scan_of_row(q, &o);
	if (rc < 0)
		return rc;
	/* A list shows how much changed, not every changed finding. */
	json_t *diff = json_object_get(o, "diff");
	if (json_is_object(diff)) {
		json_object_set_new(diff, "new", json_integer((json_int_t)json_array_size(
						     json_object_get(diff, "new"))));
		json_object_set_new(diff, "fixed", json_integer((json_int_t)json_array_size(
						       json_object_get(diff, "fixed"))));
	}
	return json_array_append_new(arg, o) == 0 ? 0 : ODX_ENOMEM;
}

static int one_scan(struct store_stmt *q, void *arg)
{
	return scan_of_row(q, arg);
}

/* Adds result's image_info, findings and recommendations to the scan object. */
static int add_result(struct store_stmt *q, void *arg)
{
	if (store_col_is_null(q, 0))
		return 0;
	json_t *result = json_loads(store_col_text(q, 0), 0, NULL);
	if (!result)
		return ODX_ECORRUPT;
	int rc = json_object_update(arg, result) == 0 ? 0 : ODX_ENOMEM;
	json_decref(result);
	return rc;
}

int scandb_get(struct store *s, const char *tenant, const char *id, json_t **out)
{
	struct store_tx *tx;
	json_t *o = NULL;
	int rc = store_tx_begin(s, tenant, STORE_READ, &tx);
	if (rc < 0)
		return rc;
	rc = store_each(tx, SCAN_COLS "WHERE id = ?", STORE_ARGS(S_TEXT(id)), one_scan, &o);
	if (rc == 0)
		rc = ODX_ENOTFOUND;
	if (rc > 0)
		rc = store_each(tx, "SELECT result FROM scans WHERE id = ?", STORE_ARGS(S_TEXT(id)),
				add_result, o);
	store_tx_abort(tx);
	if (rc < 0) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return 0;
}

int scandb_list(struct store *s, const char *tenant, const char *after, int limit,
		const char *image, json_t **items)
{
	/* The cursor is the last id shown: older scans follow it. */
	return read_list(s, tenant,
			 SCAN_COLS "WHERE (? = '' OR seq < (SELECT seq FROM scans WHERE id = ?)) "
				   "AND (? IS NULL OR image = ?) ORDER BY seq DESC LIMIT ?",
			 STORE_ARGS(S_TEXT(after), S_TEXT(after), image ? S_TEXT(image) : S_NULL,
				    image ? S_TEXT(image) : S_NULL, S_INT(limit + 1)),
			 append_scan, items);
}

struct latest {
	json_t *findings;
	char *id;
};

static int read_latest(struct store_stmt *q, void *arg)
{
	struct latest *l = arg;
	json_t *result = json_loads(store_col_text(q, 1), 0, NULL);
	json_t *f = json_object_get(result, "findings");
	if (!json_is_array(f)) {
		json_decref(result);
		return ODX_ECORRUPT;
	}
	store_col_copy(q, 0, l->id, ID_MAX_LEN);
	l->findings = json_incref(f);
	json_decref(result);
	return 0;
}

int scandb_latest(struct store *s, const char *tenant, const char *image, json_t **findings,
		  char id[static ID_MAX_LEN])
{
	char made[ID_MAX_LEN];
	struct latest l = {NULL, made};
	const char *at = strchr(image, '@');
	int rc = store_read_one(s, tenant,
				"SELECT id, result FROM scans WHERE (image = ? OR digest = ?) AND "
				"status = 'completed' ORDER BY seq DESC LIMIT 1",
				STORE_ARGS(S_TEXT(image), at ? S_TEXT(at + 1) : S_NULL), read_latest,
				&l);
	if (rc < 0)
		return rc;
	*findings = l.findings;
	memcpy(id, made, sizeof(made));
	return 0;
}

struct age {
	int64_t created_ns;
	int in_flight;
};

static int read_age(struct store_stmt *q, void *arg)
{
	struct age *a = arg;
	a->created_ns = store_col_is_null(q, 0) ? -1 : store_col_int(q, 0);
	a->in_flight = (int)store_col_int(q, 1);
	return 0;
}

int scandb_age(struct store *s, const char *tenant, const char *image, int64_t now_ns,
	       int64_t *age_s, int *in_flight)
{
	struct age a = {-1, 0};
	int rc = store_read(s, tenant,
			    "SELECT MAX(created_at), COALESCE(SUM(status IN ('queued','running')), 0) "
			    "FROM scans WHERE image = ?",
			    STORE_ARGS(S_TEXT(image)), read_age, &a);
	if (rc < 0)
		return rc;
	*age_s = a.created_ns < 0 ? -1 : (now_ns - a.created_ns) / NSEC_PER_SEC;
	*in_flight = a.in_flight;
	return 0;
}

static int append_unfinished(struct store_stmt *q, void *arg)
{
	return json_array_append_new(arg, json_pack("{s:s, s:s}", "id", store_col_text(q, 0),
						    "image", store_col_text(q, 1)))
		   ? ODX_ENOMEM
		   : 0;
}

int scandb_requeue(struct store *s, const char *tenant, json_t **out)
{
	int rc = store_write(s, tenant, "UPDATE scans SET status = 'queued' WHERE status = 'running'",
			     STORE_NOARGS);
	if (rc < 0)
		return rc;
	return read_list(s, tenant,
			 "SELECT id, image FROM scans WHERE status = 'queued' ORDER BY seq",
			 STORE_NOARGS, append_unfinished, out);
}

/* ---- diff and reload ---------------------------------------------------------------------- */

/* A finding's identity across scans: its id and its package at its version. */
static char *finding_key(const json_t *f)
{
	const json_t *p = json_object_get(f, "package");
	const char *id = json_string_value(json_object_get(f, "id"));
	const char *name = json_string_value(json_object_get(p, "name"));
	const char *version = json_string_value(json_object_get(p, "version"));
	char *k = NULL;
	if (asprintf(&k, "%s\x1f%s\x1f%s", id ? id : "", name ? name : "", version ? version : "") <
	    0)
		return NULL;
	return k;
}

/* The findings as a set {key: finding}. */
static json_t *finding_set(const json_t *findings)
{
	json_t *set = json_object();
	size_t i;
	json_t *f;
	json_array_foreach(findings, i, f)
	{
		char *k = finding_key(f);
		if (!set || !k || json_object_set(set, k, f) < 0) {
			free(k);
			json_decref(set);
			return NULL;
		}
		free(k);
	}
	return set;
}

/* What diff lists of a finding: enough to name it. */
static json_t *brief(const json_t *f)
{
	const json_t *p = json_object_get(f, "package");
	return json_pack("{s:O, s:{s:O, s:O}, s:O}", "id", json_object_get(f, "id"), "package",
			 "name", json_object_get(p, "name"), "version",
			 json_object_get(p, "version"), "severity", json_object_get(f, "severity"));
}

/* Appends brief(v) for each v of a not in b. */
static int only_in(json_t *a, json_t *b, json_t *out, size_t *both)
{
	const char *k;
	json_t *v;
	json_object_foreach(a, k, v)
	{
		if (json_object_get(b, k)) {
			if (both)
				(*both)++;
		} else if (json_array_append_new(out, brief(v)) < 0) {
			return ODX_ENOMEM;
		}
	}
	return 0;
}

json_t *scandb_diff(const json_t *previous, const json_t *current)
{
	json_t *prev = finding_set(previous), *cur = finding_set(current);
	json_t *added = json_array(), *fixed = json_array(), *d = NULL;
	size_t unchanged = 0;
	if (prev && cur && added && fixed && only_in(cur, prev, added, &unchanged) == 0 &&
	    only_in(prev, cur, fixed, NULL) == 0)
		d = json_pack("{s:O, s:O, s:I}", "new", added, "fixed", fixed, "unchanged",
			      (json_int_t)unchanged);
	json_decref(prev);
	json_decref(cur);
	json_decref(added);
	json_decref(fixed);
	return d;
}

static const char *str_of(struct scan_report *r, const json_t *o, const char *key)
{
	return scan_strdup(r, json_string_value(json_object_get(o, key)));
}

/* A JSON array of strings into r's arena. */
static int strings_of(struct scan_report *r, const json_t *a, const char ***out, size_t *n)
{
	size_t len = json_array_size(a);
	*n = 0;
	*out = NULL;
	if (!len)
		return 0;
	const char **v = scan_alloc(r, len * sizeof(*v));
	if (!v || len > SCAN_MAX_LIST)
		return v ? ODX_ECORRUPT : ODX_ENOMEM;
	for (size_t i = 0; i < len; i++)
		if (!(v[i] = scan_strdup(r, json_string_value(json_array_get(a, i)))))
			return ODX_ECORRUPT;
	*out = v;
	*n = len;
	return 0;
}

/* What policies read of a stored finding: identity, package, severity, engines, fixes. */
static int load_one(struct scan_report *r, const json_t *j, struct scan_finding *f)
{
	const json_t *p = json_object_get(j, "package");
	f->id = str_of(r, j, "id");
	f->pkg.name = str_of(r, p, "name");
	f->pkg.version = str_of(r, p, "version");
	f->pkg.type = str_of(r, p, "type");
	f->pkg.purl = str_of(r, p, "purl");
	f->pkg.source = str_of(r, p, "source");
	int sev = scan_severity_parse(json_string_value(json_object_get(j, "severity")));
	if (!f->id || !f->pkg.name || !f->pkg.version || sev < 0)
		return ODX_ECORRUPT;
	f->severity = (enum scan_severity)sev;
	f->severity_source = str_of(r, j, "severity_source");
	f->kev = json_is_true(json_object_get(j, "kev"));
	f->cpe_match = json_is_true(json_object_get(j, "cpe_match"));
	const json_t *epss = json_object_get(j, "epss");
	f->epss = json_is_number(epss) ? json_number_value(epss) : -1;
	f->epss_percentile = -1;
	size_t i;
	const json_t *e;
	json_array_foreach(json_object_get(j, "engines"), i, e)
	{
		const char *name = json_string_value(e);
		for (int k = 0; name && k < SCAN_ENGINE_COUNT; k++)
			if (strcmp(name, scan_engine_name((enum scan_engine)k)) == 0)
				f->engines |= SCAN_ENGINE_BIT(k);
	}
	int rc = strings_of(r, json_object_get(j, "aliases"), &f->aliases, &f->naliases);
	if (rc == 0)
		rc = strings_of(r, json_object_get(j, "fixed_versions"), &f->fixed_versions,
				&f->nfixed);
	return rc;
}

int scandb_load_findings(const json_t *findings, struct scan_report **out)
{
	size_t n = json_array_size(findings);
	struct scan_report *r = scan_report_new();
	if (!r)
		return ODX_ENOMEM;
	int rc = n > SCAN_MAX_FINDINGS ? ODX_ECORRUPT : 0;
	if (rc == 0 && n && !(r->findings = scan_alloc(r, n * sizeof(*r->findings))))
		rc = ODX_ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = load_one(r, json_array_get(findings, i), &r->findings[i]);
	if (rc < 0) {
		scan_report_free(r);
		return rc;
	}
	r->nfindings = n;
	*out = r;
	return 0;
}

/* ---- policies, settings, overrides -------------------------------------------------------- */

int scandb_policy_put(struct store *s, const char *tenant, const char *name, const json_t *body,
		      const char *actor, bool create_only, int *created)
{
	char *text = jsonx_dump(body);
	struct store_tx *tx = NULL;
	int64_t now = time_now_ns();
	int rc = text ? store_tx_begin(s, tenant, STORE_WRITE, &tx) : ODX_ENOMEM;
	int n = 0;
	if (rc == 0)
		rc = n = store_each(tx, "SELECT name FROM scan_policies WHERE name = ?",
				    STORE_ARGS(S_TEXT(name)), NULL, NULL);
	if (rc > 0 && create_only)
		rc = ODX_ECONFLICT;
	int count = 0;
	if (rc >= 0 && n == 0)
		rc = count = store_each(tx, "SELECT name FROM scan_policies", STORE_NOARGS, NULL,
					NULL);
	if (rc >= 0 && n == 0 && count >= SCANDB_POLICIES_MAX)
		rc = ODX_EQUOTA;
	if (rc >= 0)
		rc = store_exec(tx,
				"INSERT INTO scan_policies (name, body, updated_by, created_at, "
				"updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
				"body = excluded.body, updated_by = excluded.updated_by, "
				"updated_at = excluded.updated_at",
				STORE_ARGS(S_TEXT(name), S_TEXT(text), S_TEXT(actor), S_INT(now),
					   S_INT(now)));
	if (tx)
		rc = store_tx_end(tx, rc < 0 ? rc : 0);
	free(text);
	if (rc == 0)
		*created = n == 0;
	return rc;
}

static int append_policy(struct store_stmt *q, void *arg)
{
	json_t *p = json_loads(store_col_text(q, 0), 0, NULL);
	if (!p)
		return ODX_ECORRUPT;
	return json_array_append_new(arg, p) ? ODX_ENOMEM : 0;
}

#define POLICY_COLS "SELECT body FROM scan_policies "

int scandb_policy_get(struct store *s, const char *tenant, const char *name, json_t **out)
{
	json_t *list = json_array();
	int rc = list ? store_read_one(s, tenant, POLICY_COLS "WHERE name = ?",
				       STORE_ARGS(S_TEXT(name)), append_policy, list)
		      : ODX_ENOMEM;
	if (rc == 0)
		*out = json_incref(json_array_get(list, 0));
	json_decref(list);
	return rc;
}

int scandb_policy_list(struct store *s, const char *tenant, json_t **items)
{
	return read_list(s, tenant, POLICY_COLS "ORDER BY name", STORE_NOARGS, append_policy,
			 items);
}

int scandb_policy_delete(struct store *s, const char *tenant, const char *name)
{
	int rc = store_write(s, tenant, "DELETE FROM scan_policies WHERE name = ?",
			     STORE_ARGS(S_TEXT(name)));
	return rc < 0 ? rc : rc == 0 ? ODX_ENOTFOUND : 0;
}

static int read_interval(struct store_stmt *q, void *arg)
{
	*(int64_t *)arg = store_col_int(q, 0);
	return 0;
}

int scandb_settings_get(struct store *s, const char *tenant, int64_t *rescan_interval_s)
{
	int64_t v = SCANDB_RESCAN_DEFAULT_S;
	int rc = store_read(s, tenant, "SELECT rescan_interval_s FROM scan_settings WHERE id = 1",
			    STORE_NOARGS, read_interval, &v);
	if (rc < 0)
		return rc;
	*rescan_interval_s = v;
	return 0;
}

int scandb_settings_put(struct store *s, const char *tenant, int64_t rescan_interval_s)
{
	int rc = store_write(s, tenant,
			     "INSERT INTO scan_settings (id, rescan_interval_s) VALUES (1, ?) "
			     "ON CONFLICT (id) DO UPDATE SET rescan_interval_s = excluded.rescan_interval_s",
			     STORE_ARGS(S_INT(rescan_interval_s)));
	return rc < 0 ? rc : 0;
}

int scandb_override_add(struct store *s, const char *tenant, const char *deployment,
			const char *image, const char *actor, const char *justification,
			const json_t *verdict, char id[static ID_MAX_LEN])
{
	char made[ID_MAX_LEN];
	char *v = jsonx_dump(verdict);
	int rc = v ? random_id("ovr", made) : ODX_ENOMEM;
	if (rc == 0)
		rc = store_write(s, tenant,
				 "INSERT INTO scan_overrides (id, deployment, image, actor, "
				 "justification, verdict, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
				 STORE_ARGS(S_TEXT(made), S_TEXT(deployment), S_TEXT(image),
					    S_TEXT(actor), S_TEXT(justification), S_TEXT(v),
					    S_INT(time_now_ns())));
	free(v);
	if (rc < 0)
		return rc;
	memcpy(id, made, sizeof(made));
	return 0;
}
