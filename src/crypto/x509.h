/*
 * x509.h — the internal certificate authority (OpenSSL X509).
 *
 * The CA is an ECDSA P-256 key with a self-signed certificate, kept in the
 * data directory's pki/ folder with every file at mode 0600. It issues the
 * control plane's TLS server certificate and agents' short-lived client
 * certificates from their CSRs (mTLS on the agent API). It can be rotated
 * without breaking running agents: the new CA is cross-signed by the old
 * one, and the old one keeps being accepted for client certificates until
 * the next rotation. docs/pki.md describes the files and the procedure.
 *
 * Files in pki/: ca.crt, ca.key, server.crt (leaf + chain), server.key;
 * after a rotation also ca-prev.crt, ca-prev.key and ca-cross.crt.
 *
 * A loaded struct x509_ca is read-only: any number of threads may issue
 * and read from it at once.
 */
#ifndef ODX_X509_H
#define ODX_X509_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#define X509_NODE_ID_MAX	       64    /* node id: 1..64 of [a-z0-9_-] */
#define X509_CSR_MAX		       16384 /* bytes of CSR PEM accepted */
#define X509_CLIENT_LIFETIME_MIN_S     5     /* tests; production uses >= 60 */
#define X509_CLIENT_LIFETIME_MAX_S     (30 * 86400)
#define X509_CLIENT_LIFETIME_DEFAULT_S 86400

struct x509_ca;

/* Writes pkey as PKCS#8 PEM to path, created 0600 and renamed into place. */
int x509_write_private_key(EVP_PKEY *pkey, const char *path);
/*
 * Creates pki_dir (0700), the CA and a server certificate for localhost,
 * 127.0.0.1, ::1 and this host's name, each only if missing; finishes a
 * rotation that a crash interrupted; reissues server.crt when it is not
 * signed by the current CA or lacks the chain. Returns 0 or an error.
 */
int x509_ensure_pki(const char *pki_dir);
/* Writes the lowercase hex SHA-256 of the DER certificate at path into out[65]. */
int x509_cert_fingerprint(const char *path, char out[static 65]);

/*
 * Loads the CA from pki_dir: ca.crt + ca.key (required, must match), and
 * ca-prev.crt and ca-cross.crt when present. Returns 0 and a CA the caller
 * frees with x509_ca_free; -errno (e.g. -ENOENT) or ODX_ECORRUPT.
 */
int x509_ca_load(const char *pki_dir, struct x509_ca **out);
void x509_ca_free(struct x509_ca *ca);
/* Lowercase hex SHA-256 of the current CA certificate's DER into out[65]. */
int x509_ca_fingerprint(const struct x509_ca *ca, char out[static 65]);
/*
 * The CA certificates an agent must trust, as PEM: the current CA, then
 * the previous one if any. *out is malloc'd and NUL-terminated; caller frees.
 */
int x509_ca_bundle_pem(const struct x509_ca *ca, char **out);
/*
 * A new X509_STORE trusting the current and previous CA, with purpose
 * "SSL client", for verifying agents' client certificates (give it to
 * SSL_CTX_set1_verify_cert_store). Caller frees with X509_STORE_free.
 */
int x509_ca_client_store(const struct x509_ca *ca, X509_STORE **out);
/*
 * Issues a client certificate for the key in csr_pem (one PEM CSR of at
 * most X509_CSR_MAX bytes, EC P-256 or Ed25519, self-signature valid).
 * Subject O=Odysseus, CN=node_id; the CSR's subject and extensions are
 * ignored. Valid from now - 60 s to now + lifetime_s, lifetime_s within
 * [X509_CLIENT_LIFETIME_MIN_S, X509_CLIENT_LIFETIME_MAX_S]. On success
 * *cert_pem is malloc'd (caller frees) and *not_after_unix set. Returns 0,
 * ODX_EINVAL for a bad CSR, node id or lifetime, or another error.
 */
int x509_ca_issue_client(const struct x509_ca *ca, const char *csr_pem, size_t csr_len,
			 const char *node_id, int64_t lifetime_s, char **cert_pem,
			 int64_t *not_after_unix);
/*
 * Rotates the CA in pki_dir: a new CA becomes current, cross-signed by the
 * old one (ca-cross.crt); the old one becomes ca-prev (replacing any
 * earlier one); server.crt is reissued. Crash-safe (see x509.c). Returns 0,
 * ODX_ENOTFOUND when there is no CA, or another error.
 */
int x509_ca_rotate(const char *pki_dir);

/*
 * Copies a client certificate's subject CN, which must be a valid node id,
 * into out (n >= X509_NODE_ID_MAX + 1 suffices). Does not verify the
 * certificate: the TLS layer has. Returns 0, ODX_EINVAL or ODX_ETOOBIG.
 */
int x509_cert_node_id(const X509 *cert, char *out, size_t n);
/* notAfter of the first certificate in pem, in unix seconds. 0 or ODX_EINVAL. */
int x509_cert_pem_not_after(const char *pem, size_t len, int64_t *out);
/* Fingerprint (as x509_cert_fingerprint) of the first certificate in pem. */
int x509_cert_pem_fingerprint(const char *pem, size_t len, char out[static 65]);

/*
 * Agent side: makes a fresh P-256 key, writes it to key_path (0600,
 * atomic) and returns a CSR for it (CN "odysseus-agent") in *csr_pem,
 * malloc'd; caller frees. Write to a new path and rename over the old key
 * only once the certificate for it has arrived.
 */
int x509_make_key_and_csr(const char *key_path, char **csr_pem);

#endif
