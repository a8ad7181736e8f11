/*
 * apikey.h — API keys for automation.
 *
 * The key text is "odk_<32 hex id>_<64 hex secret>" (256-bit secret), shown
 * once at creation. Stored: the id, the SHA-256 of the secret (a random
 * 256-bit secret needs no slow hash), name, role, creator. The platform's
 * api_key_directory maps the id to its tenant; the key row lives in the
 * tenant's database. Audit "who" is the key id ("key_<32 hex>").
 */
#ifndef ODX_APIKEY_H
#define ODX_APIKEY_H

#include <jansson.h>
#include <stdint.h>

#include "authz/authz.h"
#include "crypto/random.h"
#include "store/store.h"

#define APIKEY_TEXT_LEN 102 /* "odk_" 32 "_" 64 + NUL */
#define APIKEY_NAME_MAX 64

struct apikey {
	char id[ID_MAX_LEN];
	char tenant_id[ID_MAX_LEN];
	char name[APIKEY_NAME_MAX + 1];
	enum role role;
	char created_by[ID_MAX_LEN];
	int64_t created_at;
	int64_t last_used_at; /* 0: never */
};

/* Creates a key; writes its one-time text. */
int apikey_create(struct store *s, const char *tenant_id, const char *name, enum role role,
		  const char *created_by, struct apikey *out, char text[static APIKEY_TEXT_LEN]);
/* Up to limit+1 keys with id > after, as JSON (never the secret). */
int apikey_list(struct store *s, const char *tenant_id, const char *after, int limit,
		json_t **items);
int apikey_delete(struct store *s, const char *tenant_id, const char *id);
/* Checks a presented key: 0 and *out, or ODX_EAUTH. */
int apikey_authenticate(struct store *s, const char *text, int64_t now_ns, struct apikey *out);
/* True when text has the shape of an API key (cheap; no lookup). */
int apikey_looks_like(const char *text);
json_t *apikey_to_json(const struct apikey *k);

#endif
