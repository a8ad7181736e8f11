/* enroll.c — see enroll.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/agent.h"
#include "agent/client.h"
#include "agent/enroll.h"
#include "agent/pin.h"
#include "agent/state.h"
#include "core/encoding.h"
#include "core/err.h"
#include "crypto/x509.h"

#define PIN_TIMEOUT_MS	 10000
#define ENROLL_TIMEOUT_S 60L
#define NODE_NAME_MAX	 63
#define PATH_LEN	 4096

struct enroll {
	const struct enroll_opts *o;
	struct agent_token token;
	struct agent_url url;
	const char *dir;
	int dirfd;
	char key_new[PATH_LEN]; /* dir/node.key.new, for x509_make_key_and_csr */
};

static void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void errorf(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("odysseus-agent: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Checks the arguments before anything is touched: bad ones are usage errors. */
static int check_args(struct enroll *e)
{
	const struct enroll_opts *o = e->o;

	if (agent_token_parse(o->token, &e->token) < 0) {
		errorf("the enrollment token is malformed (expected odx-enroll-<64 hex>-<88 hex>)");
		return AGENT_EXIT_USAGE;
	}
	if (agent_url_parse(o->server, &e->url) < 0) {
		errorf("--server must be https://HOST[:PORT] (no path, query or user)");
		return AGENT_EXIT_USAGE;
	}
	if (o->name != NULL && name_validate(o->name, NODE_NAME_MAX) < 0) {
		errorf("--name must be 1-%d characters of [a-z0-9-], not starting with '-'",
		       NODE_NAME_MAX);
		return AGENT_EXIT_USAGE;
	}
	int n = snprintf(e->key_new, sizeof(e->key_new), "%s/%s", e->dir, STATE_KEY_NEW);
	if (n < 0 || (size_t)n >= sizeof(e->key_new)) {
		errorf("the state directory's path is too long");
		return AGENT_EXIT_USAGE;
	}
	return AGENT_EXIT_OK;
}

static int open_state(struct enroll *e)
{
	e->dirfd = state_open(e->dir, true);
	if (e->dirfd < 0) {
		errorf("state directory %s %s", e->dir, state_open_strerror(e->dirfd));
		return AGENT_EXIT_ERROR;
	}
	if (faccessat(e->dirfd, STATE_AGENT_JSON, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		/* Enrolling again would throw away a working identity. */
		errorf("%s already holds an enrolled node (%s); remove its files to enroll again",
		       e->dir, STATE_AGENT_JSON);
		return AGENT_EXIT_ERROR;
	}
	return AGENT_EXIT_OK;
}

static int pin(struct enroll *e)
{
	char why[PIN_WHY_LEN], *ca = NULL;
	int rc =
	    pin_fetch_ca(e->url.host, e->url.port, e->token.fingerprint, PIN_TIMEOUT_MS, &ca, why);

	if (rc == ODX_EAUTH) {
		errorf("the server at %s is not the control plane this token was made for: %s",
		       e->url.base, why);
		return AGENT_EXIT_PIN;
	}
	if (rc < 0) {
		errorf("cannot reach %s: %s", e->url.base, why);
		return AGENT_EXIT_ERROR;
	}
	rc = state_write(e->dirfd, STATE_CA, ca, strlen(ca));
	free(ca);
	if (rc < 0) {
		errorf("cannot write %s/%s: %s", e->dir, STATE_CA, odx_strerror(rc));
		return AGENT_EXIT_ERROR;
	}
	return AGENT_EXIT_OK;
}

/* POSTs the token and CSR. On 0, r holds the answer (any status). */
static int post_enroll(struct enroll *e, const char *csr, struct client_reply *r)
{
	char ca[PATH_LEN];
	struct client *c = NULL;
	json_t *body = json_pack("{s:s, s:s}", "token", e->o->token, "csr", csr);
	int rc = body != NULL ? 0 : ODX_ENOMEM;

	if (rc == 0 && e->o->name != NULL &&
	    json_object_set_new(body, "name", json_string(e->o->name)) != 0)
		rc = ODX_ENOMEM;
	snprintf(ca, sizeof(ca), "%s/%s", e->dir, STATE_CA);
	if (rc == 0)
		rc = client_new(e->url.base, &c);
	if (rc == 0)
		rc = client_set_ca_file(c, ca);
	if (rc == 0 && (rc = client_set_alpn(c, PIN_ALPN)) == ODX_EUNAVAIL) {
		errorf("libcurl is not built on OpenSSL; it cannot offer the enrollment protocol");
		goto out;
	}
	if (rc == 0) {
		rc = client_request(c, "POST", "/agent/v1/enroll", body, ENROLL_TIMEOUT_S, r);
		if (rc < 0 && r->error[0] != '\0') {
			errorf("cannot enroll with %s: %s", e->url.base, r->error);
			goto out;
		}
	}
	if (rc < 0)
		errorf("cannot enroll with %s: %s", e->url.base, odx_strerror(rc));
out:
	client_free(c);
	json_decref(body); /* the token's copy in it is wiped on free */
	return rc;
}

/* Checks that cert is ours: for our new key, naming the node id we were given. */
static int check_cert(struct enroll *e, const char *cert, const char *node_id)
{
	char *key = NULL;
	size_t n;
	int rc = state_read(e->dirfd, STATE_KEY_NEW, &key, &n), match = 0;

	if (rc == 0)
		match = state_pair_matches(cert, key);
	state_free(key);
	return rc == 0 && match == 1 && state_cert_names(cert, node_id) ? 0 : ODX_EINVAL;
}

static int save_identity(struct enroll *e, const char *node_id, const char *name, const char *cert,
			 const char *bundle)
{
	json_t *cfg =
	    json_pack("{s:s, s:s, s:s}", "server", e->url.base, "node_id", node_id, "name", name);
	char *text = cfg != NULL ? json_dumps(cfg, JSON_INDENT(2)) : NULL;
	int rc = text != NULL ? 0 : ODX_ENOMEM;

	/* agent.json last: until it exists, the directory is not enrolled. */
	if (rc == 0)
		rc = state_write(e->dirfd, STATE_CA, bundle, strlen(bundle));
	if (rc == 0)
		rc = state_write(e->dirfd, STATE_CERT, cert, strlen(cert));
	if (rc == 0)
		rc = state_rename(e->dirfd, STATE_KEY_NEW, STATE_KEY);
	if (rc == 0)
		rc = state_write(e->dirfd, STATE_AGENT_JSON, text, strlen(text));
	free(text);
	json_decref(cfg);
	return rc;
}

static int take_identity(struct enroll *e, const json_t *body)
{
	const char *node_id = json_string_value(json_object_get(body, "node_id"));
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *cert = json_string_value(json_object_get(body, "certificate"));
	const char *bundle = json_string_value(json_object_get(body, "ca_bundle"));
	char shown[NODE_NAME_MAX + 1];

	if (!agent_node_id_valid(node_id) || name == NULL || name[0] == '\0' ||
	    strlen(name) > NODE_NAME_MAX || cert == NULL || bundle == NULL ||
	    state_count_certs(bundle) == 0) {
		errorf("the control plane's answer lacks a valid node_id, name, certificate or "
		       "ca_bundle");
		return AGENT_EXIT_ERROR;
	}
	if (check_cert(e, cert, node_id) < 0) {
		errorf("the certificate from the control plane is not for this node's key and id");
		return AGENT_EXIT_ERROR;
	}
	int rc = save_identity(e, node_id, name, cert, bundle);
	if (rc < 0) {
		errorf("cannot write the node's files in %s: %s", e->dir,
		       odx_strerror(rc));
		return AGENT_EXIT_ERROR;
	}
	client_sanitize(name, shown, sizeof(shown));
	printf("enrolled as node %s (%s) with %s; start it with: odysseus-agent run%s%s\n", node_id,
	       shown, e->url.base, e->o->state_dir ? " --state-dir " : "",
	       e->o->state_dir ? e->o->state_dir : "");
	return AGENT_EXIT_OK;
}

static int enroll(struct enroll *e)
{
	struct client_reply r = {0};
	char *csr = NULL;
	int rc = x509_make_key_and_csr(e->key_new, &csr);

	if (rc < 0) {
		errorf("cannot make the node's key: %s", odx_strerror(rc));
		return AGENT_EXIT_ERROR;
	}
	rc = post_enroll(e, csr, &r);
	free(csr);
	if (rc < 0) {
		rc = AGENT_EXIT_ERROR;
	} else if (r.status == 201) {
		rc = take_identity(e, r.body);
	} else if (r.status == 401) {
		errorf("the control plane refused enrollment token %s: %s", e->token.id, r.error);
		rc = AGENT_EXIT_REFUSED;
	} else {
		errorf("enrollment failed: %s (HTTP %ld)", r.error, r.status);
		rc = AGENT_EXIT_ERROR;
	}
	client_reply_done(&r);
	return rc;
}

int enroll_main(const struct enroll_opts *o)
{
	struct enroll e = {
	    .o = o, .dir = o->state_dir ? o->state_dir : AGENT_STATE_DIR_DEFAULT, .dirfd = -1};
	int rc = check_args(&e);

	if (rc == AGENT_EXIT_OK)
		rc = open_state(&e);
	if (rc == AGENT_EXIT_OK)
		rc = pin(&e);
	if (rc == AGENT_EXIT_OK) {
		rc = enroll(&e);
		/* A key whose certificate never came is of no use to anyone. */
		if (rc != AGENT_EXIT_OK)
			state_remove(e.dirfd, STATE_KEY_NEW);
	}
	if (e.dirfd >= 0)
		close(e.dirfd);
	return rc;
}
