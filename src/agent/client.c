/* client.c — see client.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/ssl.h>

#include "agent/client.h"
#include "core/err.h"
#include "core/jsonx.h"
#include "core/wipe.h"

#ifndef ODYSSEUS_VERSION
#define ODYSSEUS_VERSION "0.1.0"
#endif

#define URL_MAX		  2048
#define CONNECT_TIMEOUT_S 10L
#define ALPN_MAX	  64

struct client {
	CURL *h;
	char base[URL_MAX];
	unsigned char alpn[ALPN_MAX]; /* RFC 7301 wire format: length, name */
	size_t alpn_len;
	atomic_bool *stop;
	bool fresh; /* open a new connection for the next request */
};

struct buf {
	char *data;
	size_t len, cap;
	bool overflow;
};

/* ---- wiping allocators ---------------------------------------------------- */

/* jansson and libcurl free secrets themselves: core/wipe.h zeroes them first. */
int client_global_init(void)
{
	json_set_alloc_funcs(wipe_malloc, wipe_free);
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, wipe_malloc, wipe_free, wipe_realloc,
				 wipe_strdup, wipe_calloc) != CURLE_OK)
		return ODX_EINTERNAL;
	return 0;
}

void client_global_done(void)
{
	curl_global_cleanup();
}

/* ---- helpers ---------------------------------------------------------------- */

void client_sanitize(const char *s, char *out, size_t size)
{
	size_t o = 0;

	if (size == 0)
		return;
	for (; s != NULL && *s != '\0' && o + 1 < size; s++)
		out[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	out[o] = '\0';
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct buf *b = userdata;
	size_t n = size * nmemb;

	if (n > CLIENT_REPLY_MAX - b->len) {
		b->overflow = true;
		return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *d = wipe_realloc(b->data, cap);
		if (d == NULL)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct client *c = userdata;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	/* Non-zero aborts the transfer: how a long poll ends on SIGTERM. */
	return c->stop != NULL && atomic_load(c->stop);
}

/*
 * libcurl offers only the ALPN names it knows; with its own ALPN turned
 * off, the list set on OpenSSL's context here is the one sent.
 */
static CURLcode on_ssl_ctx(CURL *h, void *ssl_ctx, void *userdata)
{
	struct client *c = userdata;
	(void)h;
	if (c->alpn_len > 0 &&
	    SSL_CTX_set_alpn_protos(ssl_ctx, c->alpn, (unsigned int)c->alpn_len) != 0)
		return CURLE_SSL_CERTPROBLEM;
	return CURLE_OK;
}

/* ---- the client --------------------------------------------------------------- */

int client_new(const char *base_url, struct client **out)
{
	struct client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ODX_ENOMEM;
	int n = snprintf(c->base, sizeof(c->base), "%s", base_url);
	if (n < 0 || (size_t)n >= sizeof(c->base)) {
		free(c);
		return ODX_EINVAL;
	}
	c->h = curl_easy_init();
	if (c->h == NULL) {
		free(c);
		return ODX_ENOMEM;
	}
	CURLcode e = CURLE_OK;
#define SETOPT(opt, val)                                                                           \
	do {                                                                                       \
		if (e == CURLE_OK)                                                                 \
			e = curl_easy_setopt(c->h, opt, val);                                      \
	} while (0)
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	SETOPT(CURLOPT_USERAGENT, "odysseus-agent/" ODYSSEUS_VERSION);
	SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SETOPT(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
	/* The system's CAs are never trusted: only what client_set_* gives. */
	SETOPT(CURLOPT_CAPATH, (char *)NULL);
	SETOPT(CURLOPT_CAINFO, (char *)NULL);
	/*
	 * No TLS session resumption: a resumed session would carry the
	 * certificate shown before a renewal instead of the new one.
	 */
	SETOPT(CURLOPT_SSL_SESSIONID_CACHE, 0L);
	SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(CURLOPT_NOPROGRESS, 0L);
	SETOPT(CURLOPT_XFERINFOFUNCTION, on_progress);
	SETOPT(CURLOPT_XFERINFODATA, c);
	SETOPT(CURLOPT_WRITEFUNCTION, on_body);
	/* Proxies from the environment do not apply to the control plane. */
	SETOPT(CURLOPT_NOPROXY, "*");
#undef SETOPT
	if (e != CURLE_OK) {
		client_free(c);
		return ODX_EINTERNAL;
	}
	*out = c;
	return 0;
}

void client_free(struct client *c)
{
	if (c == NULL)
		return;
	curl_easy_cleanup(c->h);
	free(c);
}

int client_set_unix_socket(struct client *c, const char *path)
{
	return curl_easy_setopt(c->h, CURLOPT_UNIX_SOCKET_PATH, path) == CURLE_OK ? 0 : ODX_ENOMEM;
}

int client_set_ca_file(struct client *c, const char *path)
{
	return curl_easy_setopt(c->h, CURLOPT_CAINFO, path) == CURLE_OK ? 0 : ODX_ENOMEM;
}

int client_set_alpn(struct client *c, const char *proto)
{
	size_t n = strlen(proto);
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

	if (n == 0 || n + 1 > sizeof(c->alpn))
		return ODX_EINVAL;
	/* CURLOPT_SSL_CTX_FUNCTION hands over an SSL_CTX only with OpenSSL. */
	if (v == NULL || v->ssl_version == NULL || strncmp(v->ssl_version, "OpenSSL/", 8) != 0)
		return ODX_EUNAVAIL;
	c->alpn[0] = (unsigned char)n;
	memcpy(c->alpn + 1, proto, n);
	c->alpn_len = n + 1;
	CURLcode e = curl_easy_setopt(c->h, CURLOPT_SSL_ENABLE_ALPN, 0L);
	if (e == CURLE_OK)
		e = curl_easy_setopt(c->h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
	if (e == CURLE_OK)
		e = curl_easy_setopt(c->h, CURLOPT_SSL_CTX_DATA, c);
	return e == CURLE_OK ? 0 : ODX_EUNAVAIL;
}

static CURLcode set_blob(CURL *h, CURLoption opt, const char *pem)
{
	struct curl_blob b = {.data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY};
	return curl_easy_setopt(h, opt, &b);
}

int client_set_identity(struct client *c, const char *cert_pem, const char *key_pem,
			const char *ca_pem)
{
	CURLcode e = curl_easy_setopt(c->h, CURLOPT_SSLCERTTYPE, "PEM");
	if (e == CURLE_OK)
		e = curl_easy_setopt(c->h, CURLOPT_SSLKEYTYPE, "PEM");
	if (e == CURLE_OK)
		e = set_blob(c->h, CURLOPT_SSLCERT_BLOB, cert_pem);
	if (e == CURLE_OK)
		e = set_blob(c->h, CURLOPT_SSLKEY_BLOB, key_pem);
	if (e == CURLE_OK)
		e = set_blob(c->h, CURLOPT_CAINFO_BLOB, ca_pem);
	if (e != CURLE_OK)
		return e == CURLE_OUT_OF_MEMORY ? ODX_ENOMEM : ODX_EUNAVAIL;
	c->fresh = true;
	return 0;
}

void client_set_stop(struct client *c, atomic_bool *stop)
{
	c->stop = stop;
}

void client_reply_done(struct client_reply *r)
{
	json_decref(r->body);
	memset(r, 0, sizeof(*r));
}

/* Fills r->error from an error answer's {"error":{"message"}}, or the status. */
static void error_message(struct client_reply *r)
{
	json_t *err = json_object_get(r->body, "error");
	const char *m = json_string_value(json_object_get(err, "message"));
	if (m != NULL)
		client_sanitize(m, r->error, sizeof(r->error));
	else
		snprintf(r->error, sizeof(r->error), "HTTP %ld", r->status);
}

static int take_answer(struct client_reply *r, const struct buf *b)
{
	char msg[JSONX_MSG_LEN];

	if (b->len > 0 && jsonx_parse_object(b->data, b->len, &r->body, msg) < 0) {
		r->body = NULL;
		if (r->status >= 200 && r->status < 300) {
			snprintf(r->error, sizeof(r->error), "the answer is not JSON: %s", msg);
			return ODX_EINVAL;
		}
	}
	if (r->status >= 200 && r->status < 300) {
		if (r->body == NULL) {
			snprintf(r->error, sizeof(r->error), "the answer has no body");
			return ODX_EINVAL;
		}
	} else {
		error_message(r);
	}
	return 0;
}

static int transport_error(CURLcode e, const char *errbuf, const struct buf *b,
			   struct client_reply *r)
{
	if (e == CURLE_ABORTED_BY_CALLBACK)
		return -ECANCELED;
	if (e == CURLE_WRITE_ERROR && b->overflow) {
		snprintf(r->error, sizeof(r->error), "the answer is larger than %d bytes",
			 CLIENT_REPLY_MAX);
		return ODX_ETOOBIG;
	}
	if (e == CURLE_OUT_OF_MEMORY)
		return ODX_ENOMEM;
	client_sanitize(errbuf[0] != '\0' ? errbuf : curl_easy_strerror(e), r->error,
			sizeof(r->error));
	return ODX_EIO;
}

int client_request(struct client *c, const char *method, const char *path, const json_t *body,
		   long timeout_s, struct client_reply *r)
{
	char url[URL_MAX], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL, *l;
	struct buf b = {0};
	char *json = NULL;
	int rc = ODX_ENOMEM;

	memset(r, 0, sizeof(*r));
	int n = snprintf(url, sizeof(url), "%s%s", c->base, path);
	if (n < 0 || (size_t)n >= sizeof(url))
		return ODX_EINVAL;
	if (body != NULL &&
	    (json = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(6))) == NULL)
		goto out;
	/* "Expect:" stops curl from waiting for 100-continue on larger bodies. */
	const char *const h[] = {"Accept: application/json",
				 "Expect:", json ? "Content-Type: application/json" : NULL};
	for (size_t i = 0; i < sizeof(h) / sizeof(h[0]) && h[i] != NULL; i++) {
		if ((l = curl_slist_append(hdrs, h[i])) == NULL)
			goto out;
		hdrs = l;
	}
	CURLcode e = CURLE_OK;
#define SETOPT(opt, val)                                                                           \
	do {                                                                                       \
		if (e == CURLE_OK)                                                                 \
			e = curl_easy_setopt(c->h, opt, val);                                      \
	} while (0)
	SETOPT(CURLOPT_URL, url);
	SETOPT(CURLOPT_CUSTOMREQUEST, method);
	SETOPT(CURLOPT_HTTPHEADER, hdrs);
	SETOPT(CURLOPT_TIMEOUT, timeout_s);
	SETOPT(CURLOPT_ERRORBUFFER, errbuf);
	SETOPT(CURLOPT_WRITEDATA, &b);
	SETOPT(CURLOPT_FRESH_CONNECT, c->fresh ? 1L : 0L);
	if (json != NULL) {
		SETOPT(CURLOPT_POSTFIELDS, json);
		SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
	} else {
		SETOPT(CURLOPT_HTTPGET, 1L);
	}
#undef SETOPT
	if (e != CURLE_OK) {
		rc = e == CURLE_OUT_OF_MEMORY ? ODX_ENOMEM : ODX_EINTERNAL;
		goto out;
	}
	e = curl_easy_perform(c->h);
	/* The body and headers live here; curl must not keep pointers to them. */
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, (char *)NULL);
	curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, (char *)NULL);
	if (e != CURLE_OK) {
		rc = transport_error(e, errbuf, &b, r);
		goto out;
	}
	c->fresh = false;
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &r->status);
	rc = take_answer(r, &b);
out:
	if (rc != 0) {
		json_decref(r->body);
		r->body = NULL;
	}
	if (json != NULL) {
		explicit_bzero(json, strlen(json));
		free(json);
	}
	wipe_free(b.data);
	curl_slist_free_all(hdrs);
	return rc;
}
