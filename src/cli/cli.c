/*
 * cli.c — see cli.h.
 *
 * The credentials file (one JSON object, written by us only):
 *
 *   { "server": "https://host:8443",       base URL, no trailing slash
 *     "ca": "/abs/path/ca.crt" | null,     the only CA trusted for server
 *     "access_token": "<JWS>",
 *     "refresh_token": "odr_<64 hex>",
 *     "access_expires_at": "2026-11-28T15:52:22Z" }
 *
 * It lives in a 0700 directory and is only ever replaced whole: the new
 * content goes to a fresh temporary file created 0600 with O_EXCL, which is
 * fsynced and renamed over the old one. Refresh tokens are single use and a
 * reused one revokes the whole family, so two odysseus processes must never
 * refresh with the same token: refreshing holds an exclusive flock on
 * credentials.lock and first re-reads the file, adopting a pair that another
 * process stored meanwhile.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli/cli.h"
#include "core/wipe.h"

#ifndef ODYSSEUS_VERSION
#define ODYSSEUS_VERSION "0.1.0"
#endif

#define CRED_DIR	  "odysseus"
#define CRED_FILE	  "credentials.json"
#define CRED_LOCK	  "credentials.lock"
#define CRED_FILE_MAX	  (64 * 1024)
#define RESPONSE_MAX	  (64 * 1024 * 1024)
#define TOKEN_MAX	  8192
#define URL_MAX		  2048
#define MESSAGE_MAX	  512
#define CONNECT_TIMEOUT_S 10L
#define REQUEST_TIMEOUT_S 120L
/* Refresh this long before the access token's recorded expiry. */
#define EXPIRY_SLACK_S 30
/* The longest access-token lifetime we believe from a server (a day). */
#define EXPIRES_IN_MAX 86400
#define LIST_LIMIT_MAX 500 /* the largest page the API serves */
#define LIST_PAGES_MAX 100000
#define STATE_FILE_MAX (4 * 1024 * 1024)

/* ---- Errors ----------------------------------------------------------- */

int cli_exit_status(int rc)
{
	if (rc == 0)
		return 0;
	if (rc < 0 && rc >= CLI_E_INTEGRITY)
		return -rc;
	return 1;
}

void cli_errorf(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("odysseus: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int oom(void)
{
	cli_errorf("out of memory");
	return CLI_E_FAIL;
}

/*
 * Copies s into out (size bytes) for showing on a terminal: control
 * characters (C0, DEL, and C1 as UTF-8) become '?', and long text is cut on a
 * character boundary. A server's text is never sent raw to a terminal.
 */
static void sanitize(const char *s, char *out, size_t size)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && o + 1 < size; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			out[o++] = '?';
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			out[o++] = '?';
			p++;
		} else {
			/* Do not start a multi-byte character that will not fit. */
			size_t need = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 1, i;
			if (o + need >= size)
				break;
			for (i = 0; i < need && p[i] != '\0'; i++)
				out[o++] = (char)p[i];
			p += i - 1;
		}
	}
	out[o] = '\0';
}

void cli_sanitize(const char *s, char *out, size_t size)
{
	sanitize(s, out, size);
}

/* ---- Memory ----------------------------------------------------------- */

/* jansson and libcurl free secrets themselves: core/wipe.h zeroes them first. */
int cli_init(void)
{
	json_set_alloc_funcs(wipe_malloc, wipe_free);
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, wipe_malloc, wipe_free, wipe_realloc,
				 wipe_strdup, wipe_calloc) != CURLE_OK) {
		cli_errorf("cannot initialise libcurl");
		return CLI_E_FAIL;
	}
	return 0;
}

void cli_done(void)
{
	curl_global_cleanup();
}

void cli_strfree(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

static char *xstrdup(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* Returns a new string a + b + c (b, c may be NULL); NULL when out of memory. */
static char *str_join(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = b ? strlen(b) : 0, lc = c ? strlen(c) : 0;
	if (lb > SIZE_MAX - la - 1 || lc > SIZE_MAX - la - lb - 1)
		return NULL;
	char *s = malloc(la + lb + lc + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, a, la);
	if (lb)
		memcpy(s + la, b, lb);
	if (lc)
		memcpy(s + la + lb, c, lc);
	s[la + lb + lc] = '\0';
	return s;
}

/* ---- Growable buffer with a maximum (curl dynbuf style) ---------------- */

struct buf {
	char *data;
	size_t len, cap, max;
	bool overflow;
};

static int buf_append(struct buf *b, const void *p, size_t n)
{
	if (n > b->max - b->len) {
		b->overflow = true;
		return -1;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
		char *d = wipe_realloc(b->data, cap);
		if (d == NULL)
			return -1;
		b->data = d;
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
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ---- HTTP ------------------------------------------------------------- */

void cli_response_done(struct cli_response *resp)
{
	json_decref(resp->body);
	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
}

static bool ascii_prefix_ci(const char *s, const char *prefix)
{
	for (; *prefix != '\0'; s++, prefix++) {
		char c = *s;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != *prefix)
			return false;
	}
	return true;
}

int cli_server_normalize(const char *url, char **out)
{
	size_t n = strlen(url);

	if (!ascii_prefix_ci(url, "https://") && !ascii_prefix_ci(url, "http://")) {
		cli_errorf("server URL must start with https:// or http://");
		return CLI_E_USAGE;
	}
	if (n > URL_MAX) {
		cli_errorf("server URL is too long");
		return CLI_E_USAGE;
	}
	for (const unsigned char *p = (const unsigned char *)url; *p != '\0'; p++) {
		if (*p <= 0x20 || *p >= 0x7f || *p == '?' || *p == '#') {
			cli_errorf(
			    "server URL must be a plain base URL (no spaces, query or fragment)");
			return CLI_E_USAGE;
		}
	}
	while (n > 0 && url[n - 1] == '/')
		n--;
	char *s = strndup(url, n);
	if (s == NULL)
		return oom();
	if (strstr(s, "://")[3] == '\0') {
		free(s);
		cli_errorf("server URL has no host");
		return CLI_E_USAGE;
	}
	*out = s;
	return 0;
}

char *cli_url_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);

	if (n > (SIZE_MAX - 1) / 3)
		return NULL;
	char *o = malloc(n * 3 + 1), *p = o;
	if (o == NULL)
		return NULL;
	for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
		if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		    (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' || *c == '~') {
			*p++ = (char)*c;
		} else {
			*p++ = '%';
			*p++ = hex[*c >> 4];
			*p++ = hex[*c & 15];
		}
	}
	*p = '\0';
	return o;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct buf *b = userdata;
	size_t n = size * nmemb;

	if (buf_append(b, ptr, n) < 0)
		return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
	return n;
}

/* Copies a header's value (after "Name:") without surrounding blanks. */
static size_t header_value(const char *line, size_t len, size_t name_len, char *out, size_t size)
{
	size_t i = name_len, j = len;
	while (i < j && (line[i] == ' ' || line[i] == '\t'))
		i++;
	while (j > i && (line[j - 1] == '\r' || line[j - 1] == '\n' || line[j - 1] == ' ' ||
			 line[j - 1] == '\t'))
		j--;
	if (j - i >= size)
		return 0;
	memcpy(out, line + i, j - i);
	out[j - i] = '\0';
	return j - i;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *userdata)
{
	struct cli_response *resp = userdata;
	size_t len = size * nitems;
	char v[CLI_REQUEST_ID_LEN];

	if (len > 5 && ascii_prefix_ci(line, "http/")) {
		/* A new response (after a proxy's CONNECT answer): forget the last. */
		resp->request_id[0] = '\0';
		resp->retry_after = -1;
	} else if (len > 13 && ascii_prefix_ci(line, "x-request-id:")) {
		size_t n = header_value(line, len, 13, v, sizeof(v));
		bool ok = n > 0;
		for (size_t i = 0; i < n && ok; i++) {
			char c = v[i];
			ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-';
		}
		if (ok)
			memcpy(resp->request_id, v, n + 1);
	} else if (len > 12 && ascii_prefix_ci(line, "retry-after:")) {
		size_t n = header_value(line, len, 12, v, sizeof(v));
		if (n > 0 && n < 10 && strspn(v, "0123456789") == n) {
			char *end;
			errno = 0;
			long secs = strtol(v, &end, 10);
			if (errno == 0 && *end == '\0')
				resp->retry_after = secs;
		}
	}
	return len;
}

static int add_header(struct curl_slist **list, const char *header)
{
	struct curl_slist *l = curl_slist_append(*list, header);
	if (l == NULL)
		return -1;
	*list = l;
	return 0;
}

static bool is_tls_error(CURLcode c)
{
	switch (c) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED: return true;
	default: return false;
	}
}

/*
 * cli_http_request; with raw, a 2xx answer's body is kept there as it came
 * (text) instead of being parsed as JSON, and text/plain is accepted.
 */
static int http_request(const char *server, const char *ca, const char *token, const char *method,
			const char *path, const json_t *body, struct buf *raw,
			struct cli_response *resp)
{
	CURL *h = NULL;
	struct curl_slist *hdrs = NULL;
	struct buf rb = {.max = RESPONSE_MAX};
	char errbuf[CURL_ERROR_SIZE] = "";
	char *url = NULL, *json = NULL, *auth = NULL;
	int rc = CLI_E_FAIL;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;

	url = str_join(server, path, NULL);
	if (url == NULL) {
		rc = oom();
		goto out;
	}
	if (body != NULL && (json = json_dumps(body, JSON_COMPACT)) == NULL) {
		rc = oom();
		goto out;
	}
	if ((h = curl_easy_init()) == NULL) {
		rc = oom();
		goto out;
	}
	if (token != NULL && (auth = str_join("Authorization: Bearer ", token, NULL)) == NULL) {
		rc = oom();
		goto out;
	}
	/* "Expect:" stops curl from waiting for 100-continue on larger bodies. */
	if (add_header(&hdrs, raw != NULL ? "Accept: text/plain, application/json"
					  : "Accept: application/json") < 0 ||
	    add_header(&hdrs, "Expect:") < 0 ||
	    (body != NULL && add_header(&hdrs, "Content-Type: application/json") < 0) ||
	    (auth != NULL && add_header(&hdrs, auth) < 0)) {
		rc = oom();
		goto out;
	}

	CURLcode c = CURLE_OK;
#define SETOPT(opt, val)                                                                           \
	do {                                                                                       \
		if (c == CURLE_OK)                                                                 \
			c = curl_easy_setopt(h, opt, val);                                         \
	} while (0)
	SETOPT(CURLOPT_URL, url);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	SETOPT(CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S);
	SETOPT(CURLOPT_USERAGENT, "odysseus/" ODYSSEUS_VERSION);
	SETOPT(CURLOPT_ERRORBUFFER, errbuf);
	SETOPT(CURLOPT_HTTPHEADER, hdrs);
	SETOPT(CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(CURLOPT_WRITEDATA, &rb);
	SETOPT(CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(CURLOPT_HEADERDATA, resp);
	SETOPT(CURLOPT_CUSTOMREQUEST, method);
	if (ca != NULL) {
		/* The given CA alone: not the system store as well. */
		SETOPT(CURLOPT_CAINFO, ca);
		SETOPT(CURLOPT_CAPATH, (char *)NULL);
	}
	if (json != NULL) {
		SETOPT(CURLOPT_POSTFIELDS, json);
		SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
	}
#undef SETOPT
	if (c != CURLE_OK) {
		cli_errorf("cannot set up the request: %s", curl_easy_strerror(c));
		goto out;
	}

	c = curl_easy_perform(h);
	if (c != CURLE_OK) {
		const char *why = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(c);
		if (c == CURLE_WRITE_ERROR && rb.overflow) {
			cli_errorf("the server's answer is larger than %d bytes", RESPONSE_MAX);
		} else if (c == CURLE_OUT_OF_MEMORY) {
			rc = oom();
		} else if (c == CURLE_URL_MALFORMAT) {
			cli_errorf("bad server URL %s: %s", server, why);
			rc = CLI_E_USAGE;
		} else if (is_tls_error(c)) {
			cli_errorf("TLS failure talking to %s: %s", server, why);
			rc = CLI_E_CONNECT;
		} else {
			cli_errorf("cannot reach %s: %s", server, why);
			rc = CLI_E_CONNECT;
		}
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);

	if (raw != NULL && resp->status >= 200 && resp->status < 300) {
		buf_done(raw);
		*raw = rb; /* the text as it came; the caller's buffer now */
		rb.data = NULL;
	} else if (rb.len > 0) {
		json_error_t jerr;
		resp->body = json_loadb(rb.data, rb.len, JSON_REJECT_DUPLICATES, &jerr);
		if (resp->body == NULL && resp->status >= 200 && resp->status < 300) {
			cli_errorf(
			    "the server's answer is not valid JSON (HTTP %ld, request id %s)",
			    resp->status, resp->request_id[0] ? resp->request_id : "none");
			goto out;
		}
	}
	rc = 0;
out:
	if (rc != 0)
		cli_response_done(resp);
	buf_done(&rb);
	cli_strfree(auth);
	cli_strfree(json);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	free(url);
	return rc;
}

int cli_http_request(const char *server, const char *ca, const char *token, const char *method,
		     const char *path, const json_t *body, struct cli_response *resp)
{
	return http_request(server, ca, token, method, path, body, NULL, resp);
}

static int status_code(long status)
{
	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 400:
	case 413:
	case 415:
	case 422: return CLI_E_INVALID;
	case 401: return CLI_E_AUTH;
	case 403: return CLI_E_FORBIDDEN;
	case 404: return CLI_E_NOTFOUND;
	case 409: return CLI_E_CONFLICT;
	case 429: return CLI_E_RATELIMIT;
	default: return status >= 500 && status < 600 ? CLI_E_SERVER : CLI_E_FAIL;
	}
}

int cli_response_check(const struct cli_response *resp)
{
	int rc = status_code(resp->status);
	char msg[MESSAGE_MAX], code[64], rid[CLI_REQUEST_ID_LEN], retry[48] = "";

	if (rc == 0)
		return 0;
	json_t *err = json_object_get(resp->body, "error");
	const char *m = json_string_value(json_object_get(err, "message"));
	const char *k = json_string_value(json_object_get(err, "code"));
	const char *r = resp->request_id;
	if (r[0] == '\0')
		r = json_string_value(json_object_get(err, "request_id"));
	sanitize(r != NULL && r[0] != '\0' ? r : "none", rid, sizeof(rid));
	if (resp->retry_after >= 0)
		snprintf(retry, sizeof(retry), "; retry after %ld s", resp->retry_after);
	if (m != NULL && k != NULL) {
		sanitize(m, msg, sizeof(msg));
		sanitize(k, code, sizeof(code));
		cli_errorf("%s (%s, request id %s)%s", msg, code, rid, retry);
	} else {
		cli_errorf("the server answered HTTP %ld (request id %s)%s", resp->status, rid,
			   retry);
	}
	return rc;
}

/* ---- Credentials ------------------------------------------------------ */

struct creds {
	char *server;
	char *ca; /* NULL: the system's CAs */
	char *access_token;
	char *refresh_token;
	time_t access_expires_at;
};

static void creds_free(struct creds *c)
{
	if (c == NULL)
		return;
	free(c->server);
	free(c->ca);
	cli_strfree(c->access_token);
	cli_strfree(c->refresh_token);
	free(c);
}

/* Tokens go into an HTTP header: only the characters a JWS or odr_ token has. */
static bool token_ok(const char *t)
{
	size_t n = 0;

	if (t == NULL)
		return false;
	for (; t[n] != '\0'; n++) {
		char c = t[n];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' ||
		      c == '='))
			return false;
		if (n >= TOKEN_MAX)
			return false;
	}
	return n > 0;
}

static void format_time(time_t t, char out[static 32])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(out, 32, "1970-01-01T00:00:00Z");
		return;
	}
	snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", (tm.tm_year + 1900) % 10000,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static bool digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/*
 * Parses "YYYY-MM-DDTHH:MM:SS[.frac]Z". Returns false for anything else; the
 * caller then treats the token as expired, which only costs a refresh.
 */
static bool parse_time(const char *s, time_t *out)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, se;
	size_t n = strlen(s), i = 19;

	if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return false;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
	    !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
		return false;
	if (s[i] == '.') {
		i++;
		size_t f = strspn(s + i, "0123456789");
		if (f == 0 || f > 9)
			return false;
		i += f;
	}
	if (s[i] != 'Z' || s[i + 1] != '\0')
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*out = t;
	return true;
}

static int config_base(char **out)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	char *s;

	/* XDG: a relative XDG_CONFIG_HOME is invalid and must be ignored. */
	if (xdg != NULL && xdg[0] == '/') {
		s = strdup(xdg);
	} else {
		const char *home = getenv("HOME");
		if (home == NULL || home[0] != '/') {
			struct passwd *pw = getpwuid(getuid());
			home = pw != NULL ? pw->pw_dir : NULL;
		}
		if (home == NULL || home[0] != '/') {
			cli_errorf("cannot find the home directory; set HOME or XDG_CONFIG_HOME");
			return CLI_E_FAIL;
		}
		s = str_join(home, "/.config", NULL);
	}
	if (s == NULL)
		return oom();
	*out = s;
	return 0;
}

int cli_credentials_path(char **path)
{
	char *base = NULL;
	int rc = config_base(&base);
	if (rc < 0)
		return rc;
	char *p = str_join(base, "/" CRED_DIR "/", CRED_FILE);
	free(base);
	if (p == NULL)
		return oom();
	*path = p;
	return 0;
}

/* mkdir -p: directories we create are 0700. */
static int make_dirs(char *path)
{
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		int r = mkdir(path, 0700);
		int e = errno;
		*p = saved;
		if (r < 0 && e != EEXIST) {
			*p = '\0';
			cli_errorf("cannot create %s: %s", path, strerror(e));
			*p = saved;
			return CLI_E_FAIL;
		}
		if (saved == '\0')
			return 0;
	}
}

/*
 * Opens the credentials directory, creating it when create is set. It must be
 * ours; group and other access is removed. Returns CLI_E_AUTH (silently) when
 * it does not exist and create is not set.
 */
static int config_dir_open(bool create, int *dirfd, char **dirpath)
{
	char *base = NULL, *dir = NULL;
	struct stat st;
	int fd = -1, rc;

	if ((rc = config_base(&base)) < 0)
		return rc;
	dir = str_join(base, "/" CRED_DIR, NULL);
	if (dir == NULL) {
		rc = oom();
		goto out;
	}
	if (create && (rc = make_dirs(dir)) < 0)
		goto out;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && !create) {
			rc = CLI_E_AUTH;
		} else {
			cli_errorf("cannot open %s: %s", dir, strerror(errno));
			rc = CLI_E_FAIL;
		}
		goto out;
	}
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid()) {
		cli_errorf("%s is not owned by the current user", dir);
		rc = CLI_E_FAIL;
		goto out;
	}
	if ((st.st_mode & 0077) != 0 && fchmod(fd, 0700) < 0) {
		cli_errorf("cannot make %s private: %s", dir, strerror(errno));
		rc = CLI_E_FAIL;
		goto out;
	}
	*dirfd = fd;
	fd = -1;
	if (dirpath != NULL) {
		*dirpath = dir;
		dir = NULL;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(dir);
	free(base);
	return rc;
}

static int read_all(int fd, struct buf *b)
{
	char chunk[4096];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		if (buf_append(b, chunk, (size_t)n) < 0) {
			explicit_bzero(chunk, sizeof(chunk));
			return b->overflow ? -EFBIG : -ENOMEM;
		}
	}
	explicit_bzero(chunk, sizeof(chunk));
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Loads the credentials file from dirfd. Returns CLI_E_AUTH with a message
 * when there is none (or it cannot be used).
 */
static int creds_load(int dirfd, struct creds **out)
{
	struct buf b = {.max = CRED_FILE_MAX};
	struct creds *c = NULL;
	json_t *obj = NULL;
	struct stat st;
	int fd, rc = CLI_E_FAIL;

	fd = openat(dirfd, CRED_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			cli_errorf("not logged in; run 'odysseus login'");
			return CLI_E_AUTH;
		}
		cli_errorf("cannot open the credentials file: %s", strerror(errno));
		return CLI_E_FAIL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		cli_errorf("the credentials file is not a regular file of the current user");
		goto out;
	}
	if ((st.st_mode & 0077) != 0) {
		/* Like ssh with a private key: others may have read the tokens. */
		cli_errorf("the credentials file is accessible by other users (mode %03o); "
			   "run 'odysseus login' again",
			   (unsigned)(st.st_mode & 0777));
		rc = CLI_E_AUTH;
		goto out;
	}
	int r = read_all(fd, &b);
	if (r < 0) {
		cli_errorf("cannot read the credentials file: %s",
			   r == -EFBIG ? "too large" : strerror(-r));
		goto out;
	}
	json_error_t jerr;
	obj = json_loadb(b.data ? b.data : "", b.len, JSON_REJECT_DUPLICATES, &jerr);
	const char *server = json_string_value(json_object_get(obj, "server"));
	json_t *ca = json_object_get(obj, "ca");
	const char *at = json_string_value(json_object_get(obj, "access_token"));
	const char *rt = json_string_value(json_object_get(obj, "refresh_token"));
	const char *exp = json_string_value(json_object_get(obj, "access_expires_at"));
	if (!json_is_object(obj) || server == NULL ||
	    (ca != NULL && !json_is_null(ca) && !json_is_string(ca)) || !token_ok(at) ||
	    !token_ok(rt) || exp == NULL) {
		cli_errorf("the credentials file is damaged; run 'odysseus login' again");
		rc = CLI_E_AUTH;
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		rc = oom();
		goto out;
	}
	c->server = strdup(server);
	c->ca = xstrdup(json_string_value(ca));
	c->access_token = strdup(at);
	c->refresh_token = strdup(rt);
	if (c->server == NULL || (json_is_string(ca) && c->ca == NULL) || c->access_token == NULL ||
	    c->refresh_token == NULL) {
		rc = oom();
		goto out;
	}
	if (!parse_time(exp, &c->access_expires_at))
		c->access_expires_at = 0;
	*out = c;
	c = NULL;
	rc = 0;
out:
	creds_free(c);
	json_decref(obj);
	buf_done(&b);
	close(fd);
	return rc;
}

/*
 * Replaces dirfd/name atomically with text: a fresh 0600 temporary file
 * (O_EXCL), synced, renamed over the old one. what names the file in errors.
 */
static int private_file_replace(int dirfd, const char *name, const char *text, const char *what)
{
	char tmp[96];
	uint8_t rnd[8];
	int fd = -1, rc = CLI_E_FAIL;
	bool created = false;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		cli_errorf("cannot get random bytes: %s", strerror(errno));
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp-%02x%02x%02x%02x%02x%02x%02x%02x", name, rnd[0], rnd[1],
		 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		cli_errorf("cannot create the %s: %s", what, strerror(errno));
		goto out;
	}
	created = true;
	int r = fchmod(fd, 0600);
	if (r == 0)
		r = write_all(fd, text, strlen(text));
	if (r == 0)
		r = write_all(fd, "\n", 1);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && close(fd) < 0)
		r = -errno;
	fd = -1;
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0) {
		cli_errorf("cannot write the %s: %s", what, strerror(-r));
		goto out;
	}
	created = false;
	fsync(dirfd);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (created)
		unlinkat(dirfd, tmp, 0);
	return rc;
}

/* Replaces the credentials file atomically; it is never readable by others. */
static int creds_save(int dirfd, const struct creds *c)
{
	char when[32];
	json_t *obj = NULL;
	char *text = NULL;
	int rc;

	format_time(c->access_expires_at, when);
	obj = json_pack("{s:s, s:s?, s:s, s:s, s:s}", "server", c->server, "ca", c->ca,
			"access_token", c->access_token, "refresh_token", c->refresh_token,
			"access_expires_at", when);
	if (obj == NULL || (text = json_dumps(obj, JSON_INDENT(2))) == NULL)
		rc = oom();
	else
		rc = private_file_replace(dirfd, CRED_FILE, text, "credentials file");
	cli_strfree(text);
	json_decref(obj);
	return rc;
}

/* Takes the exclusive refresh lock; returns the lock's fd or a CLI_E code. */
static int creds_lock(int dirfd)
{
	int fd = openat(dirfd, CRED_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		cli_errorf("cannot open the credentials lock: %s", strerror(errno));
		return CLI_E_FAIL;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			cli_errorf("cannot lock the credentials: %s", strerror(errno));
			close(fd);
			return CLI_E_FAIL;
		}
	}
	return fd;
}

/* Reads {access_token, refresh_token, expires_in} of a login/refresh answer. */
static int take_token_pair(const json_t *body, struct creds *c)
{
	const char *at = json_string_value(json_object_get(body, "access_token"));
	const char *rt = json_string_value(json_object_get(body, "refresh_token"));
	json_t *ei = json_object_get(body, "expires_in");

	if (!token_ok(at) || !token_ok(rt) || !json_is_integer(ei) || json_integer_value(ei) <= 0 ||
	    json_integer_value(ei) > EXPIRES_IN_MAX) {
		cli_errorf("the server's token answer is malformed");
		return CLI_E_FAIL;
	}
	char *a = strdup(at), *r = strdup(rt);
	if (a == NULL || r == NULL) {
		cli_strfree(a);
		cli_strfree(r);
		return oom();
	}
	cli_strfree(c->access_token);
	cli_strfree(c->refresh_token);
	c->access_token = a;
	c->refresh_token = r;
	c->access_expires_at = time(NULL) + (time_t)json_integer_value(ei);
	return 0;
}

/* Makes ca absolute (so the stored login works from any directory), readable. */
static int ca_resolve(const char *ca, char **out)
{
	char *abs = realpath(ca, NULL);
	if (abs == NULL) {
		cli_errorf("cannot use CA file %s: %s", ca, strerror(errno));
		return CLI_E_USAGE;
	}
	int fd = open(abs, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cli_errorf("cannot read CA file %s: %s", abs, strerror(errno));
		free(abs);
		return CLI_E_USAGE;
	}
	close(fd);
	*out = abs;
	return 0;
}

int cli_login(const char *server, const char *ca, const char *email, char *password)
{
	struct cli_response resp = {.retry_after = -1};
	struct creds *c = NULL;
	json_t *body = NULL;
	int dirfd = -1, lockfd = -1, rc;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		rc = oom();
		goto out;
	}
	if ((rc = cli_server_normalize(server, &c->server)) < 0)
		goto out;
	if (ca != NULL && (rc = ca_resolve(ca, &c->ca)) < 0)
		goto out;
	body = json_pack("{s:s, s:s}", "email", email, "password", password);
	explicit_bzero(password, strlen(password));
	if (body == NULL) {
		rc = oom();
		goto out;
	}
	rc = cli_http_request(c->server, c->ca, NULL, "POST", "/v1/auth/login", body, &resp);
	json_decref(body); /* the copy of the password is wiped by wipe_free */
	body = NULL;
	if (rc < 0 || (rc = cli_response_check(&resp)) < 0)
		goto out;
	if ((rc = take_token_pair(resp.body, c)) < 0)
		goto out;
	if ((rc = config_dir_open(true, &dirfd, NULL)) < 0)
		goto out;
	if ((rc = creds_lock(dirfd)) < 0)
		goto out;
	lockfd = rc;
	rc = creds_save(dirfd, c);
out:
	if (password != NULL)
		explicit_bzero(password, strlen(password));
	if (lockfd >= 0)
		close(lockfd);
	if (dirfd >= 0)
		close(dirfd);
	json_decref(body);
	cli_response_done(&resp);
	creds_free(c);
	return rc;
}

/* ---- Session ---------------------------------------------------------- */

struct cli_session {
	struct creds *c;
	char *ca; /* effective CA: override or stored */
	int dirfd;
	bool refreshed; /* at most one refresh per process */
};

void cli_session_free(struct cli_session *s)
{
	if (s == NULL)
		return;
	creds_free(s->c);
	free(s->ca);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s);
}

int cli_session_open(const char *server, const char *ca, struct cli_session **out)
{
	struct cli_session *s = calloc(1, sizeof(*s));
	char *want = NULL;
	int rc;

	if (s == NULL)
		return oom();
	s->dirfd = -1;
	rc = config_dir_open(false, &s->dirfd, NULL);
	if (rc == CLI_E_AUTH)
		cli_errorf("not logged in; run 'odysseus login'");
	if (rc < 0)
		goto out;
	if ((rc = creds_load(s->dirfd, &s->c)) < 0)
		goto out;
	if (server != NULL) {
		if ((rc = cli_server_normalize(server, &want)) < 0)
			goto out;
		if (strcmp(want, s->c->server) != 0) {
			/* The stored tokens are for the stored server only. */
			char a[URL_MAX + 1], b[URL_MAX + 1];
			sanitize(want, a, sizeof(a));
			sanitize(s->c->server, b, sizeof(b));
			cli_errorf("not logged in to %s (the stored login is for %s); "
				   "run 'odysseus login --server %s'",
				   a, b, a);
			rc = CLI_E_AUTH;
			goto out;
		}
	}
	if (ca != NULL)
		rc = ca_resolve(ca, &s->ca);
	else if (s->c->ca != NULL && (s->ca = strdup(s->c->ca)) == NULL)
		rc = oom();
	if (rc < 0)
		goto out;
	*out = s;
	s = NULL;
out:
	free(want);
	cli_session_free(s);
	return rc;
}

/*
 * Trades the refresh token for a new pair and stores it. With quiet401 a
 * rejected refresh token returns CLI_E_AUTH without a message.
 */
static int session_refresh(struct cli_session *s, bool quiet401)
{
	struct cli_response resp = {.retry_after = -1};
	struct creds *disk = NULL;
	json_t *body = NULL;
	int lockfd, rc;

	s->refreshed = true;
	if ((lockfd = creds_lock(s->dirfd)) < 0)
		return lockfd;
	/* Another odysseus may have refreshed while we waited for the lock. */
	if ((rc = creds_load(s->dirfd, &disk)) < 0)
		goto out;
	if (strcmp(disk->server, s->c->server) != 0) {
		cli_errorf("the stored login changed to another server meanwhile");
		rc = CLI_E_AUTH;
		goto out;
	}
	if (strcmp(disk->refresh_token, s->c->refresh_token) != 0) {
		creds_free(s->c);
		s->c = disk;
		disk = NULL;
		if (time(NULL) < s->c->access_expires_at - EXPIRY_SLACK_S) {
			rc = 0;
			goto out;
		}
	}
	body = json_pack("{s:s}", "refresh_token", s->c->refresh_token);
	if (body == NULL) {
		rc = oom();
		goto out;
	}
	rc = cli_http_request(s->c->server, s->ca, NULL, "POST", "/v1/auth/refresh", body, &resp);
	if (rc < 0)
		goto out;
	if (resp.status == 401 && quiet401) {
		rc = CLI_E_AUTH;
		goto out;
	}
	if ((rc = cli_response_check(&resp)) < 0) {
		if (rc == CLI_E_AUTH)
			cli_errorf("the session has expired or was revoked; run 'odysseus login'");
		goto out;
	}
	if ((rc = take_token_pair(resp.body, s->c)) < 0)
		goto out;
	rc = creds_save(s->dirfd, s->c);
out:
	close(lockfd);
	json_decref(body);
	cli_response_done(&resp);
	creds_free(disk);
	return rc;
}

static bool access_expired(const struct cli_session *s)
{
	return time(NULL) >= s->c->access_expires_at - EXPIRY_SLACK_S;
}

static int session_request(struct cli_session *s, const char *method, const char *path,
			   const json_t *body, struct buf *raw, struct cli_response *resp)
{
	int rc;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	if (!s->refreshed && access_expired(s) && (rc = session_refresh(s, false)) < 0)
		return rc;
	rc = http_request(s->c->server, s->ca, s->c->access_token, method, path, body, raw, resp);
	if (rc < 0 || resp->status != 401 || s->refreshed)
		return rc;
	cli_response_done(resp);
	if ((rc = session_refresh(s, false)) < 0)
		return rc;
	return http_request(s->c->server, s->ca, s->c->access_token, method, path, body, raw, resp);
}

int cli_session_request(struct cli_session *s, const char *method, const char *path,
			const json_t *body, struct cli_response *resp)
{
	return session_request(s, method, path, body, NULL, resp);
}

int cli_session_request_text(struct cli_session *s, const char *method, const char *path,
			     char **text, size_t *len)
{
	struct buf raw = {.max = RESPONSE_MAX};
	struct cli_response resp;
	int rc = session_request(s, method, path, NULL, &raw, &resp);

	if (rc == 0)
		rc = cli_response_check(&resp);
	if (rc == 0 && raw.data == NULL && buf_append(&raw, "", 0) < 0)
		rc = oom();
	if (rc == 0) {
		*text = raw.data;
		*len = raw.len;
		raw.data = NULL;
	}
	buf_done(&raw);
	cli_response_done(&resp);
	return rc;
}

int cli_session_call(struct cli_session *s, const char *method, const char *path,
		     const json_t *body, json_t **out)
{
	struct cli_response resp;
	int rc = cli_session_request(s, method, path, body, &resp);

	if (rc == 0)
		rc = cli_response_check(&resp);
	if (rc == 0 && out != NULL) {
		*out = resp.body;
		resp.body = NULL;
	}
	cli_response_done(&resp);
	return rc;
}

int cli_session_list(struct cli_session *s, const char *path, json_t **items)
{
	return cli_session_list_max(s, path, 0, items);
}

int cli_session_list_max(struct cli_session *s, const char *path, size_t max, json_t **items)
{
	json_t *all = NULL, *page = NULL;
	char *cursor = NULL, *query = NULL, *esc = NULL;
	const char *env = getenv("ODYSSEUS_LIST_LIMIT");
	long limit = LIST_LIMIT_MAX;
	int rc = 0;

	/* ODYSSEUS_LIST_LIMIT: page size, 1..500 (tests use small pages). */
	if (env != NULL && env[0] != '\0') {
		char *end;
		errno = 0;
		limit = strtol(env, &end, 10);
		if (errno != 0 || *end != '\0' || limit < 1 || limit > LIST_LIMIT_MAX) {
			cli_errorf("ODYSSEUS_LIST_LIMIT must be a whole number from 1 to %d",
				   LIST_LIMIT_MAX);
			return CLI_E_USAGE;
		}
	}
	if ((all = json_array()) == NULL)
		return oom();
	for (long pages = 0;; pages++) {
		if (pages >= LIST_PAGES_MAX) {
			cli_errorf("the list has more than %d pages", LIST_PAGES_MAX);
			rc = CLI_E_FAIL;
			break;
		}
		free(query);
		free(esc);
		esc = cursor != NULL ? cli_url_escape(cursor) : NULL;
		size_t n = strlen(path) + (esc != NULL ? strlen(esc) : 0) + 32;
		query = (cursor == NULL || esc != NULL) ? malloc(n) : NULL;
		if (query == NULL) {
			rc = oom();
			break;
		}
		long want = limit;
		if (max > 0 && max - json_array_size(all) < (size_t)want)
			want = (long)(max - json_array_size(all));
		snprintf(query, n, "%s%slimit=%ld%s%s", path, strchr(path, '?') != NULL ? "&" : "?",
			 want, esc != NULL ? "&cursor=" : "", esc != NULL ? esc : "");
		json_decref(page);
		page = NULL;
		if ((rc = cli_session_call(s, "GET", query, NULL, &page)) < 0)
			break;
		json_t *list = json_object_get(page, "items");
		json_t *next = json_object_get(page, "next_cursor");
		if (!json_is_array(list) ||
		    (next != NULL && !json_is_null(next) &&
		     (!json_is_string(next) || json_string_length(next) == 0))) {
			cli_errorf("the server's list answer is malformed");
			rc = CLI_E_FAIL;
			break;
		}
		if (json_array_extend(all, list) < 0) {
			rc = oom();
			break;
		}
		if (max > 0 && json_array_size(all) >= max) {
			while (json_array_size(all) > max)
				json_array_remove(all, json_array_size(all) - 1);
			break;
		}
		if (next == NULL || json_is_null(next))
			break;
		if (cursor != NULL && strcmp(cursor, json_string_value(next)) == 0) {
			cli_errorf("the server repeated a list cursor");
			rc = CLI_E_FAIL;
			break;
		}
		free(cursor);
		if ((cursor = strdup(json_string_value(next))) == NULL) {
			rc = oom();
			break;
		}
	}
	json_decref(page);
	free(cursor);
	free(esc);
	free(query);
	if (rc < 0) {
		json_decref(all);
		return rc;
	}
	*items = all;
	return 0;
}

const char *cli_session_server(const struct cli_session *s)
{
	return s->c->server;
}

/* ---- State files ------------------------------------------------------- */

int cli_state_load(const char *name, json_t **out)
{
	struct buf b = {.max = STATE_FILE_MAX};
	json_t *obj = NULL;
	struct stat st;
	int dirfd = -1, fd = -1, rc = config_dir_open(false, &dirfd, NULL);

	if (rc == CLI_E_AUTH) {
		rc = 0; /* no configuration directory yet: nothing remembered */
		goto empty;
	}
	if (rc < 0)
		return rc;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		goto empty;
	rc = CLI_E_FAIL;
	if (fd < 0) {
		cli_errorf("cannot open %s: %s", name, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 0022) != 0) {
		/* Others could have planted what we are about to trust. */
		cli_errorf("%s is not a regular file of the current user that only it can write",
			   name);
		goto out;
	}
	int r = read_all(fd, &b);
	if (r < 0) {
		cli_errorf("cannot read %s: %s", name, r == -EFBIG ? "too large" : strerror(-r));
		goto out;
	}
	json_error_t jerr;
	obj = json_loadb(b.data ? b.data : "", b.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(obj)) {
		cli_errorf("%s is damaged (not a JSON object); move it away to start afresh", name);
		json_decref(obj);
		goto out;
	}
	*out = obj;
	rc = 0;
	goto out;
empty:
	if ((*out = json_object()) == NULL)
		rc = oom();
out:
	buf_done(&b);
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	return rc;
}

int cli_state_save(const char *name, const json_t *v)
{
	int dirfd = -1, rc = config_dir_open(true, &dirfd, NULL);
	char *text = NULL;

	if (rc < 0)
		return rc;
	if ((text = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL)
		rc = oom();
	else
		rc = private_file_replace(dirfd, name, text, name);
	free(text);
	close(dirfd);
	return rc;
}

/* POSTs /v1/auth/logout naming the current refresh token. */
static int post_logout(struct cli_session *s, struct cli_response *resp)
{
	json_t *body = json_pack("{s:s}", "refresh_token", s->c->refresh_token);
	if (body == NULL)
		return oom();
	int rc = cli_http_request(s->c->server, s->ca, s->c->access_token, "POST",
				  "/v1/auth/logout", body, resp);
	json_decref(body);
	return rc;
}

int cli_session_logout(struct cli_session *s)
{
	struct cli_response resp = {.retry_after = -1};
	int rc = 0, lockfd;
	bool dead = false; /* the server no longer knows the session */

	/*
	 * The logout route needs a valid access token and names the refresh
	 * token (which a refresh replaces), so refresh first when the access
	 * token has run out. A refresh token the server refuses means the
	 * session is already over there.
	 */
	if (access_expired(s)) {
		rc = session_refresh(s, true);
		if (rc == CLI_E_AUTH) {
			rc = 0;
			dead = true;
		}
	}
	if (rc == 0 && !dead) {
		rc = post_logout(s, &resp);
		if (rc == 0 && resp.status == 401 && !s->refreshed) {
			cli_response_done(&resp);
			rc = session_refresh(s, true);
			if (rc == CLI_E_AUTH) {
				rc = 0;
				dead = true;
			} else if (rc == 0) {
				rc = post_logout(s, &resp);
			}
		}
		if (rc == 0 && !dead && resp.status != 401)
			rc = cli_response_check(&resp);
	}
	if (rc < 0)
		cli_errorf("the session could not be revoked on the server; "
			   "removing the local credentials anyway");

	/* Remove the file even when the server could not be told. */
	lockfd = creds_lock(s->dirfd);
	if (unlinkat(s->dirfd, CRED_FILE, 0) < 0 && errno != ENOENT) {
		cli_errorf("cannot remove the credentials file: %s", strerror(errno));
		if (rc == 0)
			rc = CLI_E_FAIL;
	}
	if (lockfd >= 0)
		close(lockfd);
	cli_response_done(&resp);
	return rc;
}

/* ---- Input ------------------------------------------------------------ */

static volatile sig_atomic_t caught_signal;

static void on_signal(int sig)
{
	caught_signal = sig;
}

/*
 * Reads one line from fd into buf without buffering past it. Returns the
 * length; -EMSGSIZE when longer than size - 1 (the rest of the line is
 * consumed), -ENODATA at end of input before any byte, -EINTR when a signal
 * was caught, other -errno.
 */
static ssize_t read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	bool any = false, too_long = false;
	char ch = 0;

	for (;;) {
		ssize_t r = read(fd, &ch, 1);
		if (r < 0) {
			if (errno == EINTR && caught_signal == 0)
				continue;
			int e = errno == EINTR ? EINTR : errno;
			explicit_bzero(buf, size);
			return -e;
		}
		if (r == 0) {
			if (!any) {
				explicit_bzero(buf, size);
				return -ENODATA;
			}
			break;
		}
		any = true;
		if (ch == '\n')
			break;
		if (n + 1 < size)
			buf[n++] = ch;
		else
			too_long = true;
	}
	explicit_bzero(&ch, sizeof(ch));
	if (too_long) {
		explicit_bzero(buf, size);
		return -EMSGSIZE;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (ssize_t)n;
}

static const int tty_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU};
#define NSIG_TTY (sizeof(tty_signals) / sizeof(tty_signals[0]))

/* Prompts on the terminal and reads a line, echo off unless echo is set. */
static ssize_t tty_read(const char *prompt, bool echo, char *buf, size_t size)
{
	struct sigaction sa, old_sa[NSIG_TTY];
	struct termios old, t;
	int in, out;
	bool own = false, restore = false;
	ssize_t n;

	in = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (in >= 0) {
		out = in;
		own = true;
	} else {
		in = STDIN_FILENO;
		out = STDERR_FILENO;
	}
	caught_signal = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: read() must return EINTR */
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NSIG_TTY; i++)
		sigaction(tty_signals[i], &sa, &old_sa[i]);
	if (!echo) {
		if (tcgetattr(in, &old) == 0) {
			t = old;
			t.c_lflag &= ~(tcflag_t)ECHO;
			t.c_lflag |= ECHONL;
			restore = tcsetattr(in, TCSAFLUSH, &t) == 0;
		}
		if (!restore) {
			/* Never read a secret with echo on. */
			n = -ENOTTY;
			goto out;
		}
	}
	(void)write_all(out, prompt, strlen(prompt));
	n = read_line(in, buf, size);
	if (restore) {
		while (tcsetattr(in, TCSAFLUSH, &old) < 0 && errno == EINTR)
			;
		if (n == -EINTR)
			(void)write_all(out, "\n", 1);
	}
out:
	for (size_t i = 0; i < NSIG_TTY; i++)
		sigaction(tty_signals[i], &old_sa[i], NULL);
	if (own)
		close(in);
	if (caught_signal != 0) {
		explicit_bzero(buf, size);
		raise(caught_signal);
		return -EINTR;
	}
	return n;
}

static int input_error(ssize_t n, const char *what)
{
	if (n == -EMSGSIZE)
		cli_errorf("the %s is too long", what);
	else if (n == -ENODATA)
		cli_errorf("no %s given on stdin", what);
	else if (n == -EINTR)
		cli_errorf("interrupted");
	else if (n == 0)
		cli_errorf("the %s is empty", what);
	else
		cli_errorf("cannot read the %s: %s", what, strerror((int)-n));
	return n == -EINTR ? CLI_E_FAIL : CLI_E_USAGE;
}

int cli_read_password(const char *prompt, bool confirm, char *buf, size_t size)
{
	ssize_t n;

	if (!isatty(STDIN_FILENO)) {
		n = read_line(STDIN_FILENO, buf, size);
		if (n <= 0)
			return input_error(n, "password");
		return 0;
	}
	n = tty_read(prompt, false, buf, size);
	if (n <= 0)
		return input_error(n, "password");
	if (confirm) {
		char *again = malloc(size);
		if (again == NULL) {
			explicit_bzero(buf, size);
			return oom();
		}
		ssize_t m = tty_read("Repeat the password: ", false, again, size);
		bool same = m == n && memcmp(buf, again, (size_t)n) == 0;
		explicit_bzero(again, size);
		free(again);
		if (m < 0) {
			explicit_bzero(buf, size);
			return input_error(m, "password");
		}
		if (!same) {
			explicit_bzero(buf, size);
			cli_errorf("the passwords do not match");
			return CLI_E_USAGE;
		}
	}
	return 0;
}

int cli_prompt_line(const char *prompt, char *buf, size_t size)
{
	ssize_t n = tty_read(prompt, true, buf, size);
	if (n <= 0)
		return input_error(n, "answer");
	return 0;
}

/* ---- Output ----------------------------------------------------------- */

int cli_print_json(const json_t *v)
{
	if (json_dumpf(v, stdout, JSON_INDENT(2)) < 0 || fputc('\n', stdout) == EOF ||
	    fflush(stdout) == EOF) {
		cli_errorf("cannot write the output: %s", strerror(errno));
		return CLI_E_FAIL;
	}
	return 0;
}

/* The value at a dotted path ("quotas.cpu_cores") of obj, or NULL. */
static json_t *json_path(const json_t *obj, const char *path)
{
	json_t *v = (json_t *)obj;
	char key[64];

	while (v != NULL && *path != '\0') {
		const char *dot = strchr(path, '.');
		size_t n = dot != NULL ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		v = json_object_get(v, key);
		path += n + (dot != NULL);
	}
	return v;
}

/* Formats one cell as a new string, sanitized for the terminal. */
static char *format_cell(const json_t *v, enum cli_column_kind kind)
{
	char num[64];
	char *raw = NULL;
	const char *text = "-";

	switch (v != NULL ? json_typeof(v) : JSON_NULL) {
	case JSON_STRING:
		text = json_string_value(v);
		size_t n = strlen(text);
		/* 2026-11-28T15:52:22.123456789Z -> 2026-11-28T15:52:22Z */
		if (kind == CLI_COL_TIME && n > 20 && text[10] == 'T' && text[19] == '.' &&
		    text[n - 1] == 'Z') {
			snprintf(num, sizeof(num), "%.19sZ", text);
			text = num;
		}
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		text = num;
		break;
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.15g", json_real_value(v));
		text = num;
		break;
	case JSON_TRUE: text = "true"; break;
	case JSON_FALSE: text = "false"; break;
	case JSON_ARRAY:
	case JSON_OBJECT:
		raw = json_dumps(v, JSON_COMPACT);
		if (raw == NULL)
			return NULL;
		text = raw;
		break;
	case JSON_NULL: break;
	}
	size_t size = strlen(text) + 1;
	char *cell = malloc(size);
	if (cell != NULL)
		sanitize(text, cell, size);
	wipe_free(raw);
	return cell;
}

/* Terminal columns of a UTF-8 string, counting each character as one. */
static size_t display_width(const char *s)
{
	size_t w = 0;
	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

int cli_print_table(const struct cli_column *cols, size_t ncols, const json_t *items)
{
	size_t nrows = json_is_array(items) ? json_array_size(items) : 1;
	size_t *width = calloc(ncols, sizeof(*width));
	char **cells = NULL;
	int rc = 0;

	if (width == NULL)
		return oom();
	if (nrows > SIZE_MAX / sizeof(*cells) / ncols ||
	    (cells = calloc(nrows > 0 ? nrows * ncols : 1, sizeof(*cells))) == NULL) {
		free(width);
		return oom();
	}
	for (size_t c = 0; c < ncols; c++)
		width[c] = display_width(cols[c].header);
	for (size_t r = 0; r < nrows && rc == 0; r++) {
		const json_t *item = json_is_array(items) ? json_array_get(items, r) : items;
		for (size_t c = 0; c < ncols; c++) {
			char *cell = format_cell(json_path(item, cols[c].path), cols[c].kind);
			if (cell == NULL) {
				rc = oom();
				break;
			}
			cells[r * ncols + c] = cell;
			size_t w = display_width(cell);
			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t r = 0; r <= nrows && rc == 0; r++) {
		for (size_t c = 0; c < ncols; c++) {
			const char *text = r == 0 ? cols[c].header : cells[(r - 1) * ncols + c];
			fputs(text, stdout);
			if (c + 1 < ncols)
				fprintf(stdout, "%*s", (int)(width[c] - display_width(text) + 2),
					"");
		}
		fputc('\n', stdout);
	}
	if (rc == 0 && (ferror(stdout) || fflush(stdout) == EOF)) {
		cli_errorf("cannot write the output: %s", strerror(errno));
		rc = CLI_E_FAIL;
	}
	for (size_t i = 0; i < nrows * ncols; i++)
		free(cells[i]);
	free(cells);
	free(width);
	return rc;
}
