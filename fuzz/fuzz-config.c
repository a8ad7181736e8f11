/*
 * fuzz-config.c — the odysseusd config file parser (config_load).
 *
 * Each input is written to a file in a temporary directory and loaded with
 * `--config FILE`. The same bytes, split at NUL bytes, are also given as
 * command-line flags (any argument naming "config" is dropped, so the
 * harness never reads a file the input names).
 *
 * Oracles (abort on violation): config_load returns 0 or ODX_EINVAL; on
 * failure the message is a NUL-terminated string; on success every string
 * field is NUL-terminated inside its buffer and every number is inside the
 * range config.c declares for it.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/err.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 32

static char dir[64];
static char path[128];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	static const char *const env[] = {
		"ODYSSEUS_DATA_DIR", "ODYSSEUS_LISTEN", "ODYSSEUS_TLS_CERT", "ODYSSEUS_TLS_KEY",
		"ODYSSEUS_LOG_LEVEL", "ODYSSEUS_CONFIG", "ODYSSEUS_THREADS", "ODYSSEUS_WORKERS",
		"ODYSSEUS_ARGON2_MEMORY_KIB", "ODYSSEUS_ARGON2_ITERATIONS", "ODYSSEUS_PLAIN_HTTP",
	};
	for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
		unsetenv(env[i]);
	snprintf(dir, sizeof(dir), "/tmp/odx-fuzz-config-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/odysseusd.conf", dir);
	atexit(cleanup);
	return 0;
}

static void check(const struct config *cfg, int rc, const char *err, size_t errlen)
{
	if (rc != 0) {
		if (rc != ODX_EINVAL || strnlen(err, errlen) >= errlen)
			abort();
		return;
	}
	if (strnlen(cfg->data_dir, sizeof(cfg->data_dir)) >= sizeof(cfg->data_dir) ||
	    strnlen(cfg->listen, sizeof(cfg->listen)) >= sizeof(cfg->listen) ||
	    strnlen(cfg->tls_cert, sizeof(cfg->tls_cert)) >= sizeof(cfg->tls_cert) ||
	    strnlen(cfg->tls_key, sizeof(cfg->tls_key)) >= sizeof(cfg->tls_key) ||
	    strnlen(cfg->log_level, sizeof(cfg->log_level)) >= sizeof(cfg->log_level) ||
	    strnlen(cfg->config_file, sizeof(cfg->config_file)) >= sizeof(cfg->config_file))
		abort();
	if (cfg->threads < 0 || cfg->threads > 64 || cfg->workers < 1 || cfg->workers > 256 ||
	    cfg->argon2_memory_kib < 8192 || cfg->argon2_memory_kib > 4194304 ||
	    cfg->argon2_iterations < 1 || cfg->argon2_iterations > 64)
		abort();
}

static void as_file(const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "w");
	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	char a0[] = "--config";
	char *argv[] = {a0, path};
	struct config cfg;
	char err[512];
	memset(err, 'X', sizeof(err));
	config_defaults(&cfg);
	int rc = config_load(&cfg, 2, argv, err, sizeof(err));
	check(&cfg, rc, err, sizeof(err));
}

static void as_flags(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1);
	if (!copy)
		return;
	memcpy(copy, data, size);
	copy[size] = '\0';
	char *argv[MAX_ARGS];
	int argc = 0;
	for (size_t i = 0; i <= size && argc < MAX_ARGS;) {
		char *arg = copy + i;
		size_t n = strlen(arg);
		if (!strstr(arg, "config"))
			argv[argc++] = arg;
		i += n + 1;
	}
	struct config cfg;
	char err[512];
	memset(err, 'X', sizeof(err));
	config_defaults(&cfg);
	int rc = config_load(&cfg, argc, argv, err, sizeof(err));
	check(&cfg, rc, err, sizeof(err));
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	as_file(data, size);
	as_flags(data, size);
	return 0;
}
