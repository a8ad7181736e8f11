/* state.c — see state.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent/state.h"
#include "core/err.h"
#include "crypto/x509.h"

#define NAME_MAX_LEN 64

/* ---- the directory ---------------------------------------------------------- */

int state_open(const char *dir, bool create)
{
	struct stat st;
	int fd;

	if (create && mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	/*
	 * No symlink: it could point anywhere, including at others' files.
	 * lstat names the problem; O_NOFOLLOW is what enforces it.
	 */
	if (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode))
		return -ELOOP;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		close(fd);
		return ODX_EFORBIDDEN;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno == EWOULDBLOCK ? ODX_EBUSY : -errno;
		close(fd);
		return e;
	}
	return fd;
}

const char *state_open_strerror(int rc)
{
	switch (rc) {
	case ODX_EFORBIDDEN:
		return "must be a directory of this user with mode 0700 (no access for others)";
	case ODX_EBUSY: return "is in use by another odysseus-agent";
	case -ELOOP: return "is a symbolic link";
	case -ENOTDIR: return "is not a directory";
	default: return odx_strerror(rc);
	}
}

/* ---- files ----------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int state_write(int dirfd, const char *name, const char *text, size_t len)
{
	char tmp[NAME_MAX_LEN + 8];
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp", name), fd, rc;

	if (n < 0 || (size_t)n >= sizeof(tmp))
		return ODX_EINVAL;
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* A stale temp file keeps its old mode through O_CREAT. */
	rc = fchmod(fd, 0600) == 0 ? 0 : -errno;
	if (rc == 0)
		rc = write_all(fd, text, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0)
		rc = state_rename(dirfd, tmp, name);
	if (rc != 0)
		unlinkat(dirfd, tmp, 0);
	return rc;
}

int state_read(int dirfd, const char *name, char **out, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	int rc = 0, fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > STATE_FILE_MAX) {
		rc = !S_ISREG(st.st_mode) ? -EINVAL : -EFBIG;
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		rc = ODX_ENOMEM;
		goto out;
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break; /* shrank meanwhile: take what is there */
		n += (size_t)r;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
out:
	state_free(buf);
	close(fd);
	return rc;
}

void state_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

int state_rename(int dirfd, const char *from, const char *to)
{
	if (renameat(dirfd, from, dirfd, to) != 0)
		return -errno;
	/* The next step may depend on this rename having happened. */
	return fsync(dirfd) == 0 ? 0 : -errno;
}

int state_remove(int dirfd, const char *name)
{
	if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* ---- certificates ------------------------------------------------------------ */

static X509 *pem_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return x;
}

int state_pair_matches(const char *cert_pem, const char *key_pem)
{
	X509 *x = pem_cert(cert_pem);
	BIO *b = BIO_new_mem_buf(key_pem, -1);
	EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	int rc = x == NULL || k == NULL ? ODX_EINVAL : X509_check_private_key(x, k) == 1;

	EVP_PKEY_free(k);
	BIO_free(b);
	X509_free(x);
	ERR_clear_error();
	return rc;
}

int state_count_certs(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x;
	int n = 0;

	while (b != NULL && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		X509_free(x);
		n++;
	}
	BIO_free(b);
	ERR_clear_error();
	return n;
}

bool state_cert_names(const char *pem, const char *node_id)
{
	char cn[X509_NODE_ID_MAX + 1];
	X509 *x = pem_cert(pem);
	bool ok =
	    x != NULL && x509_cert_node_id(x, cn, sizeof(cn)) == 0 && strcmp(cn, node_id) == 0;
	X509_free(x);
	ERR_clear_error();
	return ok;
}

int state_cert_times(const char *pem, size_t len, int64_t *not_before, int64_t *not_after)
{
	struct tm tm;
	int64_t na;
	int rc = x509_cert_pem_not_after(pem, len, &na);
	if (rc < 0)
		return rc;
	X509 *x = pem_cert(pem);
	if (x != NULL && ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) == 1) {
		*not_before = (int64_t)timegm(&tm);
		*not_after = na;
	} else {
		rc = ODX_EINVAL;
	}
	X509_free(x);
	ERR_clear_error();
	return rc;
}

/* ---- crash recovery ----------------------------------------------------------- */

/* 1 when dirfd's cert_name and key_name are a matching pair, 0 when not or absent. */
static int files_match(int dirfd, const char *cert_name, const char *key_name)
{
	char *cert = NULL, *key = NULL;
	size_t n;
	int rc = state_read(dirfd, cert_name, &cert, &n);

	if (rc == 0)
		rc = state_read(dirfd, key_name, &key, &n);
	if (rc == 0)
		rc = state_pair_matches(cert, key) == 1;
	else if (rc == -ENOENT || rc == -EFBIG || rc == -EINVAL)
		rc = 0;
	state_free(key);
	state_free(cert);
	return rc;
}

static bool exists(int dirfd, const char *name)
{
	return faccessat(dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static int discard_new(int dirfd)
{
	int rc = state_remove(dirfd, STATE_CERT_NEW);
	if (rc == 0)
		rc = state_remove(dirfd, STATE_KEY_NEW);
	if (rc == 0 && fsync(dirfd) != 0)
		rc = -errno;
	return rc;
}

int state_recover(int dirfd, const char **what)
{
	bool key_new = exists(dirfd, STATE_KEY_NEW), cert_new = exists(dirfd, STATE_CERT_NEW);
	const char *done = NULL;
	int rc = 0, m;

	if (key_new && cert_new) {
		if ((m = files_match(dirfd, STATE_CERT_NEW, STATE_KEY_NEW)) < 0)
			return m;
		if (m == 1) {
			/* Key first: the certificate's rename is the last step. */
			rc = state_rename(dirfd, STATE_KEY_NEW, STATE_KEY);
			if (rc == 0)
				rc = state_rename(dirfd, STATE_CERT_NEW, STATE_CERT);
			done = "finished an interrupted certificate renewal";
		} else {
			rc = discard_new(dirfd);
			done = "discarded a renewal's mismatched key and certificate";
		}
	} else if (cert_new) {
		/* The key was renamed; the crash came before the certificate's rename. */
		if ((m = files_match(dirfd, STATE_CERT_NEW, STATE_KEY)) < 0)
			return m;
		if (m == 1) {
			rc = state_rename(dirfd, STATE_CERT_NEW, STATE_CERT);
			done = "finished an interrupted certificate renewal";
		} else {
			rc = discard_new(dirfd);
			done = "discarded a renewal's certificate without its key";
		}
	} else if (key_new) {
		/* The certificate never arrived: the old pair is still whole. */
		rc = discard_new(dirfd);
		done = "discarded an unfinished renewal's key";
	}
	if (rc == 0 && what != NULL)
		*what = done;
	return rc;
}
