/*
 * secretfs.c — see secretfs.h.
 *
 * Life of one directory <root>/<ctr>:
 *   secretfs_mount   remove leftovers, mkdir 0700, mount a new tmpfs
 *                    (mode 0755 while root fills it: root's own 0700 keeps
 *                    everyone else out), open it and check it is tmpfs
 *   secretfs_write   one file per secret: O_EXCL|O_NOFOLLOW, 0400, uid:gid
 *   secretfs_seal    root of the tmpfs 0550 root:gid, the host's mount
 *                    remounted read-only (the container's bind is
 *                    read-only too; this also stops the host writing)
 *   secretfs_remove  umount2(MNT_DETACH) until nothing is mounted, rmdir
 *
 * Why 0550 root:gid rather than 0555: the container's processes run as
 * uid:gid, so the group bits are what lets them enter and list; other
 * users of the host (or of the container, were there any) get nothing, and
 * nobody but root owns the directory, so nobody can chmod it back open.
 * The files are 0400 uid:gid: readable by the container's user only; its
 * owner could chmod them, but both mounts are read-only (EROFS).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "agent/secretfs.h"
#include "core/err.h"

#define TMPFS_OPTS    "mode=0755,size=1m,nr_inodes=64"
#define TMPFS_FLAGS   (MS_NOSUID | MS_NODEV | MS_NOEXEC)
#define COMPONENT_MAX 64
#define UNMOUNT_MAX   16 /* mounts stacked on one path, at most, that we undo */
#define COMPONENT_SET "abcdefghijklmnopqrstuvwxyz0123456789_-"

/* A path component we make: 1..64 of [a-z0-9_-], not starting with '-'. */
static bool component_ok(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= COMPONENT_MAX && s[0] != '-' && strspn(s, COMPONENT_SET) == n;
}

static int dir_path(const char *root, const char *ctr, char out[static SECRETFS_PATH_MAX])
{
	if (!component_ok(ctr))
		return -EINVAL;
	int n = snprintf(out, SECRETFS_PATH_MAX, "%s/%s", root, ctr);
	return n > 0 && n < SECRETFS_PATH_MAX ? 0 : -ENAMETOOLONG;
}

int secretfs_init(const char *root, char abs[static SECRETFS_PATH_MAX])
{
	struct stat st;
	int rc = 0, fd;

	if (mkdir(root, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno; /* ELOOP: a symbolic link; ENOTDIR */
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else if (st.st_uid != geteuid())
		rc = ODX_EFORBIDDEN;
	else if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0)
		rc = -errno;
	close(fd);
	if (rc < 0)
		return rc;
	char *real = realpath(root, NULL);
	if (real == NULL)
		return -errno;
	/* Room for "/<ctr id>" after it. */
	if (strlen(real) + 1 + COMPONENT_MAX >= SECRETFS_PATH_MAX)
		rc = -ENAMETOOLONG;
	else
		memcpy(abs, real, strlen(real) + 1);
	free(real);
	return rc;
}

/* Lazily unmounts everything stacked on path, then removes the directory. */
static int remove_path(const char *path)
{
	int i, rc = 0;

	for (i = 0; i < UNMOUNT_MAX; i++) {
		if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
			continue;
		if (errno != EINVAL && errno != ENOENT)
			rc = -errno; /* EPERM: not allowed, but maybe nothing is mounted */
		break;
	}
	if (i == UNMOUNT_MAX)
		return -EBUSY;
	if (rmdir(path) == 0 || errno == ENOENT)
		return 0;
	return rc < 0 ? rc : -errno; /* EBUSY: still mounted; ENOTEMPTY: not ours */
}

bool secretfs_mounted(const char *root, const char *ctr)
{
	char path[SECRETFS_PATH_MAX];
	struct stat rs, ds;
	struct statfs sf;

	return dir_path(root, ctr, path) == 0 && stat(root, &rs) == 0 && lstat(path, &ds) == 0 &&
	       S_ISDIR(ds.st_mode) && ds.st_dev != rs.st_dev && statfs(path, &sf) == 0 &&
	       sf.f_type == TMPFS_MAGIC;
}

int secretfs_remove(const char *root, const char *ctr)
{
	char path[SECRETFS_PATH_MAX];
	int rc = dir_path(root, ctr, path);

	return rc < 0 ? rc : remove_path(path);
}

/* Mounts the tmpfs, with noswap when the kernel has it. */
static int mount_tmpfs(const char *path, bool *swappable)
{
	if (mount("tmpfs", path, "tmpfs", TMPFS_FLAGS, TMPFS_OPTS ",noswap") == 0) {
		*swappable = false;
		return 0;
	}
	if (errno != EINVAL)
		return -errno;
	if (mount("tmpfs", path, "tmpfs", TMPFS_FLAGS, TMPFS_OPTS) < 0)
		return -errno;
	*swappable = true;
	return 0;
}

/*
 * Opens path and makes sure it is a tmpfs mounted there (not the directory
 * beneath, even were root itself on a tmpfs): a value never goes to a disk.
 */
static int open_tmpfs(const char *path, dev_t root_dev, int *out)
{
	struct statfs sf;
	struct stat st;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fstatfs(fd, &sf) < 0 || fstat(fd, &st) < 0)
		rc = -errno;
	else if (sf.f_type != TMPFS_MAGIC || st.st_dev == root_dev)
		rc = ODX_ECONFLICT;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

int secretfs_mount(const char *root, const char *ctr, struct secretfs_mount *m, bool *swappable)
{
	char path[SECRETFS_PATH_MAX];
	struct stat rs;
	bool swap = false;
	int fd = -1;
	int rc = dir_path(root, ctr, path);

	if (rc == 0 && stat(root, &rs) < 0)
		rc = -errno;
	if (rc == 0)
		rc = remove_path(path);
	if (rc < 0)
		return rc;
	if (mkdir(path, 0700) < 0)
		return -errno;
	rc = mount_tmpfs(path, &swap);
	if (rc == 0)
		rc = open_tmpfs(path, rs.st_dev, &fd);
	if (rc < 0) {
		remove_path(path);
		return rc;
	}
	m->fd = fd;
	memcpy(m->path, path, sizeof(path));
	*swappable = swap;
	return 0;
}

int secretfs_write(const struct secretfs_mount *m, const char *name, const uint8_t *value,
		   size_t len, uid_t uid, gid_t gid)
{
	int fd, rc = 0;

	if (m->fd < 0 || !component_ok(name) || len > SECRETFS_VALUE_MAX)
		return -EINVAL;
	fd = openat(m->fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
	if (fd < 0)
		return -errno;
	if (fchown(fd, uid, gid) < 0 || fchmod(fd, 0400) < 0)
		rc = -errno;
	for (size_t off = 0; rc == 0 && off < len;) {
		ssize_t n = write(fd, value + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = n < 0 ? -errno : -EIO; /* ENOSPC: over the tmpfs's size */
		else
			off += (size_t)n;
	}
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0)
		unlinkat(m->fd, name, 0);
	return rc;
}

int secretfs_seal(struct secretfs_mount *m, gid_t gid)
{
	int rc = 0;

	if (m->fd < 0)
		return -EINVAL;
	if (fchown(m->fd, (uid_t)-1, gid) < 0 || fchmod(m->fd, 0550) < 0)
		rc = -errno;
	else if (mount(NULL, m->path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | TMPFS_FLAGS, NULL) <
		 0)
		rc = -errno;
	if (rc < 0) {
		secretfs_abort(m);
		return rc;
	}
	close(m->fd);
	m->fd = -1;
	return 0;
}

void secretfs_abort(struct secretfs_mount *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	if (m->path[0])
		remove_path(m->path);
}

int secretfs_sweep(const char *root, bool (*keep)(const char *ctr, void *arg), void *arg,
		   size_t *removed)
{
	DIR *d = opendir(root);
	struct dirent *e;
	size_t n = 0;
	int first = 0;

	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "ctr_", 4) != 0 || !component_ok(e->d_name) ||
		    keep(e->d_name, arg))
			continue;
		int rc = secretfs_remove(root, e->d_name);
		if (rc == 0)
			n++;
		else if (first == 0)
			first = rc;
	}
	closedir(d);
	*removed = n;
	return first;
}
