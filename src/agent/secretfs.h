/*
 * secretfs.h — the host side of secret delivery: one new tmpfs per container
 * at <root>/<ctr id>, the secrets written into it as files, and its removal
 * (docs/agent.md "Secrets").
 *
 * Invariants. A value is only ever written through a directory descriptor
 * whose file system was checked to be tmpfs (fstatfs), so nothing reaches a
 * disk even when a mount silently failed. A directory is never reused: each
 * mount starts by unmounting and removing whatever was at that path. Every
 * unmount is lazy (MNT_DETACH): a running container keeps its own bind of
 * the tmpfs, and the host's view goes at once.
 *
 * The caller validates ctr ids and secret names; these functions check them
 * again (a path component of [a-z0-9_-], 1..64, not starting with '-') and
 * return -EINVAL for anything else. Errors are -errno or ODX_* codes.
 * Nothing here logs.
 */
#ifndef ODX_AGENT_SECRETFS_H
#define ODX_AGENT_SECRETFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SECRETFS_PATH_MAX  512
#define SECRETFS_VALUE_MAX (64 * 1024)
#define SECRETFS_NAMES_MAX 16
#define SECRETFS_TARGET	   "/run/secrets" /* where containers see them */

/* A freshly mounted tmpfs being filled; closed by secretfs_seal or secretfs_abort. */
struct secretfs_mount {
	int fd;			      /* the tmpfs's root directory */
	char path[SECRETFS_PATH_MAX]; /* absolute: <root>/<ctr id> */
};

/*
 * Makes root (mode 0700) unless it exists, refuses a symbolic link or
 * anything but a directory of ours, resets its mode to 0700, and writes its
 * absolute path to abs (what Docker gets as a bind source).
 */
int secretfs_init(const char *root, char abs[static SECRETFS_PATH_MAX]);

/*
 * Removes anything at <root>/<ctr>, then makes the directory (0700) and
 * mounts a new tmpfs on it (nosuid, nodev, noexec, 1 MiB, 64 inodes,
 * noswap). When the kernel refuses noswap (Linux < 6.4, or not in the
 * initial user namespace) it mounts without it and sets *swappable.
 * On success m holds the open root; finish with secretfs_seal or
 * secretfs_abort. -EPERM when this process may not mount.
 */
int secretfs_mount(const char *root, const char *ctr, struct secretfs_mount *m, bool *swappable);

/*
 * Writes one secret as the file name (mode 0400, owned by uid:gid) in m.
 * The caller wipes value; nothing is kept here.
 */
int secretfs_write(const struct secretfs_mount *m, const char *name, const uint8_t *value,
		   size_t len, uid_t uid, gid_t gid);

/*
 * Finishes m: its root becomes 0550 root:gid (the container's group may list
 * and enter, nobody may write) and the host's mount read-only; closes m.
 * On failure the mount is removed as by secretfs_abort.
 */
int secretfs_seal(struct secretfs_mount *m, gid_t gid);

/*
 * Closes m and removes its mount and directory. Safe on a mount that failed
 * if m was set to {.fd = -1} first.
 */
void secretfs_abort(struct secretfs_mount *m);

/*
 * True when a tmpfs is mounted at <root>/<ctr> (after a reboot only the
 * empty directory beneath is left).
 */
bool secretfs_mounted(const char *root, const char *ctr);

/*
 * Unmounts every mount stacked at <root>/<ctr> and removes the directory.
 * 0 when nothing is left, also when there was nothing.
 */
int secretfs_remove(const char *root, const char *ctr);

/*
 * For each entry of root that looks like a ctr id: removes it unless
 * keep(ctr, arg) says otherwise. Other entries are left alone. Returns 0
 * (with *removed counted) or the first error; the sweep goes on past
 * errors.
 */
int secretfs_sweep(const char *root, bool (*keep)(const char *ctr, void *arg), void *arg,
		   size_t *removed);

#endif
