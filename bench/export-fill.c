/*
 * export-fill.c — appends N platform records (tenant "") to <dir>/audit.db,
 * fast, for the audit export benchmark (bench/export-bench.sh). It goes
 * through audit_append like the daemon, from many threads so group commit
 * shares one fsync among them, and never through the API.
 *
 * Records look like the platform's own sign-ins: a user id usr_<32 hex>, an
 * email, action auth.login (93 % success, 5 % failure, 2 % denied with a
 * reason), resource users/usr_<32 hex>, a request id, a source address —
 * ~560 bytes per JSON-lines export line.
 *
 * Usage: export-fill --dir DATA_DIR --records N [--writers W]
 * DATA_DIR is an `odysseusd init` data directory (its keys/audit.pem signs
 * the checkpoints; created if missing). The daemon must not be running.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit/audit.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"

static struct audit_log *log_;
static uint64_t total;
static atomic_uint_fast64_t next_i;

static void die(const char *what, int rc)
{
	fprintf(stderr, "export-fill: %s: %s\n", what, odx_strerror(rc));
	exit(1);
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void *writer_main(void *arg)
{
	(void)arg;
	char actor[40], email[48], resource[48], req[40], ip[16];
	for (;;) {
		uint64_t i = atomic_fetch_add(&next_i, 1);
		if (i >= total)
			break;
		uint64_t h = mix(i), user = h % 5000;
		unsigned o = (unsigned)((h >> 40) % 100);
		snprintf(actor, sizeof(actor), "usr_%016llx%016llx",
			 (unsigned long long)mix(user + 2000000),
			 (unsigned long long)mix(user + 3000000));
		snprintf(email, sizeof(email), "operator%llu@platform.example.com",
			 (unsigned long long)user);
		snprintf(resource, sizeof(resource), "users/%s", actor);
		snprintf(req, sizeof(req), "req_%016llx", (unsigned long long)mix(i + 7000000));
		snprintf(ip, sizeof(ip), "198.51.100.%u", (unsigned)(user % 250) + 1);
		struct audit_record r = {
		    .actor_type = AUDIT_ACTOR_USER,
		    .actor_id = actor,
		    .actor_email = email,
		    .tenant_id = "",
		    .action = "auth.login",
		    .resource = resource,
		    .outcome = o < 93	? AUDIT_SUCCESS
			       : o < 98 ? AUDIT_FAILURE
					: AUDIT_DENIED,
		    .reason = o < 93   ? ""
			      : o < 98 ? "invalid_credentials"
				       : "account_disabled",
		    .request_id = req,
		    .source_ip = ip,
		};
		int rc = audit_append(log_, &r);
		if (rc < 0)
			die("audit_append", rc);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	int64_t records = -1, writers = 256;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--dir") && v) {
			dir = v;
		} else if (!strcmp(a, "--records") && v &&
			   parse_int64(v, 0, 1000000000, &records) == 0) {
		} else if (!strcmp(a, "--writers") && v && parse_int64(v, 1, 4096, &writers) == 0) {
		} else {
			records = -1;
			break;
		}
		i++;
	}
	if (!dir || records < 0) {
		fprintf(stderr, "usage: export-fill --dir DATA_DIR --records N [--writers W]\n");
		return 2;
	}
	total = (uint64_t)records;
	umask(077); /* audit.db as private as the daemon makes it */

	int rc = audit_key_init(dir);
	if (rc < 0)
		die("audit_key_init", rc);
	char db[4200], key[4200];
	snprintf(db, sizeof(db), "%s/audit.db", dir);
	snprintf(key, sizeof(key), "%s/%s", dir, AUDIT_KEY_FILE);
	struct audit_options o = {.key_path = key};
	if ((rc = audit_open(db, &o, &log_)) < 0)
		die("audit_open", rc);

	int64_t t0 = time_mono_ns();
	pthread_t *th = calloc((size_t)writers, sizeof(*th));
	if (!th)
		die("calloc", ODX_ENOMEM);
	int started = 0;
	for (; started < writers; started++)
		if (pthread_create(&th[started], NULL, writer_main, NULL) != 0)
			break;
	if (started == 0)
		die("pthread_create", ODX_ENOMEM);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
	double dt = (double)(time_mono_ns() - t0) / 1e9;
	uint64_t size = 0;
	audit_size(log_, &size);
	audit_close(log_); /* writes the indexes' tail and a last checkpoint */
	printf("export-fill: appended %llu records in %.1f s (%.0f/s, %d writers); log size %llu\n",
	       (unsigned long long)total, dt, dt > 0 ? (double)total / dt : 0.0, started,
	       (unsigned long long)size);
	return 0;
}
