/*
 * test-reconcile.c — the agent's reconciler.
 *
 * Spec group (no Engine): the container spec carries every hardening
 * setting exactly, root users become 65534, one tmpfs per writable path,
 * and malformed or out-of-range assignments are refused.
 *
 * Engine group, against the real Docker Engine (scripts/docker-up,
 * tests/images/build.sh): 3 replicas run hardened on the tenant's network;
 * applying again, or from a new reconciler (an agent restart), makes no
 * duplicates; inside, / is read-only and the user is not root; a killed
 * container is replaced by the events thread; "stopped" stops, leaving the
 * list removes; a new revision replaces; tenants get separate networks;
 * refused assignments and unpullable images are reported, not fatal.
 * Everything carries tenant ten_test<random> and is removed even when a
 * test fails. A reconciler on a missing socket keeps working without it.
 *
 * Secrets group, on the Engine with a fake control plane (the fetch
 * callback) and a temporary state directory: a container's secrets are
 * read at /run/secrets by its user exactly, not writable, from a sealed
 * tmpfs on the host (mountinfo); docker inspect shows one read-only bind and
 * no value; a container without secrets has no /run/secrets; removal,
 * stop and a crash unmount (a crash gets a new tmpfs and fetch); a failing
 * fetch or a wrong bundle is reported missing and creates nothing; without
 * CAP_SYS_ADMIN nothing is fetched; 16 x 64 KiB fit; a new agent sweeps the
 * tmpfs of vanished containers; no value is in the agent's log (captured at
 * debug) or under the state directory afterwards.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <ftw.h>
#include <linux/capability.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/client.h"
#include "agent/reconcile.h"
#include "agent/secretfs.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "docker/docker.h"
#include "tmpdir.h"

#define IMAGE1	 "odysseus-test/busybox:1"
#define IMAGE2	 "odysseus-test/busybox:2"
#define NOIMAGE	 "localhost:1/odysseus-none:1" /* refused at once: nothing listens */
#define WAIT_MS	 10000
#define TENANTS	 2
#define NOBODY	 "65534:65534"
#define T_PREFIX "ten_test"
#define STALE_S	 600 /* older leftovers of a run that died are removed */

static struct docker *D; /* the tests' own handle */

struct t {
	char node[40];
	char tenant[TENANTS][40];
	struct reconciler *r;
};

/* ---- helpers ---------------------------------------------------------------------- */

static void rand_hex(char *out, size_t nbytes)
{
	uint8_t b[32];
	assert_true(nbytes <= sizeof(b));
	assert_int_equal(getrandom(b, nbytes, 0), (ssize_t)nbytes);
	for (size_t i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void new_ctr(char out[static 37])
{
	memcpy(out, "ctr_", 4);
	rand_hex(out + 4, 16);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
	return time_mono_ns() / 1000000;
}

/* An assignment like the control plane's; cmd is a JSON array text or NULL. */
static json_t *asg(const char *ctr, const char *tenant, int replica, int revision,
		   const char *state, const char *image, const char *cmd)
{
	json_t *a = json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:{s:s},"
			      " s:{s:i, s:i, s:i, s:i}, s:[s], s:s}",
			      "container", ctr, "tenant", tenant, "deployment", "web", "revision",
			      revision, "replica", replica, "state", state, "image", image, "env",
			      "MODE", "prod", "resources", "cpu_millicores", 250, "memory_mb", 64,
			      "pids", 128, "storage_mb", 0, "writable_paths", "/tmp", "user", "0");
	assert_non_null(a);
	if (cmd != NULL)
		json_object_set_new(a, "command", json_loads(cmd, 0, NULL));
	return a;
}

static json_t *sleeper(const char *ctr, const char *tenant, int replica)
{
	return asg(ctr, tenant, replica, 1, "running", IMAGE1, "[\"sleep\", \"300\"]");
}

static json_t *list_of(json_t *a, ...)
{
	json_t *l = json_array();
	va_list ap;
	va_start(ap, a);
	for (; a != NULL; a = va_arg(ap, json_t *))
		json_array_append_new(l, a);
	va_end(ap);
	return l;
}

static void apply(struct t *t, json_t *list)
{
	int rc = reconcile_apply(t->r, list);
	json_decref(list);
	if (rc != 0)
		fail_msg("reconcile_apply: %s", odx_strerror(rc));
}

/* The Engine's containers labelled with key=value. */
static json_t *listed(const char *key, const char *value)
{
	char kv[128];
	json_t *l = NULL;
	snprintf(kv, sizeof(kv), "%s=%s", key, value);
	assert_int_equal(docker_container_list(D, kv, &l), 0);
	return l;
}

static const char *lab(const json_t *c, const char *key)
{
	return json_string_value(json_object_get(json_object_get(c, "Labels"), key));
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static json_t *inspect(const char *id)
{
	json_t *j = NULL;
	assert_int_equal(docker_container_inspect(D, id, &j), 0);
	return j;
}

/* The one container of ctr id (asserts there is exactly one) or NULL if none. */
static json_t *one(const char *ctr)
{
	json_t *l = listed("odysseus.container", ctr), *c = NULL;
	if (json_array_size(l) > 1)
		fail_msg("%zu containers for %s", json_array_size(l), ctr);
	if (json_array_size(l) == 1)
		c = json_incref(json_array_get(l, 0));
	json_decref(l);
	return c;
}

static void id_of(const char *ctr, char id[static 65])
{
	json_t *c = one(ctr);
	assert_non_null(c);
	snprintf(id, 65, "%s", str(c, "Id"));
	json_decref(c);
}

static bool state_is(const char *ctr, const char *state)
{
	json_t *c = one(ctr);
	bool yes = c != NULL && strcmp(str(c, "State"), state) == 0;
	json_decref(c);
	return yes;
}

/* The report entry for ctr, or NULL. Events are appended to *events when given. */
static json_t *report_entry(struct t *t, const char *ctr, json_t *events)
{
	json_t *cs = NULL, *ev = NULL, *v, *found = NULL;
	size_t i;
	assert_int_equal(reconcile_report(t->r, &cs, &ev), 0);
	if (events != NULL)
		json_array_extend(events, ev);
	json_array_foreach(cs, i, v) if (strcmp(str(v, "container"), ctr) == 0) found =
	    json_incref(v);
	json_decref(cs);
	json_decref(ev);
	return found;
}

static bool has_event(const json_t *events, const char *ctr, const char *type)
{
	size_t i;
	json_t *e;
	json_array_foreach(events, i, e) if (strcmp(str(e, "container"), ctr) == 0 &&
					     strcmp(str(e, "type"), type) == 0) return true;
	return false;
}

static void remove_tenant(const char *tenant)
{
	char net[64];
	json_t *l = NULL, *c;
	size_t i;
	char kv[96];

	snprintf(kv, sizeof(kv), "odysseus.tenant=%s", tenant);
	if (docker_container_list(D, kv, &l) == 0)
		json_array_foreach(l, i, c) docker_container_remove(D, str(c, "Id"));
	json_decref(l);
	snprintf(net, sizeof(net), "odx-%s", tenant);
	docker_network_remove(D, net);
}

/*
 * Leftovers of earlier runs that died before their teardown: ten_test*
 * only, and only old ones, so that runs in parallel (another build
 * directory's) keep theirs.
 */
static void remove_stale(void)
{
	json_t *l = NULL, *c;
	size_t i;
	json_int_t old = time_now_ns() / NSEC_PER_SEC - STALE_S;

	if (docker_container_list(D, "odysseus.tenant", &l) != 0)
		return;
	json_array_foreach(l, i, c)
	{
		const char *ten = lab(c, "odysseus.tenant");
		if (ten != NULL && strncmp(ten, T_PREFIX, strlen(T_PREFIX)) == 0 &&
		    json_integer_value(json_object_get(c, "Created")) < old)
			remove_tenant(ten);
	}
	json_decref(l);
}

/* ---- the spec -------------------------------------------------------------------- */

static json_t *spec_of(json_t *a)
{
	char err[RECONCILE_ERR_LEN] = "";
	json_t *spec = NULL;
	int rc = reconcile_spec(a, &spec, err);
	if (rc != 0)
		fail_msg("reconcile_spec: %s: %s", odx_strerror(rc), err);
	json_decref(a);
	return spec;
}

static void test_spec_hardening(void **state)
{
	(void)state;
	json_t *a = asg("ctr_0123456789abcdef0123456789abcdef", "ten_abc", 2, 7, "running", IMAGE1,
			"[\"sh\", \"-c\", \"httpd -f -p 8080\"]");
	json_object_set_new(a, "user", json_string("1000:1000"));
	json_t *s = spec_of(a), *h = json_object_get(s, "HostConfig");
	char *dump;

	/* Exactly the hardening of docs/deployments.md, and nothing that loosens it. */
	json_t *want = json_pack(
	    "{s:[s], s:[s], s:b, s:b, s:{s:s}, s:I, s:I, s:I, s:I, s:[], s:[], s:{}, s:b, s:s,"
	    " s:{s:s, s:i}, s:{s:s, s:{s:s, s:s}}}",
	    "SecurityOpt", "no-new-privileges", "CapDrop", "ALL", "Privileged", 0, "ReadonlyRootfs",
	    1, "Tmpfs", "/tmp", "rw,nosuid,nodev,noexec,size=16m", "NanoCpus",
	    (json_int_t)250000000, "Memory", (json_int_t)64 << 20, "MemorySwap",
	    (json_int_t)64 << 20, "PidsLimit", (json_int_t)128, "Binds", "Devices", "PortBindings",
	    "PublishAllPorts", 0, "NetworkMode", "odx-ten_abc", "RestartPolicy", "Name", "no",
	    "MaximumRetryCount", 0, "LogConfig", "Type", "json-file", "Config", "max-size", "10m",
	    "max-file", "3");
	if (!json_equal(h, want)) {
		dump = json_dumps(h, JSON_SORT_KEYS);
		fail_msg("HostConfig: %s", dump);
	}
	json_decref(want);

	assert_string_equal(str(s, "Image"), IMAGE1);
	assert_string_equal(str(s, "User"), "1000:1000");
	want = json_pack("[s]", "MODE=prod");
	assert_true(json_equal(json_object_get(s, "Env"), want));
	json_decref(want);
	want = json_pack("[s, s, s]", "sh", "-c", "httpd -f -p 8080");
	assert_true(json_equal(json_object_get(s, "Cmd"), want));
	json_decref(want);
	want = json_pack("{s:s, s:s, s:s, s:s, s:s}", "odysseus.container",
			 "ctr_0123456789abcdef0123456789abcdef", "odysseus.tenant", "ten_abc",
			 "odysseus.deployment", "web", "odysseus.replica", "2", "odysseus.revision",
			 "7");
	assert_true(json_equal(json_object_get(s, "Labels"), want));
	json_decref(want);
	want = json_pack("{s:{s:{}}}", "EndpointsConfig", "odx-ten_abc");
	assert_true(json_equal(json_object_get(s, "NetworkingConfig"), want));
	json_decref(want);
	assert_null(json_object_get(s, "ExposedPorts"));
	assert_null(json_object_get(h, "CapAdd"));
	json_decref(s);
}

static void test_spec_user(void **state)
{
	static const char *const cases[][2] = {
	    {"0", NOBODY},
	    {"root", NOBODY},
	    {"0:0", NOBODY},
	    {"0:1000", NOBODY},
	    {"root:root", NOBODY},
	    {"", NOBODY},
	    {"1000:1000", "1000:1000"},
	    {"1000", "1000:65534"},
	    {"1000:0", "1000:65534"},
	    {"00", NOBODY},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *a = sleeper("ctr_0123456789abcdef0123456789abcdef", "ten_abc", 0);
		json_object_set_new(a, "user", json_string(cases[i][0]));
		json_t *s = spec_of(a);
		if (strcmp(str(s, "User"), cases[i][1]) != 0)
			fail_msg("user %s gave %s", cases[i][0], str(s, "User"));
		json_decref(s);
	}
	/* Absent and null: nobody too. */
	json_t *a = sleeper("ctr_0123456789abcdef0123456789abcdef", "ten_abc", 0);
	json_object_del(a, "user");
	json_t *s = spec_of(a);
	assert_string_equal(str(s, "User"), NOBODY);
	json_decref(s);
	a = sleeper("ctr_0123456789abcdef0123456789abcdef", "ten_abc", 0);
	json_object_set_new(a, "user", json_null());
	s = spec_of(a);
	assert_string_equal(str(s, "User"), NOBODY);
	json_decref(s);
}

static void test_spec_tmpfs(void **state)
{
	(void)state;
	json_t *a = sleeper("ctr_0123456789abcdef0123456789abcdef", "ten_abc", 0);
	json_object_set_new(a, "writable_paths", json_pack("[s, s]", "/tmp", "/var/cache/app"));
	json_object_set_new(json_object_get(a, "resources"), "storage_mb", json_integer(64));
	json_t *s = spec_of(a);
	json_t *want = json_pack("{s:s, s:s}", "/tmp", "rw,nosuid,nodev,noexec,size=32768k",
				 "/var/cache/app", "rw,nosuid,nodev,noexec,size=32768k");
	assert_true(json_equal(json_object_get(json_object_get(s, "HostConfig"), "Tmpfs"), want));
	json_decref(want);
	json_decref(s);

	/* No writable path: no tmpfs at all, and the root stays read-only. */
	a = sleeper("ctr_0123456789abcdef0123456789abcdef", "ten_abc", 0);
	json_object_del(a, "writable_paths");
	s = spec_of(a);
	assert_int_equal(
	    json_object_size(json_object_get(json_object_get(s, "HostConfig"), "Tmpfs")), 0);
	json_decref(s);
}

/*
 * Secret names are taken (16 at most, the node name rule) but the spec
 * gets no mount from reconcile_spec: the source is only known at creation.
 */
static void test_spec_secrets(void **state)
{
	(void)state;
	json_t *a = sleeper("ctr_0123456789abcdef0123456789abcdef", "ten_abc", 0);
	json_object_set_new(a, "secrets",
			    json_pack("[s, s, s]", "db-password", "a",
				      "0123456789-abcdefghijklmnop"
				      "qrstuvwxyz-0123456789-abcdefghijk"));
	json_t *s = spec_of(a), *h = json_object_get(s, "HostConfig");
	assert_null(json_object_get(h, "Mounts"));
	assert_int_equal(json_array_size(json_object_get(h, "Binds")), 0);
	json_decref(s);
	a = sleeper("ctr_0123456789abcdef0123456789abcdef", "ten_abc", 0);
	json_object_set_new(a, "secrets", json_array());
	json_decref(spec_of(a));
}

/* Each case replaces one field (a JSON text; "-" deletes it) of a good assignment. */
static void test_spec_refused(void **state)
{
	static const char *const cases[][2] = {
	    {"container", "\"ctr_123\""},
	    {"container", "\"ctr_0123456789ABCDEF0123456789ABCDEF\""},
	    {"container", "-"},
	    {"tenant", "\"ten_\""},
	    {"tenant", "\"ten_../../x\""},
	    {"tenant", "\"acme\""},
	    {"deployment", "\"Web\""},
	    {"deployment", "\"\""},
	    {"revision", "-1"},
	    {"revision", "\"1\""},
	    {"replica", "100"},
	    {"state", "\"paused\""},
	    {"image", "\"\""},
	    {"image", "\"Busybox:1\""},
	    {"image", "\"busybox:1 --privileged\""},
	    {"image", "\"busybox@sha256:abc\""},
	    {"image", "\"a//b\""},
	    {"command", "\"sleep 300\""},
	    {"command", "[1]"},
	    {"env", "{\"1A\": \"x\"}"},
	    {"env", "{\"A-B\": \"x\"}"},
	    {"env", "{\"A\": 1}"},
	    {"env", "[\"A=1\"]"},
	    {"resources", "{\"cpu_millicores\": 5, \"memory_mb\": 64}"},
	    {"resources", "{\"cpu_millicores\": 64001, \"memory_mb\": 64}"},
	    {"resources", "{\"cpu_millicores\": 100, \"memory_mb\": 5}"},
	    {"resources", "{\"cpu_millicores\": 100, \"memory_mb\": 64, \"pids\": 4097}"},
	    {"resources", "{\"cpu_millicores\": 100, \"memory_mb\": 64, \"pids\": 15}"},
	    {"resources", "{\"cpu_millicores\": 100, \"memory_mb\": 64, \"storage_mb\": -1}"},
	    {"resources", "{\"cpu_millicores\": 100, \"memory_mb\": 64, \"gpus\": 1}"},
	    {"resources", "-"},
	    {"writable_paths", "[\"/\"]"},
	    {"writable_paths", "[\"tmp\"]"},
	    {"writable_paths", "[\"/tmp/../etc\"]"},
	    {"writable_paths", "[\"/tmp\", \"/tmp\"]"},
	    {"writable_paths", "[\"/a b\"]"},
	    {"writable_paths", "[\"/1\",\"/2\",\"/3\",\"/4\",\"/5\",\"/6\",\"/7\",\"/8\",\"/9\"]"},
	    {"user", "\"bob\""},
	    {"user", "\"1000:1000:1\""},
	    {"user", "\"-1\""},
	    {"user", "\"99999999999\""},
	    {"user", "1000"},
	    {"privileged", "true"}, /* unknown fields are refused */
	    {"secrets", "\"db\""},
	    {"secrets", "[1]"},
	    {"secrets", "[\"Db\"]"},
	    {"secrets", "[\"-db\"]"},
	    {"secrets", "[\"db/x\"]"},
	    {"secrets", "[\"..\"]"},
	    {"secrets", "[\"\"]"},
	    {"secrets", "[\"db\", \"db\"]"},
	    {"secrets", "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]"},
	    {"secrets", "[\"a1\",\"a2\",\"a3\",\"a4\",\"a5\",\"a6\",\"a7\",\"a8\",\"a9\","
			"\"b1\",\"b2\",\"b3\",\"b4\",\"b5\",\"b6\",\"b7\",\"b8\"]"},
	};
	char err[RECONCILE_ERR_LEN];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *a = sleeper("ctr_0123456789abcdef0123456789abcdef", "ten_abc", 0);
		json_t *spec = NULL;
		if (strcmp(cases[i][1], "-") == 0)
			json_object_del(a, cases[i][0]);
		else
			json_object_set_new(a, cases[i][0],
					    json_loads(cases[i][1], JSON_DECODE_ANY, NULL));
		err[0] = '\0';
		int rc = reconcile_spec(a, &spec, err);
		if (rc != ODX_EINVAL)
			fail_msg("%s = %s was accepted", cases[i][0], cases[i][1]);
		assert_null(spec);
		assert_true(strlen(err) > 0);
		json_decref(a);
	}
	/* A few good ones the checks must not refuse. */
	static const char *const good[] = {
	    "registry.example.com:5000/team/app:v1.2_3", "localhost/app",
	    "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef01"
	    "23456789abcdef",
	    "team/a.b-c__d"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		json_t *a = sleeper("ctr_0123456789abcdef0123456789abcdef", "ten_abc", 0);
		json_object_set_new(a, "image", json_string(good[i]));
		json_decref(spec_of(a));
	}
}

/* No Engine: the reconciler still answers, reports no containers, stops at once. */
static void test_unreachable(void **state)
{
	struct reconciler *r = NULL;
	json_t *cs = NULL, *ev = NULL, *l = json_array();
	(void)state;

	assert_int_equal(reconcile_new("/nonexistent.sock", "nod_x", 0, NULL, &r), 0);
	assert_int_equal(reconcile_report(r, &cs, &ev), 0);
	assert_null(cs);
	assert_int_equal(json_array_size(ev), 0);
	json_decref(ev);
	assert_int_equal(reconcile_apply(r, l), ODX_EUNAVAIL);
	assert_int_equal(reconcile_apply(r, json_object_get(l, "x")), ODX_EINVAL);
	assert_int_equal(reconcile_report(r, &cs, &ev), 0);
	assert_null(cs);
	json_decref(ev);
	int64_t t0 = now_ms();
	reconcile_free(r);
	assert_true(now_ms() - t0 < 2000);
	json_decref(l);
}

/* ---- against the Engine ------------------------------------------------------------ */

static int engine_group_setup(void **state)
{
	json_t *img = NULL;
	int rc;

	(void)state;
	if (docker_open(NULL, 20000, &D) != 0)
		return -1;
	if ((rc = docker_ping(D)) != 0) {
		fprintf(
		    stderr,
		    "test-reconcile: FAIL: no Docker Engine answers on %s (%s).\n"
		    "  The tests need a real engine: run scripts/docker-up (scripts/test does).\n",
		    DOCKER_SOCKET_DEFAULT, odx_strerror(rc));
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		if ((rc = docker_image_inspect(D, i ? IMAGE2 : IMAGE1, &img)) != 0) {
			fprintf(
			    stderr,
			    "test-reconcile: FAIL: no image %s (%s): run tests/images/build.sh\n",
			    i ? IMAGE2 : IMAGE1, odx_strerror(rc));
			return -1;
		}
		json_decref(img);
	}
	remove_stale();
	return 0;
}

static int engine_group_teardown(void **state)
{
	(void)state;
	remove_stale();
	docker_close(D);
	D = NULL;
	return 0;
}

static int setup_period(void **state, int period_ms)
{
	struct t *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -1;
	for (int i = 0; i < TENANTS; i++) {
		memcpy(t->tenant[i], T_PREFIX, strlen(T_PREFIX));
		rand_hex(t->tenant[i] + strlen(T_PREFIX), 8);
	}
	memcpy(t->node, "nod_test", 8);
	rand_hex(t->node + 8, 8);
	if (reconcile_new(NULL, t->node, period_ms, NULL, &t->r) != 0) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int setup(void **state)
{
	return setup_period(state, 0);
}

/* The safety net far away: only the events thread can act quickly. */
static int setup_slow(void **state)
{
	return setup_period(state, 600000);
}

static int teardown(void **state)
{
	struct t *t = *state;
	reconcile_free(t->r);
	for (int i = 0; i < TENANTS; i++)
		remove_tenant(t->tenant[i]);
	free(t);
	return 0;
}

/* Every hardening setting as the Engine holds it. */
static void check_hardened(const char *id, const char *tenant)
{
	json_t *j = inspect(id), *h = json_object_get(j, "HostConfig"), *v;
	json_t *cfg = json_object_get(j, "Config");
	char net[64];
	const char *k;

	snprintf(net, sizeof(net), "odx-%s", tenant);
	json_t *sec = json_pack("[s]", "no-new-privileges");
	assert_true(json_equal(json_object_get(h, "SecurityOpt"), sec));
	json_decref(sec);
	assert_string_equal(json_string_value(json_array_get(json_object_get(h, "CapDrop"), 0)),
			    "ALL");
	assert_int_equal(json_array_size(json_object_get(h, "CapDrop")), 1);
	assert_int_equal(json_array_size(json_object_get(h, "CapAdd")), 0);
	assert_true(json_is_false(json_object_get(h, "Privileged")));
	assert_true(json_is_true(json_object_get(h, "ReadonlyRootfs")));
	assert_string_equal(str(json_object_get(h, "Tmpfs"), "/tmp"),
			    "rw,nosuid,nodev,noexec,size=16m");
	assert_int_equal(json_integer_value(json_object_get(h, "NanoCpus")), 250000000);
	assert_int_equal(json_integer_value(json_object_get(h, "Memory")), 64 << 20);
	assert_int_equal(json_integer_value(json_object_get(h, "MemorySwap")), 64 << 20);
	assert_int_equal(json_integer_value(json_object_get(h, "PidsLimit")), 128);
	assert_int_equal(json_array_size(json_object_get(h, "Binds")), 0);
	assert_int_equal(json_array_size(json_object_get(h, "Devices")), 0);
	assert_int_equal(json_object_size(json_object_get(h, "PortBindings")), 0);
	assert_true(json_is_false(json_object_get(h, "PublishAllPorts")));
	assert_string_equal(str(h, "NetworkMode"), net);
	assert_string_equal(str(json_object_get(h, "RestartPolicy"), "Name"), "no");
	assert_string_equal(str(cfg, "User"), NOBODY);
	/* No volume or bind; the Engine lists the tmpfs only in HostConfig.Tmpfs. */
	assert_int_equal(json_array_size(json_object_get(j, "Mounts")), 0);
	/* On its tenant's network and no other. */
	json_t *nets = json_object_get(json_object_get(j, "NetworkSettings"), "Networks");
	assert_int_equal(json_object_size(nets), 1);
	json_object_foreach(nets, k, v) assert_string_equal(k, net);
	json_decref(j);
}

static void test_apply_adopt(void **state)
{
	struct t *t = *state;
	char ctr[3][37], ids[3][65], id[65];
	json_t *net = NULL;

	for (int i = 0; i < 3; i++)
		new_ctr(ctr[i]);
	apply(t, list_of(sleeper(ctr[0], t->tenant[0], 0), sleeper(ctr[1], t->tenant[0], 1),
			 sleeper(ctr[2], t->tenant[0], 2), NULL));
	json_t *l = listed("odysseus.tenant", t->tenant[0]);
	assert_int_equal(json_array_size(l), 3);
	json_decref(l);
	for (int i = 0; i < 3; i++) {
		json_t *c = one(ctr[i]);
		assert_non_null(c);
		assert_string_equal(str(c, "State"), "running");
		assert_string_equal(lab(c, "odysseus.tenant"), t->tenant[0]);
		assert_string_equal(lab(c, "odysseus.deployment"), "web");
		assert_string_equal(lab(c, "odysseus.revision"), "1");
		char replica[4];
		snprintf(replica, sizeof(replica), "%d", i);
		assert_string_equal(lab(c, "odysseus.replica"), replica);
		assert_string_equal(lab(c, "odysseus.node"), t->node);
		snprintf(ids[i], 65, "%s", str(c, "Id"));
		json_decref(c);
		check_hardened(ids[i], t->tenant[0]);
	}
	char name[64];
	snprintf(name, sizeof(name), "odx-%s", t->tenant[0]);
	assert_int_equal(docker_network_inspect(D, name, &net), 0);
	assert_string_equal(lab(net, "odysseus.tenant"), t->tenant[0]);
	assert_string_equal(str(net, "Driver"), "bridge");
	json_decref(net);

	/* The report. */
	for (int i = 0; i < 3; i++) {
		json_t *e = report_entry(t, ctr[i], NULL);
		assert_non_null(e);
		assert_string_equal(str(e, "state"), "running");
		assert_string_equal(str(e, "docker_id"), ids[i]);
		assert_string_equal(str(e, "image"), IMAGE1);
		assert_int_equal(json_integer_value(json_object_get(e, "revision")), 1);
		assert_int_equal(json_integer_value(json_object_get(e, "restarts")), 0);
		assert_non_null(str(e, "started_at"));
		assert_null(json_object_get(e, "error"));
		json_decref(e);
	}

	/* Again, then from a new reconciler (an agent restart): the same containers. */
	for (int round = 0; round < 2; round++) {
		if (round == 1) {
			reconcile_free(t->r);
			t->r = NULL;
			assert_int_equal(reconcile_new(NULL, t->node, 0, NULL, &t->r), 0);
		}
		apply(t, list_of(sleeper(ctr[0], t->tenant[0], 0), sleeper(ctr[1], t->tenant[0], 1),
				 sleeper(ctr[2], t->tenant[0], 2), NULL));
		l = listed("odysseus.tenant", t->tenant[0]);
		assert_int_equal(json_array_size(l), 3);
		json_decref(l);
		for (int i = 0; i < 3; i++) {
			id_of(ctr[i], id);
			assert_string_equal(id, ids[i]);
		}
	}
}

/* Inside: the root file system is read-only, the tmpfs is writable, the user is not root. */
static void test_inside(void **state)
{
	struct t *t = *state;
	char ctr[37], id[65];
	char *logs = NULL;
	size_t len = 0;

	new_ctr(ctr);
	apply(t, list_of(asg(ctr, t->tenant[0], 0, 1, "running", IMAGE1,
			     "[\"sh\", \"-c\", \"echo uid=$(id -u) gid=$(id -g); "
			     "touch /probe && echo ROOT_WRITABLE || echo ROOT_READONLY; "
			     "touch /tmp/probe && echo TMP_WRITABLE; sleep 300\"]"),
			 NULL));
	id_of(ctr, id);
	for (int64_t t0 = now_ms(); now_ms() - t0 < WAIT_MS; sleep_ms(100)) {
		free(logs);
		logs = NULL;
		assert_int_equal(docker_container_logs(D, id, 100, 65536, &logs, &len), 0);
		if (strstr(logs, "TMP_WRITABLE") != NULL)
			break;
	}
	if (strstr(logs, "TMP_WRITABLE") == NULL)
		fail_msg("logs: %s", logs);
	assert_non_null(strstr(logs, "uid=65534 gid=65534"));
	assert_non_null(strstr(logs, "ROOT_READONLY"));
	assert_null(strstr(logs, "ROOT_WRITABLE"));
	free(logs);
}

/* A killed container is replaced by the events thread, long before the safety net. */
static void test_kill_replaced(void **state)
{
	struct t *t = *state;
	char ctr[37], id[65], id2[65] = "";
	json_t *events = json_array(), *e;

	new_ctr(ctr);
	apply(t, list_of(sleeper(ctr, t->tenant[0], 0), NULL));
	id_of(ctr, id);
	/* The stream is live once our own start came through it. */
	for (int64_t t0 = now_ms(); !has_event(events, ctr, "start"); sleep_ms(50)) {
		assert_true(now_ms() - t0 < WAIT_MS);
		json_decref(report_entry(t, ctr, events));
	}
	assert_int_equal(docker_container_kill(D, id, "KILL"), 0);
	int64_t t0 = now_ms();
	while (now_ms() - t0 < 5000) {
		json_t *c = one(ctr);
		if (c != NULL && strcmp(str(c, "Id"), id) != 0 &&
		    strcmp(str(c, "State"), "running") == 0)
			snprintf(id2, sizeof(id2), "%s", str(c, "Id"));
		json_decref(c);
		if (id2[0])
			break;
		sleep_ms(50);
	}
	if (!id2[0])
		fail_msg("not replaced within 5 s");
	fprintf(stderr, "replaced in %lld ms\n", (long long)(now_ms() - t0));
	assert_int_equal(docker_container_inspect(D, id, &e), ODX_ENOTFOUND);

	/* The report: a restart, and the die event with its exit code. */
	for (t0 = now_ms();; sleep_ms(50)) {
		e = report_entry(t, ctr, events);
		if (e != NULL && strcmp(str(e, "docker_id"), id2) == 0)
			break;
		json_decref(e);
		assert_true(now_ms() - t0 < WAIT_MS);
	}
	assert_int_equal(json_integer_value(json_object_get(e, "restarts")), 1);
	assert_string_equal(str(e, "state"), "running");
	json_decref(e);
	size_t i;
	bool died = false;
	json_array_foreach(events, i, e) died |=
	    strcmp(str(e, "container"), ctr) == 0 && strcmp(str(e, "type"), "die") == 0 &&
	    json_integer_value(json_object_get(e, "exit_code")) == 137 && str(e, "time") != NULL;
	assert_true(died);
	json_decref(events);
}

/* "stopped" stops it (it still exists); leaving the list removes it and the network. */
static void test_stop_remove(void **state)
{
	struct t *t = *state;
	char ctr[37], id[65], id2[65], net[64];
	json_t *j = NULL;

	new_ctr(ctr);
	apply(t, list_of(sleeper(ctr, t->tenant[0], 0), NULL));
	assert_true(state_is(ctr, "running"));
	id_of(ctr, id);
	apply(t, list_of(asg(ctr, t->tenant[0], 0, 1, "stopped", IMAGE1, "[\"sleep\", \"300\"]"),
			 NULL));
	assert_true(state_is(ctr, "exited"));
	id_of(ctr, id2);
	assert_string_equal(id, id2);
	json_t *e = report_entry(t, ctr, NULL);
	assert_string_equal(str(e, "state"), "exited");
	assert_int_equal(json_integer_value(json_object_get(e, "restarts")), 0);
	json_decref(e);

	/* Stopped stays stopped: the safety net does not restart it. */
	sleep_ms(200);
	apply(t, list_of(asg(ctr, t->tenant[0], 0, 1, "stopped", IMAGE1, "[\"sleep\", \"300\"]"),
			 NULL));
	assert_true(state_is(ctr, "exited"));

	/* Running again: the same container starts. */
	apply(t, list_of(sleeper(ctr, t->tenant[0], 0), NULL));
	assert_true(state_is(ctr, "running"));
	id_of(ctr, id2);
	assert_string_equal(id, id2);

	apply(t, json_array());
	json_t *c = one(ctr);
	assert_null(c);
	snprintf(net, sizeof(net), "odx-%s", t->tenant[0]);
	assert_int_equal(docker_network_inspect(D, net, &j), ODX_ENOTFOUND);
	e = report_entry(t, ctr, NULL);
	assert_null(e);
}

/* A new revision (new ctr id, image :2) replaces the old; so does a new revision of one ctr id. */
static void test_new_revision(void **state)
{
	struct t *t = *state;
	char a[37], b[37], id[65], id2[65];

	new_ctr(a);
	new_ctr(b);
	apply(t, list_of(sleeper(a, t->tenant[0], 0), NULL));
	apply(t,
	      list_of(asg(b, t->tenant[0], 0, 2, "running", IMAGE2, "[\"sleep\", \"300\"]"), NULL));
	json_t *c = one(a);
	assert_null(c);
	c = one(b);
	assert_non_null(c);
	assert_string_equal(str(c, "State"), "running");
	assert_string_equal(str(c, "Image"), IMAGE2);
	assert_string_equal(lab(c, "odysseus.revision"), "2");
	snprintf(id, sizeof(id), "%s", str(c, "Id"));
	json_decref(c);

	apply(t,
	      list_of(asg(b, t->tenant[0], 0, 3, "running", IMAGE1, "[\"sleep\", \"300\"]"), NULL));
	c = one(b);
	assert_non_null(c);
	snprintf(id2, sizeof(id2), "%s", str(c, "Id"));
	assert_string_not_equal(id, id2);
	assert_string_equal(str(c, "Image"), IMAGE1);
	assert_string_equal(lab(c, "odysseus.revision"), "3");
	json_decref(c);
}

/* Two tenants: two networks, each container on its own only. */
static void test_two_tenants(void **state)
{
	struct t *t = *state;
	char a[37], b[37], ida[65], idb[65], net[2][64];
	json_t *n[2] = {NULL, NULL};

	new_ctr(a);
	new_ctr(b);
	apply(t, list_of(sleeper(a, t->tenant[0], 0), sleeper(b, t->tenant[1], 0), NULL));
	id_of(a, ida);
	id_of(b, idb);
	check_hardened(ida, t->tenant[0]);
	check_hardened(idb, t->tenant[1]);
	for (int i = 0; i < 2; i++) {
		snprintf(net[i], sizeof(net[i]), "odx-%s", t->tenant[i]);
		assert_int_equal(docker_network_inspect(D, net[i], &n[i]), 0);
	}
	assert_string_not_equal(str(n[0], "Id"), str(n[1], "Id"));
	json_decref(n[0]);
	json_decref(n[1]);

	/* One tenant leaves: its network goes, the other's stays. */
	apply(t, list_of(sleeper(b, t->tenant[1], 0), NULL));
	assert_int_equal(docker_network_inspect(D, net[0], &n[0]), ODX_ENOTFOUND);
	assert_int_equal(docker_network_inspect(D, net[1], &n[1]), 0);
	json_decref(n[1]);
}

/* A refused assignment and an image that cannot be pulled are reported; the rest runs. */
static void test_refused_and_missing(void **state)
{
	struct t *t = *state;
	char good[37], bad[37], noimg[37];

	new_ctr(good);
	new_ctr(bad);
	new_ctr(noimg);
	json_t *b = sleeper(bad, t->tenant[0], 1);
	json_object_set_new(json_object_get(b, "resources"), "cpu_millicores", json_integer(5));
	apply(t, list_of(sleeper(good, t->tenant[0], 0), b,
			 asg(noimg, t->tenant[0], 2, 1, "running", NOIMAGE, NULL),
			 json_pack("{s:s}", "container", "nonsense"), NULL));
	assert_true(state_is(good, "running"));
	json_t *c = one(bad);
	assert_null(c);
	c = one(noimg);
	assert_null(c);

	json_t *e = report_entry(t, bad, NULL);
	assert_non_null(e);
	assert_string_equal(str(e, "state"), "missing");
	assert_non_null(strstr(str(e, "error"), "resources"));
	json_decref(e);
	e = report_entry(t, noimg, NULL);
	assert_non_null(e);
	assert_string_equal(str(e, "state"), "missing");
	assert_string_equal(str(e, "image"), NOIMAGE);
	assert_non_null(strstr(str(e, "error"), "pull"));
	json_decref(e);
	e = report_entry(t, good, NULL);
	assert_string_equal(str(e, "state"), "running");
	assert_null(json_object_get(e, "error"));
	json_decref(e);
}

/*
 * A container of this node that nobody assigned is removed; one without
 * labels, or another node's (an agent sharing the Engine), is not.
 */
static void test_strays_only_ours(void **state)
{
	struct t *t = *state;
	char ctr[37], other[37], name[2][64], id[2][65];
	json_t *spec[2];

	new_ctr(ctr);
	new_ctr(other);
	spec[0] = json_pack("{s:s, s:[s, s], s:{s:s}}", "Image", IMAGE1, "Cmd", "sleep", "300",
			    "Labels", "odysseus.tenant", t->tenant[0]);
	spec[1] =
	    json_pack("{s:s, s:[s, s], s:{s:s, s:s, s:s, s:s}}", "Image", IMAGE1, "Cmd", "sleep",
		      "300", "Labels", "odysseus.tenant", t->tenant[0], "odysseus.container", other,
		      "odysseus.revision", "1", "odysseus.node", "nod_someone_else");
	for (int i = 0; i < 2; i++) {
		snprintf(name[i], sizeof(name[i]), "odx-foreign%d-%s", i, t->tenant[0]);
		assert_int_equal(docker_container_create(D, name[i], spec[i], id[i]), 0);
		json_decref(spec[i]);
	}
	apply(t, list_of(sleeper(ctr, t->tenant[0], 0), NULL));
	apply(t, json_array());
	json_t *c = one(ctr);
	assert_null(c);
	for (int i = 0; i < 2; i++)
		json_decref(inspect(id[i])); /* still there */
	json_t *e = report_entry(t, other, NULL);
	assert_null(e);
}

/* ---- secrets (docs/agent.md "Secrets") ------------------------------------------- */

#define SECRET	      "db-password"
#define SECRET_BIN    "tls-key"
#define SECRETS_FULL  16
#define VALUE_MAX     (64 * 1024)
#define CAPTURE_LEVEL LOG_DEBUG

static enum log_level LOG_LVL = LOG_ERROR; /* what main set */

/* The control plane, faked: one bundle for every container, or a 404 for one. */
struct fake {
	pthread_mutex_t mu;
	json_t *bundle;
	char fail_ctr[37];
	int calls;
};

struct st {
	struct t t; /* first: setup and teardown of the engine group take it */
	char dir[64], secrets[96];
	struct fake fake;
	struct reconcile_secrets sec;
	char value[64];	      /* printable, cat by the container */
	uint8_t bin[256 + 3]; /* every byte value, for the host-side check */
	/* stderr captured while the reconciler logs at debug */
	int saved_fd;
	char log_path[64];
};

static int fake_fetch(void *arg, const char *ctr, json_t **bundle,
		      char err[static RECONCILE_ERR_LEN])
{
	struct fake *f = arg;
	int rc = 0;

	pthread_mutex_lock(&f->mu);
	f->calls++;
	if (strcmp(ctr, f->fail_ctr) == 0) {
		snprintf(err, RECONCILE_ERR_LEN, "404 the container is not placed on this node");
		rc = ODX_ENOTFOUND;
	} else if ((*bundle = json_deep_copy(f->bundle)) == NULL) {
		rc = ODX_ENOMEM;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fake_calls(struct st *s)
{
	pthread_mutex_lock(&s->fake.mu);
	int n = s->fake.calls;
	pthread_mutex_unlock(&s->fake.mu);
	return n;
}

static json_t *bundle_item(const char *name, int version, const uint8_t *v, size_t n)
{
	char *b64 = malloc(b64url_encoded_len(n) + 1);
	assert_non_null(b64);
	b64url_encode(v, n, b64);
	json_t *it =
	    json_pack("{s:s, s:i, s:s}", "name", name, "version", version, "value_b64", b64);
	free(b64);
	assert_non_null(it);
	return it;
}

/* The fake's answer from now on (consumed). */
static void fake_answer(struct st *s, json_t *items)
{
	pthread_mutex_lock(&s->fake.mu);
	json_decref(s->fake.bundle);
	s->fake.bundle = json_pack("{s:o}", "secrets", items);
	pthread_mutex_unlock(&s->fake.mu);
}

/* The usual answer: SECRET (printable) version 3 and SECRET_BIN (all bytes) version 1. */
static void fake_default(struct st *s)
{
	fake_answer(s,
		    json_pack("[o, o]",
			      bundle_item(SECRET, 3, (const uint8_t *)s->value, strlen(s->value)),
			      bundle_item(SECRET_BIN, 1, s->bin, sizeof(s->bin))));
}

static int setup_secrets(void **state)
{
	struct st *s = calloc(1, sizeof(*s));
	if (s == NULL || tmpdir_make(s->dir, sizeof(s->dir), "reconcile") < 0)
		return -1;
	snprintf(s->secrets, sizeof(s->secrets), "%s/secrets", s->dir);
	memcpy(s->value, "odx-secret-", 11);
	rand_hex(s->value + 11, 16);
	for (size_t i = 0; i < sizeof(s->bin); i++)
		s->bin[i] = (uint8_t)i;
	pthread_mutex_init(&s->fake.mu, NULL);
	fake_default(s);
	s->sec =
	    (struct reconcile_secrets){.dir = s->secrets, .fetch = fake_fetch, .arg = &s->fake};
	s->saved_fd = -1;
	for (int i = 0; i < TENANTS; i++) {
		memcpy(s->t.tenant[i], T_PREFIX, strlen(T_PREFIX));
		rand_hex(s->t.tenant[i] + strlen(T_PREFIX), 8);
	}
	memcpy(s->t.node, "nod_test", 8);
	rand_hex(s->t.node + 8, 8);
	if (reconcile_new(NULL, s->t.node, 0, &s->sec, &s->t.r) != 0)
		return -1;
	*state = s;
	return 0;
}

static bool keep_none(const char *ctr, void *arg)
{
	(void)ctr;
	(void)arg;
	return false;
}

/* Stops capturing stderr: the captured text (caller frees) or NULL when none was. */
static char *capture_end(struct st *s)
{
	if (s->saved_fd < 0)
		return NULL;
	dup2(s->saved_fd, STDERR_FILENO);
	close(s->saved_fd);
	s->saved_fd = -1;
	log_set_level(LOG_LVL);
	FILE *f = fopen(s->log_path, "r");
	char *text = calloc(1, 4 << 20);
	size_t n = f && text ? fread(text, 1, (4 << 20) - 1, f) : 0;
	(void)n;
	if (f != NULL)
		fclose(f);
	unlink(s->log_path);
	return text;
}

static int teardown_secrets(void **state)
{
	struct st *s = *state;
	size_t n;
	char *log = capture_end(s); /* a failed test: show what was logged */
	if (log != NULL)
		fprintf(stderr, "captured log:\n%s\n", log);
	free(log);
	reconcile_free(s->t.r);
	for (int i = 0; i < TENANTS; i++)
		remove_tenant(s->t.tenant[i]);
	secretfs_sweep(s->secrets, keep_none, NULL, &n);
	tmpdir_remove(s->dir);
	json_decref(s->fake.bundle);
	pthread_mutex_destroy(&s->fake.mu);
	free(s);
	return 0;
}

/* From now on the reconciler's log lines, at debug, go to a file. */
static void capture_start(struct st *s)
{
	snprintf(s->log_path, sizeof(s->log_path), "/tmp/odx-test-reconcile-log-XXXXXX");
	int fd = mkstemp(s->log_path);
	assert_true(fd >= 0);
	s->saved_fd = dup(STDERR_FILENO);
	assert_true(s->saved_fd >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	log_set_level(CAPTURE_LEVEL);
}

static json_t *with_secrets(json_t *a, const char *user, json_t *names)
{
	json_object_set_new(a, "secrets", names);
	if (user != NULL)
		json_object_set_new(a, "user", json_string(user));
	return a;
}

/* The container's logs once they hold needle (fails after WAIT_MS). Caller frees. */
static char *logs_with(const char *id, const char *needle)
{
	char *logs = NULL;
	size_t len = 0;
	for (int64_t t0 = now_ms(); now_ms() - t0 < WAIT_MS; sleep_ms(100)) {
		free(logs);
		logs = NULL;
		assert_int_equal(docker_container_logs(D, id, 100, 65536, &logs, &len), 0);
		if (strstr(logs, needle) != NULL)
			return logs;
	}
	fail_msg("no %s in the logs: %s", needle, logs);
	return NULL;
}

/*
 * The topmost mount at dir in /proc/self/mountinfo: its mount id, per-mount
 * options, file system type and super options. false when nothing is mounted.
 */
struct mnt {
	long id;
	char opts[256], fstype[32], super[256];
};

static bool mount_at(const char *dir, struct mnt *out)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096], point[1024];
	bool found = false;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		struct mnt m;
		char *dash = strstr(line, " - ");
		if (dash == NULL ||
		    sscanf(line, "%ld %*d %*s %*s %1023s %255s", &m.id, point, m.opts) != 3 ||
		    sscanf(dash + 3, "%31s %*s %255s", m.fstype, m.super) != 2)
			continue;
		if (strcmp(point, dir) == 0) {
			*out = m;
			found = true; /* keep reading: the last one is on top */
		}
	}
	fclose(f);
	return found;
}

static bool kernel_has_noswap(void)
{
	struct utsname u;
	int major = 0, minor = 0;
	assert_int_equal(uname(&u), 0);
	sscanf(u.release, "%d.%d", &major, &minor);
	return major > 6 || (major == 6 && minor >= 4);
}

static void ctr_dir(const struct st *s, const char *ctr, char out[static 160])
{
	snprintf(out, 160, "%s/%s", s->secrets, ctr);
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* The file's whole content (caller frees) and its stat. */
static uint8_t *slurp(const char *path, size_t *len, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, st), 0);
	uint8_t *buf = malloc((size_t)st->st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st->st_size + 1), st->st_size);
	close(fd);
	*len = (size_t)st->st_size;
	return buf;
}

/* Whether any file under dir (links not followed) holds needle. */
static const uint8_t *G_NEEDLE;
static size_t G_NEEDLE_LEN;
static bool G_FOUND;

static int grep_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag != FTW_F || !S_ISREG(sb->st_mode))
		return 0;
	size_t n;
	struct stat st;
	uint8_t *b = slurp(path, &n, &st);
	if (memmem(b, n, G_NEEDLE, G_NEEDLE_LEN) != NULL) {
		fprintf(stderr, "found in %s\n", path);
		G_FOUND = true;
	}
	free(b);
	return 0;
}

static bool tree_has(const char *dir, const void *needle, size_t len)
{
	G_NEEDLE = needle;
	G_NEEDLE_LEN = len;
	G_FOUND = false;
	assert_int_equal(nftw(dir, grep_entry, 16, FTW_PHYS), 0);
	return G_FOUND;
}

/* The host side of a delivered container: a sealed tmpfs with exactly the files. */
static void check_host_tmpfs(struct st *s, const char *dir)
{
	struct mnt m;
	struct stat st;
	size_t n;

	if (!mount_at(dir, &m))
		fail_msg("nothing mounted at %s", dir);
	assert_string_equal(m.fstype, "tmpfs");
	/* Per mount: read-only once sealed, and nosuid, nodev, noexec. */
	assert_true(strncmp(m.opts, "ro,", 3) == 0);
	assert_non_null(strstr(m.opts, "nosuid"));
	assert_non_null(strstr(m.opts, "nodev"));
	assert_non_null(strstr(m.opts, "noexec"));
	assert_non_null(strstr(m.super, "size=1024k"));
	assert_non_null(strstr(m.super, "nr_inodes=64"));
	if (kernel_has_noswap())
		assert_non_null(strstr(m.super, "noswap"));
	/* The root: 0550 root:<the container's gid>. */
	assert_int_equal(lstat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0550);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_gid, 1000);
	/* The files: 0400 uid:gid, exactly the values. */
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, SECRET);
	uint8_t *b = slurp(path, &n, &st);
	assert_int_equal(st.st_mode & 07777, 0400);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1000);
	assert_int_equal(n, strlen(s->value));
	assert_memory_equal(b, s->value, n);
	free(b);
	snprintf(path, sizeof(path), "%s/%s", dir, SECRET_BIN);
	b = slurp(path, &n, &st);
	assert_int_equal(st.st_mode & 07777, 0400);
	assert_int_equal(n, sizeof(s->bin));
	assert_memory_equal(b, s->bin, n);
	free(b);
}

/* What the Engine holds: the one bind mount, read-only, and the value nowhere. */
static void check_inspect(struct st *s, const char *id, const char *dir)
{
	json_t *j = inspect(id), *h = json_object_get(j, "HostConfig");
	char *dump = json_dumps(j, 0);

	assert_non_null(dump);
	assert_null(strstr(dump, s->value)); /* not in Env, Labels, Cmd, anything */
	free(dump);
	assert_int_equal(json_array_size(json_object_get(h, "Binds")), 0);
	json_t *want = json_pack("[{s:s, s:s, s:s, s:b}]", "Type", "bind", "Source", dir, "Target",
				 "/run/secrets", "ReadOnly", 1);
	assert_true(json_equal(json_object_get(h, "Mounts"), want));
	json_decref(want);
	json_t *mounts = json_object_get(j, "Mounts");
	assert_int_equal(json_array_size(mounts), 1);
	json_t *m = json_array_get(mounts, 0);
	assert_string_equal(str(m, "Source"), dir);
	assert_string_equal(str(m, "Destination"), "/run/secrets");
	assert_true(json_is_false(json_object_get(m, "RW")));
	json_decref(j);
}

#define READER_CMD                                                                                 \
	"[\"sh\", \"-c\", \"echo BEGIN$(cat /run/secrets/" SECRET ")END; "                         \
	"ls -ln /run/secrets; "                                                                    \
	"(echo x > /run/secrets/" SECRET ") 2>/dev/null && echo FILE_WRITABLE || "                 \
	"echo FILE_READONLY; "                                                                     \
	"touch /run/secrets/new 2>/dev/null && echo DIR_WRITABLE || echo DIR_READONLY; "           \
	"echo DONE; sleep 300\"]"

#define PLAIN_CMD                                                                                  \
	"[\"sh\", \"-c\", \"test -e /run/secrets && echo HAS_SECRETS || echo NO_SECRETS; "         \
	"sleep 300\"]"

/*
 * The whole story with the log captured: delivered, readable by the
 * container's user only as itself, not writable, a tmpfs on the host, no
 * value in the Engine's records; a container without secrets has none;
 * removal unmounts; the value is in no log line and nowhere on disk.
 */
static void test_secret_delivered(void **state)
{
	struct st *s = *state;
	struct t *t = &s->t;
	char ctr[37], plain[37], id[65], pid[65], dir[160], expect[96];
	struct mnt m;

	new_ctr(ctr);
	new_ctr(plain);
	ctr_dir(s, ctr, dir);
	capture_start(s);
	apply(t, list_of(with_secrets(asg(ctr, t->tenant[0], 0, 1, "running", IMAGE1, READER_CMD),
				      "1000:1000", json_pack("[s, s]", SECRET, SECRET_BIN)),
			 asg(plain, t->tenant[0], 1, 1, "running", IMAGE1, PLAIN_CMD), NULL));
	assert_int_equal(fake_calls(s), 1); /* only the container with secrets asked */
	id_of(ctr, id);
	id_of(plain, pid);

	/* Inside: exactly the value, its mode, and neither file nor directory writable. */
	char *logs = logs_with(id, "DONE");
	snprintf(expect, sizeof(expect), "BEGIN%sEND", s->value);
	if (strstr(logs, expect) == NULL)
		fail_msg("logs: %s", logs);
	assert_non_null(strstr(logs, "-r--------"));
	assert_non_null(strstr(logs, "FILE_READONLY"));
	assert_non_null(strstr(logs, "DIR_READONLY"));
	assert_null(strstr(logs, "WRITABLE"));
	free(logs);
	logs = logs_with(pid, "_SECRETS");
	assert_non_null(strstr(logs, "NO_SECRETS"));
	free(logs);

	check_host_tmpfs(s, dir);
	check_inspect(s, id, dir);
	json_t *j = inspect(pid);
	assert_int_equal(json_array_size(json_object_get(j, "Mounts")), 0);
	assert_null(json_object_get(json_object_get(j, "HostConfig"), "Mounts"));
	json_decref(j);
	json_t *e = report_entry(t, ctr, NULL);
	assert_string_equal(str(e, "state"), "running");
	assert_null(json_object_get(e, "error"));
	json_decref(e);

	/* Removed: the host's tmpfs is unmounted and its directory gone. */
	apply(t, json_array());
	json_t *c = one(ctr);
	assert_null(c);
	assert_false(mount_at(dir, &m));
	assert_false(exists(dir));

	char *log = capture_end(s);
	assert_non_null(log);
	assert_non_null(strstr(log, "secrets delivered")); /* the capture did work */
	assert_null(strstr(log, s->value));
	char b64[sizeof(s->value) * 2];
	b64url_encode((const uint8_t *)s->value, strlen(s->value), b64);
	assert_null(strstr(log, b64));
	free(log);
	/* Nothing under the state directory holds either value now. */
	assert_false(tree_has(s->dir, s->value, strlen(s->value)));
	assert_false(tree_has(s->dir, s->bin, sizeof(s->bin)));
}

/*
 * A crash: the replacement gets a new tmpfs (the old one, held open here,
 * is another file system) and a fresh fetch (a rotated value shows it).
 */
static void test_secret_recreated(void **state)
{
	struct st *s = *state;
	struct t *t = &s->t;
	char ctr[37], id[65], id2[65] = "", dir[160];
	struct stat before, after;
	struct mnt m;

	new_ctr(ctr);
	ctr_dir(s, ctr, dir);
	apply(t, list_of(with_secrets(sleeper(ctr, t->tenant[0], 0), "1000:1000",
				      json_pack("[s, s]", SECRET, SECRET_BIN)),
			 NULL));
	assert_int_equal(fake_calls(s), 1);
	check_host_tmpfs(s, dir);
	int old = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(old >= 0);
	assert_int_equal(fstat(old, &before), 0);
	rand_hex(s->value + 11, 16); /* rotated meanwhile */
	fake_default(s);
	id_of(ctr, id);
	assert_int_equal(docker_container_kill(D, id, "KILL"), 0);
	for (int64_t t0 = now_ms(); !id2[0]; sleep_ms(50)) {
		json_t *c = one(ctr);
		if (c != NULL && strcmp(str(c, "Id"), id) != 0 &&
		    strcmp(str(c, "State"), "running") == 0)
			snprintf(id2, sizeof(id2), "%s", str(c, "Id"));
		json_decref(c);
		assert_true(now_ms() - t0 < WAIT_MS);
	}
	assert_int_equal(fake_calls(s), 2);
	assert_true(mount_at(dir, &m));
	assert_int_equal(stat(dir, &after), 0);
	assert_true(after.st_dev != before.st_dev);
	close(old);
	check_host_tmpfs(s, dir); /* the new value */
	check_inspect(s, id2, dir);
}

/* Stopped on purpose: its tmpfs goes; running again, a new container gets a new one. */
static void test_secret_stopped(void **state)
{
	struct st *s = *state;
	struct t *t = &s->t;
	char ctr[37], id[65], id2[65], dir[160];
	struct mnt m;

	new_ctr(ctr);
	ctr_dir(s, ctr, dir);
	json_t *names = json_pack("[s, s]", SECRET, SECRET_BIN);
	apply(t, list_of(with_secrets(sleeper(ctr, t->tenant[0], 0), "1000:1000",
				      json_deep_copy(names)),
			 NULL));
	id_of(ctr, id);
	assert_true(mount_at(dir, &m));
	apply(t, list_of(with_secrets(asg(ctr, t->tenant[0], 0, 1, "stopped", IMAGE1,
					  "[\"sleep\", \"300\"]"),
				      "1000:1000", json_deep_copy(names)),
			 NULL));
	assert_true(state_is(ctr, "exited"));
	assert_false(mount_at(dir, &m));
	assert_false(exists(dir));
	apply(t, list_of(with_secrets(sleeper(ctr, t->tenant[0], 0), "1000:1000", names), NULL));
	assert_true(state_is(ctr, "running"));
	id_of(ctr, id2);
	assert_string_not_equal(id, id2);
	assert_int_equal(fake_calls(s), 2);
	check_host_tmpfs(s, dir);
	check_inspect(s, id2, dir);
}

/*
 * A failing fetch (404), or a bundle that is not exactly the assigned
 * secrets: reported missing with the error, not created, nothing mounted.
 */
static void test_secret_fetch_fails(void **state)
{
	struct st *s = *state;
	struct t *t = &s->t;
	char ctr[37], other[37], dir[160];

	new_ctr(ctr);
	new_ctr(other);
	pthread_mutex_lock(&s->fake.mu);
	memcpy(s->fake.fail_ctr, ctr, sizeof(ctr));
	pthread_mutex_unlock(&s->fake.mu);
	apply(t, list_of(with_secrets(sleeper(ctr, t->tenant[0], 0), NULL,
				      json_pack("[s, s]", SECRET, SECRET_BIN)),
			 with_secrets(sleeper(other, t->tenant[0], 1), NULL,
				      json_pack("[s, s, s]", SECRET, SECRET_BIN, "not-granted")),
			 NULL));
	json_t *c = one(ctr);
	assert_null(c);
	c = one(other);
	assert_null(c);
	json_t *e = report_entry(t, ctr, NULL);
	assert_string_equal(str(e, "state"), "missing");
	assert_non_null(strstr(str(e, "error"), "cannot fetch the secrets"));
	assert_non_null(strstr(str(e, "error"), "404"));
	json_decref(e);
	e = report_entry(t, other, NULL);
	assert_string_equal(str(e, "state"), "missing");
	assert_non_null(strstr(str(e, "error"), "exactly the assignment's secrets"));
	json_decref(e);
	ctr_dir(s, ctr, dir);
	assert_false(exists(dir));
	ctr_dir(s, other, dir);
	assert_false(exists(dir));

	/* Retried with backoff, then delivered once the control plane answers. */
	pthread_mutex_lock(&s->fake.mu);
	s->fake.fail_ctr[0] = '\0';
	pthread_mutex_unlock(&s->fake.mu);
	for (int64_t t0 = now_ms(); !state_is(ctr, "running"); sleep_ms(100))
		assert_true(now_ms() - t0 < WAIT_MS);
	c = one(other);
	assert_null(c);
}

/* Raises or lowers CAP_SYS_ADMIN in this thread's effective set (threads it starts inherit it). */
static void sys_admin(bool on)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];
	assert_int_equal(syscall(SYS_capget, &h, d), 0);
	if (on)
		d[0].effective |= 1u << CAP_SYS_ADMIN;
	else
		d[0].effective &= ~(1u << CAP_SYS_ADMIN);
	assert_int_equal(syscall(SYS_capset, &h, d), 0);
}

/* No right to mount (EPERM): missing with the error, never fetched, never a disk directory. */
static void test_secret_no_mount(void **state)
{
	struct st *s = *state;
	struct t *t = &s->t;
	char ctr[37], dir[160];

	reconcile_free(t->r);
	t->r = NULL;
	sys_admin(false);
	int rc = reconcile_new(NULL, t->node, 0, &s->sec, &t->r);
	sys_admin(true);
	assert_int_equal(rc, 0);
	new_ctr(ctr);
	apply(t,
	      list_of(with_secrets(sleeper(ctr, t->tenant[0], 0), NULL, json_pack("[s]", SECRET)),
		      NULL));
	json_t *c = one(ctr);
	assert_null(c);
	json_t *e = report_entry(t, ctr, NULL);
	assert_string_equal(str(e, "state"), "missing");
	assert_non_null(strstr(str(e, "error"), "cannot mount a tmpfs for secrets"));
	json_decref(e);
	assert_int_equal(fake_calls(s), 0);
	ctr_dir(s, ctr, dir);
	assert_false(exists(dir));
}

/* 16 values of 64 KiB: the tmpfs holds them all. */
static void test_secret_full(void **state)
{
	struct st *s = *state;
	struct t *t = &s->t;
	char ctr[37], dir[160], name[8], path[256];
	json_t *items = json_array(), *names = json_array();
	uint8_t *v = malloc(VALUE_MAX);
	struct stat st;
	size_t n;

	assert_non_null(v);
	for (int i = 0; i < SECRETS_FULL; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		memset(v, 'a' + i, VALUE_MAX);
		json_array_append_new(items, bundle_item(name, 1, v, VALUE_MAX));
		json_array_append_new(names, json_string(name));
	}
	fake_answer(s, items);
	new_ctr(ctr);
	apply(t, list_of(with_secrets(sleeper(ctr, t->tenant[0], 0), NULL, names), NULL));
	assert_true(state_is(ctr, "running"));
	ctr_dir(s, ctr, dir);
	for (int i = 0; i < SECRETS_FULL; i++) {
		snprintf(path, sizeof(path), "%s/s%d", dir, i);
		uint8_t *b = slurp(path, &n, &st);
		memset(v, 'a' + i, VALUE_MAX);
		assert_int_equal(n, VALUE_MAX);
		assert_memory_equal(b, v, VALUE_MAX);
		assert_int_equal(st.st_uid, 65534);
		free(b);
	}
	free(v);
}

/*
 * A new agent (after a crash) removes the tmpfs of containers that are
 * gone before any assignment arrives, and leaves what is not a ctr id.
 */
static void test_secret_sweep_at_start(void **state)
{
	struct st *s = *state;
	struct t *t = &s->t;
	char gone[37], dir[160], other[160];
	struct secretfs_mount m = {.fd = -1};
	bool swappable;
	struct mnt mi;

	reconcile_free(t->r);
	t->r = NULL;
	new_ctr(gone);
	ctr_dir(s, gone, dir);
	assert_int_equal(secretfs_mount(s->secrets, gone, &m, &swappable), 0);
	assert_int_equal(
	    secretfs_write(&m, SECRET, (const uint8_t *)s->value, strlen(s->value), 1000, 1000), 0);
	assert_int_equal(secretfs_seal(&m, 1000), 0);
	assert_true(mount_at(dir, &mi));
	snprintf(other, sizeof(other), "%s/not-a-container", s->secrets);
	assert_int_equal(mkdir(other, 0700), 0);

	assert_int_equal(reconcile_new(NULL, t->node, 0, &s->sec, &t->r), 0);
	for (int64_t t0 = now_ms(); exists(dir); sleep_ms(50))
		assert_true(now_ms() - t0 < WAIT_MS);
	assert_false(mount_at(dir, &mi));
	assert_true(exists(other));
	rmdir(other);
}

int main(void)
{
	const struct CMUnitTest spec[] = {
	    cmocka_unit_test(test_spec_hardening), cmocka_unit_test(test_spec_user),
	    cmocka_unit_test(test_spec_tmpfs),	   cmocka_unit_test(test_spec_refused),
	    cmocka_unit_test(test_spec_secrets),   cmocka_unit_test(test_unreachable),
	};
	const struct CMUnitTest engine[] = {
	    cmocka_unit_test_setup_teardown(test_apply_adopt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inside, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kill_replaced, setup_slow, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_remove, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_new_revision, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_tenants, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_and_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_strays_only_ours, setup, teardown),
	};
	const struct CMUnitTest secrets[] = {
	    cmocka_unit_test_setup_teardown(test_secret_delivered, setup_secrets, teardown_secrets),
	    cmocka_unit_test_setup_teardown(test_secret_recreated, setup_secrets, teardown_secrets),
	    cmocka_unit_test_setup_teardown(test_secret_stopped, setup_secrets, teardown_secrets),
	    cmocka_unit_test_setup_teardown(test_secret_fetch_fails, setup_secrets,
					    teardown_secrets),
	    cmocka_unit_test_setup_teardown(test_secret_no_mount, setup_secrets, teardown_secrets),
	    cmocka_unit_test_setup_teardown(test_secret_full, setup_secrets, teardown_secrets),
	    cmocka_unit_test_setup_teardown(test_secret_sweep_at_start, setup_secrets,
					    teardown_secrets),
	};

	if (client_global_init() != 0)
		return 1;
	/* ODX_TEST_LOG=info shows what the reconciler does. */
	enum log_level lvl = LOG_ERROR;
	if (getenv("ODX_TEST_LOG") != NULL)
		log_level_parse(getenv("ODX_TEST_LOG"), &lvl);
	log_set_level(lvl);
	LOG_LVL = lvl;
	if (getenv("ODX_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("ODX_TEST_FILTER"));
	int failed = cmocka_run_group_tests_name("spec", spec, NULL, NULL);
	failed += cmocka_run_group_tests_name("engine", engine, engine_group_setup,
					      engine_group_teardown);
	failed += cmocka_run_group_tests_name("secrets", secrets, engine_group_setup,
					      engine_group_teardown);
	client_global_done();
	return failed;
}
