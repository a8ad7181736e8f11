/*
 * log.h — JSON-lines logging to stderr for the daemons.
 *
 * One line per event: {"time":"<RFC 3339 ns>","level":"info","msg":"...",...}.
 * Callers pass only fields that are safe to log: never a password, token,
 * key, secret or request body. Library code logs at debug at most.
 */
#ifndef ODX_LOG_H
#define ODX_LOG_H

#include <jansson.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the lowest level written. */
void log_set_level(enum log_level level);
/* Parses "debug|info|warn|error"; returns 0 or ODX_EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
/* True when a message at `level` would be written. */
int log_enabled(enum log_level level);
/* Writes one line; consumes `fields` (a JSON object or NULL). */
void log_event(enum log_level level, const char *msg, json_t *fields);

#endif
