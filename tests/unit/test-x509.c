/*
 * test-x509.c — the internal CA: files and modes, fingerprints, the server
 * chain, client certificates from P-256 and Ed25519 CSRs checked with
 * X509_verify_cert, refused CSRs, node ids and lifetimes, rotation with a
 * cross-signed CA (old-only and new-only verifiers, two rotations in a
 * row), finishing a rotation a crash interrupted, and a foreign CA.
 *
 * Each refused CSR is made from an accepted one by one change, and the
 * unchanged one is shown to be accepted first where that is not obvious.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/encoding.h"
#include "core/err.h"
#include "crypto/x509.h"
#include "tmpdir.h"

#define HOUR 3600

typedef STACK_OF(X509) cert_stack; /* a name clang-format reads as a type */

struct ctx {
	char dir[64];
	char pki[96];
	struct x509_ca *ca;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	if (tmpdir_make(c->dir, sizeof(c->dir), "x509") != 0)
		return -1;
	snprintf(c->pki, sizeof(c->pki), "%s/pki", c->dir);
	if (x509_ensure_pki(c->pki) != 0 || x509_ca_load(c->pki, &c->ca) != 0)
		return -1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	x509_ca_free(c->ca);
	tmpdir_remove(c->dir);
	free(c);
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static const char *pki_file(const struct ctx *c, const char *name)
{
	static char buf[4][160];
	static int next;
	char *p = buf[next++ % 4];
	snprintf(p, sizeof(buf[0]), "%s/%s", c->pki, name);
	return p;
}

static void reload(struct ctx *c)
{
	x509_ca_free(c->ca);
	c->ca = NULL;
	assert_int_equal(x509_ca_load(c->pki, &c->ca), 0);
}

static cert_stack *file_chain(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	cert_stack *sk = sk_X509_new_null();
	assert_non_null(sk);
	X509 *x;
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)))
		assert_true(sk_X509_push(sk, x) > 0);
	fclose(f);
	ERR_clear_error();
	return sk;
}

static X509 *file_cert(const char *path)
{
	cert_stack *sk = file_chain(path);
	assert_int_equal(sk_X509_num(sk), 1);
	X509 *x = sk_X509_pop(sk);
	sk_X509_free(sk);
	return x;
}

static X509 *pem_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	assert_non_null(b);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	assert_non_null(x);
	BIO_free(b);
	return x;
}

static void free_chain(cert_stack *sk)
{
	sk_X509_pop_free(sk, X509_free);
}

/* A store trusting a and, if not NULL, b. */
static X509_STORE *store_of(X509 *a, X509 *b)
{
	X509_STORE *st = X509_STORE_new();
	assert_non_null(st);
	assert_int_equal(X509_STORE_add_cert(st, a), 1);
	if (b)
		assert_int_equal(X509_STORE_add_cert(st, b), 1);
	return st;
}

/* X509_V_OK or the verification error; purpose 0 keeps the store's; at 0 is now. */
static int verify(X509 *leaf, cert_stack *untrusted, X509_STORE *st, int purpose, time_t at)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, untrusted), 1);
	if (purpose)
		assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
	if (at)
		X509_STORE_CTX_set_time(ctx, 0, at);
	int ok = X509_verify_cert(ctx);
	int err = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	if (ok == 1)
		return X509_V_OK;
	return err != X509_V_OK ? err : -1;
}

/* Verifies leaf against the CA's client store. */
static int verify_client(const struct x509_ca *ca, X509 *leaf)
{
	X509_STORE *st = NULL;
	assert_int_equal(x509_ca_client_store(ca, &st), 0);
	int rc = verify(leaf, NULL, st, 0, 0);
	X509_STORE_free(st);
	return rc;
}

static char *der_pem(const char *label, const unsigned char *der, long len)
{
	BIO *b = BIO_new(BIO_s_mem());
	assert_non_null(b);
	assert_true(PEM_write_bio(b, label, "", der, len) > 0);
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	char *s = strndup(data, (size_t)n);
	assert_non_null(s);
	BIO_free(b);
	return s;
}

/* A CSR for key; with_exts asks for CA:TRUE and a SAN (which the CA must ignore). */
static char *make_csr(EVP_PKEY *key, const char *cn, bool with_exts)
{
	X509_REQ *req = X509_REQ_new();
	assert_non_null(req);
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
						    MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
						    0),
			 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	if (with_exts) {
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		assert_non_null(exts);
		sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
								 "critical,CA:TRUE"));
		sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
								 "DNS:evil.example"));
		assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	bool eddsa = EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448");
	const EVP_MD *md = eddsa ? NULL : EVP_sha256();
	assert_true(X509_REQ_sign(req, key, md) > 0);
	unsigned char *der = NULL;
	int len = i2d_X509_REQ(req, &der);
	assert_true(len > 0);
	char *pem = der_pem("CERTIFICATE REQUEST", der, len);
	OPENSSL_free(der);
	X509_REQ_free(req);
	return pem;
}

/* The same CSR with one bit of its signature (the DER's last byte) flipped. */
static char *tamper_csr(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	assert_non_null(b);
	X509_REQ *req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	assert_non_null(req);
	unsigned char *der = NULL;
	int len = i2d_X509_REQ(req, &der);
	assert_true(len > 0);
	der[len - 1] ^= 0x01;
	char *out = der_pem("CERTIFICATE REQUEST", der, len);
	OPENSSL_free(der);
	X509_REQ_free(req);
	BIO_free(b);
	return out;
}

static char *key_csr(const char *type, const char *param)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, type, param);
	assert_non_null(key);
	char *pem = make_csr(key, "agent", false);
	EVP_PKEY_free(key);
	return pem;
}

/* Issues from csr; returns the parsed certificate, the PEM in *pem_out if wanted. */
static X509 *issue(const struct x509_ca *ca, const char *csr, const char *node, int64_t life,
		   int64_t *not_after, char **pem_out)
{
	char *pem = NULL;
	int64_t na = 0;
	assert_int_equal(x509_ca_issue_client(ca, csr, strlen(csr), node, life, &pem, &na), 0);
	assert_non_null(pem);
	assert_int_equal(ERR_peek_error(), 0);
	X509 *x = pem_cert(pem);
	if (not_after)
		*not_after = na;
	if (pem_out)
		*pem_out = pem;
	else
		free(pem);
	return x;
}

static X509 *issue_p256(const struct x509_ca *ca, const char *node)
{
	char *csr = key_csr("EC", "P-256");
	X509 *x = issue(ca, csr, node, HOUR, NULL, NULL);
	free(csr);
	return x;
}

/* Expects ODX_EINVAL, no output and a clean OpenSSL error queue. */
static void refused_len(const struct x509_ca *ca, const char *csr, size_t len, const char *node,
			int64_t life)
{
	char *pem = (char *)"untouched";
	int64_t na = 42;
	assert_int_equal(x509_ca_issue_client(ca, csr, len, node, life, &pem, &na), ODX_EINVAL);
	assert_string_equal(pem, "untouched");
	assert_int_equal(na, 42);
	assert_int_equal(ERR_peek_error(), 0);
}

static void refused(const struct x509_ca *ca, const char *csr, const char *node, int64_t life)
{
	refused_len(ca, csr, csr ? strlen(csr) : 0, node, life);
}

static char *cat(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 1;
	char *s = malloc(n);
	assert_non_null(s);
	snprintf(s, n, "%s%s", a, b);
	return s;
}

static mode_t file_mode(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void copy_file(const char *from, const char *to)
{
	char buf[16384];
	FILE *in = fopen(from, "rb");
	assert_non_null(in);
	size_t n = fread(buf, 1, sizeof(buf), in);
	assert_true(feof(in));
	fclose(in);
	FILE *out = fopen(to, "wb");
	assert_non_null(out);
	assert_int_equal(fwrite(buf, 1, n, out), n);
	assert_int_equal(fclose(out), 0);
}

static void fingerprint_of(const char *path, char out[65])
{
	assert_int_equal(x509_cert_fingerprint(path, out), 0);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static bool same_name(X509 *a, X509 *b)
{
	return X509_NAME_cmp(X509_get_subject_name(a), X509_get_subject_name(b)) == 0;
}

/* ---- files, fingerprints, the server certificate -------------------------- */

static void test_files_and_modes(void **state)
{
	struct ctx *c = *state;
	static const char *const names[] = {"ca.crt", "ca.key", "server.crt", "server.key"};
	assert_int_equal(file_mode(c->pki), 0700);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(file_mode(pki_file(c, names[i])), 0600);
	assert_false(exists(pki_file(c, "ca-prev.crt")));
	assert_false(exists(pki_file(c, "ca-cross.crt")));

	/* A second run changes nothing. */
	char ca1[65], srv1[65], ca2[65], srv2[65];
	fingerprint_of(pki_file(c, "ca.crt"), ca1);
	fingerprint_of(pki_file(c, "server.crt"), srv1);
	assert_int_equal(x509_ensure_pki(c->pki), 0);
	fingerprint_of(pki_file(c, "ca.crt"), ca2);
	fingerprint_of(pki_file(c, "server.crt"), srv2);
	assert_string_equal(ca1, ca2);
	assert_string_equal(srv1, srv2);

	/* The CA certificate: self-signed CA, unique CN "Odysseus internal CA <8 hex>". */
	X509 *ca = file_cert(pki_file(c, "ca.crt"));
	assert_int_equal(X509_check_ca(ca), 1);
	assert_int_equal(X509_check_issued(ca, ca), X509_V_OK);
	char cn[64];
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn,
					      sizeof(cn)) > 0);
	assert_int_equal(strlen(cn), strlen("Odysseus internal CA ") + 8);
	assert_int_equal(strncmp(cn, "Odysseus internal CA ", 21), 0);
	X509_free(ca);
}

static void test_fingerprint(void **state)
{
	struct ctx *c = *state;
	X509 *ca = file_cert(pki_file(c, "ca.crt"));
	unsigned char *der = NULL;
	int len = i2d_X509(ca, &der);
	assert_true(len > 0);
	uint8_t md[32];
	unsigned int mdlen = 0;
	assert_int_equal(EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL), 1);
	char want[65], got[65];
	hex_encode(md, 32, want);
	OPENSSL_free(der);
	X509_free(ca);

	fingerprint_of(pki_file(c, "ca.crt"), got);
	assert_string_equal(got, want);
	assert_int_equal(x509_ca_fingerprint(c->ca, got), 0);
	assert_string_equal(got, want);
	char *bundle = NULL;
	assert_int_equal(x509_ca_bundle_pem(c->ca, &bundle), 0);
	assert_int_equal(x509_cert_pem_fingerprint(bundle, strlen(bundle), got), 0);
	assert_string_equal(got, want);
	free(bundle);
}

static void test_server_chain(void **state)
{
	struct ctx *c = *state;
	cert_stack *chain = file_chain(pki_file(c, "server.crt"));
	X509 *ca = file_cert(pki_file(c, "ca.crt"));
	assert_int_equal(sk_X509_num(chain), 2);
	X509 *leaf = sk_X509_value(chain, 0);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 1), ca), 0);
	X509_STORE *st = store_of(ca, NULL);
	assert_int_equal(verify(leaf, chain, st, X509_PURPOSE_SSL_SERVER, 0), X509_V_OK);
	assert_int_equal(X509_check_host(leaf, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
	assert_int_equal(X509_check_ip_asc(leaf, "::1", 0), 1);
	assert_int_equal(X509_check_host(leaf, "evil.example", 0, 0, NULL), 0);
	/* The client store is for client certificates only: the server's is refused. */
	assert_int_equal(verify_client(c->ca, leaf), X509_V_ERR_INVALID_PURPOSE);

	FILE *f = fopen(pki_file(c, "server.key"), "r");
	assert_non_null(f);
	EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_int_equal(X509_check_private_key(leaf, key), 1);
	EVP_PKEY_free(key);

	/* An older server.crt (the leaf alone) is reissued with the chain. */
	f = fopen(pki_file(c, "server.crt"), "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, leaf), 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(x509_ensure_pki(c->pki), 0);
	cert_stack *again = file_chain(pki_file(c, "server.crt"));
	assert_int_equal(sk_X509_num(again), 2);
	assert_int_equal(file_mode(pki_file(c, "server.crt")), 0600);
	assert_int_equal(verify(sk_X509_value(again, 0), again, st, X509_PURPOSE_SSL_SERVER, 0),
			 X509_V_OK);
	free_chain(again);
	X509_STORE_free(st);
	X509_free(ca);
	free_chain(chain);
}

/* ---- issuing ---------------------------------------------------------------- */

/* The checks every issued client certificate must pass. */
static void check_client_cert(const struct ctx *c, X509 *x, const char *node, int64_t life,
			      int64_t not_after)
{
	char id[X509_NODE_ID_MAX + 1];
	assert_int_equal(x509_cert_node_id(x, id, sizeof(id)), 0);
	assert_string_equal(id, node);
	char o[32];
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationName, o,
					      sizeof(o)) > 0);
	assert_string_equal(o, "Odysseus");
	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 2);

	assert_int_equal(verify_client(c->ca, x), X509_V_OK);
	assert_int_equal(X509_check_ca(x), 0);
	uint32_t eku = X509_get_extended_key_usage(x);
	assert_true(eku & XKU_SSL_CLIENT);
	assert_false(eku & XKU_SSL_SERVER);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_non_null(X509_get0_subject_key_id(x));
	assert_non_null(X509_get0_authority_key_id(x));
	assert_null(X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL));
	int crit = -1;
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_false(bc->ca);
	BASIC_CONSTRAINTS_free(bc);

	/* Serial: positive, at most 127 bits. */
	BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	assert_non_null(serial);
	assert_false(BN_is_negative(serial));
	assert_true(BN_num_bits(serial) <= 127);
	BN_free(serial);

	/* Validity: now - 60 s .. now + life, and not_after reported as written. */
	int days = 0, secs = 0;
	assert_int_equal(
	    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
	assert_int_equal((int64_t)days * 86400 + secs, life + 60);
	int64_t now = (int64_t)time(NULL);
	assert_true(not_after >= now + life - 5 && not_after <= now + life);
	assert_int_equal(X509_cmp_time(X509_get0_notAfter(x), &(time_t){not_after - 1}), 1);
	assert_int_equal(X509_cmp_time(X509_get0_notAfter(x), &(time_t){not_after}), -1);

	/* Not a server certificate; expired after its lifetime. */
	X509 *ca = file_cert(pki_file(c, "ca.crt"));
	X509_STORE *st = store_of(ca, NULL);
	assert_int_equal(verify(x, NULL, st, X509_PURPOSE_SSL_CLIENT, 0), X509_V_OK);
	assert_int_equal(verify(x, NULL, st, X509_PURPOSE_SSL_SERVER, 0),
			 X509_V_ERR_INVALID_PURPOSE);
	X509_STORE_free(st);
	X509_free(ca);
	assert_int_equal(x509_ca_client_store(c->ca, &st), 0);
	assert_int_equal(verify(x, NULL, st, 0, (time_t)not_after + 120),
			 X509_V_ERR_CERT_HAS_EXPIRED);
	X509_STORE_free(st);
}

static void test_issue_p256(void **state)
{
	struct ctx *c = *state;
	char key_path[128];
	snprintf(key_path, sizeof(key_path), "%s/agent.key.new", c->dir);
	char *csr = NULL;
	assert_int_equal(x509_make_key_and_csr(key_path, &csr), 0);
	assert_int_equal(file_mode(key_path), 0600);

	int64_t na = 0;
	char *pem = NULL;
	X509 *x = issue(c->ca, csr, "nod_0123abcd-x", HOUR, &na, &pem);
	check_client_cert(c, x, "nod_0123abcd-x", HOUR, na);

	/* The certificate is for the key written at key_path. */
	FILE *f = fopen(key_path, "r");
	assert_non_null(f);
	EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_int_equal(X509_check_private_key(x, key), 1);
	char group[32];
	assert_int_equal(EVP_PKEY_get_group_name(key, group, sizeof(group), NULL), 1);
	assert_string_equal(group, "prime256v1");
	EVP_PKEY_free(key);

	/* The PEM helpers the agent uses. */
	int64_t na2 = 0;
	char fp[65], want[65];
	assert_int_equal(x509_cert_pem_not_after(pem, strlen(pem), &na2), 0);
	assert_int_equal(na2, na);
	assert_int_equal(x509_cert_pem_fingerprint(pem, strlen(pem), fp), 0);
	uint8_t md[32];
	unsigned int mdlen = 0;
	assert_int_equal(X509_digest(x, EVP_sha256(), md, &mdlen), 1);
	hex_encode(md, 32, want);
	assert_string_equal(fp, want);

	/* Two CSRs from the same function carry different keys. */
	char *csr2 = NULL;
	assert_int_equal(x509_make_key_and_csr(key_path, &csr2), 0);
	assert_string_not_equal(csr, csr2);
	free(csr2);
	free(pem);
	free(csr);
	X509_free(x);
}

static void test_issue_ed25519(void **state)
{
	struct ctx *c = *state;
	char *csr = key_csr("ED25519", NULL);
	int64_t na = 0;
	X509 *x = issue(c->ca, csr, "node-ed", 2 * HOUR, &na, NULL);
	check_client_cert(c, x, "node-ed", 2 * HOUR, na);
	assert_true(EVP_PKEY_is_a(X509_get0_pubkey(x), "ED25519"));
	X509_free(x);
	free(csr);
}

/* The CSR's subject and extensions are not copied: CA:TRUE and a SAN asked for, none given. */
static void test_csr_subject_and_extensions_ignored(void **state)
{
	struct ctx *c = *state;
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(key);
	char *csr = make_csr(key, "Odysseus internal CA", true);
	int64_t na = 0;
	X509 *x = issue(c->ca, csr, "n1", HOUR, &na, NULL);
	check_client_cert(c, x, "n1", HOUR, na);
	X509_free(x);
	free(csr);
	EVP_PKEY_free(key);
}

static void test_lifetime_and_node_id_bounds(void **state)
{
	struct ctx *c = *state;
	char *csr = key_csr("EC", "P-256");
	char id64[65], id65[66];
	memset(id64, 'a', 64);
	id64[64] = '\0';
	memset(id65, 'a', 65);
	id65[65] = '\0';

	int64_t na = 0;
	X509 *x = issue(c->ca, csr, id64, X509_CLIENT_LIFETIME_MIN_S, &na, NULL);
	check_client_cert(c, x, id64, X509_CLIENT_LIFETIME_MIN_S, na);
	X509_free(x);
	x = issue(c->ca, csr, "0", X509_CLIENT_LIFETIME_MAX_S, &na, NULL);
	check_client_cert(c, x, "0", X509_CLIENT_LIFETIME_MAX_S, na);
	X509_free(x);

	static const char *const bad[] = {"../x", "",	 "ABC", "Node",
					  "a b",  "a/b", "a.b", "n\xc3\xa9"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(c->ca, csr, bad[i], HOUR);
	refused(c->ca, csr, id65, HOUR);
	refused(c->ca, csr, NULL, HOUR);
	static const int64_t bad_life[] = {X509_CLIENT_LIFETIME_MIN_S - 1,
					   X509_CLIENT_LIFETIME_MAX_S + 1,
					   0,
					   -1,
					   INT64_MAX,
					   INT64_MIN};
	for (size_t i = 0; i < sizeof(bad_life) / sizeof(bad_life[0]); i++)
		refused(c->ca, csr, "node", bad_life[i]);
	free(csr);
}

/* An EC P-256 key with explicit curve parameters instead of the named curve. */
static char *explicit_p256_csr(void)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	assert_non_null(pc);
	assert_int_equal(EVP_PKEY_keygen_init(pc), 1);
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"P-256", 0),
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, (char *)"explicit", 0),
	    OSSL_PARAM_construct_end()};
	assert_int_equal(EVP_PKEY_CTX_set_params(pc, params), 1);
	EVP_PKEY *key = NULL;
	assert_int_equal(EVP_PKEY_generate(pc, &key), 1);
	EVP_PKEY_CTX_free(pc);
	char *csr = make_csr(key, "agent", false);
	EVP_PKEY_free(key);
	/* Make sure the test tests what it says: the CSR really carries explicit parameters. */
	BIO *b = BIO_new_mem_buf(csr, -1);
	X509_REQ *req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	assert_non_null(req);
	char enc[32];
	assert_int_equal(EVP_PKEY_get_utf8_string_param(X509_REQ_get0_pubkey(req),
							OSSL_PKEY_PARAM_EC_ENCODING, enc,
							sizeof(enc), NULL),
			 1);
	assert_string_equal(enc, "explicit");
	X509_REQ_free(req);
	BIO_free(b);
	return csr;
}

static void test_refused_keys(void **state)
{
	struct ctx *c = *state;
	char *rsa = NULL;
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	assert_non_null(key);
	rsa = make_csr(key, "agent", false);
	EVP_PKEY_free(key);
	refused(c->ca, rsa, "node", HOUR);
	free(rsa);

	static const char *const curves[] = {"P-384", "P-521", "secp256k1"};
	for (size_t i = 0; i < 3; i++) {
		char *csr = key_csr("EC", curves[i]);
		refused(c->ca, csr, "node", HOUR);
		free(csr);
	}
	char *x448 = key_csr("ED448", NULL);
	refused(c->ca, x448, "node", HOUR);
	free(x448);
	char *expl = explicit_p256_csr();
	refused(c->ca, expl, "node", HOUR);
	free(expl);
}

static void test_refused_csrs(void **state)
{
	struct ctx *c = *state;
	char *good = key_csr("EC", "P-256");
	size_t n = strlen(good);
	X509_free(issue(c->ca, good, "node", HOUR, NULL, NULL));

	/* Signature no longer matches (proof of possession fails), for both key types. */
	char *bad = tamper_csr(good);
	refused(c->ca, bad, "node", HOUR);
	free(bad);
	char *ed = key_csr("ED25519", NULL);
	bad = tamper_csr(ed);
	refused(c->ca, bad, "node", HOUR);
	free(bad);
	free(ed);

	refused(c->ca, "", "node", HOUR);
	refused_len(c->ca, NULL, 0, "node", HOUR);
	refused(c->ca, "garbage", "node", HOUR);
	refused(c->ca,
		"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
		"node", HOUR);
	refused_len(c->ca, good, n / 2, "node", HOUR); /* truncated */

	char *two = cat(good, good);
	refused(c->ca, two, "node", HOUR);
	free(two);
	char *trail = cat(good, "x");
	refused(c->ca, trail, "node", HOUR);
	free(trail);
	char *lead = cat("hello\n", good);
	refused(c->ca, lead, "node", HOUR);
	free(lead);
	char *nul = strdup(good);
	assert_non_null(nul);
	nul[n - 1] = '\0'; /* the final newline, now a NUL inside the given length */
	refused_len(c->ca, nul, n, "node", HOUR);
	free(nul);

	/* Whitespace around the block is fine, up to the size cap. */
	char *spaced = calloc(1, X509_CSR_MAX + 2);
	assert_non_null(spaced);
	memset(spaced, ' ', X509_CSR_MAX + 1);
	memcpy(spaced + 2, good, n);
	X509_free(issue(c->ca, spaced + 1, "node", HOUR, NULL, NULL)); /* exactly the cap */
	refused(c->ca, spaced, "node", HOUR);			       /* one byte over */
	free(spaced);

	/* A certificate is not a CSR. */
	char *cert_pem = NULL;
	int64_t na;
	assert_int_equal(x509_ca_issue_client(c->ca, good, n, "node", HOUR, &cert_pem, &na), 0);
	refused(c->ca, cert_pem, "node", HOUR);
	char *srv = cat(good, cert_pem);
	refused(c->ca, srv, "node", HOUR);
	free(srv);
	free(cert_pem);
	free(good);
}

static void test_cert_node_id(void **state)
{
	struct ctx *c = *state;
	X509 *x = issue_p256(c->ca, "abc");
	char small[3], ok[4];
	assert_int_equal(x509_cert_node_id(x, small, sizeof(small)), ODX_ETOOBIG);
	assert_int_equal(x509_cert_node_id(x, ok, sizeof(ok)), 0);
	assert_string_equal(ok, "abc");
	X509_free(x);

	char id[X509_NODE_ID_MAX + 1];
	X509 *ca = file_cert(pki_file(c, "ca.crt")); /* CN with spaces and capitals */
	assert_int_equal(x509_cert_node_id(ca, id, sizeof(id)), ODX_EINVAL);
	X509_free(ca);
	assert_int_equal(x509_cert_node_id(NULL, id, sizeof(id)), ODX_EINVAL);

	/* Two CNs, or none: refused. (Unsigned: x509_cert_node_id does not verify.) */
	X509 *two = X509_new();
	assert_non_null(two);
	X509_NAME *name = X509_get_subject_name(two);
	assert_int_equal(x509_cert_node_id(two, id, sizeof(id)), ODX_EINVAL);
	for (int i = 0; i < 2; i++)
		assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
							    (const unsigned char *)"abc", -1, -1,
							    0),
				 1);
	assert_int_equal(x509_cert_node_id(two, id, sizeof(id)), ODX_EINVAL);
	X509_free(two);
}

static void test_pem_helpers_refuse(void **state)
{
	(void)state;
	int64_t t = 7;
	char fp[65] = "";
	assert_int_equal(x509_cert_pem_not_after("garbage", 7, &t), ODX_EINVAL);
	assert_int_equal(x509_cert_pem_not_after("", 0, &t), ODX_EINVAL);
	assert_int_equal(x509_cert_pem_fingerprint("garbage", 7, fp), ODX_EINVAL);
	assert_int_equal(t, 7);
	assert_string_equal(fp, "");
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_foreign_ca(void **state)
{
	struct ctx *c = *state;
	char other[128];
	struct x509_ca *foreign = NULL;
	snprintf(other, sizeof(other), "%s/other-pki", c->dir);
	assert_int_equal(x509_ensure_pki(other), 0);
	assert_int_equal(x509_ca_load(other, &foreign), 0);
	X509 *x = issue_p256(foreign, "node");
	assert_int_equal(verify_client(foreign, x), X509_V_OK);
	assert_int_not_equal(verify_client(c->ca, x), X509_V_OK);
	X509_free(x);
	x509_ca_free(foreign);
}

/* ---- rotation ------------------------------------------------------------ */

struct gen {
	X509 *ca, *cross; /* cross is NULL for the first generation */
};

static struct gen current_gen(const struct ctx *c)
{
	struct gen g = {file_cert(pki_file(c, "ca.crt")), NULL};
	if (exists(pki_file(c, "ca-cross.crt")))
		g.cross = file_cert(pki_file(c, "ca-cross.crt"));
	return g;
}

static void gen_free(struct gen *g)
{
	X509_free(g->ca);
	X509_free(g->cross);
}

/* server.crt = [leaf, cross, CA]; verifies for one trusting only `trusted`. */
static int verify_server(const struct ctx *c, X509 *trusted)
{
	cert_stack *chain = file_chain(pki_file(c, "server.crt"));
	X509_STORE *st = store_of(trusted, NULL);
	int rc = verify(sk_X509_value(chain, 0), chain, st, X509_PURPOSE_SSL_SERVER, 0);
	X509_STORE_free(st);
	free_chain(chain);
	return rc;
}

static void check_cross(X509 *cross, X509 *newca, X509 *oldca)
{
	assert_true(same_name(cross, newca));
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(cross), X509_get_subject_name(oldca)),
			 0);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cross), X509_get0_pubkey(newca)), 1);
	assert_int_equal(X509_verify(cross, X509_get0_pubkey(oldca)), 1);
	assert_int_equal(X509_check_ca(cross), 1);
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(cross, NID_basic_constraints, NULL, NULL);
	assert_non_null(bc);
	assert_true(bc->ca);
	assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
	BASIC_CONSTRAINTS_free(bc);
	assert_true(X509_get_key_usage(cross) & KU_KEY_CERT_SIGN);
	assert_true(ASN1_TIME_compare(X509_get0_notAfter(cross), X509_get0_notAfter(oldca)) <= 0);
}

static void check_rotated_files(const struct ctx *c)
{
	static const char *const names[] = {"ca.crt",	   "ca.key",	   "ca-prev.crt",
					    "ca-prev.key", "ca-cross.crt", "server.crt",
					    "server.key"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_int_equal(file_mode(pki_file(c, names[i])), 0600);
	static const char *const staged[] = {"ca-next.crt", "ca-next.key", "ca-cross-next.crt",
					     "server-next.crt", "server-next.key"};
	for (size_t i = 0; i < sizeof(staged) / sizeof(staged[0]); i++)
		assert_false(exists(pki_file(c, staged[i])));
}

/* After a rotation from old to the current generation: every property the brief lists. */
static void check_rotation(struct ctx *c, const struct gen *old, X509 *old_leaf)
{
	struct gen now = current_gen(c);
	assert_non_null(now.cross);
	assert_false(same_name(now.ca, old->ca));
	check_cross(now.cross, now.ca, old->ca);
	check_rotated_files(c);
	X509 *prev = file_cert(pki_file(c, "ca-prev.crt"));
	assert_int_equal(X509_cmp(prev, old->ca), 0);
	X509_free(prev);

	/* The bundle: current then previous. */
	char *bundle = NULL;
	assert_int_equal(x509_ca_bundle_pem(c->ca, &bundle), 0);
	BIO *b = BIO_new_mem_buf(bundle, -1);
	assert_non_null(b);
	STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(b, NULL, NULL, NULL);
	assert_non_null(infos);
	BIO_free(b);
	assert_int_equal(sk_X509_INFO_num(infos), 2);
	assert_int_equal(X509_cmp(sk_X509_INFO_value(infos, 0)->x509, now.ca), 0);
	assert_int_equal(X509_cmp(sk_X509_INFO_value(infos, 1)->x509, old->ca), 0);
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	free(bundle);

	/* A client certificate from before the rotation still verifies; a new one does too. */
	assert_int_equal(verify_client(c->ca, old_leaf), X509_V_OK);
	X509 *leaf = issue_p256(c->ca, "after");
	assert_int_equal(verify_client(c->ca, leaf), X509_V_OK);

	/* Trusting only the old CA: the new leaf verifies through the cross certificate. */
	X509_STORE *old_only = store_of(old->ca, NULL);
	cert_stack *untrusted = sk_X509_new_null();
	assert_non_null(untrusted);
	assert_int_equal(verify(leaf, untrusted, old_only, X509_PURPOSE_SSL_CLIENT, 0),
			 X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	assert_true(sk_X509_push(untrusted, now.cross) > 0);
	assert_int_equal(verify(leaf, untrusted, old_only, X509_PURPOSE_SSL_CLIENT, 0), X509_V_OK);
	sk_X509_free(untrusted);
	X509_STORE_free(old_only);

	/* The server chain, for a client trusting only the old CA and only the new one. */
	assert_int_equal(verify_server(c, old->ca), X509_V_OK);
	assert_int_equal(verify_server(c, now.ca), X509_V_OK);
	cert_stack *chain = file_chain(pki_file(c, "server.crt"));
	assert_int_equal(sk_X509_num(chain), 3);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 1), now.cross), 0);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 2), now.ca), 0);
	free_chain(chain);

	char fp[65], want[65];
	assert_int_equal(x509_ca_fingerprint(c->ca, fp), 0);
	fingerprint_of(pki_file(c, "ca.crt"), want);
	assert_string_equal(fp, want);
	X509_free(leaf);
	gen_free(&now);
}

static void test_rotation(void **state)
{
	struct ctx *c = *state;
	struct gen g1 = current_gen(c);
	X509 *leaf1 = issue_p256(c->ca, "before");

	assert_int_equal(x509_ca_rotate(c->pki), 0);
	reload(c);
	check_rotation(c, &g1, leaf1);

	/* A second rotation: the first generation is gone, the second is prev. */
	struct gen g2 = current_gen(c);
	X509 *leaf2 = issue_p256(c->ca, "middle");
	assert_int_equal(x509_ca_rotate(c->pki), 0);
	reload(c);
	check_rotation(c, &g2, leaf2);
	assert_int_not_equal(verify_client(c->ca, leaf1), X509_V_OK);
	assert_int_not_equal(verify_server(c, g1.ca), X509_V_OK);
	struct gen g3 = current_gen(c);
	assert_false(same_name(g3.ca, g1.ca));

	/* ensure_pki after a rotation changes nothing. */
	char before[65], after[65];
	fingerprint_of(pki_file(c, "server.crt"), before);
	assert_int_equal(x509_ensure_pki(c->pki), 0);
	fingerprint_of(pki_file(c, "server.crt"), after);
	assert_string_equal(before, after);

	gen_free(&g3);
	gen_free(&g2);
	gen_free(&g1);
	X509_free(leaf2);
	X509_free(leaf1);
}

/* A crash before the commit mark: the staged files go, the CA stays. */
static void test_rotation_crash_before_commit(void **state)
{
	struct ctx *c = *state;
	char ca[65], again[65];
	fingerprint_of(pki_file(c, "ca.crt"), ca);
	copy_file(pki_file(c, "server.key"), pki_file(c, "ca-next.key"));
	copy_file(pki_file(c, "server.crt"), pki_file(c, "server-next.crt"));
	assert_int_equal(x509_ensure_pki(c->pki), 0);
	assert_false(exists(pki_file(c, "ca-next.key")));
	assert_false(exists(pki_file(c, "server-next.crt")));
	fingerprint_of(pki_file(c, "ca.crt"), again);
	assert_string_equal(ca, again);
	assert_false(exists(pki_file(c, "ca-prev.crt")));
}

/*
 * A crash right after the commit mark: rebuild that state from a finished
 * rotation (move the new files back to their -next names, the old CA back
 * to ca.*) and check that ensure_pki finishes the job identically.
 */
static void test_rotation_crash_after_commit(void **state)
{
	struct ctx *c = *state;
	struct gen g1 = current_gen(c);
	X509 *leaf1 = issue_p256(c->ca, "before");
	assert_int_equal(x509_ca_rotate(c->pki), 0);
	char ca2[65], got[65];
	fingerprint_of(pki_file(c, "ca.crt"), ca2);

	static const char *const moves[][2] = {
	    {"ca.crt", "ca-next.crt"},
	    {"ca.key", "ca-next.key"},
	    {"ca-cross.crt", "ca-cross-next.crt"},
	    {"server.crt", "server-next.crt"},
	    {"server.key", "server-next.key"},
	    {"ca-prev.crt", "ca.crt"},
	    {"ca-prev.key", "ca.key"},
	};
	for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++)
		assert_int_equal(rename(pki_file(c, moves[i][0]), pki_file(c, moves[i][1])), 0);
	assert_int_equal(x509_ensure_pki(c->pki), 0);
	fingerprint_of(pki_file(c, "ca.crt"), got);
	assert_string_equal(got, ca2);
	reload(c);
	check_rotation(c, &g1, leaf1);
	gen_free(&g1);
	X509_free(leaf1);
}

/*
 * A crash in the middle of the renames (prev copied, cross and server
 * moved, CA not yet): the loaded CA is still the old one, without the
 * leftovers that belong to the new one, and ensure_pki finishes the job.
 */
static void test_rotation_crash_mid_renames(void **state)
{
	struct ctx *c = *state;
	struct gen g1 = current_gen(c);
	X509 *leaf1 = issue_p256(c->ca, "before");
	char ca1[65], ca2[65], got[65];
	fingerprint_of(pki_file(c, "ca.crt"), ca1);
	assert_int_equal(x509_ca_rotate(c->pki), 0);
	fingerprint_of(pki_file(c, "ca.crt"), ca2);
	assert_int_equal(rename(pki_file(c, "ca.crt"), pki_file(c, "ca-next.crt")), 0);
	assert_int_equal(rename(pki_file(c, "ca.key"), pki_file(c, "ca-next.key")), 0);
	copy_file(pki_file(c, "ca-prev.crt"), pki_file(c, "ca.crt"));
	copy_file(pki_file(c, "ca-prev.key"), pki_file(c, "ca.key"));

	reload(c);
	assert_int_equal(x509_ca_fingerprint(c->ca, got), 0);
	assert_string_equal(got, ca1);
	char *bundle = NULL;
	assert_int_equal(x509_ca_bundle_pem(c->ca, &bundle), 0);
	assert_null(strstr(strstr(bundle, "-----END") + 1, "-----BEGIN")); /* one certificate */
	free(bundle);
	assert_int_equal(verify_client(c->ca, leaf1), X509_V_OK);

	assert_int_equal(x509_ensure_pki(c->pki), 0);
	fingerprint_of(pki_file(c, "ca.crt"), got);
	assert_string_equal(got, ca2);
	reload(c);
	check_rotation(c, &g1, leaf1);
	gen_free(&g1);
	X509_free(leaf1);
}

/* Between the last two renames ca.key is new and ca.crt old: the pair is ca.key + ca-next.crt. */
static void test_rotation_crash_between_key_and_cert(void **state)
{
	struct ctx *c = *state;
	struct gen g1 = current_gen(c);
	X509 *leaf1 = issue_p256(c->ca, "before");
	assert_int_equal(x509_ca_rotate(c->pki), 0);
	char ca2[65], got[65];
	fingerprint_of(pki_file(c, "ca.crt"), ca2);
	assert_int_equal(rename(pki_file(c, "ca.crt"), pki_file(c, "ca-next.crt")), 0);
	copy_file(pki_file(c, "ca-prev.crt"), pki_file(c, "ca.crt"));

	reload(c); /* usable as it stands */
	assert_int_equal(x509_ca_fingerprint(c->ca, got), 0);
	assert_string_equal(got, ca2);
	X509 *leaf = issue_p256(c->ca, "meanwhile");
	assert_int_equal(verify_client(c->ca, leaf), X509_V_OK);
	X509_free(leaf);

	assert_int_equal(x509_ensure_pki(c->pki), 0);
	fingerprint_of(pki_file(c, "ca.crt"), got);
	assert_string_equal(got, ca2);
	reload(c);
	check_rotation(c, &g1, leaf1);
	gen_free(&g1);
	X509_free(leaf1);
}

static void test_load_and_rotate_errors(void **state)
{
	struct ctx *c = *state;
	char empty[128];
	struct x509_ca *ca = NULL;
	snprintf(empty, sizeof(empty), "%s/empty", c->dir);
	assert_int_equal(x509_ca_rotate(empty), ODX_ENOTFOUND);
	assert_int_equal(mkdir(empty, 0700), 0);
	assert_int_equal(x509_ca_rotate(empty), ODX_ENOTFOUND);
	assert_int_equal(x509_ca_load(empty, &ca), -ENOENT);
	assert_null(ca);

	/* A ca.key that does not match ca.crt (and no ca-next.crt) is corrupt. */
	copy_file(pki_file(c, "server.key"), pki_file(c, "ca.key"));
	assert_int_equal(x509_ca_load(c->pki, &ca), ODX_ECORRUPT);
	assert_int_equal(x509_ensure_pki(c->pki), ODX_ECORRUPT);
	assert_int_equal(x509_ca_rotate(c->pki), ODX_ECORRUPT);
	assert_null(ca);
	assert_int_equal(ERR_peek_error(), 0);
}

/* ---- concurrency --------------------------------------------------------- */

struct worker {
	const struct x509_ca *ca;
	const char *csr;
	int failures;
};

static void *issue_many(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 20; i++) {
		char *pem = NULL;
		int64_t na;
		if (x509_ca_issue_client(w->ca, w->csr, strlen(w->csr), "node", HOUR, &pem, &na) !=
		    0)
			w->failures++;
		free(pem);
	}
	return NULL;
}

static void test_concurrent_issue(void **state)
{
	struct ctx *c = *state;
	char *csr = key_csr("EC", "P-256");
	pthread_t t[4];
	struct worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){c->ca, csr, 0};
		assert_int_equal(pthread_create(&t[i], NULL, issue_many, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
	}
	free(csr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_files_and_modes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fingerprint, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_issue_p256, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_issue_ed25519, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_csr_subject_and_extensions_ignored, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_lifetime_and_node_id_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_csrs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cert_node_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pem_helpers_refuse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_ca, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation_crash_before_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation_crash_after_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation_crash_mid_renames, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation_crash_between_key_and_cert, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_load_and_rotate_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_issue, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
