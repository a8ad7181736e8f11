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
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit/audit.h"
#include "audit/merkle.h"
#include "cli/cli.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"

#ifndef ODYSSEUS_VERSION
#define ODYSSEUS_VERSION "0.1.0"
#endif

#define MAX_OPTS     16
#define MAX_POS	     65	 /* secrets grant NAME DEPLOYMENT... (the server takes 64) */
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
 * The index of cmd's repeatable "cmd=*" option, or -1: for such a command
 * the arguments after `--` are values of that option, one word each.
 */
static int rest_opt(const struct command *cmd)
{
	bool arg, repeat;
	int i = opt_index(cmd->opts, "cmd", 3, &arg, &repeat);
	return i >= 0 && arg && repeat ? i : -1;
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
			int rest = only_pos ? rest_opt(cmd) : -1;
			if (rest >= 0) {
				/* `deploy web --image x -- sh -c '...'`: words of --cmd. */
				if (a->nrep >= MAX_REPEATED)
					return usage_error("too many arguments after --");
				a->rep[a->nrep] = s;
				a->rep_opt[a->nrep++] = rest;
				a->has[rest] = true;
				continue;
			}
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
			return usage_error("unknown option %.*s", (int)strcspn(s, "="), s);
		const char *eq = strchr(name, '=');
		size_t n = eq != NULL ? (size_t)(eq - name) : strlen(name);
		bool arg, repeat = false;
		int gi = opt_index(global_opts, name, n, &arg, &repeat);
		int ci = gi < 0 && cmd != NULL ? opt_index(cmd->opts, name, n, &arg, &repeat) : -1;
		/* Only the option's name: what follows '=' may be a value not to echo. */
		if (gi < 0 && ci < 0)
			return usage_error("unknown option %.*s", (int)strcspn(s, "="), s);
		if (gi == 1 && cmd != NULL &&
		    (ci = opt_index(cmd->opts, "server", 6, &arg, &repeat)) >= 0) {
			/* `audit verify --server [URL]`: a flag whose URL is optional. */
			if (eq != NULL)
				value = eq + 1;
			else if (*i + 1 < argc && argv[*i + 1][0] != '-')
				value = argv[++*i];
			if (value != NULL)
				set_global(a, gi, value);
			a->has[ci] = true;
			continue;
		}
		if (arg) {
			if (eq != NULL) {
				value = eq + 1;
			} else if (*i + 1 < argc) {
				value = argv[++*i];
			} else {
				return usage_error("option %s needs a value", s);
			}
		} else if (eq != NULL) {
			return usage_error("option %.*s takes no value", (int)strcspn(s, "="), s);
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

/* ---- audit ------------------------------------------------------------ */

/*
 * What `audit verify --server` remembers, per server, like ssh's
 * known_hosts: the audit public key (trust on first use unless --pin-key)
 * and the newest checkpoint it verified. Next time the server must still
 * sign with that key and prove that its newest tree extends that
 * checkpoint (a consistency proof), so a log cut short or rewritten behind
 * it is caught.
 *
 *   { "servers": { "<base URL>": { "key_id": "...", "public_key": "<hex>",
 *                                  "tree_size": N, "root_hash": "<hex>",
 *                                  "checked_at": "<RFC 3339>" } } }
 */
#define AUDIT_KNOWN_FILE "audit-known.json"
#define PIN_FILE_MAX	 16384

/* Reads exactly n bytes of hex (2n characters) at key of obj. */
static bool json_hex(const json_t *obj, const char *key, uint8_t *out, size_t n)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s != NULL && strlen(s) == 2 * n && hex_decode(s, n, out) == 0;
}

/* A 32-byte public key as 64 hex characters, surrounding blanks ignored. */
static bool parse_hex_key(const char *s, size_t len, uint8_t out[static AUDIT_PUB_LEN])
{
	while (len > 0 && strchr(" \t\r\n", s[0]) != NULL)
		s++, len--;
	while (len > 0 && strchr(" \t\r\n", s[len - 1]) != NULL)
		len--;
	return len == 2 * AUDIT_PUB_LEN && hex_decode(s, AUDIT_PUB_LEN, out) == 0;
}

/* --pin-key-file: 64 hex characters, or a PEM Ed25519 public key (openssl pkey -pubout). */
static int read_pin_file(const char *path, uint8_t out[static AUDIT_PUB_LEN])
{
	char text[PIN_FILE_MAX + 1];
	FILE *f = fopen(path, "r");
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	int rc = CLI_E_USAGE;

	if (f == NULL) {
		cli_errorf("cannot open %s: %s", path, strerror(errno));
		return CLI_E_FAIL;
	}
	size_t n = fread(text, 1, sizeof(text), f);
	bool bad = ferror(f) != 0;
	fclose(f);
	if (bad || n > PIN_FILE_MAX) {
		cli_errorf("cannot read %s: %s", path, bad ? "read error" : "too large");
		return CLI_E_FAIL;
	}
	text[n] = '\0';
	if (strstr(text, "-----BEGIN PUBLIC KEY-----") != NULL) {
		size_t len = AUDIT_PUB_LEN;
		if ((bio = BIO_new_mem_buf(text, (int)n)) != NULL &&
		    (pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) != NULL &&
		    EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519 &&
		    EVP_PKEY_get_raw_public_key(pk, out, &len) == 1 && len == AUDIT_PUB_LEN)
			rc = 0;
	} else if (parse_hex_key(text, n, out)) {
		rc = 0;
	}
	if (rc < 0)
		cli_errorf("%s holds neither an Ed25519 public key in PEM nor 64 hex characters",
			   path);
	EVP_PKEY_free(pk);
	BIO_free(bio);
	return rc;
}

/* --seen SIZE:ROOTHEX */
static int parse_seen(const char *s, uint64_t *size, uint8_t root[static AUDIT_HASH_LEN])
{
	const char *colon = strchr(s, ':');
	char num[24];
	char *end;

	if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof(num) ||
	    strspn(s, "0123456789") != (size_t)(colon - s))
		return usage_error("--seen must be SIZE:ROOTHEX (a checkpoint's tree size and root)");
	memcpy(num, s, (size_t)(colon - s));
	num[colon - s] = '\0';
	errno = 0;
	unsigned long long v = strtoull(num, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || strlen(colon + 1) != 2 * AUDIT_HASH_LEN ||
	    hex_decode(colon + 1, AUDIT_HASH_LEN, root) < 0)
		return usage_error("--seen must be SIZE:ROOTHEX (a checkpoint's tree size and root)");
	*size = (uint64_t)v;
	return 0;
}

/* Prints a verified log: "audit log verified: N records, K checkpoints, root <hex>". */
static int verify_ok(const struct ctx *ctx, uint64_t records, uint64_t checkpoints,
		     uint64_t signed_size, const uint8_t root[static AUDIT_HASH_LEN])
{
	char hex[2 * AUDIT_HASH_LEN + 1];

	hex_encode(root, AUDIT_HASH_LEN, hex);
	if (ctx->json) {
		json_t *v = json_pack("{s:b, s:I, s:I, s:I, s:s}", "verified", 1, "records",
				      (json_int_t)records, "checkpoints", (json_int_t)checkpoints,
				      "signed_records", (json_int_t)signed_size, "root", hex);
		if (v == NULL) {
			cli_errorf("out of memory");
			return CLI_E_FAIL;
		}
		int rc = cli_print_json(v);
		json_decref(v);
		return rc;
	}
	printf("audit log verified: %llu records, %llu checkpoints, root %s\n",
	       (unsigned long long)records, (unsigned long long)checkpoints, hex);
	if (signed_size < records)
		fprintf(stderr, "note: records %llu..%llu are not covered by a signed checkpoint yet\n",
			(unsigned long long)signed_size + 1, (unsigned long long)records);
	return 0;
}

/*
 * Reports the first problem: "odysseus: audit log integrity failure:
 * PROBLEM at seq N: DETAIL" (or "(checkpoint of N records)" when the
 * problem is a checkpoint's); returns CLI_E_INTEGRITY.
 */
static int verify_failed(const struct ctx *ctx, const struct audit_verify_report *r)
{
	char detail[sizeof(r->detail)];
	const char *name = audit_problem_name(r->problem);

	cli_sanitize(r->detail, detail, sizeof(detail));
	if (ctx->json) {
		json_t *v = json_pack("{s:b, s:s, s:I, s:I, s:s, s:I, s:I}", "verified", 0,
				      "problem", name, "bad_seq", (json_int_t)r->bad_seq,
				      "checkpoint_size", (json_int_t)r->checkpoint_size, "detail",
				      detail, "records", (json_int_t)r->records, "checkpoints",
				      (json_int_t)r->checkpoints);
		if (v != NULL)
			(void)cli_print_json(v);
		json_decref(v);
	}
	if (r->bad_seq != 0)
		cli_errorf("audit log integrity failure: %s at seq %llu: %s", name,
			   (unsigned long long)r->bad_seq, detail);
	else if (r->checkpoint_size != 0)
		cli_errorf("audit log integrity failure: %s (checkpoint of %llu records): %s", name,
			   (unsigned long long)r->checkpoint_size, detail);
	else
		cli_errorf("audit log integrity failure: %s: %s", name, detail);
	return CLI_E_INTEGRITY;
}

/* Fills a report of one problem found on the server (not in a file). */
static int server_problem(const struct ctx *ctx, struct audit_verify_report *r,
			  enum audit_problem p, uint64_t bad_seq, uint64_t cp_size, const char *fmt,
			  ...) __attribute__((format(printf, 6, 7)));
static int server_problem(const struct ctx *ctx, struct audit_verify_report *r,
			  enum audit_problem p, uint64_t bad_seq, uint64_t cp_size, const char *fmt,
			  ...)
{
	va_list ap;

	r->problem = p;
	r->bad_seq = bad_seq;
	r->checkpoint_size = cp_size;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	return verify_failed(ctx, r);
}

/* A checkpoint as GET /v1/audit/checkpoints shows it. */
static bool checkpoint_from_json(const json_t *o, struct audit_checkpoint *cp)
{
	const json_t *ts = json_object_get(o, "tree_size");
	const char *t = json_string_value(json_object_get(o, "time"));
	const char *kid = json_string_value(json_object_get(o, "key_id"));

	memset(cp, 0, sizeof(*cp));
	if (!json_is_integer(ts) || json_integer_value(ts) < 1 || t == NULL || kid == NULL ||
	    strlen(kid) != AUDIT_KEY_ID_LEN - 1 || time_parse_rfc3339(t, &cp->time_ns) < 0)
		return false;
	cp->tree_size = (uint64_t)json_integer_value(ts);
	memcpy(cp->key_id, kid, AUDIT_KEY_ID_LEN);
	return json_hex(o, "root_hash", cp->root_hash, AUDIT_HASH_LEN) &&
	       json_hex(o, "signature", cp->signature, AUDIT_SIG_LEN);
}

struct verify_args {
	bool pinned, seen, allow_unsigned;
	uint8_t pub[AUDIT_PUB_LEN];
	uint64_t seen_size;
	uint8_t seen_root[AUDIT_HASH_LEN];
};

/*
 * Checks that the server's newest checkpoint (n, root_n) extends the one
 * seen before (m, root_m): GET /v1/audit/proof?from=m&tree_size=n and
 * merkle_consistency_verify. Returns 0, CLI_E_INTEGRITY (reported) or
 * another CLI_E code.
 */
static int check_consistency(const struct ctx *ctx, struct cli_session *s,
			     struct audit_verify_report *r, uint64_t m,
			     const uint8_t root_m[static AUDIT_HASH_LEN], uint64_t n,
			     const uint8_t root_n[static AUDIT_HASH_LEN])
{
	uint8_t path[MERKLE_MAX_PATH][AUDIT_HASH_LEN];
	struct cli_response resp;
	struct merkle_hasher *h = NULL;
	char q[96];
	int rc;

	snprintf(q, sizeof(q), "/v1/audit/proof?from=%llu&tree_size=%llu", (unsigned long long)m,
		 (unsigned long long)n);
	if ((rc = cli_session_request(s, "GET", q, NULL, &resp)) < 0)
		return rc;
	if (resp.status == 400) {
		/* The server says it does not hold m (or n) records. */
		cli_response_done(&resp);
		return server_problem(ctx, r, AUDIT_PROBLEM_TRUNCATED, n + 1, 0,
				      "the server cannot prove that its log of %llu records extends "
				      "the checkpoint of %llu records seen before",
				      (unsigned long long)n, (unsigned long long)m);
	}
	if ((rc = cli_response_check(&resp)) < 0) {
		cli_response_done(&resp);
		return rc;
	}
	const json_t *b = resp.body, *p = json_object_get(b, "path"), *item;
	const json_t *ts = json_object_get(b, "tree_size"), *sq = json_object_get(b, "seq");
	const char *type = json_string_value(json_object_get(b, "type"));
	uint8_t root[AUDIT_HASH_LEN];
	size_t i, np = json_array_size(p);
	bool ok = type != NULL && strcmp(type, "consistency") == 0 && json_is_integer(ts) &&
		  json_integer_value(ts) == (json_int_t)n && json_is_integer(sq) &&
		  json_integer_value(sq) == (json_int_t)m && json_is_array(p) &&
		  np <= MERKLE_MAX_PATH;
	json_array_foreach(p, i, item)
	{
		const char *hx = json_string_value(item);
		if (!ok || i >= MERKLE_MAX_PATH)
			break;
		ok = hx != NULL && strlen(hx) == 2 * AUDIT_HASH_LEN &&
		     hex_decode(hx, AUDIT_HASH_LEN, path[i]) == 0;
	}
	if (!ok) {
		cli_response_done(&resp);
		return server_problem(ctx, r, AUDIT_PROBLEM_MALFORMED, 0, n,
				      "the server's consistency proof from %llu to %llu records is "
				      "malformed",
				      (unsigned long long)m, (unsigned long long)n);
	}
	/* The root the server computes now must be the one it signed. */
	if (json_object_get(b, "root_hash") != NULL &&
	    (!json_hex(b, "root_hash", root, AUDIT_HASH_LEN) ||
	     memcmp(root, root_n, AUDIT_HASH_LEN) != 0)) {
		cli_response_done(&resp);
		return server_problem(ctx, r, AUDIT_PROBLEM_CHECKPOINT_ROOT, 0, n,
				      "the server's tree of %llu records no longer has the root "
				      "its checkpoint signed",
				      (unsigned long long)n);
	}
	cli_response_done(&resp);
	if (merkle_hasher_new(&h) < 0) {
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	rc = merkle_consistency_verify(h, m, n, root_m, root_n,
				       (const uint8_t(*)[AUDIT_HASH_LEN])path, np);
	merkle_hasher_free(h);
	if (rc == ODX_ECORRUPT || rc == ODX_EINVAL)
		return server_problem(ctx, r, AUDIT_PROBLEM_SEEN_MISMATCH, 0, m,
				      "the log was rewritten or cut short behind the checkpoint of "
				      "%llu records seen before: the consistency proof to the newest "
				      "checkpoint (%llu records) fails",
				      (unsigned long long)m, (unsigned long long)n);
	if (rc < 0) {
		cli_errorf("cannot check the consistency proof: %s", odx_strerror(rc));
		return CLI_E_FAIL;
	}
	return 0;
}

/* Remembers key and newest checkpoint (size 0: none) of server in the known file. */
static int remember_server(json_t *known, const char *server,
			   const uint8_t pub[static AUDIT_PUB_LEN], const char *key_id,
			   uint64_t size, const uint8_t root[static AUDIT_HASH_LEN])
{
	char pubx[2 * AUDIT_PUB_LEN + 1], rootx[2 * AUDIT_HASH_LEN + 1], now[TIME_RFC3339_LEN];
	json_t *servers = json_object_get(known, "servers");

	hex_encode(pub, AUDIT_PUB_LEN, pubx);
	hex_encode(root, AUDIT_HASH_LEN, rootx);
	time_format_rfc3339(time_now_ns(), now);
	json_t *e = json_pack("{s:s, s:s, s:s}", "key_id", key_id, "public_key", pubx,
			      "checked_at", now);
	if (e != NULL && size > 0 &&
	    (json_object_set_new(e, "tree_size", json_integer((json_int_t)size)) < 0 ||
	     json_object_set_new(e, "root_hash", json_string(rootx)) < 0)) {
		json_decref(e);
		e = NULL;
	}
	if (e != NULL && !json_is_object(servers)) {
		servers = json_object();
		if (json_object_set_new(known, "servers", servers) < 0)
			servers = NULL;
	}
	if (e == NULL || servers == NULL || json_object_set_new(servers, server, e) < 0) {
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	return cli_state_save(AUDIT_KNOWN_FILE, known);
}

static int verify_server(const struct ctx *ctx, const struct verify_args *va)
{
	struct audit_verify_report r = {0};
	struct cli_session *s = NULL;
	json_t *body = NULL, *known = NULL;
	uint8_t srv_pub[AUDIT_PUB_LEN], pub[AUDIT_PUB_LEN], seen_root[AUDIT_HASH_LEN];
	uint8_t root[AUDIT_HASH_LEN] = {0};
	char kid[AUDIT_KEY_ID_LEN], kid_pinned[AUDIT_KEY_ID_LEN];
	uint64_t seen_size = 0, size = 0, k = 0;
	bool tofu = false;
	int rc;

	if ((rc = open_session(ctx, &s)) < 0)
		return rc;
	const char *server = cli_session_server(s);
	if ((rc = cli_state_load(AUDIT_KNOWN_FILE, &known)) < 0)
		goto out;
	const json_t *entry = json_object_get(json_object_get(known, "servers"), server);
	if (entry != NULL && !json_is_object(entry)) {
		cli_errorf("%s is damaged; move it away to start afresh", AUDIT_KNOWN_FILE);
		rc = CLI_E_FAIL;
		goto out;
	}
	if ((rc = cli_session_call(s, "GET", "/v1/audit/checkpoints", NULL, &body)) < 0)
		goto out;
	/* Follow next_cursor: a long-lived log has more checkpoints than one page. */
	for (;;) {
		const char *cur = json_string_value(json_object_get(body, "next_cursor"));
		if (!cur)
			break;
		if (!*cur || strspn(cur, "0123456789") != strlen(cur) || strlen(cur) > 20) {
			rc = server_problem(ctx, &r, AUDIT_PROBLEM_MALFORMED, 0, 0,
					    "the server's checkpoint cursor is malformed");
			goto out;
		}
		char path[64];
		snprintf(path, sizeof(path), "/v1/audit/checkpoints?cursor=%s", cur);
		json_t *more = NULL;
		if ((rc = cli_session_call(s, "GET", path, NULL, &more)) < 0)
			goto out;
		json_array_extend(json_object_get(body, "items"), json_object_get(more, "items"));
		const char *next = json_string_value(json_object_get(more, "next_cursor"));
		bool stuck = next && strcmp(next, path + strlen("/v1/audit/checkpoints?cursor=")) == 0;
		json_object_set(body, "next_cursor", json_object_get(more, "next_cursor"));
		json_decref(more);
		if (stuck) { /* a server that never moves on would keep us here forever */
			rc = server_problem(ctx, &r, AUDIT_PROBLEM_MALFORMED, 0, 0,
					    "the server's checkpoint list does not advance");
			goto out;
		}
	}
	const json_t *key = json_object_get(body, "key"), *items = json_object_get(body, "items");
	const char *srv_kid = json_string_value(json_object_get(key, "key_id"));
	if (!json_is_array(items) || !json_hex(key, "public_key", srv_pub, AUDIT_PUB_LEN) ||
	    srv_kid == NULL || audit_key_id(srv_pub, kid) < 0 || strcmp(kid, srv_kid) != 0) {
		rc = server_problem(ctx, &r, AUDIT_PROBLEM_MALFORMED, 0, 0,
				    "the server's checkpoint list or key is malformed");
		goto out;
	}

	/* The key to hold the server to: pinned, else remembered, else this one (first use). */
	if (va->pinned) {
		memcpy(pub, va->pub, AUDIT_PUB_LEN);
	} else if (entry != NULL) {
		if (!json_hex(entry, "public_key", pub, AUDIT_PUB_LEN)) {
			cli_errorf("%s is damaged; move it away to start afresh", AUDIT_KNOWN_FILE);
			rc = CLI_E_FAIL;
			goto out;
		}
	} else {
		memcpy(pub, srv_pub, AUDIT_PUB_LEN);
		tofu = true;
	}
	if (audit_key_id(pub, kid_pinned) < 0) {
		cli_errorf("cannot compute a key id");
		rc = CLI_E_FAIL;
		goto out;
	}
	if (CRYPTO_memcmp(pub, srv_pub, AUDIT_PUB_LEN) != 0) {
		rc = server_problem(ctx, &r, AUDIT_PROBLEM_CHECKPOINT_SIGNATURE, 0, 0,
				    "the server's audit key %s is not the %s key %s", kid,
				    va->pinned ? "pinned" : "remembered", kid_pinned);
		goto out;
	}

	/* The checkpoint seen before: --seen, else the remembered one. */
	if (va->seen) {
		seen_size = va->seen_size;
		memcpy(seen_root, va->seen_root, AUDIT_HASH_LEN);
	} else if (entry != NULL && json_object_get(entry, "tree_size") != NULL) {
		const json_t *ts = json_object_get(entry, "tree_size");
		if (!json_is_integer(ts) || json_integer_value(ts) < 1 ||
		    !json_hex(entry, "root_hash", seen_root, AUDIT_HASH_LEN)) {
			cli_errorf("%s is damaged; move it away to start afresh", AUDIT_KNOWN_FILE);
			rc = CLI_E_FAIL;
			goto out;
		}
		seen_size = (uint64_t)json_integer_value(ts);
	}

	/* Every checkpoint: ascending, signed by the key, and agreeing with the seen one. */
	size_t i;
	const json_t *item;
	json_array_foreach(items, i, item)
	{
		struct audit_checkpoint cp;
		if (!checkpoint_from_json(item, &cp) || cp.tree_size <= size) {
			rc = server_problem(ctx, &r, AUDIT_PROBLEM_MALFORMED, 0, 0,
					    "checkpoint %zu of the server's list is malformed or "
					    "out of order",
					    i + 1);
			goto out;
		}
		if (audit_checkpoint_verify(&cp, pub) < 0) {
			rc = server_problem(ctx, &r, AUDIT_PROBLEM_CHECKPOINT_SIGNATURE, 0,
					    cp.tree_size,
					    "the signature of the checkpoint of %llu records does not "
					    "verify with key %s",
					    (unsigned long long)cp.tree_size, kid_pinned);
			goto out;
		}
		if (cp.tree_size == seen_size &&
		    memcmp(cp.root_hash, seen_root, AUDIT_HASH_LEN) != 0) {
			rc = server_problem(ctx, &r, AUDIT_PROBLEM_SEEN_MISMATCH, 0, seen_size,
					    "the checkpoint of %llu records has another root than "
					    "the one seen before",
					    (unsigned long long)seen_size);
			goto out;
		}
		size = cp.tree_size;
		memcpy(root, cp.root_hash, AUDIT_HASH_LEN);
		r.checkpoints = ++k;
	}
	r.records = size;

	if (seen_size > 0 && size < seen_size) {
		rc = server_problem(ctx, &r, AUDIT_PROBLEM_TRUNCATED, size + 1, 0,
				    "the server's newest checkpoint covers %llu records, but one of "
				    "%llu records was seen before: the log was cut short",
				    (unsigned long long)size, (unsigned long long)seen_size);
		goto out;
	}
	if (seen_size > 0 && size > seen_size &&
	    (rc = check_consistency(ctx, s, &r, seen_size, seen_root, size, root)) < 0)
		goto out;

	if (tofu)
		cli_errorf("remembering the audit key %s of %s (first use); check it against the "
			   "key your operator published",
			   kid, server);
	if ((rc = remember_server(known, server, pub, kid, size, root)) < 0)
		goto out;
	if (size == 0) {
		/* Nothing signed yet: the empty tree's root, SHA-256(). */
		struct merkle_hasher *h = NULL;
		struct merkle_frontier fr;
		merkle_frontier_init(&fr);
		if (merkle_hasher_new(&h) < 0 || merkle_frontier_root(h, &fr, root) < 0) {
			merkle_hasher_free(h);
			cli_errorf("out of memory");
			rc = CLI_E_FAIL;
			goto out;
		}
		merkle_hasher_free(h);
	}
	rc = verify_ok(ctx, size, k, size, root);
out:
	json_decref(body);
	json_decref(known);
	cli_session_free(s);
	return rc;
}

static const char *const audit_verify_opts[] = {"data-dir=",	 "export=",	 "checkpoints=",
						"server",	 "pin-key=",	 "pin-key-file=",
						"seen=",	 "allow-unsigned", "partial",
						NULL};

static int cmd_audit_verify(const struct ctx *ctx, const struct args *a)
{
	const char *dir = get_opt(a, "data-dir"), *exp = get_opt(a, "export");
	const char *cps = get_opt(a, "checkpoints"), *pin = get_opt(a, "pin-key");
	const char *pin_file = get_opt(a, "pin-key-file"), *seen = get_opt(a, "seen");
	bool live = has_opt(a, "server");
	struct verify_args va = {.allow_unsigned = has_opt(a, "allow-unsigned")};
	struct audit_verify_report r;
	int rc;

	if ((dir != NULL) + (exp != NULL) + live != 1)
		return usage_error("give exactly one of --data-dir DIR, --export FILE or --server");
	if (cps != NULL && exp == NULL)
		return usage_error("--checkpoints goes with --export");
	if (has_opt(a, "partial") && (exp == NULL || cps != NULL))
		return usage_error("--partial goes with --export and without --checkpoints");
	if (pin != NULL && pin_file != NULL)
		return usage_error("--pin-key and --pin-key-file exclude each other");
	if (pin != NULL && !parse_hex_key(pin, strlen(pin), va.pub))
		return usage_error("--pin-key must be the audit public key as 64 hex characters");
	if (pin_file != NULL && (rc = read_pin_file(pin_file, va.pub)) < 0)
		return rc;
	va.pinned = pin != NULL || pin_file != NULL;
	if (seen != NULL && (rc = parse_seen(seen, &va.seen_size, va.seen_root)) < 0)
		return rc;
	va.seen = seen != NULL;
	if (live)
		return verify_server(ctx, &va);

	struct audit_verify_opts o = {.pinned_pub = va.pinned ? va.pub : NULL,
				      .seen_size = va.seen_size,
				      .seen_root = va.seen ? va.seen_root : NULL,
				      .allow_unsigned = va.allow_unsigned || has_opt(a, "partial"),
				      .partial = has_opt(a, "partial")};
	char *path = NULL;
	const char *what = exp;
	if (dir != NULL) {
		size_t n = strlen(dir) + sizeof("/audit.db");
		if ((path = malloc(n)) == NULL) {
			cli_errorf("out of memory");
			return CLI_E_FAIL;
		}
		snprintf(path, n, "%s/audit.db", dir);
		what = path;
	}
	/* SQLite would report a missing file as a damaged one. */
	if (access(what, R_OK) < 0 || (cps != NULL && access(cps, R_OK) < 0)) {
		int e = errno;
		cli_errorf("cannot read %s: %s", access(what, R_OK) < 0 ? what : cps, strerror(e));
		free(path);
		return CLI_E_FAIL;
	}
	memset(&r, 0, sizeof(r));
	rc = dir != NULL ? audit_verify_file(path, &o, &r) : audit_verify_export(exp, cps, &o, &r);
	if (rc == 0)
		rc = verify_ok(ctx, r.records, r.checkpoints, r.signed_size, r.root);
	else if (rc == ODX_ECORRUPT)
		rc = verify_failed(ctx, &r);
	else {
		cli_errorf("cannot verify %s: %s", what, odx_strerror(rc));
		rc = CLI_E_FAIL;
	}
	free(path);
	return rc;
}

static const struct cli_column audit_cols[] = {
    {"SEQ", "seq", CLI_COL_TEXT},	  {"TIME", "time", CLI_COL_TIME},
    {"ACTOR", "actor", CLI_COL_TEXT},	  {"ACTION", "action", CLI_COL_TEXT},
    {"RESOURCE", "resource", CLI_COL_TEXT}, {"OUTCOME", "outcome", CLI_COL_TEXT},
};

/* A string field, or null when absent or empty (shown as "-"). */
static json_t *nonempty(const json_t *obj, const char *key)
{
	const char *v = json_string_value(json_object_get(obj, key));
	return v != NULL && v[0] != '\0' ? json_string(v) : json_null();
}

/* The table's rows: ACTOR is the actor's id, else its email, else its type. */
static json_t *audit_rows(const json_t *items)
{
	json_t *rows = json_array();
	size_t i;
	const json_t *rec;

	json_array_foreach(items, i, rec)
	{
		const json_t *actor = json_object_get(rec, "actor");
		json_t *who = nonempty(actor, "id");
		if (json_is_null(who))
			who = nonempty(actor, "email");
		if (json_is_null(who))
			who = nonempty(actor, "type");
		json_t *row = json_pack("{s:O?, s:o, s:o, s:o, s:o, s:o}", "seq",
					json_object_get(rec, "seq"), "time", nonempty(rec, "time"),
					"actor", who, "action", nonempty(rec, "action"),
					"resource", nonempty(rec, "resource"), "outcome",
					nonempty(rec, "outcome"));
		if (rows == NULL || row == NULL || json_array_append_new(rows, row) < 0) {
			json_decref(row);
			json_decref(rows);
			return NULL;
		}
	}
	return rows;
}

static const char *const audit_list_opts[] = {"action=", "actor=", "outcome=", "resource=",
					      "from=",	 "to=",	   "limit=",   NULL};

static int cmd_audit_list(const struct ctx *ctx, const struct args *a)
{
	static const char *const params[] = {"action", "actor", "outcome", "resource", "from", "to"};
	struct cli_session *s = NULL;
	json_t *items = NULL, *rows = NULL;
	json_int_t limit = 0;
	char *query = NULL;
	size_t len = 0;
	int rc;

	for (size_t i = 0; i < NCOLS(params); i++) {
		const char *v = get_opt(a, params[i]);
		int64_t t;
		enum audit_outcome o;
		if (v == NULL)
			continue;
		if (v[0] == '\0')
			return usage_error("--%s must not be empty", params[i]);
		if ((i == 4 || i == 5) && time_parse_rfc3339(v, &t) < 0)
			return usage_error("--%s must be an RFC 3339 UTC time "
					   "(2026-11-28T15:52:22Z)",
					   params[i]);
		if (i == 2 && audit_outcome_parse(v, &o) < 0)
			return usage_error("--outcome must be success, failure or denied");
	}
	if (get_opt(a, "limit") != NULL &&
	    ((rc = parse_int("limit", get_opt(a, "limit"), &limit)) < 0 || limit < 1))
		return rc < 0 ? rc : usage_error("--limit must be at least 1");

	/* "/v1/audit?action=...&actor=..." with every value escaped. */
	FILE *f = open_memstream(&query, &len);
	if (f == NULL) {
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	fputs("/v1/audit", f);
	char sep = '?';
	for (size_t i = 0; i < NCOLS(params); i++) {
		const char *v = get_opt(a, params[i]);
		char *esc = v != NULL ? cli_url_escape(v) : NULL;
		if (esc != NULL) {
			fprintf(f, "%c%s=%s", sep, params[i], esc);
			sep = '&';
		}
		free(esc);
	}
	if (fclose(f) != 0 || query == NULL) {
		free(query);
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	rc = open_session(ctx, &s);
	if (rc == 0)
		rc = cli_session_list_max(s, query, (size_t)limit, &items);
	if (rc == 0 && !ctx->json && (rows = audit_rows(items)) == NULL) {
		cli_errorf("out of memory");
		rc = CLI_E_FAIL;
	}
	if (rc == 0)
		rc = show_list(ctx, ctx->json ? items : rows, audit_cols, NCOLS(audit_cols));
	json_decref(rows);
	json_decref(items);
	cli_session_free(s);
	free(query);
	return rc;
}

/* ---- nodes (platform administrator; docs/nodes.md) --------------------- */

#define NODE_TTL_MAX_S 86400 /* the server's limit for enrollment tokens */
#define AGENT_PORT     8444  /* odysseusd's default --agent-listen port */

static const struct cli_column node_cols[] = {
    {"ID", "id", CLI_COL_TEXT},
    {"NAME", "name", CLI_COL_TEXT},
    {"STATE", "state", CLI_COL_TEXT},
    {"LAST_SEEN", "last_seen_at", CLI_COL_TIME},
    {"CPUS", "capacity.cpus", CLI_COL_TEXT},
    {"MEMORY", "memory", CLI_COL_TEXT}, /* capacity.memory_bytes: see node_rows */
    {"CERT_EXPIRES", "certificate.not_after", CLI_COL_TIME},
};

/* A byte count in binary units ("24.0GiB", "512B"), or null when v is not one. */
static json_t *bytes_text(const json_t *v)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	char buf[32];
	double n = json_number_value(v);
	size_t u = 0;

	if (!json_is_number(v) || !(n >= 0))
		return json_null();
	for (; n >= 1024 && u + 1 < NCOLS(units); u++)
		n /= 1024;
	if (u == 0)
		snprintf(buf, sizeof(buf), "%.0f%s", n, units[u]);
	else
		snprintf(buf, sizeof(buf), "%.1f%s", n, units[u]);
	return json_string(buf);
}

/* A copy of a node (or of an array of nodes) with "memory" as text for the table. */
static json_t *node_rows(const json_t *v)
{
	if (json_is_array(v)) {
		json_t *out = json_array();
		size_t i;
		const json_t *item;
		json_array_foreach(v, i, item)
		{
			if (out == NULL || json_array_append_new(out, node_rows(item)) < 0) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	}
	json_t *out = json_deep_copy(v);
	const json_t *mem = json_object_get(json_object_get(v, "capacity"), "memory_bytes");
	if (out != NULL && json_object_set_new(out, "memory", bytes_text(mem)) < 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static int cmd_nodes_list(const struct ctx *ctx, const struct args *a)
{
	struct cli_session *s = NULL;
	json_t *items = NULL, *rows = NULL;
	int rc = open_session(ctx, &s);

	(void)a;
	if (rc == 0)
		rc = cli_session_list(s, "/v1/nodes", &items);
	cli_session_free(s);
	if (rc == 0 && !ctx->json && (rows = node_rows(items)) == NULL) {
		cli_errorf("out of memory");
		rc = CLI_E_FAIL;
	}
	if (rc == 0)
		rc = show_list(ctx, ctx->json ? items : rows, node_cols, NCOLS(node_cols));
	json_decref(rows);
	json_decref(items);
	return rc;
}

static int cmd_nodes_get(const struct ctx *ctx, const struct args *a)
{
	json_t *node = NULL, *row = NULL;
	int rc = call_on(ctx, "GET", "/v1/nodes/", a->pos[0], NULL, &node);

	if (rc == 0 && !ctx->json && (row = node_rows(node)) == NULL) {
		cli_errorf("out of memory");
		rc = CLI_E_FAIL;
	}
	if (rc == 0)
		rc = show(ctx, ctx->json ? node : row, node_cols, NCOLS(node_cols));
	json_decref(row);
	json_decref(node);
	return rc;
}

static int cmd_nodes_rm(const struct ctx *ctx, const struct args *a)
{
	return run_on(ctx, "DELETE", "/v1/nodes/", a->pos[0], "", NULL, node_cols, NCOLS(node_cols),
		      "node", "revoked");
}

/*
 * A duration in seconds into *out: whole seconds, or a number followed by
 * one of units (a subset of "smhd": seconds, minutes, hours, days). Values
 * above max become max + 1, so long inputs cannot overflow. false when s
 * is not a duration.
 */
static bool scan_duration(const char *s, const char *units, json_int_t max, json_int_t *out)
{
	static const char all[] = "smhd";
	static const json_int_t scale[] = {1, 60, 3600, 86400};
	size_t digits = strspn(s, "0123456789");
	const char *u = s[digits] != '\0' ? strchr(units, s[digits]) : NULL;
	json_int_t v = 0;

	if (digits == 0 || (s[digits] != '\0' && (u == NULL || s[digits + 1] != '\0')))
		return false;
	for (size_t i = 0; i < digits && v <= max; i++)
		v = v * 10 + (s[i] - '0');
	json_int_t k = u != NULL ? scale[strchr(all, *u) - all] : 1;
	*out = v > max / k ? max + 1 : v * k;
	return true;
}

/*
 * Parses a token lifetime: whole seconds, or a number followed by s, m or h
 * ("90s", "30m", "24h"), from 1 s to NODE_TTL_MAX_S. 0 or a usage error.
 */
static int parse_ttl(const char *s, json_int_t *out)
{
	json_int_t v = 0;

	if (!scan_duration(s, "smh", NODE_TTL_MAX_S, &v))
		return usage_error("--ttl must be a duration: seconds, or a number with s, m or h "
				   "(90s, 30m, 24h)");
	if (v < 1)
		return usage_error("--ttl must be at least 1s");
	if (v > NODE_TTL_MAX_S)
		return usage_error("--ttl must be at most 24h (86400 seconds)");
	*out = v;
	return 0;
}

/* The host of a base URL ("https://[::1]:8443" -> "[::1]") into out. */
static void url_host(const char *url, char *out, size_t size)
{
	const char *h = strstr(url, "://");
	h = h != NULL ? h + 3 : url;
	size_t n = strcspn(h, "/");
	const char *at = memchr(h, '@', n);
	if (at != NULL) {
		n -= (size_t)(at + 1 - h);
		h = at + 1;
	}
	const char *end = h[0] == '[' ? memchr(h, ']', n) : NULL;
	n = end != NULL ? (size_t)(end + 1 - h) : strcspn(h, ":/");
	snprintf(out, size, "%.*s", (int)n, h);
}

/* "2026-11-28T15:52:22.123Z" -> "2026-11-28T15:52:22Z", sanitized, into out. */
static void short_time(const char *t, char *out, size_t size)
{
	char buf[64];
	size_t n = strlen(t);

	if (n > 20 && t[10] == 'T' && t[19] == '.' && t[n - 1] == 'Z') {
		snprintf(buf, sizeof(buf), "%.19sZ", t);
		t = buf;
	}
	cli_sanitize(t, out, size);
}

/* An enrollment token has only these characters (docs/nodes.md). */
static bool token_chars(const char *t)
{
	static const char ok[] = "0123456789abcdefghijklmnopqrstuvwxyz-";
	return t != NULL && t[0] != '\0' && strspn(t, ok) == strlen(t);
}

/*
 * The token alone on stdout (T=$(odysseus nodes token) works), and on
 * stderr what it is for and how to use it, without the token.
 */
static int show_token(const struct ctx *ctx, const json_t *answer, const char *server)
{
	const char *token = json_string_value(json_object_get(answer, "token"));
	const char *id = json_string_value(json_object_get(answer, "id"));
	const char *until = json_string_value(json_object_get(answer, "expires_at"));
	const char *name = json_string_value(json_object_get(answer, "node_name"));
	char sid[64], sname[80], suntil[64], host[256];

	if (ctx->json)
		return cli_print_json(answer);
	if (!token_chars(token) || id == NULL || until == NULL) {
		cli_errorf("malformed server answer");
		return CLI_E_FAIL;
	}
	printf("%s\n", token);
	fflush(stdout);
	cli_sanitize(id, sid, sizeof(sid));
	cli_sanitize(name != NULL ? name : "", sname, sizeof(sname));
	short_time(until, suntil, sizeof(suntil));
	url_host(server, host, sizeof(host));
	fprintf(stderr, "enrollment token %s for %s%s, valid until %s; shown once\n", sid,
		name != NULL ? "node " : "any node", sname, suntil);
	fprintf(stderr,
		"on the node: odysseus-agent enroll --server https://%s:%d --token <token>\n", host,
		AGENT_PORT);
	return 0;
}

static const char *const node_token_opts[] = {"ttl=", "name=", NULL};

static int cmd_nodes_token(const struct ctx *ctx, const struct args *a)
{
	const char *ttl = get_opt(a, "ttl"), *name = get_opt(a, "name");
	struct cli_session *s = NULL;
	json_t *body, *answer = NULL;
	json_int_t secs = 0;
	int rc;

	if (ttl != NULL && (rc = parse_ttl(ttl, &secs)) < 0)
		return rc;
	if (name != NULL && name[0] == '\0')
		return usage_error("--name must not be empty");
	/* The server checks the name (a-z, 0-9 and '-'); invalid UTF-8 cannot be sent. */
	json_t *jname = name != NULL ? json_string(name) : NULL;
	if (name != NULL && jname == NULL)
		return usage_error("--name must be text (UTF-8)");
	body = json_object();
	/* json_object_set_new consumes its value even when it fails. */
	if (body == NULL || (jname != NULL && json_object_set_new(body, "node_name", jname) < 0) ||
	    (ttl != NULL && json_object_set_new(body, "ttl_seconds", json_integer(secs)) < 0)) {
		if (body == NULL)
			json_decref(jname);
		json_decref(body);
		cli_errorf("out of memory");
		return CLI_E_FAIL;
	}
	rc = open_session(ctx, &s);
	if (rc == 0)
		rc = cli_session_call(s, "POST", "/v1/nodes/enrollment-tokens", body, &answer);
	if (rc == 0)
		rc = show_token(ctx, answer, cli_session_server(s));
	json_decref(answer); /* wiped on free: see cli_init */
	json_decref(body);
	cli_session_free(s);
	return rc;
}

/* ---- deployments and containers (docs/deployments.md) ------------------ */

#define LOGS_POLL_S 2 /* logs --follow asks for new text this often */

/* deploy, scale, restart and rollback show the first DEPLOY_ROW columns; ls all. */
static const struct cli_column deploy_cols[] = {
    {"NAME", "name", CLI_COL_TEXT},
    {"IMAGE", "image", CLI_COL_TEXT},
    {"REVISION", "revision", CLI_COL_TEXT},
    {"REPLICAS", "replicas", CLI_COL_TEXT},
    {"RUNNING", "status.running", CLI_COL_TEXT},
    {"PENDING", "status.pending", CLI_COL_TEXT},
    {"UPDATED", "updated_at", CLI_COL_TIME},
};
#define DEPLOY_ROW 5

/* The containers of one deployment (ls NAME). */
static const struct cli_column replica_cols[] = {
    {"ID", "id", CLI_COL_TEXT},
    {"REPLICA", "replica", CLI_COL_TEXT},
    {"REVISION", "revision", CLI_COL_TEXT},
    {"NODE", "node_id", CLI_COL_TEXT},
    {"STATE", "state", CLI_COL_TEXT},
    {"RESTARTS", "restarts", CLI_COL_TEXT},
};

static const struct cli_column container_cols[] = {
    {"ID", "id", CLI_COL_TEXT},		  {"DEPLOYMENT", "deployment", CLI_COL_TEXT},
    {"REPLICA", "replica", CLI_COL_TEXT}, {"REVISION", "revision", CLI_COL_TEXT},
    {"NODE", "node_id", CLI_COL_TEXT},	  {"DESIRED", "desired", CLI_COL_TEXT},
    {"STATE", "state", CLI_COL_TEXT},	  {"RESTARTS", "restarts", CLI_COL_TEXT},
};

static const struct cli_column revision_cols[] = {
    {"REVISION", "revision", CLI_COL_TEXT},
    {"IMAGE", "template.image", CLI_COL_TEXT},
    {"CREATED_BY", "created_by", CLI_COL_TEXT},
    {"CREATED", "created_at", CLI_COL_TIME},
};

static int no_memory(void)
{
	cli_errorf("out of memory");
	return CLI_E_FAIL;
}

/* A whole number of at least min, for what ("--replicas", "REPLICAS"). */
static int parse_count(const char *what, const char *s, json_int_t min, json_int_t *out)
{
	char *end;

	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < min)
		return usage_error("%s must be a whole number of at least %lld, not '%s'", what,
				   (long long)min, s);
	*out = (json_int_t)v;
	return 0;
}

/* obj[key] = value; a usage error naming --opt when value is not UTF-8. */
static int set_text(json_t *obj, const char *key, const char *opt, const char *value)
{
	json_t *v = json_string(value);

	if (v == NULL)
		return usage_error("%s must be text (UTF-8)", opt);
	if (json_object_set_new(obj, key, v) < 0)
		return no_memory();
	return 0;
}

/* An environment variable name as the server takes it: [A-Za-z_][A-Za-z0-9_]*. */
static bool env_name_ok(const char *k, size_t n)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
	static const char digit[] = "0123456789";

	if (n == 0 || memchr(alpha, k[0], sizeof(alpha) - 1) == NULL)
		return false;
	for (size_t i = 1; i < n; i++)
		if (memchr(alpha, k[i], sizeof(alpha) - 1) == NULL &&
		    memchr(digit, k[i], sizeof(digit) - 1) == NULL)
			return false;
	return true;
}

/* "UID" or "UID:GID", each 1 to 10 digits (the server's bound). */
static bool user_ok(const char *u)
{
	size_t n = strspn(u, "0123456789");

	if (n == 0 || n > 10)
		return false;
	if (u[n] == '\0')
		return true;
	size_t m = strspn(u + n + 1, "0123456789");
	return u[n] == ':' && m > 0 && m <= 10 && u[n + 1 + m] == '\0';
}

/* spec.env from every --env NAME=VALUE; a name given twice is a usage error. */
static int env_from_args(const struct args *a, json_t *spec)
{
	const char *vars[MAX_REPEATED];
	size_t n = get_all(a, "env", vars);
	json_t *env;

	if (n == 0)
		return 0;
	env = json_object();
	if (json_object_set_new(spec, "env", env) < 0)
		return no_memory();
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(vars[i], '=');
		size_t k = eq != NULL ? (size_t)(eq - vars[i]) : 0;
		if (eq == NULL || !env_name_ok(vars[i], k))
			return usage_error("--env must be NAME=VALUE, NAME of A-Z, a-z, 0-9 and _ "
					   "not starting with a digit; not '%s'",
					   vars[i]);
		if (json_object_getn(env, vars[i], k) != NULL)
			return usage_error("--env %.*s is given twice", (int)k, vars[i]);
		json_t *v = json_string(eq + 1);
		if (v == NULL)
			return usage_error("--env values must be text (UTF-8)");
		if (json_object_setn_new(env, vars[i], k, v) < 0)
			return no_memory();
	}
	return 0;
}

/* spec[key] = the values of the repeatable option opt, when it was given. */
static int array_from_args(const struct args *a, const char *opt, json_t *spec, const char *key)
{
	const char *v[MAX_REPEATED];
	size_t n = get_all(a, opt, v);
	json_t *arr;

	if (n == 0)
		return 0;
	arr = json_array();
	if (json_object_set_new(spec, key, arr) < 0)
		return no_memory();
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_string(v[i]);
		if (s == NULL)
			return usage_error("--%s must be text (UTF-8)", opt);
		if (json_array_append_new(arr, s) < 0)
			return no_memory();
	}
	return 0;
}

static const char *const res_opts[] = {"cpu", "memory", "pids", "storage"};
static const char *const res_keys[] = {"cpu_millicores", "memory_mb", "pids", "storage_mb"};

/* spec.resources from the resource options that were given. */
static int resources_from_args(const struct args *a, json_t *spec)
{
	json_t *res = NULL;
	char what[16];
	json_int_t n = 0;
	int rc;

	for (size_t i = 0; i < NCOLS(res_opts); i++) {
		const char *v = get_opt(a, res_opts[i]);
		if (v == NULL)
			continue;
		snprintf(what, sizeof(what), "--%s", res_opts[i]);
		if ((rc = parse_count(what, v, 0, &n)) < 0)
			return rc;
		if (res == NULL && ((res = json_object()) == NULL ||
				    json_object_set_new(spec, "resources", res) < 0))
			return no_memory();
		if (json_object_set_new(res, res_keys[i], json_integer(n)) < 0)
			return no_memory();
	}
	return 0;
}

static const char *const deploy_opts[] = {"image=", "replicas=", "cpu=",  "memory=",
					  "pids=",  "storage=",	 "env=*", "writable=*",
					  "secret=*", "user=",	 "cmd=*",   "override-justification=",
					  NULL};

/* The deployment fields the options give (all but the name) into *out. */
static int spec_from_args(const struct args *a, json_t **out)
{
	const char *image = get_opt(a, "image"), *replicas = get_opt(a, "replicas");
	const char *user = get_opt(a, "user");
	json_int_t n = 0;
	json_t *spec;
	int rc = 0;

	if (image == NULL || image[0] == '\0')
		return usage_error("--image is required");
	if (replicas != NULL && (rc = parse_count("--replicas", replicas, 0, &n)) < 0)
		return rc;
	if (user != NULL && !user_ok(user))
		return usage_error("--user must be UID or UID:GID (numbers), not '%s'", user);
	if ((spec = json_object()) == NULL)
		return no_memory();
	rc = set_text(spec, "image", "--image", image);
	if (rc == 0 && replicas != NULL &&
	    json_object_set_new(spec, "replicas", json_integer(n)) < 0)
		rc = no_memory();
	if (rc == 0)
		rc = resources_from_args(a, spec);
	if (rc == 0)
		rc = env_from_args(a, spec);
	if (rc == 0)
		rc = array_from_args(a, "writable", spec, "writable_paths");
	if (rc == 0)
		rc = array_from_args(a, "secret", spec, "secrets");
	if (rc == 0 && user != NULL)
		rc = set_text(spec, "user", "--user", user);
	if (rc == 0)
		rc = array_from_args(a, "cmd", spec, "command");
	if (rc < 0) {
		json_decref(spec);
		return rc;
	}
	*out = spec;
	return 0;
}

/*
 * For an update: the resources not given keep the deployment's current
 * values (the API would put its defaults in for the missing ones).
 */
static int keep_resources(json_t *spec, const json_t *deployment)
{
	json_t *res = json_object_get(spec, "resources");
	const json_t *cur = json_object_get(deployment, "resources");

	for (size_t i = 0; res != NULL && i < NCOLS(res_keys); i++) {
		json_t *v = json_object_get(cur, res_keys[i]);
		if (json_object_get(res, res_keys[i]) == NULL && json_is_integer(v) &&
		    json_object_set(res, res_keys[i], v) < 0)
			return no_memory();
	}
	return 0;
}

/* The code of an error answer ("conflict"), or "". */
static const char *error_code(const struct cli_response *r)
{
	const json_t *err = json_object_get(r->body, "error");
	const char *code = json_string_value(json_object_get(err, "code"));
	return code != NULL ? code : "";
}

/* A string value as text for a line on the terminal ("-" when it is none). */
static void text_of(const json_t *v, char *out, size_t size)
{
	cli_sanitize(json_is_string(v) ? json_string_value(v) : "-", out, size);
}

#define BLOCKED_SHOWN 20 /* findings listed under a blocked_by_policy error */

/*
 * What blocked a deployment (error.details of a blocked_by_policy answer),
 * on stderr under the error line: each policy's reason, then the first
 * BLOCKED_SHOWN findings.
 */
static void print_blocked(const json_t *details)
{
	char a[128], b[160], c[128], d[128];
	const json_t *list = json_object_get(details, "policies"), *v;
	size_t i;
	json_int_t total;

	json_array_foreach(list, i, v)
	{
		text_of(json_object_get(v, "name"), a, sizeof(a));
		text_of(json_object_get(v, "reason"), b, sizeof(b));
		fprintf(stderr, "  policy %s: %s\n", a, b);
	}
	list = json_object_get(details, "findings");
	for (i = 0; i < json_array_size(list) && i < BLOCKED_SHOWN; i++) {
		v = json_array_get(list, i);
		const json_t *pkg = json_object_get(v, "package");
		text_of(json_object_get(v, "id"), a, sizeof(a));
		text_of(json_object_get(v, "severity"), b, sizeof(b));
		text_of(json_object_get(pkg, "name"), c, sizeof(c));
		text_of(json_object_get(pkg, "version"), d, sizeof(d));
		fprintf(stderr, "  %s %s %s %s\n", a, b, c, d);
	}
	total = json_integer_value(json_object_get(details, "findings_total"));
	text_of(json_object_get(details, "scan_id"), a, sizeof(a));
	if (total > BLOCKED_SHOWN)
		fprintf(stderr,
			"  (%" JSON_INTEGER_FORMAT " in all: odysseus scans show %s --findings)\n",
			total, a);
	fprintf(stderr,
		"An admin or operator may deploy it anyway: --override-justification TEXT\n");
}

/* cli_response_check; a blocked_by_policy answer also prints what blocked it. */
static int check_gated(const struct cli_response *r)
{
	int rc = cli_response_check(r);

	if (rc < 0 && strcmp(error_code(r), "blocked_by_policy") == 0)
		print_blocked(json_object_get(json_object_get(r->body, "error"), "details"));
	return rc;
}

/* cli_session_call for a request the tenant's scan policies may refuse (check_gated). */
static int gated_call(struct cli_session *s, const char *method, const char *path,
		      const json_t *body, json_t **answer)
{
	struct cli_response r;
	int rc = cli_session_request(s, method, path, body, &r);

	if (rc == 0 && (rc = check_gated(&r)) == 0) {
		*answer = r.body;
		r.body = NULL;
	}
	cli_response_done(&r);
	return rc;
}

/* body.policy_override from --override-justification, when given. */
static int override_from_args(const struct args *a, json_t *body)
{
	const char *why = get_opt(a, "override-justification");
	json_t *o;

	if (why == NULL)
		return 0;
	if (why[0] == '\0')
		return usage_error("--override-justification must not be empty");
	if ((o = json_object()) == NULL || json_object_set_new(body, "policy_override", o) < 0)
		return no_memory();
	return set_text(o, "justification", "--override-justification", why);
}

/* GET the deployment at path: 0 with *found, 1 when there is none, or an error. */
static int deploy_current(struct cli_session *s, const char *path, json_t **found)
{
	struct cli_response r;
	int rc = cli_session_request(s, "GET", path, NULL, &r);

	if (rc == 0 && r.status == 404 && strcmp(error_code(&r), "not_found") == 0) {
		rc = 1;
	} else if (rc == 0 && (rc = cli_response_check(&r)) == 0) {
		*found = r.body;
		r.body = NULL;
	}
	cli_response_done(&r);
	return rc;
}

/* POST a new deployment: 0 with *answer, 1 when the name is taken, or an error. */
static int deploy_new(struct cli_session *s, const char *name, const json_t *spec, json_t **answer)
{
	struct cli_response r;
	json_t *body = json_copy((json_t *)spec);
	int rc = body != NULL ? set_text(body, "name", "NAME", name) : no_memory();

	if (rc == 0)
		rc = cli_session_request(s, "POST", "/v1/deployments", body, &r);
	json_decref(body);
	if (rc < 0)
		return rc;
	if (r.status == 409 && strcmp(error_code(&r), "conflict") == 0) {
		rc = 1;
	} else if ((rc = check_gated(&r)) == 0) {
		*answer = r.body;
		r.body = NULL;
	}
	cli_response_done(&r);
	return rc;
}

/*
 * Creates deployment name from spec, or updates it (PATCH) when it exists.
 * GET first: a POST over an existing name could be refused for the quota
 * the two together would need. A name taken between GET and POST is
 * looked up once more. *answer: the deployment.
 */
static int deploy_apply(struct cli_session *s, const char *name, json_t *spec, json_t **answer)
{
	char *path = resource_path("/v1/deployments/", name, "");
	int rc = path != NULL ? 1 : no_memory();

	for (int round = 0; rc == 1 && round < 2; round++) {
		json_t *cur = NULL;
		rc = deploy_current(s, path, &cur);
		if (rc == 0 && (rc = keep_resources(spec, cur)) == 0)
			rc = gated_call(s, "PATCH", path, spec, answer);
		else if (rc == 1)
			rc = deploy_new(s, name, spec, answer);
		json_decref(cur);
	}
	if (rc == 1) {
		cli_errorf("the deployment was created and deleted meanwhile; try again");
		rc = CLI_E_CONFLICT;
	}
	free(path);
	return rc;
}

static int cmd_deploy(const struct ctx *ctx, const struct args *a)
{
	struct cli_session *s = NULL;
	json_t *spec = NULL, *answer = NULL;
	int rc = spec_from_args(a, &spec);

	if (rc == 0)
		rc = override_from_args(a, spec);
	if (rc == 0)
		rc = open_session(ctx, &s);
	if (rc == 0)
		rc = deploy_apply(s, a->pos[0], spec, &answer);
	if (rc == 0)
		rc = show(ctx, answer, deploy_cols, DEPLOY_ROW);
	json_decref(answer);
	json_decref(spec);
	cli_session_free(s);
	return rc;
}

/* ls: the deployments; ls NAME: the containers of one (the whole deployment in JSON). */
static int cmd_ls(const struct ctx *ctx, const struct args *a)
{
	json_t *d = NULL, *none = NULL;
	int rc;

	if (a->npos == 0)
		return run_list(ctx, "/v1/deployments", deploy_cols, NCOLS(deploy_cols));
	rc = call_on(ctx, "GET", "/v1/deployments/", a->pos[0], NULL, &d);
	if (rc == 0 && ctx->json) {
		rc = cli_print_json(d);
	} else if (rc == 0) {
		const json_t *ctrs = json_object_get(d, "containers");
		if (!json_is_array(ctrs) && (ctrs = none = json_array()) == NULL)
			rc = no_memory();
		if (rc == 0)
			rc = cli_print_table(replica_cols, NCOLS(replica_cols), ctrs);
	}
	json_decref(none);
	json_decref(d);
	return rc;
}

static int cmd_scale(const struct ctx *ctx, const struct args *a)
{
	json_int_t n = 0;
	json_t *body;
	int rc = parse_count("REPLICAS", a->pos[1], 0, &n);

	if (rc < 0)
		return rc;
	if ((body = json_pack("{s:I}", "replicas", n)) == NULL)
		return no_memory();
	rc = run_on(ctx, "POST", "/v1/deployments/", a->pos[0], "/scale", body, deploy_cols,
		    DEPLOY_ROW, NULL, NULL);
	json_decref(body);
	return rc;
}

static int cmd_restart(const struct ctx *ctx, const struct args *a)
{
	return run_on(ctx, "POST", "/v1/deployments/", a->pos[0], "/restart", NULL, deploy_cols,
		      DEPLOY_ROW, NULL, NULL);
}

static const char *const rollback_opts[] = {"to=", "override-justification=", NULL};

static int cmd_rollback(const struct ctx *ctx, const struct args *a)
{
	const char *to = get_opt(a, "to");
	char *path = resource_path("/v1/deployments/", a->pos[0], "/rollback");
	struct cli_session *s = NULL;
	json_int_t rev = 0;
	json_t *body = NULL, *answer = NULL;
	int rc = path != NULL ? 0 : no_memory();

	if (rc == 0 && to != NULL)
		rc = parse_count("--to", to, 1, &rev);
	/* {}: the revision before the current one. */
	if (rc == 0 &&
	    (body = to != NULL ? json_pack("{s:I}", "revision", rev) : json_object()) == NULL)
		rc = no_memory();
	if (rc == 0)
		rc = override_from_args(a, body);
	if (rc == 0)
		rc = open_session(ctx, &s);
	if (rc == 0)
		rc = gated_call(s, "POST", path, body, &answer);
	if (rc == 0)
		rc = show(ctx, answer, deploy_cols, DEPLOY_ROW);
	json_decref(answer);
	json_decref(body);
	cli_session_free(s);
	free(path);
	return rc;
}

static int cmd_rm(const struct ctx *ctx, const struct args *a)
{
	return run_on(ctx, "DELETE", "/v1/deployments/", a->pos[0], "", NULL, deploy_cols,
		      DEPLOY_ROW, "deployment", "deleted");
}

static int cmd_revisions(const struct ctx *ctx, const struct args *a)
{
	char *path = resource_path("/v1/deployments/", a->pos[0], "/revisions");
	if (path == NULL)
		return no_memory();
	int rc = run_list(ctx, path, revision_cols, NCOLS(revision_cols));
	free(path);
	return rc;
}

static const char *const containers_ls_opts[] = {"deployment=", NULL};

static int cmd_containers_ls(const struct ctx *ctx, const struct args *a)
{
	const char *dep = get_opt(a, "deployment");

	if (dep == NULL)
		return run_list(ctx, "/v1/containers", container_cols, NCOLS(container_cols));
	if (dep[0] == '\0')
		return usage_error("--deployment must not be empty");
	char *path = resource_path("/v1/containers?deployment=", dep, "");
	if (path == NULL)
		return no_memory();
	int rc = run_list(ctx, path, container_cols, NCOLS(container_cols));
	free(path);
	return rc;
}

static int cmd_containers_restart(const struct ctx *ctx, const struct args *a)
{
	/* 202 with the container (it goes once its replacement runs), or 204: replaced. */
	return run_on(ctx, "POST", "/v1/containers/", a->pos[0], "/restart", NULL, container_cols,
		      NCOLS(container_cols), "container", "replaced");
}

static int cmd_containers_stop(const struct ctx *ctx, const struct args *a)
{
	return run_on(ctx, "POST", "/v1/containers/", a->pos[0], "/stop", NULL, container_cols,
		      NCOLS(container_cols), "container", "stopped");
}

/*
 * Writes log text to stdout: as it came, or on a terminal with control
 * characters (C0 but newline and tab, DEL, C1 as UTF-8) shown as '?': a
 * container's output must not drive the terminal.
 */
static int write_text(const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text;

	if (!isatty(STDOUT_FILENO)) {
		fwrite(text, 1, len, stdout);
	} else {
		for (size_t i = 0; i < len; i++) {
			bool c1 =
			    p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f;
			bool ctl = (p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') || p[i] == 0x7f;
			putchar(c1 || ctl ? '?' : p[i]);
			i += c1;
		}
	}
	if (ferror(stdout) || fflush(stdout) == EOF) {
		cli_errorf("cannot write the output: %s", strerror(errno));
		return CLI_E_FAIL;
	}
	return 0;
}

/* GET the container's logs, the last tail lines (-1: the server's default) or since. */
static int logs_get(struct cli_session *s, const char *id, json_int_t tail, long long since)
{
	char query[64] = "/logs";
	char *path, *text = NULL;
	size_t len = 0;
	int rc;

	if (tail >= 0)
		snprintf(query, sizeof(query), "/logs?tail=%lld", (long long)tail);
	else if (since >= 0)
		snprintf(query, sizeof(query), "/logs?since=%lld", since);
	if ((path = resource_path("/v1/containers/", id, query)) == NULL)
		return no_memory();
	rc = cli_session_request_text(s, "GET", path, &text, &len);
	if (rc == 0)
		rc = write_text(text != NULL ? text : "", len);
	free(text);
	free(path);
	return rc;
}

static const char *const logs_opts[] = {"tail=", "follow", NULL};

static int cmd_logs(const struct ctx *ctx, const struct args *a)
{
	const char *t = get_opt(a, "tail");
	struct cli_session *s = NULL;
	json_int_t tail = -1;
	int rc;

	if (t != NULL && (rc = parse_count("--tail", t, 1, &tail)) < 0)
		return rc;
	if ((rc = open_session(ctx, &s)) < 0)
		return rc;
	/* --follow: every LOGS_POLL_S, what came since the poll before (seconds). */
	time_t last = time(NULL);
	rc = logs_get(s, a->pos[0], tail, -1);
	while (rc == 0 && has_opt(a, "follow")) {
		sleep(LOGS_POLL_S);
		time_t now = time(NULL);
		rc = logs_get(s, a->pos[0], -1, (long long)last);
		last = now;
	}
	cli_session_free(s);
	return rc;
}

/* ---- secrets (docs/secrets.md): values go in, never out ---------------- */

/* A value is read into SECRET_BUF bytes: at most 64 KiB, a newline, one byte to tell more. */
#define SECRET_VALUE_MAX 65536 /* the server's limit, bytes (SECRETS_VALUE_MAX) */
#define SECRET_BUF	 (SECRET_VALUE_MAX + 2)
#define ROTATE_EVERY_MIN 60	  /* the server's bounds of rotation.every_seconds */
#define ROTATE_EVERY_MAX 31622400 /* 366 days */
#define GENERATE_MAX	 256	  /* of rotation.generate_length and the alphabet */

/* GRANTS is the list joined by commas (secret_rows). */
static const struct cli_column secret_cols[] = {
    {"NAME", "name", CLI_COL_TEXT},
    {"VERSION", "version", CLI_COL_TEXT},
    {"GRANTS", "grants", CLI_COL_TEXT},
    {"ROTATED", "rotated_at", CLI_COL_TIME},
};

/* The strings of an array joined by commas, or null when there are none. */
static json_t *joined(const json_t *arr)
{
	size_t n = 0, i;
	const json_t *v;

	json_array_foreach(arr, i, v)
	{
		n += json_string_length(v) + 1;
	}
	if (n == 0)
		return json_null();
	char *s = malloc(n), *p = s;
	if (s == NULL)
		return NULL;
	json_array_foreach(arr, i, v)
	{
		size_t len = json_string_length(v);
		if (p != s)
			*p++ = ',';
		if (len > 0)
			memcpy(p, json_string_value(v), len);
		p += len;
	}
	json_t *out = json_stringn(s, (size_t)(p - s));
	free(s);
	return out;
}

/* A copy of a secret (or of an array of them) with "grants" as text for the table. */
static json_t *secret_rows(const json_t *v)
{
	if (json_is_array(v)) {
		json_t *out = json_array();
		size_t i;
		const json_t *item;
		json_array_foreach(v, i, item)
		{
			if (out == NULL || json_array_append_new(out, secret_rows(item)) < 0) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	}
	json_t *out = json_deep_copy(v);
	json_t *grants = joined(json_object_get(v, "grants"));
	if (out == NULL || grants == NULL || json_object_set_new(out, "grants", grants) < 0) {
		if (out == NULL)
			json_decref(grants);
		json_decref(out);
		return NULL;
	}
	return out;
}

/* Prints a secret's metadata (or an array of them): its JSON, or the table. */
static int show_secret(const struct ctx *ctx, const json_t *v)
{
	if (v == NULL) {
		cli_errorf("malformed server answer");
		return CLI_E_FAIL;
	}
	if (ctx->json)
		return cli_print_json(v);
	json_t *rows = secret_rows(v);
	if (rows == NULL)
		return no_memory();
	int rc = cli_print_table(secret_cols, NCOLS(secret_cols), rows);
	json_decref(rows);
	return rc;
}

/* Sends method to /v1/secrets/<name><suffix> with body (may be NULL); shows the answer. */
static int secret_call(const struct ctx *ctx, const char *method, const char *name,
		       const char *suffix, const json_t *body)
{
	struct cli_session *s = NULL;
	json_t *answer = NULL;
	char *path = resource_path("/v1/secrets/", name, suffix);
	int rc = path != NULL ? open_session(ctx, &s) : no_memory();

	if (rc == 0)
		rc = cli_session_call(s, method, path, body, &answer);
	if (rc == 0)
		rc = show_secret(ctx, answer);
	json_decref(answer);
	cli_session_free(s);
	free(path);
	return rc;
}

/* Reads fd to its end into buf (SECRET_BUF bytes): 0, -EMSGSIZE when it does not fit, -errno. */
static int read_to_end(int fd, char *buf, size_t *len)
{
	size_t n = 0;

	while (n < SECRET_BUF) {
		ssize_t r = read(fd, buf + n, SECRET_BUF - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0) {
			*len = n;
			return 0;
		}
		n += (size_t)r;
	}
	return -EMSGSIZE;
}

static int value_too_big(void)
{
	cli_errorf("the secret value is larger than 64 KiB (%d bytes); nothing was sent",
		   SECRET_VALUE_MAX);
	return CLI_E_USAGE;
}

/* The file's bytes exactly as they are. */
static int value_from_file(const char *path, char *buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int rc;

	if (fd < 0) {
		cli_errorf("cannot open %s: %s", path, strerror(errno));
		return CLI_E_FAIL;
	}
	rc = read_to_end(fd, buf, len);
	close(fd);
	if (rc == -EMSGSIZE)
		return value_too_big();
	if (rc < 0) {
		cli_errorf("cannot read %s: %s", path, strerror(-rc));
		return CLI_E_FAIL;
	}
	return 0;
}

/*
 * stdin to its end; one final newline is dropped when it is the only one
 * (`echo`'s), so a value that ends in newlines keeps them all when it ends
 * in two or more. On a terminal: prompted for without echo, twice.
 */
static int value_from_stdin(const char *name, char *buf, size_t *len)
{
	char prompt[128], sname[80];
	int rc;

	if (isatty(STDIN_FILENO)) {
		cli_sanitize(name, sname, sizeof(sname));
		snprintf(prompt, sizeof(prompt), "Value of secret %s: ", sname);
		if ((rc = cli_read_password(prompt, true, buf, SECRET_VALUE_MAX + 1)) < 0)
			return rc;
		*len = strlen(buf);
		return 0;
	}
	rc = read_to_end(STDIN_FILENO, buf, len);
	if (rc == -EMSGSIZE)
		return value_too_big();
	if (rc < 0) {
		cli_errorf("cannot read the secret value from stdin: %s", strerror(-rc));
		return CLI_E_FAIL;
	}
	if (*len >= 1 && buf[*len - 1] == '\n' && (*len == 1 || buf[*len - 2] != '\n'))
		(*len)--;
	return 0;
}

/* {"value": buf[0..len)}: a usage error for a value the server would refuse. */
static int value_json(const char *buf, size_t len, json_t **out)
{
	json_t *body, *v;

	if (len == 0) {
		cli_errorf("the secret value is empty; nothing was sent");
		return CLI_E_USAGE;
	}
	if (len > SECRET_VALUE_MAX)
		return value_too_big();
	if (memchr(buf, '\0', len) != NULL || (v = json_stringn(buf, len)) == NULL) {
		cli_errorf("the secret value must be text (UTF-8, no NUL bytes); nothing was sent");
		return CLI_E_USAGE;
	}
	if ((body = json_object()) == NULL || json_object_set_new(body, "value", v) < 0) {
		if (body == NULL)
			json_decref(v);
		json_decref(body);
		return no_memory();
	}
	*out = body;
	return 0;
}

/*
 * The body {"value": ...} with the value of secret name read from the file
 * path, or from stdin when path is NULL (docs/cli.md, "Secrets"). Our
 * buffer is wiped on every path; the body's copy is wiped when it is freed
 * (cli_init).
 */
static int value_body(const char *name, const char *path, json_t **out)
{
	char *buf = malloc(SECRET_BUF);
	size_t len = 0;
	int rc;

	if (buf == NULL)
		return no_memory();
	rc = path != NULL ? value_from_file(path, buf, &len) : value_from_stdin(name, buf, &len);
	if (rc == 0)
		rc = value_json(buf, len, out);
	explicit_bzero(buf, SECRET_BUF);
	free(buf);
	return rc;
}

/* set and rotate take one NAME: a second word would be a value, never taken (or echoed). */
static int one_name(const struct args *a)
{
	if (a->npos > 1)
		return usage_error("a secret value is never taken from the command line (it would "
				   "be seen in the process list and the shell's history): give it "
				   "on stdin or with --from-file");
	return 0;
}

/* --rotate-every: a duration (s, m, h or d) from 1m to 366d. */
static int parse_every(const char *s, json_int_t *out)
{
	json_int_t v = 0;

	if (!scan_duration(s, "smhd", ROTATE_EVERY_MAX, &v))
		return usage_error(
		    "--rotate-every must be a duration: seconds, or a number with s, "
		    "m, h or d (3600, 90m, 12h, 30d)");
	if (v < ROTATE_EVERY_MIN || v > ROTATE_EVERY_MAX)
		return usage_error("--rotate-every must be from 1m to 366d");
	*out = v;
	return 0;
}

/* --alphabet: 2 to 256 printable ASCII characters (values are drawn bytewise). */
static bool alphabet_ok(const char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return n >= 2 && n <= GENERATE_MAX;
}

static const char *const secret_set_opts[] = {
    "from-file=", "rotate-every=", "generate-length=", "alphabet=", NULL};

/*
 * body.rotation from --rotate-every, --generate-length and --alphabet when
 * one is given. Checked here in full: the server writes the value before
 * it looks at the policy.
 */
static int rotation_from_args(const struct args *a, json_t *body)
{
	const char *every = get_opt(a, "rotate-every"), *length = get_opt(a, "generate-length");
	const char *alphabet = get_opt(a, "alphabet");
	json_int_t secs = 0, n = 0;
	json_t *r;
	int rc;

	if (every == NULL && length == NULL && alphabet == NULL)
		return 0;
	if (length == NULL)
		return usage_error("--rotate-every and --alphabet need --generate-length");
	if ((rc = parse_count("--generate-length", length, 1, &n)) < 0)
		return rc;
	if (n > GENERATE_MAX)
		return usage_error("--generate-length must be at most %d", GENERATE_MAX);
	if (every != NULL && (rc = parse_every(every, &secs)) < 0)
		return rc;
	if (alphabet != NULL && !alphabet_ok(alphabet))
		return usage_error("--alphabet must be 2 to %d printable ASCII characters",
				   GENERATE_MAX);
	if ((r = json_pack("{s:I}", "generate_length", n)) == NULL ||
	    json_object_set_new(body, "rotation", r) < 0)
		return no_memory();
	if (every != NULL && json_object_set_new(r, "every_seconds", json_integer(secs)) < 0)
		return no_memory();
	if (alphabet != NULL)
		return set_text(r, "generate_alphabet", "--alphabet", alphabet);
	return 0;
}

static int cmd_secrets_set(const struct ctx *ctx, const struct args *a)
{
	json_t *policy = json_object(), *body = NULL;
	int rc = policy != NULL ? one_name(a) : no_memory();

	/* Every argument is checked before the value is read. */
	if (rc == 0)
		rc = rotation_from_args(a, policy);
	if (rc == 0)
		rc = value_body(a->pos[0], get_opt(a, "from-file"), &body);
	if (rc == 0 && json_object_update(body, policy) < 0)
		rc = no_memory();
	if (rc == 0)
		rc = secret_call(ctx, "PUT", a->pos[0], "", body);
	json_decref(body);
	json_decref(policy);
	return rc;
}

static int cmd_secrets_ls(const struct ctx *ctx, const struct args *a)
{
	struct cli_session *s = NULL;
	json_t *items = NULL;
	int rc = open_session(ctx, &s);

	(void)a;
	if (rc == 0)
		rc = cli_session_list(s, "/v1/secrets", &items);
	cli_session_free(s);
	if (rc == 0)
		rc = ctx->json ? show_list(ctx, items, NULL, 0) : show_secret(ctx, items);
	json_decref(items);
	return rc;
}

static int cmd_secrets_get(const struct ctx *ctx, const struct args *a)
{
	return secret_call(ctx, "GET", a->pos[0], "", NULL);
}

static const char *const secret_rotate_opts[] = {"from-file=", "stdin", NULL};

static int cmd_secrets_rotate(const struct ctx *ctx, const struct args *a)
{
	const char *path = get_opt(a, "from-file");
	bool given = path != NULL || has_opt(a, "stdin");
	json_t *body = NULL;
	int rc = one_name(a);

	if (rc == 0 && path != NULL && has_opt(a, "stdin"))
		rc = usage_error("--from-file and --stdin exclude each other");
	/* Neither: no body, and the server generates the value by the secret's policy. */
	if (rc == 0 && given)
		rc = value_body(a->pos[0], path, &body);
	if (rc == 0)
		rc = secret_call(ctx, "POST", a->pos[0], "/rotate", body);
	json_decref(body);
	return rc;
}

static int cmd_secrets_grant(const struct ctx *ctx, const struct args *a)
{
	json_t *deps = string_array(a->pos + 1, a->npos - 1), *body;

	if (deps == NULL)
		return CLI_E_FAIL;
	if ((body = json_pack("{s:o}", "deployments", deps)) == NULL)
		return no_memory();
	int rc = secret_call(ctx, "POST", a->pos[0], "/grants", body);
	json_decref(body);
	return rc;
}

static int cmd_secrets_rm(const struct ctx *ctx, const struct args *a)
{
	return run_on(ctx, "DELETE", "/v1/secrets/", a->pos[0], "", NULL, secret_cols,
		      NCOLS(secret_cols), "secret", "deleted");
}

/* ---- vulnerability scans (docs/scanning.md) ---------------------------- */

#define SCAN_POLL_S	   1   /* scan IMAGE asks for the scan's state this often */
#define SCAN_TIMEOUT_S	   900 /* default of scan --timeout */
#define SCAN_TIMEOUT_MAX_S 86400
#define REPORT_FILE_MAX	   (32L << 20) /* the server's limit for an import, bytes */
#define POLICY_FILE_MAX	   (1L << 20)
#define SCAN_ERROR_SHOWN   640 /* bytes of a failed scan's error shown (engine.h keeps 512) */

static const struct cli_column scan_cols[] = {
    {"ID", "id", CLI_COL_TEXT},
    {"IMAGE", "image", CLI_COL_TEXT},
    {"STATUS", "status", CLI_COL_TEXT},
    {"TRIGGER", "trigger", CLI_COL_TEXT},
    {"CRITICAL", "summary.after.critical", CLI_COL_TEXT},
    {"HIGH", "summary.after.high", CLI_COL_TEXT},
    {"MEDIUM", "summary.after.medium", CLI_COL_TEXT},
    {"LOW", "summary.after.low", CLI_COL_TEXT},
    {"NEW", "diff.new", CLI_COL_TEXT}, /* counts in a list */
    {"FIXED", "diff.fixed", CLI_COL_TEXT},
    {"CREATED", "created_at", CLI_COL_TIME},
};

/* The first table of one scan; ERROR is why a failed scan failed. */
static const struct cli_column scan_head_cols[] = {
    {"ID", "id", CLI_COL_TEXT},		  {"IMAGE", "image", CLI_COL_TEXT},
    {"DIGEST", "digest", CLI_COL_TEXT},	  {"STATUS", "status", CLI_COL_TEXT},
    {"TRIGGER", "trigger", CLI_COL_TEXT}, {"CREATED", "created_at", CLI_COL_TIME},
    {"ERROR", "error", CLI_COL_TEXT},
};

/* A row per engine (counts before the merge), then "merged" (after): see count_rows. */
static const struct cli_column count_cols[] = {
    {"ENGINE", "engine", CLI_COL_TEXT},	  {"STATUS", "status", CLI_COL_TEXT},
    {"VERSION", "version", CLI_COL_TEXT}, {"CRITICAL", "critical", CLI_COL_TEXT},
    {"HIGH", "high", CLI_COL_TEXT},	  {"MEDIUM", "medium", CLI_COL_TEXT},
    {"LOW", "low", CLI_COL_TEXT},	  {"NEGLIGIBLE", "negligible", CLI_COL_TEXT},
    {"UNKNOWN", "unknown", CLI_COL_TEXT}, {"TOTAL", "total", CLI_COL_TEXT},
    {"BOTH", "both", CLI_COL_TEXT},	  {"ONLY", "only", CLI_COL_TEXT},
    {"ERROR", "error", CLI_COL_TEXT},
};

static const struct cli_column diff_cols[] = {
    {"PREVIOUS", "previous_scan_id", CLI_COL_TEXT},
    {"NEW", "new", CLI_COL_TEXT},
    {"FIXED", "fixed", CLI_COL_TEXT},
    {"UNCHANGED", "unchanged", CLI_COL_TEXT},
};

static const struct cli_column change_cols[] = {
    {"CHANGE", "change", CLI_COL_TEXT},		  {"ID", "id", CLI_COL_TEXT},
    {"SEVERITY", "severity", CLI_COL_TEXT},	  {"PACKAGE", "package.name", CLI_COL_TEXT},
    {"VERSION", "package.version", CLI_COL_TEXT},
};

/* FIXED and ENGINES are the lists joined by commas (finding_row). */
static const struct cli_column finding_cols[] = {
    {"ID", "id", CLI_COL_TEXT},
    {"SEVERITY", "severity", CLI_COL_TEXT},
    {"PACKAGE", "package.name", CLI_COL_TEXT},
    {"VERSION", "package.version", CLI_COL_TEXT},
    {"FIXED", "fixed", CLI_COL_TEXT},
    {"ENGINES", "engines", CLI_COL_TEXT},
};

static const struct cli_column rec_cols[] = {
    {"PRIORITY", "priority", CLI_COL_TEXT},
    {"FINDING", "finding", CLI_COL_TEXT},
    {"PACKAGE", "package.name", CLI_COL_TEXT},
    {"ACTION", "action", CLI_COL_TEXT},
};

/* One row per package to upgrade (the scan's "upgrades" roll-up). */
static const struct cli_column upgrade_cols[] = {
    {"PRIORITY", "priority", CLI_COL_TEXT},
    {"PACKAGE", "package.name", CLI_COL_TEXT},
    {"VERSION", "package.version", CLI_COL_TEXT},
    {"TO", "to_version", CLI_COL_TEXT},
    {"FIXES", "fixes", CLI_COL_TEXT},
};

/* IMAGES joined by commas ("(all)" for none), EXCEPTIONS a count: policy_row. */
static const struct cli_column policy_cols[] = {
    {"NAME", "name", CLI_COL_TEXT},
    {"ENABLED", "enabled", CLI_COL_TEXT},
    {"BLOCK_CRITICAL", "block_critical", CLI_COL_TEXT},
    {"MAX_HIGH", "max_high", CLI_COL_TEXT},
    {"EXCEPTIONS", "exceptions", CLI_COL_TEXT},
    {"IMAGES", "images", CLI_COL_TEXT},
};

static const struct cli_column exception_cols[] = {
    {"ID", "id", CLI_COL_TEXT},
    {"OWNER", "owner", CLI_COL_TEXT},
    {"EXPIRES", "expires_at", CLI_COL_TIME},
    {"REASON", "reason", CLI_COL_TEXT},
};

/* row(item) for every item of the array v, as a new array; NULL when out of memory. */
static json_t *map_rows(const json_t *v, json_t *(*row)(const json_t *))
{
	json_t *out = json_array();
	size_t i;
	const json_t *item;

	json_array_foreach(v, i, item)
	{
		if (out == NULL || json_array_append_new(out, row(item)) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* Prints rows as a table under a blank line; rows NULL: out of memory. */
static int table_after(const struct cli_column *cols, size_t ncols, json_t *rows)
{
	int rc = rows != NULL ? 0 : no_memory();

	if (rc == 0) {
		putchar('\n');
		rc = cli_print_table(cols, ncols, rows);
	}
	json_decref(rows);
	return rc;
}

static json_t *finding_row(const json_t *f)
{
	return json_pack("{s:O?, s:O?, s:O?, s:o, s:o}", "id", json_object_get(f, "id"), "severity",
			 json_object_get(f, "severity"), "package", json_object_get(f, "package"),
			 "fixed", joined(json_object_get(f, "fixed_versions")), "engines",
			 joined(json_object_get(f, "engines")));
}

/* Appends row to rows (which may be NULL: a failure) when ok, else frees it; -1 on failure. */
static int append_if(json_t *rows, json_t *row, bool ok)
{
	if (!ok) {
		json_decref(row);
		return -1;
	}
	return json_array_append_new(rows, row); /* takes row, even on failure */
}

/* obj[key] = v (a new reference) when v is not NULL; -1 when out of memory. */
static int set_given(json_t *obj, const char *key, json_t *v)
{
	return v != NULL ? json_object_set(obj, key, v) : 0;
}

/* A row of the counts table: counts (may be NULL) with engine = name. */
static json_t *count_row(const char *name, json_t *counts)
{
	json_t *row = json_is_object(counts) ? json_copy(counts) : json_object();

	if (row != NULL && json_object_set_new(row, "engine", json_string(name)) < 0) {
		json_decref(row);
		row = NULL;
	}
	return row;
}

/*
 * The counts table: each engine's status and what it found before the
 * merge (ONLY: merged findings no other engine saw), then "merged" (BOTH:
 * merged findings every engine saw).
 */
static json_t *count_rows(const json_t *scan)
{
	json_t *summary = json_object_get(scan, "summary"),
	       *engines = json_object_get(scan, "engines");
	json_t *before = json_object_get(summary, "before"),
	       *only = json_object_get(summary, "only");
	json_t *rows = json_array(), *e, *row;
	const char *name;

	json_object_foreach(engines, name, e)
	{
		row = count_row(name, json_object_get(before, name));
		bool ok = row != NULL && (!json_is_object(e) || json_object_update(row, e) == 0) &&
			  set_given(row, "only", json_object_get(only, name)) == 0;
		if (append_if(rows, row, ok) < 0) {
			json_decref(rows);
			return NULL;
		}
	}
	row = count_row("merged", json_object_get(summary, "after"));
	bool ok = row != NULL && set_given(row, "both", json_object_get(summary, "both")) == 0;
	if (append_if(rows, row, ok) < 0) {
		json_decref(rows);
		return NULL;
	}
	return rows;
}

/* Copies of items with key set to value, appended to rows. */
static int append_tagged(json_t *rows, const json_t *items, const char *key, const char *value)
{
	size_t i;
	const json_t *item;

	json_array_foreach(items, i, item)
	{
		json_t *row = json_copy((json_t *)item);
		bool ok = row != NULL && json_object_set_new(row, key, json_string(value)) == 0;
		if (append_if(rows, row, ok) < 0)
			return no_memory();
	}
	return 0;
}

/* The diff against the image's previous scan: the counts, then each new and fixed finding. */
static int show_diff(const json_t *diff)
{
	const json_t *added = json_object_get(diff, "new"), *fixed = json_object_get(diff, "fixed");
	json_t *changes;
	int rc;

	if (!json_is_object(diff))
		return 0; /* the image's first scan */
	if ((changes = json_array()) == NULL)
		return no_memory();
	rc = table_after(diff_cols, NCOLS(diff_cols),
			 json_pack("{s:O?, s:I, s:I, s:O?}", "previous_scan_id",
				   json_object_get(diff, "previous_scan_id"), "new",
				   (json_int_t)json_array_size(added), "fixed",
				   (json_int_t)json_array_size(fixed), "unchanged",
				   json_object_get(diff, "unchanged")));
	if (rc == 0)
		rc = append_tagged(changes, added, "change", "new");
	if (rc == 0)
		rc = append_tagged(changes, fixed, "change", "fixed");
	if (rc == 0 && json_array_size(changes) > 0)
		return table_after(change_cols, NCOLS(change_cols), changes);
	json_decref(changes);
	return rc;
}

/*
 * Prints one scan: its JSON, or its summary (the scan, the counts per
 * engine and merged, the diff), with findings and recommendations tables
 * when asked for.
 */
static int show_scan(const struct ctx *ctx, const json_t *scan, bool findings, bool recs)
{
	if (ctx->json)
		return cli_print_json(scan);
	int rc = cli_print_table(scan_head_cols, NCOLS(scan_head_cols), scan);

	if (rc == 0 && (json_object_size(json_object_get(scan, "engines")) > 0 ||
			json_is_object(json_object_get(scan, "summary"))))
		rc = table_after(count_cols, NCOLS(count_cols), count_rows(scan));
	if (rc == 0)
		rc = show_diff(json_object_get(scan, "diff"));
	if (rc == 0 && findings)
		rc = table_after(finding_cols, NCOLS(finding_cols),
				 map_rows(json_object_get(scan, "findings"), finding_row));
	json_t *rec = json_object_get(scan, "recommendations"), *up = json_object_get(scan, "upgrades");
	/* What to upgrade, one package a row, then each finding's own advice. */
	if (rc == 0 && recs)
		rc = table_after(upgrade_cols, NCOLS(upgrade_cols),
				 json_is_array(up) ? json_incref(up) : json_array());
	if (rc == 0 && recs)
		rc = table_after(rec_cols, NCOLS(rec_cols),
				 json_is_array(rec) ? json_incref(rec) : json_array());
	return rc;
}

static bool scan_done(const json_t *scan)
{
	const char *st = json_string_value(json_object_get(scan, "status"));
	return st != NULL && (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0);
}

/*
 * GETs the scan every SCAN_POLL_S until it is completed or failed, for at
 * most timeout seconds; *done receives its final state.
 */
static int scan_wait(struct cli_session *s, const json_t *queued, json_int_t timeout, json_t **done)
{
	const char *id = json_string_value(json_object_get(queued, "id"));
	char *path = id != NULL ? resource_path("/v1/scans/", id, "") : NULL;
	char sid[64];
	json_t *scan = json_copy((json_t *)queued);
	int64_t end = time_mono_ns() + (int64_t)timeout * NSEC_PER_SEC;
	int rc = path != NULL && scan != NULL ? 0 : no_memory();

	if (id == NULL)
		cli_errorf("malformed server answer: the scan has no id");
	cli_sanitize(id != NULL ? id : "-", sid, sizeof(sid));
	while (rc == 0 && !scan_done(scan)) {
		if (time_mono_ns() >= end) {
			cli_errorf("scan %s has not finished after %" JSON_INTEGER_FORMAT
				   " s; see 'odysseus scans show %s'",
				   sid, timeout, sid);
			rc = CLI_E_FAIL;
			break;
		}
		sleep(SCAN_POLL_S);
		json_decref(scan);
		scan = NULL;
		rc = cli_session_call(s, "GET", path, NULL, &scan);
	}
	if (rc == 0)
		*done = scan;
	else
		json_decref(scan);
	free(path);
	return rc;
}

/* CLI_E_FAIL with the server's reason when the scan failed, else 0. */
static int scan_outcome(const json_t *scan)
{
	char id[64], why[SCAN_ERROR_SHOWN];
	const char *st = json_string_value(json_object_get(scan, "status"));

	if (st == NULL || strcmp(st, "failed") != 0)
		return 0;
	text_of(json_object_get(scan, "id"), id, sizeof(id));
	text_of(json_object_get(scan, "error"), why, sizeof(why));
	cli_errorf("scan %s failed: %s", id, why);
	return CLI_E_FAIL;
}

static const char *const scan_opts[] = {"wait", "no-wait", "timeout=", NULL};

static int cmd_scan(const struct ctx *ctx, const struct args *a)
{
	const char *t = get_opt(a, "timeout");
	bool wait = !has_opt(a, "no-wait");
	json_int_t timeout = SCAN_TIMEOUT_S;
	struct cli_session *s = NULL;
	json_t *body = NULL, *scan = NULL, *done = NULL;
	int rc = 0;

	if (has_opt(a, "wait") && !wait)
		return usage_error("--wait and --no-wait exclude each other");
	if (t != NULL && (rc = parse_count("--timeout", t, 1, &timeout)) < 0)
		return rc;
	if (timeout > SCAN_TIMEOUT_MAX_S)
		return usage_error("--timeout must be at most %d seconds", SCAN_TIMEOUT_MAX_S);
	if ((body = json_object()) == NULL)
		return no_memory();
	rc = set_text(body, "image", "IMAGE", a->pos[0]);
	if (rc == 0)
		rc = open_session(ctx, &s);
	if (rc == 0)
		rc = cli_session_call(s, "POST", "/v1/scans", body, &scan);
	if (rc == 0 && wait)
		rc = scan_wait(s, scan, timeout, &done);
	if (rc == 0)
		rc = show_scan(ctx, wait ? done : scan, false, false);
	if (rc == 0 && wait)
		rc = scan_outcome(done);
	json_decref(done);
	json_decref(scan);
	json_decref(body);
	cli_session_free(s);
	return rc;
}

/* Bytes counted while jansson reads a file: more than max stops it. */
struct bounded_file {
	FILE *f;
	size_t n, max;
};

static size_t bounded_read(void *buf, size_t len, void *arg)
{
	struct bounded_file *b = arg;
	size_t got = fread(buf, 1, len, b->f);

	b->n += got;
	return b->n > b->max || ferror(b->f) ? (size_t)-1 : got;
}

static int file_too_big(const char *path, size_t max)
{
	cli_errorf("%s is larger than %zu MiB; nothing was sent", path, max >> 20);
	return CLI_E_USAGE;
}

/*
 * Parses the JSON file path of at most max bytes into *out. A larger file
 * is refused before it is read (a pipe: once max bytes came); nothing is
 * sent then.
 */
static int json_from_file(const char *path, size_t max, json_t **out)
{
	struct bounded_file b = {.f = fopen(path, "re"), .max = max};
	struct stat st;
	json_error_t err;
	json_t *v;

	if (b.f == NULL) {
		cli_errorf("cannot open %s: %s", path, strerror(errno));
		return CLI_E_FAIL;
	}
	if (fstat(fileno(b.f), &st) == 0 && S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max) {
		fclose(b.f);
		return file_too_big(path, max);
	}
	v = json_load_callback(bounded_read, &b, JSON_REJECT_DUPLICATES, &err);
	bool bad = ferror(b.f) != 0;
	fclose(b.f);
	if (b.n > max) {
		json_decref(v);
		return file_too_big(path, max);
	}
	if (bad) {
		json_decref(v);
		cli_errorf("cannot read %s", path);
		return CLI_E_FAIL;
	}
	if (v == NULL) {
		cli_errorf("%s is not JSON (line %d: %s); nothing was sent", path, err.line,
			   err.text);
		return CLI_E_USAGE;
	}
	*out = v;
	return 0;
}

/* "trivy" or "grype" by a report's top-level keys (FORMATS.md), or NULL. */
static const char *report_engine(const json_t *r)
{
	bool trivy = json_object_get(r, "SchemaVersion") != NULL ||
		     json_object_get(r, "Results") != NULL ||
		     json_object_get(r, "ArtifactName") != NULL;
	bool grype =
	    json_object_get(r, "matches") != NULL || json_object_get(r, "descriptor") != NULL;

	if (trivy == grype)
		return NULL;
	return trivy ? "trivy" : "grype";
}

/* Reads the report file path into body.trivy or body.grype, whichever it is. */
static int add_report(json_t *body, const char *path)
{
	json_t *report = NULL;
	int rc = json_from_file(path, REPORT_FILE_MAX, &report);
	const char *engine = rc == 0 ? report_engine(report) : NULL;

	if (rc == 0 && engine == NULL) {
		cli_errorf("%s is neither a Trivy JSON report (trivy image -f json) nor a Grype "
			   "JSON report (grype -o json); nothing was sent",
			   path);
		rc = CLI_E_USAGE;
	} else if (rc == 0 && json_object_get(body, engine) != NULL) {
		cli_errorf("both files are %s reports: give one Trivy and one Grype report of the "
			   "same image; nothing was sent",
			   engine);
		rc = CLI_E_USAGE;
	} else if (rc == 0) {
		rc = json_object_set_new(body, engine, report) < 0 ? no_memory() : 0;
		report = NULL; /* taken by the body, even on failure */
	}
	json_decref(report);
	return rc;
}

static const char *const scan_import_opts[] = {"image=", NULL};

static int cmd_scan_import(const struct ctx *ctx, const struct args *a)
{
	const char *image = get_opt(a, "image");
	json_t *body = json_object(), *scan = NULL;
	int rc = body != NULL ? 0 : no_memory();

	if (rc == 0 && image != NULL)
		rc = image[0] != '\0' ? set_text(body, "image", "--image", image)
				      : usage_error("--image must not be empty");
	for (size_t i = 0; rc == 0 && i < a->npos; i++)
		rc = add_report(body, a->pos[i]);
	if (rc == 0)
		rc = run_create(ctx, "/v1/scans/import", body, &scan);
	if (rc == 0)
		rc = show_scan(ctx, scan, false, false);
	json_decref(scan);
	json_decref(body);
	return rc;
}

static const char *const scans_ls_opts[] = {"image=", NULL};

static int cmd_scans_ls(const struct ctx *ctx, const struct args *a)
{
	const char *image = get_opt(a, "image");

	if (image == NULL)
		return run_list(ctx, "/v1/scans", scan_cols, NCOLS(scan_cols));
	if (image[0] == '\0')
		return usage_error("--image must not be empty");
	char *path = resource_path("/v1/scans?image=", image, "");
	if (path == NULL)
		return no_memory();
	int rc = run_list(ctx, path, scan_cols, NCOLS(scan_cols));
	free(path);
	return rc;
}

static const char *const scans_show_opts[] = {"findings", "recommendations", NULL};

static int cmd_scans_show(const struct ctx *ctx, const struct args *a)
{
	json_t *scan = NULL;
	int rc = call_on(ctx, "GET", "/v1/scans/", a->pos[0], NULL, &scan);

	if (rc == 0)
		rc = show_scan(ctx, scan, has_opt(a, "findings"), has_opt(a, "recommendations"));
	json_decref(scan);
	return rc;
}

/* A copy of a policy with "images" joined ("(all)": none) and "exceptions" counted. */
static json_t *policy_row(const json_t *p)
{
	const json_t *images = json_object_get(p, "images");
	json_t *row = json_copy((json_t *)p);
	json_t *shown = json_array_size(images) > 0 ? joined(images) : json_string("(all)");
	json_int_t nexc = (json_int_t)json_array_size(json_object_get(p, "exceptions"));

	if (row == NULL || shown == NULL || json_object_set_new(row, "images", shown) < 0 ||
	    json_object_set_new(row, "exceptions", json_integer(nexc)) < 0) {
		if (row == NULL)
			json_decref(shown);
		json_decref(row);
		return NULL;
	}
	return row;
}

/* Prints a policy: its JSON, or its row and then its exceptions. */
static int show_policy(const struct ctx *ctx, const json_t *p)
{
	if (ctx->json)
		return cli_print_json(p);
	json_t *row = policy_row(p);
	const json_t *exc = json_object_get(p, "exceptions");
	int rc = row != NULL ? cli_print_table(policy_cols, NCOLS(policy_cols), row) : no_memory();

	json_decref(row);
	if (rc == 0 && json_array_size(exc) > 0)
		rc = table_after(exception_cols, NCOLS(exception_cols), json_incref((json_t *)exc));
	return rc;
}

static int cmd_scan_policies_ls(const struct ctx *ctx, const struct args *a)
{
	struct cli_session *s = NULL;
	json_t *items = NULL, *rows = NULL;
	int rc = open_session(ctx, &s);

	(void)a;
	if (rc == 0)
		rc = cli_session_list(s, "/v1/scan-policies", &items);
	cli_session_free(s);
	if (rc == 0 && !ctx->json && (rows = map_rows(items, policy_row)) == NULL)
		rc = no_memory();
	if (rc == 0)
		rc = show_list(ctx, ctx->json ? items : rows, policy_cols, NCOLS(policy_cols));
	json_decref(rows);
	json_decref(items);
	return rc;
}

static int cmd_scan_policies_get(const struct ctx *ctx, const struct args *a)
{
	json_t *p = NULL;
	int rc = call_on(ctx, "GET", "/v1/scan-policies/", a->pos[0], NULL, &p);

	if (rc == 0)
		rc = show_policy(ctx, p);
	json_decref(p);
	return rc;
}

static const char *const scan_policy_set_opts[] = {"file=", NULL};

static int cmd_scan_policies_set(const struct ctx *ctx, const struct args *a)
{
	const char *file = get_opt(a, "file");
	json_t *body = NULL, *p = NULL;
	int rc;

	if (file == NULL || file[0] == '\0')
		return usage_error("--file is required");
	if ((rc = json_from_file(file, POLICY_FILE_MAX, &body)) < 0)
		return rc;
	if (!json_is_object(body)) {
		cli_errorf("%s does not hold a JSON object (a policy); nothing was sent", file);
		rc = CLI_E_USAGE;
	}
	if (rc == 0)
		rc = call_on(ctx, "PUT", "/v1/scan-policies/", a->pos[0], body, &p);
	if (rc == 0)
		rc = show_policy(ctx, p);
	json_decref(p);
	json_decref(body);
	return rc;
}

static int cmd_scan_policies_rm(const struct ctx *ctx, const struct args *a)
{
	return run_on(ctx, "DELETE", "/v1/scan-policies/", a->pos[0], "", NULL, policy_cols,
		      NCOLS(policy_cols), "scan policy", "deleted");
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
    {"nodes", "token", cmd_nodes_token, node_token_opts, 0, 0,
     "nodes token [--ttl DURATION] [--name NAME]",
     "Create a single-use enrollment token for a new node. The token alone goes to stdout\n"
     "(T=$(odysseus nodes token)) and is shown only this once. DURATION: seconds, or a\n"
     "number with s, m or h (90s, 30m, 24h); default and maximum 24h. --name binds the\n"
     "token to that node name."},
    {"nodes", "list", cmd_nodes_list, NULL, 0, 0, "nodes list", "List the enrolled nodes."},
    {"nodes", "get", cmd_nodes_get, NULL, 1, 1, "nodes get ID", "Show one node."},
    {"nodes", "rm", cmd_nodes_rm, NULL, 1, 1, "nodes rm ID",
     "Revoke a node: it leaves the inventory and its next request is refused."},
    {"deploy", NULL, cmd_deploy, deploy_opts, 1, 1,
     "deploy NAME --image REF [--replicas N] [--cpu MILLICORES] [--memory MB] [--pids N]\n"
     "         [--storage MB] [--env NAME=VALUE]... [--writable PATH]... [--secret NAME]...\n"
     "         [--user UID[:GID]] [--override-justification TEXT] [-- COMMAND [ARG...]]",
     "Create deployment NAME, or update it when it exists (a new revision when the template\n"
     "changes). On an update what is not given is kept: --replicas, each resource, the\n"
     "user; --env, --writable, --secret and the command replace the whole list when given.\n"
     "A --secret must be granted to the deployment first (secrets grant); the replicas\n"
     "read it at /run/secrets/NAME. The command is every word after -- (or one word per\n"
     "--cmd ARG). When the tenant's scan policies block the image, the policies and the\n"
     "findings are printed and the exit status is 7; an admin or operator may deploy it\n"
     "anyway with --override-justification TEXT (10 to 1000 characters; audited)."},
    {"ls", NULL, cmd_ls, NULL, 0, 1, "ls [NAME]",
     "List the deployments; with NAME, the containers of that deployment."},
    {"scale", NULL, cmd_scale, NULL, 2, 2, "scale NAME REPLICAS",
     "Set the number of replicas of a deployment."},
    {"restart", NULL, cmd_restart, NULL, 1, 1, "restart NAME",
     "Replace every replica of a deployment, one at a time."},
    {"rollback", NULL, cmd_rollback, rollback_opts, 1, 1,
     "rollback NAME [--to REVISION] [--override-justification TEXT]",
     "Make a new revision with the template of an older one (default: the one before).\n"
     "Scan policies apply as for deploy, and so does --override-justification."},
    {"revisions", NULL, cmd_revisions, NULL, 1, 1, "revisions NAME",
     "List the kept revisions of a deployment, newest first."},
    {"rm", NULL, cmd_rm, NULL, 1, 1, "rm NAME", "Delete a deployment and its containers."},
    {"logs", NULL, cmd_logs, logs_opts, 1, 1, "logs CONTAINER_ID [--tail N] [--follow]",
     "Print a container's recent output (stdout and stderr) as text. --follow asks again\n"
     "every 2 s for what came since and prints it, until interrupted."},
    {"containers", "ls", cmd_containers_ls, containers_ls_opts, 0, 0,
     "containers ls [--deployment NAME]", "List the tenant's containers (of one deployment)."},
    {"containers", "restart", cmd_containers_restart, NULL, 1, 1, "containers restart ID",
     "Replace a container: a new one (a new id) starts, the old one goes once it runs."},
    {"containers", "stop", cmd_containers_stop, NULL, 1, 1, "containers stop ID",
     "Stop a container; it stays, not running."},
    {"secrets", "set", cmd_secrets_set, secret_set_opts, 1, MAX_POS,
     "secrets set NAME [--from-file FILE] [--generate-length N [--rotate-every DURATION]\n"
     "         [--alphabet CHARS]]",
     "Write a new version of secret NAME (version 1 creates it). The value is the bytes of\n"
     "FILE, else stdin to its end, one final newline dropped (on a terminal: prompted for\n"
     "twice, without echo); never an argument. At most 64 KiB; nothing is sent otherwise.\n"
     "--generate-length sets the rotation policy: 'secrets rotate' then generates values of\n"
     "N characters (1-256) of CHARS (default A-Z a-z 0-9), and the server rotates every\n"
     "DURATION when given (60s to 366d: seconds, or a number with s, m, h or d)."},
    {"secrets", "ls", cmd_secrets_ls, NULL, 0, 0, "secrets ls",
     "List the tenant's secrets: version, grants, last rotation; never values."},
    {"secrets", "get", cmd_secrets_get, NULL, 1, 1, "secrets get NAME",
     "Show one secret's metadata (never its value)."},
    {"secrets", "rotate", cmd_secrets_rotate, secret_rotate_opts, 1, MAX_POS,
     "secrets rotate NAME [--from-file FILE | --stdin]",
     "Make a new version: the value from FILE or stdin (read as by 'secrets set'), or with\n"
     "neither, generated by the secret's policy. Deployments that use the secret replace\n"
     "their replicas one at a time."},
    {"secrets", "grant", cmd_secrets_grant, NULL, 1, MAX_POS, "secrets grant NAME [DEPLOYMENT...]",
     "Set the deployments that may receive the secret to exactly those given (the whole\n"
     "list); 'secrets grant NAME' with none revokes every grant."},
    {"secrets", "rm", cmd_secrets_rm, NULL, 1, 1, "secrets rm NAME",
     "Delete a secret, every version."},
    /* Before "scan IMAGE": a group's command without a name matches any word. */
    {"scan", "import", cmd_scan_import, scan_import_opts, 1, 2,
     "scan import FILE [FILE] [--image REF]",
     "Import a Trivy JSON report (trivy image -f json), a Grype JSON report (grype -o json),\n"
     "or one of each of the same image: they are merged into a completed scan, whose summary\n"
     "is printed. The image defaults to the one the report names. A file over 32 MiB, one\n"
     "that is not such a report, or two of the same engine are refused before sending."},
    {"scan", NULL, cmd_scan, scan_opts, 1, 1, "scan IMAGE [--wait | --no-wait] [--timeout SECONDS]",
     "Scan an image with the engines installed on the server (trivy, grype). By default wait\n"
     "for the result, asking every second for at most SECONDS (default 900), and print its\n"
     "summary as 'scans show' does; the exit status is 1 when the scan failed. --no-wait\n"
     "prints the queued scan and returns."},
    {"scans", "ls", cmd_scans_ls, scans_ls_opts, 0, 0, "scans ls [--image REF]",
     "List the tenant's scans (of one image), newest first: the merged counts per severity\n"
     "and how many findings are new and fixed since the image's scan before."},
    {"scans", "show", cmd_scans_show, scans_show_opts, 1, 1,
     "scans show ID [--findings] [--recommendations]",
     "Show a scan: the image and digest, each engine's status, version and counts before the\n"
     "merge (ONLY: merged findings no other engine saw), the merged counts (BOTH: findings\n"
     "every engine saw), and the new and fixed findings since the image's scan before.\n"
     "--findings lists the merged findings, --recommendations what to upgrade (a package a row,\n"
     "then each finding's advice), by priority.\n"
     "--output json prints the whole scan."},
    {"scan-policies", "ls", cmd_scan_policies_ls, NULL, 0, 0, "scan-policies ls",
     "List the tenant's scan gating policies."},
    {"scan-policies", "get", cmd_scan_policies_get, NULL, 1, 1, "scan-policies get NAME",
     "Show a scan policy and its exceptions."},
    {"scan-policies", "set", cmd_scan_policies_set, scan_policy_set_opts, 1, 1,
     "scan-policies set NAME --file FILE",
     "Create or replace scan policy NAME with the JSON object in FILE: {\"images\": [globs],\n"
     "\"block_critical\": bool, \"max_high\": N|null, \"exceptions\": [{\"id\", \"owner\",\n"
     "\"reason\", \"expires_at\"}], \"enabled\": bool}. Deployments of images it covers are\n"
     "refused while their latest scan breaks it (or when there is no scan)."},
    {"scan-policies", "rm", cmd_scan_policies_rm, NULL, 1, 1, "scan-policies rm NAME",
     "Delete a scan policy."},
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
    {"audit", "list", cmd_audit_list, audit_list_opts, 0, 0,
     "audit list [--action PREFIX] [--actor ID] [--outcome O] [--resource R]\n"
     "         [--from TIME] [--to TIME] [--limit N]",
     "List audit records (every page, or the first N), oldest first. TIME is RFC 3339 UTC;\n"
     "--action matches a prefix (auth. matches auth.login); O is success, failure or denied."},
    {"audit", "verify", cmd_audit_verify, audit_verify_opts, 0, 0,
     "audit verify (--data-dir DIR | --export FILE [--checkpoints FILE | --partial] |\n"
     "         --server [URL]) [--pin-key HEX | --pin-key-file FILE] [--seen SIZE:ROOTHEX]\n"
     "         [--allow-unsigned]",
     "Verify the audit log: a data directory's audit.db (read-only, also while odysseusd\n"
     "runs), a JSON-lines export with its checkpoints, or the live server of the stored\n"
     "login. The hash chain, the Merkle tree and every checkpoint signature are checked;\n"
     "the first problem is named with its sequence number and the exit status is 11.\n"
     "--pin-key: the audit public key every checkpoint must be signed with (--server\n"
     "remembers the key on first use, and the newest checkpoint, and proves next time\n"
     "that the log still extends it). --seen: a checkpoint seen before must still hold.\n"
     "--allow-unsigned: records after the last checkpoint are not an error (a live log)."},
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
		"10 server error,\n11 audit log integrity failure.\n");
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
