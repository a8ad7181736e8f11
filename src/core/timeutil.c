/* timeutil.c — see timeutil.h. */
#include <time.h>

#include "core/err.h"
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

/* Reads exactly n digits. */
static int get_digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
	}
	*out = v;
	return 0;
}

int time_parse_rfc3339(const char *s, int64_t *out)
{
	int y, mo, d, h, mi, sec;
	const char *p = s;
	if (get_digits(&p, 4, &y) || *p++ != '-' || get_digits(&p, 2, &mo) || *p++ != '-' ||
	    get_digits(&p, 2, &d) || (*p != 'T' && *p != 't') || !*p++ || get_digits(&p, 2, &h) ||
	    *p++ != ':' || get_digits(&p, 2, &mi) || *p++ != ':' || get_digits(&p, 2, &sec))
		return ODX_EINVAL;
	int64_t frac = 0;
	if (*p == '.') {
		p++;
		int digits = 0;
		while (*p >= '0' && *p <= '9' && digits < 9) {
			frac = frac * 10 + (*p++ - '0');
			digits++;
		}
		if (digits == 0 || (*p >= '0' && *p <= '9'))
			return ODX_EINVAL;
		for (; digits < 9; digits++)
			frac *= 10;
	}
	if ((*p != 'Z' && *p != 'z') || p[1])
		return ODX_EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return ODX_EINVAL;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			.tm_hour = h, .tm_min = mi, .tm_sec = sec};
	time_t t = timegm(&tm);
	if (tm.tm_mday != d) /* 31 February and friends */
		return ODX_EINVAL;
	/* int64 ns reach from 1677 to 2262: further times clamp to the ends (a filter
	 * bound of year 2999 means "no bound"). */
	if ((int64_t)t >= INT64_MAX / NSEC_PER_SEC)
		*out = INT64_MAX;
	else if ((int64_t)t <= INT64_MIN / NSEC_PER_SEC)
		*out = INT64_MIN;
	else
		*out = (int64_t)t * NSEC_PER_SEC + frac;
	return 0;
}
