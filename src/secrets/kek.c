/*
 * kek.c — see kek.h: locked memory, the KEK file, its check value in
 * platform.db, and wrapping data keys (rotation is in rotate.c).
 *
 * A wrapped data key (SECRETS_WRAPPED_LEN = 61 bytes):
 *   0x01 | nonce (12) | AES-256-GCM(KEK, dek) (32) | tag (16)
 * with associated data "odysseus-dek-v1" 0x00 tenant-id 0x00 kek-id, so a
 * wrapped key copied to another tenant, or relabelled as wrapped by another
 * KEK, does not open.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/random.h"
#include "secrets/internal.h"

#define KEK_CHECK_LABEL "odysseus-kek-check-v1"
#define DEK_AAD_LABEL	"odysseus-dek-v1"

/* ---- locked memory ---- */

static size_t page_round(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	return (n + pg - 1) / pg * pg;
}

void *secrets_locked_alloc(size_t n, bool *locked)
{
	size_t len = page_round(n);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Best effort each: an old kernel without them still gets working keys. */
	madvise(p, len, MADV_DONTDUMP);
#ifdef MADV_WIPEONFORK
	madvise(p, len, MADV_WIPEONFORK); /* a forked helper never inherits the keys */
#endif
	/* EPERM/ENOMEM when RLIMIT_MEMLOCK is too small: the caller reports it. */
	*locked = mlock(p, len) == 0;
	return p;
}

void secrets_locked_free(void *p, size_t n)
{
	if (!p)
		return;
	size_t len = page_round(n);
	explicit_bzero(p, len);
	munlock(p, len);
	munmap(p, len);
}

/* ---- the KEK file ---- */

/* Refuses what is not a private regular file of the right size. */
static int kek_file_check(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return ODX_EINVAL;
	if ((st.st_mode & 077) != 0 || (st.st_uid != geteuid() && st.st_uid != 0))
		return ODX_EFORBIDDEN;
	if (st.st_size != SECRETS_KEK_HEX_LEN && st.st_size != SECRETS_KEK_HEX_LEN + 1)
		return ODX_EINVAL;
	return 0;
}

static int read_all(int fd, char *buf, size_t cap, size_t *n)
{
	size_t got = 0;
	while (got < cap) {
		ssize_t r = read(fd, buf + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*n = got;
	return 0;
}

int secrets_kek_set(const uint8_t key[static GCM_KEY_LEN], struct secrets_kek *k)
{
	if (k->key != key)
		memcpy(k->key, key, GCM_KEY_LEN);
	uint8_t h[SHA256_LEN];
	int rc = hash_sha256(k->key, GCM_KEY_LEN, h);
	if (rc == 0)
		hex_encode(h, 8, k->id);
	explicit_bzero(h, sizeof(h));
	return rc;
}

/* Parses the n bytes of k->text: 64 hex digits, then an optional newline. */
static int kek_parse(struct secrets_kek *k, size_t n)
{
	if (n != SECRETS_KEK_HEX_LEN && !(n == SECRETS_KEK_HEX_LEN + 1 && k->text[n - 1] == '\n'))
		return ODX_EINVAL;
	int rc = hex_decode(k->text, GCM_KEY_LEN, k->key);
	if (rc == 0)
		rc = secrets_kek_set(k->key, k);
	return rc;
}

int secrets_kek_load(const char *path, struct secrets_kek *k)
{
	/* O_NOFOLLOW: the mode checked must be the key file's, not a link's target's. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return errno == ELOOP ? ODX_EFORBIDDEN : -errno;
	size_t n = 0;
	int rc = kek_file_check(fd);
	if (rc == 0)
		rc = read_all(fd, k->text, sizeof(k->text), &n);
	close(fd);
	if (rc == 0)
		rc = kek_parse(k, n);
	explicit_bzero(k->text, sizeof(k->text));
	if (rc < 0)
		explicit_bzero(k->key, sizeof(k->key));
	return rc;
}

static int write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

static void fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Writes a fresh key as hex into the new file fd; the key exists only in locked memory. */
static int kek_write_new(int fd)
{
	bool locked;
	struct secrets_kek *k = secrets_locked_alloc(sizeof(*k), &locked);
	if (!k)
		return ODX_ENOMEM;
	int rc = random_bytes(k->key, GCM_KEY_LEN);
	if (rc == 0) {
		hex_encode(k->key, GCM_KEY_LEN, k->text);
		k->text[SECRETS_KEK_HEX_LEN] = '\n';
		rc = write_all(fd, k->text, SECRETS_KEK_HEX_LEN + 1);
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	secrets_locked_free(k, sizeof(*k));
	return rc;
}

int secrets_kek_init(const char *path, bool *created)
{
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (created)
			*created = false;
		return 0;
	}
	if (errno != ENOENT)
		return -errno;
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	/* mkostemp: O_EXCL and mode 0600 whatever the umask says beyond it. */
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fchmod(fd, 0600) == 0 ? 0 : -errno;
	if (rc == 0)
		rc = kek_write_new(fd);
	close(fd);
	/* link, not rename: it fails on an existing file, so a racing init never replaces
	 * a key that another one already put in place (and maybe used). */
	bool mine = false;
	if (rc == 0 && link(tmp, path) == 0)
		mine = true;
	else if (rc == 0 && errno != EEXIST)
		rc = -errno;
	unlink(tmp);
	if (rc < 0)
		return rc;
	fsync_parent(path);
	if (created)
		*created = mine;
	return 0;
}

/* realpath of a path whose last component may not exist yet. */
static int resolve(const char *path, char out[static PATH_MAX])
{
	if (realpath(path, out))
		return 0;
	if (errno != ENOENT)
		return -errno;
	char dir[PATH_MAX], real[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	const char *base = slash ? slash + 1 : path;
	if (slash == dir)
		snprintf(dir, sizeof(dir), "/");
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	if (!realpath(dir, real))
		return -errno;
	if ((size_t)snprintf(out, PATH_MAX, "%s/%s", strcmp(real, "/") == 0 ? "" : real, base) >=
	    PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int secrets_kek_outside(const char *kek_path, const char *data_dir)
{
	char kek[PATH_MAX], data[PATH_MAX];
	int rc = resolve(kek_path, kek);
	if (rc == 0)
		rc = resolve(data_dir, data);
	if (rc < 0)
		return rc;
	size_t n = strlen(data);
	if (strcmp(data, "/") == 0 || (strncmp(kek, data, n) == 0 && (kek[n] == '/' || !kek[n])))
		return ODX_EINVAL;
	return 0;
}

/* ---- the check value in platform.db ---- */

static int kek_check_mac(const struct secrets_kek *k, uint8_t mac[static SHA256_LEN])
{
	size_t len = 0;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, k->key, GCM_KEY_LEN,
		       (const unsigned char *)KEK_CHECK_LABEL, strlen(KEK_CHECK_LABEL), mac,
		       SHA256_LEN, &len) ||
	    len != SHA256_LEN)
		return ODX_ECRYPTO;
	return 0;
}

bool secrets_kek_row_is(const struct secrets_kek_row *row, const struct secrets_kek *k)
{
	uint8_t mac[SHA256_LEN];
	bool same = row->present && strcmp(row->id, k->id) == 0 && kek_check_mac(k, mac) == 0 &&
		    hash_equal(mac, row->mac, SHA256_LEN);
	explicit_bzero(mac, sizeof(mac));
	return same;
}

static int kek_row_read(struct store_stmt *st, void *ctx)
{
	struct secrets_kek_rows *rows = ctx;
	const char *id = store_col_text(st, 0), *role = store_col_text(st, 1);
	size_t maclen;
	const void *mac = store_col_blob(st, 2, &maclen);
	struct secrets_kek_row *row = NULL;
	if (role && strcmp(role, "current") == 0)
		row = &rows->current;
	else if (role && strcmp(role, "next") == 0)
		row = &rows->next;
	if (!row || row->present || !id || strlen(id) != SECRETS_KEK_ID_LEN - 1 || !mac ||
	    maclen != SHA256_LEN)
		return ODX_ECORRUPT;
	memcpy(row->id, id, SECRETS_KEK_ID_LEN);
	memcpy(row->mac, mac, SHA256_LEN);
	row->present = true;
	return 0;
}

int secrets_kek_rows_read(struct store_tx *tx, struct secrets_kek_rows *rows)
{
	memset(rows, 0, sizeof(*rows));
	int rc = store_each(tx, "SELECT kek_id, role, check_mac FROM secrets_kek", STORE_NOARGS,
			    kek_row_read, rows);
	return rc < 0 ? rc : 0;
}

int secrets_kek_row_insert(struct store_tx *tx, const struct secrets_kek *k, const char *role)
{
	uint8_t mac[SHA256_LEN];
	int rc = kek_check_mac(k, mac);
	if (rc == 0)
		rc = store_exec(tx,
				"INSERT INTO secrets_kek (kek_id, role, check_mac, created_at) "
				"VALUES (?, ?, ?, ?)",
				STORE_ARGS(S_TEXT(k->id), S_TEXT(role), S_BLOB(mac, sizeof(mac)),
					   S_INT(time_now_ns())));
	return rc < 0 ? rc : 0;
}

/* Reads the rows in a transaction of their own. */
static int kek_rows_get(struct store *s, enum store_mode mode, struct secrets_kek_rows *rows,
			struct store_tx **keep)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, NULL, mode, &tx);
	if (rc < 0)
		return rc;
	rc = secrets_kek_rows_read(tx, rows);
	if (rc < 0 || !keep)
		store_tx_abort(tx);
	else
		*keep = tx;
	return rc;
}

/* The first start: records k unless another process recorded a KEK meanwhile. */
static int kek_record_first(struct store *s, const struct secrets_kek *k,
			    struct secrets_kek_rows *rows)
{
	struct store_tx *tx;
	int rc = kek_rows_get(s, STORE_WRITE, rows, &tx);
	if (rc < 0)
		return rc;
	if (rows->current.present || rows->next.present) {
		store_tx_abort(tx);
		return 0;
	}
	rc = secrets_kek_row_insert(tx, k, "current");
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	rc = store_tx_commit(tx);
	if (rc == 0)
		rc = kek_rows_get(s, STORE_READ, rows, NULL);
	return rc;
}

int secrets_kek_verify(struct store *s, const struct secrets_kek *k, bool record)
{
	struct secrets_kek_rows rows;
	int rc = kek_rows_get(s, STORE_READ, &rows, NULL);
	if (rc == 0 && !rows.current.present && !rows.next.present)
		rc = record ? kek_record_first(s, k, &rows) : ODX_ENOTFOUND;
	if (rc < 0)
		return rc;
	if (rows.next.present)
		return ODX_ECONFLICT;
	return secrets_kek_row_is(&rows.current, k) ? 0 : ODX_EAUTH;
}

int secrets_kek_current_id(struct store *s, char id[static SECRETS_KEK_ID_LEN])
{
	struct secrets_kek_rows rows;
	int rc = kek_rows_get(s, STORE_READ, &rows, NULL);
	if (rc == 0 && !rows.current.present)
		rc = ODX_ENOTFOUND;
	if (rc == 0)
		memcpy(id, rows.current.id, SECRETS_KEK_ID_LEN);
	return rc;
}

const char *secrets_kek_strerror(int rc)
{
	switch (rc) {
	case ODX_EAUTH: return "the key-encryption key does not open the data keys";
	case ODX_EFORBIDDEN:
		return "the key-encryption key file must be a regular file of mode 0600 owned by "
		       "this user (or root)";
	case ODX_EINVAL:
		return "the key-encryption key file must hold 64 hex digits (32 bytes), or it is "
		       "inside the data directory";
	case ODX_ECONFLICT:
		return "a key-encryption key rotation is unfinished: run it again with the old and "
		       "the new key";
	case ODX_ECORRUPT: return "a data key opens with no known key-encryption key";
	case -ENOENT: return "the key-encryption key file does not exist";
	default: return odx_strerror(rc);
	}
}

/* ---- wrapping data keys ---- */

/* "odysseus-dek-v1" 0 tenant 0 kek-id; returns its length, 0 when the tenant id is too long. */
static size_t dek_aad(const char *tenant, const char *kek_id, uint8_t *out, size_t cap)
{
	int n = snprintf((char *)out, cap, "%s%c%s%c%s", DEK_AAD_LABEL, 0, tenant, 0, kek_id);
	if (n < 0 || (size_t)n >= cap || strlen(tenant) > SECRETS_TENANT_MAX)
		return 0;
	return (size_t)n;
}

int secrets_dek_wrap(const struct secrets_kek *k, const char *tenant,
		     const uint8_t dek[static GCM_KEY_LEN], uint8_t out[static SECRETS_WRAPPED_LEN])
{
	uint8_t aad[128];
	size_t aadlen = dek_aad(tenant, k->id, aad, sizeof(aad));
	if (aadlen == 0)
		return ODX_EINVAL;
	out[0] = SECRETS_FORMAT_V1;
	uint8_t *nonce = out + 1, *ct = nonce + GCM_NONCE_LEN, *tag = ct + GCM_KEY_LEN;
	int rc = random_bytes(nonce, GCM_NONCE_LEN);
	if (rc == 0)
		rc = secrets_gcm_encrypt(k->key, nonce, aad, aadlen, dek, GCM_KEY_LEN, ct, tag);
	return rc;
}

int secrets_dek_unwrap(const struct secrets_kek *k, const char *tenant, const uint8_t *in, size_t n,
		       uint8_t dek[static GCM_KEY_LEN])
{
	uint8_t aad[128];
	size_t aadlen = dek_aad(tenant, k->id, aad, sizeof(aad));
	if (aadlen == 0)
		return ODX_EINVAL;
	if (n != SECRETS_WRAPPED_LEN || in[0] != SECRETS_FORMAT_V1)
		return ODX_ECORRUPT;
	const uint8_t *nonce = in + 1, *ct = nonce + GCM_NONCE_LEN, *tag = ct + GCM_KEY_LEN;
	return secrets_gcm_decrypt(k->key, nonce, aad, aadlen, ct, GCM_KEY_LEN, tag, dek);
}
