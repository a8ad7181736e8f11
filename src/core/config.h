/*
 * config.h — odysseusd settings from defaults, a config file, the
 * environment and command-line flags, in rising precedence (flags win).
 *
 * File format: one `key = value` per line, `#` starts a comment; keys are
 * the long flag names without dashes (`listen`, `data-dir`, `threads`).
 * Environment: ODYSSEUS_<KEY> with dashes as underscores (ODYSSEUS_DATA_DIR).
 */
#ifndef ODX_CONFIG_H
#define ODX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_STR_MAX 4096

struct config {
	char data_dir[CONFIG_STR_MAX];
	char audit_dir[CONFIG_STR_MAX]; /* audit.db's directory; "" = data_dir */
	char kek_file[CONFIG_STR_MAX];	/* the secrets' key-encryption key; "" = <data_dir>.kek */
	char listen[256]; /* host:port; [v6]:port */
	char agent_listen[256]; /* the agent API (mTLS) */
	char bootstrap_token_file[CONFIG_STR_MAX]; /* write a first node's enrollment token here */
	char tls_cert[CONFIG_STR_MAX];
	char tls_key[CONFIG_STR_MAX];
	char log_level[16];
	char config_file[CONFIG_STR_MAX];
	char trivy[CONFIG_STR_MAX]; /* the Trivy CLI: a path, or a name looked up in PATH */
	char grype[CONFIG_STR_MAX];
	long threads; /* event loops; 0 = one per core */
	long workers; /* worker threads for blocking work */
	long argon2_memory_kib;
	long argon2_iterations;
	long agent_cert_lifetime;  /* seconds */
	long heartbeat_interval;   /* seconds */
	long scan_timeout;	   /* seconds one engine may take on one image */
	long scan_rescan_floor;	   /* the shortest rescan interval a tenant may set (seconds) */
	long node_grace;	   /* seconds without heartbeat before unreachable; 0 = 3x interval */
	bool plain_http;
};

/* Fills cfg with defaults. */
void config_defaults(struct config *cfg);
/*
 * Applies file (if --config or ODYSSEUS_CONFIG names one), environment,
 * then argv[0..argc). Unknown keys and bad values are errors: writes a
 * message into err and returns ODX_EINVAL.
 */
int config_load(struct config *cfg, int argc, char **argv, char *err, size_t errlen);

#endif
