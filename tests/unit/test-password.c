/* test-password.c — Argon2id hashes in PHC form and the password policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/password.h"
#include "core/err.h"

#define PW "correct horse battery staple"
#define PREFIX_M8192_T1 "$argon2id$v=19$m=8192,t=1,p=1$"

static int setup(void **state)
{
	(void)state;
	password_set_params(8192, 1);
	return 0;
}

static void test_round_trip(void **state)
{
	(void)state;
	char h[PASSWORD_HASH_MAX];
	assert_int_equal(password_hash(PW, strlen(PW), h), 0);
	assert_true(strnlen(h, sizeof(h)) < sizeof(h));
	assert_int_equal(strncmp(h, PREFIX_M8192_T1, strlen(PREFIX_M8192_T1)), 0);
	assert_int_equal(password_verify(h, PW, strlen(PW)), 0);
	/* A fresh salt per hash. */
	char h2[PASSWORD_HASH_MAX];
	assert_int_equal(password_hash(PW, strlen(PW), h2), 0);
	assert_string_not_equal(h, h2);
	assert_int_equal(password_verify(h2, PW, strlen(PW)), 0);
}

static void test_wrong_password(void **state)
{
	(void)state;
	char h[PASSWORD_HASH_MAX];
	assert_int_equal(password_hash(PW, strlen(PW), h), 0);
	assert_int_equal(password_verify(h, "correct horse battery stapl", strlen(PW) - 1), ODX_EAUTH);
	assert_int_equal(password_verify(h, "Correct horse battery staple", strlen(PW)), ODX_EAUTH);
	assert_int_equal(password_verify(h, PW "x", strlen(PW) + 1), ODX_EAUTH);
	assert_int_equal(password_verify(h, "", 0), ODX_EAUTH);
	/* the length is what counts, not a NUL: a prefix of the password is another password */
	assert_int_equal(password_verify(h, PW, strlen(PW) - 1), ODX_EAUTH);
}

static void test_params_travel_with_hash(void **state)
{
	(void)state;
	char h[PASSWORD_HASH_MAX];
	password_set_params(8192, 2);
	assert_int_equal(password_hash(PW, strlen(PW), h), 0);
	const char *p2 = "$argon2id$v=19$m=8192,t=2,p=1$";
	assert_int_equal(strncmp(h, p2, strlen(p2)), 0);
	password_set_params(16384, 1);
	assert_int_equal(password_verify(h, PW, strlen(PW)), 0);
	assert_int_equal(password_verify(h, "wrong password!", 15), ODX_EAUTH);
	char h3[PASSWORD_HASH_MAX];
	assert_int_equal(password_hash(PW, strlen(PW), h3), 0);
	const char *p3 = "$argon2id$v=19$m=16384,t=1,p=1$";
	assert_int_equal(strncmp(h3, p3, strlen(p3)), 0);
	password_set_params(8192, 1);
	assert_int_equal(password_verify(h, PW, strlen(PW)), 0);
	assert_int_equal(password_verify(h3, PW, strlen(PW)), 0);
}

static void test_verify_bad_inputs(void **state)
{
	(void)state;
	assert_int_equal(password_verify(NULL, PW, strlen(PW)), ODX_EAUTH);
	assert_int_equal(password_verify(NULL, "", 0), ODX_EAUTH);
	assert_int_equal(password_verify("", PW, strlen(PW)), ODX_EAUTH);
	assert_int_equal(password_verify("$argon2id$garbage", PW, strlen(PW)), ODX_EAUTH);
	assert_int_equal(password_verify("plaintext-password", "plaintext-password", 18), ODX_EAUTH);
	/* another Argon2 variant is not ours */
	assert_int_equal(password_verify("$argon2i$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0$"
					 "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
					 PW, strlen(PW)),
			 ODX_EAUTH);
	char h[PASSWORD_HASH_MAX];
	assert_int_equal(password_hash(PW, strlen(PW), h), 0);
	/* a tampered tag */
	size_t n = strlen(h);
	h[n - 2] = h[n - 2] == 'A' ? 'B' : 'A';
	assert_int_equal(password_verify(h, PW, strlen(PW)), ODX_EAUTH);
	/* over the maximum length */
	char *big = malloc(PASSWORD_MAX_LEN + 2);
	assert_non_null(big);
	memset(big, 'a', PASSWORD_MAX_LEN + 1);
	big[PASSWORD_MAX_LEN + 1] = '\0';
	assert_int_equal(password_hash(big, PASSWORD_MAX_LEN + 1, h), ODX_EINVAL);
	assert_int_equal(password_verify(h, big, PASSWORD_MAX_LEN + 1), ODX_EAUTH);
	free(big);
}

static void test_policy(void **state)
{
	(void)state;
	assert_int_equal(password_policy_check("abcdefghijk", 11), ODX_EINVAL);
	assert_int_equal(password_policy_check("abcdefghijkl", 12), 0);
	assert_int_equal(password_policy_check("", 0), ODX_EINVAL);
	/* 12 two-byte characters (24 bytes) pass; 11 of them (22 bytes) do not. */
	const char *e12 = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
	assert_int_equal(strlen(e12), 24);
	assert_int_equal(password_policy_check(e12, 24), 0);
	assert_int_equal(password_policy_check(e12, 22), ODX_EINVAL);
	/* 12 four-byte characters: 48 bytes, 12 characters */
	char rockets[4 * 12 + 1];
	for (int i = 0; i < 12; i++)
		memcpy(rockets + 4 * i, "\xf0\x9f\x9a\x80", 4);
	rockets[48] = '\0';
	assert_int_equal(password_policy_check(rockets, 48), 0);
	assert_int_equal(password_policy_check(rockets, 44), ODX_EINVAL);
	/* an embedded NUL */
	assert_int_equal(password_policy_check("abcdefgh\0ijklmnop", 17), ODX_EINVAL);
	assert_int_equal(password_policy_check("abcdefghijklmnop\0", 17), ODX_EINVAL);
	/* the upper bound is in bytes */
	char *big = malloc(PASSWORD_MAX_LEN + 1);
	assert_non_null(big);
	memset(big, 'a', PASSWORD_MAX_LEN + 1);
	assert_int_equal(password_policy_check(big, PASSWORD_MAX_LEN), 0);
	assert_int_equal(password_policy_check(big, PASSWORD_MAX_LEN + 1), ODX_EINVAL);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_params_travel_with_hash),
		cmocka_unit_test(test_verify_bad_inputs),
		cmocka_unit_test(test_policy),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
