/*
 * agent-bench.c — the agent API under many simulated agents (issue 5).
 *
 * 1. Logs in to the public API and creates one enrollment token per agent.
 * 2. The agents enroll in parallel (TLS with ALPN odysseus-enroll/1, no
 *    client certificate): total wall time and per-enrollment latency.
 * 3. Heartbeats (POST /agent/v1/status over mutual TLS) from C concurrent
 *    connections, each using one enrolled agent's certificate: back to back
 *    over HTTP/1.1 keep-alive, then with a full new TLS handshake for every
 *    heartbeat. Heartbeats/s, latency, and the server's CPU time per
 *    heartbeat (from /proc/PID/stat), projected to 1,000 agents at one
 *    heartbeat per 5 s.
 * 4. Paced: the goal itself, 1,000 connections each sending one heartbeat
 *    every 5 s (first beats spread over the period), keep-alive and with a
 *    new handshake each time; the server's CPU is measured, not projected.
 * 5. The same heartbeat runs, same client code, against a peer (nginx with
 *    the same certificate, requiring client certificates from the same CA,
 *    answering a fixed body) in the same invocation; ratios are printed.
 *
 * Goal: 1,000 agents at a 5 s heartbeat use under 25 % of one core.
 *
 * The load generator is one epoll loop per thread over non-blocking OpenSSL
 * connections; the HTTP client is minimal but exact: requests carry
 * Content-Length, answers must carry it too and exactly that many body bytes
 * are read. Keys and CSRs are made before the enrollment clock starts (real
 * agents make theirs on their own machines).
 *
 * Usage: agent-bench --api HOST:PORT --agent HOST:PORT --ca FILE --email E
 *                    --pid PID --workdir DIR [--peer HOST:PORT --peer-pids P[,P]]
 *                    [--agents 100] [--enroll-threads 16] [--connections 64]
 *                    [--threads 1] [--seconds 10] [--warmup 2]
 *                    [--paced-agents 1000] [--period 5]
 * The admin password comes from the environment variable AGENT_BENCH_PASSWORD.
 * bench/agent-bench.sh starts everything and runs it (see bench/README.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/encoding.h"
#include "core/timeutil.h"
#include "crypto/x509.h"

#define RESP_MAX      (1 << 20) /* bytes of one answer (head and body) to a setup call */
#define BEAT_RESP_MAX 4096	/* … and to a heartbeat */
#define HIST_US	      1000000	/* latency histogram: 1 µs buckets up to 1 s */
#define MAX_PIDS      8
#define ENROLL_ALPN   "\x11odysseus-enroll/1"
#define GOAL_AGENTS   1000
#define GOAL_PERIOD_S 5
#define GOAL_PCT      25.0

static const char heartbeat_body[] =
    "{\"agent_version\":\"0.1.0\",\"capacity\":{\"cpus\":2,\"memory_bytes\":25769803776,"
    "\"disk_bytes\":107374182400},\"usage\":{\"cpu_percent\":3.5,\"memory_bytes\":1073741824,"
    "\"disk_bytes\":5368709120},\"docker_root\":\"/var/lib/docker\"}";

struct hostport {
	char host[64];
	int port;
};

struct pids {
	int n;
	int pid[MAX_PIDS];
};

struct agent {
	char key_path[4200];
	char *csr;
	char *token;
	X509 *cert;
	EVP_PKEY *key;
	SSL_CTX *ctx; /* mutual TLS with this agent's certificate */
	double enroll_ms;
	bool enrolled;
};

static struct {
	struct hostport api, agent, peer;
	const char *ca, *email, *password, *workdir;
	struct pids pid, peer_pids;
	bool have_peer;
	int agents, enroll_threads, connections, threads, paced;
	double seconds, warmup, period;
} opt = {.agents = 100,
	 .paced = GOAL_AGENTS,
	 .period = GOAL_PERIOD_S,
	 .enroll_threads = 16,
	 .connections = 64,
	 .threads = 1,
	 .seconds = 10,
	 .warmup = 2};

static struct agent *agents;
static char *access_token; /* the platform administrator's, from the login */

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "agent-bench: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static double now_s(void)
{
	return (double)time_mono_ns() / 1e9;
}

/* ---- options ------------------------------------------------------------ */

static void parse_hostport(const char *s, struct hostport *hp)
{
	const char *colon = strrchr(s, ':');
	int64_t port;
	if (!colon || (size_t)(colon - s) >= sizeof(hp->host) ||
	    parse_int64(colon + 1, 1, 65535, &port) < 0)
		die("expected HOST:PORT, got '%s'", s);
	memcpy(hp->host, s, (size_t)(colon - s));
	hp->host[colon - s] = '\0';
	hp->port = (int)port;
}

static int parse_count(const char *s, int64_t min, int64_t max)
{
	int64_t v;
	if (parse_int64(s, min, max, &v) < 0)
		die("bad number '%s'", s);
	return (int)v;
}

static void parse_pids(const char *s, struct pids *p)
{
	char buf[256], *save = NULL;
	if (strlen(s) >= sizeof(buf))
		die("pid list too long: %s", s);
	memcpy(buf, s, strlen(s) + 1);
	p->n = 0;
	for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		if (p->n == MAX_PIDS)
			die("too many pids: %s", s);
		p->pid[p->n++] = parse_count(t, 1, INT32_MAX);
	}
	if (p->n == 0)
		die("empty pid list '%s'", s);
}

static void parse_opt(const char *name, const char *v)
{
	if (strcmp(name, "--api") == 0)
		parse_hostport(v, &opt.api);
	else if (strcmp(name, "--agent") == 0)
		parse_hostport(v, &opt.agent);
	else if (strcmp(name, "--peer") == 0) {
		parse_hostport(v, &opt.peer);
		opt.have_peer = true;
	} else if (strcmp(name, "--ca") == 0)
		opt.ca = v;
	else if (strcmp(name, "--email") == 0)
		opt.email = v;
	else if (strcmp(name, "--workdir") == 0)
		opt.workdir = v;
	else if (strcmp(name, "--pid") == 0)
		parse_pids(v, &opt.pid);
	else if (strcmp(name, "--peer-pids") == 0)
		parse_pids(v, &opt.peer_pids);
	else if (strcmp(name, "--agents") == 0)
		opt.agents = parse_count(v, 1, 100000);
	else if (strcmp(name, "--enroll-threads") == 0)
		opt.enroll_threads = parse_count(v, 1, 1024);
	else if (strcmp(name, "--connections") == 0)
		opt.connections = parse_count(v, 1, 100000);
	else if (strcmp(name, "--threads") == 0)
		opt.threads = parse_count(v, 1, 256);
	else if (strcmp(name, "--seconds") == 0)
		opt.seconds = parse_count(v, 1, 3600);
	else if (strcmp(name, "--warmup") == 0)
		opt.warmup = parse_count(v, 0, 3600);
	else if (strcmp(name, "--paced-agents") == 0)
		opt.paced = parse_count(v, 0, 100000);
	else if (strcmp(name, "--period") == 0)
		opt.period = parse_count(v, 1, 3600);
	else
		die("unknown option %s (see the comment at the top of agent-bench.c)", name);
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			die("%s needs a value", argv[i]);
		parse_opt(argv[i], argv[i + 1]);
	}
	opt.password = getenv("AGENT_BENCH_PASSWORD");
	if (!opt.api.port || !opt.agent.port || !opt.ca || !opt.email || !opt.workdir ||
	    !opt.pid.n || !opt.password)
		die("%s", "need --api, --agent, --ca, --email, --workdir, --pid and "
			  "AGENT_BENCH_PASSWORD in the environment");
	if (opt.have_peer && !opt.peer_pids.n)
		die("%s", "--peer needs --peer-pids");
}

/* ---- /proc -------------------------------------------------------------- */

/* utime + stime (clock ticks) of one process, all its threads. */
static unsigned long long stat_ticks(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
	if (!p)
		die("cannot read %s (is the server running?)", path);
	/* After ") " comes field 3 (state); utime is field 14 and stime 15. */
	for (int field = 3; field <= 14 && p; field++)
		p = strchr(p + 1, ' ');
	unsigned long long v[2];
	for (int k = 0; k < 2; k++) {
		char *e;
		errno = 0;
		v[k] = p ? strtoull(p + 1, &e, 10) : 0;
		if (!p || errno || e == p + 1)
			die("unexpected contents of %s", path);
		p = e;
	}
	return v[0] + v[1];
}

/* utime + stime of every pid, in seconds. */
static double cpu_seconds(const struct pids *p)
{
	unsigned long long ticks = 0;
	for (int i = 0; i < p->n; i++)
		ticks += stat_ticks(p->pid[i]);
	return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

/* Resident set of the first pid, in KiB (0 if unknown). */
static long rss_kib(const struct pids *p)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", p->pid[0]);
	FILE *f = fopen(path, "r");
	long kib = 0;
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmRSS:", 6) != 0)
			continue;
		char *e;
		kib = strtol(line + 6, &e, 10);
		if (e == line + 6)
			kib = 0;
		break;
	}
	if (f)
		fclose(f);
	return kib;
}

static double self_cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- HTTP/1.1 answers --------------------------------------------------- */

struct resp {
	size_t len, head, cap; /* bytes in buf; length of the head (0: not yet); buf's size - 1 */
	int64_t clen;
	int status;
	bool close;
	char *buf;
};

/* An answer buffer for at most cap bytes; dies when out of memory. */
static struct resp *resp_new(size_t cap)
{
	struct resp *r = calloc(1, sizeof(*r));
	char *buf = malloc(cap + 1);
	if (!r || !buf)
		die("%s", "out of memory");
	r->buf = buf;
	r->cap = cap;
	return r;
}

static void resp_free(struct resp *r)
{
	if (!r)
		return;
	free(r->buf);
	free(r);
}

static void resp_reset(struct resp *r)
{
	r->len = r->head = 0;
	r->clen = -1;
	r->status = 0;
	r->close = false;
}

/* One header line [p, end): Content-Length and Connection matter. */
static int resp_header(struct resp *r, const char *p, const char *end)
{
	const char *colon = memchr(p, ':', (size_t)(end - p));
	if (!colon)
		return -1;
	const char *v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	size_t nlen = (size_t)(colon - p), vlen = (size_t)(end - v);
	if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0) {
		char num[24];
		if (vlen == 0 || vlen >= sizeof(num))
			return -1;
		memcpy(num, v, vlen);
		num[vlen] = '\0';
		if (parse_int64(num, 0, (int64_t)r->cap, &r->clen) < 0)
			return -1;
	} else if (nlen == 10 && strncasecmp(p, "connection", 10) == 0) {
		r->close = vlen >= 5 && strncasecmp(v, "close", 5) == 0;
	} else if (nlen == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
		return -1; /* both servers send Content-Length for these answers */
	}
	return 0;
}

static int resp_parse_head(struct resp *r, const char *eoh)
{
	const char *p = r->buf;
	if (eoh - p < 12 || (memcmp(p, "HTTP/1.1 ", 9) != 0 && memcmp(p, "HTTP/1.0 ", 9) != 0))
		return -1;
	int st = 0;
	for (int i = 9; i < 12; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		st = st * 10 + (p[i] - '0');
	}
	r->status = st;
	p = memmem(p, (size_t)(eoh - p), "\r\n", 2) + 2;
	while (p < eoh) {
		const char *e = memmem(p, (size_t)(eoh + 2 - p), "\r\n", 2);
		if (resp_header(r, p, e) < 0)
			return -1;
		p = e + 2;
	}
	if (r->clen < 0)
		return -1;
	r->head = (size_t)(eoh + 4 - r->buf);
	return 0;
}

/* After new bytes: 1 the answer is complete, 0 more to read, -1 malformed. */
static int resp_check(struct resp *r)
{
	if (!r->head) {
		const char *eoh = memmem(r->buf, r->len, "\r\n\r\n", 4);
		if (!eoh)
			return r->len >= r->cap ? -1 : 0;
		if (resp_parse_head(r, eoh) < 0)
			return -1;
	}
	size_t want = r->head + (size_t)r->clen;
	if (want > r->cap)
		return -1;
	if (r->len < want)
		return 0;
	if (r->len > want) /* nothing is pipelined: extra bytes are a protocol error */
		return -1;
	r->buf[r->len] = '\0';
	return 1;
}

static const char *resp_body(const struct resp *r)
{
	return r->buf + r->head;
}

/* "METHOD PATH HTTP/1.1" with Host, an optional bearer token and a JSON body; malloc'd. */
static char *request_new(const char *method, const char *path, const struct hostport *hp,
			 const char *bearer, const char *body, size_t *len)
{
	char auth[4200] = "";
	if (bearer)
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", bearer);
#define REQUEST_FMT                                                                                \
	"%s %s HTTP/1.1\r\nHost: %s:%d\r\n%sContent-Type: application/json\r\n"                    \
	"Content-Length: %zu\r\n\r\n%s"
	size_t blen = body ? strlen(body) : 0;
	int n = snprintf(NULL, 0, REQUEST_FMT, method, path, hp->host, hp->port, auth, blen,
			 body ? body : "");
	char *req = n > 0 ? malloc((size_t)n + 1) : NULL;
	if (!req)
		die("%s", "out of memory");
	snprintf(req, (size_t)n + 1, REQUEST_FMT, method, path, hp->host, hp->port, auth, blen,
		 body ? body : "");
	*len = (size_t)n;
	return req;
}

/* ---- TLS ---------------------------------------------------------------- */

static SSL_CTX *client_ctx(X509 *cert, EVP_PKEY *key, bool enroll)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || SSL_CTX_load_verify_locations(ctx, opt.ca, NULL) != 1)
		die("cannot load the CA certificate %s", opt.ca);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* Never resume: every new connection is a full handshake. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (enroll && SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)ENROLL_ALPN,
					      sizeof(ENROLL_ALPN) - 1) != 0)
		die("%s", "cannot set ALPN");
	if (cert && (SSL_CTX_use_certificate(ctx, cert) != 1 ||
		     SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1))
		die("%s", "cannot use an agent's certificate and key");
	return ctx;
}

static int tcp_socket(const struct hostport *hp, bool nonblock, int *fd_out)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)hp->port)};
	if (inet_pton(AF_INET, hp->host, &sa.sin_addr) != 1)
		die("HOST must be an IPv4 address, got %s", hp->host);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (rc < 0 && !(nonblock && errno == EINPROGRESS)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return rc == 0 ? 0 : 1; /* 1: still connecting */
}

static SSL *tls_new(SSL_CTX *ctx, int fd, const struct hostport *hp)
{
	SSL *ssl = SSL_new(ctx);
	if (!ssl || SSL_set_fd(ssl, fd) != 1 ||
	    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), hp->host) != 1)
		die("%s", "SSL_new failed");
	SSL_set_connect_state(ssl);
	return ssl;
}

/* ---- blocking client (setup, enrollment, probes) ------------------------ */

struct bconn {
	int fd;
	SSL *ssl;
};

static int bconn_open(struct bconn *c, SSL_CTX *ctx, const struct hostport *hp)
{
	c->ssl = NULL;
	if (tcp_socket(hp, false, &c->fd) < 0)
		return -1;
	c->ssl = tls_new(ctx, c->fd, hp);
	if (SSL_connect(c->ssl) != 1 || SSL_get_verify_result(c->ssl) != X509_V_OK) {
		ERR_clear_error();
		SSL_free(c->ssl);
		close(c->fd);
		c->ssl = NULL;
		return -1;
	}
	return 0;
}

static void bconn_close(struct bconn *c)
{
	if (!c->ssl)
		return;
	SSL_shutdown(c->ssl);
	SSL_free(c->ssl);
	close(c->fd);
	c->ssl = NULL;
}

/* Sends req and reads the whole answer into r. 0, or -1 on any failure. */
static int bconn_call(struct bconn *c, const char *req, size_t len, struct resp *r)
{
	resp_reset(r);
	if (SSL_write(c->ssl, req, (int)len) != (int)len)
		return -1;
	int rc;
	while ((rc = resp_check(r)) == 0) {
		int n = SSL_read(c->ssl, r->buf + r->len, (int)(r->cap - r->len));
		if (n <= 0)
			return -1;
		r->len += (size_t)n;
	}
	return rc == 1 ? 0 : -1;
}

/* One request on c; dies unless the answer has the wanted status. */
static void call_expect(struct bconn *c, const struct hostport *hp, const char *method,
			const char *path, const char *bearer, json_t *body, int want,
			struct resp *r)
{
	char *js = body ? json_dumps(body, JSON_COMPACT) : NULL;
	size_t len;
	char *req = request_new(method, path, hp, bearer, js, &len);
	int rc = bconn_call(c, req, len, r);
	free(req);
	free(js);
	json_decref(body);
	if (rc < 0)
		die("%s: no valid HTTP answer", path);
	if (r->status != want) {
		fprintf(stderr, "agent-bench: %s %s -> %d: %.400s\n", method, path, r->status,
			resp_body(r));
		exit(1);
	}
}

/* A string member of the JSON answer in r, strdup'd; dies if absent. */
static char *resp_string(const struct resp *r, const char *key)
{
	json_t *j = json_loadb(resp_body(r), (size_t)r->clen, 0, NULL);
	const char *v = j ? json_string_value(json_object_get(j, key)) : NULL;
	char *s = v ? strdup(v) : NULL;
	json_decref(j);
	if (!s)
		die("answer without \"%s\"", key);
	return s;
}

/* ---- 1. tokens ----------------------------------------------------------- */

static void create_tokens(void)
{
	SSL_CTX *ctx = client_ctx(NULL, NULL, false);
	struct bconn c;
	struct resp *r = resp_new(RESP_MAX);
	if (bconn_open(&c, ctx, &opt.api) < 0)
		die("cannot connect to the public API at %s", opt.api.host);
	call_expect(&c, &opt.api, "POST", "/v1/auth/login", NULL,
		    json_pack("{s:s, s:s}", "email", opt.email, "password", opt.password), 200, r);
	access_token = resp_string(r, "access_token");
	for (int i = 0; i < opt.agents; i++) {
		if (r->close) {
			bconn_close(&c);
			if (bconn_open(&c, ctx, &opt.api) < 0)
				die("%s", "cannot reconnect to the public API");
		}
		call_expect(&c, &opt.api, "POST", "/v1/nodes/enrollment-tokens", access_token,
			    json_pack("{s:i}", "ttl_seconds", 3600), 201, r);
		agents[i].token = resp_string(r, "token");
	}
	bconn_close(&c);
	resp_free(r);
	SSL_CTX_free(ctx);
}

/* After the heartbeats, the inventory must list every agent as ready with its version. */
static void check_inventory(void)
{
	SSL_CTX *ctx = client_ctx(NULL, NULL, false);
	struct bconn c;
	struct resp *r = resp_new(RESP_MAX);
	if (bconn_open(&c, ctx, &opt.api) < 0)
		die("cannot connect to the public API at %s", opt.api.host);
	call_expect(&c, &opt.api, "GET", "/v1/nodes?limit=500", access_token, NULL, 200, r);
	json_t *j = json_loadb(resp_body(r), (size_t)r->clen, 0, NULL);
	json_t *items = json_object_get(j, "items"), *it;
	size_t i, ready = 0, reported = 0;
	json_array_foreach(items, i, it)
	{
		const char *st = json_string_value(json_object_get(it, "state"));
		const char *v = json_string_value(json_object_get(it, "agent_version"));
		ready += st && strcmp(st, "ready") == 0;
		reported += v && strcmp(v, "0.1.0") == 0;
	}
	printf("\ninventory (GET /v1/nodes): %zu nodes, %zu ready, %zu with the heartbeat's "
	       "agent_version%s\n",
	       json_array_size(items), ready, reported,
	       json_array_size(items) == (size_t)opt.agents && ready == (size_t)opt.agents &&
		       reported == (size_t)opt.agents
		   ? ""
		   : " — EXPECTED every agent");
	json_decref(j);
	bconn_close(&c);
	resp_free(r);
	SSL_CTX_free(ctx);
}

/* ---- 2. enrollment ------------------------------------------------------- */

static atomic_int enroll_next;
static atomic_int enroll_failed;
static SSL_CTX *enroll_ctx;

static X509 *pem_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return x;
}

/* Enrolls agent a; 0 or -1. Its certificate lands in a->cert. */
static int enroll_one(struct agent *a, struct resp *r)
{
	char *js = NULL, *req = NULL;
	struct bconn c;
	size_t len;
	int rc = -1;
	double t0 = now_s();
	if (bconn_open(&c, enroll_ctx, &opt.agent) < 0)
		return -1;
	json_t *body = json_pack("{s:s, s:s}", "token", a->token, "csr", a->csr);
	js = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (js)
		req = request_new("POST", "/agent/v1/enroll", &opt.agent, NULL, js, &len);
	if (req && bconn_call(&c, req, len, r) == 0 && r->status == 201) {
		json_t *j = json_loadb(resp_body(r), (size_t)r->clen, 0, NULL);
		const char *cert = j ? json_string_value(json_object_get(j, "certificate")) : NULL;
		a->cert = cert ? pem_cert(cert) : NULL;
		json_decref(j);
		rc = a->cert ? 0 : -1;
	} else if (req && r->status) {
		fprintf(stderr, "agent-bench: enroll -> %d: %.300s\n", r->status, resp_body(r));
	}
	bconn_close(&c);
	a->enroll_ms = (now_s() - t0) * 1e3;
	free(req);
	free(js);
	return rc;
}

static void *enroll_main(void *arg)
{
	(void)arg;
	struct resp *r = resp_new(RESP_MAX);
	int i;
	while ((i = atomic_fetch_add(&enroll_next, 1)) < opt.agents) {
		agents[i].enrolled = enroll_one(&agents[i], r) == 0;
		if (!agents[i].enrolled)
			atomic_fetch_add(&enroll_failed, 1);
	}
	resp_free(r);
	return NULL;
}

static void make_keys(void)
{
	for (int i = 0; i < opt.agents; i++) {
		struct agent *a = &agents[i];
		snprintf(a->key_path, sizeof(a->key_path), "%s/agent-%d.key", opt.workdir, i);
		if (x509_make_key_and_csr(a->key_path, &a->csr) < 0)
			die("cannot make a key and CSR in %s", opt.workdir);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct_sorted(const double *v, int n, double p)
{
	int k = (int)(p * n + 0.999999) - 1;
	return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

static void report_enroll(double wall, double cpu)
{
	double *ms = calloc((size_t)opt.agents, sizeof(double));
	int n = 0;
	if (!ms)
		die("%s", "out of memory");
	for (int i = 0; i < opt.agents; i++)
		if (agents[i].enrolled)
			ms[n++] = agents[i].enroll_ms;
	qsort(ms, (size_t)n, sizeof(double), cmp_double);
	printf("\n### Enrollment: %d agents, %d in parallel (keys and CSRs made beforehand)\n\n",
	       opt.agents, opt.enroll_threads);
	printf("| enrolled | failed | wall time s | enrollments/s | p50 ms | p99 ms | max ms | "
	       "odysseusd CPU s | CPU ms/enrollment |\n");
	printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	printf("| %d | %d | %.3f | %.0f | %.1f | %.1f | %.1f | %.2f | %.2f |\n", n, opt.agents - n,
	       wall, n / wall, n ? pct_sorted(ms, n, 0.50) : 0, n ? pct_sorted(ms, n, 0.99) : 0,
	       n ? ms[n - 1] : 0, cpu, n ? cpu * 1e3 / n : 0);
	free(ms);
}

static void enroll_all(void)
{
	enroll_ctx = client_ctx(NULL, NULL, true);
	pthread_t *th = calloc((size_t)opt.enroll_threads, sizeof(*th));
	if (!th)
		die("%s", "out of memory");
	double c0 = cpu_seconds(&opt.pid), t0 = now_s();
	for (int i = 0; i < opt.enroll_threads; i++)
		if (pthread_create(&th[i], NULL, enroll_main, NULL) != 0)
			die("%s", "pthread_create failed");
	for (int i = 0; i < opt.enroll_threads; i++)
		pthread_join(th[i], NULL);
	double wall = now_s() - t0, cpu = cpu_seconds(&opt.pid) - c0;
	free(th);
	SSL_CTX_free(enroll_ctx);
	report_enroll(wall, cpu);
	if (atomic_load(&enroll_failed))
		die("%s", "some enrollments failed: heartbeats need every agent");
}

/* Each enrolled agent's key and certificate in a TLS context of its own. */
static void load_identities(void)
{
	for (int i = 0; i < opt.agents; i++) {
		struct agent *a = &agents[i];
		FILE *f = fopen(a->key_path, "r");
		a->key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
		if (f)
			fclose(f);
		if (!a->key)
			die("cannot read %s", a->key_path);
		a->ctx = client_ctx(a->cert, a->key, false);
	}
}

/* ---- 3. heartbeats: one epoll loop per thread ---------------------------- */

/*
 * A connection's states. C_IDLE: no connection, to be (re)opened at once.
 * C_WAIT (paced runs): idle until `due`, with or without an open connection.
 */
enum cstate { C_IDLE, C_WAIT, C_CONNECTING, C_HANDSHAKE, C_WRITE, C_READ };

struct worker;

struct hconn {
	struct worker *w;
	enum cstate st;
	int fd, agent;
	SSL *ssl;
	double t0, due; /* start of the current heartbeat; when the next one is due */
	struct resp *r;
};

struct worker {
	pthread_t th;
	int ep, n, idle;
	struct hconn *conns;
	uint32_t *hist;
	uint64_t done, bad_status, errors;
	char first_error[160];
};

static struct {
	const struct hostport *hp;
	bool fresh;    /* a new connection (full handshake) per heartbeat */
	double period; /* paced: one heartbeat per connection every period s; 0: back to back */
	int nconns;
	char *req;
	size_t reqlen;
	atomic_int phase; /* 0 warm-up, 1 measuring, 2 stop */
} run;

static void conn_error(struct hconn *c, const char *what)
{
	struct worker *w = c->w;
	if (atomic_load(&run.phase) == 1)
		w->errors++;
	if (!w->first_error[0]) {
		unsigned long e = ERR_peek_last_error();
		char es[120] = "";
		if (e)
			ERR_error_string_n(e, es, sizeof(es));
		snprintf(w->first_error, sizeof(w->first_error), "%s %s", what, es);
	}
	ERR_clear_error();
}

static void conn_close(struct hconn *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl); /* sends close_notify; does not wait for the answer */
		SSL_free(c->ssl);
		c->ssl = NULL;
		ERR_clear_error();
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->st = C_IDLE;
	c->w->idle++;
}

/*
 * A new connection with c's next agent identity (connection i uses agents i,
 * i + C, i + 2C, … so that every agent shows up). The caller steps it.
 */
static void conn_start(struct hconn *c)
{
	int a = c->agent;
	c->agent = (a + run.nconns) % opt.agents;
	c->w->idle--;
	c->t0 = now_s();
	int rc = tcp_socket(run.hp, true, &c->fd);
	if (rc < 0) {
		c->fd = -1;
		conn_error(c, strerror(-rc));
		c->st = C_IDLE;
		c->w->idle++;
		return;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				 .data.ptr = c};
	if (epoll_ctl(c->w->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	c->ssl = tls_new(agents[a].ctx, c->fd, run.hp);
	c->st = rc == 0 ? C_HANDSHAKE : C_CONNECTING;
}

static void conn_fail(struct hconn *c, const char *what)
{
	conn_error(c, what);
	conn_close(c);
}

static void record(struct worker *w, double secs, int status)
{
	if (atomic_load(&run.phase) != 1)
		return;
	uint64_t us = (uint64_t)(secs * 1e6);
	w->hist[us < HIST_US ? us : HIST_US - 1]++;
	w->done++;
	if (status != 200)
		w->bad_status++;
}

/* An answer is complete: the next heartbeat on this connection or a new one. */
static void conn_done(struct hconn *c)
{
	double t = now_s();
	record(c->w, t - c->t0, c->r->status);
	bool reconnect = run.fresh || c->r->close;
	if (run.period > 0) {
		c->due += run.period;
		if (c->due < t) /* late: go on from now, without a burst */
			c->due = t;
	}
	if (reconnect)
		conn_close(c);
	if (run.period > 0 && (!reconnect || run.fresh)) {
		if (c->st == C_IDLE)
			c->w->idle--;
		c->st = C_WAIT;
	} else if (reconnect && atomic_load(&run.phase) < 2) {
		conn_start(c);
	} else if (!reconnect) {
		c->t0 = t;
		c->st = C_WRITE;
	}
}

/* SSL call result: 1 go on, 0 wait for the socket, -1 failed. */
static int ssl_result(struct hconn *c, int rc, const char *what)
{
	if (rc > 0)
		return 1;
	int e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	conn_fail(c, what);
	return -1;
}

static int step_connecting(struct hconn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		conn_fail(c, err ? strerror(err) : "connect");
		return -1;
	}
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	if (getpeername(c->fd, (struct sockaddr *)&peer, &plen) < 0) {
		if (errno == ENOTCONN)
			return 0; /* still connecting: EPOLLOUT will say when */
		conn_fail(c, "connect");
		return -1;
	}
	c->st = C_HANDSHAKE;
	return 1;
}

static int step_handshake(struct hconn *c)
{
	int rc = ssl_result(c, SSL_do_handshake(c->ssl), "handshake");
	if (rc <= 0)
		return rc;
	if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
		conn_fail(c, "server certificate not verified");
		return -1;
	}
	/* A paced keep-alive connection opens early and sends when its beat is due. */
	if (run.period > 0 && now_s() < c->due) {
		c->st = C_WAIT;
		return 0;
	}
	c->st = C_WRITE;
	return 1;
}

static int step_write(struct hconn *c)
{
	int rc = ssl_result(c, SSL_write(c->ssl, run.req, (int)run.reqlen), "write");
	if (rc <= 0)
		return rc;
	resp_reset(c->r);
	c->st = C_READ;
	return 1;
}

static int step_read(struct hconn *c)
{
	struct resp *r = c->r;
	int n = SSL_read(c->ssl, r->buf + r->len, (int)(r->cap - r->len));
	int rc = ssl_result(c, n, "read");
	if (rc <= 0)
		return rc;
	r->len += (size_t)n;
	rc = resp_check(r);
	if (rc < 0) {
		conn_fail(c, "malformed answer");
		return -1;
	}
	if (rc == 1)
		conn_done(c);
	return 1;
}

/* Runs c's state machine until it must wait for its socket or its time. */
static void conn_step(struct hconn *c)
{
	int rc = 1;
	while (rc > 0) {
		switch (c->st) {
		case C_CONNECTING: rc = step_connecting(c); break;
		case C_HANDSHAKE: rc = step_handshake(c); break;
		case C_WRITE: rc = step_write(c); break;
		case C_READ: rc = step_read(c); break;
		case C_IDLE:
		case C_WAIT: return;
		}
	}
}

static void restart_idle(struct worker *w)
{
	for (int i = 0; i < w->n && atomic_load(&run.phase) < 2; i++) {
		struct hconn *c = &w->conns[i];
		if (c->st != C_IDLE)
			continue;
		conn_start(c);
		conn_step(c);
	}
}

/* Paced runs: starts the heartbeats that are due; returns ms until the next one. */
static int wake_due(struct worker *w)
{
	double t = now_s(), next = t + 0.1;
	for (int i = 0; i < w->n; i++) {
		struct hconn *c = &w->conns[i];
		if (c->st != C_WAIT)
			continue;
		if (c->due > t) {
			next = c->due < next ? c->due : next;
			continue;
		}
		if (c->fd < 0) {
			c->w->idle++; /* conn_start takes it off the idle count again */
			conn_start(c);
		} else {
			c->t0 = t;
			c->st = C_WRITE;
		}
		conn_step(c);
	}
	int ms = (int)((next - now_s()) * 1e3);
	return ms < 0 ? 0 : ms;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[256];
	restart_idle(w);
	while (atomic_load(&run.phase) < 2) {
		int timeout = run.period > 0 ? wake_due(w) : 100;
		if (w->idle)
			timeout = timeout < 10 ? timeout : 10;
		int n = epoll_wait(w->ep, ev, 256, timeout);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++)
			conn_step(ev[i].data.ptr);
		if (w->idle)
			restart_idle(w);
	}
	for (int i = 0; i < w->n; i++)
		if (w->conns[i].fd >= 0)
			conn_close(&w->conns[i]);
	return NULL;
}

/*
 * n connections, global indexes first… Paced runs spread the first beats
 * evenly over one period; a paced new-handshake connection opens only then.
 */
static void worker_init(struct worker *w, int first, int n)
{
	double t = now_s();
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	w->n = w->idle = n;
	w->conns = calloc((size_t)n, sizeof(*w->conns));
	w->hist = calloc(HIST_US, sizeof(*w->hist));
	if (w->ep < 0 || !w->conns || !w->hist)
		die("%s", "out of memory");
	for (int i = 0; i < n; i++) {
		struct hconn *c = &w->conns[i];
		*c = (struct hconn){.w = w, .fd = -1, .st = C_IDLE, .r = resp_new(BEAT_RESP_MAX)};
		c->agent = (first + i) % opt.agents;
		c->due = t + run.period * ((first + i) + 0.5) / run.nconns;
		if (run.period > 0 && run.fresh) {
			c->st = C_WAIT;
			w->idle--;
		}
	}
}

static void worker_done(struct worker *w)
{
	for (int i = 0; i < w->n; i++)
		resp_free(w->conns[i].r);
	close(w->ep);
	free(w->conns);
	free(w->hist);
}

static void sleep_s(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s,
			      .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

struct result {
	bool ran;
	int conns;
	uint64_t n, bad, errors;
	double secs, cpu, client_cpu, p50, p99;
	long rss0, rss1;
	char first_error[160];
};

/* Latency percentile (ms) of the merged histogram. */
static double hist_pct(const uint64_t *h, uint64_t n, double p)
{
	uint64_t want = (uint64_t)(p * (double)n + 0.999999), sum = 0;
	for (size_t us = 0; us < HIST_US; us++) {
		sum += h[us];
		if (sum >= want && sum)
			return (double)us / 1e3;
	}
	return (double)HIST_US / 1e3;
}

static void merge(struct worker *w, int nw, struct result *res)
{
	uint64_t *h = calloc(HIST_US, sizeof(*h));
	if (!h)
		die("%s", "out of memory");
	for (int t = 0; t < nw; t++) {
		for (size_t us = 0; us < HIST_US; us++)
			h[us] += w[t].hist[us];
		res->n += w[t].done;
		res->bad += w[t].bad_status;
		res->errors += w[t].errors;
		if (!res->first_error[0] && w[t].first_error[0])
			memcpy(res->first_error, w[t].first_error, sizeof(res->first_error));
	}
	res->p50 = hist_pct(h, res->n, 0.50);
	res->p99 = hist_pct(h, res->n, 0.99);
	free(h);
}

/* Starts the workers, waits out the warm-up, measures opt.seconds, stops them. */
static void measure(struct worker *w, int nw, const struct pids *pids, double warmup,
		    struct result *res)
{
	for (int t = 0; t < nw; t++)
		if (pthread_create(&w[t].th, NULL, worker_main, &w[t]) != 0)
			die("%s", "pthread_create failed");
	sleep_s(warmup);
	double c0 = cpu_seconds(pids), s0 = self_cpu_seconds(), t0 = now_s();
	res->rss0 = rss_kib(pids);
	atomic_store(&run.phase, 1);
	sleep_s(opt.seconds);
	atomic_store(&run.phase, 2);
	res->secs = now_s() - t0;
	res->cpu = cpu_seconds(pids) - c0;
	res->client_cpu = self_cpu_seconds() - s0;
	res->rss1 = rss_kib(pids);
	for (int t = 0; t < nw; t++)
		pthread_join(w[t].th, NULL);
}

/*
 * Heartbeats from nconns connections for opt.seconds after a warm-up: back to
 * back (period 0) or one per connection every period seconds.
 */
static struct result heartbeats(const struct hostport *hp, const struct pids *pids, bool fresh,
				int nconns, double period)
{
	struct result res = {.ran = true, .conns = nconns};
	run.hp = hp;
	run.fresh = fresh;
	run.period = period;
	run.nconns = nconns;
	run.req = request_new("POST", "/agent/v1/status", hp, NULL, heartbeat_body, &run.reqlen);
	atomic_store(&run.phase, 0);
	int nw = opt.threads < nconns ? opt.threads : nconns;
	struct worker *w = calloc((size_t)nw, sizeof(*w));
	if (!w)
		die("%s", "out of memory");
	for (int t = 0; t < nw; t++) {
		int first = t * nconns / nw;
		worker_init(&w[t], first, (t + 1) * nconns / nw - first);
	}
	/* A paced run warms up for one period plus a second: every connection open and beating. */
	measure(w, nw, pids, period > 0 ? period + 1 : opt.warmup, &res);
	merge(w, nw, &res);
	for (int t = 0; t < nw; t++)
		worker_done(&w[t]);
	free(w);
	free(run.req);
	return res;
}

/* One heartbeat with agent 0's identity: checks the server and names its TLS. */
static void probe(const char *name, const struct hostport *hp, char *tls, size_t tlslen)
{
	struct bconn c;
	struct resp *r = resp_new(RESP_MAX);
	if (bconn_open(&c, agents[0].ctx, hp) < 0)
		die("cannot open a mutual-TLS connection to %s", name);
	int g = SSL_get_negotiated_group(c.ssl);
	const char *group = SSL_group_to_name(c.ssl, g);
	snprintf(tls, tlslen, "%s %s, group %s", SSL_get_version(c.ssl), SSL_get_cipher_name(c.ssl),
		 group ? group : "?");
	size_t len;
	char *req = request_new("POST", "/agent/v1/status", hp, NULL, heartbeat_body, &len);
	if (bconn_call(&c, req, len, r) < 0 || r->status != 200 ||
	    !strstr(resp_body(r), "\"heartbeat_interval_s\""))
		die("%s does not answer a heartbeat with 200 {\"heartbeat_interval_s\": …}", name);
	free(req);
	bconn_close(&c);
	resp_free(r);
}

/* ---- report ------------------------------------------------------------- */

enum { KEEP, FRESH, PACED_KEEP, PACED_FRESH, NMODES };
static const char *const mode_name[NMODES] = {"keep-alive", "new handshake", "keep-alive",
					      "new handshake"};

static double rate(const struct result *r)
{
	return (double)r->n / r->secs;
}

static double cost_us(const struct result *r)
{
	return r->n ? r->cpu * 1e6 / (double)r->n : 0;
}

static double cpu_pct(const struct result *r)
{
	return 100 * r->cpu / r->secs;
}

/* CPU % of one core for GOAL_AGENTS agents at one heartbeat per GOAL_PERIOD_S. */
static double projected_pct(const struct result *r)
{
	return cost_us(r) * GOAL_AGENTS / GOAL_PERIOD_S / 1e6 * 100;
}

static void print_row(int m, const char *server, const struct result *r)
{
	if (!r->ran)
		return;
	printf("| %-13s | %-9s | %5d | %8.0f | %7.2f | %7.2f | %5.1f %% | %5.1f %% | %7.1f | "
	       "%6.2f %% | %6.1f | %llu |\n",
	       mode_name[m], server, r->conns, rate(r), r->p50, r->p99, cpu_pct(r),
	       100 * r->client_cpu / r->secs, cost_us(r), projected_pct(r), r->rss1 / 1024.0,
	       (unsigned long long)(r->bad + r->errors));
	if (r->first_error[0])
		fprintf(stderr, "agent-bench: %s %s: first error: %s\n", mode_name[m], server,
			r->first_error);
}

static void print_table(const char *title, int m0, const struct result res[NMODES][2])
{
	printf("\n### %s\n\n", title);
	printf("| connection    | server    | conns | beats/s  | p50 ms  | p99 ms  | srv CPU | "
	       "gen CPU | CPU µs/beat | 1k agents @5 s | RSS MiB | errors |\n");
	printf("|---------------|-----------|------:|---------:|--------:|--------:|--------:|"
	       "--------:|--------:|---------:|--------:|---:|\n");
	for (int m = m0; m < m0 + 2; m++) {
		print_row(m, "odysseusd", &res[m][0]);
		print_row(m, "nginx", &res[m][1]);
	}
}

/*
 * A back-to-back run should keep the server's core or the load generator's
 * busy; when neither is, other processes had the CPUs and the rates of that
 * run say little (its CPU µs per heartbeat still holds).
 */
static void note_contention(const struct result res[NMODES][2])
{
	for (int m = KEEP; m <= FRESH; m++)
		for (int s = 0; s < 2; s++) {
			const struct result *r = &res[m][s];
			double gen = 100 * r->client_cpu / r->secs;
			if (!r->ran || cpu_pct(r) >= 80 || gen >= 80)
				continue;
			printf(
			    "\nnote: in the back-to-back runs a server used %.0f %% of its core "
			    "and the "
			    "load generator %.0f %% of its own: other processes had the CPUs, so "
			    "beats/s and latencies are low and the throughput ratios noisy; CPU "
			    "µs/beat still holds\n",
			    cpu_pct(r), gen);
			return;
		}
}

static void print_tables(const struct result res[NMODES][2])
{
	char t[300];
	snprintf(t, sizeof(t),
		 "Heartbeats back to back: %d connections over %d agent identities, "
		 "%d client thread(s), %.0f s after %.0f s warm-up",
		 opt.connections, opt.agents, opt.threads, opt.seconds, opt.warmup);
	print_table(t, KEEP, res);
	note_contention(res);
	if (res[PACED_KEEP][0].ran) {
		snprintf(t, sizeof(t),
			 "Paced: %d agents (connections over %d identities), one heartbeat each "
			 "every %.0f s, %.0f s after %.0f s warm-up",
			 opt.paced, opt.agents, opt.period, opt.seconds, opt.period + 1);
		print_table(t, PACED_KEEP, res);
	}
	printf("\nsrv CPU / gen CPU: server / load generator user+system time, %% of one core "
	       "(the load generator's includes its TLS); 1k agents @5 s = %d heartbeats/s × "
	       "CPU µs/beat, in %% of one core; RSS: the server's (nginx: its worker's) at the end "
	       "of the run, connections still open\n",
	       GOAL_AGENTS / GOAL_PERIOD_S);
}

static void print_ratios(const struct result res[NMODES][2])
{
	printf("\nodysseusd ÷ nginx:\n");
	for (int m = 0; m < NMODES; m++) {
		const struct result *o = &res[m][0], *n = &res[m][1];
		if (!o->ran || !n->ran)
			continue;
		printf("  %-6s %-13s  throughput %.2f×, CPU per heartbeat %.2f×\n",
		       m < PACED_KEEP ? "" : "paced", mode_name[m],
		       rate(n) > 0 ? rate(o) / rate(n) : 0,
		       cost_us(n) > 0 ? cost_us(o) / cost_us(n) : 0);
	}
}

static void goal_line(const char *what, double pct)
{
	printf("\n1,000 agents at 5 s: %.2f %% of one core (goal < %.0f %%) — %s\n", pct, GOAL_PCT,
	       pct < GOAL_PCT ? "met" : "NOT MET");
	printf("  %s\n", what);
}

static void print_goal(const struct result res[NMODES][2])
{
	double ka = projected_pct(&res[KEEP][0]), nh = projected_pct(&res[FRESH][0]);
	const struct result *pk = &res[PACED_KEEP][0], *pf = &res[PACED_FRESH][0];
	double scale = (double)GOAL_AGENTS / opt.paced * opt.period / GOAL_PERIOD_S;
	if (pk->ran) {
		goal_line("measured: paced keep-alive agents, as odysseus-agent runs",
			  cpu_pct(pk) * scale);
		printf("  with a new TLS handshake per heartbeat, measured: %.2f %%\n",
		       cpu_pct(pf) * scale);
		printf("  projected from the back-to-back cost (200 × CPU µs/beat): %.2f %% "
		       "keep-alive, "
		       "%.2f %% new handshake\n",
		       ka, nh);
	} else {
		goal_line("projected from the back-to-back keep-alive cost (200 × CPU µs/beat)",
			  ka);
		printf("  with a new TLS handshake per heartbeat, projected: %.2f %%\n", nh);
	}
	for (int m = 0; m < NMODES; m++)
		for (int s = 0; s < 2; s++)
			if (res[m][s].bad + res[m][s].errors) {
				printf("WARNING: runs with errors above: their numbers are not a "
				       "measurement\n");
				return;
			}
}

/* ---- main --------------------------------------------------------------- */

static void run_all(struct result res[NMODES][2])
{
	for (int m = 0; m < NMODES; m++) {
		bool paced = m >= PACED_KEEP, fresh = m == FRESH || m == PACED_FRESH;
		if (paced && !opt.paced)
			break;
		int nconns = paced ? opt.paced : opt.connections;
		double period = paced ? opt.period : 0;
		fprintf(stderr, "agent-bench: heartbeats, %s%s: odysseusd\n",
			paced ? "paced, " : "", mode_name[m]);
		res[m][0] = heartbeats(&opt.agent, &opt.pid, fresh, nconns, period);
		if (!opt.have_peer)
			continue;
		fprintf(stderr, "agent-bench: heartbeats, %s%s: nginx\n", paced ? "paced, " : "",
			mode_name[m]);
		res[m][1] = heartbeats(&opt.peer, &opt.peer_pids, fresh, nconns, period);
	}
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv);
	agents = calloc((size_t)opt.agents, sizeof(*agents));
	if (!agents)
		die("%s", "out of memory");
	fprintf(stderr, "agent-bench: %d enrollment tokens\n", opt.agents);
	create_tokens();
	make_keys();
	fprintf(stderr, "agent-bench: %d agents enroll\n", opt.agents);
	enroll_all();
	load_identities();

	char tls_o[128], tls_n[128] = "";
	probe("odysseusd", &opt.agent, tls_o, sizeof(tls_o));
	if (opt.have_peer)
		probe("nginx", &opt.peer, tls_n, sizeof(tls_n));
	printf("\nTLS odysseusd: %s\n", tls_o);
	if (opt.have_peer)
		printf("TLS nginx:     %s\n", tls_n);

	static struct result res[NMODES][2];
	run_all(res);
	print_tables(res);
	if (opt.have_peer)
		print_ratios(res);
	print_goal(res);
	check_inventory();
	free(access_token);
	for (int i = 0; i < opt.agents; i++) {
		free(agents[i].csr);
		free(agents[i].token);
		X509_free(agents[i].cert);
		EVP_PKEY_free(agents[i].key);
		SSL_CTX_free(agents[i].ctx);
	}
	free(agents);
	return 0;
}
