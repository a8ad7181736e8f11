/* timeutil.h — wall-clock time in nanoseconds and its RFC 3339 form. */
#ifndef ODX_TIMEUTIL_H
#define ODX_TIMEUTIL_H

#include <stdint.h>

#define TIME_RFC3339_LEN 31 /* "2026-11-28T15:52:22.123456789Z" + NUL */
#define NSEC_PER_SEC	 1000000000LL

/* Nanoseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t time_now_ns(void);
/* Monotonic nanoseconds, for durations. */
int64_t time_mono_ns(void);
/* Writes `ns` as RFC 3339 UTC with nanoseconds into out. */
void time_format_rfc3339(int64_t ns, char out[static TIME_RFC3339_LEN]);

/*
 * Parses "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (RFC 3339, UTC only, up to 9
 * fraction digits) into ns since the epoch, clamped to the int64 range
 * (years 1677-2262). 0 or ODX_EINVAL.
 */
int time_parse_rfc3339(const char *s, int64_t *out);

#endif
