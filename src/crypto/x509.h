/*
 * x509.h — the internal certificate authority (OpenSSL X509).
 *
 * The CA is an ECDSA P-256 key with a self-signed certificate, kept in the
 * data directory's pki/ folder with the key at mode 0600. It issues the
 * control plane's TLS server certificate (and, later, agents' client
 * certificates from their CSRs).
 *
 * Files in pki/: ca.crt, ca.key, server.crt, server.key.
 */
#ifndef ODX_X509_H
#define ODX_X509_H

#include <openssl/evp.h>

/* Writes pkey as PKCS#8 PEM to path, created 0600 and renamed into place. */
int x509_write_private_key(EVP_PKEY *pkey, const char *path);
/*
 * Creates pki_dir (0700), the CA and a server certificate for localhost,
 * 127.0.0.1, ::1 and this host's name, each only if missing. Returns 0.
 */
int x509_ensure_pki(const char *pki_dir);
/* Writes the lowercase hex SHA-256 of the DER certificate at path into out[65]. */
int x509_cert_fingerprint(const char *path, char out[static 65]);

#endif
