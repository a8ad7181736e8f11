/*
 * audit-bench.c — durable audit appends per second with 1, 16 and 64
 * concurrent writers (group commit), next to a baseline of one fsync per
 * record on the same disk in the same run; then verification speed of a
 * 1,000,000-record log (file and JSON-lines export).
 *
 * Goals (issue 4): >= 20,000 durable records/s at 64 writers, >= 10x the
 * one-fsync-per-record baseline, verify 1,000,000 records in < 3 s.
 *
 * Usage: audit-bench --dir DIR [--seconds S] [--writers 1,16,64]
 *                    [--verify-records N] [--build-writers W]
 * DIR must be on the disk under test; everything it writes there is removed
 * at the end. bench/audit-bench.sh builds and runs it (see bench/README.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"

#define MAX_CASES 8
#define LAT_SAMPLES 200000

static const char *dir;
static double seconds = 5;
static int writers[MAX_CASES] = {1, 16, 64};
static int ncases = 3;
static uint64_t verify_records = 1000000;
static int build_writers = 256;
static char key_path[4096];

static double now_s(void)
{
	return (double)time_mono_ns() / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "audit-bench: %s: %s\n", what, odx_strerror(rc));
	exit(1);
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static const char *const bench_actions[] = {
	"auth.login",   "auth.logout",   "auth.refresh", "user.create",   "user.update",
	"user.delete",  "apikey.create", "authz.denied", "deployment.create",
	"deployment.update", "container.restart", "secret.read",
};

struct recbuf {
	char tenant[40], actor[40], email[48], resource[64], req[40];
};

/*
 * Record i: 100 tenants, 2,000 users, 20,000 resources, 12 actions, 93%
 * success / 5% failure / 2% denied. Realistic spread matters: with one
 * actor and one resource every index insert lands on the same page and
 * the cost of the indexes disappears from the measurement.
 */
static void fill(struct audit_record *r, struct recbuf *b, uint64_t i)
{
	uint64_t h = mix(i);
	uint64_t user = h % 2000, res = (h >> 16) % 20000, tenant = user % 100;
	snprintf(b->tenant, sizeof(b->tenant), "ten_%032llx",
		 (unsigned long long)mix(tenant + 1000000));
	snprintf(b->actor, sizeof(b->actor), "usr_%032llx", (unsigned long long)mix(user + 2000000));
	snprintf(b->email, sizeof(b->email), "user%llu@tenant%llu.example.com",
		 (unsigned long long)user, (unsigned long long)tenant);
	snprintf(b->resource, sizeof(b->resource), "%s_%032llx",
		 res % 2 ? "users/usr" : "deployments/dep", (unsigned long long)mix(res + 3000000));
	snprintf(b->req, sizeof(b->req), "req_%016llx", (unsigned long long)i);
	unsigned o = (unsigned)((h >> 40) % 100);
	*r = (struct audit_record){
		.actor_type = AUDIT_ACTOR_USER,
		.actor_id = b->actor,
		.actor_email = b->email,
		.tenant_id = b->tenant,
		.action = bench_actions[(h >> 32) % (sizeof(bench_actions) / sizeof(bench_actions[0]))],
		.resource = b->resource,
		.outcome = o < 93 ? AUDIT_SUCCESS : o < 98 ? AUDIT_FAILURE : AUDIT_DENIED,
		.reason = o < 93 ? "" : "not permitted by role member",
		.request_id = b->req,
		.source_ip = "198.51.100.23",
	};
}

/* ---- baseline: write one record, fsync, repeat ---- */

static double baseline(double secs)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/baseline.log", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		die("baseline open", -errno);
	/* The same bytes a JSON-lines export holds for one record (~420 bytes). */
	char line[600];
	uint64_t n = 0;
	double t0 = now_s(), t;
	do {
		int len = snprintf(line, sizeof(line),
				   "{\"seq\":%llu,\"time_ns\":%lld,\"actor\":{\"type\":\"user\",\"id\":"
				   "\"usr_4f1c2a9d0b7e4c5f8a6d3e2b1c0f9a8e\",\"email\":"
				   "\"alice@tenant.example.com\"},\"tenant_id\":"
				   "\"ten_9a8b7c6d5e4f30211203f4e5d6c7b8a9\",\"action\":\"user.update\","
				   "\"resource\":\"users/usr_0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a\","
				   "\"outcome\":\"success\",\"reason\":\"\",\"request_id\":\"req_%016llx\","
				   "\"source_ip\":\"198.51.100.23\",\"prev_hash\":\"%064d\",\"hash\":\"%064d\"}\n",
				   (unsigned long long)n + 1, (long long)time_now_ns(),
				   (unsigned long long)n, 0, 0);
		if (write(fd, line, (size_t)len) != len || fsync(fd) != 0)
			die("baseline write", -errno);
		n++;
		t = now_s();
	} while (t - t0 < secs);
	close(fd);
	unlink(path);
	return (double)n / (t - t0);
}

/* ---- group commit ---- */

struct wstate {
	struct audit_log *log;
	atomic_bool *stop;
	uint64_t id, n;
	size_t nlat;
	uint32_t *lat_us;
};

static void *writer_main(void *arg)
{
	struct wstate *w = arg;
	struct recbuf b;
	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		struct audit_record r;
		fill(&r, &b, (w->id << 40) | w->n);
		int64_t t0 = time_mono_ns();
		int rc = audit_append(w->log, &r);
		if (rc < 0)
			die("append", rc);
		int64_t us = (time_mono_ns() - t0) / 1000;
		if (w->nlat < LAT_SAMPLES)
			w->lat_us[w->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
		w->n++;
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

struct result {
	double rate, p50_ms, p99_ms;
	uint64_t records;
};

static void open_log(const char *path, struct audit_log **log)
{
	unlink(path);
	struct audit_options o = {.key_path = key_path};
	int rc = audit_open(path, &o, log);
	if (rc < 0)
		die("audit_open", rc);
}

static void remove_db(const char *path)
{
	char p[4300];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

/* Runs nw writers for secs (or until `until` records when until > 0). */
static struct result run_writers(struct audit_log *log, int nw, double secs, uint64_t until)
{
	atomic_bool stop = false;
	struct wstate *w = calloc((size_t)nw, sizeof(*w));
	pthread_t *th = calloc((size_t)nw, sizeof(*th));
	if (!w || !th)
		die("calloc", ODX_ENOMEM);
	for (int i = 0; i < nw; i++) {
		w[i] = (struct wstate){.log = log, .stop = &stop, .id = (uint64_t)i};
		w[i].lat_us = malloc(LAT_SAMPLES * sizeof(uint32_t));
		if (!w[i].lat_us)
			die("malloc", ODX_ENOMEM);
	}
	double t0 = now_s();
	for (int i = 0; i < nw; i++)
		if (pthread_create(&th[i], NULL, writer_main, &w[i]) != 0)
			die("pthread_create", ODX_ENOMEM);
	for (;;) {
		usleep(20000);
		if (until) {
			uint64_t n;
			audit_size(log, &n);
			if (n >= until)
				break;
		} else if (now_s() - t0 >= secs) {
			break;
		}
	}
	atomic_store(&stop, true);
	struct result r = {0};
	size_t nl = 0;
	for (int i = 0; i < nw; i++) {
		pthread_join(th[i], NULL);
		r.records += w[i].n;
		nl += w[i].nlat;
	}
	double dt = now_s() - t0;
	r.rate = (double)r.records / dt;
	uint32_t *all = malloc((nl ? nl : 1) * sizeof(uint32_t));
	if (!all)
		die("malloc", ODX_ENOMEM);
	size_t k = 0;
	for (int i = 0; i < nw; i++) {
		memcpy(all + k, w[i].lat_us, w[i].nlat * sizeof(uint32_t));
		k += w[i].nlat;
		free(w[i].lat_us);
	}
	qsort(all, nl, sizeof(uint32_t), cmp_u32);
	if (nl) {
		r.p50_ms = all[nl / 2] / 1000.0;
		r.p99_ms = all[nl * 99 / 100] / 1000.0;
	}
	free(all);
	free(w);
	free(th);
	return r;
}

/* ---- verification ---- */

static int file_write(const void *buf, size_t n, void *arg)
{
	return fwrite(buf, 1, n, arg) == n ? 0 : ODX_EIO;
}

static long maxrss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void bench_verify(void)
{
	char db[4200], rp[4200], cpp[4200];
	snprintf(db, sizeof(db), "%s/verify.db", dir);
	snprintf(rp, sizeof(rp), "%s/export.jsonl", dir);
	snprintf(cpp, sizeof(cpp), "%s/checkpoints.jsonl", dir);
	struct audit_log *log;
	open_log(db, &log);
	printf("\nbuilding a %llu-record log with %d writers (defaults: checkpoint every 10000 "
	       "records or 1 s) ...\n",
	       (unsigned long long)verify_records, build_writers);
	fflush(stdout);
	struct result b = run_writers(log, build_writers, 0, verify_records);
	printf("  built %llu records at %.0f durable records/s (p50 %.2f ms, p99 %.2f ms)\n",
	       (unsigned long long)b.records, b.rate, b.p50_ms, b.p99_ms);
	uint8_t pub[AUDIT_PUB_LEN];
	char kid[AUDIT_KEY_ID_LEN];
	audit_public_key(log, pub, kid);

	struct audit_checkpoint cp;
	int rc = audit_checkpoint_now(log, &cp);
	if (rc < 0)
		die("checkpoint", rc);
	long rss0 = maxrss_kb();
	FILE *f = fopen(rp, "w"), *g = fopen(cpp, "w");
	if (!f || !g)
		die("fopen", -errno);
	struct audit_filter all = {.scope = AUDIT_SCOPE_ALL};
	double t0 = now_s();
	rc = audit_export(log, &all, AUDIT_FORMAT_JSONL, file_write, f);
	double t_export = now_s() - t0;
	if (rc == 0)
		rc = audit_export_checkpoints(log, cp.tree_size, file_write, g);
	if (rc < 0)
		die("export", rc);
	fclose(f);
	fclose(g);
	long rss1 = maxrss_kb();
	audit_close(log);

	struct stat st_db, st_exp;
	stat(db, &st_db);
	stat(rp, &st_exp);
	struct audit_verify_opts o = {.pinned_pub = pub};
	struct audit_verify_report rep;
	t0 = now_s();
	rc = audit_verify_file(db, &o, &rep);
	double t_file = now_s() - t0;
	if (rc < 0)
		die(rep.detail[0] ? rep.detail : "verify file", rc);
	t0 = now_s();
	struct audit_verify_report rep2;
	rc = audit_verify_export(rp, cpp, &o, &rep2);
	double t_exp = now_s() - t0;
	if (rc < 0)
		die(rep2.detail[0] ? rep2.detail : "verify export", rc);
	printf("  file %.1f MB, export %.1f MB (written in %.2f s; max RSS grew %ld KiB)\n",
	       (double)st_db.st_size / 1e6, (double)st_exp.st_size / 1e6, t_export, rss1 - rss0);
	printf("\n| verify | records | checkpoints | seconds | records/s | goal < 3 s |\n"
	       "|---|---:|---:|---:|---:|---|\n");
	printf("| audit.db (audit_verify_file) | %llu | %llu | %.2f | %.0f | %s |\n",
	       (unsigned long long)rep.records, (unsigned long long)rep.checkpoints, t_file,
	       (double)rep.records / t_file, t_file < 3 ? "ok" : "SLOW");
	printf("| JSON-lines export (audit_verify_export) | %llu | %llu | %.2f | %.0f | %s |\n",
	       (unsigned long long)rep2.records, (unsigned long long)rep2.checkpoints, t_exp,
	       (double)rep2.records / t_exp, t_exp < 3 ? "ok" : "SLOW");
	remove_db(db);
	unlink(rp);
	unlink(cpp);
}

static int parse_list(const char *s)
{
	ncases = 0;
	while (*s && ncases < MAX_CASES) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v < 1 || v > 4096)
			return -1;
		writers[ncases++] = (int)v;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return ncases ? 0 : -1;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int64_t x;
		if (!strcmp(a, "--dir") && v) {
			dir = v;
		} else if (!strcmp(a, "--seconds") && v && parse_int64(v, 1, 3600, &x) == 0) {
			seconds = (double)x;
		} else if (!strcmp(a, "--writers") && v && parse_list(v) == 0) {
		} else if (!strcmp(a, "--verify-records") && v &&
			   parse_int64(v, 0, 100000000, &x) == 0) {
			verify_records = (uint64_t)x;
		} else if (!strcmp(a, "--build-writers") && v && parse_int64(v, 1, 4096, &x) == 0) {
			build_writers = (int)x;
		} else {
			fprintf(stderr, "usage: audit-bench --dir DIR [--seconds S] [--writers 1,16,64] "
					"[--verify-records N] [--build-writers W]\n");
			return 2;
		}
		i++;
	}
	if (!dir) {
		fprintf(stderr, "audit-bench: --dir is required\n");
		return 2;
	}
	int rc = audit_key_init(dir);
	if (rc < 0)
		die("audit_key_init", rc);
	snprintf(key_path, sizeof(key_path), "%s/%s", dir, AUDIT_KEY_FILE);
	struct statfs sf;
	if (statfs(dir, &sf) == 0)
		printf("directory %s (filesystem magic 0x%lx), %ld CPUs, %.0f s per case\n", dir,
		       (unsigned long)sf.f_type, sysconf(_SC_NPROCESSORS_ONLN), seconds);

	double base = baseline(seconds);
	printf("\n| case | durable records/s | ratio to baseline | p50 ms | p99 ms | goals |\n"
	       "|---|---:|---:|---:|---:|---|\n");
	printf("| baseline: write + fsync per record | %.0f | 1.0 | %.2f | - | |\n", base,
	       1000.0 / base);
	fflush(stdout);
	for (int i = 0; i < ncases; i++) {
		char db[4200];
		snprintf(db, sizeof(db), "%s/bench-%d.db", dir, writers[i]);
		struct audit_log *log;
		open_log(db, &log);
		struct result r = run_writers(log, writers[i], seconds, 0);
		audit_close(log);
		char goals[64] = "";
		if (writers[i] >= 64)
			snprintf(goals, sizeof(goals), "%s, %s",
				 r.rate >= 20000 ? ">= 20k ok" : "< 20k LOW",
				 r.rate >= 10 * base ? ">= 10x ok" : "< 10x LOW");
		printf("| audit_append, %d writer%s | %.0f | %.1f | %.2f | %.2f | %s |\n", writers[i],
		       writers[i] > 1 ? "s" : "", r.rate, r.rate / base, r.p50_ms, r.p99_ms, goals);
		fflush(stdout);
		remove_db(db);
	}
	if (verify_records)
		bench_verify();
	return 0;
}
