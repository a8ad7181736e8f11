/*
 * test-docker.c — the Docker Engine client (src/docker) against the real
 * engine on /var/run/docker.sock, and against a small fake engine (a unix
 * socket served by a thread) for the answers a real one never sends:
 * garbage, lying frame lengths, oversized objects, a failing pull stream.
 *
 * The real engine is not optional: scripts/test starts it (scripts/docker-up)
 * and builds the test images without a registry (tests/images/build.sh);
 * when it cannot be reached the tests fail and say so.
 *
 * Everything made on the real engine carries the label
 * odysseus.test=<random> and a name "odx-test-<random>-<n>"; each test's
 * teardown removes what carries them, so a failing test leaves nothing.
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "agent/client.h"
#include "core/err.h"
#include "docker/docker.h"

#define IMAGE1	   "odysseus-test/busybox:1"
#define LABEL_KEY  "odysseus.test"
#define NETS_MAX   8
#define WAIT_MS	   15000
#define STOP_LIMIT 1500 /* ms from *stop = true to docker_events returning */

static char run_id[17];		/* random, per run */
static char label_kv[64];	/* odysseus.test=<run_id> */
static char prefix[64];		/* odx-test-<run_id> */
static unsigned seq;		/* names made so far */
static char nets[NETS_MAX][96]; /* networks made by the current test */
static struct docker *D;	/* the real engine */

/* ---- helpers ----------------------------------------------------- */

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void new_name(char out[96])
{
	snprintf(out, 96, "%s-%u", prefix, ++seq);
}

/* A container spec on IMAGE1 running sh -c script, with the test's label. */
static json_t *spec_sh(const char *script)
{
	json_t *s = json_pack("{s:s, s:[s,s,s], s:{s:s}, s:{}}", "Image", IMAGE1, "Cmd", "sh", "-c",
			      script, "Labels", LABEL_KEY, run_id, "HostConfig");
	assert_non_null(s);
	return s;
}

static void create(const json_t *spec, char id[65])
{
	char name[96];

	new_name(name);
	int rc = docker_container_create(D, name, spec, id);
	if (rc != 0)
		fail_msg("create: %s: %s", odx_strerror(rc), docker_last_error(D));
}

static void create_started(const char *script, char id[65])
{
	json_t *s = spec_sh(script);
	create(s, id);
	json_decref(s);
	int rc = docker_container_start(D, id);
	if (rc != 0)
		fail_msg("start: %s: %s", odx_strerror(rc), docker_last_error(D));
}

/* Waits for the container to stop; returns its exit code. */
static int wait_exit(const char *id)
{
	long end = now_ms() + WAIT_MS;

	for (;;) {
		json_t *j = NULL;
		assert_int_equal(docker_container_inspect(D, id, &j), 0);
		json_t *st = json_object_get(j, "State");
		bool running = json_is_true(json_object_get(st, "Running"));
		int code = (int)json_integer_value(json_object_get(st, "ExitCode"));
		json_decref(j);
		if (!running)
			return code;
		if (now_ms() > end)
			fail_msg("container %.12s still runs after %d ms", id, WAIT_MS);
		sleep_ms(50);
	}
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t k = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (k == n && memcmp(p, line, n) == 0)
			return true;
		p = nl != NULL ? nl + 1 : NULL;
	}
	return false;
}

/* Removes every container with the run's label and the networks the test made. */
static int cleanup(void **state)
{
	json_t *list = NULL;
	size_t i;
	json_t *c;

	(void)state;
	if (D == NULL)
		return 0; /* the group setup failed */
	if (docker_container_list(D, label_kv, &list) == 0) {
		json_array_foreach(list, i, c)
		{
			const char *id = json_string_value(json_object_get(c, "Id"));
			if (id != NULL)
				docker_container_remove(D, id);
		}
		json_decref(list);
	}
	for (i = 0; i < NETS_MAX; i++) {
		if (nets[i][0] != '\0')
			docker_network_remove(D, nets[i]);
		nets[i][0] = '\0';
	}
	return 0;
}

static int group_setup(void **state)
{
	uint8_t r[8];
	json_t *img = NULL;
	int rc;

	(void)state;
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -1;
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(run_id + 2 * i, 3, "%02x", r[i]);
	snprintf(label_kv, sizeof(label_kv), "%s=%s", LABEL_KEY, run_id);
	snprintf(prefix, sizeof(prefix), "odx-test-%s", run_id);
	if (docker_open(NULL, 20000, &D) != 0)
		return -1;
	if ((rc = docker_ping(D)) != 0) {
		fprintf(
		    stderr,
		    "test-docker: FAIL: no Docker Engine answers on %s (%s: %s).\n"
		    "  The tests need a real engine: run scripts/docker-up (scripts/test does).\n",
		    DOCKER_SOCKET_DEFAULT, odx_strerror(rc), docker_last_error(D));
		docker_close(D);
		D = NULL;
		return -1;
	}
	if ((rc = docker_image_inspect(D, IMAGE1, &img)) != 0) {
		fprintf(stderr, "test-docker: FAIL: no image %s (%s): run tests/images/build.sh\n",
			IMAGE1, odx_strerror(rc));
		docker_close(D);
		D = NULL;
		return -1;
	}
	json_decref(img);
	return 0;
}

static int group_teardown(void **state)
{
	cleanup(state);
	docker_close(D);
	D = NULL;
	return 0;
}

/* ---- the real engine --------------------------------------------- */

static void test_ping_info(void **state)
{
	json_t *info = NULL;

	(void)state;
	assert_int_equal(docker_ping(D), 0);
	assert_string_equal(docker_last_error(D), "");
	assert_int_equal(docker_info(D, &info), 0);
	assert_non_null(json_string_value(json_object_get(info, "ServerVersion")));
	assert_true(json_is_integer(json_object_get(info, "Containers")));
	json_decref(info);
	/* The same handle again: the kept-alive connection is reused. */
	assert_int_equal(docker_ping(D), 0);
}

static void test_image_inspect(void **state)
{
	json_t *img = NULL;

	(void)state;
	assert_int_equal(docker_image_inspect(D, IMAGE1, &img), 0);
	json_t *tags = json_object_get(img, "RepoTags");
	bool found = false;
	size_t i;
	json_t *t;
	json_array_foreach(tags, i, t) found |= strcmp(json_string_value(t), IMAGE1) == 0;
	assert_true(found);
	json_decref(img);

	img = NULL;
	assert_int_equal(docker_image_inspect(D, "odysseus-test/busybox:missing", &img),
			 ODX_ENOTFOUND);
	assert_null(img);
	assert_non_null(strstr(docker_last_error(D), "No such image"));
}

static void test_image_pull_missing(void **state)
{
	(void)state;
	/* No registry listens on localhost:1: the engine answers at once. */
	long t0 = now_ms();
	int rc = docker_image_pull(D, "localhost:1/odysseus-test/missing:1");
	assert_true(rc < 0);
	assert_true(docker_last_error(D)[0] != '\0');
	assert_true(now_ms() - t0 < 10000);
	/* Refused before anything is sent. */
	assert_int_equal(docker_image_pull(D, "../../containers/x"), ODX_EINVAL);
	assert_int_equal(docker_image_pull(D, ""), ODX_EINVAL);
	/* The handle still works after a failed call. */
	assert_int_equal(docker_ping(D), 0);
}

static void test_container_lifecycle(void **state)
{
	char id[65];
	json_t *j = NULL, *list = NULL;

	(void)state;
	create_started("sleep 30", id);
	assert_int_equal(strlen(id), 64);

	assert_int_equal(docker_container_inspect(D, id, &j), 0);
	assert_true(json_is_true(json_object_get(json_object_get(j, "State"), "Running")));
	json_t *labels = json_object_get(json_object_get(j, "Config"), "Labels");
	assert_string_equal(json_string_value(json_object_get(labels, LABEL_KEY)), run_id);
	json_decref(j);

	assert_int_equal(docker_container_list(D, label_kv, &list), 0);
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "Id")), id);
	json_decref(list);

	/* A second start is a no-op (304), not an error. */
	assert_int_equal(docker_container_start(D, id), 0);
	assert_int_equal(docker_container_stop(D, id, 1), 0);
	assert_int_equal(docker_container_inspect(D, id, &j), 0);
	assert_false(json_is_true(json_object_get(json_object_get(j, "State"), "Running")));
	json_decref(j);
	assert_int_equal(docker_container_stop(D, id, 1), 0); /* 304 again */

	assert_int_equal(docker_container_remove(D, id), 0);
	assert_int_equal(docker_container_remove(D, id), ODX_ENOTFOUND);
	j = NULL;
	assert_int_equal(docker_container_inspect(D, id, &j), ODX_ENOTFOUND);
	assert_null(j);
	assert_int_equal(docker_container_list(D, label_kv, &list), 0);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
}

static void test_container_errors(void **state)
{
	char id[65], id2[65], name[96];
	json_t *s = spec_sh("true");

	(void)state;
	new_name(name);
	assert_int_equal(docker_container_create(D, name, s, id), 0);
	assert_int_equal(docker_container_create(D, name, s, id2), ODX_ECONFLICT);
	assert_non_null(strstr(docker_last_error(D), "Conflict"));

	/* An image that is not there: 404. */
	json_object_set_new(s, "Image", json_string("odysseus-test/busybox:missing"));
	new_name(name);
	assert_int_equal(docker_container_create(D, name, s, id2), ODX_ENOTFOUND);
	json_decref(s);

	/* Refused before anything is sent. */
	json_t *j = NULL;
	assert_int_equal(docker_container_inspect(D, "a/../b", &j), ODX_EINVAL);
	assert_int_equal(docker_container_create(D, "-x", NULL, id2), ODX_EINVAL);
	assert_int_equal(docker_container_kill(D, id, "KILL;x"), ODX_EINVAL);
	assert_int_equal(docker_container_stop(D, id, -1), ODX_EINVAL);
	assert_int_equal(docker_container_list(D, "", &j), ODX_EINVAL);
	assert_null(j);
	assert_int_equal(docker_container_remove(D, "no-such-container-odx"), ODX_ENOTFOUND);
}

static void test_container_kill(void **state)
{
	char id[65];

	(void)state;
	create_started("sleep 30", id);
	assert_int_equal(docker_container_kill(D, id, "NOPE"), ODX_EINVAL);
	assert_int_equal(docker_container_kill(D, id, "SIGKILL"), 0);
	assert_int_equal(wait_exit(id), 137);
	/* Not running any more: 409. */
	assert_int_equal(docker_container_kill(D, id, NULL), ODX_ECONFLICT);
}

static void test_container_logs(void **state)
{
	char id[65];
	char *out = NULL;
	size_t len = 0;

	(void)state;
	/* The pause orders the stderr line before the others in the log. */
	create_started("echo e1 >&2; sleep 0.3; echo o1; echo o2; echo o3", id);
	assert_int_equal(wait_exit(id), 0);

	assert_int_equal(docker_container_logs(D, id, -1, 4096, &out, &len), 0);
	assert_int_equal(len, strlen("e1\no1\no2\no3\n"));
	assert_string_equal(out, "e1\no1\no2\no3\n"); /* no frame header bytes left */
	free(out);

	assert_int_equal(docker_container_logs(D, id, 2, 4096, &out, &len), 0);
	assert_string_equal(out, "o2\no3\n");
	free(out);

	/* max keeps the newest bytes. */
	assert_int_equal(docker_container_logs(D, id, -1, 5, &out, &len), 0);
	assert_int_equal(len, 5);
	assert_string_equal(out, "2\no3\n");
	free(out);

	assert_int_equal(docker_container_logs(D, id, -1, 0, &out, &len), 0);
	assert_int_equal(len, 0);
	free(out);

	assert_int_equal(docker_container_logs(D, "no-such-container-odx", -1, 64, &out, &len),
			 ODX_ENOTFOUND);
}

static void test_container_logs_tty(void **state)
{
	char id[65];
	char *out = NULL;
	size_t len = 0;
	json_t *s = spec_sh("echo hi; echo there");

	(void)state;
	json_object_set_new(s, "Tty", json_true());
	create(s, id);
	json_decref(s);
	assert_int_equal(docker_container_start(D, id), 0);
	assert_int_equal(wait_exit(id), 0);
	/* A TTY's stream is raw (the terminal turns \n into \r\n). */
	assert_int_equal(docker_container_logs(D, id, -1, 4096, &out, &len), 0);
	assert_string_equal(out, "hi\r\nthere\r\n");
	free(out);
}

static void test_container_stats(void **state)
{
	char id[65];
	json_t *st = NULL;

	(void)state;
	create_started("sleep 30", id);
	long t0 = now_ms();
	assert_int_equal(docker_container_stats(D, id, &st), 0);
	assert_true(now_ms() - t0 < 5000); /* one-shot: no 1 s sampling wait */
	assert_true(json_is_object(json_object_get(st, "memory_stats")));
	assert_true(json_is_object(json_object_get(st, "cpu_stats")));
	json_decref(st);
	assert_int_equal(docker_container_stats(D, "no-such-container-odx", &st), ODX_ENOTFOUND);
}

/* The hardened spec the agent builds on; the engine must apply every part. */
static void test_container_hardened(void **state)
{
	char id[65];
	char *out = NULL;
	size_t len = 0;
	json_t *j = NULL;
	json_t *s = json_pack(
	    "{s:s, s:s, s:[s,s,s], s:{s:s}, s:{s:[s], s:[s], s:b, s:I, s:I, s:I, s:b, s:{s:s}}}",
	    "Image", IMAGE1, "User", "65534:65534", "Cmd", "sh", "-c", "id -u; touch /x || echo ro",
	    "Labels", LABEL_KEY, run_id, "HostConfig", "CapDrop", "ALL", "SecurityOpt",
	    "no-new-privileges", "ReadonlyRootfs", 1, "Memory", (json_int_t)64 << 20, "PidsLimit",
	    (json_int_t)64, "NanoCpus", (json_int_t)500000000, "Privileged", 0, "Tmpfs", "/tmp",
	    "rw,noexec,nosuid,size=16m");

	(void)state;
	assert_non_null(s);
	create(s, id);
	json_decref(s);
	assert_int_equal(docker_container_start(D, id), 0);
	assert_int_equal(wait_exit(id), 0);
	assert_int_equal(docker_container_logs(D, id, -1, 4096, &out, &len), 0);
	assert_true(has_line(out, "65534"));
	assert_true(has_line(out, "ro"));
	free(out);

	assert_int_equal(docker_container_inspect(D, id, &j), 0);
	json_t *hc = json_object_get(j, "HostConfig");
	assert_string_equal(json_string_value(json_array_get(json_object_get(hc, "CapDrop"), 0)),
			    "ALL");
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(hc, "SecurityOpt"), 0)),
	    "no-new-privileges");
	assert_true(json_is_true(json_object_get(hc, "ReadonlyRootfs")));
	assert_true(json_is_false(json_object_get(hc, "Privileged")));
	assert_int_equal(json_integer_value(json_object_get(hc, "Memory")), 64 << 20);
	assert_int_equal(json_integer_value(json_object_get(hc, "PidsLimit")), 64);
	assert_int_equal(json_integer_value(json_object_get(hc, "NanoCpus")), 500000000);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(hc, "Tmpfs"), "/tmp")),
	    "rw,noexec,nosuid,size=16m");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(j, "Config"), "User")),
	    "65534:65534");
	json_decref(j);
}

static void test_network(void **state)
{
	char id[65], id2[65];
	json_t *j = NULL;
	json_t *labels = json_pack("{s:s}", LABEL_KEY, run_id);
	char *name = nets[0];

	(void)state;
	new_name(name);
	assert_int_equal(docker_network_create(D, name, labels, true, id), 0);
	assert_int_equal(strlen(id), 64);
	assert_int_equal(docker_network_create(D, name, labels, true, id2), ODX_ECONFLICT);

	assert_int_equal(docker_network_inspect(D, name, &j), 0);
	assert_string_equal(json_string_value(json_object_get(j, "Id")), id);
	assert_string_equal(json_string_value(json_object_get(j, "Driver")), "bridge");
	assert_true(json_is_true(json_object_get(j, "Internal")));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(j, "Labels"), LABEL_KEY)), run_id);
	json_decref(j);

	/* In use by a running container: the engine says 403, we say conflict. */
	char cid[65];
	json_t *s = spec_sh("sleep 30");
	json_object_set_new(json_object_get(s, "HostConfig"), "NetworkMode", json_string(name));
	create(s, cid);
	json_decref(s);
	assert_int_equal(docker_container_start(D, cid), 0);
	assert_int_equal(docker_network_remove(D, name), ODX_ECONFLICT);
	assert_int_equal(docker_container_remove(D, cid), 0);

	assert_int_equal(docker_network_remove(D, id), 0);
	assert_int_equal(docker_network_remove(D, name), ODX_ENOTFOUND);
	j = NULL;
	assert_int_equal(docker_network_inspect(D, name, &j), ODX_ENOTFOUND);
	assert_null(j);
	assert_int_equal(docker_network_remove(D, "bridge"), ODX_ECONFLICT); /* predefined */

	json_object_set_new(labels, "bad", json_integer(1));
	assert_int_equal(docker_network_create(D, name, labels, false, id), ODX_EINVAL);
	json_decref(labels);
}

struct watch {
	pthread_mutex_t mu;
	char id[65];
	int seen, saw_start, saw_die;
	volatile bool stop;
	int rc;
};

static int on_event(const json_t *ev, void *arg)
{
	struct watch *w = arg;
	const char *action = json_string_value(json_object_get(ev, "Action"));
	const char *id = json_string_value(json_object_get(json_object_get(ev, "Actor"), "ID"));

	pthread_mutex_lock(&w->mu);
	w->seen++;
	if (action != NULL && id != NULL && strcmp(id, w->id) == 0) {
		w->saw_start |= strcmp(action, "start") == 0;
		w->saw_die |= strcmp(action, "die") == 0;
	}
	pthread_mutex_unlock(&w->mu);
	return 0;
}

static void *watch_events(void *arg)
{
	struct watch *w = arg;
	struct docker *d = NULL; /* one handle per thread */
	json_t *f = json_pack("{s:[s], s:[s]}", "type", "container", "label", label_kv);

	w->rc = docker_open(NULL, 5000, &d);
	if (w->rc == 0)
		w->rc = docker_events(d, f, &w->stop, on_event, w);
	json_decref(f);
	docker_close(d);
	return NULL;
}

static int watch_get(struct watch *w, int *start, int *die)
{
	pthread_mutex_lock(&w->mu);
	int seen = w->seen;
	*start = w->saw_start;
	*die = w->saw_die;
	pthread_mutex_unlock(&w->mu);
	return seen;
}

static void test_events(void **state)
{
	struct watch w = {.mu = PTHREAD_MUTEX_INITIALIZER};
	char id[65], probe[65];
	pthread_t th;
	int start = 0, die = 0;
	json_t *s = spec_sh("sleep 30");

	(void)state;
	create(s, id);
	memcpy(w.id, id, sizeof(w.id));
	assert_int_equal(pthread_create(&th, NULL, watch_events, &w), 0);
	/* Until the thread sees events, its stream is not yet subscribed. */
	long end = now_ms() + WAIT_MS;
	while (watch_get(&w, &start, &die) == 0 && now_ms() < end) {
		create(s, probe);
		docker_container_remove(D, probe);
		sleep_ms(100);
	}
	json_decref(s);
	assert_true(watch_get(&w, &start, &die) > 0);

	assert_int_equal(docker_container_start(D, id), 0);
	assert_int_equal(docker_container_stop(D, id, 0), 0);
	while (!(start && die) && now_ms() < end) {
		sleep_ms(50);
		watch_get(&w, &start, &die);
	}
	long t0 = now_ms();
	w.stop = true;
	pthread_join(th, NULL);
	long took = now_ms() - t0;
	assert_true(start);
	assert_true(die);
	assert_int_equal(w.rc, 0);
	if (took > STOP_LIMIT)
		fail_msg("the events stream took %ld ms to stop", took);
}

/* ---- a fake engine: answers a real one never sends --------------- */

#define FAKE_MAX 4

struct answer {
	char *data;
	size_t len;
	bool trickle; /* one byte per write: chunks split anywhere */
};

struct fake {
	char path[108];
	int lfd;
	pthread_t th;
	struct answer a[FAKE_MAX];
	size_t n;
	char req[FAKE_MAX][512]; /* the request line of each connection */
	char body[FAKE_MAX][1024];
};

/* Adds an answer: status line and headers, then body (len bytes). */
static void answer(struct fake *f, const char *status, const void *body, size_t len, bool trickle)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Type: application/json\r\nConnection: close\r\n"
			 "Content-Length: %zu\r\n\r\n",
			 status, len);
	struct answer *a = &f->a[f->n++];

	assert_true(f->n <= FAKE_MAX);
	a->data = malloc((size_t)n + len);
	assert_non_null(a->data);
	memcpy(a->data, head, (size_t)n);
	if (len > 0)
		memcpy(a->data + n, body, len);
	a->len = (size_t)n + len;
	a->trickle = trickle;
}

static void answer_str(struct fake *f, const char *status, const char *body)
{
	answer(f, status, body, strlen(body), false);
}

/* Reads one request: headers, then a body of Content-Length bytes. */
static void read_request(int fd, char *line, size_t line_size, char *body, size_t body_size)
{
	char buf[16384];
	size_t len = 0;
	char *end = NULL;

	while (end == NULL && len + 1 < sizeof(buf)) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			return;
		len += (size_t)r;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	if (end == NULL)
		return;
	char *eol = strstr(buf, "\r\n");
	snprintf(line, line_size, "%.*s", (int)(eol - buf), buf);
	size_t want = 0;
	const char *cl = strstr(buf, "Content-Length: ");
	for (cl = cl != NULL ? cl + 16 : NULL; cl != NULL && *cl >= '0' && *cl <= '9'; cl++)
		want = want * 10 + (size_t)(*cl - '0');
	if (want > sizeof(buf) - 1)
		return;
	size_t have = len - (size_t)(end + 4 - buf);
	memmove(buf, end + 4, have);
	while (have < want) {
		ssize_t r = read(fd, buf + have, want - have);
		if (r <= 0)
			return;
		have += (size_t)r;
	}
	snprintf(body, body_size, "%.*s", (int)want, buf);
}

static void send_all(int fd, const char *p, size_t n, bool trickle)
{
	while (n > 0) {
		ssize_t w = send(fd, p, trickle ? 1 : n, MSG_NOSIGNAL);
		if (w <= 0)
			return; /* the client gave up (a cap): expected */
		p += w;
		n -= (size_t)w;
		if (trickle)
			sleep_ms(1);
	}
}

static void *fake_serve(void *arg)
{
	struct fake *f = arg;

	for (size_t i = 0; i < f->n; i++) {
		int fd = accept(f->lfd, NULL, NULL);
		if (fd < 0)
			return NULL;
		read_request(fd, f->req[i], sizeof(f->req[i]), f->body[i], sizeof(f->body[i]));
		send_all(fd, f->a[i].data, f->a[i].len, f->a[i].trickle);
		shutdown(fd, SHUT_WR);
		/* Let the client read it all and close first. */
		struct pollfd p = {.fd = fd, .events = POLLIN};
		char sink[4096];
		while (poll(&p, 1, 2000) > 0 && read(fd, sink, sizeof(sink)) > 0)
			;
		close(fd);
	}
	return NULL;
}

/* Starts serving the answers added so far, one connection each; returns a handle on it. */
static struct docker *fake_start(struct fake *f)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct docker *d = NULL;

	snprintf(f->path, sizeof(f->path), "/tmp/odx-fake-docker-%d.sock", (int)getpid());
	unlink(f->path);
	memcpy(sa.sun_path, f->path, sizeof(f->path));
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(pthread_create(&f->th, NULL, fake_serve, f), 0);
	assert_int_equal(docker_open(f->path, 5000, &d), 0);
	return d;
}

static void fake_stop(struct fake *f, struct docker *d)
{
	docker_close(d);
	shutdown(f->lfd, SHUT_RDWR); /* ends an accept() still waiting */
	pthread_join(f->th, NULL);
	close(f->lfd);
	unlink(f->path);
	for (size_t i = 0; i < f->n; i++)
		free(f->a[i].data);
	memset(f, 0, sizeof(*f));
}

static void test_fake_garbage(void **state)
{
	struct fake f = {0};
	json_t *j = NULL;

	(void)state;
	answer_str(&f, "200 OK", "hello");
	answer_str(&f, "200 OK", "[1,2]");
	answer_str(&f, "500 Internal Server Error", "{\"message\":\"boom\\u001b[31m\\n\"}");
	answer_str(&f, "200 OK", "OKAY");
	struct docker *d = fake_start(&f);
	assert_int_equal(docker_info(d, &j), ODX_EIO);
	assert_null(j);
	assert_int_equal(docker_info(d, &j), ODX_EIO); /* an array, not an object */
	assert_int_equal(docker_info(d, &j), ODX_EIO);
	assert_string_equal(docker_last_error(d), "boom?[31m?"); /* no terminal escapes */
	assert_int_equal(docker_ping(d), ODX_EIO);		 /* not the engine's "OK" */
	assert_string_equal(f.req[0], "GET /v1.41/info HTTP/1.1");
	assert_string_equal(f.req[3], "GET /v1.41/_ping HTTP/1.1");
	fake_stop(&f, d);
}

static void test_fake_too_big(void **state)
{
	struct fake f = {0};
	json_t *j = NULL;
	size_t n = (size_t)17 << 20;
	char *big = malloc(n);
	char id[65];

	(void)state;
	assert_non_null(big);
	memset(big, ' ', n);
	answer(&f, "200 OK", big, n, false);
	free(big);
	answer_str(&f, "201 Created", "{\"Id\":\"../../etc\",\"Warnings\":[]}");
	answer_str(&f, "304 Not Modified", "");
	answer_str(&f, "403 Forbidden", "{\"message\":\"in use\"}");
	struct docker *d = fake_start(&f);
	assert_int_equal(docker_container_inspect(d, "abc", &j), ODX_ETOOBIG);
	assert_null(j);
	json_t *s = json_pack("{s:s}", "Image", "x");
	assert_int_equal(docker_container_create(d, "odx.a-b_1", s, id), ODX_EIO);
	json_decref(s);
	assert_int_equal(docker_container_start(d, "abc"), 0);
	assert_int_equal(docker_network_remove(d, "n1"), ODX_ECONFLICT);
	assert_string_equal(f.req[1], "POST /v1.41/containers/create?name=odx.a-b_1 HTTP/1.1");
	assert_string_equal(f.body[1], "{\"Image\":\"x\"}");
	assert_string_equal(f.req[2], "POST /v1.41/containers/abc/start HTTP/1.1");
	assert_string_equal(f.req[3], "DELETE /v1.41/networks/n1 HTTP/1.1");
	fake_stop(&f, d);
}

#define TTY_NO "{\"Config\":{\"Tty\":false}}"

static void test_fake_logs(void **state)
{
	struct fake f = {0};
	char *out = NULL;
	size_t len = 0;
	/* stdout "ab\n", stderr "e\n", an empty frame: split one byte per write. */
	static const char ok[] = "\1\0\0\0\0\0\0\3ab\n"
				 "\2\0\0\0\0\0\0\2e\n"
				 "\1\0\0\0\0\0\0\0";

	(void)state;
	answer_str(&f, "200 OK", TTY_NO);
	answer(&f, "200 OK", ok, sizeof(ok) - 1, true);
	struct docker *d = fake_start(&f);
	assert_int_equal(docker_container_logs(d, "abc", 10, 64, &out, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(out, "ab\ne\n", 5);
	free(out);
	assert_string_equal(f.req[1], "GET /v1.41/containers/abc/logs?stdout=1&stderr=1&"
				      "timestamps=0&follow=0&tail=10 HTTP/1.1");
	fake_stop(&f, d);
}

static void test_fake_logs_hostile(void **state)
{
	struct fake f = {0};
	char *out = (char *)"untouched";
	size_t len = 7;
	static const char bad_type[] = "\x09\0\0\0\0\0\0\1x";
	static const char bad_pad[] = "\1\0\1\0\0\0\0\1x";
	/* Claims 4 GiB, sends 3 bytes: counted down, never allocated. */
	static const char liar[] = "\1\0\0\0\xff\xff\xff\xf0"
				   "abc";

	(void)state;
	answer_str(&f, "200 OK", TTY_NO);
	answer(&f, "200 OK", bad_type, sizeof(bad_type) - 1, false);
	answer_str(&f, "200 OK", TTY_NO);
	answer(&f, "200 OK", liar, sizeof(liar) - 1, false);
	struct docker *d = fake_start(&f);
	assert_int_equal(docker_container_logs(d, "abc", -1, 64, &out, &len), ODX_EIO);
	assert_int_equal(docker_container_logs(d, "abc", -1, 64, &out, &len), ODX_EIO);
	assert_string_equal(out, "untouched"); /* outputs only written on success */
	assert_int_equal(len, 7);
	fake_stop(&f, d);

	answer_str(&f, "200 OK", TTY_NO);
	answer(&f, "200 OK", bad_pad, sizeof(bad_pad) - 1, false);
	answer_str(&f, "200 OK", TTY_NO);
	answer(&f, "200 OK", "\1\0\0", 3, false); /* a header cut short */
	d = fake_start(&f);
	assert_int_equal(docker_container_logs(d, "abc", -1, 64, &out, &len), ODX_EIO);
	assert_int_equal(docker_container_logs(d, "abc", -1, 64, &out, &len), ODX_EIO);
	fake_stop(&f, d);
}

static void test_fake_pull(void **state)
{
	struct fake f = {0};

	(void)state;
	answer_str(&f, "200 OK",
		   "{\"status\":\"Pulling from odx/app\"}\r\n"
		   "{\"errorDetail\":{\"message\":\"manifest unknown\"},"
		   "\"error\":\"manifest unknown: manifest unknown\"}\r\n");
	answer_str(&f, "200 OK",
		   "{\"status\":\"Pulling\"}\r\n{\"error\":\"unauthorized: \\u0007denied\"}");
	answer_str(&f, "200 OK", "{\"status\":\"Pulling\"}\r\nnot json\r\n");
	answer_str(&f, "200 OK", "{\"status\":\"Downloaded newer image\"}\r\n");
	struct docker *d = fake_start(&f);
	assert_int_equal(docker_image_pull(d, "localhost:5000/odx/app:v2"), ODX_ENOTFOUND);
	assert_string_equal(docker_last_error(d), "manifest unknown: manifest unknown");
	assert_int_equal(docker_image_pull(d, "odx/app"), ODX_EINVAL);
	assert_string_equal(docker_last_error(d), "unauthorized: ?denied");
	assert_int_equal(docker_image_pull(d, "odx/app@sha256:0123"), ODX_EIO);
	assert_int_equal(docker_image_pull(d, "odx/app:1@sha256:0123"), 0);
	assert_string_equal(f.req[0],
			    "POST /v1.41/images/create?fromImage=localhost%3A5000%2Fodx%2F"
			    "app&tag=v2 HTTP/1.1");
	assert_string_equal(f.req[1],
			    "POST /v1.41/images/create?fromImage=odx%2Fapp&tag=latest HTTP/1.1");
	assert_string_equal(f.req[2], "POST /v1.41/images/create?fromImage=odx%2Fapp&tag=sha256%"
				      "3A0123 HTTP/1.1");
	assert_string_equal(f.req[3], "POST /v1.41/images/create?fromImage=odx%2Fapp&tag=sha256%"
				      "3A0123 HTTP/1.1");
	fake_stop(&f, d);
}

static int count_event(const json_t *ev, void *arg)
{
	int *n = arg;
	(void)ev;
	(*n)++;
	return 0;
}

static int first_event(const json_t *ev, void *arg)
{
	(void)ev;
	(void)arg;
	return 7;
}

static void test_fake_events(void **state)
{
	struct fake f = {0};
	int n = 0;
	size_t big = ((size_t)1 << 20) + 16;
	char *line = malloc(big);

	(void)state;
	assert_non_null(line);
	memset(line, ' ', big);
	line[0] = '{';
	line[big - 1] = '}';
	/* The last object without its newline still counts; then the stream ends. */
	answer_str(&f, "200 OK", "{\"Action\":\"start\"}\n\n{\"Action\":\"die\"}");
	answer_str(&f, "200 OK", "{\"Action\":\"start\"}\n{\"Action\":\"die\"}\n");
	answer(&f, "200 OK", line, big, false);
	answer_str(&f, "200 OK", "{\"Action\":\"start\"}\n[]\n");
	free(line);
	struct docker *d = fake_start(&f);
	json_t *filters = json_pack("{s:[s]}", "label", "a=b c");
	assert_int_equal(docker_events(d, filters, NULL, count_event, &n), ODX_EUNAVAIL);
	json_decref(filters);
	assert_int_equal(n, 2);
	assert_int_equal(docker_events(d, NULL, NULL, first_event, NULL), 7);
	assert_int_equal(docker_events(d, NULL, NULL, count_event, &n), ODX_ETOOBIG);
	n = 0;
	assert_int_equal(docker_events(d, NULL, NULL, count_event, &n), ODX_EIO);
	assert_int_equal(n, 1);
	assert_string_equal(f.req[0], "GET /v1.41/events?filters=%7B%22label%22%3A%5B%22a%3Db%20c%"
				      "22%5D%7D HTTP/1.1");
	assert_string_equal(f.req[1], "GET /v1.41/events HTTP/1.1");
	fake_stop(&f, d);
}

static void test_unreachable(void **state)
{
	struct docker *d = NULL;
	json_t *j = NULL;

	(void)state;
	assert_int_equal(docker_open("/nonexistent/docker.sock", 2000, &d), 0);
	assert_int_equal(docker_ping(d), ODX_EUNAVAIL);
	assert_string_equal(
	    docker_last_error(d),
	    "cannot connect to /nonexistent/docker.sock: No such file or directory");
	assert_int_equal(docker_info(d, &j), ODX_EUNAVAIL);
	assert_null(j);
	volatile bool stop = false;
	assert_int_equal(docker_events(d, NULL, &stop, count_event, NULL), ODX_EUNAVAIL);
	docker_close(d);
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(docker_open(longpath, 0, &d), ODX_EINVAL);
	docker_close(NULL);
}

int main(void)
{
#define T(f) cmocka_unit_test_teardown(f, cleanup)
	const struct CMUnitTest tests[] = {
	    T(test_ping_info),
	    T(test_image_inspect),
	    T(test_image_pull_missing),
	    T(test_container_lifecycle),
	    T(test_container_errors),
	    T(test_container_kill),
	    T(test_container_logs),
	    T(test_container_logs_tty),
	    T(test_container_stats),
	    T(test_container_hardened),
	    T(test_network),
	    T(test_events),
	    cmocka_unit_test(test_fake_garbage),
	    cmocka_unit_test(test_fake_too_big),
	    cmocka_unit_test(test_fake_logs),
	    cmocka_unit_test(test_fake_logs_hostile),
	    cmocka_unit_test(test_fake_pull),
	    cmocka_unit_test(test_fake_events),
	    cmocka_unit_test(test_unreachable),
	};
#undef T
	signal(SIGPIPE, SIG_IGN);
	if (client_global_init() < 0)
		return 1;
	int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	client_global_done();
	return rc;
}
