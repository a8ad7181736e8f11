/*
 * test-agent.c — odysseus-agent's parts: token and URL parsing, the
 * /proc parsers and the CPU share, backoff bounds, the state directory's
 * permission checks, crash recovery of a certificate swap, CA pinning
 * against a real TLS server (right, wrong and foreign CA, a chain without
 * the CA), and enroll and run end to end against a small fake agent API
 * that speaks TLS and HTTP/1.1 in a thread (ALPN, mTLS, renewal,
 * revocation, SIGTERM).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "agent/agent.h"
#include "agent/client.h"
#include "agent/enroll.h"
#include "agent/pin.h"
#include "agent/run.h"
#include "agent/sample.h"
#include "agent/state.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/x509.h"
#include "tmpdir.h"

#define NODE_ID "nod_0123456789abcdef0123456789abcdef"
#define FP_A	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SECRET	"0123456789abcdef01234567" /* id */ FP_A

struct ctx {
	char dir[64];
	char pki[96];
	char state[96];
	struct x509_ca *ca;
	char fp[65]; /* the CA's fingerprint */
	char token[200];
};

/* ---- helpers ------------------------------------------------------------ */

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	if (tmpdir_make(c->dir, sizeof(c->dir), "agent") != 0)
		return -1;
	snprintf(c->pki, sizeof(c->pki), "%s/pki", c->dir);
	snprintf(c->state, sizeof(c->state), "%s/state", c->dir);
	if (x509_ensure_pki(c->pki) != 0 || x509_ca_load(c->pki, &c->ca) != 0 ||
	    x509_ca_fingerprint(c->ca, c->fp) != 0)
		return -1;
	snprintf(c->token, sizeof(c->token), "odx-enroll-%s-%s", c->fp, SECRET);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	x509_ca_free(c->ca);
	tmpdir_remove(c->dir);
	free(c);
	return 0;
}

static const char *path_in(const char *dir, const char *name)
{
	static char buf[4][256];
	static int next;
	char *p = buf[next++ % 4];
	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *s = calloc(1, 65536);
	assert_non_null(s);
	size_t n = fread(s, 1, 65535, f);
	fclose(f);
	s[n] = '\0';
	return s;
}

static void spit(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* Makes dir/key_name with a fresh key and returns a certificate for it (caller frees). */
static char *make_pair(struct ctx *c, const char *dir, const char *key_name, int64_t life)
{
	char *csr = NULL, *pem = NULL;
	int64_t na;
	assert_int_equal(x509_make_key_and_csr(path_in(dir, key_name), &csr), 0);
	assert_int_equal(x509_ca_issue_client(c->ca, csr, strlen(csr), NODE_ID, life, &pem, &na),
			 0);
	free(csr);
	return pem;
}

/* ---- token and URL ------------------------------------------------------------ */

static void test_token_parse(void **state)
{
	struct ctx *c = *state;
	struct agent_token t;
	char bad[220];

	assert_int_equal(agent_token_parse(c->token, &t), 0);
	assert_string_equal(t.fingerprint, c->fp);
	assert_string_equal(t.id, "ent_0123456789abcdef01234567");

	const char *wrong[] = {
	    "",
	    "odx-enroll-",
	    "odx-enrol-" FP_A "-" SECRET,
	    "ODX-enroll-" FP_A "-" SECRET,
	    "odx-enroll-" FP_A SECRET,	       /* no '-' between */
	    "odx-enroll-" FP_A "_" SECRET,     /* wrong separator */
	    "odx-enroll-" FP_A "-",	       /* no secret */
	    "odx-enroll--" SECRET,	       /* no fingerprint */
	    "odx-enroll-" FP_A "a-" SECRET,    /* 65 hex */
	    "odx-enroll-" FP_A "-" SECRET "0", /* 89 hex */
	    " odx-enroll-" FP_A "-" SECRET,
	    "odx-enroll-" FP_A "-" SECRET "\n",
	};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++)
		assert_int_equal(agent_token_parse(wrong[i], &t), ODX_EINVAL);
	assert_int_equal(agent_token_parse(NULL, &t), ODX_EINVAL);

	/* Short by one on either side; uppercase and non-hex anywhere. */
	snprintf(bad, sizeof(bad), "odx-enroll-%.63s-%s", c->fp, SECRET);
	assert_int_equal(agent_token_parse(bad, &t), ODX_EINVAL);
	snprintf(bad, sizeof(bad), "odx-enroll-%s-%.87s", c->fp, SECRET);
	assert_int_equal(agent_token_parse(bad, &t), ODX_EINVAL);
	size_t len = strlen(c->token);
	for (size_t i = strlen("odx-enroll-"); i < len; i++) {
		if (c->token[i] == '-')
			continue;
		memcpy(bad, c->token, len + 1);
		bad[i] = 'A';
		assert_int_equal(agent_token_parse(bad, &t), ODX_EINVAL);
		bad[i] = 'g';
		assert_int_equal(agent_token_parse(bad, &t), ODX_EINVAL);
	}
}

static void test_url_parse(void **state)
{
	(void)state;
	struct agent_url u;

	assert_int_equal(agent_url_parse("https://cp.example:8444", &u), 0);
	assert_string_equal(u.base, "https://cp.example:8444");
	assert_string_equal(u.host, "cp.example");
	assert_string_equal(u.port, "8444");
	assert_int_equal(agent_url_parse("HTTPS://127.0.0.1:8444//", &u), 0);
	assert_string_equal(u.base, "https://127.0.0.1:8444");
	assert_int_equal(agent_url_parse("https://[::1]:9", &u), 0);
	assert_string_equal(u.host, "::1");
	assert_string_equal(u.base, "https://[::1]:9");
	assert_int_equal(agent_url_parse("https://cp.example", &u), 0);
	assert_string_equal(u.port, "443");

	const char *wrong[] = {
	    "http://cp:8444",	   "https://",		"https://:8444",
	    "https://cp:0",	   "https://cp:65536",	"https://cp:",
	    "https://cp:84a",	   "https://u@cp:8444", "https://cp:8444/agent",
	    "https://cp:8444?x=1", "https://cp:8444#f", "https://[::1",
	    "https://[nothex]:1",  "https://[::1]x",	"https://c p:1",
	    "https://-cp:1",	   "cp:8444",		"https://cp:8444:1",
	};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++)
		assert_int_equal(agent_url_parse(wrong[i], &u), ODX_EINVAL);
}

/* ---- sampling --------------------------------------------------------------- */

static void test_meminfo(void **state)
{
	(void)state;
	static const char good[] = "MemTotal:       16318480 kB\n"
				   "MemFree:         1021496 kB\n"
				   "MemAvailable:   12000000 kB\n"
				   "Buffers:          500000 kB\n";
	uint64_t total = 1, used = 1;

	assert_int_equal(sample_meminfo_parse(good, strlen(good), &total, &used), 0);
	assert_true(total == 16318480ULL * 1024);
	assert_true(used == (16318480ULL - 12000000ULL) * 1024);

	/* Available above total (it happens under odd accounting): used 0. */
	static const char odd[] = "MemAvailable: 20 kB\nMemTotal: 10 kB\n";
	assert_int_equal(sample_meminfo_parse(odd, strlen(odd), &total, &used), 0);
	assert_true(total == 10240 && used == 0);

	const char *wrong[] = {
	    "MemTotal: 100 kB\n",				       /* no MemAvailable */
	    "MemAvailable: 100 kB\n",				       /* no MemTotal */
	    "MemTotal: 100 kB\nMemAvailable: 50 kB",		       /* cut off */
	    "MemTotal: 100\nMemAvailable: 50 kB\n",		       /* no unit */
	    "MemTotal: 100 MB\nMemAvailable: 50 kB\n",		       /* wrong unit */
	    "MemTotal: -100 kB\nMemAvailable: 50 kB\n",		       /* sign */
	    "MemTotal:  kB\nMemAvailable: 50 kB\n",		       /* no number */
	    "MemTotal: 1 kB x\nMemAvailable: 50 kB\n",		       /* trailing */
	    "MemTotal: 18446744073709551615 kB\nMemAvailable: 1 kB\n", /* * 1024 overflows */
	    "MemTotal: 99999999999999999999 kB\nMemAvailable: 1 kB\n", /* u64 overflows */
	    "MemTotal: 1 kB\nMemTotal: 2 kB\nMemAvailable: 1 kB\n",    /* twice */
	    "",
	};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++)
		assert_int_equal(sample_meminfo_parse(wrong[i], strlen(wrong[i]), &total, &used),
				 ODX_EINVAL);
	/* The length is honoured: the buffer need not be NUL-terminated. */
	assert_int_equal(sample_meminfo_parse(good, 30, &total, &used), ODX_EINVAL);
}

static void test_stat(void **state)
{
	(void)state;
	struct sample_cpu cpu = {0};
	static const char good[] = "cpu  100 5 50 1000 20 3 2 1 7 0\n"
				   "cpu0 50 2 25 500 10 1 1 0 3 0\n"
				   "intr 12345\n";

	assert_int_equal(sample_stat_parse(good, strlen(good), &cpu), 0);
	assert_true(cpu.total == 100 + 5 + 50 + 1000 + 20 + 3 + 2 + 1); /* no guest */
	assert_true(cpu.idle == 1000 + 20);
	static const char old_kernel[] = "cpu 1 2 3 4\n";
	assert_int_equal(sample_stat_parse(old_kernel, strlen(old_kernel), &cpu), 0);
	assert_true(cpu.total == 10 && cpu.idle == 4);

	const char *wrong[] = {
	    "cpu0 1 2 3 4\n",			/* not the aggregate line */
	    "intr 1\ncpu 1 2 3 4\n",		/* not first */
	    "cpu 1 2 3\n",			/* too few */
	    "cpu 1 2 3 4",			/* cut off */
	    "cpu 1 2 x 4\n",			/* not a number */
	    "cpu 1 2 3 4x\n",			/* trailing */
	    "cpu 1 2 3 -4\n",			/* sign */
	    "cpu 99999999999999999999 2 3 4\n", /* u64 overflow */
	    "cpu 18446744073709551615 1 0 0\n", /* sum overflow */
	    "cpu\n",
	    "",
	};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++)
		assert_int_equal(sample_stat_parse(wrong[i], strlen(wrong[i]), &cpu), ODX_EINVAL);
}

static void test_cpu_percent(void **state)
{
	(void)state;
	struct sample_cpu a = {.total = 1000, .idle = 800};
	struct sample_cpu b = {.total = 1200, .idle = 850}; /* 200 ticks, 50 idle: 75 % */

	assert_true(sample_cpu_percent(&a, &b) > 74.999 && sample_cpu_percent(&a, &b) < 75.001);
	struct sample_cpu all_idle = {.total = 1100, .idle = 900};
	assert_true(sample_cpu_percent(&a, &all_idle) == 0.0);
	struct sample_cpu busy = {.total = 1100, .idle = 800};
	assert_true(sample_cpu_percent(&a, &busy) == 100.0);
	/* No time passed, or the counters went back: 0, never negative. */
	assert_true(sample_cpu_percent(&a, &a) == 0.0);
	assert_true(sample_cpu_percent(&b, &a) == 0.0);
	struct sample_cpu idle_back = {.total = 1300, .idle = 700};
	assert_true(sample_cpu_percent(&a, &idle_back) == 0.0);
}

static void test_sample_collect(void **state)
{
	struct ctx *c = *state;
	struct sample s = {0};
	struct sample_cpu prev = {0};

	snprintf(s.docker_root, sizeof(s.docker_root), "%s", c->dir);
	assert_int_equal(sample_collect(&s, &prev), 0);
	assert_true(s.cpus >= 1);
	assert_true(s.mem_total > 0 && s.mem_used <= s.mem_total);
	assert_true(s.disk_total > 0 && s.disk_used <= s.disk_total);
	assert_true(s.cpu_percent == 0.0); /* the first sample */
	assert_true(prev.total > 0);
	assert_int_equal(sample_collect(&s, &prev), 0);
	assert_true(s.cpu_percent >= 0.0 && s.cpu_percent <= 100.0);

	/* No Docker at that socket. */
	char root[SAMPLE_PATH_MAX];
	assert_int_equal(sample_docker_root(path_in(c->dir, "no.sock"), NULL, root), ODX_EIO);
}

/* ---- backoff ---------------------------------------------------------------- */

static void test_backoff(void **state)
{
	(void)state;
	struct agent_backoff b = {0}; /* zeroed behaves as reset */
	const int64_t bounds[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
	int64_t max_seen = 0;

	for (int round = 0; round < 200; round++) {
		agent_backoff_reset(&b);
		for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
			int64_t w = agent_backoff_next(&b);
			assert_true(w >= 0 && w <= bounds[i]);
			assert_true(w <= AGENT_BACKOFF_MAX_MS);
			if (i == 7 && w > max_seen)
				max_seen = w;
		}
	}
	/* Full jitter at the cap: spread over [0, 30 s], not pinned to one end. */
	assert_true(max_seen > AGENT_BACKOFF_MAX_MS / 2);
	for (int i = 0; i < 1000; i++)
		assert_true(agent_backoff_next(&b) <= AGENT_BACKOFF_MAX_MS);
	agent_backoff_reset(&b);
	assert_true(agent_backoff_next(&b) <= AGENT_BACKOFF_MIN_MS);
}

/* ---- the state directory ------------------------------------------------------ */

static void test_state_dir(void **state)
{
	struct ctx *c = *state;

	/* Created 0700 when missing (only with create). */
	assert_int_equal(state_open(c->state, false), -ENOENT);
	int fd = state_open(c->state, true);
	assert_true(fd >= 0);
	assert_int_equal(mode_of(c->state), 0700);
	/* Locked: a second agent on the same directory is refused. */
	assert_int_equal(state_open(c->state, false), ODX_EBUSY);
	close(fd);
	fd = state_open(c->state, false);
	assert_true(fd >= 0);
	close(fd);

	/* Any access for group or others is refused. */
	const mode_t modes[] = {0750, 0705, 0710, 0701, 0770, 0777};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(c->state, modes[i]), 0);
		assert_int_equal(state_open(c->state, false), ODX_EFORBIDDEN);
		assert_int_equal(state_open(c->state, true), ODX_EFORBIDDEN);
	}
	assert_int_equal(chmod(c->state, 0700), 0);

	/* A symlink or a file is not a state directory. */
	const char *link = path_in(c->dir, "link");
	assert_int_equal(symlink(c->state, link), 0);
	assert_int_equal(state_open(link, false), -ELOOP);
	spit(path_in(c->dir, "file"), "x");
	assert_int_equal(state_open(path_in(c->dir, "file"), true), -ENOTDIR);

	/* Files are written 0600 and replaced whole. */
	fd = state_open(c->state, false);
	assert_int_equal(state_write(fd, "f", "one", 3), 0);
	assert_int_equal(state_write(fd, "f", "two!", 4), 0);
	assert_int_equal(mode_of(path_in(c->state, "f")), 0600);
	char *s;
	size_t n;
	assert_int_equal(state_read(fd, "f", &s, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(s, "two!");
	state_free(s);
	assert_false(exists(path_in(c->state, "f.tmp")));
	assert_int_equal(state_read(fd, "missing", &s, &n), -ENOENT);
	close(fd);
}

/* ---- crash recovery --------------------------------------------------------------- */

struct pair_files {
	char *old_cert, *old_key, *new_cert, *new_key;
};

/* node.key/node.crt (the old pair) and node.key.new/node.crt.new (the new one). */
static void make_swap(struct ctx *c, struct pair_files *p)
{
	int fd = state_open(c->state, true);
	assert_true(fd >= 0);
	close(fd);
	p->old_cert = make_pair(c, c->state, STATE_KEY, 3600);
	spit(path_in(c->state, STATE_CERT), p->old_cert);
	p->new_cert = make_pair(c, c->state, STATE_KEY_NEW, 3600);
	spit(path_in(c->state, STATE_CERT_NEW), p->new_cert);
	p->old_key = slurp(path_in(c->state, STATE_KEY));
	p->new_key = slurp(path_in(c->state, STATE_KEY_NEW));
}

static void pair_files_done(struct pair_files *p)
{
	free(p->old_cert);
	free(p->old_key);
	free(p->new_cert);
	free(p->new_key);
}

static void expect_pair(struct ctx *c, const char *cert, const char *key)
{
	char *have_cert = slurp(path_in(c->state, STATE_CERT));
	char *have_key = slurp(path_in(c->state, STATE_KEY));
	assert_string_equal(have_cert, cert);
	assert_string_equal(have_key, key);
	assert_int_equal(state_pair_matches(have_cert, have_key), 1);
	assert_false(exists(path_in(c->state, STATE_KEY_NEW)));
	assert_false(exists(path_in(c->state, STATE_CERT_NEW)));
	free(have_cert);
	free(have_key);
}

static void recover(struct ctx *c, const char *expect_what)
{
	const char *what = "untouched";
	int fd = state_open(c->state, false);
	assert_true(fd >= 0);
	assert_int_equal(state_recover(fd, &what), 0);
	if (expect_what == NULL)
		assert_null(what);
	else
		assert_non_null(strstr(what, expect_what));
	close(fd);
}

static void test_recover_both_new(void **state)
{
	struct ctx *c = *state;
	struct pair_files p;

	make_swap(c, &p);
	assert_int_equal(state_pair_matches(p.new_cert, p.old_key), 0);
	recover(c, "finished");
	expect_pair(c, p.new_cert, p.new_key);
	recover(c, NULL); /* nothing left to do */
	pair_files_done(&p);
}

static void test_recover_key_renamed(void **state)
{
	struct ctx *c = *state;
	struct pair_files p;

	/* The crash came between the two renames. */
	make_swap(c, &p);
	assert_int_equal(rename(path_in(c->state, STATE_KEY_NEW), path_in(c->state, STATE_KEY)), 0);
	recover(c, "finished");
	expect_pair(c, p.new_cert, p.new_key);
	pair_files_done(&p);
}

static void test_recover_key_only(void **state)
{
	struct ctx *c = *state;
	struct pair_files p;

	/* The crash came before the certificate arrived. */
	make_swap(c, &p);
	assert_int_equal(unlink(path_in(c->state, STATE_CERT_NEW)), 0);
	recover(c, "discarded");
	expect_pair(c, p.old_cert, p.old_key);
	pair_files_done(&p);
}

static void test_recover_mismatch(void **state)
{
	struct ctx *c = *state;
	struct pair_files p;

	/* A certificate that is not for the new key: both go, the old pair stays. */
	make_swap(c, &p);
	spit(path_in(c->state, STATE_CERT_NEW), p.old_cert);
	assert_int_equal(unlink(path_in(c->state, STATE_KEY)), 0);
	spit(path_in(c->state, STATE_KEY), p.old_key);
	recover(c, "discarded");
	expect_pair(c, p.old_cert, p.old_key);

	/* A lone certificate that does not match node.key: dropped. */
	spit(path_in(c->state, STATE_CERT_NEW), p.new_cert);
	recover(c, "discarded");
	expect_pair(c, p.old_cert, p.old_key);

	/* Garbage in node.crt.new is no match either. */
	spit(path_in(c->state, STATE_CERT_NEW), "not a certificate\n");
	recover(c, "discarded");
	expect_pair(c, p.old_cert, p.old_key);
	pair_files_done(&p);
}

static void test_cert_helpers(void **state)
{
	struct ctx *c = *state;
	int fd = state_open(c->state, true);
	assert_true(fd >= 0);
	close(fd);
	char *cert = make_pair(c, c->state, STATE_KEY, 600);
	int64_t nb, na, now = time_now_ns() / NSEC_PER_SEC;

	assert_int_equal(state_cert_times(cert, strlen(cert), &nb, &na), 0);
	assert_true(nb <= now - 50 && nb >= now - 70); /* issued 60 s in the past */
	assert_true(na >= now + 590 && na <= now + 610);
	assert_true(state_cert_names(cert, NODE_ID));
	assert_false(state_cert_names(cert, "nod_other"));
	assert_int_equal(state_count_certs(cert), 1);
	char *bundle = NULL;
	assert_int_equal(x509_ca_bundle_pem(c->ca, &bundle), 0);
	assert_int_equal(state_count_certs(bundle), 1);
	assert_int_equal(state_count_certs("junk"), 0);
	assert_int_equal(state_pair_matches("junk", "junk"), ODX_EINVAL);
	free(bundle);
	free(cert);
}

/* ---- a TLS server in a thread --------------------------------------------------- */

enum chain { CHAIN_FULL, CHAIN_LEAF, CHAIN_FOREIGN };

struct srv {
	struct ctx *c;
	SSL_CTX *ctx;
	int lfd, port;
	pthread_t th;
	bool require_alpn;   /* refuse a handshake without odysseus-enroll/1 */
	int enroll_status;   /* 201 or 401 */
	int64_t enroll_life; /* lifetime of the enrolled certificate */
	atomic_bool stop, revoked;
	atomic_int handshakes, refused, requests, enrolls, statuses, polls, renews;
	atomic_int enroll_without_alpn, status_without_cert;
	pthread_mutex_t mu;
	json_t *last_status;
};

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char want[] = "\x11" PIN_ALPN;
	struct srv *s = arg;
	(void)ssl;
	if (SSL_select_next_proto((unsigned char **)out, outlen, want, sizeof(want) - 1, in,
				  inlen) == OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_OK;
	return s->require_alpn ? SSL_TLSEXT_ERR_ALERT_FATAL : SSL_TLSEXT_ERR_NOACK;
}

static X509 *first_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	assert_non_null(x);
	fclose(f);
	return x;
}

static SSL_CTX *server_ctx(struct srv *s, enum chain chain, const char *foreign_pki)
{
	struct ctx *c = s->c;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	X509_STORE *clients = NULL;
	assert_non_null(ctx);
	/* Only the chain set here goes out; OpenSSL must not build one itself. */
	SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
	if (chain == CHAIN_FULL) {
		assert_int_equal(
		    SSL_CTX_use_certificate_chain_file(ctx, path_in(c->pki, "server.crt")), 1);
	} else {
		X509 *leaf = first_cert(path_in(c->pki, "server.crt"));
		assert_int_equal(SSL_CTX_use_certificate(ctx, leaf), 1);
		X509_free(leaf);
		if (chain == CHAIN_FOREIGN) {
			X509 *other = first_cert(path_in(foreign_pki, "ca.crt"));
			assert_int_equal(SSL_CTX_add1_chain_cert(ctx, other), 1);
			X509_free(other);
		}
	}
	assert_int_equal(
	    SSL_CTX_use_PrivateKey_file(ctx, path_in(c->pki, "server.key"), SSL_FILETYPE_PEM), 1);
	/* Client certificates asked for, checked, but optional (enrollment has none). */
	assert_int_equal(x509_ca_client_store(c->ca, &clients), 0);
	assert_int_equal(SSL_CTX_set1_verify_cert_store(ctx, clients), 1);
	X509_STORE_free(clients);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, s);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	return ctx;
}

/* Reads one HTTP/1.1 request. Returns its length (0: the peer closed first), or -1. */
static int read_request(SSL *ssl, char *buf, size_t cap, char **body, size_t *body_len)
{
	size_t n = 0;
	char *end = NULL;

	while (end == NULL) {
		if (n + 1 >= cap)
			return -1;
		int r = SSL_read(ssl, buf + n, (int)(cap - 1 - n));
		if (r <= 0)
			return n == 0 ? 0 : -1;
		n += (size_t)r;
		buf[n] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	int64_t len = 0;
	char *cl = strcasestr(buf, "\r\ncontent-length:");
	if (cl != NULL && cl < end) {
		char digits[16];
		cl += strlen("\r\ncontent-length:");
		while (*cl == ' ')
			cl++;
		size_t d = strspn(cl, "0123456789");
		if (d == 0 || d >= sizeof(digits))
			return -1;
		memcpy(digits, cl, d);
		digits[d] = '\0';
		if (parse_int64(digits, 0, (int64_t)cap / 2, &len) < 0)
			return -1;
	}
	*body = end + 4;
	while ((size_t)(buf + n - *body) < (size_t)len) {
		if (n + 1 >= cap)
			return -1;
		int r = SSL_read(ssl, buf + n, (int)(cap - 1 - n));
		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = '\0';
	}
	*body_len = (size_t)len;
	return (int)n;
}

static void respond(SSL *ssl, int status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	char head[256];
	if (text == NULL) {
		json_decref(body);
		return; /* no asserts off the test's thread */
	}
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, strlen(text));
	SSL_write(ssl, head, n);
	SSL_write(ssl, text, (int)strlen(text));
	free(text);
	json_decref(body);
}

static json_t *error_body(const char *msg)
{
	return json_pack("{s:{s:s, s:s}}", "error", "code", "unauthorized", "message", msg);
}

/* Issues a certificate for the CSR in req's "csr", as the control plane does. */
static json_t *issue(struct srv *s, json_t *req, int64_t life, int *status)
{
	const char *csr = json_string_value(json_object_get(req, "csr"));
	char *cert = NULL, *bundle = NULL;
	int64_t na;
	if (csr == NULL ||
	    x509_ca_issue_client(s->c->ca, csr, strlen(csr), NODE_ID, life, &cert, &na) != 0 ||
	    x509_ca_bundle_pem(s->c->ca, &bundle) != 0) {
		*status = 400;
		free(cert);
		return error_body("bad csr");
	}
	json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "node_id", NODE_ID, "name",
				"web-1", "certificate", cert, "ca_bundle", bundle, "not_after",
				"2030-01-01T00:00:00Z", "heartbeat_interval_s", 1);
	free(cert);
	free(bundle);
	*status = s->enroll_status;
	return out;
}

static json_t *handle(struct srv *s, SSL *ssl, const char *method, const char *path, json_t *req,
		      int *status)
{
	const unsigned char *proto;
	unsigned int plen;
	char node[X509_NODE_ID_MAX + 1] = "";
	X509 *peer = SSL_get0_peer_certificate(ssl);

	SSL_get0_alpn_selected(ssl, &proto, &plen);
	bool enrolling = plen == strlen(PIN_ALPN) && memcmp(proto, PIN_ALPN, plen) == 0;
	if (peer != NULL && SSL_get_verify_result(ssl) == X509_V_OK)
		x509_cert_node_id(peer, node, sizeof(node));
	*status = 200;
	if (strcmp(method, "POST") == 0 && strcmp(path, "/agent/v1/enroll") == 0) {
		atomic_fetch_add(&s->enrolls, 1);
		if (!enrolling) {
			atomic_fetch_add(&s->enroll_without_alpn, 1);
			*status = 401;
			return error_body("enrollment needs ALPN");
		}
		const char *token = json_string_value(json_object_get(req, "token"));
		if (s->enroll_status != 201 || token == NULL || strcmp(token, s->c->token) != 0) {
			*status = 401;
			return error_body("invalid or expired enrollment token");
		}
		return issue(s, req, s->enroll_life, status);
	}
	if (strcmp(node, NODE_ID) != 0) {
		atomic_fetch_add(&s->status_without_cert, 1);
		*status = 401;
		return error_body("unauthorized");
	}
	if (atomic_load(&s->revoked)) {
		*status = 401;
		return error_body("node revoked");
	}
	if (strcmp(path, "/agent/v1/status") == 0) {
		atomic_fetch_add(&s->statuses, 1);
		pthread_mutex_lock(&s->mu);
		json_decref(s->last_status);
		s->last_status = json_incref(req);
		pthread_mutex_unlock(&s->mu);
		return json_pack("{s:i}", "heartbeat_interval_s", 1);
	}
	if (strncmp(path, "/agent/v1/assignments?wait=", 27) == 0) {
		atomic_fetch_add(&s->polls, 1);
		return json_pack("{s:[], s:i}", "assignments", "revision", 7);
	}
	if (strcmp(path, "/agent/v1/renew") == 0) {
		atomic_fetch_add(&s->renews, 1);
		int st;
		json_t *out = issue(s, req, 3600, &st);
		*status = st == 400 ? 400 : 200;
		return out;
	}
	*status = 404;
	return error_body("no such route");
}

static void serve_one(struct srv *s, int fd)
{
	struct timeval tv = {.tv_sec = 5};
	char buf[65536], method[8], path[128], *body;
	size_t body_len = 0;
	SSL *ssl = SSL_new(s->ctx);

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1) {
		atomic_fetch_add(&s->refused, 1);
		goto out;
	}
	atomic_fetch_add(&s->handshakes, 1);
	int n = read_request(ssl, buf, sizeof(buf), &body, &body_len);
	if (n <= 0)
		goto out; /* the pinning connection ends here, with no request */
	atomic_fetch_add(&s->requests, 1);
	if (sscanf(buf, "%7s %127s", method, path) != 2)
		goto out;
	json_t *req = body_len > 0 ? json_loadb(body, body_len, 0, NULL) : NULL;
	int status;
	json_t *answer = handle(s, ssl, method, path, req, &status);
	json_decref(req);
	respond(ssl, status, answer);
	SSL_shutdown(ssl);
out:
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
}

static void *serve(void *arg)
{
	struct srv *s = arg;
	struct pollfd p = {.fd = s->lfd, .events = POLLIN};

	while (!atomic_load(&s->stop)) {
		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept(s->lfd, NULL, NULL);
		if (fd >= 0)
			serve_one(s, fd);
	}
	return NULL;
}

static void srv_start_at(struct srv *s, struct ctx *c, enum chain chain, const char *foreign,
			 in_addr_t addr)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(addr)};
	socklen_t len = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->c = c;
	s->require_alpn = true;
	s->enroll_status = 201;
	s->enroll_life = 3600;
	pthread_mutex_init(&s->mu, NULL);
	s->ctx = server_ctx(s, chain, foreign);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 16), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->th, NULL, serve, s), 0);
}

static void srv_start(struct srv *s, struct ctx *c, enum chain chain, const char *foreign)
{
	srv_start_at(s, c, chain, foreign, INADDR_LOOPBACK);
}

static void srv_stop(struct srv *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
	close(s->lfd);
	SSL_CTX_free(s->ctx);
	json_decref(s->last_status);
	pthread_mutex_destroy(&s->mu);
}

static const char *port_of(const struct srv *s)
{
	static char p[8];
	snprintf(p, sizeof(p), "%d", s->port);
	return p;
}

/* ---- pinning ------------------------------------------------------------------- */

static void test_pin_ok(void **state)
{
	struct ctx *c = *state;
	struct srv s;
	char why[PIN_WHY_LEN], *ca = NULL, fp[65];

	srv_start(&s, c, CHAIN_FULL, NULL);
	assert_int_equal(pin_fetch_ca("127.0.0.1", port_of(&s), c->fp, 5000, &ca, why), 0);
	assert_non_null(ca);
	assert_int_equal(x509_cert_pem_fingerprint(ca, strlen(ca), fp), 0);
	assert_string_equal(fp, c->fp);
	char *want = slurp(path_in(c->pki, "ca.crt"));
	assert_string_equal(ca, want);
	free(want);
	free(ca);
	/* "localhost" is in the server's names too. */
	ca = NULL;
	assert_int_equal(pin_fetch_ca("localhost", port_of(&s), c->fp, 5000, &ca, why), 0);
	free(ca);
	srv_stop(&s);
	/* The handshakes completed (the ALPN was offered) and no request was sent. */
	assert_int_equal(atomic_load(&s.handshakes), 2);
	assert_int_equal(atomic_load(&s.refused), 0);
	assert_int_equal(atomic_load(&s.requests), 0);
}

static void test_pin_wrong_fingerprint(void **state)
{
	struct ctx *c = *state;
	struct srv s;
	char why[PIN_WHY_LEN], *ca = NULL;

	srv_start(&s, c, CHAIN_FULL, NULL);
	assert_int_equal(pin_fetch_ca("127.0.0.1", port_of(&s), FP_A, 5000, &ca, why), ODX_EAUTH);
	assert_null(ca);
	assert_non_null(strstr(why, "fingerprint"));
	srv_stop(&s);
	assert_int_equal(atomic_load(&s.requests), 0);

	/* Right CA, but the certificate does not name this address (127.0.0.2). */
	srv_start_at(&s, c, CHAIN_FULL, NULL, INADDR_LOOPBACK + 1);
	assert_int_equal(pin_fetch_ca("127.0.0.2", port_of(&s), c->fp, 5000, &ca, why), ODX_EAUTH);
	assert_null(ca);
	assert_non_null(strstr(why, "does not verify"));
	srv_stop(&s);
}

static void test_pin_chain_without_ca(void **state)
{
	struct ctx *c = *state;
	struct srv s;
	char why[PIN_WHY_LEN], *ca = NULL;

	srv_start(&s, c, CHAIN_LEAF, NULL);
	assert_int_equal(pin_fetch_ca("127.0.0.1", port_of(&s), c->fp, 5000, &ca, why), ODX_EAUTH);
	assert_null(ca);
	srv_stop(&s);
}

static void test_pin_foreign_ca(void **state)
{
	struct ctx *c = *state;
	struct srv s;
	char why[PIN_WHY_LEN], *ca = NULL, other_fp[65], other[128];

	snprintf(other, sizeof(other), "%s/other-pki", c->dir);

	/* The server sends another CA, and the token names that one: it must not verify. */
	assert_int_equal(x509_ensure_pki(other), 0);
	assert_int_equal(x509_cert_fingerprint(path_in(other, "ca.crt"), other_fp), 0);
	srv_start(&s, c, CHAIN_FOREIGN, other);
	assert_int_equal(pin_fetch_ca("127.0.0.1", port_of(&s), other_fp, 5000, &ca, why),
			 ODX_EAUTH);
	assert_null(ca);
	assert_non_null(strstr(why, "does not verify"));
	/* The leaf itself is no CA to pin. */
	char leaf_fp[65];
	char *leaf = slurp(path_in(c->pki, "server.crt"));
	assert_int_equal(x509_cert_pem_fingerprint(leaf, strlen(leaf), leaf_fp), 0);
	free(leaf);
	assert_int_equal(pin_fetch_ca("127.0.0.1", port_of(&s), leaf_fp, 5000, &ca, why),
			 ODX_EAUTH);
	srv_stop(&s);
}

static void test_pin_no_server(void **state)
{
	struct ctx *c = *state;
	struct srv s;
	char why[PIN_WHY_LEN], *ca = NULL;

	/* A port that was just free: connection refused, not a pin failure. */
	srv_start(&s, c, CHAIN_FULL, NULL);
	srv_stop(&s);
	int rc = pin_fetch_ca("127.0.0.1", port_of(&s), c->fp, 5000, &ca, why);
	assert_int_equal(rc, -ECONNREFUSED);
	assert_non_null(strstr(why, "cannot connect"));
	assert_int_equal(pin_fetch_ca("no-such-host.invalid", "1", c->fp, 5000, &ca, why), ODX_EIO);
}

/* ---- enroll and run against the fake agent API ----------------------------------- */

static int do_enroll(struct ctx *c, const struct srv *s, const char *token, const char *name)
{
	char url[64];
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", s->port);
	struct enroll_opts o = {.server = url, .token = token, .name = name, .state_dir = c->state};
	return enroll_main(&o);
}

static void test_enroll(void **state)
{
	struct ctx *c = *state;
	struct srv s;

	srv_start(&s, c, CHAIN_FULL, NULL);
	assert_int_equal(do_enroll(c, &s, c->token, "web-1"), AGENT_EXIT_OK);
	/* One pinning handshake, one request; curl offered our ALPN. */
	assert_int_equal(atomic_load(&s.handshakes), 2);
	assert_int_equal(atomic_load(&s.requests), 1);
	assert_int_equal(atomic_load(&s.enrolls), 1);
	assert_int_equal(atomic_load(&s.enroll_without_alpn), 0);

	assert_int_equal(mode_of(c->state), 0700);
	const char *files[] = {STATE_AGENT_JSON, STATE_KEY, STATE_CERT, STATE_CA};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(mode_of(path_in(c->state, files[i])), 0600);
	assert_false(exists(path_in(c->state, STATE_KEY_NEW)));
	char *cert = slurp(path_in(c->state, STATE_CERT)),
	     *key = slurp(path_in(c->state, STATE_KEY));
	assert_int_equal(state_pair_matches(cert, key), 1);
	free(cert);
	free(key);
	json_t *cfg = json_load_file(path_in(c->state, STATE_AGENT_JSON), 0, NULL);
	assert_non_null(cfg);
	char want_server[64];
	snprintf(want_server, sizeof(want_server), "https://127.0.0.1:%d", s.port);
	assert_string_equal(json_string_value(json_object_get(cfg, "server")), want_server);
	assert_string_equal(json_string_value(json_object_get(cfg, "node_id")), NODE_ID);
	assert_string_equal(json_string_value(json_object_get(cfg, "name")), "web-1");
	json_decref(cfg);

	/* Enrolled already: refused before contacting anything. */
	assert_int_equal(do_enroll(c, &s, c->token, NULL), AGENT_EXIT_ERROR);
	assert_int_equal(atomic_load(&s.handshakes), 2);
	srv_stop(&s);
}

static void test_enroll_refusals(void **state)
{
	struct ctx *c = *state;
	struct srv s;
	char token[200];

	srv_start(&s, c, CHAIN_FULL, NULL);
	/* Malformed token, server URL or name: usage, nothing contacted. */
	assert_int_equal(do_enroll(c, &s, "odx-enroll-abc", NULL), AGENT_EXIT_USAGE);
	assert_int_equal(do_enroll(c, &s, c->token, "Bad_Name"), AGENT_EXIT_USAGE);
	struct enroll_opts o = {
	    .server = "http://127.0.0.1:1", .token = c->token, .state_dir = c->state};
	assert_int_equal(enroll_main(&o), AGENT_EXIT_USAGE);
	assert_int_equal(atomic_load(&s.handshakes) + atomic_load(&s.refused), 0);

	/* A token for another CA: status 4, nothing sent. */
	snprintf(token, sizeof(token), "odx-enroll-%s-%s", FP_A, SECRET);
	assert_int_equal(do_enroll(c, &s, token, NULL), AGENT_EXIT_PIN);
	assert_int_equal(atomic_load(&s.requests), 0);

	/* The control plane refuses the token: status 3, no key left behind. */
	s.enroll_status = 401;
	assert_int_equal(do_enroll(c, &s, c->token, NULL), AGENT_EXIT_REFUSED);
	assert_int_equal(atomic_load(&s.requests), 1);
	assert_false(exists(path_in(c->state, STATE_KEY_NEW)));
	assert_false(exists(path_in(c->state, STATE_AGENT_JSON)));

	/* A state directory others can read: refused. */
	assert_int_equal(chmod(c->state, 0755), 0);
	s.enroll_status = 201;
	assert_int_equal(do_enroll(c, &s, c->token, NULL), AGENT_EXIT_ERROR);
	assert_int_equal(atomic_load(&s.requests), 1);
	srv_stop(&s);

	/* Nothing listens any more: status 1. */
	assert_int_equal(chmod(c->state, 0700), 0);
	assert_int_equal(do_enroll(c, &s, c->token, NULL), AGENT_EXIT_ERROR);
}

struct run_thread {
	struct ctx *c;
	const char *socket;
	int status;
	atomic_bool done;
};

static void *run_thread_main(void *arg)
{
	struct run_thread *t = arg;
	struct run_opts o = {.state_dir = t->c->state, .docker_socket = t->socket};
	t->status = run_main(&o);
	atomic_store(&t->done, true);
	return NULL;
}

/* Waits up to ms for *v >= want. */
static bool wait_for(atomic_int *v, int want, int ms)
{
	for (int i = 0; i < ms / 20 && atomic_load(v) < want; i++)
		usleep(20000);
	return atomic_load(v) >= want;
}

static bool wait_done(struct run_thread *t, int ms)
{
	for (int i = 0; i < ms / 20 && !atomic_load(&t->done); i++)
		usleep(20000);
	return atomic_load(&t->done);
}

static void test_run_renew_and_revoke(void **state)
{
	struct ctx *c = *state;
	struct srv s;
	struct run_thread t = {.c = c, .socket = path_in(c->dir, "docker.sock")};
	pthread_t th;

	srv_start(&s, c, CHAIN_FULL, NULL);
	/* A certificate that is past 2/3 of its life at once: renewed right away. */
	s.enroll_life = 5;
	assert_int_equal(do_enroll(c, &s, c->token, NULL), AGENT_EXIT_OK);
	s.require_alpn = false; /* mTLS from now on, like the real server */
	char *before = slurp(path_in(c->state, STATE_CERT));
	assert_int_equal(pthread_create(&th, NULL, run_thread_main, &t), 0);
	assert_true(wait_for(&s.renews, 1, 10000));
	assert_true(wait_for(&s.statuses, 2, 10000)); /* every 1 s, as the server said */
	assert_true(wait_for(&s.polls, 1, 10000));
	assert_int_equal(atomic_load(&s.status_without_cert), 0);

	/* The renewed pair is on disk, matching, and the .new files are gone. */
	char *after = slurp(path_in(c->state, STATE_CERT));
	char *key = slurp(path_in(c->state, STATE_KEY));
	assert_string_not_equal(before, after);
	assert_int_equal(state_pair_matches(after, key), 1);
	assert_false(exists(path_in(c->state, STATE_KEY_NEW)));
	assert_false(exists(path_in(c->state, STATE_CERT_NEW)));
	free(before);
	free(after);
	free(key);

	/* The heartbeat's shape. */
	pthread_mutex_lock(&s.mu);
	json_t *hb = json_incref(s.last_status);
	pthread_mutex_unlock(&s.mu);
	json_int_t cpus, mem, disk, umem, udisk;
	double pct;
	const char *version, *root;
	assert_int_equal(json_unpack(hb, "{s:s, s:{s:I, s:I, s:I}, s:{s:F, s:I, s:I}, s:s !}",
				     "agent_version", &version, "capacity", "cpus", &cpus,
				     "memory_bytes", &mem, "disk_bytes", &disk, "usage",
				     "cpu_percent", &pct, "memory_bytes", &umem, "disk_bytes",
				     &udisk, "docker_root", &root),
			 0);
	assert_string_equal(version, ODYSSEUS_VERSION);
	assert_true(cpus >= 1 && mem > 0 && disk > 0 && umem <= mem && udisk <= disk);
	assert_true(pct >= 0.0 && pct <= 100.0);
	assert_true(root[0] == '/'); /* no Docker: /var/lib/docker or / */
	json_decref(hb);

	/* Revoked: every thread stops and the status is 3. */
	atomic_store(&s.revoked, true);
	assert_true(wait_done(&t, 10000));
	pthread_join(th, NULL);
	assert_int_equal(t.status, AGENT_EXIT_REFUSED);
	srv_stop(&s);
}

static void test_run_sigterm(void **state)
{
	struct ctx *c = *state;
	struct srv s;
	struct run_thread t = {.c = c, .socket = path_in(c->dir, "docker.sock")};
	pthread_t th;

	srv_start(&s, c, CHAIN_FULL, NULL);
	assert_int_equal(do_enroll(c, &s, c->token, NULL), AGENT_EXIT_OK);
	s.require_alpn = false;
	assert_int_equal(pthread_create(&th, NULL, run_thread_main, &t), 0);
	assert_true(wait_for(&s.statuses, 1, 10000));
	/* The control plane goes away: the agent keeps retrying with backoff... */
	srv_stop(&s);
	usleep(1500000);
	assert_false(atomic_load(&t.done));
	/* ...and still stops within about a second of SIGTERM. */
	int64_t t0 = time_mono_ns();
	assert_int_equal(pthread_kill(th, SIGTERM), 0);
	assert_true(wait_done(&t, 3000));
	pthread_join(th, NULL);
	assert_true(time_mono_ns() - t0 < 2 * NSEC_PER_SEC);
	assert_int_equal(t.status, AGENT_EXIT_OK);

	/* A second agent on the same directory while one runs is refused; none now. */
	int fd = state_open(c->state, false);
	assert_true(fd >= 0);
	close(fd);
}

static void test_run_not_enrolled(void **state)
{
	struct ctx *c = *state;
	struct run_opts o = {.state_dir = c->state};

	assert_int_equal(run_main(&o), AGENT_EXIT_ERROR); /* no directory */
	int fd = state_open(c->state, true);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(run_main(&o), AGENT_EXIT_ERROR); /* no agent.json */
	spit(path_in(c->state, STATE_AGENT_JSON), "{\"server\":\"https://x:1\"}");
	assert_int_equal(run_main(&o), AGENT_EXIT_ERROR); /* damaged */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_token_parse, setup, teardown),
	    cmocka_unit_test(test_url_parse),
	    cmocka_unit_test(test_meminfo),
	    cmocka_unit_test(test_stat),
	    cmocka_unit_test(test_cpu_percent),
	    cmocka_unit_test_setup_teardown(test_sample_collect, setup, teardown),
	    cmocka_unit_test(test_backoff),
	    cmocka_unit_test_setup_teardown(test_state_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recover_both_new, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recover_key_renamed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recover_key_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recover_mismatch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cert_helpers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_ok, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_wrong_fingerprint, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_chain_without_ca, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_foreign_ca, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_no_server, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_enroll, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_enroll_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_run_renew_and_revoke, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_run_sigterm, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_run_not_enrolled, setup, teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	if (client_global_init() < 0)
		return 1;
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	client_global_done();
	return rc;
}
