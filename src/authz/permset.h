/*
 * permset.h — custom permission sets (SPEC §3): named lists of rules
 * {effect: allow|deny, method, path} assigned by a tenant Admin to users
 * and API keys.
 *
 * Path patterns are API paths whose segments may be `*` (exactly one
 * segment) or, as the last segment only, `**` (one or more segments).
 * Method is GET, POST, PUT, PATCH, DELETE or `*`.
 *
 * Decision order: an explicit deny in any of the subject's sets wins over
 * an explicit allow, which wins over the role matrix, which defaults to
 * deny. An allow never reaches past the tenant: platform routes ignore it.
 *
 * Stored in the tenant's database (permission_sets, permission_set_members).
 * Compiled rules are cached per thread and per subject; any change to sets
 * or assignments in this process bumps a generation that empties the caches.
 */
#ifndef ODX_PERMSET_H
#define ODX_PERMSET_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define PERMSET_NAME_MAX	64
#define PERMSET_PATH_MAX	256
#define PERMSET_MAX_RULES	100
#define PERMSET_MAX_PER_SUBJECT 16

enum permset_effect { PERMSET_NONE = 0, PERMSET_ALLOW, PERMSET_DENY };

struct permset_rule {
	enum permset_effect effect;
	const char *method; /* "GET" ... or "*" (static) */
	const char *path;   /* in the owning permset_rules' pools */
	const char *set;    /* the set the rule came from, likewise */
};

/*
 * A subject's rules, compiled, and the names of its sets (even those with
 * no rules). Strings live in one pool per set, so a subject costs its rules
 * and their text, nothing fixed-size.
 */
struct permset_rules {
	size_t n;
	struct permset_rule *rules;
	size_t nsets;
	const char *sets[PERMSET_MAX_PER_SUBJECT];
	size_t npools;
	char *pools[PERMSET_MAX_PER_SUBJECT + 1];
};

/* Names: 1-64 of [a-z0-9-], not starting with '-'. */
int permset_name_validate(const char *name);
/* Checks one path pattern; 0 or ODX_EINVAL. */
int permset_pattern_validate(const char *pattern);
/* True when path matches pattern. */
bool permset_path_match(const char *pattern, const char *path);
/*
 * Parses a JSON array of rules (strict: effect, method, path only) of the
 * set named `set`. Writes a reason into err (for the client) on ODX_EINVAL.
 * Free *out with permset_rules_done.
 */
int permset_rules_parse(json_t *rules, const char *set, struct permset_rules *out, char *err,
			size_t errlen);
void permset_rules_done(struct permset_rules *r);
/*
 * The decision of the rules for (method, path): PERMSET_DENY (any deny
 * matches), PERMSET_ALLOW, or PERMSET_NONE. *set names the deciding set.
 */
enum permset_effect permset_evaluate(const struct permset_rules *r, const char *method,
				     const char *path, const char **set);

/* Storage: all calls work in the tenant's scope. Lists return up to limit+1 items. */
int permset_list(struct store *s, const char *tenant_id, const char *after, int limit,
		 json_t **items);
int permset_get(struct store *s, const char *tenant_id, const char *name, json_t **out);
/* Creates (create=true; ODX_ECONFLICT if it exists) or replaces (ODX_ENOTFOUND if missing). */
int permset_put(struct store *s, const char *tenant_id, const char *name, json_t *rules,
		bool create, json_t **out);
int permset_delete(struct store *s, const char *tenant_id, const char *name);
/*
 * Replaces the sets assigned to subject (a user or API key id) with names.
 * ODX_ENOTFOUND (with *missing set) when a name is not a set of the tenant.
 */
int permset_assign(struct store *s, const char *tenant_id, const char *subject, json_t *names,
		   const char **missing);
/* Removes every assignment of subject (a deleted user or API key). */
int permset_forget(struct store *s, const char *tenant_id, const char *subject);
/*
 * The compiled rules of subject, from this thread's cache or the store.
 * The result stays valid until the next call on the same thread.
 */
int permset_rules_for(struct store *s, const char *tenant_id, const char *subject,
		      const struct permset_rules **out);
/* Empties every thread's cache (called by every write above). */
void permset_invalidate(void);

#endif
