/* server.c — see server.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/encoding.h"
#include "core/err.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "crypto/random.h"
#include "crypto/x509.h"
#include "http/metrics.h"
#include "http/reply.h"
#include "http/server.h"

struct http_loop {
	struct http_server *srv;
	pthread_t thread;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	int fd;
	struct event *done_ev, *stop_ev, *drain_ev;
	pthread_mutex_t done_lock;
	struct http_exchange *done_head;
	atomic_int inflight;
	int64_t drain_deadline;
	bool stopping;	    /* loop thread only */
	struct hold *holds; /* replies waiting on a timer; loop thread only */
	struct event *wake_ev;
	pthread_mutex_t wake_lock;
	char wake_keys[16][48]; /* keys to wake; more at once wakes everything */
	int nwake;
	bool wake_all;
};

struct http_server {
	struct http_server_config cfg;
	SSL_CTX *ssl;
	int port;
	int nloops;
	struct http_loop *loops;
	int nworkers;
	pthread_t *workers;
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;
	struct http_exchange *q_head, *q_tail;
	bool q_stop;
	int drain_s;
	int metrics; /* this server's table in metrics.c */
};

const char *http_method_name(enum http_method m)
{
	static const char *const names[] = {"", "GET", "POST", "PUT", "PATCH", "DELETE"};
	return m >= HTTP_GET && m <= HTTP_DELETE ? names[m] : "";
}

static enum http_method method_of(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return HTTP_GET;
	case EVHTTP_REQ_POST: return HTTP_POST;
	case EVHTTP_REQ_PUT: return HTTP_PUT;
	case EVHTTP_REQ_PATCH: return HTTP_PATCH;
	case EVHTTP_REQ_DELETE: return HTTP_DELETE;
	default: return 0;
	}
}

static void fill_tls_peer(struct http_exchange *ex, struct evhttp_request *req);

/* ---- routing ------------------------------------------------------------ */

static bool pattern_valid(const char *p)
{
	if (p[0] != '/')
		return false;
	int params = 0;
	for (const char *s = p; *s; s++) {
		if (*s == '{') {
			const char *e = strchr(s, '}');
			if (!e || e == s + 1 || s[-1] != '/' || (e[1] && e[1] != '/'))
				return false;
			for (const char *c = s + 1; c < e; c++)
				if (!((*c >= 'a' && *c <= 'z') || *c == '_'))
					return false;
			params++;
			s = e;
		} else if (*s == '}' || (*s == '/' && s[1] == '/')) {
			return false;
		}
	}
	return params <= HTTP_MAX_PARAMS;
}

int http_routes_validate(const struct http_route *routes, size_t n, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const struct http_route *r = &routes[i];
		/* Default deny by construction: a route without a permission cannot exist. */
		if (r->perm <= 0) {
			snprintf(err, errlen, "route %s %s declares no permission",
				 http_method_name(r->method), r->pattern);
			return ODX_EINVAL;
		}
		if (!r->handler || !r->pattern || !pattern_valid(r->pattern) ||
		    !http_method_name(r->method)[0]) {
			snprintf(err, errlen, "route %zu is malformed", i);
			return ODX_EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (routes[j].method == r->method &&
			    strcmp(routes[j].pattern, r->pattern) == 0) {
				snprintf(err, errlen, "route %s %s is declared twice",
					 http_method_name(r->method), r->pattern);
				return ODX_EINVAL;
			}
		}
	}
	return 0;
}

/* Matches path against pattern; on success records where the parameters start and end. */
static bool match(const char *pattern, const char *path, const char *starts[], size_t lens[],
		  int *nparams)
{
	const char *p = pattern, *s = path;
	int n = 0;
	while (*p && *s) {
		if (*p == '{') {
			const char *seg_end = strchr(s, '/');
			size_t len = seg_end ? (size_t)(seg_end - s) : strlen(s);
			if (len == 0)
				return false;
			starts[n] = s;
			lens[n++] = len;
			s += len;
			p = strchr(p, '}') + 1;
		} else if (*p++ != *s++) {
			return false;
		}
	}
	if (*p || *s)
		return false;
	*nparams = n;
	return true;
}

/* ---- exchange lifecycle ------------------------------------------------- */

static bool request_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n < 1 || n >= HTTP_REQUEST_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return true;
}

static void exchange_free(struct http_exchange *ex)
{
	if (!ex)
		return;
	reply_reset(ex);
	free(ex->storage);
	free(ex);
}

/* Copies strings into one allocation owned by the exchange. */
struct copy_plan {
	const char *src[8 + HTTP_MAX_PARAMS];
	size_t len[8 + HTTP_MAX_PARAMS];
	const char **dst[8 + HTTP_MAX_PARAMS];
	int n;
};

static void plan_add(struct copy_plan *cp, const char *src, size_t len, const char **dst)
{
	if (!src)
		return;
	cp->src[cp->n] = src;
	cp->len[cp->n] = len;
	cp->dst[cp->n] = dst;
	cp->n++;
}

static int plan_run(struct copy_plan *cp, struct http_exchange *ex)
{
	size_t total = 0;
	for (int i = 0; i < cp->n; i++)
		total += cp->len[i] + 1;
	ex->storage = malloc(total ? total : 1);
	if (!ex->storage)
		return ODX_ENOMEM;
	char *w = ex->storage;
	for (int i = 0; i < cp->n; i++) {
		memcpy(w, cp->src[i], cp->len[i]);
		w[cp->len[i]] = '\0';
		*cp->dst[i] = w;
		w += cp->len[i] + 1;
	}
	return 0;
}

static void add_header(struct evkeyvalq *h, const char *k, const char *v)
{
	evhttp_add_header(h, k, v);
}

/* ---- streamed replies (struct http_stream) ------------------------------ */

#define STREAM_PART_MIN 65536 /* gather at least this much before sending a part */
#define STREAM_TRIES	16    /* next() calls per turn of the loop while nothing comes */

struct stream_ctx {
	struct http_stream s;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	struct event *ev; /* runs the next step from the top of the loop */
	struct http_loop *loop;
};

static int emit_evbuffer(const void *buf, size_t n, void *sink)
{
	return evbuffer_add(sink, buf, n) == 0 ? 0 : ODX_ENOMEM;
}

static void stream_free(struct stream_ctx *sc)
{
	sc->s.release(sc->s.state);
	event_free(sc->ev);
	atomic_fetch_sub(&sc->loop->inflight, 1);
	free(sc);
}

/*
 * The connection is going away before the stream ended. When libevent has
 * already detached the request (the client left mid-reply) the request is
 * ours to free, which evhttp_send_reply_end does for a detached one; when
 * the server itself is closing, libevent frees it with the connection.
 */
static void stream_closed(struct evhttp_connection *conn, void *arg)
{
	(void)conn;
	struct stream_ctx *sc = arg;
	if (!evhttp_request_get_connection(sc->req))
		evhttp_send_reply_end(sc->req);
	stream_free(sc);
}

static void stream_sent(struct evhttp_connection *conn, void *arg)
{
	(void)conn;
	struct stream_ctx *sc = arg;
	event_active(sc->ev, EV_TIMEOUT, 0);
}

/* Sends the next part once the previous one has left; ends or aborts the reply. */
static void stream_step(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct stream_ctx *sc = arg;
	struct evbuffer *part = evbuffer_new();
	int rc = part ? 1 : ODX_ENOMEM;
	for (int i = 0; rc == 1 && i < STREAM_TRIES && evbuffer_get_length(part) < STREAM_PART_MIN;
	     i++)
		rc = sc->s.next(sc->s.state, emit_evbuffer, part);
	if (rc < 0) {
		log_event(LOG_ERROR, "stream_aborted",
			  json_pack("{s:s}", "error", odx_strerror(rc)));
		evhttp_connection_set_closecb(sc->conn, NULL, NULL);
		/* Frees the request with it: the client sees the chunked body cut short. */
		evhttp_connection_free(sc->conn);
		stream_free(sc);
	} else if (evbuffer_get_length(part) > 0) {
		evhttp_send_reply_chunk_with_cb(sc->req, part, rc == 1 ? stream_sent : NULL, sc);
	} else if (rc == 1) {
		event_active(sc->ev, EV_TIMEOUT, 0); /* nothing yet: let other clients run first */
	}
	if (rc == 0) {
		evhttp_connection_set_closecb(sc->conn, NULL, NULL);
		evhttp_send_reply_end(sc->req);
		stream_free(sc);
	}
	if (part)
		evbuffer_free(part);
}

/* Starts the chunked reply; takes the stream out of ex. */
static int stream_start(struct http_exchange *ex)
{
	struct stream_ctx *sc = calloc(1, sizeof(*sc));
	struct evhttp_connection *conn = evhttp_request_get_connection(ex->req);
	if (!sc || !conn || !(sc->ev = evtimer_new(ex->loop->base, stream_step, sc))) {
		free(sc);
		return ODX_ENOMEM;
	}
	sc->s = ex->stream;
	memset(&ex->stream, 0, sizeof(ex->stream));
	sc->req = ex->req;
	sc->conn = conn;
	sc->loop = ex->loop;
	atomic_fetch_add(&sc->loop->inflight, 1);
	evhttp_connection_set_closecb(conn, stream_closed, sc);
	evhttp_send_reply_start(ex->req, ex->status, NULL);
	event_active(sc->ev, EV_TIMEOUT, 0);
	return 0;
}

/* ---- held replies (long polls) -------------------------------------------- */

struct hold {
	struct http_exchange *ex;
	struct event *ev;
	struct evhttp_connection *conn;
	struct hold *prev, *next;
};

static void send_reply(struct http_exchange *ex);

static void hold_unlink(struct hold *h)
{
	struct http_loop *loop = h->ex->loop;
	if (h->prev)
		h->prev->next = h->next;
	else
		loop->holds = h->next;
	if (h->next)
		h->next->prev = h->prev;
	evhttp_connection_set_closecb(h->conn, NULL, NULL);
	event_free(h->ev);
}

static void hold_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct hold *h = arg;
	struct http_exchange *ex = h->ex;
	hold_unlink(h);
	free(h);
	ex->hold_ms = 0;
	send_reply(ex);
}

/* The connection goes away while the reply waits: drop both (see stream_closed). */
static void hold_closed(struct evhttp_connection *conn, void *arg)
{
	(void)conn;
	struct hold *h = arg;
	struct http_exchange *ex = h->ex;
	hold_unlink(h);
	free(h);
	if (!evhttp_request_get_connection(ex->req))
		evhttp_request_free(ex->req);
	atomic_fetch_sub(&ex->loop->inflight, 1);
	exchange_free(ex);
}

static int hold_start(struct http_exchange *ex)
{
	struct hold *h = calloc(1, sizeof(*h));
	struct evhttp_connection *conn = evhttp_request_get_connection(ex->req);
	if (!h || !conn || !(h->ev = evtimer_new(ex->loop->base, hold_fire, h))) {
		free(h);
		return ODX_ENOMEM;
	}
	h->ex = ex;
	h->conn = conn;
	h->next = ex->loop->holds;
	if (h->next)
		h->next->prev = h;
	ex->loop->holds = h;
	evhttp_connection_set_closecb(conn, hold_closed, h);
	struct timeval tv = {ex->hold_ms / 1000, (ex->hold_ms % 1000) * 1000};
	evtimer_add(h->ev, &tv);
	return 0;
}

/* The request is made again: its handler sees what changed since it was held. */
static void hold_redo(struct hold *h)
{
	struct http_exchange *ex = h->ex;
	hold_unlink(h);
	free(h);
	reply_reset(ex);
	ex->hold_ms = 0;
	ex->hold_key[0] = '\0';
	ex->loop->srv->cfg.dispatch(ex);
	send_reply(ex);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct http_loop *loop = arg;
	char keys[16][48];
	pthread_mutex_lock(&loop->wake_lock);
	int n = loop->nwake;
	bool all = loop->wake_all;
	memcpy(keys, loop->wake_keys, sizeof(keys));
	loop->nwake = 0;
	loop->wake_all = false;
	pthread_mutex_unlock(&loop->wake_lock);
	/* Collected first: a redone request may be held again, at the head of the list. */
	size_t k = 0, cap = 0;
	struct hold **todo = NULL;
	for (struct hold *h = loop->holds; h; h = h->next) {
		bool match = all && h->ex->hold_key[0];
		for (int i = 0; !match && i < n; i++)
			match = strcmp(h->ex->hold_key, keys[i]) == 0;
		if (!match)
			continue;
		if (k == cap) {
			struct hold **g = realloc(todo, (cap ? cap * 2 : 16) * sizeof(*g));
			if (!g)
				break; /* the rest answer at their timers */
			todo = g;
			cap = cap ? cap * 2 : 16;
		}
		todo[k++] = h;
	}
	for (size_t i = 0; i < k; i++)
		hold_redo(todo[i]);
	free(todo);
}

void http_server_wake(struct http_server *srv, const char *key)
{
	for (int i = 0; i < srv->nloops; i++) {
		struct http_loop *loop = &srv->loops[i];
		if (!loop->wake_ev)
			continue;
		pthread_mutex_lock(&loop->wake_lock);
		if (!key || loop->nwake == 16)
			loop->wake_all = true;
		else
			snprintf(loop->wake_keys[loop->nwake++], 48, "%s", key);
		pthread_mutex_unlock(&loop->wake_lock);
		event_active(loop->wake_ev, EV_READ, 0);
	}
}

/* Stopping: held replies go out now instead of at their time. */
static void hold_release_all(struct http_loop *loop)
{
	while (loop->holds)
		hold_fire(-1, 0, loop->holds);
}

/* ---- replies ------------------------------------------------------------ */

static void send_reply(struct http_exchange *ex)
{
	if (ex->hold_ms > 0 && !ex->stream.next && !ex->loop->stopping && hold_start(ex) == 0)
		return;
	struct evhttp_request *req = ex->req;
	if (!reply_done(ex))
		reply_error(ex, 500, "internal", "internal error");
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	add_header(h, "X-Request-Id", ex->request_id);
	add_header(h, "Cache-Control", "no-store");
	add_header(h, "X-Content-Type-Options", "nosniff");
	if (ex->resp_type)
		add_header(h, "Content-Type", ex->resp_type);
	if (ex->www_authenticate)
		add_header(h, "WWW-Authenticate", "Bearer realm=\"odysseus\"");
	if (ex->allow[0])
		add_header(h, "Allow", ex->allow);
	if (ex->retry_after > 0) {
		char ra[24];
		snprintf(ra, sizeof(ra), "%d", ex->retry_after);
		add_header(h, "Retry-After", ra);
	}
	bool streamed = ex->stream.next && stream_start(ex) == 0;
	if (ex->stream.next) /* could not start: nothing was sent yet */
		reply_error(ex, 503, "unavailable", "out of memory");
	if (!streamed) {
		struct evbuffer *out = evhttp_request_get_output_buffer(req);
		if (ex->resp_len)
			evbuffer_add(out, ex->resp_body, ex->resp_len);
		evhttp_send_reply(req, ex->status, NULL, NULL);
	}
	int64_t dur = time_mono_ns() - ex->start_ns;
	metrics_observe(ex->loop->srv->metrics, ex->route_index, ex->status, dur);
	if (log_enabled(LOG_INFO))
		log_event(LOG_INFO, "request",
			  json_pack("{s:s, s:s, s:i, s:f, s:s, s:s}", "method",
				    http_method_name(ex->method), "route",
				    ex->route ? ex->route->pattern : "unmatched", "status",
				    ex->status, "duration_ms", (double)dur / 1e6, "request_id",
				    ex->request_id, "source", ex->source_ip));
	atomic_fetch_sub(&ex->loop->inflight, 1);
	exchange_free(ex);
}

static void enqueue_work(struct http_server *srv, struct http_exchange *ex)
{
	pthread_mutex_lock(&srv->q_lock);
	ex->next = NULL;
	if (srv->q_tail)
		srv->q_tail->next = ex;
	else
		srv->q_head = ex;
	srv->q_tail = ex;
	pthread_cond_signal(&srv->q_cond);
	pthread_mutex_unlock(&srv->q_lock);
}

static void *worker_main(void *arg)
{
	struct http_server *srv = arg;
	for (;;) {
		pthread_mutex_lock(&srv->q_lock);
		while (!srv->q_head && !srv->q_stop)
			pthread_cond_wait(&srv->q_cond, &srv->q_lock);
		struct http_exchange *ex = srv->q_head;
		if (!ex) {
			pthread_mutex_unlock(&srv->q_lock);
			break;
		}
		srv->q_head = ex->next;
		if (!srv->q_head)
			srv->q_tail = NULL;
		pthread_mutex_unlock(&srv->q_lock);
		srv->cfg.dispatch(ex);
		struct http_loop *loop = ex->loop;
		pthread_mutex_lock(&loop->done_lock);
		ex->next = loop->done_head;
		loop->done_head = ex;
		pthread_mutex_unlock(&loop->done_lock);
		event_active(loop->done_ev, EV_READ, 0);
	}
	return NULL;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct http_loop *loop = arg;
	pthread_mutex_lock(&loop->done_lock);
	struct http_exchange *ex = loop->done_head;
	loop->done_head = NULL;
	pthread_mutex_unlock(&loop->done_lock);
	while (ex) {
		struct http_exchange *next = ex->next;
		send_reply(ex);
		ex = next;
	}
}

static void fill_peer(struct http_exchange *ex, struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	const struct sockaddr *sa = conn ? evhttp_connection_get_addr(conn) : NULL;
	snprintf(ex->source_ip, sizeof(ex->source_ip), "unknown");
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ex->source_ip, sizeof(ex->source_ip));
		ex->loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ex->source_ip, sizeof(ex->source_ip));
		ex->loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
}

/* Finds the route; sets 404/405 (with Allow) on ex when there is none. */
static const struct http_route *route_lookup(struct http_server *srv, struct http_exchange *ex,
					     const char *path, const char *starts[], size_t lens[])
{
	size_t used = 0;
	for (size_t i = 0; i < srv->cfg.nroutes; i++) {
		const struct http_route *r = &srv->cfg.routes[i];
		int n;
		if (!match(r->pattern, path, starts, lens, &n))
			continue;
		if (r->method == ex->method) {
			ex->nparams = n;
			ex->route_index = (int)i;
			return r;
		}
		int w = snprintf(ex->allow + used, sizeof(ex->allow) - used, "%s%s",
				 used ? ", " : "", http_method_name(r->method));
		if (w > 0 && (size_t)w < sizeof(ex->allow) - used)
			used += (size_t)w;
	}
	if (used)
		reply_error(ex, 405, "method_not_allowed", "method not allowed for this path");
	else
		reply_error(ex, 404, "not_found", "no such path");
	return NULL;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct http_loop *loop = arg;
	struct http_server *srv = loop->srv;
	struct http_exchange *ex = calloc(1, sizeof(*ex));
	if (!ex) {
		evhttp_send_error(req, 503, NULL);
		return;
	}
	atomic_fetch_add(&loop->inflight, 1);
	ex->start_ns = time_mono_ns();
	ex->req = req;
	ex->loop = loop;
	ex->app = srv->cfg.app;
	ex->route_index = -1;
	ex->method = method_of(evhttp_request_get_command(req));
	fill_peer(ex, req);
	if (srv->cfg.client_ca)
		fill_tls_peer(ex, req);

	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const char *rid = evhttp_find_header(in, "X-Request-Id");
	if (rid && request_id_valid(rid)) {
		snprintf(ex->request_id, sizeof(ex->request_id), "%s", rid);
	} else {
		uint8_t raw[12];
		if (random_bytes(raw, sizeof(raw)) < 0)
			memset(raw, 0, sizeof(raw));
		hex_encode(raw, sizeof(raw), ex->request_id);
	}

	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	const char *starts[HTTP_MAX_PARAMS];
	size_t lens[HTTP_MAX_PARAMS];
	if (loop->stopping) {
		/* Draining: finish what was taken, take nothing new, even on open keep-alive
		 * connections. */
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		reply_error(ex, 503, "unavailable", "server is shutting down");
		send_reply(ex);
		return;
	}
	if (!path || !*path || !ex->method) {
		reply_error(ex, !ex->method ? 405 : 400,
			    !ex->method ? "method_not_allowed" : "bad_request",
			    !ex->method ? "method not allowed" : "bad request path");
		send_reply(ex);
		return;
	}
	const struct http_route *r = route_lookup(srv, ex, path, starts, lens);
	if (!r) {
		send_reply(ex);
		return;
	}
	ex->route = r;
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	size_t body_len = evbuffer_get_length(body);
	size_t max = r->max_body ? r->max_body : HTTP_MAX_BODY;
	if (body_len > max) {
		reply_error(ex, 413, "payload_too_large", "request body too large");
		send_reply(ex);
		return;
	}
	const char *body_ptr = body_len ? (const char *)evbuffer_pullup(body, -1) : "";
	const char *auth = evhttp_find_header(in, "Authorization");
	const char *ctype = evhttp_find_header(in, "Content-Type");
	struct copy_plan cp = {.n = 0};
	plan_add(&cp, path, strlen(path), &ex->path);
	plan_add(&cp, query, query ? strlen(query) : 0, &ex->query);
	plan_add(&cp, auth, auth ? strlen(auth) : 0, &ex->authorization);
	plan_add(&cp, ctype, ctype ? strlen(ctype) : 0, &ex->content_type);
	plan_add(&cp, body_ptr ? body_ptr : "", body_ptr ? body_len : 0, &ex->body);
	for (int i = 0; i < ex->nparams; i++)
		plan_add(&cp, starts[i], lens[i], &ex->params[i]);
	if (plan_run(&cp, ex) < 0) {
		reply_error(ex, 503, "unavailable", "out of memory");
		send_reply(ex);
		return;
	}
	ex->body_len = body_ptr ? body_len : 0;
	if (r->flags & HTTP_ROUTE_BLOCKING) {
		enqueue_work(srv, ex);
		return;
	}
	srv->cfg.dispatch(ex);
	send_reply(ex);
}

/* ---- TLS ---------------------------------------------------------------- */

static struct bufferevent *tls_bevcb(struct event_base *base, void *arg)
{
	SSL_CTX *ctx = arg;
	SSL *ssl = SSL_new(ctx);
	if (!ssl)
		return NULL;
	struct bufferevent *bev = bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* Does the ClientHello's ALPN list (RFC 7301 wire format) offer proto? */
static bool alpn_offers(const unsigned char *p, size_t len, const char *proto)
{
	size_t plen = strlen(proto);
	if (len < 2 || (size_t)((p[0] << 8) | p[1]) != len - 2)
		return false;
	for (size_t i = 2; i < len;) {
		size_t n = p[i++];
		if (n > len - i)
			return false;
		if (n == plen && memcmp(p + i, proto, n) == 0)
			return true;
		i += n;
	}
	return false;
}

/*
 * Mutual TLS: a client certificate is required unless the client asks for
 * the enrollment protocol — decided here, before the server asks for one.
 */
static int tls_client_hello(SSL *ssl, int *alert, void *arg)
{
	(void)alert;
	struct http_server *srv = arg;
	const unsigned char *ext;
	size_t len;
	bool enroll = srv->cfg.enroll_alpn &&
		      SSL_client_hello_get0_ext(
			  ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext, &len) == 1 &&
		      alpn_offers(ext, len, srv->cfg.enroll_alpn);
	SSL_set_verify(ssl, enroll ? SSL_VERIFY_PEER : SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
		       NULL);
	return SSL_CLIENT_HELLO_SUCCESS;
}

static int tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
			   const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	struct http_server *srv = arg;
	static const unsigned char http11[] = "\x08http/1.1";
	unsigned char want[256];
	size_t n = strlen(srv->cfg.enroll_alpn);
	want[0] = (unsigned char)n;
	memcpy(want + 1, srv->cfg.enroll_alpn, n);
	if (SSL_select_next_proto((unsigned char **)out, outlen, want, (unsigned)n + 1, in, inlen) ==
		OPENSSL_NPN_NEGOTIATED ||
	    SSL_select_next_proto((unsigned char **)out, outlen, http11, sizeof(http11) - 1, in,
				  inlen) == OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_OK;
	return SSL_TLSEXT_ERR_NOACK;
}

/* Every fatal alert the server sends is a refused handshake (or a broken connection). */
static void tls_info(const SSL *ssl, int where, int ret)
{
	/* After the handshake a fatal alert is a broken connection (a peer gone without
	 * close_notify), not a refusal. */
	if (!(where & SSL_CB_WRITE_ALERT) || (ret >> 8) != SSL3_AL_FATAL || SSL_is_init_finished(ssl))
		return;
	/* OpenSSL 3.0 names no TLS 1.3 alert: 116 is RFC 8446's certificate_required. */
	const char *why = (ret & 0xff) == 116 ? "certificate required" : SSL_alert_desc_string_long(ret);
	struct http_server *srv = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (!srv || !srv->cfg.tls_rejected)
		return;
	char ip[64] = "unknown";
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = SSL_get_fd(ssl);
	if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip,
				  sizeof(ip));
	}
	srv->cfg.tls_rejected(srv->cfg.app, ip, why);
}

static int tls_require_clients(struct http_server *srv, SSL_CTX *ctx)
{
	if (SSL_CTX_set1_verify_cert_store(ctx, srv->cfg.client_ca) != 1)
		return ODX_ECRYPTO;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_app_data(ctx, srv);
	SSL_CTX_set_info_callback(ctx, tls_info);
	if (srv->cfg.enroll_alpn) {
		if (strlen(srv->cfg.enroll_alpn) > 255)
			return ODX_EINVAL;
		SSL_CTX_set_client_hello_cb(ctx, tls_client_hello, srv);
		SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, srv);
	}
	/* Many mostly idle agent connections: no read/write buffers kept between records. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* No session resumption: every connection shows its certificate again. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	return 0;
}

static SSL_CTX *tls_context(struct http_server *srv, char *err, size_t errlen)
{
	const char *cert = srv->cfg.tls_cert, *key = srv->cfg.tls_key;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		snprintf(err, errlen, "cannot create TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				     SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		/* Name the files, never their contents. */
		snprintf(err, errlen, "cannot load TLS certificate %s and key %s", cert, key);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (srv->cfg.client_ca && tls_require_clients(srv, ctx) < 0) {
		snprintf(err, errlen, "cannot set up client certificate verification");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* The verified client certificate's node id, and whether the client came to enroll. */
static void fill_tls_peer(struct http_exchange *ex, struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	if (!ssl)
		return;
	X509 *cert = SSL_get0_peer_certificate(ssl);
	/* No certificate also verifies as X509_V_OK: both are checked. */
	if (cert && SSL_get_verify_result(ssl) == X509_V_OK &&
	    x509_cert_node_id(cert, ex->peer_id, sizeof(ex->peer_id)) < 0)
		ex->peer_id[0] = '\0';
	const unsigned char *proto;
	unsigned int len;
	SSL_get0_alpn_selected(ssl, &proto, &len);
	const char *want = ex->loop->srv->cfg.enroll_alpn;
	ex->enrolling = want && len == strlen(want) && memcmp(proto, want, len) == 0;
}

/* ---- sockets and loops -------------------------------------------------- */

static int parse_listen(const char *listen, char host[static 256], char port[static 16])
{
	const char *colon;
	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');
		if (!end || end[1] != ':')
			return ODX_EINVAL;
		snprintf(host, 256, "%.*s", (int)(end - listen - 1), listen + 1);
		colon = end + 1;
	} else {
		colon = strrchr(listen, ':');
		if (!colon)
			return ODX_EINVAL;
		snprintf(host, 256, "%.*s", (int)(colon - listen), listen);
	}
	int64_t p;
	if (parse_int64(colon + 1, 0, 65535, &p) < 0)
		return ODX_EINVAL;
	snprintf(port, 16, "%d", (int)p);
	return 0;
}

static int bind_socket(const char *host, const char *port, int *out_fd, int *out_port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai;
	if (getaddrinfo(host[0] ? host : NULL, port, &hints, &ai) != 0)
		return ODX_EINVAL;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, rc = 0;
	if (fd < 0)
		rc = -errno;
	if (rc == 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
			/* Without it TLS replies wait ~40 ms on delayed ACKs. */
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0))
		rc = -errno;
	if (rc == 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		rc = -errno;
	if (rc == 0 && listen(fd, 1024) != 0)
		rc = -errno;
	if (rc == 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		getsockname(fd, (struct sockaddr *)&ss, &sl);
		*out_port = ss.ss_family == AF_INET6
				? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
				: ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	freeaddrinfo(ai);
	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	*out_fd = fd;
	return 0;
}

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct http_loop *loop = arg;
	if (atomic_load(&loop->inflight) == 0 || time_mono_ns() > loop->drain_deadline) {
		event_base_loopexit(loop->base, NULL);
		return;
	}
	struct timeval tv = {0, 20000};
	event_add(loop->drain_ev, &tv);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct http_loop *loop = arg;
	loop->stopping = true;
	hold_release_all(loop);
	if (loop->bound) {
		evhttp_del_accept_socket(loop->http, loop->bound); /* closes the listening fd */
		loop->bound = NULL;
	}
	loop->drain_deadline = time_mono_ns() + (int64_t)loop->srv->drain_s * NSEC_PER_SEC;
	drain_check(-1, 0, loop);
}

static void *loop_main(void *arg)
{
	struct http_loop *loop = arg;
	event_base_dispatch(loop->base);
	return NULL;
}

/*
 * libevent reads a whole body before any handler runs, so its cap is the
 * largest any route takes (the scan import's) plus room for our own JSON
 * 413 between a route's limit and this one.
 */
static size_t connection_body_cap(const struct http_server_config *cfg)
{
	size_t cap = HTTP_MAX_BODY;
	for (size_t i = 0; i < cfg->nroutes; i++)
		if (cfg->routes[i].max_body > cap)
			cap = cfg->routes[i].max_body;
	return cap + HTTP_MAX_BODY;
}

static int loop_init(struct http_server *srv, struct http_loop *loop, int fd, char *err,
		     size_t errlen)
{
	loop->srv = srv;
	loop->fd = fd;
	pthread_mutex_init(&loop->done_lock, NULL);
	/* The changelist folds the per-reply enable/disable of write interest into one epoll_ctl.
	 */
	struct event_config *ec = event_config_new();
	if (ec)
		event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	loop->base = ec ? event_base_new_with_config(ec) : NULL;
	if (ec)
		event_config_free(ec);
	loop->http = loop->base ? evhttp_new(loop->base) : NULL;
	if (!loop->http) {
		snprintf(err, errlen, "cannot create event loop");
		return ODX_ENOMEM;
	}
	evhttp_set_max_headers_size(loop->http, HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(loop->http, connection_body_cap(&srv->cfg));
	evhttp_set_timeout(loop->http, HTTP_TIMEOUT_S);
	evhttp_set_allowed_methods(loop->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						   EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE |
						   EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(loop->http, on_request, loop);
	if (srv->ssl)
		evhttp_set_bevcb(loop->http, tls_bevcb, srv->ssl);
	loop->bound = evhttp_accept_socket_with_handle(loop->http, fd);
	loop->done_ev = event_new(loop->base, -1, EV_PERSIST | EV_READ, on_done, loop);
	loop->stop_ev = event_new(loop->base, -1, EV_READ, on_stop, loop);
	loop->drain_ev = evtimer_new(loop->base, drain_check, loop);
	pthread_mutex_init(&loop->wake_lock, NULL);
	loop->wake_ev = event_new(loop->base, -1, EV_PERSIST | EV_READ, on_wake, loop);
	if (!loop->bound || !loop->done_ev || !loop->stop_ev || !loop->drain_ev || !loop->wake_ev) {
		snprintf(err, errlen, "cannot set up event loop");
		return ODX_ENOMEM;
	}
	event_add(loop->done_ev, NULL);
	event_add(loop->wake_ev, NULL);
	return 0;
}

int http_server_start(const struct http_server_config *cfg, struct http_server **out, char *err,
		      size_t errlen)
{
	int rc = http_routes_validate(cfg->routes, cfg->nroutes, err, errlen);
	if (rc < 0)
		return rc;
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, (void (*)(void))evthread_use_pthreads);
	signal(SIGPIPE, SIG_IGN);
	struct http_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return ODX_ENOMEM;
	srv->metrics = -1;
	srv->cfg = *cfg;
	pthread_mutex_init(&srv->q_lock, NULL);
	pthread_cond_init(&srv->q_cond, NULL);
	srv->nloops = cfg->threads > 0 ? cfg->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (srv->nloops < 1)
		srv->nloops = 1;
	srv->nworkers = cfg->workers > 0 ? cfg->workers : 4;
	srv->loops = calloc((size_t)srv->nloops, sizeof(*srv->loops));
	srv->workers = calloc((size_t)srv->nworkers, sizeof(*srv->workers));
	if (!srv->loops || !srv->workers) {
		http_server_free(srv);
		return ODX_ENOMEM;
	}
	if (cfg->tls_cert) {
		srv->ssl = tls_context(srv, err, errlen);
		if (!srv->ssl) {
			http_server_free(srv);
			return ODX_EINVAL;
		}
	}
	srv->metrics = metrics_init(cfg->routes, cfg->nroutes,
				    cfg->name ? cfg->name : "unmatched");
	rc = srv->metrics < 0 ? srv->metrics : 0;
	char host[256], port[16];
	if (rc == 0 && parse_listen(cfg->listen, host, port) < 0) {
		snprintf(err, errlen, "bad listen address '%s' (want host:port)", cfg->listen);
		rc = ODX_EINVAL;
	}
	for (int i = 0; rc == 0 && i < srv->nloops; i++) {
		int fd, bound_port;
		/* The first socket may ask for port 0; the others join the port it got. */
		if (i > 0)
			snprintf(port, sizeof(port), "%d", srv->port);
		rc = bind_socket(host, port, &fd, &bound_port);
		if (rc < 0) {
			snprintf(err, errlen, "cannot listen on %s: %s", cfg->listen,
				 odx_strerror(rc));
			break;
		}
		srv->port = bound_port;
		rc = loop_init(srv, &srv->loops[i], fd, err, errlen);
	}
	for (int i = 0; rc == 0 && i < srv->nloops; i++)
		if (pthread_create(&srv->loops[i].thread, NULL, loop_main, &srv->loops[i]) != 0)
			rc = ODX_ENOMEM;
	for (int i = 0; rc == 0 && i < srv->nworkers; i++)
		if (pthread_create(&srv->workers[i], NULL, worker_main, srv) != 0)
			rc = ODX_ENOMEM;
	if (rc < 0) {
		http_server_stop(srv, 0);
		http_server_free(srv);
		return rc;
	}
	*out = srv;
	return 0;
}

int http_server_port(const struct http_server *srv)
{
	return srv->port;
}

void http_server_stop(struct http_server *srv, int drain_s)
{
	srv->drain_s = drain_s;
	for (int i = 0; i < srv->nloops; i++) {
		struct http_loop *loop = &srv->loops[i];
		if (loop->thread) {
			event_active(loop->stop_ev, EV_READ, 0);
			pthread_join(loop->thread, NULL);
			loop->thread = 0;
		}
	}
	pthread_mutex_lock(&srv->q_lock);
	srv->q_stop = true;
	pthread_cond_broadcast(&srv->q_cond);
	pthread_mutex_unlock(&srv->q_lock);
	for (int i = 0; i < srv->nworkers; i++) {
		if (srv->workers[i]) {
			pthread_join(srv->workers[i], NULL);
			srv->workers[i] = 0;
		}
	}
}

void http_server_free(struct http_server *srv)
{
	if (!srv)
		return;
	for (int i = 0; srv->loops && i < srv->nloops; i++) {
		struct http_loop *loop = &srv->loops[i];
		/* Replies that finished after the drain deadline are dropped with their connection.
		 */
		struct http_exchange *ex = loop->done_head;
		while (ex) {
			struct http_exchange *next = ex->next;
			exchange_free(ex);
			ex = next;
		}
		if (loop->http)
			evhttp_free(loop->http);
		if (loop->done_ev)
			event_free(loop->done_ev);
		if (loop->stop_ev)
			event_free(loop->stop_ev);
		if (loop->drain_ev)
			event_free(loop->drain_ev);
		if (loop->wake_ev) {
			event_free(loop->wake_ev);
			pthread_mutex_destroy(&loop->wake_lock);
		}
		if (loop->base)
			event_base_free(loop->base);
		pthread_mutex_destroy(&loop->done_lock);
	}
	free(srv->loops);
	free(srv->workers);
	if (srv->ssl)
		SSL_CTX_free(srv->ssl);
	pthread_mutex_destroy(&srv->q_lock);
	pthread_cond_destroy(&srv->q_cond);
	metrics_free(srv->metrics);
	free(srv);
}
