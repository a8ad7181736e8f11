/*
 * sample.h — what a node reports in its heartbeat: CPUs, memory, CPU use and
 * the disk holding the Docker data root.
 *
 * Sources: sysconf(_SC_NPROCESSORS_ONLN); /proc/meminfo (MemTotal,
 * MemAvailable); the aggregate "cpu" line of /proc/stat, read twice and
 * compared; statvfs(2) of the Docker data root, which the Docker Engine
 * names in GET /info (DockerRootDir) over its unix socket, else
 * /var/lib/docker when it exists, else "/".
 *
 * The parsers take a buffer so that they can be tested without /proc; they
 * read at most the given length and never trust a number to fit.
 */
#ifndef ODX_AGENT_SAMPLE_H
#define ODX_AGENT_SAMPLE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SAMPLE_PATH_MAX	      1024 /* longest docker_root kept */
#define SAMPLE_DOCKER_SOCKET  "/var/run/docker.sock"
#define SAMPLE_DOCKER_DEFAULT "/var/lib/docker"

/* Counters of the aggregate cpu line of /proc/stat, in USER_HZ ticks. */
struct sample_cpu {
	uint64_t total; /* user+nice+system+idle+iowait+irq+softirq+steal */
	uint64_t idle;	/* idle+iowait */
};

struct sample {
	int64_t cpus;
	uint64_t mem_total, mem_used;	/* bytes */
	uint64_t disk_total, disk_used; /* bytes, of the file system of docker_root */
	double cpu_percent;		/* 0..100, since the previous sample */
	char docker_root[SAMPLE_PATH_MAX];
};

/*
 * Parses /proc/meminfo text (buf[0..len), need not be NUL-terminated) into
 * bytes: *total = MemTotal, *used = MemTotal - MemAvailable (0 if negative).
 * Returns 0, or ODX_EINVAL when either line is missing or malformed.
 */
int sample_meminfo_parse(const char *buf, size_t len, uint64_t *total, uint64_t *used);
/*
 * Parses the first line of /proc/stat text ("cpu  user nice system idle
 * [iowait irq softirq steal ...]", at least the first four) into *out.
 * Returns 0 or ODX_EINVAL.
 */
int sample_stat_parse(const char *buf, size_t len, struct sample_cpu *out);
/*
 * Busy share of the CPU time between two samples, 0..100. 0 when no time
 * passed or the counters went backwards (a reset).
 */
double sample_cpu_percent(const struct sample_cpu *prev, const struct sample_cpu *cur);

/*
 * Asks the Docker Engine at socket_path for its data root (GET /info,
 * DockerRootDir) within about two seconds. Writes an absolute path into
 * out[SAMPLE_PATH_MAX]. Gives up early once *stop (may be NULL) is true.
 * Returns 0, ODX_EIO when Docker does not answer, or ODX_EINVAL when the
 * answer is not usable.
 */
int sample_docker_root(const char *socket_path, atomic_bool *stop,
		       char out[static SAMPLE_PATH_MAX]);

/*
 * Fills s: cpus, memory, cpu_percent against *prev (updated; pass a zeroed
 * one the first time, which gives 0 %) and the disk of s->docker_root,
 * which the caller sets first. Returns 0 or the first error met; fields
 * that could not be read are 0.
 */
int sample_collect(struct sample *s, struct sample_cpu *prev);

#endif
