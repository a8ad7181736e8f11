/*
 * docker.c — see docker.h.
 *
 * One curl easy handle per struct docker, reused so that the connection to
 * the engine's socket stays open between calls. Every answer body passes
 * through on_write: a non-2xx body is kept (bounded) for its {"message"},
 * a 2xx body goes to the call's sink: a bounded buffer (JSON answers), a
 * line splitter (the pull progress and events streams: one JSON object per
 * line) or the log demultiplexer.
 *
 * The engine is trusted to run containers, not to send well-formed bytes:
 * every answer is capped, lengths it announces are only counted down (never
 * used to size an allocation), and text it sends reaches docker_last_error
 * as printable ASCII only.
 *
 * Log stream (containers without a TTY), one frame per write of the
 * container:
 *
 *	+------+-------+-------------------------+------------------+
 *	| type | 0 0 0 | size: uint32 big-endian | size bytes       |
 *	+------+-------+-------------------------+------------------+
 *	type: 0 stdin, 1 stdout, 2 stderr
 *
 * With a TTY the stream is the raw bytes. API v1.41 sends no Content-Type
 * that tells the two apart (1.42 added one), so the container's Config.Tty
 * decides.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/err.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/wipe.h"
#include "docker/docker.h"

#define BASE_URL	   "http://localhost/" DOCKER_API
#define URL_MAX		   4096
#define REPLY_MAX	   ((size_t)16 << 20) /* a JSON answer */
#define ERRBODY_MAX	   ((size_t)64 << 10) /* an error answer */
#define STREAM_LINE_MAX	   ((size_t)1 << 20)  /* one event or pull progress object */
#define ERROR_LEN	   256
#define TIMEOUT_DEFAULT_MS 30000L
#define CONNECT_MAX_MS	   10000L
/* A pull moves image layers: the handle's per-call timeout is far too short. */
#define PULL_TIMEOUT_MS (15L * 60 * 1000)
#define PULL_IDLE_S	120L /* the engine reports progress at least this often */
#define STOP_POLL_MS	200  /* how often a stream checks *stop */
#define STOP_MAX_S	3600
#define NAME_MAX_LEN	255 /* container and network names and ids */
#define REF_MAX_LEN	512 /* image references */
#define SIGNAL_MAX_LEN	16

struct docker {
	CURL *h;
	struct curl_slist *hdr_json;  /* for requests with a JSON body */
	struct curl_slist *hdr_plain; /* for the others */
	long timeout_ms;
	char socket[108]; /* sun_path's size */
	char error[ERROR_LEN];
};

/*
 * A growable buffer that never holds more than max bytes (plus a NUL).
 * Answers can carry secrets (a container's Config.Env): wiped when freed.
 */
struct buf {
	char *data;
	size_t len, cap, max;
};

/* Receives the bytes of a 2xx answer; non-zero aborts the transfer. */
typedef int (*sink_fn)(void *arg, const char *p, size_t n);

struct call {
	struct docker *d;
	const char *method; /* "GET", "POST" or "DELETE" */
	const char *url;
	const json_t *body; /* POST body or NULL */
	long timeout_ms;    /* 0: none (streams) */
	long idle_s;	    /* abort when nothing arrives for this long; 0: never */
	const volatile bool *stop;
	sink_fn sink; /* NULL: the body is discarded */
	void *arg;
	/* results */
	long status;
	struct buf err; /* the body of a non-2xx answer */
	int sink_rc;	/* why a sink aborted */
};

/* ---- small helpers ----------------------------------------------- */

static void set_error(struct docker *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keeps printable ASCII only: the text came from the engine. */
static void set_text(struct docker *d, const char *s)
{
	size_t o = 0;

	for (; s != NULL && *s != '\0' && o + 1 < sizeof(d->error); s++)
		d->error[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	d->error[o] = '\0';
}

static void set_error(struct docker *d, const char *fmt, ...)
{
	char tmp[ERROR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	set_text(d, tmp);
}

static int buf_add(struct buf *b, const char *p, size_t n)
{
	if (n > b->max - b->len)
		return ODX_ETOOBIG;
	if (b->len + n + 1 > b->cap) {
		/* max is far below SIZE_MAX / 2: doubling cannot overflow. */
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *q = wipe_realloc(b->data, cap);
		if (q == NULL)
			return ODX_ENOMEM;
		b->data = q;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

static void buf_done(struct buf *b)
{
	wipe_free(b->data);
	memset(b, 0, sizeof(*b));
}

static int buf_sink(void *arg, const char *p, size_t n)
{
	return buf_add(arg, p, n);
}

/* Container and network names and ids: what the engine itself accepts. */
static bool valid_name(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
			return false;
	}
	return true;
}

/*
 * Image references: [registry[:port]/]path[:tag][@digest]. The reference
 * grammar never has "..", so refusing it also keeps a ref from climbing out
 * of /images/ in the URL.
 */
static bool valid_ref(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > REF_MAX_LEN || strstr(s, "..") != NULL || strstr(s, "//") != NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || strchr("._-/:@", c) == NULL))
			return false;
	}
	return true;
}

/* Refuses an argument before anything is sent; says which one. */
static int bad_arg(struct docker *d, const char *what)
{
	set_error(d, "invalid %s", what);
	return ODX_EINVAL;
}

static bool valid_id(const char *s)
{
	if (s == NULL || strlen(s) != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* ---- URLs -------------------------------------------------------- */

struct url {
	char s[URL_MAX];
	size_t len;
	bool bad; /* too long or out of memory: the call is refused */
};

static void url_add(struct url *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void url_add(struct url *u, const char *fmt, ...)
{
	va_list ap;

	if (u->bad)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(u->s + u->len, sizeof(u->s) - u->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(u->s) - u->len)
		u->bad = true;
	else
		u->len += (size_t)n;
}

/* Appends s percent-encoded (a path segment or a query value). */
static void url_esc(struct docker *d, struct url *u, const char *s)
{
	char *e = curl_easy_escape(d->h, s, 0);

	if (e == NULL) {
		u->bad = true;
		return;
	}
	url_add(u, "%s", e);
	curl_free(e);
}

static void url_init(struct url *u, const char *path)
{
	u->len = 0;
	u->bad = false;
	url_add(u, "%s%s", BASE_URL, path);
}

/* Appends "{"label":[label]}" (or filters as given) as the filters= value. */
static void url_filters(struct docker *d, struct url *u, const json_t *filters)
{
	char *s = jsonx_dump(filters);

	if (s == NULL) {
		u->bad = true;
		return;
	}
	url_esc(d, u, s);
	free(s);
}

/* ---- one request ------------------------------------------------- */

static size_t on_write(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct call *c = userdata;
	size_t n = size * nmemb;

	if (c->status == 0)
		curl_easy_getinfo(c->d->h, CURLINFO_RESPONSE_CODE, &c->status);
	if (c->status < 200 || c->status >= 300) {
		/* Only the start of an error answer matters; the rest is dropped. */
		size_t room = c->err.max - c->err.len;
		if (buf_add(&c->err, p, n < room ? n : room) < 0)
			return 0;
		return n;
	}
	if (c->sink == NULL)
		return n;
	int rc = c->sink(c->arg, p, n);
	if (rc != 0) {
		c->sink_rc = rc;
		return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
	}
	return n;
}

/* Runs the transfer on a private multi handle so that *stop is seen often. */
static CURLcode perform_stoppable(struct docker *d, const volatile bool *stop, bool *stopped)
{
	CURLM *m = curl_multi_init();
	CURLcode res = CURLE_OK;
	CURLMsg *msg;
	int running = 1, left;

	if (m == NULL)
		return CURLE_OUT_OF_MEMORY;
	if (curl_multi_add_handle(m, d->h) != CURLM_OK) {
		curl_multi_cleanup(m);
		return CURLE_OUT_OF_MEMORY;
	}
	while (running) {
		if (*stop) {
			*stopped = true;
			break;
		}
		if (curl_multi_perform(m, &running) != CURLM_OK) {
			res = CURLE_RECV_ERROR;
			break;
		}
		if (running && curl_multi_poll(m, NULL, 0, STOP_POLL_MS, NULL) != CURLM_OK) {
			res = CURLE_RECV_ERROR;
			break;
		}
	}
	while ((msg = curl_multi_info_read(m, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE)
			res = msg->data.result;
	/* A transfer cut short closes its connection; the next call opens one. */
	curl_multi_remove_handle(m, d->h);
	curl_multi_cleanup(m);
	return res;
}

static int setup_call(struct call *c, const char *json)
{
	struct docker *d = c->d;
	CURLcode e = CURLE_OK;
#define SETOPT(opt, val)                                                                           \
	do {                                                                                       \
		if (e == CURLE_OK)                                                                 \
			e = curl_easy_setopt(d->h, opt, val);                                      \
	} while (0)
	SETOPT(CURLOPT_URL, c->url);
	SETOPT(CURLOPT_WRITEDATA, c);
	SETOPT(CURLOPT_TIMEOUT_MS, c->timeout_ms);
	SETOPT(CURLOPT_LOW_SPEED_LIMIT, c->idle_s > 0 ? 1L : 0L);
	SETOPT(CURLOPT_LOW_SPEED_TIME, c->idle_s);
	SETOPT(CURLOPT_HTTPHEADER, json != NULL ? d->hdr_json : d->hdr_plain);
	if (strcmp(c->method, "POST") == 0) {
		SETOPT(CURLOPT_CUSTOMREQUEST, (char *)NULL);
		SETOPT(CURLOPT_POST, 1L);
		SETOPT(CURLOPT_POSTFIELDS, json != NULL ? json : "");
		SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(json != NULL ? strlen(json) : 0));
	} else {
		SETOPT(CURLOPT_HTTPGET, 1L);
		SETOPT(CURLOPT_CUSTOMREQUEST, strcmp(c->method, "GET") == 0 ? NULL : c->method);
	}
#undef SETOPT
	if (e != CURLE_OK)
		return e == CURLE_OUT_OF_MEMORY ? ODX_ENOMEM : ODX_EINTERNAL;
	return 0;
}

static int transport_error(struct call *c, CURLcode e, const char *errbuf)
{
	struct docker *d = c->d;

	if (e == CURLE_WRITE_ERROR && c->sink_rc != 0) {
		if (c->sink_rc == ODX_ETOOBIG && d->error[0] == '\0')
			set_error(d, "the engine's answer is too large");
		return c->sink_rc;
	}
	set_text(d, errbuf[0] != '\0' ? errbuf : curl_easy_strerror(e));
	if (e == CURLE_COULDNT_CONNECT) {
		/* curl's text names "localhost port 80": say which socket instead. */
		char eb[128];
		long os = 0;
		curl_easy_getinfo(d->h, CURLINFO_OS_ERRNO, &os);
		set_error(d, "cannot connect to %s: %s", d->socket,
			  os > 0 ? strerror_r((int)os, eb, sizeof(eb)) : "refused");
	}
	switch (e) {
	case CURLE_OUT_OF_MEMORY: return ODX_ENOMEM;
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE: return ODX_EUNAVAIL;
	default: return ODX_EIO;
	}
}

/* The status decides; the engine's {"message"} says why. */
static int status_error(struct call *c)
{
	struct docker *d = c->d;
	json_t *j = NULL;
	const char *m = NULL;

	if (c->status >= 200 && c->status < 300)
		return 0;
	/* 304: start of a running or stop of a stopped container — nothing to do. */
	if (c->status == 304)
		return 0;
	if (c->err.len > 0)
		j = json_loadb(c->err.data, c->err.len, 0, NULL);
	m = json_string_value(json_object_get(j, "message"));
	if (m != NULL)
		set_text(d, m);
	else
		set_error(d, "HTTP %ld from the engine", c->status);
	json_decref(j);
	if (c->status == 400 && log_enabled(LOG_DEBUG))
		log_event(LOG_DEBUG, "docker: the engine refused a request",
			  json_pack("{s:s}", "error", d->error));
	switch (c->status) {
	case 400: return ODX_EINVAL;
	case 404: return ODX_ENOTFOUND;
	case 403: /* a network in use or predefined: the state does not allow it */
	case 409: return ODX_ECONFLICT;
	default: return ODX_EIO;
	}
}

/* Sends c and maps the outcome to one ODX_E* code; d->error says why. */
static int call_run(struct call *c)
{
	struct docker *d = c->d;
	char errbuf[CURL_ERROR_SIZE] = "";
	char *json = NULL;
	bool stopped = false;
	int rc;

	d->error[0] = '\0';
	c->status = 0;
	c->sink_rc = 0;
	c->err = (struct buf){.max = ERRBODY_MAX};
	if (c->body != NULL && (json = jsonx_dump(c->body)) == NULL)
		return ODX_ENOMEM;
	rc = setup_call(c, json);
	if (rc < 0)
		goto out;
	curl_easy_setopt(d->h, CURLOPT_ERRORBUFFER, errbuf);
	CURLcode e =
	    c->stop != NULL ? perform_stoppable(d, c->stop, &stopped) : curl_easy_perform(d->h);
	/* The body and the error buffer live here; curl must not keep them. */
	curl_easy_setopt(d->h, CURLOPT_POSTFIELDS, (char *)NULL);
	curl_easy_setopt(d->h, CURLOPT_ERRORBUFFER, (char *)NULL);
	curl_easy_setopt(d->h, CURLOPT_WRITEDATA, (void *)NULL);
	curl_easy_getinfo(d->h, CURLINFO_RESPONSE_CODE, &c->status);
	if (stopped)
		rc = 0;
	else if (e != CURLE_OK)
		rc = transport_error(c, e, errbuf);
	else
		rc = status_error(c);
out:
	wipe_free(json); /* a create spec can hold secrets in its Env */
	buf_done(&c->err);
	return rc;
}

/* A request whose answer (if any) is one JSON value of type want. */
static int call_json(struct docker *d, const char *method, const struct url *u, const json_t *body,
		     json_type want, json_t **out)
{
	struct buf b = {.max = REPLY_MAX};
	struct call c = {.d = d,
			 .method = method,
			 .url = u->s,
			 .body = body,
			 .timeout_ms = d->timeout_ms,
			 .sink = out != NULL ? buf_sink : NULL,
			 .arg = &b};
	json_error_t je;
	json_t *j;
	int rc;

	if (u->bad)
		return bad_arg(d, "argument: too long for a URL");
	rc = call_run(&c);
	if (rc < 0 || out == NULL)
		goto out;
	j = json_loadb(b.data != NULL ? b.data : "", b.len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL || json_typeof(j) != want) {
		json_decref(j);
		set_error(d, "the engine's answer is not the JSON expected");
		rc = ODX_EIO;
		goto out;
	}
	*out = j;
out:
	buf_done(&b);
	return rc;
}

/* ---- line streams (pull progress, events) -------------------------- */

typedef int (*line_fn)(void *arg, const char *line, size_t len);

/* Splits a stream into lines (partial ones kept across chunks), bounded. */
struct lines {
	struct buf part;
	line_fn fn;
	void *arg;
};

static int lines_sink(void *arg, const char *p, size_t n)
{
	struct lines *l = arg;
	int rc;

	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t k = nl != NULL ? (size_t)(nl - p) : n;
		if ((rc = buf_add(&l->part, p, k)) < 0)
			return rc;
		if (nl == NULL)
			break;
		if (l->part.len > 0 && (rc = l->fn(l->arg, l->part.data, l->part.len)) != 0)
			return rc;
		l->part.len = 0;
		p += k + 1;
		n -= k + 1;
	}
	return 0;
}

/* The last object may come without its newline. */
static int lines_flush(struct lines *l)
{
	int rc = 0;

	if (l->part.len > 0)
		rc = l->fn(l->arg, l->part.data, l->part.len);
	l->part.len = 0;
	return rc;
}

/* Parses one line as a JSON object; blank lines ("\r") are skipped (*out NULL). */
static int line_object(struct docker *d, const char *line, size_t len, json_t **out)
{
	json_t *j;

	*out = NULL;
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (len == 0)
		return 0;
	j = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		set_error(d, "the engine's stream holds something that is not a JSON object");
		return ODX_EIO;
	}
	*out = j;
	return 0;
}

/* ---- handle ------------------------------------------------------ */

static int make_headers(struct docker *d)
{
	/* "Expect:" stops curl waiting for 100-continue; "Content-Type:" drops its default. */
	const char *const json[] = {"Expect:", "Content-Type: application/json"};
	const char *const plain[] = {"Expect:", "Content-Type:"};
	struct curl_slist *l;

	for (size_t i = 0; i < 2; i++) {
		if ((l = curl_slist_append(d->hdr_json, json[i])) == NULL)
			return ODX_ENOMEM;
		d->hdr_json = l;
		if ((l = curl_slist_append(d->hdr_plain, plain[i])) == NULL)
			return ODX_ENOMEM;
		d->hdr_plain = l;
	}
	return 0;
}

static int setup_handle(struct docker *d, const char *socket)
{
	CURLcode e = CURLE_OK;
#define SETOPT(opt, val)                                                                           \
	do {                                                                                       \
		if (e == CURLE_OK)                                                                 \
			e = curl_easy_setopt(d->h, opt, val);                                      \
	} while (0)
	SETOPT(CURLOPT_UNIX_SOCKET_PATH, socket);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http");
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS,
	       d->timeout_ms < CONNECT_MAX_MS ? d->timeout_ms : CONNECT_MAX_MS);
	SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SETOPT(CURLOPT_USERAGENT, "odysseus-docker");
	/* http_proxy from the environment must never see engine requests. */
	SETOPT(CURLOPT_NOPROXY, "*");
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_WRITEFUNCTION, on_write);
#undef SETOPT
	if (e != CURLE_OK)
		return e == CURLE_OUT_OF_MEMORY ? ODX_ENOMEM : ODX_EINTERNAL;
	return 0;
}

int docker_open(const char *socket, int timeout_ms, struct docker **out)
{
	struct docker *d;
	int rc;

	if (socket == NULL)
		socket = DOCKER_SOCKET_DEFAULT;
	/* sun_path holds 108 bytes with its NUL. */
	if (socket[0] == '\0' || strlen(socket) >= sizeof(((struct docker *)0)->socket) ||
	    timeout_ms < 0)
		return ODX_EINVAL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return ODX_ENOMEM;
	d->timeout_ms = timeout_ms > 0 ? timeout_ms : TIMEOUT_DEFAULT_MS;
	memcpy(d->socket, socket, strlen(socket) + 1);
	if ((d->h = curl_easy_init()) == NULL) {
		rc = ODX_ENOMEM;
		goto fail;
	}
	if ((rc = make_headers(d)) < 0 || (rc = setup_handle(d, socket)) < 0)
		goto fail;
	*out = d;
	return 0;
fail:
	docker_close(d);
	return rc;
}

void docker_close(struct docker *d)
{
	if (d == NULL)
		return;
	curl_easy_cleanup(d->h);
	curl_slist_free_all(d->hdr_json);
	curl_slist_free_all(d->hdr_plain);
	free(d);
}

const char *docker_last_error(const struct docker *d)
{
	return d->error;
}

/* ---- system ------------------------------------------------------ */

int docker_ping(struct docker *d)
{
	struct buf b = {.max = 64};
	struct url u;
	url_init(&u, "/_ping");
	struct call c = {.d = d,
			 .method = "GET",
			 .url = u.s,
			 .timeout_ms = d->timeout_ms,
			 .sink = buf_sink,
			 .arg = &b};
	int rc = call_run(&c);

	if (rc == 0 && (b.len != 2 || memcmp(b.data, "OK", 2) != 0)) {
		set_error(d, "the socket's answer to /_ping is not the engine's");
		rc = ODX_EIO;
	}
	buf_done(&b);
	return rc;
}

int docker_info(struct docker *d, json_t **out)
{
	struct url u;

	url_init(&u, "/info");
	return call_json(d, "GET", &u, NULL, JSON_OBJECT, out);
}

/* ---- images ------------------------------------------------------ */

int docker_image_inspect(struct docker *d, const char *ref, json_t **out)
{
	struct url u;

	d->error[0] = '\0';
	if (!valid_ref(ref))
		return bad_arg(d, "image reference");
	url_init(&u, "/images/");
	url_esc(d, &u, ref);
	url_add(&u, "/json");
	return call_json(d, "GET", &u, NULL, JSON_OBJECT, out);
}

/*
 * Splits ref into the name and the tag (or digest) the API wants apart, as
 * the docker CLI does: "name:tag@digest" pulls by digest; no tag means
 * "latest" (an empty tag would pull every tag of the repository).
 */
static int split_ref(const char *ref, char name[static REF_MAX_LEN + 1],
		     char tag[static REF_MAX_LEN + 1])
{
	const char *at = strchr(ref, '@');
	size_t n = at != NULL ? (size_t)(at - ref) : strlen(ref);
	const char *slash = memrchr(ref, '/', n);
	const char *colon = memrchr(ref, ':', n);

	if (colon != NULL && slash != NULL && colon < slash)
		colon = NULL; /* the registry's port, not a tag */
	memcpy(name, ref, colon != NULL ? (size_t)(colon - ref) : n);
	name[colon != NULL ? (size_t)(colon - ref) : n] = '\0';
	if (at != NULL)
		snprintf(tag, REF_MAX_LEN + 1, "%s", at + 1);
	else if (colon != NULL)
		snprintf(tag, REF_MAX_LEN + 1, "%.*s", (int)(n - (size_t)(colon + 1 - ref)),
			 colon + 1);
	else
		snprintf(tag, REF_MAX_LEN + 1, "latest");
	return name[0] != '\0' && tag[0] != '\0' ? 0 : ODX_EINVAL;
}

/* A progress object with "error" ends the pull: the image is not there or not usable. */
static int pull_line(void *arg, const char *line, size_t len)
{
	struct docker *d = arg;
	json_t *j;
	int rc = line_object(d, line, len, &j);

	if (rc < 0 || j == NULL)
		return rc;
	const char *m = json_string_value(json_object_get(j, "error"));
	if (m != NULL) {
		set_text(d, m);
		rc = (strstr(m, "not found") != NULL || strstr(m, "manifest unknown") != NULL ||
		      strstr(m, "does not exist") != NULL)
			 ? ODX_ENOTFOUND
			 : ODX_EINVAL;
	} else if (json_object_get(j, "error") != NULL) {
		set_error(d, "the pull failed");
		rc = ODX_EINVAL;
	}
	json_decref(j);
	return rc;
}

int docker_image_pull(struct docker *d, const char *ref)
{
	char name[REF_MAX_LEN + 1], tag[REF_MAX_LEN + 1];
	struct lines l = {.part = {.max = STREAM_LINE_MAX}, .fn = pull_line, .arg = d};
	struct url u;
	int rc;

	d->error[0] = '\0';
	if (!valid_ref(ref) || split_ref(ref, name, tag) < 0)
		return bad_arg(d, "image reference");
	url_init(&u, "/images/create?fromImage=");
	url_esc(d, &u, name);
	url_add(&u, "&tag=");
	url_esc(d, &u, tag);
	if (u.bad)
		return bad_arg(d, "argument: too long for a URL");
	struct call c = {.d = d,
			 .method = "POST",
			 .url = u.s,
			 .timeout_ms =
			     d->timeout_ms > PULL_TIMEOUT_MS ? d->timeout_ms : PULL_TIMEOUT_MS,
			 .idle_s = PULL_IDLE_S,
			 .sink = lines_sink,
			 .arg = &l};
	rc = call_run(&c);
	if (rc == 0)
		rc = lines_flush(&l);
	buf_done(&l.part);
	return rc;
}

/* ---- containers -------------------------------------------------- */

int docker_container_create(struct docker *d, const char *name, const json_t *spec,
			    char id[static 65])
{
	json_t *ans = NULL;
	struct url u;
	int rc;

	d->error[0] = '\0';
	if (name != NULL && !valid_name(name))
		return bad_arg(d, "container name");
	if (!json_is_object(spec))
		return bad_arg(d, "container spec");
	url_init(&u, "/containers/create");
	if (name != NULL) {
		url_add(&u, "?name=");
		url_esc(d, &u, name);
	}
	rc = call_json(d, "POST", &u, spec, JSON_OBJECT, &ans);
	if (rc < 0)
		return rc;
	const char *v = json_string_value(json_object_get(ans, "Id"));
	if (!valid_id(v)) {
		set_error(d, "the engine's answer has no valid container id");
		rc = ODX_EIO;
	} else {
		memcpy(id, v, 65);
	}
	json_decref(ans);
	return rc;
}

/* POST /containers/{id}/<verb><query> with no body and no answer. */
static int container_post(struct docker *d, const char *id, const char *verb, const char *query_key,
			  const char *query_val, long extra_ms)
{
	struct url u;

	d->error[0] = '\0';
	if (!valid_name(id))
		return bad_arg(d, "container name or id");
	url_init(&u, "/containers/");
	url_esc(d, &u, id);
	url_add(&u, "/%s", verb);
	if (query_key != NULL) {
		url_add(&u, "?%s=", query_key);
		url_esc(d, &u, query_val);
	}
	if (u.bad)
		return bad_arg(d, "argument: too long for a URL");
	struct call c = {
	    .d = d, .method = "POST", .url = u.s, .timeout_ms = d->timeout_ms + extra_ms};
	return call_run(&c);
}

int docker_container_start(struct docker *d, const char *id)
{
	return container_post(d, id, "start", NULL, NULL, 0);
}

int docker_container_stop(struct docker *d, const char *id, int timeout_s)
{
	char t[16];

	if (timeout_s < 0 || timeout_s > STOP_MAX_S)
		return bad_arg(d, "stop timeout");
	snprintf(t, sizeof(t), "%d", timeout_s);
	/* The engine waits up to t seconds before it kills: so does the call. */
	return container_post(d, id, "stop", "t", t, (long)timeout_s * 1000);
}

int docker_container_kill(struct docker *d, const char *id, const char *signal)
{
	size_t n = signal != NULL ? strlen(signal) : 0;

	if (signal == NULL)
		return container_post(d, id, "kill", NULL, NULL, 0);
	if (n == 0 || n > SIGNAL_MAX_LEN || !valid_name(signal))
		return bad_arg(d, "signal");
	return container_post(d, id, "kill", "signal", signal, 0);
}

int docker_container_remove(struct docker *d, const char *id)
{
	struct url u;

	d->error[0] = '\0';
	if (!valid_name(id))
		return bad_arg(d, "container name or id");
	url_init(&u, "/containers/");
	url_esc(d, &u, id);
	url_add(&u, "?force=1&v=1");
	return call_json(d, "DELETE", &u, NULL, JSON_OBJECT, NULL);
}

int docker_container_inspect(struct docker *d, const char *id, json_t **out)
{
	struct url u;

	d->error[0] = '\0';
	if (!valid_name(id))
		return bad_arg(d, "container name or id");
	url_init(&u, "/containers/");
	url_esc(d, &u, id);
	url_add(&u, "/json");
	return call_json(d, "GET", &u, NULL, JSON_OBJECT, out);
}

int docker_container_list(struct docker *d, const char *label, json_t **out)
{
	struct url u;

	d->error[0] = '\0';
	if (label != NULL && label[0] == '\0')
		return bad_arg(d, "label");
	url_init(&u, "/containers/json?all=1");
	if (label != NULL) {
		json_t *f = json_pack("{s:[s]}", "label", label);
		if (f == NULL)
			return ODX_ENOMEM;
		url_add(&u, "&filters=");
		url_filters(d, &u, f);
		json_decref(f);
	}
	return call_json(d, "GET", &u, NULL, JSON_ARRAY, out);
}

/* ---- logs -------------------------------------------------------- */

struct logs {
	struct docker *d;
	bool tty;
	uint8_t hdr[8];
	size_t hlen;   /* bytes of the frame header read so far */
	uint32_t left; /* bytes of the current frame still to come */
	char *data;
	size_t len, cap;
	size_t max;   /* what the caller keeps */
	size_t limit; /* what is held before old bytes are dropped: 2 * max */
};

/*
 * Appends p keeping only the newest bytes. Up to 2 * max are held so that
 * dropping old bytes (a memmove) happens once per max bytes, not per chunk.
 */
static int logs_keep(struct logs *l, const char *p, size_t n)
{
	if (n >= l->max) {
		p += n - l->max;
		n = l->max;
		l->len = 0;
	} else if (l->len + n > l->limit) {
		size_t drop = l->len + n - l->max;
		memmove(l->data, l->data + drop, l->len - drop);
		l->len -= drop;
	}
	if (n == 0)
		return 0;
	if (l->len + n > l->cap) {
		size_t cap = l->cap ? l->cap : 4096;
		while (cap < l->len + n && cap <= l->limit / 2)
			cap *= 2;
		if (cap < l->len + n || cap > l->limit)
			cap = l->limit; /* len + n <= limit always holds here */
		char *q = realloc(l->data, cap + 1);
		if (q == NULL)
			return ODX_ENOMEM;
		l->data = q;
		l->cap = cap;
	}
	memcpy(l->data + l->len, p, n);
	l->len += n;
	return 0;
}

static int logs_sink(void *arg, const char *p, size_t n)
{
	struct logs *l = arg;
	int rc;

	if (l->tty)
		return logs_keep(l, p, n);
	while (n > 0) {
		if (l->left == 0) {
			size_t k = 8 - l->hlen < n ? 8 - l->hlen : n;
			memcpy(l->hdr + l->hlen, p, k);
			l->hlen += k;
			p += k;
			n -= k;
			if (l->hlen < 8)
				break;
			l->hlen = 0;
			if (l->hdr[0] > 2 || (l->hdr[1] | l->hdr[2] | l->hdr[3]) != 0) {
				set_error(l->d, "the log stream has a bad frame header");
				return ODX_EIO;
			}
			l->left = (uint32_t)l->hdr[4] << 24 | (uint32_t)l->hdr[5] << 16 |
				  (uint32_t)l->hdr[6] << 8 | (uint32_t)l->hdr[7];
			continue;
		}
		size_t k = l->left < n ? l->left : n;
		if ((rc = logs_keep(l, p, k)) < 0)
			return rc;
		p += k;
		n -= k;
		l->left -= (uint32_t)k;
	}
	return 0;
}

/* Config.Tty decides the stream's format (see the top of the file). */
static int container_tty(struct docker *d, const char *id, bool *tty)
{
	json_t *j = NULL;
	int rc = docker_container_inspect(d, id, &j);

	if (rc < 0)
		return rc;
	json_t *v = json_object_get(json_object_get(j, "Config"), "Tty");
	if (!json_is_boolean(v)) {
		set_error(d, "the container's inspect has no Config.Tty");
		rc = ODX_EIO;
	} else {
		*tty = json_is_true(v);
	}
	json_decref(j);
	return rc;
}

static int logs_fetch(struct docker *d, const char *id, int tail, int64_t since_s,
		      struct logs *l)
{
	struct url u;
	int rc;

	url_init(&u, "/containers/");
	url_esc(d, &u, id);
	url_add(&u, "/logs?stdout=1&stderr=1&timestamps=0&follow=0&tail=");
	if (tail < 0)
		url_add(&u, "all");
	else
		url_add(&u, "%d", tail);
	if (since_s > 0)
		url_add(&u, "&since=%lld", (long long)since_s);
	if (u.bad)
		return bad_arg(d, "argument: too long for a URL");
	struct call c = {.d = d,
			 .method = "GET",
			 .url = u.s,
			 .timeout_ms = d->timeout_ms,
			 .sink = logs_sink,
			 .arg = l};
	rc = call_run(&c);
	if (rc == 0 && (l->hlen != 0 || l->left != 0)) {
		set_error(d, "the log stream ends inside a frame");
		rc = ODX_EIO;
	}
	return rc;
}

int docker_container_logs(struct docker *d, const char *id, int tail, size_t max, char **out,
			  size_t *len)
{
	return docker_container_logs_since(d, id, tail, 0, max, out, len);
}

int docker_container_logs_since(struct docker *d, const char *id, int tail, int64_t since_s,
				size_t max, char **out, size_t *len)
{
	struct logs l = {.d = d, .max = max};
	int rc;

	d->error[0] = '\0';
	if (!valid_name(id) || max > SIZE_MAX / 2 - 1)
		return bad_arg(d, "container or size");
	l.limit = 2 * max;
	if ((rc = container_tty(d, id, &l.tty)) < 0 || (rc = logs_fetch(d, id, tail, since_s, &l)) < 0)
		goto fail;
	if (l.len > max) {
		memmove(l.data, l.data + l.len - max, max);
		l.len = max;
	}
	if (l.data == NULL && (l.data = malloc(1)) == NULL) {
		rc = ODX_ENOMEM;
		goto fail;
	}
	l.data[l.len] = '\0';
	*out = l.data;
	*len = l.len;
	return 0;
fail:
	free(l.data);
	return rc;
}

int docker_container_stats(struct docker *d, const char *id, json_t **out)
{
	struct url u;

	d->error[0] = '\0';
	if (!valid_name(id))
		return bad_arg(d, "container name or id");
	url_init(&u, "/containers/");
	url_esc(d, &u, id);
	url_add(&u, "/stats?stream=false&one-shot=1");
	return call_json(d, "GET", &u, NULL, JSON_OBJECT, out);
}

/* ---- networks ---------------------------------------------------- */

static bool string_map(const json_t *labels)
{
	const char *k;
	json_t *v;

	if (!json_is_object(labels))
		return false;
	json_object_foreach((json_t *)labels, k, v)
	{
		if (!json_is_string(v))
			return false;
	}
	return true;
}

int docker_network_create(struct docker *d, const char *name, const json_t *labels, bool internal,
			  char id[static 65])
{
	json_t *body = NULL, *ans = NULL;
	struct url u;
	int rc;

	d->error[0] = '\0';
	if (!valid_name(name))
		return bad_arg(d, "network name");
	if (labels != NULL && !string_map(labels))
		return bad_arg(d, "labels (an object of strings)");
	/* CheckDuplicate: without it v1.41 makes a second network of the same name. */
	body = json_pack("{s:s, s:s, s:b, s:b, s:b, s:o}", "Name", name, "Driver", "bridge",
			 "Internal", internal, "CheckDuplicate", 1, "Attachable", 0, "Labels",
			 labels != NULL ? json_deep_copy(labels) : json_object());
	if (body == NULL)
		return ODX_ENOMEM;
	url_init(&u, "/networks/create");
	rc = call_json(d, "POST", &u, body, JSON_OBJECT, &ans);
	json_decref(body);
	if (rc < 0)
		return rc;
	const char *v = json_string_value(json_object_get(ans, "Id"));
	if (!valid_id(v)) {
		set_error(d, "the engine's answer has no valid network id");
		rc = ODX_EIO;
	} else {
		memcpy(id, v, 65);
	}
	json_decref(ans);
	return rc;
}

int docker_network_inspect(struct docker *d, const char *name, json_t **out)
{
	struct url u;

	d->error[0] = '\0';
	if (!valid_name(name))
		return bad_arg(d, "network name or id");
	url_init(&u, "/networks/");
	url_esc(d, &u, name);
	return call_json(d, "GET", &u, NULL, JSON_OBJECT, out);
}

int docker_network_remove(struct docker *d, const char *name)
{
	struct url u;

	d->error[0] = '\0';
	if (!valid_name(name))
		return bad_arg(d, "network name or id");
	url_init(&u, "/networks/");
	url_esc(d, &u, name);
	return call_json(d, "DELETE", &u, NULL, JSON_OBJECT, NULL);
}

/* ---- events ------------------------------------------------------ */

struct events {
	struct docker *d;
	docker_event_fn cb;
	void *arg;
};

static int event_line(void *arg, const char *line, size_t len)
{
	struct events *ev = arg;
	json_t *j;
	int rc = line_object(ev->d, line, len, &j);

	if (rc < 0 || j == NULL)
		return rc;
	rc = ev->cb(j, ev->arg);
	json_decref(j);
	return rc;
}

int docker_events(struct docker *d, const json_t *filters, const volatile bool *stop,
		  docker_event_fn cb, void *arg)
{
	static const volatile bool never;
	struct events ev = {.d = d, .cb = cb, .arg = arg};
	struct lines l = {.part = {.max = STREAM_LINE_MAX}, .fn = event_line, .arg = &ev};
	struct url u;
	int rc;

	d->error[0] = '\0';
	if (cb == NULL || (filters != NULL && !json_is_object(filters)))
		return bad_arg(d, "events filters or callback");
	url_init(&u, "/events");
	if (filters != NULL) {
		url_add(&u, "?filters=");
		url_filters(d, &u, filters);
	}
	if (u.bad)
		return bad_arg(d, "argument: too long for a URL");
	/* No total timeout and no speed limit: an idle stream is the normal case. */
	struct call c = {.d = d,
			 .method = "GET",
			 .url = u.s,
			 .stop = stop != NULL ? stop : &never,
			 .sink = lines_sink,
			 .arg = &l};
	rc = call_run(&c);
	if (rc == 0 && !*c.stop && (rc = lines_flush(&l)) == 0) {
		set_error(d, "the engine ended the events stream");
		rc = ODX_EUNAVAIL;
	}
	buf_done(&l.part);
	return rc;
}
