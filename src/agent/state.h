/*
 * state.h — the agent's state directory and the files in it.
 *
 *   agent.json     {"server", "node_id", "name"}; written last by enroll,
 *                  so its presence means "enrolled"
 *   node.key       the node's private key (PKCS#8 PEM); never leaves the node
 *   node.crt       its client certificate from the control plane's CA
 *   ca.crt         the CA bundle trusted for the control plane
 *   node.key.new   a renewal's (or enrollment's) key, until its cert arrives
 *   node.crt.new   a renewal's certificate, until swapped in
 *
 * The directory is 0700 and owned by the agent's user; a directory others
 * can enter is refused, like ssh refuses a readable private key. Every file
 * is 0600 and written to a temporary name, fsync'd and renamed, so a crash
 * never leaves a half-written file. Certificate renewal writes both .new
 * files first, then renames node.key.new over node.key and node.crt.new
 * over node.crt; state_recover finishes or undoes an interrupted swap so
 * that node.key and node.crt always end up a matching pair.
 */
#ifndef ODX_AGENT_STATE_H
#define ODX_AGENT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_AGENT_JSON "agent.json"
#define STATE_KEY	 "node.key"
#define STATE_CERT	 "node.crt"
#define STATE_CA	 "ca.crt"
#define STATE_KEY_NEW	 "node.key.new"
#define STATE_CERT_NEW	 "node.crt.new"
#define STATE_FILE_MAX	 (256 * 1024)

/*
 * Opens dir (creating it 0700 when create is set and it is missing) and
 * takes an exclusive lock on it so two agents never share it. Refuses a
 * symlink, a non-directory, one owned by another user (ODX_EFORBIDDEN) or
 * one with any group/other permission bit (ODX_EFORBIDDEN). Returns the
 * directory's fd (O_DIRECTORY, close it to unlock), ODX_EBUSY when another
 * process holds the lock, or -errno.
 */
int state_open(const char *dir, bool create);
/* Words for state_open's error rc, to follow the directory's name. */
const char *state_open_strerror(int rc);

/* Replaces dirfd/name with text (0600, temp file, fsync, rename, dir fsync). */
int state_write(int dirfd, const char *name, const char *text, size_t len);
/*
 * Reads dirfd/name (a regular file of at most STATE_FILE_MAX bytes) into
 * *out, NUL-terminated, malloc'd; *len its length. Free with state_free
 * (it wipes: the file may be a key). Returns 0 or -errno (-ENOENT...).
 */
int state_read(int dirfd, const char *name, char **out, size_t *len);
void state_free(char *s);
/* Renames from over to in dirfd and makes the rename durable. */
int state_rename(int dirfd, const char *from, const char *to);
/* Removes dirfd/name if present. Returns 0 or -errno. */
int state_remove(int dirfd, const char *name);

/*
 * Does the first certificate of cert_pem hold the public half of the
 * private key in key_pem? Returns 1, 0, or a negative error when either
 * does not parse.
 */
int state_pair_matches(const char *cert_pem, const char *key_pem);
/* How many certificates the PEM text holds (0 when none or malformed). */
int state_count_certs(const char *pem);
/* Is the first certificate of pem a client certificate for node_id (its CN)? */
bool state_cert_names(const char *pem, const char *node_id);
/* notBefore and notAfter of the first certificate of pem, in unix seconds. */
int state_cert_times(const char *pem, size_t len, int64_t *not_before, int64_t *not_after);

/*
 * Finishes or rolls back a certificate swap a crash interrupted:
 *   node.key.new + node.crt.new, matching: rename key then cert into place;
 *   node.crt.new alone, matching node.key: rename it into place;
 *   any other leftover .new file: delete it (the old pair is intact).
 * *what (may be NULL) is set to a static description of what was done, or
 * NULL when there was nothing to do. Returns 0 or an error.
 */
int state_recover(int dirfd, const char **what);

#endif
