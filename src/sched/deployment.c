/* deployment.c — see deployment.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "sched/deployment.h"

#define IMAGE_MAX 255
#define ENV_MAX 64
#define ENV_VALUE_MAX 4096
#define COMMAND_MAX 64
#define PATHS_MAX 8
#define PATH_MAX_LEN 255

/* ---- validation ------------------------------------------------------------ */

bool deploy_name_valid(const char *name)
{
	return name_validate(name, DEPLOY_NAME_MAX) == 0;
}

static bool in(char c, const char *set)
{
	return c && strchr(set, c);
}

/* One path component of a repository name: [a-z0-9]+ with . _ __ - between. */
static bool name_component_ok(const char *s, size_t n)
{
	if (n == 0 || !in(s[0], "abcdefghijklmnopqrstuvwxyz0123456789") ||
	    !in(s[n - 1], "abcdefghijklmnopqrstuvwxyz0123456789"))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!in(s[i], "abcdefghijklmnopqrstuvwxyz0123456789._-"))
			return false;
	return true;
}

/*
 * The Docker reference grammar, simplified: [host[:port]/]path[:tag][@sha256:64hex];
 * a first component with '.' or ':' (or "localhost") is the registry host.
 */
bool deploy_image_valid(const char *ref)
{
	size_t n = strlen(ref);
	if (n < 1 || n > IMAGE_MAX)
		return false;
	const char *digest = strchr(ref, '@');
	size_t body = digest ? (size_t)(digest - ref) : n;
	if (digest) {
		const char *d = digest + 1;
		if (strncmp(d, "sha256:", 7) != 0 || strlen(d + 7) != 64)
			return false;
		for (const char *h = d + 7; *h; h++)
			if (!in(*h, "0123456789abcdef"))
				return false;
	}
	/* the tag: after the last ':' that follows the last '/' */
	const char *slash = NULL;
	for (size_t i = 0; i < body; i++)
		if (ref[i] == '/')
			slash = ref + i;
	const char *colon = NULL;
	for (const char *c = slash ? slash : ref; c < ref + body; c++)
		if (*c == ':')
			colon = c;
	size_t path_end = colon ? (size_t)(colon - ref) : body;
	if (colon) {
		size_t tl = body - path_end - 1;
		if (tl < 1 || tl > 128 || !in(colon[1], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"))
			return false;
		for (size_t i = 1; i <= tl; i++)
			if (!in(colon[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"))
				return false;
	}
	size_t start = 0;
	const char *first_slash = memchr(ref, '/', path_end);
	if (first_slash) {
		size_t hl = (size_t)(first_slash - ref);
		bool host = memchr(ref, '.', hl) || memchr(ref, ':', hl) ||
			    (hl == 9 && strncmp(ref, "localhost", 9) == 0);
		if (host) {
			for (size_t i = 0; i < hl; i++)
				if (!in(ref[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:"))
					return false;
			start = hl + 1;
		}
	}
	for (size_t i = start; i <= path_end;) {
		const char *e = memchr(ref + i, '/', path_end - i);
		size_t len = e ? (size_t)(e - (ref + i)) : path_end - i;
		if (!name_component_ok(ref + i, len))
			return false;
		i += len + 1;
		if (!e)
			break;
	}
	return true;
}

static bool env_name_ok(const char *k)
{
	if (!in(k[0], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_") || strlen(k) > 128)
		return false;
	for (const char *c = k; *c; c++)
		if (!in(*c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789"))
			return false;
	return true;
}

static bool path_ok(const char *p)
{
	size_t n = strlen(p);
	if (n < 2 || n > PATH_MAX_LEN || p[0] != '/' || strstr(p, "//") || p[n - 1] == '/')
		return false;
	for (const char *s = p; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == ',' || *s == ':')
			return false;
	/* no "." or ".." components */
	for (const char *s = p; *s; s++)
		if (s[0] == '/' && s[1] == '.' && (s[2] == '/' || s[2] == '\0' ||
						   (s[2] == '.' && (s[3] == '/' || s[3] == '\0'))))
			return false;
	return true;
}

/* "uid[:gid]", numbers below 2^31. */
static bool user_ok(const char *u)
{
	size_t n = strlen(u), digits = 0;
	bool colon = false;
	if (n < 1 || n > 21)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (u[i] == ':' && !colon && digits) {
			colon = true;
			digits = 0;
		} else if (u[i] >= '0' && u[i] <= '9' && ++digits <= 10) {
			continue;
		} else {
			return false;
		}
	}
	return digits > 0;
}

static int fail(char msg[static JSONX_MSG_LEN], const char *what)
{
	snprintf(msg, JSONX_MSG_LEN, "%s", what);
	return ODX_EINVAL;
}

static bool int_in(json_t *v, int64_t lo, int64_t hi)
{
	return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

/* resources: every key optional, defaults filled in. */
static int resources_parse(json_t *r, json_t **out, char msg[static JSONX_MSG_LEN])
{
	json_t *cpu = NULL, *mem = NULL, *pids = NULL, *stor = NULL;
	if (jsonx_unpack(r, msg, "{s?o, s?o, s?o, s?o}", "cpu_millicores", &cpu, "memory_mb", &mem,
			 "pids", &pids, "storage_mb", &stor) < 0)
		return ODX_EINVAL;
	if (cpu && !int_in(cpu, 10, 64000))
		return fail(msg, "resources.cpu_millicores must be 10 to 64000");
	if (mem && !int_in(mem, 6, 1048576))
		return fail(msg, "resources.memory_mb must be 6 to 1048576");
	if (pids && !int_in(pids, 16, 4096))
		return fail(msg, "resources.pids must be 16 to 4096");
	if (stor && !int_in(stor, 0, 1048576))
		return fail(msg, "resources.storage_mb must be 0 to 1048576");
	*out = json_pack("{s:I, s:I, s:I, s:I}", "cpu_millicores",
			 cpu ? json_integer_value(cpu) : 250, "memory_mb",
			 mem ? json_integer_value(mem) : 128, "pids",
			 pids ? json_integer_value(pids) : 128, "storage_mb",
			 stor ? json_integer_value(stor) : 0);
	return *out ? 0 : ODX_ENOMEM;
}

static int command_check(json_t *c, char msg[static JSONX_MSG_LEN])
{
	if (!json_is_array(c) || json_array_size(c) > COMMAND_MAX)
		return fail(msg, "command must be an array of at most 64 strings");
	size_t i;
	json_t *v;
	json_array_foreach(c, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) > ENV_VALUE_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return fail(msg, "command must be an array of at most 64 strings");
	}
	return 0;
}

static int env_check(json_t *e, char msg[static JSONX_MSG_LEN])
{
	if (!json_is_object(e) || json_object_size(e) > ENV_MAX)
		return fail(msg, "env must be an object of at most 64 strings");
	const char *k;
	json_t *v;
	json_object_foreach(e, k, v)
	{
		if (!env_name_ok(k))
			return fail(msg, "env names must match [A-Za-z_][A-Za-z0-9_]*");
		if (!json_is_string(v) || json_string_length(v) > ENV_VALUE_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return fail(msg, "env values must be strings of at most 4096 bytes");
	}
	return 0;
}

static int paths_check(json_t *p, char msg[static JSONX_MSG_LEN])
{
	if (!json_is_array(p) || json_array_size(p) > PATHS_MAX)
		return fail(msg, "writable_paths must be an array of at most 8 paths");
	size_t i;
	json_t *v;
	json_array_foreach(p, i, v)
	{
		if (!json_is_string(v) || !path_ok(json_string_value(v)) || strcmp(json_string_value(v), "/proc") == 0)
			return fail(msg, "writable_paths must be absolute paths without . or ..");
	}
	return 0;
}

/* Names of secrets the replicas receive at /run/secrets (docs/secrets.md). */
static int secrets_check(json_t *a, char msg[static JSONX_MSG_LEN])
{
	if (!json_is_array(a) || json_array_size(a) > 16)
		return fail(msg, "secrets must be an array of at most 16 secret names");
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v) || name_validate(json_string_value(v), DEPLOY_NAME_MAX) < 0)
			return fail(msg, "secrets must be names of a-z, 0-9 and '-'");
	}
	return 0;
}

void deploy_spec_free(struct deploy_spec *s)
{
	json_decref(s->template);
	s->template = NULL;
}

int deploy_spec_parse(json_t *body, bool partial, struct deploy_spec *out,
		      char msg[static JSONX_MSG_LEN])
{
	const char *name = NULL, *image = NULL, *user = NULL;
	json_t *replicas = NULL, *command = NULL, *env = NULL, *res = NULL, *paths = NULL,
	       *secrets = NULL;
	memset(out, 0, sizeof(*out));
	out->replicas = -1;
	if (jsonx_unpack(body, msg, partial ? "{s?s, s?s, s?o, s?o, s?o, s?o, s?o, s?s, s?o}"
					    : "{s:s, s:s, s?o, s?o, s?o, s?o, s?o, s?s, s?o}",
			 "name", &name, "image", &image, "replicas", &replicas, "command", &command,
			 "env", &env, "resources", &res, "writable_paths", &paths, "user", &user,
			 "secrets", &secrets) < 0)
		return ODX_EINVAL;
	if (secrets && secrets_check(secrets, msg) < 0)
		return ODX_EINVAL;
	if (partial && name)
		return fail(msg, "the name of a deployment cannot change");
	if (name && !deploy_name_valid(name))
		return fail(msg, "name: 1 to 63 of a-z, 0-9 and '-', not starting with '-'");
	if (image && !deploy_image_valid(image))
		return fail(msg, "image must be a Docker image reference (name[:tag][@sha256:digest])");
	if (replicas && !int_in(replicas, 0, DEPLOY_REPLICAS_MAX))
		return fail(msg, "replicas must be 0 to 100");
	if ((command && command_check(command, msg) < 0) || (env && env_check(env, msg) < 0) ||
	    (paths && paths_check(paths, msg) < 0))
		return ODX_EINVAL;
	if (user && !user_ok(user))
		return fail(msg, "user must be uid[:gid] numbers");
	json_t *t = json_object(), *r = NULL;
	if (!t || (res && resources_parse(res, &r, msg) < 0)) {
		json_decref(t);
		return msg[0] ? ODX_EINVAL : ODX_ENOMEM;
	}
	if (image)
		json_object_set_new(t, "image", json_string(image));
	if (command)
		json_object_set(t, "command", command);
	if (env)
		json_object_set(t, "env", env);
	if (r)
		json_object_set_new(t, "resources", r);
	if (paths)
		json_object_set(t, "writable_paths", paths);
	if (user)
		json_object_set_new(t, "user", json_string(user));
	if (secrets)
		json_object_set(t, "secrets", secrets);
	snprintf(out->name, sizeof(out->name), "%s", name ? name : "");
	out->template = t;
	out->replicas = replicas ? json_integer_value(replicas) : partial ? -1 : 1;
	return 0;
}

/* The given fields over base (or over the defaults when base is NULL). */
static json_t *template_merge(const json_t *base, const json_t *given)
{
	json_t *t = base ? json_deep_copy(base)
			 : json_pack("{s:[], s:{}, s:{s:i, s:i, s:i, s:i}, s:[], s:n}", "command",
				     "env", "resources", "cpu_millicores", 250, "memory_mb", 128,
				     "pids", 128, "storage_mb", 0, "writable_paths", "user");
	if (t && json_object_update(t, (json_t *)given) != 0) {
		json_decref(t);
		return NULL;
	}
	return t;
}

static int64_t res_of(const json_t *t, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(t, "resources"), key));
}

/* ---- the store ---------------------------------------------------------------- */

void deployment_free(struct deployment *d)
{
	json_decref(d->template);
	d->template = NULL;
}

json_t *deployment_to_json(const struct deployment *d)
{
	char created[TIME_RFC3339_LEN], updated[TIME_RFC3339_LEN];
	time_format_rfc3339(d->created_at, created);
	time_format_rfc3339(d->updated_at, updated);
	json_t *o = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s}", "name", d->name, "revision",
			      (json_int_t)d->revision, "replicas", (json_int_t)d->replicas,
			      "created_by", d->created_by, "created_at", created, "updated_at",
			      updated);
	if (o && d->template)
		json_object_update(o, d->template);
	return o;
}

/* Inside the tenant's write transaction: the others plus this one within the quotas. */
static int check_quota(struct store_tx *tx, const struct tenant *t, const char *name,
		       int64_t replicas, const json_t *tmpl, const char **limit)
{
	struct quotas u;
	int rc = tenant_usage_tx(tx, name, &u);
	if (rc < 0)
		return rc;
	if (u.cpu_millicores + replicas * res_of(tmpl, "cpu_millicores") > t->quotas.cpu_millicores)
		*limit = "cpu_millicores";
	else if (u.memory_mb + replicas * res_of(tmpl, "memory_mb") > t->quotas.memory_mb)
		*limit = "memory_mb";
	else if (u.containers + replicas > t->quotas.containers)
		*limit = "containers";
	else if (u.storage_mb + replicas * res_of(tmpl, "storage_mb") > t->quotas.storage_mb)
		*limit = "storage_mb";
	else
		return 0;
	return ODX_EQUOTA;
}

static int read_deployment(struct store_stmt *q, void *arg)
{
	struct deployment *d = arg;
	store_col_copy(q, 0, d->name, sizeof(d->name));
	d->revision = store_col_int(q, 1);
	d->replicas = store_col_int(q, 2);
	d->restart_generation = store_col_int(q, 3);
	store_col_copy(q, 4, d->created_by, sizeof(d->created_by));
	d->created_at = store_col_int(q, 5);
	d->updated_at = store_col_int(q, 6);
	json_decref(d->template);
	d->template = json_loads(store_col_text(q, 7), 0, NULL);
	return d->template ? 0 : ODX_ECORRUPT;
}

#define DEPLOY_SELECT                                                                          \
	"SELECT d.name, d.revision, d.replicas, d.restart_generation, d.created_by, "          \
	"d.created_at, d.updated_at, r.template FROM deployments d JOIN deployment_revisions r " \
	"ON r.deployment = d.name AND r.revision = d.revision "

/* Adds the row's template image to the set (a JSON object used as a set). */
static int add_image(struct store_stmt *q, void *arg)
{
	json_t *t = json_loads(store_col_text(q, 0), 0, NULL);
	const char *image = json_string_value(json_object_get(t, "image"));
	int rc = image ? json_object_set_new(arg, image, json_true()) : ODX_ECORRUPT;
	json_decref(t);
	return rc == 0 ? 0 : rc < 0 ? rc : ODX_ENOMEM;
}

int deploy_images(struct store *s, const char *tenant_id, json_t **out)
{
	json_t *set = json_object(), *list = json_array();
	int rc = set && list ? store_read(s, tenant_id,
					  "SELECT r.template FROM deployments d JOIN deployment_revisions r "
					  "ON r.deployment = d.name AND r.revision = d.revision",
					  STORE_NOARGS, add_image, set)
			     : ODX_ENOMEM;
	const char *image;
	json_t *v;
	json_object_foreach(set, image, v) if (rc >= 0 && json_array_append_new(list, json_string(image)))
		rc = ODX_ENOMEM;
	json_decref(set);
	if (rc < 0) {
		json_decref(list);
		return rc;
	}
	*out = list;
	return 0;
}

static int get_in(struct store_tx *tx, const char *name, struct deployment *out)
{
	memset(out, 0, sizeof(*out));
	int rc = store_each(tx, DEPLOY_SELECT "WHERE d.name = ?", STORE_ARGS(S_TEXT(name)),
			    read_deployment, out);
	return rc < 0 ? rc : rc == 0 ? ODX_ENOTFOUND : 0;
}

static int write_revision(struct store_tx *tx, const char *name, int64_t rev, const json_t *tmpl,
			  const char *actor, int64_t now)
{
	char *text = jsonx_dump(tmpl);
	if (!text)
		return ODX_ENOMEM;
	int rc = store_exec(tx,
			    "INSERT INTO deployment_revisions (deployment, revision, template, "
			    "created_by, created_at) VALUES (?, ?, ?, ?, ?)",
			    STORE_ARGS(S_TEXT(name), S_INT(rev), S_TEXT(text), S_TEXT(actor),
				       S_INT(now)));
	free(text);
	if (rc >= 0)
		rc = store_exec(tx, "DELETE FROM deployment_revisions WHERE deployment = ? AND revision <= ?",
				STORE_ARGS(S_TEXT(name), S_INT(rev - DEPLOY_REVISIONS_KEPT)));
	return rc < 0 ? rc : 0;
}

int deploy_create(struct store *s, const struct tenant *t, const struct deploy_spec *spec,
		  const char *actor, struct deployment *out, const char **limit)
{
	json_t *tmpl = template_merge(NULL, spec->template);
	if (!tmpl)
		return ODX_ENOMEM;
	if (json_is_null(json_object_get(tmpl, "user")))
		json_object_del(tmpl, "user");
	struct store_tx *tx;
	int64_t now = time_now_ns();
	int rc = store_tx_begin(s, t->id, STORE_WRITE, &tx);
	if (rc < 0) {
		json_decref(tmpl);
		return rc;
	}
	rc = check_quota(tx, t, spec->name, spec->replicas, tmpl, limit);
	if (rc == 0)
		rc = store_exec(tx,
				"INSERT INTO deployments (name, revision, replicas, cpu_millicores, "
				"memory_mb, storage_mb, created_by, created_at, updated_at) "
				"VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)",
				STORE_ARGS(S_TEXT(spec->name), S_INT(spec->replicas),
					   S_INT(res_of(tmpl, "cpu_millicores")),
					   S_INT(res_of(tmpl, "memory_mb")),
					   S_INT(res_of(tmpl, "storage_mb")), S_TEXT(actor), S_INT(now),
					   S_INT(now)));
	if (rc >= 0)
		rc = write_revision(tx, spec->name, 1, tmpl, actor, now);
	if (rc >= 0)
		rc = get_in(tx, spec->name, out);
	json_decref(tmpl);
	return store_tx_end(tx, rc);
}

/* Sets replicas and, when tmpl is given, a new revision; checks the quota. */
static int apply(struct store_tx *tx, const struct tenant *t, struct deployment *cur,
		 int64_t replicas, const json_t *tmpl, const char *actor, const char **limit)
{
	int64_t now = time_now_ns();
	const json_t *eff = tmpl ? tmpl : cur->template;
	int rc = check_quota(tx, t, cur->name, replicas, eff, limit);
	int64_t rev = tmpl ? cur->revision + 1 : cur->revision;
	if (rc == 0 && tmpl)
		rc = write_revision(tx, cur->name, rev, tmpl, actor, now);
	if (rc >= 0)
		rc = store_exec(tx,
				"UPDATE deployments SET revision = ?, replicas = ?, cpu_millicores = ?, "
				"memory_mb = ?, storage_mb = ?, updated_at = ? WHERE name = ?",
				STORE_ARGS(S_INT(rev), S_INT(replicas),
					   S_INT(res_of(eff, "cpu_millicores")),
					   S_INT(res_of(eff, "memory_mb")), S_INT(res_of(eff, "storage_mb")),
					   S_INT(now), S_TEXT(cur->name)));
	return rc < 0 ? rc : 0;
}

int deploy_update(struct store *s, const struct tenant *t, const char *name,
		  const struct deploy_spec *spec, const char *actor, struct deployment *out,
		  const char **limit)
{
	struct store_tx *tx;
	struct deployment cur = {0};
	json_t *tmpl = NULL;
	int rc = store_tx_begin(s, t->id, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = get_in(tx, name, &cur);
	if (rc == 0 && json_object_size(spec->template) > 0) {
		tmpl = template_merge(cur.template, spec->template);
		rc = tmpl ? 0 : ODX_ENOMEM;
		if (tmpl && json_equal(tmpl, cur.template)) {
			json_decref(tmpl); /* nothing changed: no new revision */
			tmpl = NULL;
		}
	}
	if (rc == 0)
		rc = apply(tx, t, &cur, spec->replicas >= 0 ? spec->replicas : cur.replicas, tmpl,
			   actor, limit);
	json_decref(tmpl);
	deployment_free(&cur);
	if (rc == 0)
		rc = get_in(tx, name, out);
	return store_tx_end(tx, rc);
}

int deploy_rollback(struct store *s, const struct tenant *t, const char *name, int64_t to,
		    const char *actor, struct deployment *out, const char **limit)
{
	struct store_tx *tx;
	struct deployment cur = {0};
	int rc = store_tx_begin(s, t->id, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = get_in(tx, name, &cur);
	struct deployment old = {0};
	if (rc == 0) {
		int64_t want = to > 0 ? to : cur.revision - 1;
		rc = want >= 1 && want < cur.revision
			 ? store_each(tx,
				      "SELECT ?, revision, 0, 0, '', 0, 0, template FROM "
				      "deployment_revisions WHERE deployment = ? AND revision = ?",
				      STORE_ARGS(S_TEXT(name), S_TEXT(name), S_INT(want)),
				      read_deployment, &old)
			 : 0;
		if (rc == 0)
			rc = ODX_EINVAL; /* no such kept revision */
		else if (rc > 0)
			rc = apply(tx, t, &cur, cur.replicas, old.template, actor, limit);
	}
	deployment_free(&old);
	deployment_free(&cur);
	if (rc == 0)
		rc = get_in(tx, name, out);
	return store_tx_end(tx, rc);
}

int deploy_restart(struct store *s, const char *tenant_id, const char *name,
		   struct deployment *out)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, tenant_id, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = store_exec(tx,
			"UPDATE deployments SET restart_generation = restart_generation + 1, "
			"updated_at = ? WHERE name = ?",
			STORE_ARGS(S_INT(time_now_ns()), S_TEXT(name)));
	if (rc == 0)
		rc = ODX_ENOTFOUND;
	if (rc > 0)
		rc = get_in(tx, name, out);
	return store_tx_end(tx, rc);
}

int deploy_delete(struct store *s, const char *tenant_id, const char *name)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, tenant_id, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = store_exec(tx, "DELETE FROM deployments WHERE name = ?", STORE_ARGS(S_TEXT(name)));
	if (rc == 0)
		rc = ODX_ENOTFOUND;
	if (rc > 0)
		rc = store_exec(tx, "DELETE FROM deployment_revisions WHERE deployment = ?",
				STORE_ARGS(S_TEXT(name)));
	return store_tx_end(tx, rc < 0 ? rc : 0);
}

int deploy_get(struct store *s, const char *tenant_id, const char *name, struct deployment *out)
{
	memset(out, 0, sizeof(*out));
	return store_read_one(s, tenant_id, DEPLOY_SELECT "WHERE d.name = ?",
			      STORE_ARGS(S_TEXT(name)), read_deployment, out);
}

struct owner_arg {
	char *owner;
	size_t size;
};

static int read_owner(struct store_stmt *q, void *arg)
{
	struct owner_arg *o = arg;
	store_col_copy(q, 0, o->owner, o->size);
	return 0;
}

int deploy_owner(struct store *s, const char *tenant_id, const char *name, char *owner,
		 size_t size)
{
	struct owner_arg o = {owner, size};
	return store_read_one(s, tenant_id, "SELECT created_by FROM deployments WHERE name = ?",
			      STORE_ARGS(S_TEXT(name)), read_owner, &o);
}

static int append_deployment(struct store_stmt *q, void *arg)
{
	struct deployment d = {0};
	int rc = read_deployment(q, &d);
	json_t *o = rc == 0 ? deployment_to_json(&d) : NULL;
	deployment_free(&d);
	if (rc == 0 && json_array_append_new(arg, o) != 0)
		rc = ODX_ENOMEM;
	return rc;
}

int deploy_list(struct store *s, const char *tenant_id, const char *after, int limit,
		json_t **items)
{
	json_t *a = json_array();
	if (!a)
		return ODX_ENOMEM;
	int rc = store_read(s, tenant_id, DEPLOY_SELECT "WHERE d.name > ? ORDER BY d.name LIMIT ?",
			    STORE_ARGS(S_TEXT(after ? after : ""), S_INT(limit + 1)),
			    append_deployment, a);
	if (rc < 0) {
		json_decref(a);
		return rc;
	}
	*items = a;
	return 0;
}

static int append_revision(struct store_stmt *q, void *arg)
{
	char created[TIME_RFC3339_LEN];
	time_format_rfc3339(store_col_int(q, 3), created);
	json_t *t = json_loads(store_col_text(q, 1), 0, NULL);
	json_t *o = t ? json_pack("{s:I, s:o, s:s, s:s}", "revision",
				  (json_int_t)store_col_int(q, 0), "template", t, "created_by",
				  store_col_text(q, 2), "created_at", created)
		      : NULL;
	return o && json_array_append_new(arg, o) == 0 ? 0 : ODX_ECORRUPT;
}

int deploy_revisions(struct store *s, const char *tenant_id, const char *name, json_t **items)
{
	struct deployment d;
	int rc = deploy_get(s, tenant_id, name, &d);
	deployment_free(&d);
	json_t *a = rc == 0 ? json_array() : NULL;
	if (rc == 0 && !a)
		rc = ODX_ENOMEM;
	if (rc == 0)
		rc = store_read(s, tenant_id,
				"SELECT revision, template, created_by, created_at FROM "
				"deployment_revisions WHERE deployment = ? ORDER BY revision DESC",
				STORE_ARGS(S_TEXT(name)), append_revision, a);
	if (rc < 0) {
		json_decref(a);
		return rc;
	}
	*items = a;
	return 0;
}

static int read_template(struct store_stmt *q, void *arg)
{
	json_t **out = arg;
	*out = json_loads(store_col_text(q, 0), 0, NULL);
	return *out ? 0 : ODX_ECORRUPT;
}

int deploy_template(struct store *s, const char *tenant_id, const char *name, int64_t revision,
		    json_t **out)
{
	*out = NULL;
	return store_read_one(s, tenant_id,
			      "SELECT template FROM deployment_revisions WHERE deployment = ? AND "
			      "revision = ?",
			      STORE_ARGS(S_TEXT(name), S_INT(revision)), read_template, out);
}
