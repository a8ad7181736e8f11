/*
 * pin.h — trust on first use, done right: find the control plane's CA by
 * the fingerprint in an enrollment token before sending it anything.
 *
 * The agent opens a TLS connection to host:port trusting nothing (OpenSSL
 * with verification off, SNI for a host name, ALPN "odysseus-enroll/1" so
 * that the server lets a client without a certificate in), takes the chain
 * the server sends, picks the certificate whose SHA-256(DER) is the
 * fingerprint, and verifies the server's certificate against a store
 * holding only that one, with the rest of the chain as untrusted
 * intermediates, purpose "SSL server" and the host name or IP address. It
 * then closes the connection without sending application data.
 */
#ifndef ODX_AGENT_PIN_H
#define ODX_AGENT_PIN_H

#include <stddef.h>

#define PIN_ALPN    "odysseus-enroll/1"
#define PIN_WHY_LEN 256

/*
 * Connects to host:port (host: a name, an IPv4 or an IPv6 literal without
 * brackets) within timeout_ms per step and pins the CA whose fingerprint
 * (64 lowercase hex) is given. On success *ca_pem is that CA certificate
 * as PEM (malloc'd; caller frees). Returns 0; ODX_EAUTH when the server is
 * not one the fingerprint vouches for (no certificate matches, or its
 * certificate does not verify against the one that does); ODX_EIO or
 * -errno when the connection or the handshake fails. why says what
 * happened, in words fit for the operator.
 */
int pin_fetch_ca(const char *host, const char *port, const char *fingerprint, int timeout_ms,
		 char **ca_pem, char why[static PIN_WHY_LEN]);

#endif
