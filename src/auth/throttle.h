/*
 * throttle.h — login throttling per account and per source address.
 *
 * Failures are counted in a sliding window (THROTTLE_WINDOW_S). Once an
 * account has THROTTLE_ACCOUNT_LIMIT failures, or an address
 * THROTTLE_ADDRESS_LIMIT, further attempts are refused until a lockout
 * passes: 1 s after reaching the limit, doubling with each further failure,
 * at most the window. Counting is in memory (bounded table); a restart
 * forgets it, which costs an attacker a restart of our daemon.
 */
#ifndef ODX_THROTTLE_H
#define ODX_THROTTLE_H

#include <stdint.h>

#define THROTTLE_WINDOW_S      900
#define THROTTLE_ACCOUNT_LIMIT 5
#define THROTTLE_ADDRESS_LIMIT 20

struct throttle;

int throttle_new(struct throttle **out);
void throttle_free(struct throttle *t);
/* 0 when an attempt may proceed; ODX_ERATELIMIT and *retry_after_s otherwise. */
int throttle_check(struct throttle *t, const char *account, const char *address, int64_t now_ns,
		   int *retry_after_s);
/* Counts a failed attempt against both keys. */
void throttle_failure(struct throttle *t, const char *account, const char *address, int64_t now_ns);
/* Clears the account's failures after a successful login. */
void throttle_success(struct throttle *t, const char *account);

#endif
