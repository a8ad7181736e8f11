/*
 * encoding.h — hex and base64url (RFC 4648 §5, no padding), and checked
 * integer parsing. Decoders are strict: they refuse padding, whitespace,
 * non-canonical trailing bits and characters outside the alphabet.
 */
#ifndef ODX_ENCODING_H
#define ODX_ENCODING_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2*n lowercase hex chars plus NUL into out (size >= 2*n+1). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly 2*n hex chars from in; returns 0 or ODX_EINVAL. */
int hex_decode(const char *in, size_t n, uint8_t *out);
/* Length of the base64url text for n bytes (without NUL). */
size_t b64url_encoded_len(size_t n);
/* Encodes n bytes; out needs b64url_encoded_len(n)+1 bytes; NUL-terminates. */
void b64url_encode(const uint8_t *in, size_t n, char *out);
/*
 * Decodes len chars of base64url into out (capacity cap); sets *outlen.
 * Returns 0, ODX_EINVAL for bad input or ODX_ETOOBIG when cap is too small.
 */
int b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *outlen);
/*
 * Parses a whole decimal string into [min, max]; no sign games, no
 * trailing bytes, no empty string. Returns 0 or ODX_EINVAL.
 */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/*
 * Checks a name of 1..max characters from [a-z0-9-], not starting with '-'
 * (tenant, permission-set, node and deployment names). Returns 0 or ODX_EINVAL.
 */
int name_validate(const char *s, size_t max);

#endif
