/* x509.c — see x509.h. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/encoding.h"
#include "core/err.h"
#include "crypto/random.h"
#include "crypto/x509.h"

#define CA_DAYS	    3650
#define SERVER_DAYS 397

/* Opens a temp file beside path with mode 0600 from the first byte on. */
static FILE *open_private(const char *path, char *tmp, size_t tmplen)
{
	snprintf(tmp, tmplen, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, "w");
	if (!f)
		close(fd);
	return f;
}

static int finish_file(FILE *f, int ok, const char *tmp, const char *path)
{
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ok = 0;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return ODX_EIO;
	}
	return 0;
}

int x509_write_private_key(EVP_PKEY *pkey, const char *path)
{
	char tmp[4200];
	FILE *f = open_private(path, tmp, sizeof(tmp));
	if (!f)
		return -errno;
	int ok = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1;
	return finish_file(f, ok, tmp, path);
}

static int write_cert(X509 *cert, const char *path)
{
	char tmp[4200];
	FILE *f = open_private(path, tmp, sizeof(tmp));
	if (!f)
		return -errno;
	int ok = PEM_write_X509(f, cert) == 1;
	/* Public, but the data directory is the daemon's alone: 0600 like the rest. */
	return finish_file(f, ok, tmp, path);
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return ODX_ECRYPTO;
	int ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : ODX_ECRYPTO;
}

/* A certificate for `cn` with pkey, signed by issuer_key (self-signed when issuer is NULL). */
static X509 *make_cert(EVP_PKEY *pkey, const char *cn, X509 *issuer, int days)
{
	X509 *cert = X509_new();
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	if (!cert || random_bytes(serial, sizeof(serial)) < 0)
		goto fail;
	serial[0] &= 0x7f; /* positive */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)))
		goto fail;
	X509_set_version(cert, 2);
	X509_gmtime_adj(X509_getm_notBefore(cert), -300);
	X509_gmtime_adj(X509_getm_notAfter(cert), (long)days * 86400);
	X509_set_pubkey(cert, pkey);
	X509_NAME *name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Odysseus", -1,
				   -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
	BN_free(bn);
	return cert;
fail:
	BN_free(bn);
	X509_free(cert);
	return NULL;
}

static EVP_PKEY *load_key(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

static X509 *load_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	X509 *c = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return c;
}

static int create_ca(const char *crt, const char *key)
{
	int rc = ODX_ECRYPTO;
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *cert = pkey ? make_cert(pkey, "Odysseus internal CA", NULL, CA_DAYS) : NULL;
	if (!cert)
		goto out;
	if (add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:1") < 0 ||
	    add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    add_ext(cert, cert, NID_subject_key_identifier, "hash") < 0)
		goto out;
	if (X509_sign(cert, pkey, EVP_sha256()) == 0)
		goto out;
	rc = x509_write_private_key(pkey, key);
	if (rc == 0)
		rc = write_cert(cert, crt);
out:
	X509_free(cert);
	EVP_PKEY_free(pkey);
	return rc;
}

static int create_server_cert(const char *ca_crt, const char *ca_key, const char *crt,
			      const char *key)
{
	int rc = ODX_ECRYPTO;
	X509 *ca = load_cert(ca_crt);
	EVP_PKEY *cakey = load_key(ca_key);
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *cert = NULL;
	char host[256] = "localhost", san[600];
	if (!ca || !cakey || !pkey)
		goto out;
	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1%s%s",
		 strcmp(host, "localhost") ? ",DNS:" : "", strcmp(host, "localhost") ? host : "");
	cert = make_cert(pkey, "odysseusd", ca, SERVER_DAYS);
	if (!cert)
		goto out;
	if (add_ext(cert, ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(cert, ca, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(cert, ca, NID_ext_key_usage, "serverAuth") < 0 ||
	    add_ext(cert, ca, NID_subject_alt_name, san) < 0 ||
	    add_ext(cert, ca, NID_authority_key_identifier, "keyid:always") < 0)
		goto out;
	if (X509_sign(cert, cakey, EVP_sha256()) == 0)
		goto out;
	rc = x509_write_private_key(pkey, key);
	if (rc == 0)
		rc = write_cert(cert, crt);
out:
	X509_free(cert);
	X509_free(ca);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(pkey);
	return rc;
}

int x509_ensure_pki(const char *pki_dir)
{
	char ca_crt[4096], ca_key[4096], crt[4096], key[4096];
	if (mkdir(pki_dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", pki_dir);
	snprintf(ca_key, sizeof(ca_key), "%s/ca.key", pki_dir);
	snprintf(crt, sizeof(crt), "%s/server.crt", pki_dir);
	snprintf(key, sizeof(key), "%s/server.key", pki_dir);
	int rc = 0;
	if (access(ca_crt, F_OK) != 0 || access(ca_key, F_OK) != 0)
		rc = create_ca(ca_crt, ca_key);
	if (rc == 0 && (access(crt, F_OK) != 0 || access(key, F_OK) != 0))
		rc = create_server_cert(ca_crt, ca_key, crt, key);
	return rc;
}

int x509_cert_fingerprint(const char *path, char out[static 65])
{
	X509 *c = load_cert(path);
	if (!c)
		return ODX_EIO;
	uint8_t md[32];
	unsigned int len = 0;
	int ok = X509_digest(c, EVP_sha256(), md, &len) == 1 && len == 32;
	X509_free(c);
	if (!ok)
		return ODX_ECRYPTO;
	hex_encode(md, 32, out);
	return 0;
}
