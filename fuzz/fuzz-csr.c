/*
 * fuzz-csr.c — the internal CA's parsers of agent-supplied bytes:
 * x509_ca_issue_client (a CSR PEM from POST /agent/v1/enroll and /renew)
 * and x509_cert_pem_not_after / x509_cert_pem_fingerprint (certificate PEM).
 *
 * A CA is made once in a temporary directory (x509_ensure_pki +
 * x509_ca_load). Every input goes, as it is, to all three functions. The
 * first byte may also pick a mode that gets past the PEM armour and the
 * self-signature, which mutation alone almost never does:
 *
 *   'D' + DER   the DER is wrapped as a CERTIFICATE REQUEST PEM for
 *               x509_ca_issue_client and as a CERTIFICATE PEM for the
 *               certificate helpers.
 *   'R' + K + DER
 *               the DER is parsed as a CSR, its key replaced by fixed key
 *               K % 4 (P-256 and Ed25519, which the CA accepts; P-384 and
 *               RSA, which it refuses), signed with that key, and the PEM
 *               given to x509_ca_issue_client.
 *
 * Oracles (abort on violation): results are 0, ODX_EINVAL or ODX_ENOMEM;
 * output parameters are untouched on failure; an issued certificate is a
 * NUL-terminated PEM whose notAfter is the one reported, whose CN is the
 * node id, and which verifies against the CA's client store; a certificate
 * with a fingerprint has 64 lowercase hex; in 'R' mode the CSR is accepted
 * exactly when it is version 1, has an accepted key and fits X509_CSR_MAX.
 */
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "core/err.h"
#include "crypto/x509.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NODE_ID	   "nod_fuzz"
#define LIFETIME_S 3600
#define NKEYS	   4 /* keys[0..1] are accepted by the CA, keys[2..3] refused */
#define INPUT_MAX  (4 * X509_CSR_MAX)

static struct x509_ca *ca;
static X509_STORE *store;
static EVP_PKEY *keys[NKEYS];
static char dir[64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	for (size_t i = 0; i < NKEYS; i++)
		EVP_PKEY_free(keys[i]);
	X509_STORE_free(store);
	x509_ca_free(ca);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char pki[96];

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/odx-fuzz-csr-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(pki, sizeof(pki), "%s/pki", dir);
	keys[0] = EVP_EC_gen("P-256");
	keys[1] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	keys[2] = EVP_EC_gen("P-384");
	keys[3] = EVP_RSA_gen(1024);
	if (x509_ensure_pki(pki) != 0 || x509_ca_load(pki, &ca) != 0 ||
	    x509_ca_client_store(ca, &store) != 0 || !keys[0] || !keys[1] || !keys[2] || !keys[3]) {
		fprintf(stderr, "fuzz-csr: cannot set up a CA in %s\n", pki);
		abort();
	}
	atexit(cleanup);
	return 0;
}

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[n] == '\0';
}

/* The issued certificate is what the CA promised: checks it or aborts. */
static void check_issued(const char *pem, int64_t not_after)
{
	size_t len = strnlen(pem, 65536);
	char fp[65], cn[X509_NODE_ID_MAX + 1];
	int64_t t = 0;

	if (len == 0 || len == 65536 || x509_cert_pem_not_after(pem, len, &t) != 0 ||
	    t != not_after || x509_cert_pem_fingerprint(pem, len, fp) != 0 || !is_lower_hex(fp, 64))
		abort();
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	X509_STORE_CTX *vc = X509_STORE_CTX_new();
	if (!cert || !vc || x509_cert_node_id(cert, cn, sizeof(cn)) != 0 ||
	    strcmp(cn, NODE_ID) != 0 || X509_STORE_CTX_init(vc, store, cert, NULL) != 1 ||
	    X509_verify_cert(vc) != 1)
		abort();
	X509_STORE_CTX_free(vc);
	X509_free(cert);
	BIO_free(b);
}

/* x509_ca_issue_client on csr[0..len); returns its result after the checks. */
static int issue(const char *csr, size_t len)
{
	static char sentinel;
	char *pem = &sentinel; /* pem and na must stay as they are on failure */
	int64_t na = -1;
	int rc = x509_ca_issue_client(ca, csr, len, NODE_ID, LIFETIME_S, &pem, &na);

	if (rc == 0) {
		check_issued(pem, na);
		free(pem);
	} else if ((rc != ODX_EINVAL && rc != ODX_ENOMEM) || pem != &sentinel || na != -1) {
		abort();
	}
	return rc;
}

/* The two certificate helpers on pem[0..len). */
static void cert_helpers(const char *pem, size_t len)
{
	int64_t t = -1;
	char fp[66];

	memset(fp, 'X', sizeof(fp));
	int rt = x509_cert_pem_not_after(pem, len, &t);
	int rf = x509_cert_pem_fingerprint(pem, len, fp);
	if ((rt != 0 && rt != ODX_EINVAL && rt != ODX_ENOMEM) || (rt != 0 && t != -1))
		abort();
	if (rf == 0 ? !is_lower_hex(fp, 64) : rf != ODX_EINVAL && rf != ODX_ENOMEM)
		abort();
	if (rf != 0 && fp[0] != 'X')
		abort(); /* written on failure */
	if (rt == 0 && rf != 0)
		abort(); /* a certificate with a notAfter has a fingerprint */
}

/* der[0..n) as a PEM block of type name; caller frees *out. 0 or -1. */
static int pem_wrap(const char *name, const uint8_t *der, size_t n, char **out, size_t *outlen)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long l = 0;
	int rc = -1;

	if (b && n <= INPUT_MAX && PEM_write_bio(b, name, "", der, (long)n) > 0 &&
	    (l = BIO_get_mem_data(b, &p)) > 0 && (*out = malloc((size_t)l)) != NULL) {
		memcpy(*out, p, (size_t)l); /* exactly l bytes: no NUL, ASan sees overreads */
		*outlen = (size_t)l;
		rc = 0;
	}
	BIO_free(b);
	return rc;
}

static void der_mode(const uint8_t *der, size_t n)
{
	char *pem;
	size_t len;

	if (pem_wrap(PEM_STRING_X509_REQ, der, n, &pem, &len) == 0) {
		issue(pem, len);
		free(pem);
	}
	if (pem_wrap(PEM_STRING_X509, der, n, &pem, &len) == 0) {
		cert_helpers(pem, len);
		free(pem);
	}
}

/* The CSR in der, with its key replaced by keys[k] and signed with it, as PEM. */
static int resign(const uint8_t *der, size_t n, size_t k, char **out, size_t *outlen, long *version)
{
	const unsigned char *p = der;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)n);
	unsigned char *enc = NULL;
	int rc = -1;

	if (req && X509_REQ_set_pubkey(req, keys[k]) == 1 &&
	    X509_REQ_sign(req, keys[k], k == 1 ? NULL : EVP_sha256()) > 0) {
		int l = i2d_X509_REQ(req, &enc);
		if (l > 0 && pem_wrap(PEM_STRING_X509_REQ, enc, (size_t)l, out, outlen) == 0) {
			*version = X509_REQ_get_version(req);
			rc = 0;
		}
	}
	OPENSSL_free(enc);
	X509_REQ_free(req);
	ERR_clear_error();
	return rc;
}

static void resign_mode(const uint8_t *data, size_t size)
{
	char *pem;
	size_t len, k = data[0] % NKEYS;
	long version = -1;

	if (resign(data + 1, size - 1, k, &pem, &len, &version) < 0)
		return;
	bool want = k < 2 && version == X509_REQ_VERSION_1 && len <= X509_CSR_MAX;
	int rc = issue(pem, len);
	if ((rc == 0) != want && rc != ODX_ENOMEM)
		abort();
	free(pem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > INPUT_MAX)
		return 0;
	issue((const char *)data, size);
	cert_helpers((const char *)data, size);
	if (size > 1 && data[0] == 'D')
		der_mode(data + 1, size - 1);
	else if (size > 2 && data[0] == 'R')
		resign_mode(data + 1, size - 1);
	ERR_clear_error();
	return 0;
}
