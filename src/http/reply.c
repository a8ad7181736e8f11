/* reply.c — see reply.h. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jsonx.h"
#include "http/reply.h"

void reply_stream_release(struct http_exchange *ex)
{
	if (ex->stream.release)
		ex->stream.release(ex->stream.state);
	memset(&ex->stream, 0, sizeof(ex->stream));
}

void reply_reset(struct http_exchange *ex)
{
	reply_stream_release(ex);
	/* Replies may carry secrets (an agent's bundle): not left in freed memory. */
	if (ex->resp_body)
		explicit_bzero(ex->resp_body, ex->resp_len);
	free(ex->resp_body);
	ex->resp_body = NULL;
	ex->resp_len = 0;
	ex->status = 0;
}

static void set_body(struct http_exchange *ex, int status, const char *type, char *body, size_t len)
{
	reply_reset(ex);
	ex->status = status;
	ex->resp_type = type;
	ex->resp_body = body;
	ex->resp_len = len;
}

void reply_json(struct http_exchange *ex, int status, json_t *body)
{
	char *text = NULL;
	if (body) {
		text = jsonx_dump(body);
		json_decref(body);
		if (!text) {
			reply_error(ex, 500, "internal", "out of memory");
			return;
		}
	}
	set_body(ex, status, "application/json", text, text ? strlen(text) : 0);
}

void reply_no_content(struct http_exchange *ex)
{
	set_body(ex, 204, NULL, NULL, 0);
}

void reply_stream(struct http_exchange *ex, int status, const char *type, struct http_stream stream)
{
	set_body(ex, status, type, NULL, 0);
	ex->stream = stream;
}

void reply_text(struct http_exchange *ex, int status, const char *type, const char *text,
		size_t len)
{
	char *copy = malloc(len + 1);
	if (!copy) {
		reply_error(ex, 500, "internal", "out of memory");
		return;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	set_body(ex, status, type, copy, len);
}

void reply_error(struct http_exchange *ex, int status, const char *code, const char *message)
{
	reply_error_details(ex, status, code, message, NULL);
}

void reply_error_details(struct http_exchange *ex, int status, const char *code,
			 const char *message, json_t *details)
{
	json_t *err = json_pack("{s:{s:s, s:s, s:s, s:o*}}", "error", "code", code, "message",
				message, "request_id", ex->request_id, "details", details);
	char *text = err ? jsonx_dump(err) : NULL;
	json_decref(err);
	set_body(ex, status, "application/json", text, text ? strlen(text) : 0);
	ex->error_code = code;
	if (status == 401)
		ex->www_authenticate = true;
}

void reply_odx_error(struct http_exchange *ex, int rc, const char *message)
{
	static const struct {
		int rc, status;
		const char *code, *message;
	} map[] = {
	    {ODX_EINVAL, 400, "bad_request", "invalid request"},
	    {ODX_ETOOBIG, 413, "payload_too_large", "request too large"},
	    {ODX_EAUTH, 401, "unauthorized", "authentication required"},
	    {ODX_EREUSED, 401, "unauthorized", "authentication required"},
	    {ODX_EFORBIDDEN, 403, "forbidden", "not allowed"},
	    {ODX_ENOTFOUND, 404, "not_found", "not found"},
	    {ODX_ECONFLICT, 409, "conflict", "conflict"},
	    {ODX_EQUOTA, 409, "quota_exceeded", "quota exceeded"},
	    {ODX_ERATELIMIT, 429, "rate_limited", "too many requests"},
	    {ODX_EUNAVAIL, 503, "unavailable", "service temporarily unavailable"},
	    {ODX_EBUSY, 503, "unavailable", "service busy, retry"},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (map[i].rc == rc) {
			reply_error(ex, map[i].status, map[i].code,
				    message ? message : map[i].message);
			return;
		}
	}
	/* Everything else is ours to fix; the client learns nothing of internals. */
	reply_error(ex, 500, "internal", "internal error");
}

bool reply_done(const struct http_exchange *ex)
{
	return ex->status != 0;
}
