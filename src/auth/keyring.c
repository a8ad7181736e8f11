/* keyring.c — see keyring.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/keyring.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/hash.h"
#include "crypto/sign.h"

#define MAX_KEYS 16

struct key_entry {
	char kid[KID_LEN];
	int64_t created_at, retired_at; /* retired_at 0: not retired */
	uint8_t pub[SIGN_PUB_LEN];
	struct sign_key *priv; /* only the current key is loaded for signing */
};

/* An immutable snapshot; readers hold a reference while they use it. */
struct keyset {
	int refs;
	size_t n;
	size_t current;
	struct key_entry keys[MAX_KEYS];
};

struct keyring {
	char *dir;
	pthread_mutex_t lock;
	struct keyset *set;
	struct stat seen; /* of keyring.json at the last load */
};

static void path_of(char *out, size_t n, const char *dir, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static void jwt_dir(char *out, size_t n, const char *data_dir)
{
	snprintf(out, n, "%s/keys/jwt", data_dir);
}

static void keyset_free(struct keyset *ks)
{
	if (!ks)
		return;
	for (size_t i = 0; i < ks->n; i++)
		sign_key_free(ks->keys[i].priv);
	free(ks);
}

static int kid_of(const uint8_t pub[static SIGN_PUB_LEN], char kid[static KID_LEN])
{
	uint8_t h[SHA256_LEN];
	int rc = hash_sha256(pub, SIGN_PUB_LEN, h);
	if (rc == 0)
		b64url_encode(h, 12, kid);
	return rc;
}

/* Reads keyring.json into ks (public halves and metadata; private key of the current). */
static int read_index(const char *dir, struct keyset *ks, bool load_private)
{
	char path[4200];
	path_of(path, sizeof(path), dir, "keyring.json");
	json_error_t e;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
	if (!root)
		return errno == ENOENT ? ODX_ENOTFOUND : ODX_ECORRUPT;
	const char *current;
	json_t *keys;
	int rc = ODX_ECORRUPT;
	if (json_unpack_ex(root, &e, JSON_STRICT, "{s:s, s:o}", "current", &current, "keys",
			   &keys) != 0 ||
	    !json_is_array(keys) || json_array_size(keys) > MAX_KEYS)
		goto out;
	size_t i;
	json_t *k;
	ks->n = 0;
	ks->current = SIZE_MAX;
	json_array_foreach(keys, i, k)
	{
		struct key_entry *ke = &ks->keys[ks->n];
		const char *kid;
		json_int_t created, retired = 0;
		json_t *retired_v;
		if (json_unpack_ex(k, &e, JSON_STRICT, "{s:s, s:I, s:o}", "kid", &kid, "created_at",
				   &created, "retired_at", &retired_v) != 0 ||
		    strlen(kid) != KID_LEN - 1)
			goto out;
		if (json_is_integer(retired_v))
			retired = json_integer_value(retired_v);
		else if (!json_is_null(retired_v))
			goto out;
		memcpy(ke->kid, kid, KID_LEN);
		ke->created_at = created;
		ke->retired_at = retired;
		char pem[4200], name[64];
		snprintf(name, sizeof(name), "%s.pem", kid);
		path_of(pem, sizeof(pem), dir, name);
		struct sign_key *sk;
		rc = sign_key_load(pem, &sk);
		if (rc < 0)
			goto out;
		char check[KID_LEN];
		rc = sign_key_public(sk, ke->pub);
		if (rc == 0)
			rc = kid_of(ke->pub, check);
		if (rc == 0 && strcmp(check, kid) != 0)
			rc = ODX_ECORRUPT; /* a key file swapped under another name */
		bool is_current = strcmp(kid, current) == 0;
		if (rc == 0 && is_current && load_private)
			ke->priv = sk;
		else
			sign_key_free(sk);
		if (rc < 0)
			goto out;
		if (is_current)
			ks->current = ks->n;
		ks->n++;
	}
	rc = ks->current == SIZE_MAX ? ODX_ECORRUPT : 0;
out:
	json_decref(root);
	return rc;
}

static int write_index(const char *dir, const struct keyset *ks)
{
	json_t *keys = json_array();
	for (size_t i = 0; i < ks->n; i++) {
		const struct key_entry *k = &ks->keys[i];
		json_array_append_new(
		    keys, json_pack("{s:s, s:I, s:o}", "kid", k->kid, "created_at",
				    (json_int_t)k->created_at, "retired_at",
				    k->retired_at ? json_integer(k->retired_at) : json_null()));
	}
	json_t *root = json_pack("{s:s, s:o}", "current", ks->keys[ks->current].kid, "keys", keys);
	char path[4200], tmp[4300];
	path_of(path, sizeof(path), dir, "keyring.json");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int rc = root ? 0 : ODX_ENOMEM;
	if (rc == 0 && json_dump_file(root, tmp, JSON_INDENT(2)) != 0)
		rc = ODX_EIO;
	json_decref(root);
	if (rc == 0) {
		int fd = open(tmp, O_RDONLY);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
		if (rename(tmp, path) != 0)
			rc = -errno;
	}
	return rc;
}

/* Generates a key, saves its PEM and appends it to ks as the current key. */
static int add_new_key(const char *dir, struct keyset *ks, int64_t now, char kid[static KID_LEN])
{
	if (ks->n == MAX_KEYS)
		return ODX_ETOOBIG;
	struct sign_key *sk;
	int rc = sign_key_generate(&sk);
	if (rc < 0)
		return rc;
	struct key_entry *ke = &ks->keys[ks->n];
	memset(ke, 0, sizeof(*ke));
	rc = sign_key_public(sk, ke->pub);
	if (rc == 0)
		rc = kid_of(ke->pub, ke->kid);
	char pem[4200], name[64];
	snprintf(name, sizeof(name), "%s.pem", ke->kid);
	path_of(pem, sizeof(pem), dir, name);
	if (rc == 0)
		rc = sign_key_save(sk, pem);
	sign_key_free(sk);
	if (rc < 0)
		return rc;
	ke->created_at = now;
	if (ks->n > 0 && ks->current < ks->n)
		ks->keys[ks->current].retired_at = now;
	ks->current = ks->n++;
	memcpy(kid, ke->kid, KID_LEN);
	return 0;
}

static int ensure_dirs(const char *data_dir, char *dir, size_t n)
{
	char keys[4200];
	snprintf(keys, sizeof(keys), "%s/keys", data_dir);
	if (mkdir(keys, 0700) != 0 && errno != EEXIST)
		return -errno;
	jwt_dir(dir, n, data_dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int keyring_init_dir(const char *data_dir)
{
	char dir[4200];
	int rc = ensure_dirs(data_dir, dir, sizeof(dir));
	if (rc < 0)
		return rc;
	struct keyset *ks = calloc(1, sizeof(*ks));
	if (!ks)
		return ODX_ENOMEM;
	rc = read_index(dir, ks, false);
	if (rc == ODX_ENOTFOUND) {
		char kid[KID_LEN];
		ks->n = 0;
		rc = add_new_key(dir, ks, time_now_ns(), kid);
		if (rc == 0)
			rc = write_index(dir, ks);
	}
	keyset_free(ks);
	return rc;
}

int keyring_rotate(const char *data_dir, char kid[static KID_LEN])
{
	char dir[4200];
	int rc = ensure_dirs(data_dir, dir, sizeof(dir));
	struct keyset *ks = calloc(1, sizeof(*ks));
	if (!ks)
		return ODX_ENOMEM;
	if (rc == 0)
		rc = read_index(dir, ks, false);
	int64_t now = time_now_ns();
	if (rc == 0) {
		/* Drop keys past their grace: no token they signed can still be valid. */
		size_t w = 0;
		for (size_t i = 0; i < ks->n; i++) {
			struct key_entry *k = &ks->keys[i];
			if (k->retired_at && now - k->retired_at > KEYRING_RETIRED_GRACE_NS) {
				char pem[4200], name[64];
				snprintf(name, sizeof(name), "%s.pem", k->kid);
				path_of(pem, sizeof(pem), dir, name);
				unlink(pem);
				continue;
			}
			if (i == ks->current)
				ks->current = w;
			ks->keys[w++] = *k;
		}
		ks->n = w;
		rc = add_new_key(dir, ks, now, kid);
	}
	if (rc == 0)
		rc = write_index(dir, ks);
	keyset_free(ks);
	return rc;
}

static int load_set(struct keyring *kr)
{
	struct keyset *ks = calloc(1, sizeof(*ks));
	if (!ks)
		return ODX_ENOMEM;
	struct stat st;
	char path[4200];
	path_of(path, sizeof(path), kr->dir, "keyring.json");
	if (stat(path, &st) != 0) {
		free(ks);
		return -errno;
	}
	int rc = read_index(kr->dir, ks, true);
	if (rc < 0) {
		keyset_free(ks);
		return rc;
	}
	ks->refs = 1;
	pthread_mutex_lock(&kr->lock);
	struct keyset *old = kr->set;
	kr->set = ks;
	kr->seen = st;
	bool free_old = old && --old->refs == 0;
	pthread_mutex_unlock(&kr->lock);
	if (free_old)
		keyset_free(old);
	return 0;
}

int keyring_load(const char *data_dir, struct keyring **out)
{
	struct keyring *kr = calloc(1, sizeof(*kr));
	if (!kr)
		return ODX_ENOMEM;
	char dir[4200];
	jwt_dir(dir, sizeof(dir), data_dir);
	kr->dir = strdup(dir);
	pthread_mutex_init(&kr->lock, NULL);
	int rc = kr->dir ? load_set(kr) : ODX_ENOMEM;
	if (rc < 0) {
		keyring_free(kr);
		return rc;
	}
	*out = kr;
	return 0;
}

void keyring_free(struct keyring *kr)
{
	if (!kr)
		return;
	keyset_free(kr->set);
	pthread_mutex_destroy(&kr->lock);
	free(kr->dir);
	free(kr);
}

int keyring_reload_if_changed(struct keyring *kr)
{
	char path[4200];
	path_of(path, sizeof(path), kr->dir, "keyring.json");
	struct stat st;
	if (stat(path, &st) != 0)
		return -errno;
	pthread_mutex_lock(&kr->lock);
	/* Rotation renames a new file into place: the inode changes even when mtime's tick does
	 * not. */
	bool same = st.st_ino == kr->seen.st_ino && st.st_size == kr->seen.st_size &&
		    st.st_mtim.tv_sec == kr->seen.st_mtim.tv_sec &&
		    st.st_mtim.tv_nsec == kr->seen.st_mtim.tv_nsec;
	pthread_mutex_unlock(&kr->lock);
	return same ? 0 : load_set(kr);
}

static struct keyset *acquire(struct keyring *kr)
{
	pthread_mutex_lock(&kr->lock);
	struct keyset *ks = kr->set;
	ks->refs++;
	pthread_mutex_unlock(&kr->lock);
	return ks;
}

static void release(struct keyring *kr, struct keyset *ks)
{
	pthread_mutex_lock(&kr->lock);
	bool last = --ks->refs == 0;
	pthread_mutex_unlock(&kr->lock);
	if (last)
		keyset_free(ks);
}

int keyring_current_kid(struct keyring *kr, char kid[static KID_LEN])
{
	struct keyset *ks = acquire(kr);
	memcpy(kid, ks->keys[ks->current].kid, KID_LEN);
	release(kr, ks);
	return 0;
}

int keyring_sign(struct keyring *kr, const void *msg, size_t n, char kid[static KID_LEN],
		 uint8_t sig[static 64])
{
	struct keyset *ks = acquire(kr);
	const struct key_entry *k = &ks->keys[ks->current];
	int rc = k->priv ? sign_message(k->priv, msg, n, sig) : ODX_EINTERNAL;
	if (rc == 0)
		memcpy(kid, k->kid, KID_LEN);
	release(kr, ks);
	return rc;
}

static bool key_usable(const struct key_entry *k, int64_t now)
{
	return !k->retired_at || now - k->retired_at <= KEYRING_RETIRED_GRACE_NS;
}

int keyring_verify(struct keyring *kr, const char *kid, const void *msg, size_t n,
		   const uint8_t *sig, size_t siglen, int64_t now_ns)
{
	struct keyset *ks = acquire(kr);
	int rc = ODX_EAUTH;
	for (size_t i = 0; i < ks->n; i++) {
		const struct key_entry *k = &ks->keys[i];
		if (strcmp(k->kid, kid) == 0 && key_usable(k, now_ns)) {
			rc = sign_verify(k->pub, msg, n, sig, siglen);
			break;
		}
	}
	release(kr, ks);
	return rc;
}

json_t *keyring_jwks(struct keyring *kr, int64_t now_ns)
{
	json_t *keys = json_array();
	if (!keys)
		return NULL;
	struct keyset *ks = acquire(kr);
	for (size_t i = 0; i < ks->n; i++) {
		const struct key_entry *k = &ks->keys[i];
		if (!key_usable(k, now_ns))
			continue;
		char x[48];
		b64url_encode(k->pub, SIGN_PUB_LEN, x);
		json_array_append_new(keys, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty",
						      "OKP", "crv", "Ed25519", "x", x, "kid",
						      k->kid, "alg", "EdDSA", "use", "sig"));
	}
	release(kr, ks);
	return json_pack("{s:o}", "keys", keys);
}
