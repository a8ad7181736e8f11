/*
 * x509.c — see x509.h.
 *
 * Everything in pki/ is written to a temp file (0600 from the first byte),
 * fsync'd and renamed into place. Writers (x509_ensure_pki, x509_ca_rotate)
 * hold an exclusive flock on the directory, x509_ca_load a shared one.
 *
 * A rotation is the one change that spans several files, and ca.crt and
 * ca.key cannot be swapped by one rename. It is done in two phases:
 * stage_rotation writes the new generation under *-next names, ca-next.crt
 * last as the commit mark; finish_rotation then renames it into place in an
 * order that always leaves a usable CA pair, and is idempotent, so the next
 * x509_ensure_pki or x509_ca_rotate after a crash completes the job (or,
 * without the mark, deletes the staged files). The order is at
 * finish_rotation.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/encoding.h"
#include "core/err.h"
#include "crypto/random.h"
#include "crypto/x509.h"

#define CA_DAYS	    3650
#define SERVER_DAYS 397
#define DAY_S	    86400L
#define SKEW_S	    300		/* CA and server notBefore: generous clock skew */
#define CLIENT_SKEW 60		/* client notBefore */
#define PEM_MAX	    (64 * 1024) /* certificate PEM given to the x509_cert_pem_* helpers */
#define CHAIN_MAX   8

#define CA_CRT	       "ca.crt"
#define CA_KEY	       "ca.key"
#define PREV_CRT       "ca-prev.crt"
#define PREV_KEY       "ca-prev.key"
#define CROSS_CRT      "ca-cross.crt"
#define SRV_CRT	       "server.crt"
#define SRV_KEY	       "server.key"
#define NEXT_CA_CRT    "ca-next.crt" /* the commit mark of a staged rotation */
#define NEXT_CA_KEY    "ca-next.key"
#define NEXT_CROSS_CRT "ca-cross-next.crt"
#define NEXT_SRV_CRT   "server-next.crt"
#define NEXT_SRV_KEY   "server-next.key"

struct x509_ca {
	X509 *cert;    /* current CA: signs everything issued now */
	EVP_PKEY *key; /* its key */
	X509 *prev;    /* the CA before the last rotation, or NULL */
	X509 *cross;   /* cert's subject and key certified by prev, or NULL */
};

/* STACK_OF(X509) under a name clang-format reads as a type. */
typedef STACK_OF(X509) cert_stack;

struct ext {
	int nid;
	const char *value; /* openssl.cnf syntax */
};

/* clang-format off */
/* pathlen 1: during a rotation a cross certificate sits between this CA and a leaf. */
static const struct ext ca_exts[] = {
	{NID_basic_constraints, "critical,CA:TRUE,pathlen:1"},
	{NID_key_usage, "critical,keyCertSign,cRLSign"},
	{NID_subject_key_identifier, "hash"},
};
static const struct ext cross_exts[] = {
	{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
	{NID_key_usage, "critical,keyCertSign"},
	{NID_subject_key_identifier, "hash"},
	{NID_authority_key_identifier, "keyid:always"},
};
static const struct ext server_exts[] = {
	{NID_basic_constraints, "critical,CA:FALSE"},
	{NID_key_usage, "critical,digitalSignature"},
	{NID_ext_key_usage, "serverAuth"},
	{NID_subject_key_identifier, "hash"},
	{NID_authority_key_identifier, "keyid:always"},
};
static const struct ext client_exts[] = {
	{NID_basic_constraints, "critical,CA:FALSE"},
	{NID_key_usage, "critical,digitalSignature"},
	{NID_ext_key_usage, "clientAuth"},
	{NID_subject_key_identifier, "hash"},
	{NID_authority_key_identifier, "keyid:always"},
};
/* clang-format on */

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- files -------------------------------------------------------------- */

/* Opens a temp file beside name (relative to dfd) with mode 0600 from the first byte on. */
static FILE *open_private(int dfd, const char *name, char *tmp, size_t tmplen)
{
	int n = snprintf(tmp, tmplen, "%s.tmp.%ld", name, (long)getpid());
	if (n < 0 || (size_t)n >= tmplen) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return NULL;
	/* A stale temp file keeps its old mode through O_CREAT. */
	FILE *f = fchmod(fd, 0600) == 0 ? fdopen(fd, "w") : NULL;
	if (!f)
		close(fd);
	return f;
}

/* Makes a rename in dfd durable before the next step depends on it. */
static int sync_dir(int dfd)
{
	if (dfd == AT_FDCWD)
		return 0;
	return fsync(dfd) == 0 ? 0 : -errno;
}

static int finish_file(int dfd, FILE *f, int ok, const char *tmp, const char *name)
{
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ok = 0;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok || renameat(dfd, tmp, dfd, name) != 0) {
		unlinkat(dfd, tmp, 0);
		return ODX_EIO;
	}
	return sync_dir(dfd);
}

static int write_key_at(int dfd, const char *name, EVP_PKEY *pkey)
{
	char tmp[4200];
	FILE *f = open_private(dfd, name, tmp, sizeof(tmp));
	if (!f)
		return -errno;
	int ok = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1;
	return finish_file(dfd, f, ok, tmp, name);
}

int x509_write_private_key(EVP_PKEY *pkey, const char *path)
{
	return write_key_at(AT_FDCWD, path, pkey);
}

/* Public, but the data directory is the daemon's alone: 0600 like the rest. */
static int write_certs_at(int dfd, const char *name, X509 *const *certs, size_t n)
{
	char tmp[4200];
	FILE *f = open_private(dfd, name, tmp, sizeof(tmp));
	if (!f)
		return -errno;
	int ok = 1;
	for (size_t i = 0; i < n && ok; i++)
		ok = PEM_write_X509(f, certs[i]) == 1;
	return finish_file(dfd, f, ok, tmp, name);
}

static FILE *open_read(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, "r");
	if (!f)
		close(fd);
	return f;
}

/* Returns 0, -errno when the file cannot be opened or ODX_ECORRUPT when it does not parse. */
static int read_key_at(int dfd, const char *name, EVP_PKEY **out)
{
	FILE *f = open_read(dfd, name);
	if (!f)
		return -errno;
	*out = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return *out ? 0 : ODX_ECORRUPT;
}

/* The first certificate in the file; errors as read_key_at. */
static int read_cert_at(int dfd, const char *name, X509 **out)
{
	FILE *f = open_read(dfd, name);
	if (!f)
		return -errno;
	*out = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return *out ? 0 : ODX_ECORRUPT;
}

/* As read_cert_at, but a missing file is 0 with *out NULL. */
static int read_cert_opt(int dfd, const char *name, X509 **out)
{
	int rc = read_cert_at(dfd, name, out);
	if (rc == -ENOENT) {
		*out = NULL;
		return 0;
	}
	return rc;
}

/* Every certificate in the file (at most CHAIN_MAX); NULL when unreadable. */
static cert_stack *read_chain_at(int dfd, const char *name)
{
	FILE *f = open_read(dfd, name);
	cert_stack *sk = f ? sk_X509_new_null() : NULL;
	X509 *c;
	while (sk && sk_X509_num(sk) < CHAIN_MAX && (c = PEM_read_X509(f, NULL, NULL, NULL))) {
		if (!sk_X509_push(sk, c)) {
			X509_free(c);
			break;
		}
	}
	if (f)
		fclose(f);
	return sk;
}

static bool exists_at(int dfd, const char *name)
{
	return faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static int rename_if_exists(int dfd, const char *from, const char *to)
{
	if (renameat(dfd, from, dfd, to) != 0)
		return errno == ENOENT ? 0 : -errno;
	return sync_dir(dfd);
}

/* Opens pki_dir and takes its flock: LOCK_EX to write, LOCK_SH to read. Returns the fd. */
static int pki_open(const char *pki_dir, int how)
{
	int fd = open(pki_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (flock(fd, how) != 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* ---- building certificates ---------------------------------------------- */

/* O=Odysseus, CN=cn: the subject shape of everything this CA issues. */
static X509_NAME *name_new(const char *cn)
{
	X509_NAME *name = X509_NAME_new();
	if (!name ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Odysseus",
					-1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
					0)) {
		X509_NAME_free(name);
		return NULL;
	}
	return name;
}

/* A random positive 127-bit serial: unpredictable, and well under RFC 5280's 20 octets. */
static int set_serial(X509 *cert)
{
	uint8_t serial[16];
	if (random_bytes(serial, sizeof(serial)) < 0)
		return ODX_ECRYPTO;
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	int ok = bn && !BN_is_zero(bn) && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
	BN_free(bn);
	return ok ? 0 : ODX_ECRYPTO;
}

/* A v3 certificate without extensions or signature yet. Names are copied. */
static X509 *cert_new(EVP_PKEY *pub, const X509_NAME *subject, const X509_NAME *issuer,
		      time_t not_before, time_t not_after)
{
	X509 *cert = X509_new();
	if (!cert || set_serial(cert) < 0 || !X509_set_version(cert, X509_VERSION_3) ||
	    !ASN1_TIME_set(X509_getm_notBefore(cert), not_before) ||
	    !ASN1_TIME_set(X509_getm_notAfter(cert), not_after) || !X509_set_pubkey(cert, pub) ||
	    !X509_set_subject_name(cert, subject) || !X509_set_issuer_name(cert, issuer)) {
		X509_free(cert);
		return NULL;
	}
	return cert;
}

/* Adds exts to cert; issuer provides the authority key identifier. */
static int add_exts(X509 *cert, X509 *issuer, const struct ext *exts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		X509V3_CTX ctx;
		X509V3_set_ctx_nodb(&ctx);
		X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
		int ok = ext && X509_add_ext(cert, ext, -1);
		X509_EXTENSION_free(ext);
		if (!ok)
			return ODX_ECRYPTO;
	}
	return 0;
}

/* Adds exts and signs with key (ECDSA with SHA-256). */
static int finish_cert(X509 *cert, X509 *issuer, EVP_PKEY *key, const struct ext *exts, size_t n)
{
	if (add_exts(cert, issuer, exts, n) < 0)
		return ODX_ECRYPTO;
	return X509_sign(cert, key, EVP_sha256()) > 0 ? 0 : ODX_ECRYPTO;
}

/*
 * A new self-signed CA certificate for key. Its CN carries the first 8 hex
 * of the key id (SHA-1 of the public key, as the subjectKeyIdentifier) so
 * no two generations share a subject: chain building never mixes them up.
 */
static X509 *ca_cert_new(EVP_PKEY *key)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[9], cn[64];
	time_t now = time(NULL);
	/* The key id is read from the certificate: names go in twice. */
	X509_NAME *name = name_new("placeholder");
	X509 *cert = name ? cert_new(key, name, name, now - SKEW_S, now + CA_DAYS * DAY_S) : NULL;
	X509_NAME_free(name);
	if (!cert || X509_pubkey_digest(cert, EVP_sha1(), md, &mdlen) != 1 || mdlen < 4)
		goto fail;
	hex_encode(md, 4, hex);
	snprintf(cn, sizeof(cn), "Odysseus internal CA %s", hex);
	name = name_new(cn);
	int ok = name && X509_set_subject_name(cert, name) && X509_set_issuer_name(cert, name);
	X509_NAME_free(name);
	if (ok && finish_cert(cert, cert, key, ca_exts, NELEM(ca_exts)) == 0)
		return cert;
fail:
	X509_free(cert);
	return NULL;
}

/*
 * newca's subject and key, certified by old: a verifier that trusts only
 * the old CA reaches newca's leaves through it. Valid no longer than old.
 */
static X509 *cross_cert_new(X509 *newca, const struct x509_ca *old)
{
	time_t now = time(NULL);
	X509 *cert =
	    cert_new(X509_get0_pubkey(newca), X509_get_subject_name(newca),
		     X509_get_subject_name(old->cert), now - SKEW_S, now + CA_DAYS * DAY_S);
	if (!cert)
		return NULL;
	const ASN1_TIME *old_end = X509_get0_notAfter(old->cert);
	if ((ASN1_TIME_compare(X509_get0_notAfter(cert), old_end) <= 0 ||
	     X509_set1_notAfter(cert, old_end)) &&
	    finish_cert(cert, old->cert, old->key, cross_exts, NELEM(cross_exts)) == 0)
		return cert;
	X509_free(cert);
	return NULL;
}

/*
 * "DNS:localhost,IP:127.0.0.1,IP:::1[,DNS:<hostname>]". A hostname with
 * characters outside [A-Za-z0-9.-] is left out: it would be read as syntax.
 */
static void server_san(char *san, size_t n)
{
	char host[256] = "";
	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	size_t len = strlen(host);
	bool ok = len > 0 && strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					  "0123456789.-") == len;
	if (!ok || strcmp(host, "localhost") == 0)
		host[0] = '\0';
	snprintf(san, n, "DNS:localhost,IP:127.0.0.1,IP:::1%s%s", host[0] ? ",DNS:" : "", host);
}

/* The TLS server certificate for pub, signed by ca's current key. */
static X509 *server_cert_new(EVP_PKEY *pub, const struct x509_ca *ca)
{
	char san[600];
	time_t now = time(NULL);
	X509_NAME *name = name_new("odysseusd");
	X509 *cert = name ? cert_new(pub, name, X509_get_subject_name(ca->cert), now - SKEW_S,
				     now + SERVER_DAYS * DAY_S)
			  : NULL;
	X509_NAME_free(name);
	if (!cert)
		return NULL;
	server_san(san, sizeof(san));
	const struct ext sanext = {NID_subject_alt_name, san};
	if (add_exts(cert, ca->cert, server_exts, NELEM(server_exts)) == 0 &&
	    finish_cert(cert, ca->cert, ca->key, &sanext, 1) == 0)
		return cert;
	X509_free(cert);
	return NULL;
}

/* ---- the loaded CA ------------------------------------------------------- */

void x509_ca_free(struct x509_ca *ca)
{
	if (!ca)
		return;
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	X509_free(ca->prev);
	X509_free(ca->cross);
	free(ca);
}

/*
 * The current certificate is ca.crt, or ca-next.crt while a rotation is
 * stopped between its last two renames (see finish_rotation): whichever
 * matches ca.key.
 */
static int pick_ca_cert(int dfd, struct x509_ca *ca)
{
	static const char *const names[] = {CA_CRT, NEXT_CA_CRT};
	int first = 0;
	for (size_t i = 0; i < NELEM(names); i++) {
		X509 *c = NULL;
		int rc = read_cert_at(dfd, names[i], &c);
		if (i == 0)
			first = rc;
		if (rc == 0 && X509_check_private_key(c, ca->key) == 1 && X509_check_ca(c)) {
			ca->cert = c;
			return 0;
		}
		X509_free(c);
	}
	return first == -ENOENT ? first : ODX_ECORRUPT;
}

/* A cross certificate belongs to this CA when it certifies cert's name and key under prev. */
static bool cross_fits(const struct x509_ca *ca)
{
	const X509_NAME *name = X509_get_subject_name(ca->cert);
	if (!ca->prev || X509_NAME_cmp(X509_get_subject_name(ca->cross), name) != 0)
		return false;
	if (EVP_PKEY_eq(X509_get0_pubkey(ca->cross), X509_get0_pubkey(ca->cert)) != 1)
		return false;
	return X509_check_issued(ca->prev, ca->cross) == X509_V_OK &&
	       X509_verify(ca->cross, X509_get0_pubkey(ca->prev)) == 1;
}

/* Leftovers of an unfinished rotation are not part of this CA: drop them. */
static void drop_stale(struct x509_ca *ca)
{
	if (ca->prev && X509_cmp(ca->prev, ca->cert) == 0) {
		X509_free(ca->prev);
		ca->prev = NULL;
	}
	if (ca->cross && !cross_fits(ca)) {
		X509_free(ca->cross);
		ca->cross = NULL;
	}
}

/*
 * OpenSSL fills a certificate's extension cache on first use; do it while
 * the CA is still private to this thread, so sharing it later is plainly
 * read-only.
 */
static void warm(X509 *cert)
{
	if (cert)
		X509_check_purpose(cert, -1, 0);
}

static int load_at(int dfd, struct x509_ca **out)
{
	struct x509_ca *ca = calloc(1, sizeof(*ca));
	if (!ca)
		return ODX_ENOMEM;
	int rc = read_key_at(dfd, CA_KEY, &ca->key);
	if (rc == 0)
		rc = pick_ca_cert(dfd, ca);
	if (rc == 0)
		rc = read_cert_opt(dfd, PREV_CRT, &ca->prev);
	if (rc == 0)
		rc = read_cert_opt(dfd, CROSS_CRT, &ca->cross);
	if (rc < 0) {
		x509_ca_free(ca);
		return rc;
	}
	drop_stale(ca);
	warm(ca->cert);
	warm(ca->prev);
	warm(ca->cross);
	*out = ca;
	return 0;
}

int x509_ca_load(const char *pki_dir, struct x509_ca **out)
{
	int dfd = pki_open(pki_dir, LOCK_SH);
	if (dfd < 0)
		return dfd;
	int rc = load_at(dfd, out);
	close(dfd);
	ERR_clear_error();
	return rc;
}

static int cert_fingerprint(const X509 *cert, char out[static 65])
{
	uint8_t md[32];
	unsigned int len = 0;
	if (X509_digest(cert, EVP_sha256(), md, &len) != 1 || len != 32) {
		ERR_clear_error();
		return ODX_ECRYPTO;
	}
	hex_encode(md, 32, out);
	return 0;
}

int x509_ca_fingerprint(const struct x509_ca *ca, char out[static 65])
{
	return cert_fingerprint(ca->cert, out);
}

/* Copies a memory BIO's contents into a malloc'd NUL-terminated string. */
static int bio_string(BIO *b, char **out)
{
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	if (n < 0)
		return ODX_EINTERNAL;
	char *s = malloc((size_t)n + 1);
	if (!s)
		return ODX_ENOMEM;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	*out = s;
	return 0;
}

static int certs_pem(X509 *const *certs, size_t n, char **out)
{
	BIO *b = BIO_new(BIO_s_mem());
	int rc = b ? 0 : ODX_ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (PEM_write_bio_X509(b, certs[i]) != 1)
			rc = ODX_ENOMEM;
	if (rc == 0)
		rc = bio_string(b, out);
	BIO_free(b);
	ERR_clear_error();
	return rc;
}

int x509_ca_bundle_pem(const struct x509_ca *ca, char **out)
{
	X509 *certs[2] = {ca->cert, ca->prev};
	return certs_pem(certs, ca->prev ? 2 : 1, out);
}

int x509_ca_client_store(const struct x509_ca *ca, X509_STORE **out)
{
	X509_STORE *st = X509_STORE_new();
	if (!st || X509_STORE_add_cert(st, ca->cert) != 1 ||
	    (ca->prev && X509_STORE_add_cert(st, ca->prev) != 1) ||
	    X509_STORE_set_purpose(st, X509_PURPOSE_SSL_CLIENT) != 1) {
		X509_STORE_free(st);
		ERR_clear_error();
		return ODX_ENOMEM;
	}
	*out = st;
	return 0;
}

/* ---- the server certificate ---------------------------------------------- */

/*
 * server.crt: the leaf, then the cross certificate if any, then the current
 * CA. The CA is there for clients that pin it by fingerprint; the cross
 * certificate lets clients that trust only the previous CA build
 * leaf -> cross -> previous CA. It comes before the CA because OpenSSL takes
 * the first matching issuer among the untrusted certificates and does not
 * backtrack: with the self-signed CA first, such a client would stop there.
 */
static size_t server_chain(const struct x509_ca *ca, X509 *leaf, X509 *chain[static 3])
{
	size_t n = 0;
	chain[n++] = leaf;
	if (ca->cross)
		chain[n++] = ca->cross;
	chain[n++] = ca->cert;
	return n;
}

static int issue_server(int dfd, const struct x509_ca *ca, const char *key_name,
			const char *crt_name)
{
	X509 *chain[3];
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *cert = key ? server_cert_new(key, ca) : NULL;
	int rc = ODX_ECRYPTO;
	if (!cert)
		goto out;
	size_t n = server_chain(ca, cert, chain);
	rc = write_key_at(dfd, key_name, key);
	if (rc == 0)
		rc = write_certs_at(dfd, crt_name, chain, n);
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

/* True when server.crt is server_chain's chain, with a leaf from ca that pairs with server.key. */
static bool server_current(int dfd, const struct x509_ca *ca)
{
	X509 *want[3];
	cert_stack *have = read_chain_at(dfd, SRV_CRT);
	EVP_PKEY *key = NULL;
	X509 *leaf = have && sk_X509_num(have) > 0 ? sk_X509_value(have, 0) : NULL;
	size_t n = server_chain(ca, leaf, want);
	bool ok = leaf && read_key_at(dfd, SRV_KEY, &key) == 0 && (size_t)sk_X509_num(have) == n &&
		  X509_check_private_key(leaf, key) == 1 &&
		  X509_verify(leaf, X509_get0_pubkey(ca->cert)) == 1;
	for (size_t i = 1; ok && i < n; i++)
		ok = X509_cmp(sk_X509_value(have, (int)i), want[i]) == 0;
	sk_X509_pop_free(have, X509_free);
	EVP_PKEY_free(key);
	return ok;
}

static int ensure_server(int dfd)
{
	struct x509_ca *ca = NULL;
	int rc = load_at(dfd, &ca);
	if (rc == 0 && !server_current(dfd, ca))
		rc = issue_server(dfd, ca, SRV_KEY, SRV_CRT);
	x509_ca_free(ca);
	return rc;
}

/* ---- creation and rotation ----------------------------------------------- */

static int create_ca(int dfd)
{
	/* ca.crt first goes: a ca.crt on disk always matches ca.key (a crash just recreates). */
	if (unlinkat(dfd, CA_CRT, 0) != 0 && errno != ENOENT)
		return -errno;
	int rc = ODX_ECRYPTO;
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *cert = key ? ca_cert_new(key) : NULL;
	if (!cert)
		goto out;
	rc = write_key_at(dfd, CA_KEY, key);
	if (rc == 0)
		rc = write_certs_at(dfd, CA_CRT, &cert, 1);
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

/* Deletes the files of a rotation that never reached its commit mark. */
static int discard_staged(int dfd)
{
	static const char *const staged[] = {NEXT_CA_KEY, NEXT_CROSS_CRT, NEXT_SRV_KEY,
					     NEXT_SRV_CRT};
	for (size_t i = 0; i < NELEM(staged); i++)
		if (unlinkat(dfd, staged[i], 0) != 0 && errno != ENOENT)
			return -errno;
	return sync_dir(dfd);
}

/* ca.{crt,key} -> ca-prev.{crt,key}, by copy: ca.* stay usable throughout. */
static int copy_to_prev(int dfd)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int rc = read_key_at(dfd, CA_KEY, &key);
	if (rc == 0)
		rc = read_cert_at(dfd, CA_CRT, &cert);
	if (rc == 0 && X509_check_private_key(cert, key) != 1)
		rc = ODX_ECORRUPT;
	if (rc == 0)
		rc = write_key_at(dfd, PREV_KEY, key);
	if (rc == 0)
		rc = write_certs_at(dfd, PREV_CRT, &cert, 1);
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

/*
 * Completes a staged rotation, or discards one without its commit mark.
 * Each step is durable before the next and idempotent, so whatever a crash
 * interrupts, calling this again finishes it:
 *   1. copy ca.{crt,key} to ca-prev.*, only while ca-next.key exists (that
 *      is, while ca.key is still the old key);
 *   2. ca-cross-next.crt -> ca-cross.crt;
 *   3. server-next.key -> server.key, server-next.crt -> server.crt: the new
 *      chain verifies both for clients trusting the old CA (through the
 *      cross certificate) and for those trusting the new one;
 *   4. ca-next.key -> ca.key;
 *   5. ca-next.crt -> ca.crt.
 * Before 4 and after 5, ca.crt pairs with ca.key; between them ca.key pairs
 * with ca-next.crt, which pick_ca_cert accepts. So there is always a usable
 * CA pair, old or new, and never a mix.
 */
static int finish_rotation(int dfd)
{
	/* clang-format off */
	static const struct { const char *from, *to; } moves[] = {
		{NEXT_CROSS_CRT, CROSS_CRT},
		{NEXT_SRV_KEY, SRV_KEY},
		{NEXT_SRV_CRT, SRV_CRT},
		{NEXT_CA_KEY, CA_KEY},
		{NEXT_CA_CRT, CA_CRT},
	};
	/* clang-format on */
	if (!exists_at(dfd, NEXT_CA_CRT))
		return discard_staged(dfd);
	int rc = exists_at(dfd, NEXT_CA_KEY) ? copy_to_prev(dfd) : 0;
	for (size_t i = 0; rc == 0 && i < NELEM(moves); i++)
		rc = rename_if_exists(dfd, moves[i].from, moves[i].to);
	return rc;
}

/*
 * Writes the next generation beside the current one: ca-next.key,
 * ca-cross-next.crt, server-next.{key,crt}, and last ca-next.crt, whose
 * presence commits the rotation.
 */
static int stage_rotation(int dfd, const struct x509_ca *old)
{
	struct x509_ca next = {.prev = old->cert};
	int rc = ODX_ECRYPTO;
	next.key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	next.cert = next.key ? ca_cert_new(next.key) : NULL;
	next.cross = next.cert ? cross_cert_new(next.cert, old) : NULL;
	if (!next.cross)
		goto out;
	rc = write_key_at(dfd, NEXT_CA_KEY, next.key);
	if (rc == 0)
		rc = write_certs_at(dfd, NEXT_CROSS_CRT, &next.cross, 1);
	if (rc == 0)
		rc = issue_server(dfd, &next, NEXT_SRV_KEY, NEXT_SRV_CRT);
	if (rc == 0)
		rc = write_certs_at(dfd, NEXT_CA_CRT, &next.cert, 1);
out:
	if (rc < 0)
		discard_staged(dfd);
	X509_free(next.cross);
	X509_free(next.cert);
	EVP_PKEY_free(next.key);
	return rc;
}

int x509_ensure_pki(const char *pki_dir)
{
	if (mkdir(pki_dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	int dfd = pki_open(pki_dir, LOCK_EX);
	if (dfd < 0)
		return dfd;
	int rc = finish_rotation(dfd);
	if (rc == 0 && (!exists_at(dfd, CA_CRT) || !exists_at(dfd, CA_KEY)))
		rc = create_ca(dfd);
	if (rc == 0)
		rc = ensure_server(dfd);
	close(dfd);
	ERR_clear_error();
	return rc;
}

int x509_ca_rotate(const char *pki_dir)
{
	int dfd = pki_open(pki_dir, LOCK_EX);
	if (dfd < 0)
		return dfd == -ENOENT ? ODX_ENOTFOUND : dfd;
	struct x509_ca *old = NULL;
	int rc = finish_rotation(dfd);
	if (rc == 0)
		rc = load_at(dfd, &old);
	if (rc == -ENOENT)
		rc = ODX_ENOTFOUND;
	if (rc == 0)
		rc = stage_rotation(dfd, old);
	if (rc == 0)
		rc = finish_rotation(dfd);
	x509_ca_free(old);
	close(dfd);
	ERR_clear_error();
	return rc;
}

/* ---- client certificates ------------------------------------------------- */

/* A node id: 1..X509_NODE_ID_MAX of [a-z0-9_-]. */
static bool node_id_ok(const char *s, size_t len)
{
	if (len == 0 || len > X509_NODE_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static size_t skip_space(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	return i;
}

/*
 * The DER inside pem, which must be exactly one "CERTIFICATE REQUEST" PEM
 * block without headers and with nothing but whitespace around it.
 * *der is OPENSSL_malloc'd.
 */
static int csr_der(const char *pem, size_t len, unsigned char **der, long *derlen)
{
	static const char begin[] = "-----BEGIN " PEM_STRING_X509_REQ "-----";
	if (!pem || len > X509_CSR_MAX || memchr(pem, '\0', len))
		return ODX_EINVAL;
	size_t at = skip_space(pem, len);
	if (len - at < sizeof(begin) - 1 || memcmp(pem + at, begin, sizeof(begin) - 1) != 0)
		return ODX_EINVAL;
	BIO *b = BIO_new_mem_buf(pem + at, (int)(len - at));
	char *name = NULL, *header = NULL, *rest = NULL;
	int rc = ODX_EINVAL;
	if (!b)
		return ODX_ENOMEM;
	if (PEM_read_bio(b, &name, &header, der, derlen) != 1)
		goto out;
	long nrest = BIO_get_mem_data(b, &rest);
	if (strcmp(name, PEM_STRING_X509_REQ) == 0 && header[0] == '\0' && nrest >= 0 &&
	    skip_space(rest, (size_t)nrest) == (size_t)nrest)
		rc = 0;
	else {
		OPENSSL_free(*der);
		*der = NULL;
	}
out:
	OPENSSL_free(name);
	OPENSSL_free(header);
	BIO_free(b);
	return rc;
}

/* P-256 with a named curve (no explicit parameters), or Ed25519: the keys agents make. */
static bool key_allowed(const EVP_PKEY *pub)
{
	char group[32], enc[32];
	if (EVP_PKEY_is_a(pub, "ED25519"))
		return true;
	return EVP_PKEY_is_a(pub, "EC") &&
	       EVP_PKEY_get_group_name(pub, group, sizeof(group), NULL) == 1 &&
	       strcmp(group, SN_X9_62_prime256v1) == 0 &&
	       EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc),
					      NULL) == 1 &&
	       strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) == 0;
}

/*
 * Parses a CSR strictly: one PEM block, DER consumed to the last byte,
 * version 1, an allowed key, and a valid self-signature (the requester
 * holds the private key). Returns 0 and *out, or ODX_EINVAL.
 */
static int csr_parse(const char *pem, size_t len, X509_REQ **out)
{
	unsigned char *der = NULL;
	long derlen = 0;
	int rc = csr_der(pem, len, &der, &derlen);
	if (rc < 0)
		return rc;
	const unsigned char *p = der;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, derlen);
	EVP_PKEY *pub = req ? X509_REQ_get0_pubkey(req) : NULL;
	rc = ODX_EINVAL;
	if (pub && p == der + derlen && X509_REQ_get_version(req) == X509_REQ_VERSION_1 &&
	    key_allowed(pub) && X509_REQ_verify(req, pub) == 1) {
		*out = req;
		req = NULL;
		rc = 0;
	}
	X509_REQ_free(req);
	OPENSSL_free(der);
	return rc;
}

static X509 *client_cert_new(const struct x509_ca *ca, EVP_PKEY *pub, const char *node_id,
			     time_t now, time_t not_after)
{
	X509_NAME *name = name_new(node_id);
	X509 *cert = name ? cert_new(pub, name, X509_get_subject_name(ca->cert), now - CLIENT_SKEW,
				     not_after)
			  : NULL;
	X509_NAME_free(name);
	if (cert && finish_cert(cert, ca->cert, ca->key, client_exts, NELEM(client_exts)) == 0)
		return cert;
	X509_free(cert);
	return NULL;
}

int x509_ca_issue_client(const struct x509_ca *ca, const char *csr_pem, size_t csr_len,
			 const char *node_id, int64_t lifetime_s, char **cert_pem,
			 int64_t *not_after_unix)
{
	X509_REQ *req = NULL;
	X509 *cert = NULL;
	time_t now = time(NULL);
	int rc = ODX_EINVAL;
	if (!node_id || !node_id_ok(node_id, strlen(node_id)) ||
	    lifetime_s < X509_CLIENT_LIFETIME_MIN_S || lifetime_s > X509_CLIENT_LIFETIME_MAX_S)
		goto out;
	rc = csr_parse(csr_pem, csr_len, &req);
	if (rc < 0)
		goto out;
	cert = client_cert_new(ca, X509_REQ_get0_pubkey(req), node_id, now, now + lifetime_s);
	rc = cert ? certs_pem(&cert, 1, cert_pem) : ODX_ECRYPTO;
	if (rc == 0)
		*not_after_unix = (int64_t)now + lifetime_s;
out:
	X509_REQ_free(req);
	X509_free(cert);
	ERR_clear_error();
	return rc;
}

/* UTF8String, PrintableString or IA5String: one byte per character, ASCII for ASCII. */
static bool ascii_string_type(int type)
{
	return type == V_ASN1_UTF8STRING || type == V_ASN1_PRINTABLESTRING ||
	       type == V_ASN1_IA5STRING;
}

int x509_cert_node_id(const X509 *cert, char *out, size_t n)
{
	const X509_NAME *name = cert ? X509_get_subject_name(cert) : NULL;
	int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
	if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
		return ODX_EINVAL; /* none, or more than one */
	const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	const char *s = (const char *)ASN1_STRING_get0_data(cn);
	int len = ASN1_STRING_length(cn);
	if (!ascii_string_type(ASN1_STRING_type(cn)) || len < 0 || !node_id_ok(s, (size_t)len))
		return ODX_EINVAL;
	if ((size_t)len >= n)
		return ODX_ETOOBIG;
	memcpy(out, s, (size_t)len);
	out[len] = '\0';
	return 0;
}

/* ---- certificates as PEM text ------------------------------------------- */

static int pem_first_cert(const char *pem, size_t len, X509 **out)
{
	if (!pem || len == 0 || len > PEM_MAX)
		return ODX_EINVAL;
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	if (!b)
		return ODX_ENOMEM;
	*out = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	ERR_clear_error();
	return *out ? 0 : ODX_EINVAL;
}

int x509_cert_pem_not_after(const char *pem, size_t len, int64_t *out)
{
	X509 *c = NULL;
	struct tm tm;
	int rc = pem_first_cert(pem, len, &c);
	if (rc < 0)
		return rc;
	if (ASN1_TIME_to_tm(X509_get0_notAfter(c), &tm) == 1)
		*out = (int64_t)timegm(&tm);
	else
		rc = ODX_EINVAL;
	X509_free(c);
	ERR_clear_error();
	return rc;
}

int x509_cert_pem_fingerprint(const char *pem, size_t len, char out[static 65])
{
	X509 *c = NULL;
	int rc = pem_first_cert(pem, len, &c);
	if (rc < 0)
		return rc;
	rc = cert_fingerprint(c, out);
	X509_free(c);
	return rc;
}

int x509_cert_fingerprint(const char *path, char out[static 65])
{
	X509 *c = NULL;
	if (read_cert_at(AT_FDCWD, path, &c) < 0) {
		ERR_clear_error();
		return ODX_EIO;
	}
	int rc = cert_fingerprint(c, out);
	X509_free(c);
	return rc;
}

/* ---- agent side ----------------------------------------------------------- */

static X509_REQ *csr_new(EVP_PKEY *key)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = name_new("odysseus-agent");
	if (!req || !name || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key) ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
		X509_REQ_free(req);
		req = NULL;
	}
	X509_NAME_free(name);
	return req;
}

static int req_pem(X509_REQ *req, char **out)
{
	BIO *b = BIO_new(BIO_s_mem());
	int rc = b && PEM_write_bio_X509_REQ(b, req) == 1 ? bio_string(b, out) : ODX_ENOMEM;
	BIO_free(b);
	return rc;
}

int x509_make_key_and_csr(const char *key_path, char **csr_pem)
{
	char *pem = NULL;
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_REQ *req = key ? csr_new(key) : NULL;
	int rc = req ? req_pem(req, &pem) : ODX_ECRYPTO;
	if (rc == 0)
		rc = x509_write_private_key(key, key_path);
	if (rc == 0) {
		*csr_pem = pem;
		pem = NULL;
	}
	free(pem);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return rc;
}
