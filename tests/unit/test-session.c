/* test-session.c — refresh-token families: rotation, reuse detection, logout, expiry. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "auth/session.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/random.h"
#include "store/store.h"
#include "tmpdir.h"

struct ctx {
	char dir[64];
	struct store *s;
	int64_t now;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	if (tmpdir_make(c->dir, sizeof(c->dir), "session") != 0 || store_open(c->dir, &c->s) != 0)
		return -1;
	c->now = time_now_ns();
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	store_free(c->s);
	tmpdir_remove(c->dir);
	free(c);
	return 0;
}

static struct session_subject subject(bool tenant)
{
	struct session_subject who;
	memset(&who, 0, sizeof(who));
	if (tenant)
		assert_int_equal(random_id("ten", who.tenant_id), 0);
	assert_int_equal(random_id("usr", who.user_id), 0);
	return who;
}

static void assert_token_shape(const char *t)
{
	assert_int_equal(strlen(t), REFRESH_TOKEN_LEN - 1);
	assert_memory_equal(t, "odr_", 4);
	for (size_t i = 4; i < REFRESH_TOKEN_LEN - 1; i++)
		assert_non_null(strchr("0123456789abcdef", t[i]));
}

static int refresh(struct ctx *c, const char *tok, int64_t now, char next[static REFRESH_TOKEN_LEN],
		   struct session_subject *who)
{
	return session_refresh(c->s, tok, now, next, who);
}

static void test_refresh_rotates(void **state)
{
	struct ctx *c = *state;
	struct session_subject who = subject(true), got;
	char t0[REFRESH_TOKEN_LEN], t1[REFRESH_TOKEN_LEN], t2[REFRESH_TOKEN_LEN];
	assert_int_equal(session_start(c->s, &who, c->now, t0), 0);
	assert_token_shape(t0);

	memset(&got, 0, sizeof(got));
	assert_int_equal(refresh(c, t0, c->now + 1, t1, &got), 0);
	assert_token_shape(t1);
	assert_string_not_equal(t0, t1);
	assert_string_equal(got.user_id, who.user_id);
	assert_string_equal(got.tenant_id, who.tenant_id);
	assert_true(random_id_valid("fam", got.family_id));
	char family[ID_MAX_LEN];
	memcpy(family, got.family_id, sizeof(family));

	assert_int_equal(refresh(c, t1, c->now + 2, t2, &got), 0);
	assert_string_not_equal(t1, t2);
	assert_string_equal(got.family_id, family); /* same family along the chain */

	/* the platform administrator: no tenant */
	struct session_subject pa = subject(false);
	assert_int_equal(session_start(c->s, &pa, c->now, t0), 0);
	assert_int_equal(refresh(c, t0, c->now + 1, t1, &got), 0);
	assert_string_equal(got.tenant_id, "");
	assert_string_equal(got.user_id, pa.user_id);
}

static void test_reuse_revokes_family(void **state)
{
	struct ctx *c = *state;
	struct session_subject who = subject(true), got;
	char t0[REFRESH_TOKEN_LEN], t1[REFRESH_TOKEN_LEN], t2[REFRESH_TOKEN_LEN];
	char t3[REFRESH_TOKEN_LEN];
	assert_int_equal(session_start(c->s, &who, c->now, t0), 0);
	assert_int_equal(refresh(c, t0, c->now + 1, t1, &got), 0);
	char family[ID_MAX_LEN];
	memcpy(family, got.family_id, sizeof(family));

	/* t0 comes back: reuse; *who names the victim for the audit */
	memset(&got, 0, sizeof(got));
	memset(t2, 'X', sizeof(t2));
	assert_int_equal(refresh(c, t0, c->now + 2, t2, &got), ODX_EREUSED);
	assert_string_equal(got.user_id, who.user_id);
	assert_string_equal(got.tenant_id, who.tenant_id);
	assert_string_equal(got.family_id, family);
	/* no successor was handed out */
	for (size_t i = 0; i < sizeof(t2); i++)
		assert_int_equal(t2[i], 'X');

	/* the newest token of the family is dead too */
	assert_int_equal(refresh(c, t1, c->now + 3, t3, &got), ODX_EAUTH);
	/* and presenting the old one again is still reuse, never a success */
	assert_int_equal(refresh(c, t0, c->now + 4, t3, &got), ODX_EREUSED);
}

static void test_reuse_revokes_descendants(void **state)
{
	struct ctx *c = *state;
	struct session_subject who = subject(true), got;
	char t[5][REFRESH_TOKEN_LEN], x[REFRESH_TOKEN_LEN];
	assert_int_equal(session_start(c->s, &who, c->now, t[0]), 0);
	for (int i = 1; i < 5; i++)
		assert_int_equal(refresh(c, t[i - 1], c->now + i, t[i], &got), 0);
	/* an attacker replays the second token; every descendant dies */
	assert_int_equal(refresh(c, t[1], c->now + 10, x, &got), ODX_EREUSED);
	assert_int_equal(refresh(c, t[4], c->now + 11, x, &got), ODX_EAUTH);
	for (int i = 0; i < 4; i++)
		assert_int_equal(refresh(c, t[i], c->now + 12, x, &got), ODX_EREUSED);

	/* another user's family is untouched */
	struct session_subject other = subject(true);
	char o0[REFRESH_TOKEN_LEN], o1[REFRESH_TOKEN_LEN];
	assert_int_equal(session_start(c->s, &other, c->now, o0), 0);
	assert_int_equal(refresh(c, t[2], c->now + 13, x, &got), ODX_EREUSED);
	assert_int_equal(refresh(c, o0, c->now + 14, o1, &got), 0);
	assert_string_equal(got.user_id, other.user_id);
}

static void test_logout(void **state)
{
	struct ctx *c = *state;
	struct session_subject who = subject(true), got;
	char t0[REFRESH_TOKEN_LEN], t1[REFRESH_TOKEN_LEN], t2[REFRESH_TOKEN_LEN];
	assert_int_equal(session_start(c->s, &who, c->now, t0), 0);
	assert_int_equal(refresh(c, t0, c->now + 1, t1, &got), 0);
	assert_int_equal(session_logout(c->s, t1, who.user_id, c->now + 2), 0);
	assert_int_equal(refresh(c, t1, c->now + 3, t2, &got), ODX_EAUTH);

	/* logout with a token of the family also kills the rest of the family */
	assert_int_equal(session_start(c->s, &who, c->now, t0), 0);
	assert_int_equal(refresh(c, t0, c->now + 1, t1, &got), 0);
	assert_int_equal(session_logout(c->s, t0, who.user_id, c->now + 2), 0);
	assert_int_equal(refresh(c, t1, c->now + 3, t2, &got), ODX_EAUTH);
}

static void test_logout_other_user(void **state)
{
	struct ctx *c = *state;
	struct session_subject who = subject(true), mallory = subject(true), got;
	char t0[REFRESH_TOKEN_LEN], t1[REFRESH_TOKEN_LEN];
	assert_int_equal(session_start(c->s, &who, c->now, t0), 0);
	assert_int_equal(session_logout(c->s, t0, mallory.user_id, c->now + 1), ODX_EAUTH);
	assert_int_equal(session_logout(c->s, t0, "", c->now + 1), ODX_EAUTH);
	/* still alive */
	assert_int_equal(refresh(c, t0, c->now + 2, t1, &got), 0);
	assert_string_equal(got.user_id, who.user_id);
	/* unknown and malformed tokens */
	char unknown[REFRESH_TOKEN_LEN];
	memcpy(unknown, t1, sizeof(unknown));
	unknown[10] = unknown[10] == 'a' ? 'b' : 'a';
	assert_int_equal(session_logout(c->s, unknown, who.user_id, c->now + 3), ODX_EAUTH);
	assert_int_equal(session_logout(c->s, "odr_", who.user_id, c->now + 3), ODX_EAUTH);
	assert_int_equal(session_logout(c->s, "", who.user_id, c->now + 3), ODX_EAUTH);
}

static void test_expired_family(void **state)
{
	struct ctx *c = *state;
	struct session_subject who = subject(true), got;
	char t0[REFRESH_TOKEN_LEN], t1[REFRESH_TOKEN_LEN];
	int64_t day = 86400LL * NSEC_PER_SEC;
	assert_int_equal(session_start(c->s, &who, c->now - 31 * day, t0), 0);
	assert_int_equal(refresh(c, t0, c->now, t1, &got), ODX_EAUTH);

	/* 29 days old: still alive, and the successor inherits the family's end */
	assert_int_equal(session_start(c->s, &who, c->now - 29 * day, t0), 0);
	assert_int_equal(refresh(c, t0, c->now, t1, &got), 0);
	char t2[REFRESH_TOKEN_LEN];
	assert_int_equal(refresh(c, t1, c->now + 2 * day, t2, &got), ODX_EAUTH);

	/* the boundary: exactly SESSION_FAMILY_TTL_S after the start is over */
	assert_int_equal(session_start(c->s, &who, c->now, t0), 0);
	assert_int_equal(refresh(c, t0, c->now + SESSION_FAMILY_TTL_S * NSEC_PER_SEC, t1, &got),
			 ODX_EAUTH);
	assert_int_equal(refresh(c, t0, c->now + SESSION_FAMILY_TTL_S * NSEC_PER_SEC - 1, t1, &got),
			 0);
}

static void test_malformed(void **state)
{
	struct ctx *c = *state;
	struct session_subject who = subject(true), got;
	char t0[REFRESH_TOKEN_LEN], next[REFRESH_TOKEN_LEN];
	assert_int_equal(session_start(c->s, &who, c->now, t0), 0);
	char buf[REFRESH_TOKEN_LEN + 8];
	const char *bad[] = {
		"", "odr_", "odr", "odk_00", "x",
		"odr_0000000000000000000000000000000000000000000000000000000000000000", /* unknown */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(refresh(c, bad[i], c->now, next, &got), ODX_EAUTH);
	/* one character short, one too many, another prefix, upper case */
	memcpy(buf, t0, REFRESH_TOKEN_LEN);
	buf[REFRESH_TOKEN_LEN - 2] = '\0';
	assert_int_equal(refresh(c, buf, c->now, next, &got), ODX_EAUTH);
	snprintf(buf, sizeof(buf), "%s0", t0);
	assert_int_equal(refresh(c, buf, c->now, next, &got), ODX_EAUTH);
	memcpy(buf, t0, REFRESH_TOKEN_LEN);
	memcpy(buf, "odk_", 4);
	assert_int_equal(refresh(c, buf, c->now, next, &got), ODX_EAUTH);
	memcpy(buf, t0, REFRESH_TOKEN_LEN);
	for (size_t i = 4; i < REFRESH_TOKEN_LEN - 1; i++)
		if (buf[i] >= 'a' && buf[i] <= 'f')
			buf[i] = (char)(buf[i] - 'a' + 'A');
	if (strcmp(buf, t0) != 0)
		assert_int_equal(refresh(c, buf, c->now, next, &got), ODX_EAUTH);
	/* none of that spent or revoked the real one */
	assert_int_equal(refresh(c, t0, c->now, next, &got), 0);
}

static void test_revoke_user(void **state)
{
	struct ctx *c = *state;
	struct session_subject alice = subject(true), bob = subject(true), got;
	char a1[REFRESH_TOKEN_LEN], a2[REFRESH_TOKEN_LEN], b1[REFRESH_TOKEN_LEN];
	char next[REFRESH_TOKEN_LEN];
	assert_int_equal(session_start(c->s, &alice, c->now, a1), 0);
	assert_int_equal(session_start(c->s, &alice, c->now, a2), 0);
	assert_int_equal(session_start(c->s, &bob, c->now, b1), 0);
	assert_int_equal(session_revoke_user(c->s, alice.user_id, c->now + 1, "password_changed"), 0);
	assert_int_equal(refresh(c, a1, c->now + 2, next, &got), ODX_EAUTH);
	assert_int_equal(refresh(c, a2, c->now + 2, next, &got), ODX_EAUTH);
	assert_int_equal(refresh(c, b1, c->now + 2, next, &got), 0);
	assert_string_equal(got.user_id, bob.user_id);
	/* revoking a user with no sessions is fine; a later login works again */
	assert_int_equal(session_revoke_user(c->s, "usr_00000000000000000000000000000000", c->now, "x"),
			 0);
	assert_int_equal(session_start(c->s, &alice, c->now + 3, a1), 0);
	assert_int_equal(refresh(c, a1, c->now + 4, next, &got), 0);
}

static void test_persists_across_reopen(void **state)
{
	struct ctx *c = *state;
	struct session_subject who = subject(true), got;
	char t0[REFRESH_TOKEN_LEN], t1[REFRESH_TOKEN_LEN], t2[REFRESH_TOKEN_LEN];
	assert_int_equal(session_start(c->s, &who, c->now, t0), 0);
	assert_int_equal(refresh(c, t0, c->now + 1, t1, &got), 0);
	store_free(c->s);
	assert_int_equal(store_open(c->dir, &c->s), 0);
	assert_int_equal(refresh(c, t0, c->now + 2, t2, &got), ODX_EREUSED);
	assert_int_equal(refresh(c, t1, c->now + 3, t2, &got), ODX_EAUTH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refresh_rotates),
		cmocka_unit_test(test_reuse_revokes_family),
		cmocka_unit_test(test_reuse_revokes_descendants),
		cmocka_unit_test(test_logout),
		cmocka_unit_test(test_logout_other_user),
		cmocka_unit_test(test_expired_family),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_revoke_user),
		cmocka_unit_test(test_persists_across_reopen),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
