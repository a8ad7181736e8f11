/*
 * pin.c — see pin.h.
 *
 * Only the handshake runs on this connection: ClientHello, the server's
 * flight, our Finished, then close_notify. No HTTP request is written, so
 * a server that is not the control plane learns nothing but that someone
 * connected. The caller ignores SIGPIPE (a server may close first).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "agent/pin.h"
#include "core/encoding.h"
#include "core/err.h"

typedef STACK_OF(X509) cert_stack; /* a name clang-format reads as a type */

/* ---- TCP ------------------------------------------------------------------ */

/* Connects fd to ai within timeout_ms. Returns 0 or -errno. */
static int connect_wait(int fd, const struct addrinfo *ai, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int err = 0;
	socklen_t len = sizeof(err);

	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	int n;
	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return -errno;
	return -err;
}

/* Makes fd blocking again, with send and receive timeouts for the handshake. */
static int set_blocking(int fd, int timeout_ms)
{
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

/* Tries each address of host:port in turn. Returns a connected fd or an error. */
static int tcp_connect(const char *host, const char *port, int timeout_ms,
		       char why[static PIN_WHY_LEN])
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
	int rc = -ECONNREFUSED;

	int g = getaddrinfo(host, port, &hints, &res);
	if (g != 0) {
		snprintf(why, PIN_WHY_LEN, "cannot resolve %s: %s", host, gai_strerror(g));
		return ODX_EIO;
	}
	for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		rc = connect_wait(fd, ai, timeout_ms);
		if (rc == 0)
			rc = set_blocking(fd, timeout_ms);
		if (rc == 0) {
			freeaddrinfo(res);
			return fd;
		}
		close(fd);
	}
	freeaddrinfo(res);
	snprintf(why, PIN_WHY_LEN, "cannot connect to %s port %s: %s", host, port, strerror(-rc));
	return rc;
}

/* ---- TLS ------------------------------------------------------------------- */

static bool is_ip_literal(const char *host)
{
	unsigned char a[16];
	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* OpenSSL's reason for the last failure, or a fallback; never NULL. */
static const char *ssl_reason(const char *fallback)
{
	const char *r = ERR_reason_error_string(ERR_peek_last_error());
	return r != NULL ? r : fallback;
}

static SSL *tls_handshake(int fd, const char *host, const char *port, char why[static PIN_WHY_LEN])
{
	static const unsigned char alpn[] = "\x11" PIN_ALPN;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = NULL;

	/* Verification off: the chain is judged below, against the fingerprint. */
	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0 ||
	    (ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    (!is_ip_literal(host) && SSL_set_tlsext_host_name(ssl, host) != 1)) {
		snprintf(why, PIN_WHY_LEN, "cannot set up TLS: %s", ssl_reason("out of memory"));
		goto fail;
	}
	SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	if (SSL_connect(ssl) != 1) {
		snprintf(why, PIN_WHY_LEN, "the TLS handshake with %s port %s failed: %s", host,
			 port, ssl_reason(errno != 0 ? strerror(errno) : "connection closed"));
		goto fail;
	}
	SSL_CTX_free(ctx); /* the SSL holds its own reference */
	return ssl;
fail:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return NULL;
}

/* The certificate of chain whose SHA-256(DER) is fingerprint, or NULL. */
static X509 *find_pinned(cert_stack *chain, const char *fingerprint)
{
	for (int i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int n = 0;
		char hex[2 * EVP_MAX_MD_SIZE + 1];
		if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32)
			continue;
		hex_encode(md, n, hex);
		/* A public value: no need for a constant-time comparison. */
		if (strcmp(hex, fingerprint) == 0)
			return x;
	}
	return NULL;
}

/*
 * Verifies the server's certificate (chain[0]) against a store holding
 * only ca, with the rest of the chain as untrusted intermediates (a cross
 * certificate after a CA rotation), for an SSL server named host.
 */
static int verify_server(cert_stack *chain, X509 *ca, const char *host,
			 char why[static PIN_WHY_LEN])
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *vc = X509_STORE_CTX_new();
	cert_stack *rest = sk_X509_new_null();
	int rc = ODX_ENOMEM;

	if (store == NULL || vc == NULL || rest == NULL || X509_STORE_add_cert(store, ca) != 1)
		goto out;
	for (int i = 1; i < sk_X509_num(chain); i++)
		if (sk_X509_push(rest, sk_X509_value(chain, i)) <= 0)
			goto out;
	if (X509_STORE_CTX_init(vc, store, sk_X509_value(chain, 0), rest) != 1)
		goto out;
	X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(vc);
	int named = is_ip_literal(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
					: X509_VERIFY_PARAM_set1_host(param, host, 0);
	if (named != 1 || X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER) != 1)
		goto out;
	if (X509_verify_cert(vc) != 1) {
		snprintf(why, PIN_WHY_LEN,
			 "its certificate does not verify against the pinned CA: %s",
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(vc)));
		rc = ODX_EAUTH;
		goto out;
	}
	rc = 0;
out:
	if (rc == ODX_ENOMEM)
		snprintf(why, PIN_WHY_LEN, "cannot verify the certificate: out of memory");
	sk_X509_free(rest); /* the certificates belong to the connection */
	X509_STORE_CTX_free(vc);
	X509_STORE_free(store);
	return rc;
}

static int cert_pem(X509 *x, char **out)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *s = NULL;
	long n;

	if (b != NULL && PEM_write_bio_X509(b, x) == 1 && (n = BIO_get_mem_data(b, &data)) > 0 &&
	    (s = malloc((size_t)n + 1)) != NULL) {
		memcpy(s, data, (size_t)n);
		s[n] = '\0';
	}
	BIO_free(b);
	if (s == NULL)
		return ODX_ENOMEM;
	*out = s;
	return 0;
}

/* Judges the chain the server sent. */
static int pin_chain(SSL *ssl, const char *host, const char *fingerprint, char **ca_pem,
		     char why[static PIN_WHY_LEN])
{
	cert_stack *chain = SSL_get_peer_cert_chain(ssl); /* the client's side includes the leaf */
	X509 *ca;

	if (chain == NULL || sk_X509_num(chain) == 0) {
		snprintf(why, PIN_WHY_LEN, "it sent no certificate");
		return ODX_EAUTH;
	}
	if ((ca = find_pinned(chain, fingerprint)) == NULL) {
		snprintf(why, PIN_WHY_LEN, "no certificate it sent has the token's CA fingerprint");
		return ODX_EAUTH;
	}
	if (X509_check_ca(ca) < 1) {
		snprintf(why, PIN_WHY_LEN,
			 "the certificate with the token's fingerprint is not a CA");
		return ODX_EAUTH;
	}
	int rc = verify_server(chain, ca, host, why);
	if (rc == 0 && (rc = cert_pem(ca, ca_pem)) < 0)
		snprintf(why, PIN_WHY_LEN, "out of memory");
	return rc;
}

int pin_fetch_ca(const char *host, const char *port, const char *fingerprint, int timeout_ms,
		 char **ca_pem, char why[static PIN_WHY_LEN])
{
	int rc, fd;
	SSL *ssl;

	why[0] = '\0';
	ERR_clear_error();
	if ((fd = tcp_connect(host, port, timeout_ms, why)) < 0)
		return fd;
	errno = 0;
	if ((ssl = tls_handshake(fd, host, port, why)) == NULL) {
		close(fd);
		ERR_clear_error();
		return ODX_EIO;
	}
	rc = pin_chain(ssl, host, fingerprint, ca_pem, why);
	SSL_shutdown(ssl); /* close_notify: an alert, not application data */
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
	return rc;
}
