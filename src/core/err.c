/* err.c — names for the ODX_E* codes and -errno values. */
#include <string.h>

#include "core/err.h"

const char *odx_strerror(int rc)
{
	switch (rc) {
	case ODX_OK: return "success";
	case ODX_ENOMEM: return "out of memory";
	case ODX_EINVAL: return "invalid argument";
	case ODX_ENOTFOUND: return "not found";
	case ODX_ECONFLICT: return "conflict";
	case ODX_EAUTH: return "authentication failed";
	case ODX_EFORBIDDEN: return "forbidden";
	case ODX_ETOOBIG: return "too large";
	case ODX_ERATELIMIT: return "rate limited";
	case ODX_EIO: return "I/O error";
	case ODX_ECORRUPT: return "data corrupt";
	case ODX_ECRYPTO: return "cryptographic failure";
	case ODX_EBUSY: return "busy";
	case ODX_EQUOTA: return "quota exceeded";
	case ODX_EUNAVAIL: return "unavailable";
	case ODX_EINTERNAL: return "internal error";
	case ODX_EREUSED: return "credential reused";
	}
	if (rc < 0 && rc > -1000)
		return strerror(-rc);
	return "unknown error";
}
