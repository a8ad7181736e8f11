/*
 * jsonx.h — the one way to read untrusted JSON and to write JSON replies.
 *
 * Decoding is strict: one JSON object, UTF-8 only (jansson refuses invalid
 * sequences and \u0000), duplicate keys refused, nesting at most
 * JSONX_MAX_DEPTH, and jsonx_unpack refuses keys the format does not name.
 * Error messages describe the problem, never echo the offending value.
 */
#ifndef ODX_JSONX_H
#define ODX_JSONX_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>

#define JSONX_MAX_DEPTH 16
#define JSONX_MSG_LEN	160

/*
 * Parses buf[0..len) as one JSON object. On success *out owns a reference.
 * On failure returns ODX_EINVAL and writes a reason into msg.
 */
int jsonx_parse_object(const char *buf, size_t len, json_t **out, char msg[static JSONX_MSG_LEN]);
/*
 * json_unpack_ex with JSON_STRICT (every key must be named; `?` marks
 * optional ones). Returns 0 or ODX_EINVAL with a reason in msg. Strings
 * unpacked with `s` point into obj and live as long as it does.
 */
int jsonx_unpack(json_t *obj, char msg[static JSONX_MSG_LEN], const char *fmt, ...);
/* jsonx_unpack taking a va_list. */
int jsonx_vunpack(json_t *obj, char msg[static JSONX_MSG_LEN], const char *fmt, va_list ap);
/* Compact dump; caller frees. NULL on allocation failure. */
char *jsonx_dump(const json_t *v);

#endif
