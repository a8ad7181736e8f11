/*
 * keyring.h — the control plane's JWT signing keys (Ed25519).
 *
 * On disk, in <data>/keys/jwt/: one PEM file per key (<kid>.pem, 0600) and
 * keyring.json: {"current": kid, "keys": [{"kid", "created_at", "retired_at"}]}
 * with times in ns. Rotation makes a new key current and retires the old
 * one, which keeps verifying (and stays in the JWKS) for the access-token
 * lifetime plus clock skew, so no issued token breaks. kid is the base64url
 * of the first 12 bytes of SHA-256 over the raw public key.
 *
 * A loaded keyring is safe to share between threads; keyring_reload swaps
 * in what is on disk (odysseusd checks the file's mtime every few seconds).
 */
#ifndef ODX_KEYRING_H
#define ODX_KEYRING_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define KID_LEN			 17 /* 16 chars + NUL */
#define KEYRING_RETIRED_GRACE_NS ((int64_t)(900 + 120) * 1000000000LL)

struct keyring;

/* Creates the directory and a first key when there is none. */
int keyring_init_dir(const char *data_dir);
/* Adds a new current key and retires the previous one; writes its kid. */
int keyring_rotate(const char *data_dir, char kid[static KID_LEN]);
/* Loads the keyring; caller frees with keyring_free. */
int keyring_load(const char *data_dir, struct keyring **out);
void keyring_free(struct keyring *kr);
/* Re-reads the keyring when keyring.json changed since the last load. */
int keyring_reload_if_changed(struct keyring *kr);
/* Signs msg with the current key; writes its kid and the signature. */
int keyring_sign(struct keyring *kr, const void *msg, size_t n, char kid[static KID_LEN],
		 uint8_t sig[static 64]);
/* The kid of the current key. */
int keyring_current_kid(struct keyring *kr, char kid[static KID_LEN]);
/* Verifies with the key named kid: 0, ODX_EAUTH (bad signature or unknown/expired kid). */
int keyring_verify(struct keyring *kr, const char *kid, const void *msg, size_t n,
		   const uint8_t *sig, size_t siglen, int64_t now_ns);
/* A new JWKS document ({"keys": [...]}) of the keys that verify now. */
json_t *keyring_jwks(struct keyring *kr, int64_t now_ns);

#endif
