/*
 * keyring.c — see keyring.h.
 *
 * The cache of unwrapped data keys is set-associative: a tenant id hashes
 * to one set of DEK_WAYS slots, filled round-robin. Keys live only in
 * mem (locked memory); the tenant ids naming the slots are not secret and
 * live in the struct. Locks: `lock` (read: a key is in use; write: a slot
 * is filled or cleared) and `gen_lock` (mem->scratch and data-key creation,
 * taken before a store transaction, never while `lock` is held).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/random.h"
#include "secrets/internal.h"

#define DEK_SETS  32
#define DEK_WAYS  4
#define DEK_SLOTS (DEK_SETS * DEK_WAYS)

struct keyring_mem {
	struct secrets_kek kek;
	uint8_t scratch[GCM_KEY_LEN]; /* a data key being created */
	uint8_t dek[DEK_SLOTS][GCM_KEY_LEN];
};

struct secrets_keyring {
	struct store *store;
	struct keyring_mem *mem;
	bool locked;
	pthread_rwlock_t lock;
	pthread_mutex_t gen_lock;
	char slot[DEK_SLOTS][SECRETS_TENANT_MAX + 1]; /* tenant id; "" when free */
	uint8_t hand[DEK_SETS];
};

/* A row of secret_data_keys as read. */
struct wrapped_row {
	char kek_id[SECRETS_KEK_ID_LEN];
	uint8_t w[SECRETS_WRAPPED_LEN];
};

static int keyring_new(struct store *s, struct secrets_keyring **out)
{
	struct secrets_keyring *kr = calloc(1, sizeof(*kr));
	if (!kr)
		return ODX_ENOMEM;
	kr->mem = secrets_locked_alloc(sizeof(*kr->mem), &kr->locked);
	if (!kr->mem) {
		free(kr);
		return ODX_ENOMEM;
	}
	kr->store = s;
	/* Writers first: a steady stream of seals must not starve a key being loaded. */
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&kr->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&kr->gen_lock, NULL);
	*out = kr;
	return 0;
}

void secrets_keyring_free(struct secrets_keyring *kr)
{
	if (!kr)
		return;
	secrets_locked_free(kr->mem, sizeof(*kr->mem));
	pthread_rwlock_destroy(&kr->lock);
	pthread_mutex_destroy(&kr->gen_lock);
	free(kr);
}

/* Checks the loaded KEK against platform.db; on success hands kr out, else frees it. */
static int keyring_finish(struct secrets_keyring *kr, int rc, struct secrets_keyring **out)
{
	if (rc == 0)
		rc = secrets_kek_verify(kr->store, &kr->mem->kek, true);
	if (rc < 0) {
		secrets_keyring_free(kr);
		return rc;
	}
	*out = kr;
	return 0;
}

int secrets_keyring_open(const char *kek_path, struct store *s, struct secrets_keyring **out)
{
	struct secrets_keyring *kr;
	int rc = keyring_new(s, &kr);
	if (rc < 0)
		return rc;
	return keyring_finish(kr, secrets_kek_load(kek_path, &kr->mem->kek), out);
}

int secrets_keyring_open_key(const uint8_t kek[static 32], struct store *s,
			     struct secrets_keyring **out)
{
	struct secrets_keyring *kr;
	int rc = keyring_new(s, &kr);
	if (rc < 0)
		return rc;
	return keyring_finish(kr, secrets_kek_set(kek, &kr->mem->kek), out);
}

bool secrets_keyring_locked(const struct secrets_keyring *kr)
{
	return kr->locked;
}

void secrets_keyring_kek_id(const struct secrets_keyring *kr, char id[static SECRETS_KEK_ID_LEN])
{
	memcpy(id, kr->mem->kek.id, SECRETS_KEK_ID_LEN);
}

/* FNV-1a: tenant ids are random already; this only spreads them over the sets. */
static size_t tenant_set(const char *tenant)
{
	uint32_t h = 2166136261u;
	for (const char *p = tenant; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h % DEK_SETS;
}

/* The slot holding tenant's key in its set, or -1; lock held (either way). */
static int slot_find(const struct secrets_keyring *kr, size_t set, const char *tenant)
{
	for (size_t w = 0; w < DEK_WAYS; w++) {
		size_t i = set * DEK_WAYS + w;
		if (strcmp(kr->slot[i], tenant) == 0)
			return (int)i;
	}
	return -1;
}

static int wrapped_read(struct store_stmt *st, void *ctx)
{
	struct wrapped_row *row = ctx;
	const char *id = store_col_text(st, 0);
	size_t n;
	const void *w = store_col_blob(st, 1, &n);
	if (!id || strlen(id) != SECRETS_KEK_ID_LEN - 1 || !w || n != SECRETS_WRAPPED_LEN)
		return ODX_ECORRUPT;
	memcpy(row->kek_id, id, SECRETS_KEK_ID_LEN);
	memcpy(row->w, w, SECRETS_WRAPPED_LEN);
	return 0;
}

#define DEK_SELECT "SELECT kek_id, wrapped FROM secret_data_keys WHERE generation = ?"

/*
 * Reads the tenant's wrapped key: 0, 1 when it has none yet, ODX_ENOTFOUND
 * when there is no such tenant. (A transaction of our own tells the two
 * apart: store_read_one says ODX_ENOTFOUND for both.)
 */
static int dek_read(struct secrets_keyring *kr, const char *tenant, struct wrapped_row *row)
{
	struct store_tx *tx;
	int rc = store_tx_begin(kr->store, tenant, STORE_READ, &tx);
	if (rc < 0)
		return rc;
	rc = store_each(tx, DEK_SELECT, STORE_ARGS(S_INT(SECRETS_DEK_GEN)), wrapped_read, row);
	store_tx_abort(tx);
	if (rc < 0)
		return rc;
	return rc == 0 ? 1 : 0;
}

/* Makes, wraps and stores a new data key in tx unless one is there; row receives it. */
static int dek_create_in(struct secrets_keyring *kr, struct store_tx *tx, const char *tenant,
			 struct wrapped_row *row)
{
	int rc = store_each(tx, DEK_SELECT, STORE_ARGS(S_INT(SECRETS_DEK_GEN)), wrapped_read, row);
	if (rc != 0)
		return rc < 0 ? rc : 1; /* another thread or process made it first */
	uint8_t *dek = kr->mem->scratch;
	rc = random_bytes(dek, GCM_KEY_LEN);
	if (rc == 0)
		rc = secrets_dek_wrap(&kr->mem->kek, tenant, dek, row->w);
	explicit_bzero(dek, GCM_KEY_LEN);
	memcpy(row->kek_id, kr->mem->kek.id, SECRETS_KEK_ID_LEN);
	int64_t now = time_now_ns();
	if (rc == 0)
		rc = store_exec(tx,
				"INSERT INTO secret_data_keys (generation, kek_id, wrapped, "
				"created_at, wrapped_at) VALUES (?, ?, ?, ?, ?)",
				STORE_ARGS(S_INT(SECRETS_DEK_GEN), S_TEXT(row->kek_id),
					   S_BLOB(row->w, sizeof(row->w)), S_INT(now), S_INT(now)));
	return rc < 0 ? rc : 0;
}

/* The tenant's first use: one creation at a time, inside the tenant's write lock. */
static int dek_create(struct secrets_keyring *kr, const char *tenant, struct wrapped_row *row)
{
	pthread_mutex_lock(&kr->gen_lock);
	struct store_tx *tx = NULL;
	int rc = store_tx_begin(kr->store, tenant, STORE_WRITE, &tx);
	if (rc == 0)
		rc = dek_create_in(kr, tx, tenant, row);
	if (rc == 0)
		rc = store_tx_commit(tx);
	else if (tx)
		store_tx_abort(tx);
	pthread_mutex_unlock(&kr->gen_lock);
	return rc < 0 ? rc : 0;
}

/* Reads (or creates) the tenant's wrapped key and unwraps it into a slot of its set. */
static int dek_load(struct secrets_keyring *kr, const char *tenant, bool create, size_t set)
{
	struct wrapped_row row;
	int rc = dek_read(kr, tenant, &row);
	/* No key in an existing tenant: its first seal makes one; an open cannot succeed. */
	if (rc == 1)
		rc = create ? dek_create(kr, tenant, &row) : ODX_ECORRUPT;
	if (rc < 0)
		return rc;
	if (strcmp(row.kek_id, kr->mem->kek.id) != 0)
		return ODX_ECORRUPT; /* e.g. a tenant database restored from before a rotation */
	pthread_rwlock_wrlock(&kr->lock);
	if (slot_find(kr, set, tenant) < 0) {
		size_t i = set * DEK_WAYS + kr->hand[set]++ % DEK_WAYS;
		kr->slot[i][0] = '\0';
		rc = secrets_dek_unwrap(&kr->mem->kek, tenant, row.w, sizeof(row.w),
					kr->mem->dek[i]);
		if (rc == 0)
			memcpy(kr->slot[i], tenant, strlen(tenant) + 1);
	}
	pthread_rwlock_unlock(&kr->lock);
	return rc;
}

int secrets_keyring_dek_acquire(struct secrets_keyring *kr, const char *tenant, bool create,
				const uint8_t **dek)
{
	size_t len = strlen(tenant);
	if (len == 0 || len > SECRETS_TENANT_MAX)
		return ODX_EINVAL;
	size_t set = tenant_set(tenant);
	/* Loaded keys can be evicted again before we look: a few rounds, then give up. */
	for (int round = 0; round < 4; round++) {
		pthread_rwlock_rdlock(&kr->lock);
		int i = slot_find(kr, set, tenant);
		if (i >= 0) {
			*dek = kr->mem->dek[i];
			return 0; /* still holding the read lock */
		}
		pthread_rwlock_unlock(&kr->lock);
		int rc = dek_load(kr, tenant, create, set);
		if (rc < 0)
			return rc;
	}
	return ODX_EBUSY;
}

void secrets_keyring_dek_release(struct secrets_keyring *kr)
{
	pthread_rwlock_unlock(&kr->lock);
}

void secrets_keyring_forget(struct secrets_keyring *kr, const char *tenant)
{
	if (strlen(tenant) > SECRETS_TENANT_MAX)
		return;
	pthread_rwlock_wrlock(&kr->lock);
	int i = slot_find(kr, tenant_set(tenant), tenant);
	if (i >= 0) {
		kr->slot[i][0] = '\0';
		explicit_bzero(kr->mem->dek[i], GCM_KEY_LEN);
	}
	pthread_rwlock_unlock(&kr->lock);
}
