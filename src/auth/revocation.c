/*
 * revocation.c — see revocation.h. Changes to users are rare, so the set is
 * a small array behind a mutex, and an empty set costs one atomic load.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "auth/revocation.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/random.h"

#define KEEP_NS ((int64_t)(JWT_LIFETIME_S + 2 * JWT_SKEW_S) * NSEC_PER_SEC)

struct record {
	char subject[ID_MAX_LEN];
	enum role role; /* ROLE_NONE: deleted */
	int64_t at;
};

struct revocation {
	struct store *store;
	pthread_mutex_t lock;
	atomic_size_t n;
	size_t cap;
	struct record *recs;
};

/* Drops records past their use and sets (or adds) subject's. Lock held. */
static int put_locked(struct revocation *r, const char *subject, enum role role, int64_t at,
		      int64_t now)
{
	size_t n = atomic_load(&r->n), w = 0;
	for (size_t i = 0; i < n; i++)
		if (now - r->recs[i].at <= KEEP_NS && strcmp(r->recs[i].subject, subject) != 0)
			r->recs[w++] = r->recs[i];
	if (w == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct record *p = realloc(r->recs, cap * sizeof(*p));
		if (!p) {
			atomic_store(&r->n, w);
			return ODX_ENOMEM;
		}
		r->recs = p;
		r->cap = cap;
	}
	struct record *rec = &r->recs[w++];
	snprintf(rec->subject, sizeof(rec->subject), "%s", subject);
	rec->role = role;
	rec->at = at;
	atomic_store(&r->n, w);
	return 0;
}

static int load_record(struct store_stmt *q, void *arg)
{
	struct revocation *r = arg;
	return put_locked(r, store_col_text(q, 0), role_parse(store_col_text(q, 1)),
			  store_col_int(q, 2), time_now_ns());
}

int revocation_open(struct store *s, int64_t now_ns, struct revocation **out)
{
	struct revocation *r = calloc(1, sizeof(*r));
	if (!r)
		return ODX_ENOMEM;
	r->store = s;
	pthread_mutex_init(&r->lock, NULL);
	int rc = store_read(
	    s, NULL,
	    "SELECT subject_id, role, changed_at FROM revoked_subjects WHERE changed_at > ?",
	    STORE_ARGS(S_INT(now_ns - KEEP_NS)), load_record, r);
	if (rc < 0)
		goto fail;
	*out = r;
	return 0;
fail:
	revocation_free(r);
	return rc;
}

void revocation_free(struct revocation *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r->recs);
	free(r);
}

int revocation_record(struct revocation *r, const char *subject, enum role role, int64_t now_ns)
{
	struct store_tx *tx;
	int rc = store_tx_begin(r->store, NULL, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = store_exec(tx, "DELETE FROM revoked_subjects WHERE changed_at <= ?",
			STORE_ARGS(S_INT(now_ns - KEEP_NS)));
	if (rc >= 0)
		rc = store_exec(
		    tx,
		    "INSERT INTO revoked_subjects (subject_id, role, changed_at) VALUES (?, ?, ?) "
		    "ON CONFLICT (subject_id) DO UPDATE SET role = excluded.role, "
		    "changed_at = excluded.changed_at",
		    STORE_ARGS(S_TEXT(subject), S_TEXT(role_name(role)), S_INT(now_ns)));
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	rc = store_tx_commit(tx);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&r->lock);
	rc = put_locked(r, subject, role, now_ns, now_ns);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

bool revocation_allows(struct revocation *r, const char *subject, enum role token_role,
		       int64_t now_ns)
{
	if (atomic_load(&r->n) == 0)
		return true;
	bool allowed = true;
	pthread_mutex_lock(&r->lock);
	size_t n = atomic_load(&r->n);
	for (size_t i = 0; i < n; i++) {
		const struct record *rec = &r->recs[i];
		if (now_ns - rec->at <= KEEP_NS && strcmp(rec->subject, subject) == 0) {
			allowed = rec->role != ROLE_NONE && rec->role == token_role;
			break;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return allowed;
}
