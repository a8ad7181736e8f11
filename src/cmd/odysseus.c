/*
 * odysseus.c — the command-line client: argument parsing and one function
 * per command. HTTP, the stored session, input and output live in cli/cli.c.
 *
 * Command lines are `odysseus [global options] GROUP [SUBCOMMAND] [args]`;
 * global options (--output, --server, --ca, --help) may also follow the
 * command. Data goes to stdout (the server's JSON with --output json, a
 * table otherwise); errors and prompts go to stderr. The exit status says
 * what went wrong (docs/cli.md, cli.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"

#ifndef ODYSSEUS_VERSION
#define ODYSSEUS_VERSION "0.1.0"
#endif

#define MAX_OPTS     16
#define MAX_POS	     32	 /* users set-permission-sets ID NAME... (the server takes 16) */
#define MAX_REPEATED 256 /* values of repeatable options (--rule; the server takes 100) */
#define EMAIL_MAX    512

/*
 * Options every command accepts; a trailing '=' means "takes a value", "=*"
 * "takes a value and may be repeated" (the values are kept in order).
 */
static const char *const global_opts[] = {"output=", "server=", "ca=", "help", NULL};

struct args {
	/* Indexed like the command's option list: a value, and whether given. */
	const char *opt[MAX_OPTS];
	bool has[MAX_OPTS];
	/* Values of repeatable options, in command-line order, with their option's index. */
	const char *rep[MAX_REPEATED];
	int rep_opt[MAX_REPEATED];
	size_t nrep;
	const char *pos[MAX_POS];
	size_t npos;
	/* globals */
	const char *output, *server, *ca;
	bool help;
};

struct ctx {
	bool json;
	const char *server; /* --server, else $ODYSSEUS_SERVER, else NULL */
	const char *ca;	    /* --ca, else $ODYSSEUS_CA, else NULL */
};

struct command {
	const char *group;
	const char *name; /* NULL: the group is the command */
	int (*run)(const struct ctx *, const struct args *);
	const char *const *opts; /* NULL-terminated, or NULL */
	size_t min_pos, max_pos;
	const char *usage;
	const char *help;
};

static const struct command *current;

/* Reports a usage error for the current command; returns CLI_E_USAGE. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("odysseus: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (current != NULL) {
		fprintf(stderr, "usage: odysseus %s\n", current->usage);
		fprintf(stderr, "Run 'odysseus %s%s%s --help' for more.\n", current->group,
			current->name != NULL ? " " : "",
			current->name != NULL ? current->name : "");
	} else {
		fprintf(stderr, "Run 'odysseus --help' for more.\n");
	}
	return CLI_E_USAGE;
}

/* ---- Option lookup ---------------------------------------------------- */

/*
 * Index of option name in opts (without '=' or '=*'), or -1. *arg: it takes
 * a value; *repeat: it may be given more than once.
 */
static int opt_index(const char *const *opts, const char *name, size_t n, bool *arg, bool *repeat)
{
	for (int i = 0; opts != NULL && opts[i] != NULL; i++) {
		size_t l = strlen(opts[i]);
		bool many = l > 1 && opts[i][l - 1] == '*' && opts[i][l - 2] == '=';
		if (many)
			l--;
		bool takes = l > 0 && opts[i][l - 1] == '=';
		if (takes)
			l--;
		if (l == n && strncmp(opts[i], name, n) == 0) {
			*arg = takes;
			*repeat = many;
			return i;
		}
	}
	return -1;
}

static int cmd_opt(const struct command *cmd, const char *name)
{
	bool arg, repeat;
	return opt_index(cmd->opts, name, strlen(name), &arg, &repeat);
}

static const char *get_opt(const struct args *a, const char *name)
{
	int i = cmd_opt(current, name);
	return i >= 0 ? a->opt[i] : NULL;
}

static bool has_opt(const struct args *a, const char *name)
{
	int i = cmd_opt(current, name);
	return i >= 0 && a->has[i];
}

/* Every value of the repeatable option name, in order, into out; returns how many. */
static size_t get_all(const struct args *a, const char *name, const char **out)
{
	int i = cmd_opt(current, name);
	size_t n = 0;
	for (size_t k = 0; i >= 0 && k < a->nrep; k++)
		if (a->rep_opt[k] == i)
			out[n++] = a->rep[k];
	return n;
}

/* Sets global option number i (an index into global_opts). */
static void set_global(struct args *a, int i, const char *value)
{
	switch (i) {
	case 0:
		a->output = value;
		break;
	case 1:
		a->server = value;
		break;
	case 2:
		a->ca = value;
		break;
	default:
		a->help = true;
		break;
	}
}

/*
 * Parses options and positional arguments of argv[*i..argc) against cmd's
 * options (cmd NULL: global options only, stopping at the first positional).
 */
static int parse_args(int argc, char **argv, int *i, const struct command *cmd, struct args *a)
{
	bool only_pos = false;

	for (; *i < argc; (*i)++) {
		const char *s = argv[*i];
		if (only_pos || s[0] != '-' || s[1] == '\0') {
			if (cmd == NULL)
				return 0;
			if (a->npos >= MAX_POS)
				return usage_error("too many arguments");
			a->pos[a->npos++] = s;
			continue;
		}
		if (strcmp(s, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (strcmp(s, "-h") == 0) {
			a->help = true;
			continue;
		}
		if (strcmp(s, "--version") == 0 && cmd == NULL) {
			printf("odysseus %s\n", ODYSSEUS_VERSION);
			exit(0);
		}
		const char *name, *value = NULL;
		if (strcmp(s, "-o") == 0)
			name = "output";
		else if (s[1] == '-')
			name = s + 2;
		else
			return usage_error("unknown option %s", s);
		const char *eq = strchr(name, '=');
		size_t n = eq != NULL ? (size_t)(eq - name) : strlen(name);
		bool arg, repeat = false;
		int gi = opt_index(global_opts, name, n, &arg, &repeat);
		int ci = gi < 0 && cmd != NULL ? opt_index(cmd->opts, name, n, &arg, &repeat) : -1;
		if (gi < 0 && ci < 0)
			return usage_error("unknown option %s", s);
		if (arg) {
			if (eq != NULL) {
				value = eq + 1;
			} else if (*i + 1 < argc) {
				value = argv[++*i];
			} else {
				return usage_error("option %s needs a value", s);
			}
		} else if (eq != NULL) {
			return usage_error("option %s takes no value", s);
		}
		if (gi >= 0) {
			set_global(a, gi, value);
		} else {
			if (repeat) {
				if (a->nrep >= MAX_REPEATED)
					return usage_error("option %.*s given too often",
							   (int)n + 2, s);
				a->rep[a->nrep] = value;
				a->rep_opt[a->nrep++] = ci;
			}
			a->opt[ci] = value;
			a->has[ci] = true;
		}
	}
	return 0;
}

/* ---- Helpers ---------------------------------------------------------- */

static int parse_int(const char *opt, const char *s, json_int_t *out)
{
	char *end;

	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || errno != 0)
		return usage_error("--%s needs a whole number", opt);
	*out = (json_int_t)v;
	return 0;
}

static int parse_number(const char *opt, const char *s, double *out)
{
	char *end;

	errno = 0;
	double v = strtod(s, &end);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(v))
		return usage_error("--%s needs a number", opt);
	*out = v;
	return 0;
}

/* prefix + escaped id + suffix, e.g. "/v1/tenants/" "ten_1" "/quotas". */
static char *resource_path(const char *prefix, const char *id, const char *suffix)
{
	char *esc = cli_url_escape(id);
	if (esc == NULL)
		return NULL;
	size_t n = strlen(prefix) + strlen(esc) + strlen(suffix) + 1;
	char *p = malloc(n);
	if (p != NULL)
		snprintf(p, n, "%s%s%s", prefix, esc, suffix);
	free(esc);
	return p;
}

static int open_session(const struct ctx *ctx, struct cli_session **s)
{
	return cli_session_open(ctx->server, ctx->ca, s);
}

/* Prints one object (or list) as JSON or as a table with cols. */
static int show(const struct ctx *ctx, const json_t *v, const struct cli_column *cols, size_t ncols)
{
	return ctx->json ? cli_print_json(v) : cli_print_table(cols, ncols, v);
}

/* Prints a whole list: {"items": [...], "next_cursor": null} with --output json. */
static int show_list(const struct ctx *ctx, json_t *items, const struct cli_column *cols,
		     size_t ncols)
{
	if (!ctx->json)
		return cli_print_table(cols, ncols, items);
	json_t *page = json_pack("{s:O, s:n}", "items", items, "next_cursor");
	if (page == NULL) {
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	int rc = cli_print_json(page);
	json_decref(page);
	return rc;
}

/* GET path (a list) and print it. */
static int run_list(const struct ctx *ctx, const char *path, const struct cli_column *cols,
		    size_t ncols)
{
	struct cli_session *s = NULL;
	json_t *items = NULL;
	int rc = open_session(ctx, &s);

	if (rc == 0)
		rc = cli_session_list(s, path, &items);
	if (rc == 0)
		rc = show_list(ctx, items, cols, ncols);
	json_decref(items);
	cli_session_free(s);
	return rc;
}

/*
 * Sends method to prefix/<id>suffix with body (may be NULL) and prints the
 * answer; for an answer without a body, prints "<what> <id> <done>" in table
 * mode.
 */
static int run_on(const struct ctx *ctx, const char *method, const char *prefix, const char *id,
		  const char *suffix, const json_t *body, const struct cli_column *cols,
		  size_t ncols, const char *what, const char *done)
{
	struct cli_session *s = NULL;
	json_t *answer = NULL;
	char *path = resource_path(prefix, id, suffix);
	int rc;

	if (path == NULL) {
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	rc = open_session(ctx, &s);
	if (rc == 0)
		rc = cli_session_call(s, method, path, body, &answer);
	if (rc == 0 && answer != NULL)
		rc = show(ctx, answer, cols, ncols);
	else if (rc == 0 && !ctx->json && done != NULL) {
		/* The id is the user's own argument, but keep the terminal clean. */
		bool clean = true;
		for (const char *c = id; *c; c++)
			clean &= (unsigned char)*c >= 0x20 && *c != 0x7f;
		printf("%s %s %s\n", what, clean ? id : "(id)", done);
	}
	json_decref(answer);
	cli_session_free(s);
	free(path);
	return rc;
}

/* POST path with body and print the answer. */
static int run_create(const struct ctx *ctx, const char *path, const json_t *body, json_t **answer)
{
	struct cli_session *s = NULL;
	int rc = open_session(ctx, &s);

	if (rc == 0)
		rc = cli_session_call(s, "POST", path, body, answer);
	cli_session_free(s);
	return rc;
}

#define NCOLS(c) (sizeof(c) / sizeof((c)[0]))

static const struct cli_column me_cols[] = {
    {"ID", "id", CLI_COL_TEXT},
    {"EMAIL", "email", CLI_COL_TEXT},
    {"ROLE", "role", CLI_COL_TEXT},
    {"TENANT", "tenant_id", CLI_COL_TEXT},
};

static const struct cli_column tenant_cols[] = {
    {"ID", "id", CLI_COL_TEXT},
    {"NAME", "name", CLI_COL_TEXT},
    {"CPU_CORES", "quotas.cpu_cores", CLI_COL_TEXT},
    {"MEMORY_MB", "quotas.memory_mb", CLI_COL_TEXT},
    {"CONTAINERS", "quotas.containers", CLI_COL_TEXT},
    {"STORAGE_MB", "quotas.storage_mb", CLI_COL_TEXT},
    {"CREATED", "created_at", CLI_COL_TIME},
};

static const struct cli_column tenant_admin_cols[] = {
    {"ADMIN_ID", "admin.id", CLI_COL_TEXT},
    {"ADMIN_EMAIL", "admin.email", CLI_COL_TEXT},
    {"ADMIN_ROLE", "admin.role", CLI_COL_TEXT},
};

static const struct cli_column user_cols[] = {
    {"ID", "id", CLI_COL_TEXT},
    {"EMAIL", "email", CLI_COL_TEXT},
    {"ROLE", "role", CLI_COL_TEXT},
    {"CREATED", "created_at", CLI_COL_TIME},
};

static const struct cli_column key_cols[] = {
    {"ID", "id", CLI_COL_TEXT},
    {"NAME", "name", CLI_COL_TEXT},
    {"ROLE", "role", CLI_COL_TEXT},
    {"CREATED", "created_at", CLI_COL_TIME},
    {"LAST_USED", "last_used_at", CLI_COL_TIME},
};

static const struct cli_column new_key_cols[] = {
    {"ID", "id", CLI_COL_TEXT},
    {"NAME", "name", CLI_COL_TEXT},
    {"ROLE", "role", CLI_COL_TEXT},
    {"KEY", "key", CLI_COL_TEXT},
};

/* ---- Commands --------------------------------------------------------- */

static const char *const login_opts[] = {"email=", NULL};

static int cmd_login(const struct ctx *ctx, const struct args *a)
{
	char email[EMAIL_MAX];
	char password[CLI_PASSWORD_MAX + 1];
	const char *e = get_opt(a, "email");
	int rc;

	if (ctx->server == NULL)
		return usage_error("no server: pass --server URL or set ODYSSEUS_SERVER");
	if (e == NULL) {
		if (!isatty(STDIN_FILENO))
			return usage_error("--email is needed when stdin is not a terminal");
		if ((rc = cli_prompt_line("Email: ", email, sizeof(email))) < 0)
			return rc;
		e = email;
	}
	if ((rc = cli_read_password("Password: ", false, password, sizeof(password))) < 0)
		return rc;
	rc = cli_login(ctx->server, ctx->ca, e, password);
	explicit_bzero(password, sizeof(password));
	if (rc == 0 && !ctx->json)
		printf("logged in to %s as %s\n", ctx->server, e);
	return rc;
}

static int cmd_logout(const struct ctx *ctx, const struct args *a)
{
	struct cli_session *s = NULL;
	char *path = NULL;
	int rc;

	(void)a;
	if ((rc = cli_credentials_path(&path)) < 0)
		return rc;
	bool exists = access(path, F_OK) == 0;
	free(path);
	if (!exists) {
		if (!ctx->json)
			printf("not logged in\n");
		return 0;
	}
	if ((rc = open_session(ctx, &s)) < 0)
		return rc;
	rc = cli_session_logout(s);
	cli_session_free(s);
	if (rc == 0 && !ctx->json)
		printf("logged out\n");
	return rc;
}

static int cmd_whoami(const struct ctx *ctx, const struct args *a)
{
	(void)a;
	return run_on(ctx, "GET", "/v1/me", "", "", NULL, me_cols, NCOLS(me_cols), NULL, NULL);
}

static int cmd_tenants_list(const struct ctx *ctx, const struct args *a)
{
	(void)a;
	return run_list(ctx, "/v1/tenants", tenant_cols, NCOLS(tenant_cols));
}

static int cmd_tenants_get(const struct ctx *ctx, const struct args *a)
{
	return run_on(ctx, "GET", "/v1/tenants/", a->pos[0], "", NULL, tenant_cols,
		      NCOLS(tenant_cols), NULL, NULL);
}

static const char *const quota_opts[] = {"cpu-cores", "memory-mb", "containers", "storage-mb"};
static const char *const quota_keys[] = {"cpu_cores", "memory_mb", "containers", "storage_mb"};

/*
 * Builds a quotas object from the quota options that were given. With all
 * set, every one must be given. *out is NULL when none was given.
 */
static int quotas_from_args(const struct args *a, bool all, json_t **out)
{
	json_t *q = json_object();
	int rc = 0;

	if (q == NULL) {
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	for (size_t i = 0; i < 4 && rc == 0; i++) {
		const char *v = get_opt(a, quota_opts[i]);
		json_t *j = NULL;
		if (v == NULL) {
			if (all)
				rc = usage_error("--%s is required", quota_opts[i]);
			continue;
		}
		if (i == 0) {
			double d = 0;
			if ((rc = parse_number(quota_opts[i], v, &d)) == 0)
				j = json_real(d);
		} else {
			json_int_t n = 0;
			if ((rc = parse_int(quota_opts[i], v, &n)) == 0)
				j = json_integer(n);
		}
		if (rc == 0 && json_object_set_new(q, quota_keys[i], j) < 0) {
			cli_errorf("out of memory");
			rc = CLI_E_FAIL;
		}
	}
	if (rc < 0 || json_object_size(q) == 0) {
		json_decref(q);
		q = NULL;
	}
	*out = q;
	return rc;
}

static const char *const tenant_create_opts[] = {
    "name=",	  "admin-email=", "admin-password-stdin", "cpu-cores=",
    "memory-mb=", "containers=",  "storage-mb=",	  NULL};

static int cmd_tenants_create(const struct ctx *ctx, const struct args *a)
{
	char password[CLI_PASSWORD_MAX + 1];
	const char *name = get_opt(a, "name"), *email = get_opt(a, "admin-email");
	json_t *quotas = NULL, *body = NULL, *answer = NULL;
	int rc;

	if (name == NULL)
		return usage_error("--name is required");
	if (email == NULL)
		return usage_error("--admin-email is required");
	if ((rc = quotas_from_args(a, false, &quotas)) < 0)
		return rc;
	/* --admin-password-stdin: stdin is read whenever it is not a terminal. */
	rc = cli_read_password("Password for the tenant admin: ", true, password, sizeof(password));
	if (rc == 0) {
		body = json_pack("{s:s, s:{s:s, s:s}}", "name", name, "admin", "email", email,
				 "password", password);
		explicit_bzero(password, sizeof(password));
		if (body == NULL ||
		    (quotas != NULL && json_object_set(body, "quotas", quotas) < 0)) {
			cli_errorf("out of memory");
			rc = CLI_E_FAIL;
		}
	}
	if (rc == 0)
		rc = run_create(ctx, "/v1/tenants", body, &answer);
	json_decref(body); /* wiped on free: see cli_init */
	if (rc == 0 && ctx->json)
		rc = cli_print_json(answer);
	else if (rc == 0) {
		rc = cli_print_table(tenant_cols, NCOLS(tenant_cols), answer);
		if (rc == 0 && json_is_object(json_object_get(answer, "admin"))) {
			putchar('\n');
			rc = cli_print_table(tenant_admin_cols, NCOLS(tenant_admin_cols), answer);
		}
	}
	json_decref(answer);
	json_decref(quotas);
	return rc;
}

static const char *const name_opts[] = {"name=", NULL};

static int cmd_tenants_rename(const struct ctx *ctx, const struct args *a)
{
	const char *name = get_opt(a, "name");
	if (name == NULL)
		return usage_error("--name is required");
	json_t *body = json_pack("{s:s}", "name", name);
	if (body == NULL) {
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	int rc = run_on(ctx, "PATCH", "/v1/tenants/", a->pos[0], "", body, tenant_cols,
			NCOLS(tenant_cols), NULL, NULL);
	json_decref(body);
	return rc;
}

static int cmd_tenants_delete(const struct ctx *ctx, const struct args *a)
{
	return run_on(ctx, "DELETE", "/v1/tenants/", a->pos[0], "", NULL, tenant_cols,
		      NCOLS(tenant_cols), "tenant", "deleted");
}

static const char *const set_quota_opts[] = {
    "cpu-cores=", "memory-mb=", "containers=", "storage-mb=", NULL};

static int cmd_tenants_set_quotas(const struct ctx *ctx, const struct args *a)
{
	json_t *quotas = NULL;
	int rc = quotas_from_args(a, true, &quotas);
	if (rc < 0)
		return rc;
	rc = run_on(ctx, "PUT", "/v1/tenants/", a->pos[0], "/quotas", quotas, tenant_cols,
		    NCOLS(tenant_cols), NULL, NULL);
	json_decref(quotas);
	return rc;
}

static int cmd_users_list(const struct ctx *ctx, const struct args *a)
{
	(void)a;
	return run_list(ctx, "/v1/users", user_cols, NCOLS(user_cols));
}

static int cmd_users_get(const struct ctx *ctx, const struct args *a)
{
	return run_on(ctx, "GET", "/v1/users/", a->pos[0], "", NULL, user_cols, NCOLS(user_cols),
		      NULL, NULL);
}

static const char *const user_create_opts[] = {"email=", "role=", "password-stdin", NULL};

static int cmd_users_create(const struct ctx *ctx, const struct args *a)
{
	char password[CLI_PASSWORD_MAX + 1];
	const char *email = get_opt(a, "email"), *role = get_opt(a, "role");
	json_t *body = NULL, *answer = NULL;
	int rc;

	if (email == NULL)
		return usage_error("--email is required");
	if (role == NULL)
		return usage_error("--role is required");
	rc = cli_read_password("Password for the new user: ", true, password, sizeof(password));
	if (rc < 0)
		return rc;
	body = json_pack("{s:s, s:s, s:s}", "email", email, "password", password, "role", role);
	explicit_bzero(password, sizeof(password));
	if (body == NULL) {
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	rc = run_create(ctx, "/v1/users", body, &answer);
	json_decref(body);
	if (rc == 0)
		rc = show(ctx, answer, user_cols, NCOLS(user_cols));
	json_decref(answer);
	return rc;
}

static int cmd_users_set_role(const struct ctx *ctx, const struct args *a)
{
	json_t *body = json_pack("{s:s}", "role", a->pos[1]);
	if (body == NULL) {
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	int rc = run_on(ctx, "PATCH", "/v1/users/", a->pos[0], "", body, user_cols,
			NCOLS(user_cols), NULL, NULL);
	json_decref(body);
	return rc;
}

static int cmd_users_delete(const struct ctx *ctx, const struct args *a)
{
	return run_on(ctx, "DELETE", "/v1/users/", a->pos[0], "", NULL, user_cols, NCOLS(user_cols),
		      "user", "deleted");
}

static int cmd_keys_list(const struct ctx *ctx, const struct args *a)
{
	(void)a;
	return run_list(ctx, "/v1/api-keys", key_cols, NCOLS(key_cols));
}

static const char *const key_create_opts[] = {"name=", "role=", "permission-set=*", NULL};

/* A JSON array of strings; NULL (reported) when out of memory. */
static json_t *string_array(const char *const *v, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr != NULL && i < n; i++) {
		if (json_array_append_new(arr, json_string(v[i])) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	if (arr == NULL)
		cli_errorf("out of memory");
	return arr;
}

static int cmd_keys_create(const struct ctx *ctx, const struct args *a)
{
	const char *name = get_opt(a, "name"), *role = get_opt(a, "role");
	const char *sets[MAX_REPEATED];
	size_t nsets = get_all(a, "permission-set", sets);
	json_t *body, *answer = NULL;
	int rc;

	if (name == NULL)
		return usage_error("--name is required");
	if (role == NULL)
		return usage_error("--role is required");
	if ((body = json_pack("{s:s, s:s}", "name", name, "role", role)) == NULL) {
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	/* Sets can only be given to a key when it is made (the API has no later change). */
	if (nsets > 0 &&
	    json_object_set_new(body, "permission_sets", string_array(sets, nsets)) < 0) {
		json_decref(body);
		return CLI_E_FAIL;
	}
	rc = run_create(ctx, "/v1/api-keys", body, &answer);
	json_decref(body);
	if (rc == 0) {
		rc = show(ctx, answer, new_key_cols, NCOLS(new_key_cols));
		if (rc == 0 && !ctx->json)
			fprintf(stderr, "Store the key now: it is not shown again.\n");
	}
	json_decref(answer);
	return rc;
}

static int cmd_keys_delete(const struct ctx *ctx, const struct args *a)
{
	return run_on(ctx, "DELETE", "/v1/api-keys/", a->pos[0], "", NULL, key_cols,
		      NCOLS(key_cols), "api key", "deleted");
}

/* ---- permission sets -------------------------------------------------- */

static const struct cli_column set_cols[] = {
    {"NAME", "name", CLI_COL_TEXT},
    {"RULES", "rules", CLI_COL_TEXT},	    /* a count: see set_summary */
    {"SUBJECTS", "subjects", CLI_COL_TEXT}, /* a count */
    {"CREATED", "created_at", CLI_COL_TIME},
    {"UPDATED", "updated_at", CLI_COL_TIME},
};

static const struct cli_column rule_cols[] = {
    {"EFFECT", "effect", CLI_COL_TEXT},
    {"METHOD", "method", CLI_COL_TEXT},
    {"PATH", "path", CLI_COL_TEXT},
};

static const struct cli_column subject_cols[] = {
    {"SUBJECT", "id", CLI_COL_TEXT},
};

/* A copy of a set (or of an array of sets) with `rules` and `subjects` as counts. */
static json_t *set_summary(const json_t *v)
{
	if (json_is_array(v)) {
		json_t *out = json_array();
		size_t i;
		const json_t *item;
		json_array_foreach(v, i, item)
		{
			if (out == NULL || json_array_append_new(out, set_summary(item)) < 0) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	}
	json_t *out = json_deep_copy(v);
	if (out == NULL)
		return NULL;
	const char *counted[] = {"rules", "subjects"};
	for (size_t i = 0; i < 2; i++) {
		json_t *arr = json_object_get(v, counted[i]);
		if (json_is_array(arr) &&
		    json_object_set_new(out, counted[i],
					json_integer((json_int_t)json_array_size(arr))) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/*
 * Prints a set: its JSON, or in table mode a summary line, then its rules
 * (EFFECT METHOD PATH) and its subjects (SUBJECT), each under a blank line.
 */
static int show_set(const struct ctx *ctx, const json_t *set)
{
	if (ctx->json)
		return cli_print_json(set);
	json_t *summary = set_summary(set), *subjects = json_array();
	const json_t *rules = json_object_get(set, "rules"),
		     *ids = json_object_get(set, "subjects");
	size_t i;
	const json_t *id;
	int rc = 0;

	if (summary == NULL || subjects == NULL)
		rc = CLI_E_FAIL;
	json_array_foreach(ids, i, id)
	{
		if (rc == 0 && json_array_append_new(subjects, json_pack("{s:O}", "id", id)) < 0)
			rc = CLI_E_FAIL;
	}
	if (rc < 0)
		cli_errorf("out of memory");
	if (rc == 0)
		rc = cli_print_table(set_cols, NCOLS(set_cols), summary);
	if (rc == 0) {
		putchar('\n');
		rc = cli_print_table(rule_cols, NCOLS(rule_cols),
				     json_is_array(rules) ? rules : json_array());
	}
	if (rc == 0 && json_array_size(subjects) > 0) {
		putchar('\n');
		rc = cli_print_table(subject_cols, NCOLS(subject_cols), subjects);
	}
	json_decref(summary);
	json_decref(subjects);
	return rc;
}

/* Sends method to prefix<escaped id> with body; *answer gets the reply body. */
static int call_on(const struct ctx *ctx, const char *method, const char *prefix, const char *id,
		   const json_t *body, json_t **answer)
{
	struct cli_session *s = NULL;
	char *path = resource_path(prefix, id, "");
	int rc;

	if (path == NULL) {
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	rc = open_session(ctx, &s);
	if (rc == 0)
		rc = cli_session_call(s, method, path, body, answer);
	cli_session_free(s);
	free(path);
	return rc;
}

static int cmd_sets_list(const struct ctx *ctx, const struct args *a)
{
	struct cli_session *s = NULL;
	json_t *items = NULL, *summary = NULL;
	int rc = open_session(ctx, &s);

	(void)a;
	if (rc == 0)
		rc = cli_session_list(s, "/v1/permission-sets", &items);
	cli_session_free(s);
	/* Tables count the rules and subjects; JSON has them all. */
	if (rc == 0 && !ctx->json && (summary = set_summary(items)) == NULL) {
		cli_errorf("out of memory");
		rc = CLI_E_FAIL;
	}
	if (rc == 0)
		rc = show_list(ctx, ctx->json ? items : summary, set_cols, NCOLS(set_cols));
	json_decref(summary);
	json_decref(items);
	return rc;
}

static int cmd_sets_get(const struct ctx *ctx, const struct args *a)
{
	json_t *answer = NULL;
	int rc = call_on(ctx, "GET", "/v1/permission-sets/", a->pos[0], NULL, &answer);
	if (rc == 0)
		rc = show_set(ctx, answer);
	json_decref(answer);
	return rc;
}

/*
 * The rules of --rule EFFECT:METHOD:PATH options as a JSON array. The path
 * is everything after the second ':'; the server checks the three parts.
 */
static int rules_from_args(const struct args *a, json_t **out)
{
	const char *specs[MAX_REPEATED];
	size_t n = get_all(a, "rule", specs);
	json_t *rules = json_array();

	if (rules == NULL) {
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *c1 = strchr(specs[i], ':');
		const char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
		if (c2 == NULL) {
			json_decref(rules);
			return usage_error(
			    "--rule must be EFFECT:METHOD:PATH (e.g. deny:DELETE:/v1/users/*), "
			    "not '%s'",
			    specs[i]);
		}
		json_t *r =
		    json_pack("{s:s%, s:s%, s:s}", "effect", specs[i], (size_t)(c1 - specs[i]),
			      "method", c1 + 1, (size_t)(c2 - c1 - 1), "path", c2 + 1);
		if (r == NULL || json_array_append_new(rules, r) < 0) {
			json_decref(rules);
			cli_errorf("out of memory");
			return CLI_E_FAIL;
		}
	}
	*out = rules;
	return 0;
}

static const char *const set_create_opts[] = {"rule=*", NULL};
static const char *const set_update_opts[] = {"rule=*", "no-rules", NULL};

static int cmd_sets_create(const struct ctx *ctx, const struct args *a)
{
	json_t *rules = NULL, *body, *answer = NULL;
	int rc = rules_from_args(a, &rules);

	if (rc < 0)
		return rc;
	if ((body = json_pack("{s:s, s:o}", "name", a->pos[0], "rules", rules)) == NULL) {
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	rc = run_create(ctx, "/v1/permission-sets", body, &answer);
	json_decref(body);
	if (rc == 0)
		rc = show_set(ctx, answer);
	json_decref(answer);
	return rc;
}

static int cmd_sets_update(const struct ctx *ctx, const struct args *a)
{
	json_t *rules = NULL, *body, *answer = NULL;
	bool none = has_opt(a, "no-rules"), some = has_opt(a, "rule");
	int rc;

	/* Replacing every rule with nothing is said explicitly, never by forgetting --rule. */
	if (none == some)
		return usage_error(
		    none ? "--no-rules and --rule exclude each other"
			 : "give the new rules with --rule, or --no-rules to empty the set");
	if ((rc = rules_from_args(a, &rules)) < 0)
		return rc;
	if ((body = json_pack("{s:o}", "rules", rules)) == NULL) {
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	rc = call_on(ctx, "PUT", "/v1/permission-sets/", a->pos[0], body, &answer);
	json_decref(body);
	if (rc == 0)
		rc = show_set(ctx, answer);
	json_decref(answer);
	return rc;
}

static int cmd_sets_delete(const struct ctx *ctx, const struct args *a)
{
	return run_on(ctx, "DELETE", "/v1/permission-sets/", a->pos[0], "", NULL, set_cols,
		      NCOLS(set_cols), "permission set", "deleted");
}

static int cmd_users_set_sets(const struct ctx *ctx, const struct args *a)
{
	json_t *names = string_array(a->pos + 1, a->npos - 1), *body;
	if (names == NULL)
		return CLI_E_FAIL;
	if ((body = json_pack("{s:o}", "permission_sets", names)) == NULL) {
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	int rc = run_on(ctx, "PATCH", "/v1/users/", a->pos[0], "", body, user_cols,
			NCOLS(user_cols), NULL, NULL);
	json_decref(body);
	return rc;
}

static const struct command commands[] = {
    {"login", NULL, cmd_login, login_opts, 0, 0, "login [--server URL] [--ca FILE] [--email EMAIL]",
     "Log in; the password is read from stdin, or prompted for on a terminal."},
    {"logout", NULL, cmd_logout, NULL, 0, 0, "logout",
     "Revoke the session on the server and delete the stored credentials."},
    {"whoami", NULL, cmd_whoami, NULL, 0, 0, "whoami", "Show who the stored login is."},
    {"tenants", "list", cmd_tenants_list, NULL, 0, 0, "tenants list", "List all tenants."},
    {"tenants", "get", cmd_tenants_get, NULL, 1, 1, "tenants get ID", "Show one tenant."},
    {"tenants", "create", cmd_tenants_create, tenant_create_opts, 0, 0,
     "tenants create --name NAME --admin-email EMAIL [--admin-password-stdin]\n"
     "         [--cpu-cores X --memory-mb N --containers N --storage-mb N]",
     "Create a tenant and its first Admin (password from stdin, or prompted for)."},
    {"tenants", "rename", cmd_tenants_rename, name_opts, 1, 1, "tenants rename ID --name NAME",
     "Rename a tenant."},
    {"tenants", "delete", cmd_tenants_delete, NULL, 1, 1, "tenants delete ID", "Delete a tenant."},
    {"tenants", "set-quotas", cmd_tenants_set_quotas, set_quota_opts, 1, 1,
     "tenants set-quotas ID --cpu-cores X --memory-mb N --containers N --storage-mb N",
     "Replace a tenant's quotas."},
    {"users", "list", cmd_users_list, NULL, 0, 0, "users list", "List the tenant's users."},
    {"users", "get", cmd_users_get, NULL, 1, 1, "users get ID", "Show one user."},
    {"users", "create", cmd_users_create, user_create_opts, 0, 0,
     "users create --email EMAIL --role ROLE",
     "Create a user (admin, operator, developer, readonly); password from stdin, or prompted "
     "for."},
    {"users", "set-role", cmd_users_set_role, NULL, 2, 2, "users set-role ID ROLE",
     "Change a user's role."},
    {"users", "set-permission-sets", cmd_users_set_sets, NULL, 1, MAX_POS,
     "users set-permission-sets ID [NAME...]",
     "Replace a user's permission sets with the NAMEs given (none: take them all away)."},
    {"users", "delete", cmd_users_delete, NULL, 1, 1, "users delete ID", "Delete a user."},
    {"api-keys", "list", cmd_keys_list, NULL, 0, 0, "api-keys list", "List API keys."},
    {"api-keys", "create", cmd_keys_create, key_create_opts, 0, 0,
     "api-keys create --name NAME --role ROLE [--permission-set NAME]...",
     "Create an API key, with its permission sets; the key is shown this once."},
    {"api-keys", "delete", cmd_keys_delete, NULL, 1, 1, "api-keys delete ID", "Revoke an API key."},
    {"permission-sets", "list", cmd_sets_list, NULL, 0, 0, "permission-sets list",
     "List the tenant's permission sets."},
    {"permission-sets", "get", cmd_sets_get, NULL, 1, 1, "permission-sets get NAME",
     "Show a permission set: its rules and who holds it."},
    {"permission-sets", "create", cmd_sets_create, set_create_opts, 1, 1,
     "permission-sets create NAME [--rule EFFECT:METHOD:PATH]...",
     "Create a permission set. EFFECT is allow or deny, METHOD GET, POST, PUT, PATCH, DELETE\n"
     "or *, PATH an API path pattern (* one segment, ** the rest); quote it for the shell."},
    {"permission-sets", "update", cmd_sets_update, set_update_opts, 1, 1,
     "permission-sets update NAME (--rule EFFECT:METHOD:PATH... | --no-rules)",
     "Replace all the rules of a permission set with the ones given."},
    {"permission-sets", "delete", cmd_sets_delete, NULL, 1, 1, "permission-sets delete NAME",
     "Delete a permission set; whoever held it loses it."},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_usage(FILE *f, const struct command *cmd)
{
	if (cmd != NULL) {
		fprintf(f, "usage: odysseus %s\n\n%s\n", cmd->usage, cmd->help);
		fprintf(f, "\nGlobal options: --output json|table, --server URL, --ca FILE, "
			   "--help\n");
		return;
	}
	fprintf(f, "usage: odysseus [--output json|table] [--server URL] [--ca FILE] COMMAND\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s\n", commands[i].usage);
	fprintf(f,
		"\nGlobal options:\n"
		"  -o, --output json|table  output format (default table)\n"
		"  --server URL             control plane (default $ODYSSEUS_SERVER, then the "
		"stored login)\n"
		"  --ca FILE                CA certificate to trust (default $ODYSSEUS_CA, then "
		"the stored one)\n"
		"  -h, --help               this help; 'odysseus COMMAND --help' for one command\n"
		"  --version                print the version\n\n"
		"Exit status: 0 ok, 1 error, 2 usage, 3 not logged in/401, 4 forbidden, "
		"5 not found,\n"
		"6 conflict, 7 invalid request, 8 rate limited, 9 cannot connect/TLS, "
		"10 server error.\n");
}

static void print_group(FILE *f, const char *group)
{
	fprintf(f, "usage:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].group, group) == 0)
			fprintf(f, "  odysseus %s\n", commands[i].usage);
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v != NULL && v[0] != '\0' ? v : NULL;
}

static int run(int argc, char **argv)
{
	struct args a = {0};
	struct ctx ctx = {0};
	const struct command *cmd = NULL;
	int i = 1, rc;

	if ((rc = parse_args(argc, argv, &i, NULL, &a)) < 0)
		return rc;
	if (i >= argc) {
		if (a.help) {
			print_usage(stdout, NULL);
			return 0;
		}
		print_usage(stderr, NULL);
		return CLI_E_USAGE;
	}
	const char *group = argv[i++];
	bool known_group = false;
	for (size_t k = 0; k < NCOMMANDS; k++) {
		if (strcmp(commands[k].group, group) != 0)
			continue;
		known_group = true;
		if (commands[k].name == NULL) {
			cmd = &commands[k];
			break;
		}
		if (i < argc && strcmp(commands[k].name, argv[i]) == 0) {
			cmd = &commands[k];
			i++;
			break;
		}
	}
	if (!known_group)
		return usage_error("unknown command '%s'", group);
	if (cmd == NULL) {
		bool help = a.help;
		for (int k = i; k < argc; k++)
			help |= strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0;
		if (help) {
			print_group(stdout, group);
			return 0;
		}
		if (i < argc)
			cli_errorf("unknown command '%s %s'", group, argv[i]);
		else
			cli_errorf("'%s' needs a subcommand", group);
		print_group(stderr, group);
		return CLI_E_USAGE;
	}
	current = cmd;
	if ((rc = parse_args(argc, argv, &i, cmd, &a)) < 0)
		return rc;
	if (a.help) {
		print_usage(stdout, cmd);
		return 0;
	}
	if (a.npos < cmd->min_pos)
		return usage_error("missing arguments");
	if (a.npos > cmd->max_pos)
		return usage_error("unexpected argument '%s'", a.pos[cmd->max_pos]);
	for (size_t k = 0; k < a.npos; k++)
		if (a.pos[k][0] == '\0')
			return usage_error("arguments must not be empty");
	if (a.output != NULL && strcmp(a.output, "json") != 0 && strcmp(a.output, "table") != 0)
		return usage_error("--output must be json or table, not '%s'", a.output);
	ctx.json = a.output != NULL && strcmp(a.output, "json") == 0;
	ctx.server = a.server != NULL ? a.server : env("ODYSSEUS_SERVER");
	ctx.ca = a.ca != NULL ? a.ca : env("ODYSSEUS_CA");
	if ((ctx.server != NULL && ctx.server[0] == '\0') || (ctx.ca != NULL && ctx.ca[0] == '\0'))
		return usage_error("--server and --ca must not be empty");
	return cmd->run(&ctx, &a);
}

int main(int argc, char **argv)
{
	int rc = cli_init();
	if (rc == 0) {
		rc = run(argc, argv);
		cli_done();
	}
	if (fflush(stdout) == EOF && rc == 0) {
		cli_errorf("cannot write the output");
		rc = CLI_E_FAIL;
	}
	return cli_exit_status(rc);
}
