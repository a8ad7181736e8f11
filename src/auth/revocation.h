/*
 * revocation.h — access tokens of users whose role changed or who were
 * deleted stop working at once, not when they expire.
 *
 * Access tokens are verified without the store, so a change to a user is
 * recorded here: subject -> current role, or deleted. A token whose subject
 * has a record is accepted only if it carries the current role (so a
 * re-login after a role change works at once). Records older than an access
 * token's lifetime plus skew are dropped: no token they could refuse is
 * still valid. They are kept in the platform scope too (revoked_subjects),
 * so a restart does not forget them.
 */
#ifndef ODX_REVOCATION_H
#define ODX_REVOCATION_H

#include <stdbool.h>
#include <stdint.h>

#include "authz/authz.h"
#include "store/store.h"

struct revocation;

/* Loads the records still in force. */
int revocation_open(struct store *s, int64_t now_ns, struct revocation **out);
void revocation_free(struct revocation *r);
/* Records that subject now has role (ROLE_NONE: deleted); durable before it returns. */
int revocation_record(struct revocation *r, const char *subject, enum role role, int64_t now_ns);
/* False when a token for subject with token_role must be refused. */
bool revocation_allows(struct revocation *r, const char *subject, enum role token_role,
		       int64_t now_ns);

#endif
