/* timeutil.c — see timeutil.h. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/timeutil.h"

int64_t time_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

int64_t time_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

void time_format_rfc3339(int64_t ns, char out[static TIME_RFC3339_LEN])
{
	time_t secs = (time_t)(ns / NSEC_PER_SEC);
	long frac = (long)(ns % NSEC_PER_SEC);
	if (frac < 0) {
		frac += NSEC_PER_SEC;
		secs -= 1;
	}
	struct tm tm;
	gmtime_r(&secs, &tm);
	char buf[96]; /* wide enough for any int, so the compiler can prove no truncation */
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ",
		 (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		 tm.tm_sec, frac);
	memcpy(out, buf, TIME_RFC3339_LEN - 1);
	out[TIME_RFC3339_LEN - 1] = '\0';
}
