/* engine.c — see engine.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/timeutil.h"
#include "scan/engine.h"

static bool executable(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

bool scan_engine_find(const char *configured, char *out, size_t cap)
{
	if (!configured || !configured[0])
		return false;
	if (strchr(configured, '/')) {
		if (!executable(configured) || (size_t)snprintf(out, cap, "%s", configured) >= cap)
			return false;
		return true;
	}
	const char *path = getenv("PATH");
	for (const char *p = path ? path : "/usr/local/bin:/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");
		char cand[4096];
		if (n && (size_t)snprintf(cand, sizeof(cand), "%.*s/%s", (int)n, p, configured) <
			     sizeof(cand) &&
		    executable(cand)) {
			snprintf(out, cap, "%s", cand);
			return cap > strlen(cand);
		}
		p += n + (p[n] == ':');
	}
	return false;
}

/* The engine's environment: what it needs to find its cache and the Docker Engine. */
static void make_env(char store[4][4096], char *envp[5])
{
	static const char *const keep[] = {"PATH", "HOME", "TMPDIR", "DOCKER_HOST"};
	int n = 0;
	for (size_t i = 0; i < 4; i++) {
		const char *v = getenv(keep[i]);
		if (v && (size_t)snprintf(store[n], 4096, "%s=%s", keep[i], v) < 4096)
			envp[n] = store[n], n++;
	}
	envp[n] = NULL;
}

/* Keeps the last SCAN_ENGINE_ERR_LEN-1 bytes of stderr. */
static void keep_tail(char *tail, size_t *len, const char *buf, size_t n)
{
	const size_t cap = SCAN_ENGINE_ERR_LEN - 1;
	if (n >= cap) {
		memcpy(tail, buf + n - cap, cap);
		*len = cap;
	} else {
		if (*len + n > cap) {
			size_t drop = *len + n - cap;
			memmove(tail, tail + drop, *len - drop);
			*len -= drop;
		}
		memcpy(tail + *len, buf, n);
		*len += n;
	}
	tail[*len] = '\0';
}

struct run {
	int out_fd, err_fd;
	char *report;
	size_t len, cap, max;
	char tail[SCAN_ENGINE_ERR_LEN];
	size_t tail_len;
};

/* Reads what fd has; 0 at EOF, 1 for more, negative on error or when over max. */
static int drain(struct run *r, int fd)
{
	char buf[65536];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : -errno;
	if (n == 0)
		return 0;
	if (fd == r->err_fd) {
		keep_tail(r->tail, &r->tail_len, buf, (size_t)n);
		return 1;
	}
	if ((size_t)n > r->max - r->len)
		return ODX_ETOOBIG;
	if (r->len + (size_t)n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 1 << 20;
		while (cap < r->len + (size_t)n + 1)
			cap *= 2;
		char *p = realloc(r->report, cap);
		if (!p)
			return ODX_ENOMEM;
		r->report = p;
		r->cap = cap;
	}
	memcpy(r->report + r->len, buf, (size_t)n);
	r->len += (size_t)n;
	r->report[r->len] = '\0';
	return 1;
}

/* Reads both pipes until EOF on both, the deadline or a cancel; 0, ODX_EBUSY or an error. */
static int collect(struct run *r, int64_t deadline_ns, const atomic_bool *cancel)
{
	struct pollfd p[2] = {{r->out_fd, POLLIN, 0}, {r->err_fd, POLLIN, 0}};
	int open_fds = 2;
	while (open_fds) {
		int64_t left_ms = (deadline_ns - time_now_ns()) / 1000000;
		if (left_ms <= 0 || (cancel && atomic_load(cancel)))
			return ODX_EBUSY;
		int n = poll(p, 2, left_ms > 1000 ? 1000 : (int)left_ms);
		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; n > 0 && i < 2; i++) {
			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			int rc = drain(r, p[i].fd);
			if (rc < 0)
				return rc;
			if (rc == 0) {
				p[i].fd = -1;
				open_fds--;
			}
		}
	}
	return 0;
}

static void argv_of(enum scan_engine e, const char *exe, const char *image, const char *argv[8])
{
	int n = 0;
	argv[n++] = exe;
	if (e == SCAN_ENGINE_TRIVY) {
		argv[n++] = "image";
		argv[n++] = "--format";
		argv[n++] = "json";
		argv[n++] = "--quiet";
	} else {
		argv[n++] = "-o";
		argv[n++] = "json";
	}
	argv[n++] = image;
	argv[n] = NULL;
}

/* Starts exe with stdout/stderr on pipes; *pid and the read ends on success. */
static int spawn(const char *const argv[], int *out_fd, int *err_fd, pid_t *pid)
{
	int o[2] = {-1, -1}, e[2] = {-1, -1};
	char envs[4][4096];
	char *envp[5];
	make_env(envs, envp);
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0) {
		int rc = -errno;
		close(o[0]), close(o[1]), close(e[0]), close(e[1]);
		return rc;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, o[1], 1);
	posix_spawn_file_actions_adddup2(&fa, e[1], 2);
	posix_spawnattr_init(&at);
	/* A group of its own: a timeout kills the engine's children too. */
	posix_spawnattr_setpgroup(&at, 0);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
	int rc = posix_spawn(pid, argv[0], &fa, &at, (char *const *)argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(o[1]);
	close(e[1]);
	if (rc != 0) {
		close(o[0]);
		close(e[0]);
		return -rc;
	}
	*out_fd = o[0];
	*err_fd = e[0];
	return 0;
}

/* The error text: what happened, then the end of stderr (engines say why there). */
static void describe(struct scan_engine_output *out, const char *what, const struct run *r)
{
	snprintf(out->error, sizeof(out->error), "%s%s%.*s", what, r->tail_len ? ": " : "",
		 (int)(sizeof(out->error) - strlen(what) - 3), r->tail);
	/* One line for logs and JSON readers. */
	for (char *c = out->error; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
}

int scan_engine_run(enum scan_engine engine, const char *exe, const char *image, int timeout_s,
		    size_t max_out, const atomic_bool *cancel, struct scan_engine_output *out)
{
	const char *argv[8];
	argv_of(engine, exe, image, argv);
	memset(out, 0, sizeof(*out));
	struct run r = {.max = max_out};
	pid_t pid;
	int rc = spawn(argv, &r.out_fd, &r.err_fd, &pid);
	if (rc < 0) {
		snprintf(out->error, sizeof(out->error), "cannot start %s: %s",
			 scan_engine_name(engine), strerror(-rc));
		return ODX_EUNAVAIL;
	}
	rc = collect(&r, time_now_ns() + (int64_t)timeout_s * NSEC_PER_SEC, cancel);
	if (rc < 0)
		kill(-pid, SIGKILL);
	close(r.out_fd);
	close(r.err_fd);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	char what[96];
	if (rc == ODX_EBUSY && cancel && atomic_load(cancel))
		snprintf(what, sizeof(what), "stopped: the daemon is shutting down");
	else if (rc == ODX_EBUSY)
		snprintf(what, sizeof(what), "timed out after %d s", timeout_s);
	else if (rc == ODX_ETOOBIG)
		snprintf(what, sizeof(what), "report larger than %zu bytes", max_out);
	else if (rc < 0)
		snprintf(what, sizeof(what), "reading its output failed: %s", odx_strerror(rc));
	else if (WIFSIGNALED(status))
		snprintf(what, sizeof(what), "killed by signal %d", WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0)
		snprintf(what, sizeof(what), "exited with status %d", WEXITSTATUS(status));
	else if (!r.len)
		snprintf(what, sizeof(what), "printed no report");
	else {
		out->report = r.report;
		out->len = r.len;
		return 0;
	}
	describe(out, what, &r);
	free(r.report);
	return rc < 0 ? rc : ODX_EUNAVAIL;
}

void scan_engine_output_done(struct scan_engine_output *out)
{
	free(out->report);
	out->report = NULL;
	out->len = 0;
}
