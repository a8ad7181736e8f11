/* test-throttle.c — login throttling per account and per source address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/throttle.h"
#include "core/err.h"
#include "core/timeutil.h"

#define S NSEC_PER_SEC
#define T0 ((int64_t)1700000000 * S)

static int setup(void **state)
{
	struct throttle *t;
	if (throttle_new(&t) != 0)
		return -1;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	throttle_free(*state);
	return 0;
}

/* 0 when allowed, else the Retry-After seconds (and the rc must be ODX_ERATELIMIT). */
static int blocked_for(struct throttle *t, const char *acct, const char *addr, int64_t now)
{
	int retry = -12345;
	int rc = throttle_check(t, acct, addr, now, &retry);
	if (rc == 0)
		return 0;
	assert_int_equal(rc, ODX_ERATELIMIT);
	assert_true(retry >= 1);
	return retry;
}

static void test_account_lockout_backoff(void **state)
{
	struct throttle *t = *state;
	const char *a = "alice@example.com", *ip = "192.0.2.1";
	for (int i = 0; i < THROTTLE_ACCOUNT_LIMIT - 1; i++) {
		assert_int_equal(blocked_for(t, a, ip, T0 + i * S / 10), 0);
		throttle_failure(t, a, ip, T0 + i * S / 10);
	}
	assert_int_equal(blocked_for(t, a, ip, T0 + S / 2), 0); /* 4 failures: still allowed */
	int64_t f5 = T0 + S / 2;
	throttle_failure(t, a, ip, f5); /* the 5th */
	assert_int_equal(blocked_for(t, a, ip, f5), 1);
	assert_int_equal(blocked_for(t, a, ip, f5 + S / 2), 1);
	assert_int_equal(blocked_for(t, a, ip, f5 + S - 1), 1);
	assert_int_equal(blocked_for(t, a, ip, f5 + S), 0); /* 1 s later */
	/* the 6th failure: 2 s */
	int64_t f6 = f5 + S;
	throttle_failure(t, a, ip, f6);
	assert_int_equal(blocked_for(t, a, ip, f6), 2);
	assert_int_equal(blocked_for(t, a, ip, f6 + S), 1);
	assert_int_equal(blocked_for(t, a, ip, f6 + 2 * S - 1), 1);
	assert_int_equal(blocked_for(t, a, ip, f6 + 2 * S), 0);
	/* the 7th: 4 s */
	int64_t f7 = f6 + 2 * S;
	throttle_failure(t, a, ip, f7);
	assert_int_equal(blocked_for(t, a, ip, f7), 4);
	assert_int_equal(blocked_for(t, a, ip, f7 + 4 * S), 0);
	/* the lock is the account's: another address is locked out of it too */
	throttle_failure(t, a, ip, f7 + 4 * S);
	assert_int_equal(blocked_for(t, a, "198.51.100.7", f7 + 4 * S), 8);
}

static void test_backoff_capped(void **state)
{
	struct throttle *t = *state;
	const char *a = "mallory@example.com";
	int64_t now = T0;
	for (int i = 0; i < 200; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", i % 200);
		throttle_failure(t, a, ip, now);
		now += S / 100;
	}
	int r = blocked_for(t, a, "203.0.113.250", now);
	assert_true(r >= 1);
	assert_true(r <= THROTTLE_WINDOW_S);
	assert_int_equal(blocked_for(t, a, "203.0.113.250", now + (int64_t)THROTTLE_WINDOW_S * S), 0);
}

static void test_others_unaffected(void **state)
{
	struct throttle *t = *state;
	const char *a = "alice@example.com", *ip = "192.0.2.1";
	for (int i = 0; i < THROTTLE_ACCOUNT_LIMIT; i++)
		throttle_failure(t, a, ip, T0);
	assert_true(blocked_for(t, a, ip, T0) > 0);
	/* another account from another address */
	assert_int_equal(blocked_for(t, "bob@example.com", "198.51.100.7", T0), 0);
	/* another account from the same address: 5 < the address limit */
	assert_int_equal(blocked_for(t, "carol@example.com", ip, T0), 0);
	/* the key kinds do not collide: an account named like the address is not locked */
	assert_int_equal(blocked_for(t, ip, "198.51.100.8", T0), 0);
}

static void test_address_lockout(void **state)
{
	struct throttle *t = *state;
	const char *ip = "203.0.113.9";
	/* spraying: 20 accounts, one failure each */
	for (int i = 0; i < THROTTLE_ADDRESS_LIMIT; i++) {
		char acct[64];
		snprintf(acct, sizeof(acct), "victim%d@example.com", i);
		assert_int_equal(blocked_for(t, acct, ip, T0), 0);
		throttle_failure(t, acct, ip, T0);
	}
	/* every account from that address, even ones never tried */
	assert_int_equal(blocked_for(t, "victim0@example.com", ip, T0), 1);
	assert_int_equal(blocked_for(t, "new@example.com", ip, T0), 1);
	/* the accounts themselves are fine from elsewhere */
	assert_int_equal(blocked_for(t, "victim0@example.com", "192.0.2.44", T0), 0);
	assert_int_equal(blocked_for(t, "new@example.com", "192.0.2.44", T0), 0);
	assert_int_equal(blocked_for(t, "new@example.com", ip, T0 + S), 0);
	/* a success does not clear the address */
	throttle_success(t, "victim0@example.com");
	throttle_failure(t, "x@example.com", ip, T0 + S);
	assert_int_equal(blocked_for(t, "victim1@example.com", ip, T0 + S), 2);
}

static void test_success_resets_account(void **state)
{
	struct throttle *t = *state;
	const char *a = "dave@example.com", *ip = "192.0.2.77";
	for (int i = 0; i < THROTTLE_ACCOUNT_LIMIT; i++)
		throttle_failure(t, a, ip, T0);
	assert_true(blocked_for(t, a, ip, T0) > 0);
	throttle_success(t, a);
	assert_int_equal(blocked_for(t, a, ip, T0), 0);
	/* counting starts over: 4 more failures do not lock */
	for (int i = 0; i < THROTTLE_ACCOUNT_LIMIT - 1; i++)
		throttle_failure(t, a, ip, T0 + S);
	assert_int_equal(blocked_for(t, a, ip, T0 + S), 0);
	throttle_failure(t, a, ip, T0 + S);
	assert_int_equal(blocked_for(t, a, ip, T0 + S), 1);
	/* success for an unknown account is harmless */
	throttle_success(t, "never-seen@example.com");
}

static void test_window_expires(void **state)
{
	struct throttle *t = *state;
	const char *a = "erin@example.com", *ip = "192.0.2.88";
	for (int i = 0; i < THROTTLE_ACCOUNT_LIMIT - 1; i++)
		throttle_failure(t, a, ip, T0);
	/* one more, but after the window: the old four no longer count */
	int64_t later = T0 + ((int64_t)THROTTLE_WINDOW_S + 1) * S;
	throttle_failure(t, a, ip, later);
	assert_int_equal(blocked_for(t, a, ip, later), 0);
}

static void test_bounded_table(void **state)
{
	struct throttle *t = *state;
	char acct[64], ip[64];
	int64_t now = T0;
	for (int i = 0; i < 100000; i++) {
		snprintf(acct, sizeof(acct), "user%d@spray.example", i);
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		throttle_failure(t, acct, ip, now);
		now += 1000; /* 1 µs apart */
	}
	/* lookups still work for keys used after the flood */
	const char *a = "frank@example.com", *addr = "192.0.2.200";
	assert_int_equal(blocked_for(t, a, addr, now), 0);
	for (int i = 0; i < THROTTLE_ACCOUNT_LIMIT; i++)
		throttle_failure(t, a, addr, now);
	assert_int_equal(blocked_for(t, a, addr, now), 1);
	assert_int_equal(blocked_for(t, "grace@example.com", "192.0.2.201", now), 0);
	/* very long keys are fine too */
	char *longkey = malloc(100000);
	assert_non_null(longkey);
	memset(longkey, 'k', 99999);
	longkey[99999] = '\0';
	throttle_failure(t, longkey, longkey, now);
	assert_int_equal(blocked_for(t, longkey, longkey, now), 0);
	assert_int_equal(blocked_for(t, "", "", now), 0);
	free(longkey);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_account_lockout_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_others_unaffected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_address_lockout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_success_resets_account, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_expires, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounded_table, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
