/*
 * sign.h — Ed25519 keys: generate, load and save (PKCS#8 PEM, mode 0600),
 * sign and verify. One algorithm only: nothing here negotiates.
 */
#ifndef ODX_SIGN_H
#define ODX_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define SIGN_PUB_LEN 32
#define SIGN_SIG_LEN 64

struct sign_key;

/* New random key; caller frees with sign_key_free. */
int sign_key_generate(struct sign_key **out);
/* Loads a private key from a PEM file; refuses non-Ed25519 keys. */
int sign_key_load(const char *path, struct sign_key **out);
/* Writes the private key as PEM to path (created 0600, replaced atomically). */
int sign_key_save(const struct sign_key *key, const char *path);
void sign_key_free(struct sign_key *key);
/* Copies the raw 32-byte public key. */
int sign_key_public(const struct sign_key *key, uint8_t out[static SIGN_PUB_LEN]);
/* Signs msg; writes a 64-byte signature. */
int sign_message(const struct sign_key *key, const void *msg, size_t n,
		 uint8_t sig[static SIGN_SIG_LEN]);
/* Verifies sig over msg with a raw public key: 0 valid, ODX_EAUTH invalid. */
int sign_verify(const uint8_t pub[static SIGN_PUB_LEN], const void *msg, size_t n,
		const uint8_t *sig, size_t siglen);

#endif
