/*
 * authz-bench — the cost of an authorization decision (issue 3).
 *
 * Prints decisions per second for a caller with 0, 10 and 100 permission-set
 * rules, and, as the peer in the same run, the in-process cost of a whole
 * authenticated GET /v1/me and GET /v1/users through api_dispatch (token
 * check, authorization, SQLite read, JSON reply; no network), so the share
 * of a request spent deciding is printed as a ratio. Goal: under 2 %.
 *
 *   authz-bench [seconds-per-case]     (default 1)
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "auth/jwt.h"
#include "auth/password.h"
#include "authz/permset.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "tenancy/tenancy.h"

static double secs = 1.0;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "authz-bench: %s: %s\n", what, odx_strerror(rc));
	exit(1);
}

/* Rules that do not match GET /v1/users, like an Admin's realistic set, plus one that does. */
static void make_rules(size_t n, struct permset_rules *out)
{
	json_t *arr = json_array();
	static const char *const paths[] = {"/v1/deployments/*/scale", "/v1/secrets/**",
					    "/v1/incidents/*", "/v1/scans/**", "/v1/api-keys/*"};
	for (size_t i = 0; i + 1 < n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "effect",
						     i % 3 ? "allow" : "deny", "method",
						     i % 2 ? "POST" : "*", "path", paths[i % 5]));
	if (n)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "effect", "allow", "method",
						     "GET", "path", "/v1/users"));
	char err[160];
	int rc = permset_rules_parse(arr, "bench", out, err, sizeof(err));
	json_decref(arr);
	if (rc < 0)
		die(err, rc);
}

static double time_decisions(size_t nrules, double *ns_per)
{
	struct permset_rules rules = {0};
	make_rules(nrules, &rules);
	struct principal p = {.kind = PRINCIPAL_USER, .role = ROLE_DEVELOPER};
	snprintf(p.tenant_id, sizeof(p.tenant_id), "ten_00000000000000000000000000000000");
	const char *set;
	volatile int sink = 0;
	long iters = 0;
	int64_t start = time_mono_ns(), end = start + (int64_t)(secs * 1e9);
	while (time_mono_ns() < end) {
		for (int i = 0; i < 1000; i++)
			sink += authz_decide(&p, PERM_TENANT_SETTINGS, true, &rules, "GET",
					     "/v1/users", &set);
		iters += 1000;
	}
	double elapsed = (double)(time_mono_ns() - start);
	permset_rules_done(&rules);
	(void)sink;
	*ns_per = elapsed / (double)iters;
	return (double)iters / (elapsed / 1e9);
}

static const struct http_route *find_route(enum http_method m, const char *pattern)
{
	for (size_t i = 0; i < api_nroutes; i++)
		if (api_routes[i].method == m && strcmp(api_routes[i].pattern, pattern) == 0)
			return &api_routes[i];
	return NULL;
}

/* One request through the whole dispatch path, as the server's loop thread runs it. */
static double time_requests(struct api *api, const char *pattern, const char *auth, double *ns_per)
{
	const struct http_route *r = find_route(HTTP_GET, pattern);
	long iters = 0;
	int64_t start = time_mono_ns(), end = start + (int64_t)(secs * 1e9);
	while (time_mono_ns() < end) {
		struct http_exchange ex;
		memset(&ex, 0, sizeof(ex));
		ex.method = HTTP_GET;
		ex.route = r;
		ex.path = pattern;
		ex.authorization = auth;
		ex.app = api;
		ex.body = "";
		snprintf(ex.request_id, sizeof(ex.request_id), "bench");
		api_dispatch(&ex);
		if (ex.status != 200) {
			fprintf(stderr, "authz-bench: %s answered %d\n", pattern, ex.status);
			exit(1);
		}
		free(ex.resp_body);
		iters++;
	}
	double elapsed = (double)(time_mono_ns() - start);
	*ns_per = elapsed / (double)iters;
	return (double)iters / (elapsed / 1e9);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		secs = strtod(argv[1], NULL) > 0 ? strtod(argv[1], NULL) : 1.0;
	char dir[] = "/tmp/odx-authz-bench-XXXXXX";
	if (!mkdtemp(dir))
		die("mkdtemp", ODX_EIO);
	password_set_params(8192, 1);
	struct api api = {0};
	int rc = store_open(dir, &api.store);
	if (rc == 0)
		rc = keyring_init_dir(dir);
	if (rc == 0)
		rc = keyring_load(dir, &api.keyring);
	if (rc == 0)
		rc = revocation_open(api.store, time_now_ns(), &api.revocation);
	if (rc < 0)
		die("setup", rc);
	char hash[PASSWORD_HASH_MAX];
	password_hash("bench-password-123", 18, hash);
	struct quotas q;
	quotas_default(&q);
	struct tenant t;
	struct user admin;
	const char *conflict;
	rc = tenant_create(api.store, "bench", &q, "admin@bench.test", hash, &t, &admin, &conflict);
	for (int i = 0; rc == 0 && i < 19; i++) {
		char email[64];
		struct user u;
		snprintf(email, sizeof(email), "user%d@bench.test", i);
		rc = user_create(api.store, t.id, email, hash, ROLE_DEVELOPER, &u);
	}
	if (rc < 0)
		die("tenant", rc);
	struct jwt_claims c = {0};
	snprintf(c.sub, sizeof(c.sub), "%s", admin.id);
	snprintf(c.tid, sizeof(c.tid), "%s", t.id);
	snprintf(c.role, sizeof(c.role), "admin");
	char *token, auth[2200];
	if ((rc = jwt_issue(api.keyring, &c, time_now_ns() / NSEC_PER_SEC, &token)) < 0)
		die("token", rc);
	snprintf(auth, sizeof(auth), "Bearer %s", token);

	double ns0, ns10, ns100, me_ns, users_ns;
	double d0 = time_decisions(0, &ns0), d10 = time_decisions(10, &ns10);
	double d100 = time_decisions(100, &ns100);
	double me = time_requests(&api, "/v1/me", auth, &me_ns);
	double users = time_requests(&api, "/v1/users", auth, &users_ns);

	printf("| case | per second | ns each |\n|---|---:|---:|\n");
	printf("| decision, 0 rules | %.0f | %.0f |\n", d0, ns0);
	printf("| decision, 10 rules | %.0f | %.0f |\n", d10, ns10);
	printf("| decision, 100 rules | %.0f | %.0f |\n", d100, ns100);
	printf("| GET /v1/me through api_dispatch (peer) | %.0f | %.0f |\n", me, me_ns);
	printf("| GET /v1/users through api_dispatch (peer) | %.0f | %.0f |\n", users, users_ns);
	printf("\nshare of a request spent deciding (goal < 2 %%):\n");
	printf("  GET /v1/me:    0 rules %.2f %%, 10 rules %.2f %%, 100 rules %.2f %%\n",
	       100 * ns0 / me_ns, 100 * ns10 / me_ns, 100 * ns100 / me_ns);
	printf("  GET /v1/users: 0 rules %.2f %%, 10 rules %.2f %%, 100 rules %.2f %%\n",
	       100 * ns0 / users_ns, 100 * ns10 / users_ns, 100 * ns100 / users_ns);
	printf("(in-process: no network or TLS, so the real share on the wire is smaller still)\n");
	free(token);
	revocation_free(api.revocation);
	keyring_free(api.keyring);
	store_free(api.store);
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); /* the scratch store */
	return 0;
}
