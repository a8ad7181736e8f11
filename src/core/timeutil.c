/* timeutil.c — see timeutil.h. */
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

/* Writes v as exactly `width` decimal digits (v is known to fit). */
static char *put_digits(char *p, long v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

/* Formatted by hand: this runs for every timestamp of every list reply. */
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
	char *p = put_digits(out, (tm.tm_year + 1900) % 10000, 4);
	*p++ = '-';
	p = put_digits(p, tm.tm_mon + 1, 2);
	*p++ = '-';
	p = put_digits(p, tm.tm_mday, 2);
	*p++ = 'T';
	p = put_digits(p, tm.tm_hour, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_min, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_sec, 2);
	*p++ = '.';
	p = put_digits(p, frac, 9);
	*p++ = 'Z';
	*p = '\0';
}
