/*
 * err.h — the one error convention of libodysseus.
 *
 * Functions return int: 0 on success, a negative code on failure. Codes below
 * are our own; OS errors are passed through as -errno (always > -1000, so the
 * two ranges never meet). odx_strerror() names either kind.
 */
#ifndef ODX_ERR_H
#define ODX_ERR_H

enum odx_err {
	ODX_OK = 0,
	ODX_ENOMEM = -1000, /* allocation failed */
	ODX_EINVAL = -1001, /* bad argument or malformed input */
	ODX_ENOTFOUND = -1002,
	ODX_ECONFLICT = -1003, /* already exists / state does not allow it */
	ODX_EAUTH = -1004,     /* credential missing, invalid or expired */
	ODX_EFORBIDDEN = -1005,
	ODX_ETOOBIG = -1006,
	ODX_ERATELIMIT = -1007,
	ODX_EIO = -1008,      /* storage or network I/O failed */
	ODX_ECORRUPT = -1009, /* integrity check failed: data is not what was written */
	ODX_ECRYPTO = -1010,  /* a cryptographic primitive failed */
	ODX_EBUSY = -1011,    /* resource busy; retry later */
	ODX_EQUOTA = -1012,
	ODX_EUNAVAIL = -1013,  /* dependency down (store, disk full) */
	ODX_EINTERNAL = -1014, /* a bug: invariant broken */
	ODX_EREUSED = -1015,   /* a single-use credential was presented again */
};

/* Returns a static, human-readable name for rc (never NULL). */
const char *odx_strerror(int rc);

#endif
