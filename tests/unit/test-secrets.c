/*
 * test-secrets.c — the secrets engine: AES-256-GCM against published
 * vectors, seal/open and what must not open, the KEK file and its checks,
 * KEK rotation (also after a crash midway), and the bytes on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/encoding.h"
#include "core/err.h"
#include "crypto/random.h"
#include "secrets/gcm.h"
#include "secrets/kek.h"
#include "secrets/keyring.h"
#include "secrets/seal.h"
#include "store/store.h"
#include "tmpdir.h"

struct ctx {
	char dir[64];  /* the data directory */
	char keys[64]; /* KEK files live here, outside it */
	char kek_a[128], kek_b[128], kek_c[128];
	struct store *s;
	char tenant[4][ID_MAX_LEN];
};

static void hex(const char *h, uint8_t *out, size_t n)
{
	assert_int_equal(strlen(h), 2 * n);
	assert_int_equal(hex_decode(h, n, out), 0);
}

static void add_tenant(struct ctx *c, char id[static ID_MAX_LEN])
{
	assert_int_equal(random_id("ten", id), 0);
	char name[64];
	snprintf(name, sizeof(name), "t-%.12s", id + 4);
	/* Rotation finds tenants in platform.db's directory, as tenancy/tenant.c makes them. */
	assert_int_equal(
	    store_write(c->s, NULL,
			"INSERT INTO tenants (id, name, created_at, quota_cpu_millicores,"
			" quota_memory_mb, quota_containers, quota_storage_mb)"
			" VALUES (?, ?, 0, 0, 0, 0, 0)",
			STORE_ARGS(S_TEXT(id), S_TEXT(name))),
	    1);
	assert_int_equal(store_tenant_create(c->s, id), 0);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c || tmpdir_make(c->dir, sizeof(c->dir), "secrets") != 0 ||
	    tmpdir_make(c->keys, sizeof(c->keys), "secrets-kek") != 0 ||
	    store_open(c->dir, &c->s) != 0)
		return -1;
	snprintf(c->kek_a, sizeof(c->kek_a), "%s/kek-a", c->keys);
	snprintf(c->kek_b, sizeof(c->kek_b), "%s/kek-b", c->keys);
	snprintf(c->kek_c, sizeof(c->kek_c), "%s/kek-c", c->keys);
	bool created;
	if (secrets_kek_init(c->kek_a, &created) != 0 || !created ||
	    secrets_kek_init(c->kek_b, NULL) != 0 || secrets_kek_init(c->kek_c, NULL) != 0)
		return -1;
	for (int i = 0; i < 4; i++)
		add_tenant(c, c->tenant[i]);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	store_free(c->s);
	tmpdir_remove(c->dir);
	tmpdir_remove(c->keys);
	free(c);
	return 0;
}

static int copy_text(struct store_stmt *st, void *ctx)
{
	store_col_copy(st, 0, ctx, SECRETS_KEK_ID_LEN);
	return 0;
}

static struct secrets_keyring *open_kr(struct ctx *c, const char *kek)
{
	struct secrets_keyring *kr = NULL;
	assert_int_equal(secrets_keyring_open(kek, c->s, &kr), 0);
	return kr;
}

/* ---- AES-256-GCM, McGrew & Viega, "The Galois/Counter Mode of Operation", test cases ---- */

static void test_gcm_case16(void **state)
{
	(void)state;
	uint8_t key[32], iv[12], aad[20], pt[60], want_ct[60], want_tag[16];
	hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", key, 32);
	hex("cafebabefacedbaddecaf888", iv, 12);
	hex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad, 20);
	hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
	    pt, 60);
	hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
	    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
	    want_ct, 60);
	hex("76fc6ece0f4e1768cddf8853bb2d551b", want_tag, 16);

	uint8_t ct[60], tag[16], back[60];
	assert_int_equal(secrets_gcm_encrypt(key, iv, aad, sizeof(aad), pt, 60, ct, tag), 0);
	assert_memory_equal(ct, want_ct, 60);
	assert_memory_equal(tag, want_tag, 16);
	assert_int_equal(secrets_gcm_decrypt(key, iv, aad, sizeof(aad), ct, 60, tag, back), 0);
	assert_memory_equal(back, pt, 60);

	/* One flipped bit of the tag or of the associated data: refused, output zeroed. */
	tag[15] ^= 1;
	assert_int_equal(secrets_gcm_decrypt(key, iv, aad, sizeof(aad), ct, 60, tag, back),
			 ODX_ECORRUPT);
	uint8_t zero[60] = {0};
	assert_memory_equal(back, zero, 60);
	tag[15] ^= 1;
	aad[0] ^= 0x80;
	assert_int_equal(secrets_gcm_decrypt(key, iv, aad, sizeof(aad), ct, 60, tag, back),
			 ODX_ECORRUPT);
}

static void test_gcm_cases13_14(void **state)
{
	(void)state;
	uint8_t key[32] = {0}, iv[12] = {0}, pt[16] = {0}, ct[16], tag[16], want[16];
	/* Test case 13: empty plaintext, no AAD. */
	assert_int_equal(secrets_gcm_encrypt(key, iv, NULL, 0, NULL, 0, NULL, tag), 0);
	hex("530f8afbc74536b9a963b4f1c4cb738b", want, 16);
	assert_memory_equal(tag, want, 16);
	/* Test case 14: one zero block. */
	assert_int_equal(secrets_gcm_encrypt(key, iv, NULL, 0, pt, 16, ct, tag), 0);
	hex("cea7403d4d606b6e074ec5d3baf39d18", want, 16);
	assert_memory_equal(ct, want, 16);
	hex("d0d1c8a799996bf0265b98b5d48ab919", want, 16);
	assert_memory_equal(tag, want, 16);
}

/* ---- seal / open ---- */

static const char value[] = "postgres://app:hunter2-9f3c1a@db.internal/app";

static void test_round_trip(void **state)
{
	struct ctx *c = *state;
	struct secrets_keyring *kr = open_kr(c, c->kek_a);
	uint8_t *blob, *blob2, *plain;
	size_t bloblen, bloblen2, n;
	assert_int_equal(
	    secrets_seal(kr, c->tenant[0], "db-url", 1, value, strlen(value), &blob, &bloblen), 0);
	assert_int_equal(bloblen, strlen(value) + SECRETS_SEAL_OVERHEAD);
	assert_int_equal(blob[0], 1);
	assert_int_equal(secrets_open(kr, c->tenant[0], "db-url", 1, blob, bloblen, &plain, &n), 0);
	assert_int_equal(n, strlen(value));
	assert_string_equal((char *)plain, value); /* NUL-terminated for text values */
	secrets_free_plain(plain);

	/* The same value sealed again: a fresh nonce, so another blob. */
	assert_int_equal(
	    secrets_seal(kr, c->tenant[0], "db-url", 1, value, strlen(value), &blob2, &bloblen2),
	    0);
	assert_int_equal(bloblen2, bloblen);
	assert_memory_not_equal(blob + 1, blob2 + 1, GCM_NONCE_LEN);
	free(blob2);

	/* An empty value is a value. */
	assert_int_equal(secrets_seal(kr, c->tenant[1], "empty", 7, "", 0, &blob2, &bloblen2), 0);
	assert_int_equal(secrets_open(kr, c->tenant[1], "empty", 7, blob2, bloblen2, &plain, &n),
			 0);
	assert_int_equal(n, 0);
	secrets_free_plain(plain);
	free(blob2);
	free(blob);
	secrets_free_plain(NULL);
	secrets_keyring_free(kr);
}

static void test_tamper_every_byte(void **state)
{
	struct ctx *c = *state;
	struct secrets_keyring *kr = open_kr(c, c->kek_a);
	uint8_t *blob, *plain = NULL;
	size_t bloblen, n;
	assert_int_equal(
	    secrets_seal(kr, c->tenant[0], "db-url", 3, value, strlen(value), &blob, &bloblen), 0);
	/* Format byte, nonce, ciphertext, tag: one flipped bit anywhere and it does not open. */
	for (size_t i = 0; i < bloblen; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			blob[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(
			    secrets_open(kr, c->tenant[0], "db-url", 3, blob, bloblen, &plain, &n),
			    ODX_ECORRUPT);
			assert_null(plain);
			blob[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* Cut short or lengthened. */
	assert_int_equal(secrets_open(kr, c->tenant[0], "db-url", 3, blob, bloblen - 1, &plain, &n),
			 ODX_ECORRUPT);
	assert_int_equal(secrets_open(kr, c->tenant[0], "db-url", 3, blob,
				      SECRETS_SEAL_OVERHEAD - 1, &plain, &n),
			 ODX_ECORRUPT);
	uint8_t *longer = malloc(bloblen + 1);
	assert_non_null(longer);
	memcpy(longer, blob, bloblen);
	longer[bloblen] = 0;
	assert_int_equal(
	    secrets_open(kr, c->tenant[0], "db-url", 3, longer, bloblen + 1, &plain, &n),
	    ODX_ECORRUPT);
	free(longer);
	/* Untouched, it still opens. */
	assert_int_equal(secrets_open(kr, c->tenant[0], "db-url", 3, blob, bloblen, &plain, &n), 0);
	secrets_free_plain(plain);
	free(blob);
	secrets_keyring_free(kr);
}

static void test_bound_to_tenant_name_version(void **state)
{
	struct ctx *c = *state;
	struct secrets_keyring *kr = open_kr(c, c->kek_a);
	uint8_t *blob, *plain = NULL;
	size_t bloblen, n;
	assert_int_equal(
	    secrets_seal(kr, c->tenant[0], "db-url", 5, value, strlen(value), &blob, &bloblen), 0);
	/* Same tenant (same data key): only the associated data differs. */
	assert_int_equal(secrets_open(kr, c->tenant[0], "db-urk", 5, blob, bloblen, &plain, &n),
			 ODX_ECORRUPT);
	assert_int_equal(secrets_open(kr, c->tenant[0], "db-url2", 5, blob, bloblen, &plain, &n),
			 ODX_ECORRUPT);
	assert_int_equal(secrets_open(kr, c->tenant[0], "db-url", 4, blob, bloblen, &plain, &n),
			 ODX_ECORRUPT);
	assert_int_equal(
	    secrets_open(kr, c->tenant[0], "db-url", 5 + (1ull << 32), blob, bloblen, &plain, &n),
	    ODX_ECORRUPT);
	/* Copied to another tenant. */
	assert_int_equal(secrets_open(kr, c->tenant[1], "db-url", 5, blob, bloblen, &plain, &n),
			 ODX_ECORRUPT);
	assert_null(plain);
	/* A tenant that never sealed anything has no key to open with, and gets none. */
	assert_int_equal(secrets_open(kr, c->tenant[3], "db-url", 5, blob, bloblen, &plain, &n),
			 ODX_ECORRUPT);
	char id[SECRETS_KEK_ID_LEN];
	assert_int_equal(store_read_one(c->s, c->tenant[3], "SELECT kek_id FROM secret_data_keys",
					STORE_NOARGS, copy_text, id),
			 ODX_ENOTFOUND);
	/* No such tenant, bad names. */
	assert_int_equal(secrets_open(kr, "ten_00000000000000000000000000000000", "db-url", 5, blob,
				      bloblen, &plain, &n),
			 ODX_ENOTFOUND);
	assert_int_equal(secrets_open(kr, c->tenant[0], "", 5, blob, bloblen, &plain, &n),
			 ODX_EINVAL);
	char longname[SECRETS_NAME_MAX + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(secrets_seal(kr, c->tenant[0], longname, 1, "x", 1, &blob, &bloblen),
			 ODX_EINVAL);
	free(blob);
	secrets_keyring_free(kr);
}

static void test_size_limit(void **state)
{
	struct ctx *c = *state;
	struct secrets_keyring *kr = open_kr(c, c->kek_a);
	uint8_t *big = malloc(SECRETS_VALUE_MAX + 1), *blob = NULL, *plain;
	size_t bloblen, n;
	assert_non_null(big);
	assert_int_equal(random_bytes(big, SECRETS_VALUE_MAX + 1), 0);
	assert_int_equal(
	    secrets_seal(kr, c->tenant[2], "cert", 1, big, SECRETS_VALUE_MAX + 1, &blob, &bloblen),
	    ODX_ETOOBIG);
	assert_null(blob);
	assert_int_equal(
	    secrets_seal(kr, c->tenant[2], "cert", 1, big, SECRETS_VALUE_MAX, &blob, &bloblen), 0);
	assert_int_equal(secrets_open(kr, c->tenant[2], "cert", 1, blob, bloblen, &plain, &n), 0);
	assert_int_equal(n, SECRETS_VALUE_MAX);
	assert_memory_equal(plain, big, n);
	secrets_free_plain(plain);
	/* A blob too long to hold a value is refused before anything else. */
	uint8_t *huge = calloc(1, SECRETS_VALUE_MAX + SECRETS_SEAL_OVERHEAD + 1);
	assert_non_null(huge);
	huge[0] = 1;
	assert_int_equal(secrets_open(kr, c->tenant[2], "cert", 1, huge,
				      SECRETS_VALUE_MAX + SECRETS_SEAL_OVERHEAD + 1, &plain, &n),
			 ODX_ECORRUPT);
	free(huge);
	free(blob);
	free(big);
	secrets_keyring_free(kr);
}

/* ---- the KEK ---- */

static void write_file(const char *path, const char *text, mode_t mode)
{
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void read_kek(const char *path, uint8_t key[static 32])
{
	char text[80] = {0};
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, text, sizeof(text)), 65);
	close(fd);
	assert_int_equal(text[64], '\n');
	assert_int_equal(hex_decode(text, 32, key), 0);
	explicit_bzero(text, sizeof(text));
}

static void test_kek_file(void **state)
{
	struct ctx *c = *state;
	struct stat st;
	assert_int_equal(stat(c->kek_a, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 65);

	/* init leaves an existing key alone. */
	char before[80] = {0}, after[80] = {0};
	int fd = open(c->kek_a, O_RDONLY);
	assert_int_equal(read(fd, before, sizeof(before)), 65);
	close(fd);
	bool created = true;
	assert_int_equal(secrets_kek_init(c->kek_a, &created), 0);
	assert_false(created);
	fd = open(c->kek_a, O_RDONLY);
	assert_int_equal(read(fd, after, sizeof(after)), 65);
	close(fd);
	assert_string_equal(before, after);

	struct secrets_keyring *kr = NULL;
	char path[160], good[66];
	snprintf(path, sizeof(path), "%s/other", c->keys);
	memcpy(good, before, 64);
	good[64] = '\0';
	const mode_t open_modes[] = {0644, 0640, 0604, 0660, 0601};
	for (size_t i = 0; i < sizeof(open_modes) / sizeof(open_modes[0]); i++) {
		write_file(path, good, open_modes[i]);
		assert_int_equal(secrets_keyring_open(path, c->s, &kr), ODX_EFORBIDDEN);
	}
	assert_string_equal(secrets_kek_strerror(ODX_EFORBIDDEN),
			    "the key-encryption key file must be a regular file of mode 0600 owned "
			    "by this user (or root)");
	/* Not 32 bytes, not hex, trailing junk. */
	write_file(path, "00112233", 0600);
	assert_int_equal(secrets_keyring_open(path, c->s, &kr), ODX_EINVAL);
	char bad[80];
	snprintf(bad, sizeof(bad), "%.63sg", good);
	write_file(path, bad, 0600);
	assert_int_equal(secrets_keyring_open(path, c->s, &kr), ODX_EINVAL);
	snprintf(bad, sizeof(bad), "%s ", good);
	write_file(path, bad, 0600);
	assert_int_equal(secrets_keyring_open(path, c->s, &kr), ODX_EINVAL);
	/* A symbolic link, a directory, nothing at all. */
	unlink(path);
	assert_int_equal(symlink(c->kek_a, path), 0);
	assert_int_equal(secrets_keyring_open(path, c->s, &kr), ODX_EFORBIDDEN);
	unlink(path);
	assert_int_equal(secrets_keyring_open(c->keys, c->s, &kr), ODX_EINVAL);
	assert_int_equal(secrets_keyring_open(path, c->s, &kr), -ENOENT);
	assert_null(kr);
	/* Without a newline it is fine; the store recorded nothing through all this. */
	char id[SECRETS_KEK_ID_LEN];
	assert_int_equal(secrets_kek_current_id(c->s, id), ODX_ENOTFOUND);
	write_file(path, good, 0600);
	kr = open_kr(c, path);
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
	if (rl.rlim_cur >= 64 * 1024) /* the keyring locks two pages */
		assert_true(secrets_keyring_locked(kr));
	char kid[SECRETS_KEK_ID_LEN];
	secrets_keyring_kek_id(kr, kid);
	assert_int_equal(strlen(kid), 16);
	assert_int_equal(secrets_kek_current_id(c->s, id), 0);
	assert_string_equal(id, kid);
	secrets_keyring_free(kr);

	/* The same key given at start. */
	uint8_t raw[32];
	assert_int_equal(hex_decode(good, 32, raw), 0);
	assert_int_equal(secrets_keyring_open_key(raw, c->s, &kr), 0);
	secrets_keyring_kek_id(kr, id);
	assert_string_equal(id, kid);
	secrets_keyring_free(kr);
	explicit_bzero(raw, sizeof(raw));
}

static void test_kek_outside(void **state)
{
	struct ctx *c = *state;
	char p[160];
	snprintf(p, sizeof(p), "%s/kek", c->dir);
	assert_int_equal(secrets_kek_outside(p, c->dir), ODX_EINVAL);
	snprintf(p, sizeof(p), "%s/tenants/../kek", c->dir);
	assert_int_equal(secrets_kek_outside(p, c->dir), ODX_EINVAL);
	assert_int_equal(secrets_kek_outside(c->dir, c->dir), ODX_EINVAL);
	assert_int_equal(secrets_kek_outside(c->kek_a, c->dir), 0);
	snprintf(p, sizeof(p), "%s-sibling/kek", c->dir); /* a prefix that is not a parent */
	assert_int_equal(secrets_kek_outside(p, c->dir), -ENOENT);
}

/* ---- a snapshot of the store's bytes (not the -shm index, which readers write) ---- */

static char *snap_buf;
static size_t snap_len;

static int snap_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)ftw;
	size_t pl = strlen(path);
	if (flag != FTW_F || (pl > 4 && strcmp(path + pl - 4, "-shm") == 0))
		return 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t add = pl + 1 + (size_t)sb->st_size;
	char *p = realloc(snap_buf, snap_len + add);
	if (!p) {
		fclose(f);
		return -1;
	}
	snap_buf = p;
	memcpy(snap_buf + snap_len, path, pl + 1);
	size_t got = fread(snap_buf + snap_len + pl + 1, 1, (size_t)sb->st_size, f);
	fclose(f);
	snap_len += pl + 1 + got;
	return 0;
}

static char *snapshot(const char *dir, size_t *n)
{
	snap_buf = NULL;
	snap_len = 0;
	assert_int_equal(nftw(dir, snap_entry, 16, FTW_PHYS), 0);
	*n = snap_len;
	return snap_buf;
}

static void test_wrong_kek(void **state)
{
	struct ctx *c = *state;
	struct secrets_keyring *kr = open_kr(c, c->kek_a);
	uint8_t *blob, *plain;
	size_t bloblen, n;
	assert_int_equal(
	    secrets_seal(kr, c->tenant[0], "db-url", 1, value, strlen(value), &blob, &bloblen), 0);
	secrets_keyring_free(kr);

	size_t n1, n2;
	char *before = snapshot(c->dir, &n1);
	kr = NULL;
	assert_int_equal(secrets_keyring_open(c->kek_b, c->s, &kr), ODX_EAUTH);
	assert_null(kr);
	assert_string_equal(secrets_kek_strerror(ODX_EAUTH),
			    "the key-encryption key does not open the data keys");
	uint8_t other[32];
	assert_int_equal(random_bytes(other, sizeof(other)), 0);
	assert_int_equal(secrets_keyring_open_key(other, c->s, &kr), ODX_EAUTH);
	char *after = snapshot(c->dir, &n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, n1);
	free(before);
	free(after);

	kr = open_kr(c, c->kek_a);
	assert_int_equal(secrets_open(kr, c->tenant[0], "db-url", 1, blob, bloblen, &plain, &n), 0);
	secrets_free_plain(plain);
	secrets_keyring_free(kr);
	free(blob);
}

/* ---- rotation ---- */

struct sealed {
	uint8_t *blob;
	size_t len;
};

static void seal_all(struct ctx *c, const char *kek, struct sealed out[4])
{
	struct secrets_keyring *kr = open_kr(c, kek);
	for (int i = 0; i < 4; i++) {
		char v[64];
		snprintf(v, sizeof(v), "value-of-%s", c->tenant[i]);
		assert_int_equal(secrets_seal(kr, c->tenant[i], "api-token", 2, v, strlen(v),
					      &out[i].blob, &out[i].len),
				 0);
	}
	secrets_keyring_free(kr);
}

static void open_all(struct ctx *c, const char *kek, struct sealed in[4])
{
	struct secrets_keyring *kr = open_kr(c, kek);
	for (int i = 0; i < 4; i++) {
		char v[64];
		snprintf(v, sizeof(v), "value-of-%s", c->tenant[i]);
		uint8_t *plain;
		size_t n;
		assert_int_equal(secrets_open(kr, c->tenant[i], "api-token", 2, in[i].blob,
					      in[i].len, &plain, &n),
				 0);
		assert_string_equal((char *)plain, v);
		secrets_free_plain(plain);
	}
	secrets_keyring_free(kr);
}

static void dek_kek_id(struct ctx *c, const char *tenant, char id[static SECRETS_KEK_ID_LEN])
{
	assert_int_equal(store_read_one(c->s, tenant,
					"SELECT kek_id FROM secret_data_keys WHERE generation = 1",
					STORE_NOARGS, copy_text, id),
			 0);
}

static void kek_id_of(struct ctx *c, const char *path, char id[static SECRETS_KEK_ID_LEN])
{
	/* A fresh store knows no KEK: opening records it, which is all we need here. */
	char dir[64];
	struct store *s;
	assert_int_equal(tmpdir_make(dir, sizeof(dir), "secrets-id"), 0);
	assert_int_equal(store_open(dir, &s), 0);
	struct secrets_keyring *kr;
	assert_int_equal(secrets_keyring_open(path, s, &kr), 0);
	secrets_keyring_kek_id(kr, id);
	secrets_keyring_free(kr);
	store_free(s);
	tmpdir_remove(dir);
	(void)c;
}

static void test_rotation(void **state)
{
	struct ctx *c = *state;
	struct sealed v[4];
	seal_all(c, c->kek_a, v);
	char a[SECRETS_KEK_ID_LEN], b[SECRETS_KEK_ID_LEN], id[SECRETS_KEK_ID_LEN];
	kek_id_of(c, c->kek_a, a);
	kek_id_of(c, c->kek_b, b);
	for (int i = 0; i < 4; i++) {
		dek_kek_id(c, c->tenant[i], id);
		assert_string_equal(id, a);
	}
	/* The wrong old key, the same key twice. */
	assert_int_equal(secrets_kek_rotate(c->kek_c, c->kek_b, c->s), ODX_EAUTH);
	assert_int_equal(secrets_kek_rotate(c->kek_a, c->kek_a, c->s), ODX_EINVAL);

	assert_int_equal(secrets_kek_rotate(c->kek_a, c->kek_b, c->s), 0);
	for (int i = 0; i < 4; i++) {
		dek_kek_id(c, c->tenant[i], id);
		assert_string_equal(id, b);
	}
	assert_int_equal(secrets_kek_current_id(c->s, id), 0);
	assert_string_equal(id, b);
	/* The old KEK is not needed any more: gone, and refused if offered. */
	struct secrets_keyring *kr;
	assert_int_equal(secrets_keyring_open(c->kek_a, c->s, &kr), ODX_EAUTH);
	assert_int_equal(unlink(c->kek_a), 0);
	open_all(c, c->kek_b, v);
	/* Values sealed after the rotation open too; running it again changes nothing. */
	for (int i = 0; i < 4; i++)
		free(v[i].blob);
	seal_all(c, c->kek_b, v);
	open_all(c, c->kek_b, v);
	assert_int_equal(secrets_kek_rotate(c->kek_a, c->kek_b, c->s), -ENOENT);
	for (int i = 0; i < 4; i++)
		free(v[i].blob);
}

static void test_rotation_crash(void **state)
{
	struct ctx *c = *state;
	struct sealed v[4];
	seal_all(c, c->kek_a, v);
	char a[SECRETS_KEK_ID_LEN], b[SECRETS_KEK_ID_LEN], id[SECRETS_KEK_ID_LEN];
	kek_id_of(c, c->kek_a, a);
	kek_id_of(c, c->kek_b, b);

	/* "Crash" after two tenants. */
	bool finished = true;
	assert_int_equal(secrets_kek_rotate_some(c->kek_a, c->kek_b, c->s, 2, &finished), 0);
	assert_false(finished);
	int on_a = 0, on_b = 0;
	for (int i = 0; i < 4; i++) {
		dek_kek_id(c, c->tenant[i], id);
		on_a += strcmp(id, a) == 0;
		on_b += strcmp(id, b) == 0;
	}
	assert_int_equal(on_a, 2);
	assert_int_equal(on_b, 2);
	/* Half done: the daemon refuses to start with either key, another rotation is refused. */
	struct secrets_keyring *kr;
	assert_int_equal(secrets_keyring_open(c->kek_a, c->s, &kr), ODX_ECONFLICT);
	assert_int_equal(secrets_keyring_open(c->kek_b, c->s, &kr), ODX_ECONFLICT);
	assert_int_equal(secrets_kek_rotate(c->kek_a, c->kek_c, c->s), ODX_ECONFLICT);
	assert_int_equal(secrets_kek_rotate(c->kek_b, c->kek_c, c->s), ODX_EAUTH);
	assert_non_null(strstr(secrets_kek_strerror(ODX_ECONFLICT), "unfinished"));

	/* Run again: it finishes what is left. */
	assert_int_equal(secrets_kek_rotate_some(c->kek_a, c->kek_b, c->s, SIZE_MAX, &finished), 0);
	assert_true(finished);
	for (int i = 0; i < 4; i++) {
		dek_kek_id(c, c->tenant[i], id);
		assert_string_equal(id, b);
	}
	assert_int_equal(secrets_kek_current_id(c->s, id), 0);
	assert_string_equal(id, b);
	open_all(c, c->kek_b, v);
	/* And onwards, B to C, in one go. */
	assert_int_equal(secrets_kek_rotate(c->kek_b, c->kek_c, c->s), 0);
	open_all(c, c->kek_c, v);
	for (int i = 0; i < 4; i++)
		free(v[i].blob);
}

/* ---- the bytes on disk ---- */

static bool dir_contains(const char *dir, const void *needle, size_t n)
{
	size_t len;
	char *all = snapshot(dir, &len);
	bool found = memmem(all, len, needle, n) != NULL;
	free(all);
	return found;
}

struct dek_row {
	char kek_id[SECRETS_KEK_ID_LEN];
	uint8_t w[61];
	size_t n;
};

static int dek_row_read(struct store_stmt *st, void *ctx)
{
	struct dek_row *r = ctx;
	store_col_copy(st, 0, r->kek_id, sizeof(r->kek_id));
	const void *w = store_col_blob(st, 1, &r->n);
	if (r->n == sizeof(r->w))
		memcpy(r->w, w, r->n);
	return 0;
}

/* Unwraps the tenant's data key the way docs/secrets.md says, without the engine. */
static void unwrap_by_hand(struct ctx *c, const char *kek_path, const char *tenant,
			   uint8_t dek[static 32])
{
	struct dek_row r;
	assert_int_equal(store_read_one(c->s, tenant,
					"SELECT kek_id, wrapped FROM secret_data_keys",
					STORE_NOARGS, dek_row_read, &r),
			 0);
	assert_int_equal(r.n, 61);
	assert_int_equal(r.w[0], 1);
	uint8_t kek[32], aad[128];
	read_kek(kek_path, kek);
	int aadlen =
	    snprintf((char *)aad, sizeof(aad), "odysseus-dek-v1%c%s%c%s", 0, tenant, 0, r.kek_id);
	assert_int_equal(
	    secrets_gcm_decrypt(kek, r.w + 1, aad, (size_t)aadlen, r.w + 13, 32, r.w + 45, dek), 0);
	explicit_bzero(kek, sizeof(kek));
}

static void test_no_plaintext_on_disk(void **state)
{
	struct ctx *c = *state;
	struct secrets_keyring *kr = open_kr(c, c->kek_a);
	uint8_t *blob;
	size_t bloblen;
	const char *name = "db-url";
	assert_int_equal(
	    secrets_seal(kr, c->tenant[0], name, 9, value, strlen(value), &blob, &bloblen), 0);
	secrets_keyring_free(kr);
	/* Kept the way the API will keep it: the blob in the tenant's database. */
	assert_true(store_write(c->s, c->tenant[0],
				"CREATE TABLE test_values (name TEXT, version INTEGER, blob BLOB)",
				STORE_NOARGS) >= 0);
	assert_int_equal(store_write(c->s, c->tenant[0], "INSERT INTO test_values VALUES (?, ?, ?)",
				     STORE_ARGS(S_TEXT(name), S_INT(9), S_BLOB(blob, bloblen))),
			 1);
	assert_true(dir_contains(c->dir, blob + 1, bloblen - 1)); /* the search does find things */

	uint8_t dek[32], kek[32];
	unwrap_by_hand(c, c->kek_a, c->tenant[0], dek);
	read_kek(c->kek_a, kek);
	char kek_hex[65];
	hex_encode(kek, 32, kek_hex);
	assert_false(dir_contains(c->dir, value, strlen(value)));
	assert_false(dir_contains(c->dir, "hunter2", 7));
	assert_false(dir_contains(c->dir, dek, 16));
	assert_false(dir_contains(c->dir, dek + 16, 16));
	assert_false(dir_contains(c->dir, kek, 16));
	assert_false(dir_contains(c->dir, kek_hex, 32));

	/* The documented blob format opens with that key by hand. */
	uint8_t aad[128], out[sizeof(value)];
	size_t tl = strlen(c->tenant[0]), off = 0;
	memcpy(aad, "odysseus-secret-v1", 19);
	off = 19;
	memcpy(aad + off, c->tenant[0], tl + 1);
	off += tl + 1;
	memcpy(aad + off, name, strlen(name) + 1);
	off += strlen(name) + 1;
	const uint8_t version[8] = {0, 0, 0, 0, 0, 0, 0, 9};
	memcpy(aad + off, version, 8);
	off += 8;
	size_t n = bloblen - SECRETS_SEAL_OVERHEAD;
	assert_int_equal(
	    secrets_gcm_decrypt(dek, blob + 1, aad, off, blob + 13, n, blob + 13 + n, out), 0);
	assert_memory_equal(out, value, n);
	explicit_bzero(dek, sizeof(dek));
	explicit_bzero(kek, sizeof(kek));
	free(blob);
}

/* ---- threads ---- */

struct worker {
	struct ctx *c;
	struct secrets_keyring *kr;
	int idx;
	int failures;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 200; i++) {
		const char *tenant = w->c->tenant[(w->idx + i) % 4];
		char v[32];
		snprintf(v, sizeof(v), "w%d-%d", w->idx, i);
		uint8_t *blob, *plain;
		size_t bloblen, n;
		if (w->idx == 0) { /* one thread keeps evicting keys, so the others reload them */
			secrets_keyring_forget(w->kr, tenant);
			continue;
		}
		if (secrets_seal(w->kr, tenant, "n", (uint64_t)i, v, strlen(v), &blob, &bloblen) !=
		    0) {
			w->failures++;
			continue;
		}
		if (secrets_open(w->kr, tenant, "n", (uint64_t)i, blob, bloblen, &plain, &n) != 0 ||
		    strcmp((char *)plain, v) != 0)
			w->failures++;
		else
			secrets_free_plain(plain);
		free(blob);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct ctx *c = *state;
	struct secrets_keyring *kr = open_kr(c, c->kek_a);
	pthread_t th[6];
	struct worker w[6];
	for (int i = 0; i < 6; i++) {
		w[i] = (struct worker){.c = c, .kr = kr, .idx = i};
		assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	secrets_keyring_free(kr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gcm_case16),
	    cmocka_unit_test(test_gcm_cases13_14),
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tamper_every_byte, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bound_to_tenant_name_version, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_size_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kek_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kek_outside, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_kek, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation_crash, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_plaintext_on_disk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
