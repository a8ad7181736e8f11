/* sample.c — see sample.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "agent/client.h"
#include "agent/sample.h"
#include "core/err.h"

#define PROC_READ_MAX	   16384 /* the lines we need are at the start of the file */
#define DOCKER_TIMEOUT_S   2L
#define STAT_FIELDS_SUMMED 8 /* user nice system idle iowait irq softirq steal */

/* ---- parsing -------------------------------------------------------------- */

/* Parses decimal digits at *p (before end) into *out and advances *p. */
static bool parse_u64(const char **p, const char *end, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (s >= end || *s < '0' || *s > '9')
		return false;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *s - '0', &v))
			return false;
	}
	*p = s;
	*out = v;
	return true;
}

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* The end of the line starting at p: its '\n', or NULL when it is cut off. */
static const char *line_end(const char *p, const char *end)
{
	return memchr(p, '\n', (size_t)(end - p));
}

/* Parses "<blanks><number> kB" from p to the end of the line eol, in bytes. */
static bool parse_kb(const char *p, const char *eol, uint64_t *bytes)
{
	uint64_t kb;

	p = skip_blanks(p, eol);
	if (!parse_u64(&p, eol, &kb))
		return false;
	p = skip_blanks(p, eol);
	if (eol - p != 2 || memcmp(p, "kB", 2) != 0)
		return false;
	return !__builtin_mul_overflow(kb, 1024, bytes);
}

int sample_meminfo_parse(const char *buf, size_t len, uint64_t *total, uint64_t *used)
{
	static const char k_total[] = "MemTotal:", k_avail[] = "MemAvailable:";
	const char *p = buf, *end = buf + len, *eol;
	uint64_t t = 0, a = 0;
	bool have_t = false, have_a = false;

	for (; p < end && (eol = line_end(p, end)) != NULL; p = eol + 1) {
		size_t n = (size_t)(eol - p);
		if (n > sizeof(k_total) - 1 && memcmp(p, k_total, sizeof(k_total) - 1) == 0) {
			if (have_t || !parse_kb(p + sizeof(k_total) - 1, eol, &t))
				return ODX_EINVAL;
			have_t = true;
		} else if (n > sizeof(k_avail) - 1 &&
			   memcmp(p, k_avail, sizeof(k_avail) - 1) == 0) {
			if (have_a || !parse_kb(p + sizeof(k_avail) - 1, eol, &a))
				return ODX_EINVAL;
			have_a = true;
		}
	}
	if (!have_t || !have_a)
		return ODX_EINVAL;
	*total = t;
	*used = a < t ? t - a : 0;
	return 0;
}

int sample_stat_parse(const char *buf, size_t len, struct sample_cpu *out)
{
	const char *end = buf + len, *eol = line_end(buf, end), *p = buf + 3;
	uint64_t v, total = 0, idle = 0;
	int n = 0;

	/* "cpu" then blanks: "cpu0" is a single CPU's line, not the aggregate. */
	if (eol == NULL || eol - buf < 4 || memcmp(buf, "cpu", 3) != 0 || (*p != ' ' && *p != '\t'))
		return ODX_EINVAL;
	while ((p = skip_blanks(p, eol)) < eol) {
		if (!parse_u64(&p, eol, &v) || (p < eol && *p != ' ' && *p != '\t'))
			return ODX_EINVAL;
		/* guest and guest_nice are already counted in user and nice. */
		if (n < STAT_FIELDS_SUMMED && __builtin_add_overflow(total, v, &total))
			return ODX_EINVAL;
		if (n == 3 || n == 4)
			idle += v; /* idle, iowait: both bounded by total */
		n++;
	}
	if (n < 4)
		return ODX_EINVAL;
	out->total = total;
	out->idle = idle;
	return 0;
}

double sample_cpu_percent(const struct sample_cpu *prev, const struct sample_cpu *cur)
{
	if (cur->total <= prev->total || cur->idle < prev->idle)
		return 0.0;
	uint64_t dt = cur->total - prev->total, di = cur->idle - prev->idle;
	if (di >= dt)
		return 0.0;
	double pct = 100.0 * (double)(dt - di) / (double)dt;
	return pct > 100.0 ? 100.0 : pct;
}

/* ---- sources ---------------------------------------------------------------- */

/* Reads at most size - 1 bytes of path into buf. Returns the length or -errno. */
static ssize_t read_head(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;

	if (fd < 0)
		return -errno;
	while (n + 1 < size) {
		ssize_t r = read(fd, buf + n, size - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	return (ssize_t)n;
}

static bool root_ok(const char *s, size_t n)
{
	if (n == 0 || n >= SAMPLE_PATH_MAX || s[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/*
 * The Docker API version asked for first, then the one Debian 12's Docker
 * 20.10 speaks at most (it refuses newer ones with 400). Both have
 * DockerRootDir in /info.
 */
static const char *const docker_paths[] = {"/v1.43/info", "/v1.41/info"};

int sample_docker_root(const char *socket_path, atomic_bool *stop, char out[static SAMPLE_PATH_MAX])
{
	struct client *c = NULL;
	struct client_reply r = {0};
	int rc = client_new("http://localhost", &c);

	if (rc == 0)
		rc = client_set_unix_socket(c, socket_path);
	if (rc == 0)
		client_set_stop(c, stop);
	for (size_t i = 0; rc == 0 && i < sizeof(docker_paths) / sizeof(docker_paths[0]); i++) {
		client_reply_done(&r);
		rc = client_request(c, "GET", docker_paths[i], NULL, DOCKER_TIMEOUT_S, &r);
		if (rc < 0)
			rc = ODX_EIO;
		else if (r.status != 400)
			break;
	}
	if (rc == 0) {
		const char *s = json_string_value(json_object_get(r.body, "DockerRootDir"));
		size_t n = s ? strlen(s) : 0;
		if (r.status != 200 || !root_ok(s, n)) {
			rc = ODX_EINVAL;
		} else {
			memcpy(out, s, n + 1);
		}
	}
	client_reply_done(&r);
	client_free(c);
	return rc;
}

static int sample_memory(struct sample *s)
{
	char buf[PROC_READ_MAX];
	ssize_t n = read_head("/proc/meminfo", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	return sample_meminfo_parse(buf, (size_t)n, &s->mem_total, &s->mem_used);
}

static int sample_cpu(struct sample *s, struct sample_cpu *prev)
{
	char buf[PROC_READ_MAX];
	struct sample_cpu cur;
	ssize_t n = read_head("/proc/stat", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	int rc = sample_stat_parse(buf, (size_t)n, &cur);
	if (rc < 0)
		return rc;
	/* The first sample has nothing to compare with: 0 %. */
	s->cpu_percent = prev->total != 0 ? sample_cpu_percent(prev, &cur) : 0.0;
	*prev = cur;
	return 0;
}

static int sample_disk(struct sample *s)
{
	struct statvfs v;
	uint64_t total, used;

	if (statvfs(s->docker_root, &v) != 0)
		return -errno;
	if (__builtin_mul_overflow((uint64_t)v.f_blocks, (uint64_t)v.f_frsize, &total) ||
	    __builtin_mul_overflow((uint64_t)(v.f_blocks >= v.f_bfree ? v.f_blocks - v.f_bfree : 0),
				   (uint64_t)v.f_frsize, &used))
		return ODX_EINVAL;
	s->disk_total = total;
	s->disk_used = used;
	return 0;
}

int sample_collect(struct sample *s, struct sample_cpu *prev)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int rc = 0, r;

	s->cpus = cpus > 0 ? cpus : 0;
	s->mem_total = s->mem_used = s->disk_total = s->disk_used = 0;
	s->cpu_percent = 0.0;
	if ((r = sample_memory(s)) < 0)
		rc = r;
	if ((r = sample_cpu(s, prev)) < 0 && rc == 0)
		rc = r;
	if ((r = sample_disk(s)) < 0 && rc == 0)
		rc = r;
	return rc;
}
