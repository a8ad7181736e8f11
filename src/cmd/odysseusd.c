/*
 * odysseusd — the Odysseus control plane.
 *
 *   odysseusd init [--admin-email E] [--password-stdin] [serve flags]
 *   odysseusd serve [--config F] [--data-dir D] [--listen H:P] [--plain-http]
 *                   [--tls-cert F --tls-key F] [--threads N] [--workers N]
 *                   [--argon2-memory-kib N] [--argon2-iterations N] [--log-level L]
 *   odysseusd keys rotate [--data-dir D]
 *   odysseusd routes
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentapi/agentapi.h"
#include "api/api.h"
#include "audit/audit.h"
#include "auth/enroll.h"
#include "auth/jwt.h"
#include "auth/keyring.h"
#include "auth/password.h"
#include "auth/throttle.h"
#include "core/config.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "crypto/random.h"
#include "crypto/x509.h"
#include "http/server.h"
#include "sched/actions.h"
#include "sched/node.h"
#include "sched/scheduler.h"
#include "secrets/kek.h"
#include "secrets/keyring.h"
#include "store/store.h"
#include "tenancy/tenancy.h"

#define DRAIN_SECONDS 25

static void usage(FILE *f)
{
	fputs(
	    "usage: odysseusd init [--admin-email EMAIL] [--password-stdin] [--data-dir DIR]\n"
	    "       odysseusd serve [--config FILE] [--data-dir DIR] [--audit-dir DIR] [--kek-file FILE]\n"
	    "                       [--listen HOST:PORT] [--plain-http] [--tls-cert FILE --tls-key FILE]\n"
	    "                       [--agent-listen HOST:PORT] [--agent-cert-lifetime SECONDS]\n"
	    "                       [--heartbeat-interval SECONDS] [--node-grace SECONDS]\n"
	    "                       [--bootstrap-token-file FILE] [--threads N] [--workers N]\n"
	    "                       [--argon2-memory-kib N] [--argon2-iterations N]\n"
	    "                       [--trivy PATH] [--grype PATH] [--scan-timeout SECONDS]\n"
	    "                       [--scan-rescan-floor SECONDS]\n"
	    "                       [--log-level debug|info|warn|error]\n"
	    "       odysseusd keys rotate [--data-dir DIR]\n"
	    "       odysseusd ca rotate [--data-dir DIR]\n"
	    "       odysseusd kek rotate --new-kek-file FILE [--kek-file FILE] [--data-dir DIR]\n"
	    "       odysseusd routes\n",
	    f);
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "odysseusd: %s: %s\n", what, odx_strerror(rc));
	return 1;
}

static int load_config(struct config *cfg, int argc, char **argv)
{
	char err[512];
	config_defaults(cfg);
	if (config_load(cfg, argc, argv, err, sizeof(err)) < 0) {
		fprintf(stderr, "odysseusd: %s\n", err);
		return -1;
	}
	enum log_level lvl;
	if (log_level_parse(cfg->log_level, &lvl) < 0) {
		fprintf(stderr, "odysseusd: log-level must be debug, info, warn or error\n");
		return -1;
	}
	log_set_level(lvl);
	password_set_params((uint32_t)cfg->argon2_memory_kib, (uint32_t)cfg->argon2_iterations);
	return 0;
}

/* Creates the data directory, store, signing keys and PKI as needed. */
static int prepare_data_dir(const struct config *cfg, struct store **store)
{
	if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST)
		return fail(cfg->data_dir, -errno);
	int rc = store_open(cfg->data_dir, store);
	if (rc < 0)
		return fail("opening the store", rc);
	rc = keyring_init_dir(cfg->data_dir);
	if (rc < 0)
		return fail("creating the signing keys", rc);
	char pki[CONFIG_STR_MAX + 8];
	snprintf(pki, sizeof(pki), "%s/pki", cfg->data_dir);
	rc = x509_ensure_pki(pki);
	if (rc < 0)
		return fail("creating the internal CA", rc);
	rc = audit_key_init(cfg->data_dir);
	if (rc < 0)
		return fail("creating the audit signing key", rc);
	return 0;
}

/* Reads one line of stdin as the password (without the newline). */
static int read_password(char *buf, size_t cap)
{
	if (!fgets(buf, (int)cap, stdin))
		return ODX_EINVAL;
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

static int cmd_init(int argc, char **argv)
{
	const char *email_in = "admin@odysseus.local";
	bool from_stdin = false;
	char **rest = calloc((size_t)argc + 1, sizeof(char *));
	int nrest = 0;
	if (!rest)
		return fail("init", ODX_ENOMEM);
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--admin-email") == 0 && i + 1 < argc)
			email_in = argv[++i];
		else if (strcmp(argv[i], "--password-stdin") == 0)
			from_stdin = true;
		else
			rest[nrest++] = argv[i];
	}
	struct config cfg;
	struct store *store = NULL;
	int status = 1;
	if (load_config(&cfg, nrest, rest) < 0 || prepare_data_dir(&cfg, &store) != 0)
		goto out;
	int64_t admins = 0;
	int rc = platform_admin_count(store, &admins);
	if (rc < 0) {
		fail("reading the store", rc);
		goto out;
	}
	if (admins > 0) {
		fprintf(stderr, "odysseusd: %s is already initialized\n", cfg.data_dir);
		goto out;
	}
	char email[EMAIL_MAX + 1], password[PASSWORD_MAX_LEN + 2], hash[PASSWORD_HASH_MAX];
	snprintf(email, sizeof(email), "%s", email_in);
	if (email_normalize(email) < 0) {
		fprintf(stderr, "odysseusd: --admin-email is not a valid email address\n");
		goto out;
	}
	if (from_stdin) {
		if (read_password(password, sizeof(password)) < 0 ||
		    password_policy_check(password, strlen(password)) < 0) {
			fprintf(stderr, "odysseusd: the password must be 12 to 1024 characters\n");
			goto wipe;
		}
	} else {
		uint8_t raw[18];
		if (random_bytes(raw, sizeof(raw)) < 0)
			goto wipe;
		b64url_encode(raw, sizeof(raw), password);
		explicit_bzero(raw, sizeof(raw));
	}
	rc = password_hash(password, strlen(password), hash);
	if (rc == 0)
		rc = platform_admin_create(store, email, hash, NULL);
	if (rc < 0) {
		fail("creating the platform administrator", rc);
		goto wipe;
	}
	printf("initialized %s\n", cfg.data_dir);
	printf("admin email: %s\n", email);
	if (!from_stdin)
		printf("one-time password: %s\n", password); /* shown once; stored only as a hash */
	fflush(stdout);
	status = 0;
wipe:
	explicit_bzero(password, sizeof(password));
out:
	store_free(store);
	free(rest);
	return status;
}

static bool listen_is_loopback(const char *listen)
{
	char host[256];
	const char *colon = listen[0] == '[' ? strchr(listen, ']') : strrchr(listen, ':');
	if (!colon)
		return false;
	size_t n = listen[0] == '[' ? (size_t)(colon - listen - 1) : (size_t)(colon - listen);
	if (n >= sizeof(host))
		return false;
	memcpy(host, listen[0] == '[' ? listen + 1 : listen, n);
	host[n] = '\0';
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return strcmp(host, "localhost") == 0;
}

/* Waits for SIGTERM/SIGINT; meanwhile picks up key rotations every 2 s (and on SIGHUP). */
/* A node went quiet or came back: the signal the incident engine will use. */
static void node_changed(const struct node_info *n, bool unreachable, void *arg)
{
	struct api *api = arg;
	char resource[96];
	snprintf(resource, sizeof(resource), "/v1/nodes/%s", n->id);
	struct audit_record r = {.actor_type = AUDIT_ACTOR_SYSTEM,
				 .action = unreachable ? "node.unreachable" : "node.ready",
				 .resource = resource,
				 .outcome = AUDIT_SUCCESS,
				 .reason = unreachable ? "no heartbeat within the grace period" : ""};
	api_trail_record(api, &r);
	log_event(unreachable ? LOG_WARN : LOG_INFO, r.action,
		  json_pack("{s:s, s:s}", "node", n->id, "name", n->name));
}

/* The main thread's duties between signals: key reloads, the node sweep. */
static void wait_for_stop(struct api *api, const sigset_t *set)
{
	unsigned ticks = 0;
	for (;;) {
		struct timespec ts = {1, 0};
		int sig = sigtimedwait(set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			return;
		int rc = keyring_reload_if_changed(api->keyring);
		if (rc < 0)
			log_event(LOG_ERROR, "keyring reload failed",
				  json_pack("{s:s}", "error", odx_strerror(rc)));
		rc = node_registry_sweep(api->nodes, api->store, time_now_ns(), node_changed, api);
		if (rc < 0)
			log_event(LOG_ERROR, "writing heartbeats failed",
				  json_pack("{s:s}", "error", odx_strerror(rc)));
		sched_tick(api->sched, time_now_ns());
		/* Rotation policies are in minutes at the finest: a look every 30 s. */
		if (++ticks % 30 == 0)
			api_secrets_rotate_due(api);
		/* A look every minute, or at the shortest interval a tenant may set. */
		if (ticks % (unsigned)(api->scan_rescan_floor_s < 60 ? api->scan_rescan_floor_s : 60) == 0)
			api_scans_rescan_due(api);
	}
}

/* Set once the agent server runs; the scheduler may wake before (nobody polls yet). */
static _Atomic(struct http_server *) agent_server;

/*
 * A node's assignments (arg "a") or actions (arg "x") changed: that long poll of
 * the node answers now. One key per kind, so neither re-arms the other's wait.
 */
static void wake_node(const char *node_id, void *arg)
{
	struct http_server *srv = atomic_load(&agent_server);
	char key[48];
	snprintf(key, sizeof(key), "%s:%s", (const char *)arg, node_id ? node_id : "");
	if (srv)
		http_server_wake(srv, node_id ? key : NULL);
}

/*
 * The local agent of the default deployment enrolls like any other, with a
 * token: when asked, and only while no file is there, one is made at start
 * (valid 1 h) and written 0600 for the run script, which removes it after
 * use. Made by the daemon itself, so it is audited like one from the API.
 */
static int write_bootstrap_token(const struct config *cfg, struct api *api)
{
	const char *path = cfg->bootstrap_token_file;
	if (!path[0] || access(path, F_OK) == 0)
		return 0;
	struct enroll_token t;
	char text[ENROLL_TOKEN_LEN];
	int rc = enroll_token_create(api->store, api->ca_fingerprint, 3600, NULL, "system", &t, text);
	if (rc < 0)
		return rc;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	size_t n = strlen(text);
	text[n] = '\n';
	if (fd < 0 || write(fd, text, n + 1) != (ssize_t)(n + 1) || fsync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	explicit_bzero(text, sizeof(text));
	if (rc < 0) {
		unlink(path);
		return rc;
	}
	char resource[96];
	snprintf(resource, sizeof(resource), "/v1/nodes/enrollment-tokens/%s", t.id);
	struct audit_record r = {.actor_type = AUDIT_ACTOR_SYSTEM,
				 .action = "node.enrollment_token.create",
				 .resource = resource,
				 .outcome = AUDIT_SUCCESS,
				 .reason = "bootstrap token file"};
	api_trail_record(api, &r);
	return 0;
}

/* The KEK file: --kek-file, else beside the data directory, never in it (docs/secrets.md). */
static void kek_path(const struct config *cfg, char out[static CONFIG_STR_MAX + 8])
{
	if (cfg->kek_file[0])
		snprintf(out, CONFIG_STR_MAX + 8, "%s", cfg->kek_file);
	else
		snprintf(out, CONFIG_STR_MAX + 8, "%s.kek", cfg->data_dir);
}

/*
 * The secrets' key-encryption key: made on a new install (and said where, since
 * it must be backed up apart from the data), then checked against the data keys
 * before anything is served — a wrong key stops the start and changes nothing.
 */
static int open_secrets(const struct config *cfg, struct api *api)
{
	char id[SECRETS_KEK_ID_LEN], kek[CONFIG_STR_MAX + 8];
	kek_path(cfg, kek);
	int rc = secrets_kek_outside(kek, cfg->data_dir);
	if (rc < 0) {
		fprintf(stderr, "odysseusd: --kek-file %s: %s\n", kek,
			rc == ODX_EINVAL ? "must be outside the data directory" : odx_strerror(rc));
		return rc;
	}
	rc = secrets_kek_current_id(api->store, id);
	bool created = false;
	if (rc == ODX_ENOTFOUND)
		rc = secrets_kek_init(kek, &created);
	if (rc == 0)
		rc = secrets_keyring_open(kek, api->store, &api->secrets);
	if (rc < 0) {
		fprintf(stderr, "odysseusd: %s: %s\n", kek, secrets_kek_strerror(rc));
		return rc;
	}
	if (created)
		log_event(LOG_WARN, "created the secrets' key-encryption key: back it up apart from "
				    "the data directory",
			  json_pack("{s:s}", "kek_file", kek));
	if (!secrets_keyring_locked(api->secrets))
		log_event(LOG_WARN, "secret keys could not be locked in memory (RLIMIT_MEMLOCK)",
			  NULL);
	return 0;
}

/* The CA that certifies agents, and the node inventory. */
static int open_nodes(const struct config *cfg, struct api *api, void **client_ca)
{
	char pki[CONFIG_STR_MAX + 8];
	snprintf(pki, sizeof(pki), "%s/pki", cfg->data_dir);
	int64_t grace = cfg->node_grace ? cfg->node_grace : 3 * cfg->heartbeat_interval;
	X509_STORE *store = NULL;
	int rc = x509_ca_load(pki, &api->ca);
	if (rc == 0)
		rc = x509_ca_fingerprint(api->ca, api->ca_fingerprint);
	if (rc == 0)
		rc = x509_ca_client_store(api->ca, &store);
	if (rc == 0)
		rc = node_registry_open(api->store, grace * NSEC_PER_SEC, &api->nodes);
	api->agent_cert_lifetime_s = cfg->agent_cert_lifetime;
	api->heartbeat_interval_s = (int)cfg->heartbeat_interval;
	*client_ca = store;
	return rc;
}

static int cmd_serve(int argc, char **argv)
{
	struct config cfg;
	if (load_config(&cfg, argc, argv) < 0)
		return 2;
	if (cfg.plain_http && !listen_is_loopback(cfg.listen)) {
		fprintf(stderr, "odysseusd: --plain-http is allowed only on a loopback address\n");
		return 2;
	}
	if (!!cfg.tls_cert[0] != !!cfg.tls_key[0]) {
		fprintf(stderr, "odysseusd: --tls-cert and --tls-key go together\n");
		return 2;
	}
	/* Signals are taken by sigtimedwait in this thread; every other thread blocks them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	struct api api = {0};
	struct http_server *srv = NULL, *agent_srv = NULL;
	void *client_ca = NULL;
	int status = 1;
	if (prepare_data_dir(&cfg, &api.store) != 0)
		goto out;
	int rc = keyring_load(cfg.data_dir, &api.keyring);
	if (rc < 0) {
		fail("loading the signing keys", rc);
		goto out;
	}
	if ((rc = throttle_new(&api.throttle)) < 0 ||
	    (rc = revocation_open(api.store, time_now_ns(), &api.revocation)) < 0) {
		fail("starting", rc);
		goto out;
	}
	/* The audit log is its own file, apart from the state store (SPEC §9). */
	char audit_path[CONFIG_STR_MAX + 16], audit_key[CONFIG_STR_MAX + 32];
	/* Its own directory if asked (another disk: a full data disk cannot stop auditing). */
	snprintf(audit_path, sizeof(audit_path), "%s/audit.db",
		 cfg.audit_dir[0] ? cfg.audit_dir : cfg.data_dir);
	snprintf(audit_key, sizeof(audit_key), "%s/%s", cfg.data_dir, AUDIT_KEY_FILE);
	struct audit_options aopts = {.key_path = audit_key};
	if ((rc = audit_open(audit_path, &aopts, &api.audit)) < 0 ||
	    (rc = api_trail_start(api.audit, api.store, &api.trail)) < 0) {
		fail("opening the audit log", rc);
		goto out;
	}
	tenant_sweep_orphans(api.store, cfg.data_dir);
	if (open_secrets(&cfg, &api) < 0)
		goto out;
	if ((rc = open_nodes(&cfg, &api, &client_ca)) < 0) {
		fail("loading the CA and the node inventory", rc);
		goto out;
	}
	if ((rc = write_bootstrap_token(&cfg, &api)) < 0) {
		fail(cfg.bootstrap_token_file, rc);
		goto out;
	}
	if ((rc = sched_open(api.store, api.nodes, wake_node, "a", &api.sched)) < 0 ||
	    (rc = actions_new(wake_node, "x", &api.actions)) < 0) {
		fail("starting the scheduler", rc);
		goto out;
	}
	api.scan_trivy = cfg.trivy;
	api.scan_grype = cfg.grype;
	api.scan_timeout_s = (int)cfg.scan_timeout;
	api.scan_rescan_floor_s = cfg.scan_rescan_floor;
	if ((rc = api_scans_start(&api)) < 0) {
		fail("starting the scan worker", rc);
		goto out;
	}
	char cert[CONFIG_STR_MAX + 32], key[CONFIG_STR_MAX + 32];
	char pki_cert[CONFIG_STR_MAX + 32], pki_key[CONFIG_STR_MAX + 32];
	snprintf(pki_cert, sizeof(pki_cert), "%s/pki/server.crt", cfg.data_dir);
	snprintf(pki_key, sizeof(pki_key), "%s/pki/server.key", cfg.data_dir);
	if (cfg.tls_cert[0]) {
		snprintf(cert, sizeof(cert), "%s", cfg.tls_cert);
		snprintf(key, sizeof(key), "%s", cfg.tls_key);
	} else { /* the internal CA's server certificate, made at first start */
		snprintf(cert, sizeof(cert), "%s/pki/server.crt", cfg.data_dir);
		snprintf(key, sizeof(key), "%s/pki/server.key", cfg.data_dir);
	}
	struct http_server_config hc = {
	    .listen = cfg.listen,
	    .threads = (int)cfg.threads,
	    .workers = (int)cfg.workers,
	    .tls_cert = cfg.plain_http ? NULL : cert,
	    .tls_key = cfg.plain_http ? NULL : key,
	    .routes = api_routes,
	    .nroutes = api_nroutes,
	    .dispatch = api_dispatch,
	    .app = &api,
	};
	/* Agents pin the internal CA: their port always uses its certificate. One loop. */
	struct http_server_config ac = {
	    .name = "agent:unmatched",
	    .listen = cfg.agent_listen,
	    .threads = 1,
	    .workers = 2,
	    .tls_cert = pki_cert,
	    .tls_key = pki_key,
	    .client_ca = client_ca,
	    .enroll_alpn = AGENTAPI_ENROLL_ALPN,
	    .tls_rejected = api_trail_tls_rejected,
	    .routes = agentapi_routes,
	    .nroutes = agentapi_nroutes,
	    .dispatch = agentapi_dispatch,
	    .app = &api,
	};
	char err[512];
	rc = http_server_start(&hc, &srv, err, sizeof(err));
	if (rc == 0)
		rc = http_server_start(&ac, &agent_srv, err, sizeof(err));
	/* SO_REUSEPORT would let the two share a port and split its connections. */
	if (rc == 0 && http_server_port(srv) == http_server_port(agent_srv)) {
		snprintf(err, sizeof(err), "--listen and --agent-listen must use different ports");
		rc = ODX_EINVAL;
	}
	if (rc == 0)
		atomic_store(&agent_server, agent_srv);
	if (rc < 0) {
		fprintf(stderr, "odysseusd: %s\n", err);
		if (srv)
			http_server_stop(srv, 0);
		if (agent_srv)
			http_server_stop(agent_srv, 0);
		goto out;
	}
	char url[300];
	char host[256];
	snprintf(host, sizeof(host), "%s", cfg.listen);
	char *colon = strrchr(host, ':');
	if (colon)
		*colon = '\0';
	snprintf(url, sizeof(url), "%s://%s:%d", cfg.plain_http ? "http" : "https", host,
		 http_server_port(srv));
	log_event(LOG_INFO, "listening",
		  json_pack("{s:s, s:s, s:s, s:i, s:s}", "url", url, "data_dir", cfg.data_dir, "tls",
			    cfg.plain_http ? "off" : "on", "agent_port", http_server_port(agent_srv),
			    "ca_fingerprint", api.ca_fingerprint));
	wait_for_stop(&api, &set);
	log_event(LOG_INFO, "shutting down", json_pack("{s:i}", "drain_seconds", DRAIN_SECONDS));
	http_server_stop(agent_srv, DRAIN_SECONDS);
	http_server_stop(srv, DRAIN_SECONDS);
	if (node_registry_sweep(api.nodes, api.store, time_now_ns(), NULL, NULL) < 0)
		log_event(LOG_ERROR, "writing heartbeats failed", NULL);
	status = 0;
	log_event(LOG_INFO, "stopped", NULL);
out:
	atomic_store(&agent_server, NULL);
	http_server_free(agent_srv);
	http_server_free(srv);
	api_scans_stop(&api); /* its scans end in audit records: before the trail */
	api_trail_stop(api.trail); /* after the server: no request is left to record */
	sched_free(api.sched);
	secrets_keyring_free(api.secrets);
	actions_free(api.actions);
	node_registry_free(api.nodes);
	x509_ca_free(api.ca);
	X509_STORE_free(client_ca);
	audit_close(api.audit);
	throttle_free(api.throttle);
	revocation_free(api.revocation);
	keyring_free(api.keyring);
	store_free(api.store);
	jwt_cache_free();
	return status;
}

static int cmd_keys(int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "rotate") != 0) {
		usage(stderr);
		return 2;
	}
	struct config cfg;
	if (load_config(&cfg, argc - 1, argv + 1) < 0)
		return 2;
	char kid[KID_LEN];
	int rc = keyring_rotate(cfg.data_dir, kid);
	if (rc < 0)
		return fail("rotating the signing key", rc);
	printf("new signing key %s is current; the previous key verifies until its tokens expire\n",
	       kid);
	return 0;
}

static int cmd_ca(int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "rotate") != 0) {
		usage(stderr);
		return 2;
	}
	struct config cfg;
	if (load_config(&cfg, argc - 1, argv + 1) < 0)
		return 2;
	char pki[CONFIG_STR_MAX + 8], fp[65];
	snprintf(pki, sizeof(pki), "%s/pki", cfg.data_dir);
	struct x509_ca *ca = NULL;
	int rc = x509_ca_rotate(pki);
	if (rc == 0)
		rc = x509_ca_load(pki, &ca);
	if (rc == 0)
		rc = x509_ca_fingerprint(ca, fp);
	x509_ca_free(ca);
	if (rc < 0)
		return fail("rotating the CA", rc);
	printf("new CA %s is current (restart odysseusd to use it); agents keep working through\n"
	       "the cross-signed certificate and move to it when they renew. Wait one agent\n"
	       "certificate lifetime before rotating again.\n",
	       fp);
	return 0;
}

/*
 * odysseusd kek rotate --new-kek-file NEW [--kek-file OLD] [--data-dir DIR], with the daemon
 * stopped: every tenant's data key re-wrapped under NEW (made if missing); values untouched.
 */
static int cmd_kek(int argc, char **argv)
{
	const char *new_kek = NULL;
	char **rest = calloc((size_t)argc + 1, sizeof(char *));
	int nrest = 0, status = 2;
	if (!rest)
		return fail("kek", ODX_ENOMEM);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--new-kek-file") == 0 && i + 1 < argc)
			new_kek = argv[++i];
		else
			rest[nrest++] = argv[i];
	}
	struct config cfg;
	struct store *store = NULL;
	char old[CONFIG_STR_MAX + 8];
	bool created = false;
	if (argc < 1 || strcmp(argv[0], "rotate") != 0 || !new_kek) {
		usage(stderr);
		goto out;
	}
	if (load_config(&cfg, nrest, rest) < 0)
		goto out;
	kek_path(&cfg, old);
	status = 1;
	int rc = secrets_kek_outside(new_kek, cfg.data_dir);
	if (rc == 0)
		rc = store_open(cfg.data_dir, &store);
	if (rc == 0)
		rc = secrets_kek_init(new_kek, &created);
	if (rc == 0)
		rc = secrets_kek_rotate(old, new_kek, store);
	if (rc < 0) {
		fprintf(stderr, "odysseusd: rotating the key-encryption key: %s\n",
			rc == ODX_EINVAL ? "the new key file must be outside the data directory"
					 : secrets_kek_strerror(rc));
		goto out;
	}
	printf("data keys re-wrapped under %s%s; start odysseusd with --kek-file %s (the old "
	       "key is no longer needed: keep it until a backup of the data is taken)\n",
	       new_kek, created ? " (made now: back it up)" : "", new_kek);
	status = 0;
out:
	store_free(store);
	free(rest);
	return status;
}

static int cmd_routes(void)
{
	for (size_t i = 0; i < api_nroutes; i++)
		printf("%s %s\n", http_method_name(api_routes[i].method), api_routes[i].pattern);
	return 0;
}

int main(int argc, char **argv)
{
	umask(077); /* databases, keys and logs we create are the daemon's alone */
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "init") == 0)
		return cmd_init(argc - 2, argv + 2);
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(argc - 2, argv + 2);
	if (strcmp(cmd, "keys") == 0)
		return cmd_keys(argc - 2, argv + 2);
	if (strcmp(cmd, "ca") == 0)
		return cmd_ca(argc - 2, argv + 2);
	if (strcmp(cmd, "kek") == 0)
		return cmd_kek(argc - 2, argv + 2);
	if (strcmp(cmd, "routes") == 0)
		return cmd_routes();
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
