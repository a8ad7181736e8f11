/* config.c — see config.h. */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/encoding.h"
#include "core/err.h"

enum opt_type { OPT_STR, OPT_LONG, OPT_BOOL };

struct opt {
	const char *name;
	enum opt_type type;
	size_t offset;
	size_t size; /* strings: buffer size */
	long min, max;
};

#define STR(n, f)                                                                                  \
	{                                                                                          \
		n, OPT_STR, offsetof(struct config, f), sizeof(((struct config *)0)->f), 0, 0      \
	}
#define LONG(n, f, lo, hi)                                                                         \
	{                                                                                          \
		n, OPT_LONG, offsetof(struct config, f), 0, lo, hi                                 \
	}
#define BOOL(n, f)                                                                                 \
	{                                                                                          \
		n, OPT_BOOL, offsetof(struct config, f), 0, 0, 0                                   \
	}

static const struct opt opts[] = {
    STR("data-dir", data_dir),
    STR("audit-dir", audit_dir),
    STR("kek-file", kek_file),
    STR("listen", listen),
    STR("agent-listen", agent_listen),
    STR("bootstrap-token-file", bootstrap_token_file),
    STR("tls-cert", tls_cert),
    STR("tls-key", tls_key),
    STR("log-level", log_level),
    STR("config", config_file),
    STR("trivy", trivy),
    STR("grype", grype),
    LONG("threads", threads, 0, 64),
    LONG("workers", workers, 1, 256),
    LONG("argon2-memory-kib", argon2_memory_kib, 8192, 4194304),
    LONG("argon2-iterations", argon2_iterations, 1, 64),
    LONG("agent-cert-lifetime", agent_cert_lifetime, 5, 30 * 86400),
    LONG("heartbeat-interval", heartbeat_interval, 1, 300),
    LONG("node-grace", node_grace, 0, 86400),
    LONG("scan-timeout", scan_timeout, 1, 3600),
    LONG("scan-rescan-floor", scan_rescan_floor, 1, 86400),
    BOOL("plain-http", plain_http),
};

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "/var/lib/odysseus");
	snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:8443");
	snprintf(cfg->agent_listen, sizeof(cfg->agent_listen), "127.0.0.1:8444");
	cfg->agent_cert_lifetime = 86400; /* SPEC §2: short-lived, 24 h */
	cfg->heartbeat_interval = 5;
	snprintf(cfg->log_level, sizeof(cfg->log_level), "info");
	cfg->threads = 0;
	cfg->workers = 4;
	cfg->argon2_memory_kib = 19456; /* OWASP's Argon2id minimum: m=19 MiB, t=2, p=1 */
	cfg->argon2_iterations = 2;
	/* The scanners' CLIs, looked up in PATH; a missing one is reported per scan. */
	snprintf(cfg->trivy, sizeof(cfg->trivy), "trivy");
	snprintf(cfg->grype, sizeof(cfg->grype), "grype");
	cfg->scan_timeout = 600;
	cfg->scan_rescan_floor = 3600;
}

static const struct opt *opt_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
			return &opts[i];
	return NULL;
}

static int opt_set(struct config *cfg, const struct opt *o, const char *value, char *err,
		   size_t errlen)
{
	char *base = (char *)cfg + o->offset;
	switch (o->type) {
	case OPT_STR:
		if (strlen(value) >= o->size) {
			snprintf(err, errlen, "%s: value too long", o->name);
			return ODX_EINVAL;
		}
		memcpy(base, value, strlen(value) + 1);
		return 0;
	case OPT_LONG: {
		int64_t v;
		if (parse_int64(value, o->min, o->max, &v) < 0) {
			snprintf(err, errlen, "%s: expected an integer in [%ld, %ld]", o->name,
				 o->min, o->max);
			return ODX_EINVAL;
		}
		*(long *)base = (long)v;
		return 0;
	}
	case OPT_BOOL:
		if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0 ||
		    strcmp(value, "yes") == 0)
			*(bool *)base = true;
		else if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0 ||
			 strcmp(value, "no") == 0)
			*(bool *)base = false;
		else {
			snprintf(err, errlen, "%s: expected true or false", o->name);
			return ODX_EINVAL;
		}
		return 0;
	}
	return ODX_EINVAL;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static int load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open config file %s", path);
		return ODX_EINVAL;
	}
	char line[CONFIG_STR_MAX + 64];
	int lineno = 0, rc = 0;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		lineno++;
		/* A line longer than the buffer would be split and its tail read as a line. */
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			rc = ODX_EINVAL;
			break;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *s = trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected key = value", path, lineno);
			rc = ODX_EINVAL;
			break;
		}
		*eq = '\0';
		char *key = trim(s), *value = trim(eq + 1);
		const struct opt *o = opt_find(key, strlen(key));
		if (!o || strcmp(key, "config") == 0) {
			snprintf(err, errlen, "%s:%d: unknown key '%.64s'", path, lineno, key);
			rc = ODX_EINVAL;
			break;
		}
		char sub[128];
		rc = opt_set(cfg, o, value, sub, sizeof(sub));
		if (rc < 0)
			snprintf(err, errlen, "%s:%d: %s", path, lineno, sub);
	}
	fclose(f);
	return rc;
}

static int load_env(struct config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		char name[64] = "ODYSSEUS_";
		size_t n = strlen(name);
		for (const char *p = opts[i].name; *p && n + 1 < sizeof(name); p++)
			name[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
		name[n] = '\0';
		const char *v = getenv(name);
		if (v && opts[i].offset != offsetof(struct config, config_file)) {
			int rc = opt_set(cfg, &opts[i], v, err, errlen);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* Applies --flags; with apply=false only finds --config. */
static int load_flags(struct config *cfg, int argc, char **argv, bool apply, char *err,
		      size_t errlen)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) != 0) {
			snprintf(err, errlen, "unexpected argument '%s'", a);
			return ODX_EINVAL;
		}
		a += 2;
		const char *eq = strchr(a, '=');
		size_t klen = eq ? (size_t)(eq - a) : strlen(a);
		const struct opt *o = opt_find(a, klen);
		if (!o) {
			snprintf(err, errlen, "unknown flag --%.*s", (int)klen, a);
			return ODX_EINVAL;
		}
		const char *value = eq ? eq + 1 : NULL;
		if (!value && o->type == OPT_BOOL)
			value = "true";
		if (!value) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "--%s needs a value", o->name);
				return ODX_EINVAL;
			}
			value = argv[++i];
		}
		bool is_config = o->offset == offsetof(struct config, config_file);
		if (apply != is_config) {
			int rc = opt_set(cfg, o, value, err, errlen);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

int config_load(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	int rc = load_flags(cfg, argc, argv, false, err, errlen);
	if (rc < 0)
		return rc;
	const char *env_file = getenv("ODYSSEUS_CONFIG");
	if (!cfg->config_file[0] && env_file)
		rc = opt_set(cfg, opt_find("config", 6), env_file, err, errlen);
	if (rc == 0 && cfg->config_file[0])
		rc = load_file(cfg, cfg->config_file, err, errlen);
	if (rc == 0)
		rc = load_env(cfg, err, errlen);
	if (rc == 0)
		rc = load_flags(cfg, argc, argv, true, err, errlen);
	return rc;
}
