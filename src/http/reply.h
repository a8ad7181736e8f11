/*
 * reply.h — the one way to answer a request. Every error goes through
 * reply_error(): {"error": {"code", "message", "request_id"}} with the
 * status SPEC §10 gives the code. reply_odx_error() maps an ODX_E* code.
 */
#ifndef ODX_HTTP_REPLY_H
#define ODX_HTTP_REPLY_H

#include <jansson.h>

#include "http/server.h"

/* Answers status with body (consumed; NULL means an empty body). */
void reply_json(struct http_exchange *ex, int status, json_t *body);
/* Answers 204 No Content. */
void reply_no_content(struct http_exchange *ex);
/* Answers with a non-JSON body (copied). */
void reply_text(struct http_exchange *ex, int status, const char *type, const char *text,
		size_t len);
/*
 * Answers status with a body made by stream (see struct http_stream); the
 * exchange owns the stream from here, also when a later reply replaces it.
 */
void reply_stream(struct http_exchange *ex, int status, const char *type,
		  struct http_stream stream);
/* Answers an error; code names one of the SPEC §10 codes, message is shown to the client. */
void reply_error(struct http_exchange *ex, int status, const char *code, const char *message);
/* reply_error with "details" (consumed; NULL: none) in the error object, e.g. the findings
 * that blocked a deployment. */
void reply_error_details(struct http_exchange *ex, int status, const char *code,
			 const char *message, json_t *details);
/* Answers the error for an ODX_E* code with message (or a generic one when NULL). */
void reply_odx_error(struct http_exchange *ex, int rc, const char *message);
/* Drops the reply set so far (its body wiped: it may hold a secret) and its stream. */
void reply_reset(struct http_exchange *ex);
/* Drops a stream that was set but will not be sent (the server's cleanup). */
void reply_stream_release(struct http_exchange *ex);
/* True when a reply has been set. */
bool reply_done(const struct http_exchange *ex);

#endif
