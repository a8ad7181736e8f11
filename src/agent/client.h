/*
 * client.h — the agent's HTTP client (libcurl on OpenSSL): JSON requests to
 * the control plane's agent API and to the Docker Engine's unix socket.
 *
 * A client is one curl easy handle and is used by one thread at a time;
 * each agent thread has its own. Connections are kept alive between
 * requests. Answers are capped (CLIENT_REPLY_MAX) and must be JSON objects.
 * Error text taken from a server is reduced to printable ASCII so it can go
 * to a terminal or a log line as is.
 */
#ifndef ODX_AGENT_CLIENT_H
#define ODX_AGENT_CLIENT_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>

#define CLIENT_REPLY_MAX (2 * 1024 * 1024) /* a full secrets bundle: 16 x 64 KiB in base64 */
#define CLIENT_ERROR_LEN 256

struct client;

struct client_reply {
	long status;		      /* HTTP status; 0 when none arrived */
	json_t *body;		      /* the answer (a JSON object) or NULL; owned */
	char error[CLIENT_ERROR_LEN]; /* why it failed: transport or the server's message */
};

/*
 * Installs allocators that wipe memory before freeing it in jansson and
 * libcurl (request bodies carry the enrollment token, curl copies the
 * private key) and initialises libcurl. Call once, before any thread.
 */
int client_global_init(void);
void client_global_done(void);

/* A client for base_url (no trailing slash). Caller frees with client_free. */
int client_new(const char *base_url, struct client **out);
void client_free(struct client *c);
/* Sends requests through the unix socket at path instead of TCP. */
int client_set_unix_socket(struct client *c, const char *path);
/* Trusts only the CA certificates in the file at path (not the system's). */
int client_set_ca_file(struct client *c, const char *path);
/*
 * Offers exactly one ALPN protocol, proto, instead of curl's h2/http1.1
 * (libcurl cannot offer custom names, so this is set on OpenSSL's context;
 * ODX_EUNAVAIL when libcurl is not built on OpenSSL).
 */
int client_set_alpn(struct client *c, const char *proto);
/*
 * Presents cert_pem/key_pem as the client certificate and trusts only
 * ca_pem; curl keeps its own copies. The next request opens a new
 * connection so that the server sees this certificate.
 */
int client_set_identity(struct client *c, const char *cert_pem, const char *key_pem,
			const char *ca_pem);
/* Requests give up within about a second once *stop becomes true. */
void client_set_stop(struct client *c, atomic_bool *stop);

/*
 * Sends method path (appended to the base URL) with body as JSON (or no
 * body) and waits at most timeout_s. Returns 0 when an HTTP answer arrived,
 * whatever its status, with r filled (free with client_reply_done);
 * -ECANCELED when stopped; ODX_EIO (no answer, r->error says why),
 * ODX_ETOOBIG or ODX_EINVAL (an answer that is not a JSON object) or
 * ODX_ENOMEM.
 */
int client_request(struct client *c, const char *method, const char *path, const json_t *body,
		   long timeout_s, struct client_reply *r);
void client_reply_done(struct client_reply *r);

/*
 * Copies s to out (size bytes) keeping printable ASCII only; anything else
 * becomes '?'. Text from a server never reaches a terminal raw.
 */
void client_sanitize(const char *s, char *out, size_t size);

#endif
