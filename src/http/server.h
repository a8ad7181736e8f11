/*
 * server.h — the HTTP(S) server: libevent evhttp, one event loop per core.
 *
 * Each loop thread owns an evhttp bound to the same address with
 * SO_REUSEPORT (the kernel spreads connections), TLS through
 * bufferevent_openssl when configured. A request becomes an http_exchange
 * that owns copies of everything a handler may read, so it can cross to a
 * worker thread: routes marked blocking (password hashing, durable writes)
 * run on the worker pool and their reply is sent back on the loop that
 * received them. Handlers never see libevent.
 *
 * Limits: headers 16 KiB, bodies HTTP_MAX_BODY (each route may set its
 * own), 30 s to read a request. The connection-level cap is the largest
 * route limit plus HTTP_MAX_BODY: between the two the client gets our JSON
 * 413, above it libevent's own.
 */
#ifndef ODX_HTTP_SERVER_H
#define ODX_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_BODY	    (1024 * 1024)
#define HTTP_MAX_HEADERS    16384
#define HTTP_TIMEOUT_S	    30
#define HTTP_MAX_PARAMS	    4
#define HTTP_REQUEST_ID_MAX 129

enum http_method { HTTP_GET = 1, HTTP_POST, HTTP_PUT, HTTP_PATCH, HTTP_DELETE };

enum {
	HTTP_ROUTE_BLOCKING = 1 << 0,	   /* run the handler on a worker thread */
	HTTP_ROUTE_LOOPBACK_OPEN = 1 << 1, /* no credential needed from loopback */
};

struct http_exchange;

/*
 * A reply body made in parts (exports of any size in constant memory).
 * After the status and headers are sent, the server calls next on the
 * loop thread each time the previous part has left the process; next
 * hands bytes to emit and returns 1 (more to come), 0 (done) or an error,
 * on which the connection is closed so the client sees a cut body, never
 * a complete one. next must return soon (it runs on the event loop).
 * release is called exactly once, also when the client goes away first.
 */
typedef int (*http_emit_fn)(const void *buf, size_t n, void *sink);
struct http_stream {
	int (*next)(void *state, http_emit_fn emit, void *sink);
	void (*release)(void *state);
	void *state;
};

struct http_route {
	enum http_method method;
	const char *pattern; /* "/v1/users/{id}": {name} matches one non-empty segment */
	void (*handler)(struct http_exchange *ex);
	int perm;	 /* the application's permission id; 0 is refused */
	size_t max_body; /* 0: HTTP_MAX_BODY */
	unsigned flags;
	/* The audit action of a request on this route ("user.create"); NULL: not audited
	 * unless denied. */
	const char *action;
	/*
	 * For permissions with ownership (a Developer may update only what it
	 * created): writes the creator of the object the request names into
	 * owner[size]. NULL: ownership does not apply to the route.
	 */
	int (*owner)(struct http_exchange *ex, char *owner, size_t size);
};

/* One request and its reply. Request fields are owned copies. */
struct http_exchange {
	enum http_method method;
	const struct http_route *route;
	const char *path;
	const char *query; /* NULL when absent */
	const char *params[HTTP_MAX_PARAMS];
	int nparams;
	const char *authorization; /* NULL when absent */
	const char *content_type;  /* NULL when absent */
	const char *body;	   /* NUL-terminated copy; body_len excludes the NUL */
	size_t body_len;
	char request_id[HTTP_REQUEST_ID_MAX];
	char source_ip[64];
	bool loopback;
	/* Client certificates (http_server_config.client_ca): the verified peer's node id
	 * ("" when it sent none), and whether it connected to enroll. */
	char peer_id[65];
	bool enrolling;
	void *app;  /* http_server_config.app */
	void *auth; /* for the application: the verified principal */
	/* The reply, set through reply.h. */
	int status;
	char *resp_body;
	size_t resp_len;
	const char *resp_type;
	int retry_after;
	bool www_authenticate;
	struct http_stream stream; /* next != NULL: the body is streamed */
	int hold_ms; /* > 0: send the reply this much later (long polls), on a timer */
	char hold_key[48]; /* a held reply with a key is re-made at once by http_server_wake */
	char allow[48];		   /* Allow header for 405 */
	const char *error_code;	   /* the code of an error reply (static), NULL otherwise */
	/* For the audit record, set by handlers when the path does not say it all. */
	char audit_resource[192]; /* e.g. "users/usr_..." of a created user */
	char audit_actor_id[64];  /* public routes: whose login it was */
	char audit_actor_email[256];
	char audit_tenant_id[48];
	char audit_reason[96]; /* why it was denied ("role", "permission_set:x") */
	/* Server-private. */
	struct http_loop *loop;
	struct evhttp_request *req;
	int64_t start_ns;
	int route_index;
	char *storage;
	struct http_exchange *next;
};

struct http_server_config {
	const char *name;		/* metrics: the route name of unmatched requests ("unmatched") */
	const char *listen;		/* "host:port", "[v6]:port" */
	int threads;			/* event loops; 0 = one per online core */
	int workers;			/* worker threads */
	const char *tls_cert, *tls_key; /* NULL: plain HTTP */
	/*
	 * Mutual TLS (the agent API): client certificates must chain to this
	 * store (an X509_STORE *, not taken over), or the handshake fails — except
	 * for a client whose ClientHello offers the ALPN protocol enroll_alpn,
	 * which may come without one (ex->enrolling). tls_rejected hears of every
	 * handshake the server refuses (on a loop thread: it must not block).
	 */
	void *client_ca;
	const char *enroll_alpn;
	void (*tls_rejected)(void *app, const char *source_ip, const char *reason);
	const struct http_route *routes;
	size_t nroutes;
	/* Runs every matched request (authentication, authorization, handler). */
	void (*dispatch)(struct http_exchange *ex);
	void *app;
};

struct http_server;

/*
 * Validates the route table (every route declares a permission and a
 * well-formed pattern), binds, and starts the loops and workers. Writes a
 * message into err on failure. The bound port is in http_server_port().
 */
int http_server_start(const struct http_server_config *cfg, struct http_server **out, char *err,
		      size_t errlen);
int http_server_port(const struct http_server *srv);
/*
 * Graceful stop: stop accepting, let in-flight requests (worker jobs
 * included) finish for up to drain_s seconds, then close and join threads.
 */
void http_server_stop(struct http_server *srv, int drain_s);
void http_server_free(struct http_server *srv);
/*
 * Long polls: every held reply whose hold_key is key (NULL: every held
 * reply) has its request dispatched again now, on its loop, and the new
 * reply is sent (or held again). Any thread.
 */
void http_server_wake(struct http_server *srv, const char *key);
/* Checks a route table as http_server_start does; 0 or ODX_EINVAL with a message. */
int http_routes_validate(const struct http_route *routes, size_t n, char *err, size_t errlen);
/* Method name ("GET"). */
const char *http_method_name(enum http_method m);

#endif
