/* test-config.c — odysseusd settings: defaults < file < environment < flags. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/err.h"

static const char *const env_names[] = {
	"ODYSSEUS_DATA_DIR",  "ODYSSEUS_LISTEN",  "ODYSSEUS_TLS_CERT",
	"ODYSSEUS_TLS_KEY",   "ODYSSEUS_LOG_LEVEL", "ODYSSEUS_CONFIG",
	"ODYSSEUS_THREADS",   "ODYSSEUS_WORKERS", "ODYSSEUS_ARGON2_MEMORY_KIB",
	"ODYSSEUS_ARGON2_ITERATIONS", "ODYSSEUS_PLAIN_HTTP",
};

struct ctx {
	char dir[64];
	char file[128];
};

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
		unsetenv(env_names[i]);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/odx-test-config-XXXXXX");
	if (!mkdtemp(c->dir))
		return -1;
	snprintf(c->file, sizeof(c->file), "%s/odysseusd.conf", c->dir);
	clear_env();
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	clear_env();
	unlink(c->file);
	rmdir(c->dir);
	free(c);
	return 0;
}

static void write_file(const char *path, const char *text, size_t n)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* config_load on a fresh default config with the given flags. */
static int load(struct config *cfg, char *err, size_t errlen, int argc, ...)
{
	char *argv[16];
	va_list ap;
	va_start(ap, argc);
	for (int i = 0; i < argc && i < 16; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	config_defaults(cfg);
	err[0] = '\0';
	return config_load(cfg, argc, argv, err, errlen);
}

static int load_text(struct ctx *c, struct config *cfg, char *err, size_t errlen, const char *text)
{
	write_file(c->file, text, strlen(text));
	return load(cfg, err, errlen, 2, "--config", c->file);
}

static void test_defaults(void **state)
{
	(void)state;
	struct config cfg;
	char err[256];
	assert_int_equal(load(&cfg, err, sizeof(err), 0), 0);
	assert_string_equal(cfg.data_dir, "/var/lib/odysseus");
	assert_string_equal(cfg.listen, "127.0.0.1:8443");
	assert_string_equal(cfg.log_level, "info");
	assert_int_equal(cfg.threads, 0);
	assert_int_equal(cfg.argon2_memory_kib, 19456);
	assert_int_equal(cfg.argon2_iterations, 2);
	assert_false(cfg.plain_http);
	assert_string_equal(cfg.tls_cert, "");
}

static void test_file(void **state)
{
	struct ctx *c = *state;
	struct config cfg;
	char err[256];
	assert_int_equal(load_text(c, &cfg, err, sizeof(err),
				   "# odysseusd\n"
				   "\n"
				   "data-dir = /srv/odx   # trailing comment\n"
				   "  listen=[::1]:9443\n"
				   "threads = 4\r\n"
				   "plain-http = yes\n"
				   "argon2-memory-kib = 65536\n"
				   "log-level = debug"), /* no final newline */
			 0);
	assert_string_equal(cfg.data_dir, "/srv/odx");
	assert_string_equal(cfg.listen, "[::1]:9443");
	assert_int_equal(cfg.threads, 4);
	assert_true(cfg.plain_http);
	assert_int_equal(cfg.argon2_memory_kib, 65536);
	assert_string_equal(cfg.log_level, "debug");
}

static void test_file_errors(void **state)
{
	struct ctx *c = *state;
	struct config cfg;
	char err[256];
	const char *bad[] = {
		"nosuchkey = 1\n",
		"listen\n",
		"config = /etc/other.conf\n", /* no nesting */
		"threads = 65\n",
		"threads = -1\n",
		"threads = 4x\n",
		"threads = \n",
		"threads = 0x10\n",
		"argon2-memory-kib = 1024\n", /* below the floor */
		"plain-http = maybe\n",
		"--listen = x\n",
		"data-dir = /a\nworkers = 0\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = load_text(c, &cfg, err, sizeof(err), bad[i]);
		if (rc != ODX_EINVAL)
			fail_msg("config file accepted: %s", bad[i]);
		assert_true(err[0] != '\0');
	}
	/* the message points at the line */
	assert_int_equal(load_text(c, &cfg, err, sizeof(err), "listen = a:1\n\nbogus = 2\n"), ODX_EINVAL);
	assert_non_null(strstr(err, ":3:"));
	/* a missing file */
	assert_int_equal(load(&cfg, err, sizeof(err), 2, "--config", "/nonexistent/odx.conf"),
			 ODX_EINVAL);
}

static void test_value_too_long(void **state)
{
	struct ctx *c = *state;
	struct config cfg;
	char err[256];
	size_t n = CONFIG_STR_MAX + 100;
	char *text = malloc(n);
	assert_non_null(text);
	int len = snprintf(text, n, "data-dir = ");
	memset(text + len, 'a', CONFIG_STR_MAX);
	text[len + CONFIG_STR_MAX] = '\n';
	write_file(c->file, text, (size_t)len + CONFIG_STR_MAX + 1);
	assert_int_equal(load(&cfg, err, sizeof(err), 2, "--config", c->file), ODX_EINVAL);
	/* one shorter fits */
	text[len + CONFIG_STR_MAX - 1] = '\n';
	write_file(c->file, text, (size_t)len + CONFIG_STR_MAX);
	assert_int_equal(load(&cfg, err, sizeof(err), 2, "--config", c->file), 0);
	assert_int_equal(strlen(cfg.data_dir), CONFIG_STR_MAX - 1);
	free(text);
	/* the listen buffer is smaller */
	char big[400];
	memset(big, 'h', 300);
	big[300] = '\0';
	char flag[320];
	snprintf(flag, sizeof(flag), "--listen=%s", big);
	assert_int_equal(load(&cfg, err, sizeof(err), 1, flag), ODX_EINVAL);
}

static void test_long_comment_is_not_a_directive(void **state)
{
	/*
	 * A comment line longer than the parser's line buffer must stay a
	 * comment (or be refused as too long): its tail may not be read as a
	 * setting of its own.
	 */
	struct ctx *c = *state;
	struct config cfg;
	char err[256];
	for (size_t pad = CONFIG_STR_MAX; pad < CONFIG_STR_MAX + 200; pad++) {
		size_t n = pad + 64;
		char *text = malloc(n);
		assert_non_null(text);
		text[0] = '#';
		memset(text + 1, 'x', pad - 1);
		int tail = snprintf(text + pad, n - pad, "listen = 203.0.113.66:1\n");
		write_file(c->file, text, pad + (size_t)tail);
		free(text);
		int rc = load(&cfg, err, sizeof(err), 2, "--config", c->file);
		if (rc == 0 && strcmp(cfg.listen, "203.0.113.66:1") == 0)
			fail_msg("the tail of a %zu-byte comment line was applied as a setting", pad);
	}
}

static void test_env_and_flags(void **state)
{
	struct ctx *c = *state;
	struct config cfg;
	char err[256];
	const char *text = "listen = 127.0.0.1:1000\nthreads = 2\nlog-level = warn\n";
	write_file(c->file, text, strlen(text));
	setenv("ODYSSEUS_LISTEN", "127.0.0.1:2000", 1);
	setenv("ODYSSEUS_THREADS", "3", 1);
	/* env beats file */
	assert_int_equal(load(&cfg, err, sizeof(err), 2, "--config", c->file), 0);
	assert_string_equal(cfg.listen, "127.0.0.1:2000");
	assert_int_equal(cfg.threads, 3);
	assert_string_equal(cfg.log_level, "warn");
	/* flags beat env, in both spellings */
	assert_int_equal(load(&cfg, err, sizeof(err), 4, "--config", c->file, "--listen=127.0.0.1:3000",
			      "--threads=5"),
			 0);
	assert_string_equal(cfg.listen, "127.0.0.1:3000");
	assert_int_equal(cfg.threads, 5);
	assert_int_equal(load(&cfg, err, sizeof(err), 4, "--threads", "6", "--config", c->file), 0);
	assert_int_equal(cfg.threads, 6);
	/* ODYSSEUS_CONFIG names the file when --config does not */
	unsetenv("ODYSSEUS_LISTEN");
	unsetenv("ODYSSEUS_THREADS");
	setenv("ODYSSEUS_CONFIG", c->file, 1);
	assert_int_equal(load(&cfg, err, sizeof(err), 0), 0);
	assert_string_equal(cfg.listen, "127.0.0.1:1000");
	unsetenv("ODYSSEUS_CONFIG");
	/* bad environment values are errors, not ignored */
	setenv("ODYSSEUS_THREADS", "many", 1);
	assert_int_equal(load(&cfg, err, sizeof(err), 0), ODX_EINVAL);
	unsetenv("ODYSSEUS_THREADS");
	setenv("ODYSSEUS_PLAIN_HTTP", "1", 1);
	assert_int_equal(load(&cfg, err, sizeof(err), 0), 0);
	assert_true(cfg.plain_http);
	assert_int_equal(load(&cfg, err, sizeof(err), 1, "--plain-http=false"), 0);
	assert_false(cfg.plain_http);
	unsetenv("ODYSSEUS_PLAIN_HTTP");
}

static void test_flag_errors(void **state)
{
	(void)state;
	struct config cfg;
	char err[256];
	assert_int_equal(load(&cfg, err, sizeof(err), 1, "--plain-http"), 0);
	assert_true(cfg.plain_http);
	assert_int_equal(load(&cfg, err, sizeof(err), 1, "--nope"), ODX_EINVAL);
	assert_int_equal(load(&cfg, err, sizeof(err), 1, "--listen"), ODX_EINVAL); /* needs a value */
	assert_int_equal(load(&cfg, err, sizeof(err), 1, "listen=x"), ODX_EINVAL);
	assert_int_equal(load(&cfg, err, sizeof(err), 1, "-listen=x"), ODX_EINVAL);
	assert_int_equal(load(&cfg, err, sizeof(err), 1, "--threads=99999999999999999999"), ODX_EINVAL);
	assert_int_equal(load(&cfg, err, sizeof(err), 1, "--threads= 1"), ODX_EINVAL);
	assert_int_equal(load(&cfg, err, sizeof(err), 1, "--listen-x=1"), ODX_EINVAL);
	assert_int_equal(load(&cfg, err, sizeof(err), 1, "--"), ODX_EINVAL);
	assert_int_equal(load(&cfg, err, sizeof(err), 1, "--=x"), ODX_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_value_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_comment_is_not_a_directive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_and_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flag_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
