/*
 * secrets-bench.c — seal and open throughput of the secrets engine for
 * 1 KiB and 64 KiB values, beside raw AES-256-GCM through OpenSSL's EVP
 * interface on the same sizes, in the same process and run.
 *
 * Goal (issue 7): >= 0.7x the raw cipher rate at 64 KiB. The raw rate is
 * `openssl speed -evp aes-256-gcm` (bench/secrets-bench.sh runs it beside
 * this program). For GCM, openssl speed times one message per call: set
 * the IV length, re-key the context (AES key schedule and GHASH key) with
 * a fixed IV, update, final; no associated data, no tag read (its
 * EVP_Update_loop_aead_enc). The "evp-speed" row is that loop in process,
 * the peer of the ratio column.
 *
 * Rows, from the bare cipher to the whole engine:
 *   evp-stream  EVP_EncryptUpdate on n bytes, again and again on one
 *               context: the cipher alone, nothing per value
 *   evp-speed   openssl speed's loop (above)
 *   evp-enc/dec one value each on a context keyed once: new nonce, the
 *               engine's associated data, update, final, tag
 *   gcm-enc/dec secrets_gcm_encrypt/decrypt: a new context and key
 *               schedule per value, as the engine does
 *   seal/open   secrets_seal (+ free) / secrets_open (+ secrets_free_plain):
 *               nonce from the CSPRNG, AAD building, the keyring's lock,
 *               the blob's allocation, the cipher
 * Rates are given per wall-clock second and per second of the measuring
 * threads' CPU time (user + system); openssl speed divides by its user CPU
 * time, so the CPU rates are the ones to compare with it on a busy machine.
 *
 * Usage: secrets-bench [--seconds S] [--threads 2,4] [--results FILE]
 *                      [--only CASE] [--size BYTES]   (one case or size: for perf)
 * The temporary data directory and KEK file are removed at the end.
 */
#include <ftw.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/random.h"
#include "secrets/internal.h"
#include "secrets/kek.h"
#include "secrets/keyring.h"
#include "secrets/seal.h"
#include "store/store.h"

#define MAX_THREADS 64
#define NAME	    "bench-value"
#define VERSION	    1
#define AAD_LABEL   "odysseus-secret-v1"

static double seconds = 3;
static int thread_list[8];
static int nthread_list;
static const char *only; /* --only CASE: that case alone (for perf) */
static size_t only_size; /* --size BYTES: that value size alone */
static FILE *results;
static char base[4096];
static struct store *store;
static struct secrets_keyring *kr;
static char tenant[ID_MAX_LEN];
static uint8_t raw_key[GCM_KEY_LEN];

/* One measuring thread's state: its buffers, contexts and counters. */
struct job {
	size_t n;
	int (*op)(struct job *);
	uint8_t *in, *out, *ct; /* n bytes each; ct holds in sealed under fixed_nonce */
	uint8_t *blob;		/* in, sealed by the engine */
	size_t bloblen;
	uint8_t aad[128], nonce[GCM_NONCE_LEN], tag[GCM_TAG_LEN], ct_tag[GCM_TAG_LEN];
	size_t aadlen;
	uint64_t ctr, ops;
	EVP_CIPHER_CTX *stream, *speed, *enc, *dec;
	pthread_barrier_t *start;
	double wall, cpu;
};

static const uint8_t fixed_nonce[GCM_NONCE_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

static void die(const char *what, int rc)
{
	fprintf(stderr, "secrets-bench: %s: %s\n", what, odx_strerror(rc));
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p)
		die("malloc", ODX_ENOMEM);
	return p;
}

static int64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* ---- the operations measured ---- */

static int op_seal(struct job *j)
{
	uint8_t *blob;
	size_t len;
	int rc = secrets_seal(kr, tenant, NAME, VERSION, j->in, j->n, &blob, &len);
	if (rc == 0)
		free(blob);
	return rc;
}

static int op_open(struct job *j)
{
	uint8_t *plain;
	size_t len;
	int rc = secrets_open(kr, tenant, NAME, VERSION, j->blob, j->bloblen, &plain, &len);
	if (rc == 0)
		secrets_free_plain(plain);
	return rc;
}

/* A counter nonce: the peers skip the CSPRNG on purpose (that is engine cost). */
static const uint8_t *next_nonce(struct job *j)
{
	j->ctr++;
	memcpy(j->nonce, &j->ctr, sizeof(j->ctr));
	return j->nonce;
}

static int op_gcm_enc(struct job *j)
{
	return secrets_gcm_encrypt(raw_key, next_nonce(j), j->aad, j->aadlen, j->in, j->n, j->out,
				   j->tag);
}

static int op_gcm_dec(struct job *j)
{
	return secrets_gcm_decrypt(raw_key, fixed_nonce, j->aad, j->aadlen, j->ct, j->n, j->ct_tag,
				   j->out);
}

static int op_evp_enc(struct job *j)
{
	int len, fin;
	EVP_CIPHER_CTX *c = j->enc;
	int ok = EVP_EncryptInit_ex2(c, NULL, NULL, next_nonce(j), NULL) == 1 &&
		 EVP_EncryptUpdate(c, NULL, &len, j->aad, (int)j->aadlen) == 1 &&
		 EVP_EncryptUpdate(c, j->out, &len, j->in, (int)j->n) == 1 &&
		 EVP_EncryptFinal_ex(c, j->out + len, &fin) == 1 &&
		 EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, GCM_TAG_LEN, j->tag) == 1;
	return ok ? 0 : ODX_ECRYPTO;
}

static int op_evp_dec(struct job *j)
{
	int len, fin;
	EVP_CIPHER_CTX *c = j->dec;
	int ok = EVP_DecryptInit_ex2(c, NULL, NULL, fixed_nonce, NULL) == 1 &&
		 EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, GCM_TAG_LEN, j->ct_tag) == 1 &&
		 EVP_DecryptUpdate(c, NULL, &len, j->aad, (int)j->aadlen) == 1 &&
		 EVP_DecryptUpdate(c, j->out, &len, j->ct, (int)j->n) == 1 &&
		 EVP_DecryptFinal_ex(c, j->out + len, &fin) == 1;
	return ok ? 0 : ODX_ECORRUPT;
}

/* openssl speed's EVP_Update_loop_aead_enc for GCM: re-keyed, same IV, no AAD, no tag read. */
static int op_evp_speed(struct job *j)
{
	int len, fin;
	EVP_CIPHER_CTX *c = j->speed;
	int ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, GCM_NONCE_LEN, NULL) == 1 &&
		 EVP_CipherInit_ex(c, NULL, NULL, raw_key, fixed_nonce, -1) == 1 &&
		 EVP_EncryptUpdate(c, j->out, &len, j->in, (int)j->n) == 1 &&
		 EVP_EncryptFinal_ex(c, j->out + len, &fin) == 1;
	return ok ? 0 : ODX_ECRYPTO;
}

/* The cipher alone; a fresh IV now and then keeps GCM's 32-bit counter from wrapping. */
static int op_evp_stream(struct job *j)
{
	int len;
	if (++j->ctr % 4096 == 0 &&
	    EVP_EncryptInit_ex2(j->stream, NULL, NULL, next_nonce(j), NULL) != 1)
		return ODX_ECRYPTO;
	return EVP_EncryptUpdate(j->stream, j->out, &len, j->in, (int)j->n) == 1 ? 0 : ODX_ECRYPTO;
}

/* Parts of a seal, alone: the nonce, the keyring's lock, the blob's allocation. */
static int op_nonce(struct job *j)
{
	return random_bytes(j->nonce, GCM_NONCE_LEN);
}

static int op_lock(struct job *j)
{
	(void)j;
	const uint8_t *dek;
	int rc = secrets_keyring_dek_acquire(kr, tenant, false, &dek);
	if (rc == 0)
		secrets_keyring_dek_release(kr);
	return rc;
}

static size_t build_aad(uint8_t *aad);

/* A copy of seal.c's AAD building (it is static there): the same bytes, the same memcpys. */
static int op_aad(struct job *j)
{
	return build_aad(j->aad) > 0 ? 0 : ODX_EINVAL;
}

static int op_alloc(struct job *j)
{
	uint8_t *volatile p = malloc(j->n + SECRETS_SEAL_OVERHEAD);
	if (!p)
		return ODX_ENOMEM;
	free(p);
	return 0;
}

/* ---- job setup ---- */

/* The engine's associated data for (tenant, NAME, VERSION), as docs/secrets.md gives it. */
static size_t build_aad(uint8_t *aad)
{
	size_t off = 0, tl = strlen(tenant) + 1;
	memcpy(aad, AAD_LABEL, sizeof(AAD_LABEL));
	off += sizeof(AAD_LABEL);
	memcpy(aad + off, tenant, tl);
	off += tl;
	memcpy(aad + off, NAME, sizeof(NAME));
	off += sizeof(NAME);
	for (int i = 7; i >= 0; i--)
		aad[off++] = (uint8_t)((uint64_t)VERSION >> (8 * i));
	return off;
}

static EVP_CIPHER_CTX *keyed_ctx(int enc, const uint8_t *nonce)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (!c || EVP_CipherInit_ex2(c, EVP_aes_256_gcm(), raw_key, nonce, enc, NULL) != 1)
		die("EVP context", ODX_ECRYPTO);
	return c;
}

static void job_init(struct job *j, size_t n, int (*op)(struct job *))
{
	*j = (struct job){.n = n, .op = op};
	j->in = xmalloc(n + 1);
	j->out = xmalloc(n + 1);
	j->ct = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		j->in[i] = (uint8_t)('a' + i % 26);
	j->aadlen = build_aad(j->aad);
	int rc = secrets_seal(kr, tenant, NAME, VERSION, j->in, n, &j->blob, &j->bloblen);
	if (rc < 0)
		die("secrets_seal", rc);
	rc = secrets_gcm_encrypt(raw_key, fixed_nonce, j->aad, j->aadlen, j->in, n, j->ct,
				 j->ct_tag);
	if (rc < 0)
		die("secrets_gcm_encrypt", rc);
	j->stream = keyed_ctx(1, fixed_nonce);
	j->speed = keyed_ctx(1, fixed_nonce);
	j->enc = keyed_ctx(1, fixed_nonce);
	j->dec = keyed_ctx(0, fixed_nonce);
}

static void job_free(struct job *j)
{
	free(j->in);
	free(j->out);
	free(j->ct);
	free(j->blob);
	EVP_CIPHER_CTX_free(j->stream);
	EVP_CIPHER_CTX_free(j->speed);
	EVP_CIPHER_CTX_free(j->enc);
	EVP_CIPHER_CTX_free(j->dec);
}

/* ---- running ---- */

static void *job_main(void *arg)
{
	struct job *j = arg;
	int batch = j->n >= 16384 ? 1 : 16;
	pthread_barrier_wait(j->start);
	int64_t t0 = time_mono_ns(), c0 = cpu_ns(), t;
	int64_t end = t0 + (int64_t)(seconds * 1e9);
	do {
		for (int i = 0; i < batch; i++) {
			int rc = j->op(j);
			if (rc < 0)
				die("measured call", rc);
		}
		j->ops += (uint64_t)batch;
		t = time_mono_ns();
	} while (t < end);
	j->wall = (double)(t - t0) / 1e9;
	j->cpu = (double)(cpu_ns() - c0) / 1e9;
	return NULL;
}

struct result {
	double ops_s, mb_s, mb_cpu_s, cpu_ns_op, core; /* core: CPU time / wall time */
};

static struct result run(int (*op)(struct job *), size_t n, int nthreads)
{
	struct job jobs[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, (unsigned)nthreads);
	for (int i = 0; i < nthreads; i++) {
		job_init(&jobs[i], n, op);
		jobs[i].start = &start;
	}
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, job_main, &jobs[i]) != 0)
			die("pthread_create", ODX_ENOMEM);
	double ops = 0, wall = 0, cpu = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		ops += (double)jobs[i].ops;
		wall = jobs[i].wall > wall ? jobs[i].wall : wall;
		cpu += jobs[i].cpu;
		job_free(&jobs[i]);
	}
	pthread_barrier_destroy(&start);
	return (struct result){.ops_s = ops / wall,
			       .mb_s = ops * (double)n / wall / 1e6,
			       .mb_cpu_s = ops * (double)n / cpu / 1e6,
			       .cpu_ns_op = cpu * 1e9 / ops,
			       .core = cpu / wall};
}

/* ---- reporting ---- */

static const char *size_label(size_t n)
{
	static char buf[32];
	if (n % 1024 == 0)
		snprintf(buf, sizeof(buf), "%zu KiB", n / 1024);
	else
		snprintf(buf, sizeof(buf), "%zu B", n);
	return buf;
}

/* One table row; peer (MB per CPU-second of evp-speed at this size) > 0 adds the ratio. */
static void report(const char *name, size_t n, int nthreads, struct result r, double peer)
{
	char ratio[16] = "-";
	if (peer > 0)
		snprintf(ratio, sizeof(ratio), "%.2f", r.mb_cpu_s / peer);
	printf("| %-10s | %6s | %2d | %10.0f | %8.0f | %8.0f | %8.0f | %5.0f %% | %5s |\n", name,
	       size_label(n), nthreads, r.ops_s, r.mb_s, r.mb_cpu_s, r.cpu_ns_op, r.core * 100,
	       ratio);
	fflush(stdout);
	if (results)
		fprintf(results, "%s %zu %d %.1f %.3f %.3f %.1f %.3f\n", name, n, nthreads, r.ops_s,
			r.mb_s, r.mb_cpu_s, r.cpu_ns_op, r.core);
}

struct bcase {
	const char *name;
	int (*op)(struct job *);
};

static const struct bcase cases[] = {
    {"evp-speed", op_evp_speed}, {"evp-stream", op_evp_stream},
    {"evp-enc", op_evp_enc},	 {"evp-dec", op_evp_dec},
    {"gcm-enc", op_gcm_enc},	 {"gcm-dec", op_gcm_dec},
    {"seal", op_seal},		 {"open", op_open},
};

static void bench_size(size_t n)
{
	double peer = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (only && strcmp(only, cases[i].name) != 0)
			continue;
		struct result r = run(cases[i].op, n, 1);
		if (i == 0)
			peer = r.mb_cpu_s;
		report(cases[i].name, n, 1, r, peer);
	}
	for (int t = 0; t < nthread_list && !only; t++) {
		report("seal", n, thread_list[t], run(op_seal, n, thread_list[t]), 0);
		report("open", n, thread_list[t], run(op_open, n, thread_list[t]), 0);
	}
}

static void bench_parts(void)
{
	static const struct bcase parts[] = {
	    {"random_bytes(12): the nonce", op_nonce},
	    {"keyring read lock + slot lookup + unlock", op_lock},
	    {"AAD building (a copy of seal.c's)", op_aad},
	    {"malloc + free of a 1 KiB blob", op_alloc},
	};
	double keep = seconds;
	seconds = keep < 1 ? keep : 1;
	printf("\nparts of one seal, alone (1 thread, %.0f s each):\n", seconds);
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		struct result r = run(parts[i].op, 1024, 1);
		printf("  %-42s %6.0f ns\n", parts[i].name, r.cpu_ns_op);
	}
	seconds = keep;
}

/* ---- setup ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	secrets_keyring_free(kr);
	store_free(store);
	if (base[0])
		nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A data dir with one tenant, and a KEK file beside it (outside it), as odysseusd starts. */
static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(base, sizeof(base), "%s/odx-secrets-bench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base))
		die("mkdtemp", ODX_EIO);
	atexit(cleanup);
	char data[4200], kek[4200];
	snprintf(data, sizeof(data), "%s/data", base);
	snprintf(kek, sizeof(kek), "%s/data.kek", base);
	int rc = store_open(data, &store);
	if (rc == 0)
		rc = secrets_kek_outside(kek, data);
	if (rc == 0)
		rc = secrets_kek_init(kek, NULL);
	if (rc == 0)
		rc = secrets_keyring_open(kek, store, &kr);
	if (rc == 0)
		rc = random_id("ten", tenant);
	if (rc == 0)
		rc = store_tenant_create(store, tenant);
	if (rc == 0)
		rc = random_bytes(raw_key, sizeof(raw_key));
	if (rc < 0)
		die(secrets_kek_strerror(rc), rc);
}

/* The first seal makes the tenant's data key (a store write); then check a round trip. */
static void check_round_trip(void)
{
	struct job j;
	job_init(&j, 1024, op_seal);
	uint8_t *plain;
	size_t n;
	int rc = secrets_open(kr, tenant, NAME, VERSION, j.blob, j.bloblen, &plain, &n);
	if (rc < 0 || n != j.n || memcmp(plain, j.in, n) != 0)
		die("round trip", rc < 0 ? rc : ODX_ECORRUPT);
	secrets_free_plain(plain);
	job_free(&j);
}

static int parse_threads(const char *s)
{
	nthread_list = 0;
	while (*s && nthread_list < (int)(sizeof(thread_list) / sizeof(thread_list[0]))) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v < 1 || v > MAX_THREADS || (*end && *end != ','))
			return -1;
		thread_list[nthread_list++] = (int)v;
		s = *end ? end + 1 : end;
	}
	return *s ? -1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: secrets-bench [--seconds S] [--threads 2,4] [--results FILE] "
			"[--only CASE] [--size BYTES]\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int64_t x;
		if (!v)
			usage();
		if (!strcmp(a, "--seconds") && parse_int64(v, 1, 3600, &x) == 0)
			seconds = (double)x;
		else if (!strcmp(a, "--threads") && parse_threads(v) == 0)
			continue;
		else if (!strcmp(a, "--results") && (results = fopen(v, "w")))
			continue;
		else if (!strcmp(a, "--only"))
			only = v;
		else if (!strcmp(a, "--size") && parse_int64(v, 1, SECRETS_VALUE_MAX, &x) == 0)
			only_size = (size_t)x;
		else
			usage();
	}
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	setup();
	check_round_trip();
	printf("secrets-bench: %ld CPUs, %s, %.0f s per case, keys %s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), OpenSSL_version(OPENSSL_VERSION), seconds,
	       secrets_keyring_locked(kr) ? "mlock'ed" : "not mlock'ed (RLIMIT_MEMLOCK)");
	printf("\nMB = 10^6 bytes of value; CPU = user + system time of the measuring "
	       "threads;\nratio = MB per CPU-s / evp-speed's at the same size "
	       "(openssl speed's loop, in process)\n\n");
	printf("| case       |  value |  T |      ops/s |     MB/s | MB/CPU-s | CPU ns/op |   "
	       "CPU | ratio |\n"
	       "|------------|-------:|---:|-----------:|---------:|---------:|----------:|------:|"
	       "------:|\n");
	if (only_size) {
		bench_size(only_size);
		return 0;
	}
	bench_size(1024);
	bench_size(65536);
	if (!only)
		bench_parts();
	if (results)
		fclose(results);
	return 0;
}
