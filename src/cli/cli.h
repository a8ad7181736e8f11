/*
 * cli.h — the pieces of the `odysseus` command-line client below its
 * commands: HTTP to the control plane (libcurl), the stored session
 * (credentials file, automatic token refresh), password input and output
 * (tables, JSON).
 *
 * Error convention: functions return 0 on success or a negative CLI_E* code.
 * The absolute value of a code is the process exit status (docs/cli.md), so
 * main() ends with `return cli_exit_status(rc)`. A function that returns an
 * error has already printed one line `odysseus: ...` to stderr: errors are
 * reported where they are understood, and callers only pass the code on.
 *
 * Secrets: tokens and passwords are never printed and never put in an error
 * message. Every heap block jansson and libcurl free is wiped first (see
 * cli_init), and our own copies are wiped with explicit_bzero.
 */
#ifndef ODX_CLI_H
#define ODX_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

enum cli_err {
	CLI_OK = 0,
	CLI_E_FAIL = -1,      /* anything else: local I/O, bad server answer */
	CLI_E_USAGE = -2,     /* bad command line or input */
	CLI_E_AUTH = -3,      /* not logged in, or 401 */
	CLI_E_FORBIDDEN = -4, /* 403 */
	CLI_E_NOTFOUND = -5,  /* 404 */
	CLI_E_CONFLICT = -6,  /* 409, including quota_exceeded */
	CLI_E_INVALID = -7,   /* 400, 413, 415, 422 */
	CLI_E_RATELIMIT = -8, /* 429 */
	CLI_E_CONNECT = -9,   /* cannot connect, TLS failure, timeout */
	CLI_E_SERVER = -10,   /* 5xx */
	CLI_E_INTEGRITY = -11, /* audit verification found tampering (the report says where) */
};

/* Longest password accepted from a terminal or stdin, in bytes. */
#define CLI_PASSWORD_MAX 4096
/* X-Request-Id is at most 128 characters (docs/api.md). */
#define CLI_REQUEST_ID_LEN 129

/* Maps a CLI_E* code (or 0) to the process exit status. */
int cli_exit_status(int rc);

/* Prints "odysseus: <formatted message>\n" to stderr. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Process-wide set-up: installs wiping allocators in jansson and libcurl and
 * initialises libcurl. Call once before anything else; cli_done at exit.
 */
int cli_init(void);
void cli_done(void);

/*
 * Copies s into out (size bytes) for a terminal: control characters become
 * '?', long text is cut on a character boundary.
 */
void cli_sanitize(const char *s, char *out, size_t size);

/* Wipes and frees a NUL-terminated string; accepts NULL. */
void cli_strfree(char *s);

/* ---- HTTP ------------------------------------------------------------- */

/* One answer from the server. body is NULL when the answer had none. */
struct cli_response {
	long status;
	json_t *body;
	char request_id[CLI_REQUEST_ID_LEN]; /* "" when the server sent none */
	long retry_after;		     /* seconds, -1 when absent */
};

/* Releases what a response holds and resets it; accepts a zeroed one. */
void cli_response_done(struct cli_response *resp);

/*
 * Checks a server URL: http:// or https://, no spaces or control characters.
 * On success *out is a copy without trailing slashes; caller frees.
 */
int cli_server_normalize(const char *url, char **out);

/*
 * Sends one request: method to server + path (path starts with "/"), with
 * "Authorization: Bearer token" when token is not NULL, and body (may be NULL)
 * as JSON. ca (may be NULL) is the only trusted CA when given. Returns 0 with
 * *resp filled for any HTTP status; CLI_E_CONNECT when no answer came.
 */
int cli_http_request(const char *server, const char *ca, const char *token, const char *method,
		     const char *path, const json_t *body, struct cli_response *resp);

/*
 * Returns 0 for a 2xx answer; otherwise prints
 * "odysseus: <message> (<code>, request id <id>)" and returns the CLI_E* code
 * for the status.
 */
int cli_response_check(const struct cli_response *resp);

/*
 * Percent-encodes s (everything but unreserved characters) for use as one
 * path segment or query value. Caller frees the result; NULL when out of
 * memory.
 */
char *cli_url_escape(const char *s);

/* ---- Session ---------------------------------------------------------- */

/*
 * The stored login, in $XDG_CONFIG_HOME/odysseus/credentials.json (default
 * ~/.config/odysseus/); the directory is 0700 and the file 0600.
 */
struct cli_session;

/*
 * Logs in with email and password at server (ca may be NULL) and stores the
 * session. Wipes password (which must be NUL-terminated) on every path.
 */
int cli_login(const char *server, const char *ca, const char *email, char *password);

/*
 * Opens the stored session. server and ca (either may be NULL) override the
 * stored ones; a server other than the stored one is refused (the tokens
 * belong to the stored one). Returns CLI_E_AUTH when not logged in.
 */
int cli_session_open(const char *server, const char *ca, struct cli_session **out);
void cli_session_free(struct cli_session *s);

/*
 * Sends an authenticated request. When the access token has expired, or the
 * server answers 401, the session is refreshed once (the new pair stored)
 * and the request retried once. Returns 0 with *resp filled for any status.
 */
int cli_session_request(struct cli_session *s, const char *method, const char *path,
			const json_t *body, struct cli_response *resp);

/*
 * cli_session_request + cli_response_check for an answer that is not JSON
 * (container logs): sends "Accept: text/plain, application/json"; on 2xx
 * *text is the body as it came plus a NUL (caller frees), *len its length;
 * an error answer (JSON) is reported like cli_session_call's.
 */
int cli_session_request_text(struct cli_session *s, const char *method, const char *path,
			     char **text, size_t *len);
/*
 * cli_session_request + cli_response_check. On success *out (may be NULL)
 * receives the body (a new reference, NULL when empty).
 */
int cli_session_call(struct cli_session *s, const char *method, const char *path,
		     const json_t *body, json_t **out);

/*
 * GETs every page of a list (path without query), following next_cursor.
 * On success *items is a new array of all items.
 */
int cli_session_list(struct cli_session *s, const char *path, json_t **items);

/*
 * cli_session_list, stopping after max items (0: no limit). path may carry
 * a query ("/v1/audit?action=auth."); limit and cursor are appended.
 */
int cli_session_list_max(struct cli_session *s, const char *path, size_t max, json_t **items);

/* The base URL of the session's server (no trailing slash); owned by s. */
const char *cli_session_server(const struct cli_session *s);

/*
 * Revokes the session on the server (POST /v1/auth/logout) and deletes the
 * credentials file, which goes even when the server cannot be reached.
 */
int cli_session_logout(struct cli_session *s);

/*
 * Where the credentials live; *path is a new string (caller frees). Returns
 * CLI_E_FAIL when no home directory is known.
 */
int cli_credentials_path(char **path);

/*
 * Small JSON state files next to the credentials (the audit keys and
 * checkpoints remembered per server). cli_state_load gives an empty object
 * when name does not exist, and refuses a file others could have written.
 * cli_state_save replaces it atomically, mode 0600, in the 0700 directory.
 */
int cli_state_load(const char *name, json_t **out);
int cli_state_save(const char *name, const json_t *v);

/* ---- Input ------------------------------------------------------------ */

/*
 * Reads a secret into buf (NUL-terminated, at most size - 1 bytes): the first
 * line of stdin when stdin is not a terminal, otherwise a prompt on the
 * terminal without echo, asked twice when confirm is set. Empty secrets are
 * refused. buf is wiped on failure.
 */
int cli_read_password(const char *prompt, bool confirm, char *buf, size_t size);

/*
 * Prompts on the terminal (stdin must be one) with echo and reads one
 * non-empty line into buf.
 */
int cli_prompt_line(const char *prompt, char *buf, size_t size);

/* ---- Output ----------------------------------------------------------- */

/* Prints v as indented JSON and a newline on stdout. */
int cli_print_json(const json_t *v);

/* How a column shows its value. */
enum cli_column_kind {
	CLI_COL_TEXT, /* strings as they are, numbers, "-" for null/absent */
	CLI_COL_TIME, /* RFC 3339 shortened to whole seconds */
};

/* One table column: its header and the dotted path of its value in an item. */
struct cli_column {
	const char *header;
	const char *path; /* "id", "quotas.cpu_cores" */
	enum cli_column_kind kind;
};

/*
 * Prints items (an array of objects, or one object) as a table with aligned
 * columns and a header line. Control characters in values are shown as "?".
 */
int cli_print_table(const struct cli_column *cols, size_t ncols, const json_t *items);

#endif
