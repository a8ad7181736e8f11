/*
 * test-nodes.c — enrollment tokens (single use, expiry, binding, the one
 * answer for every bad token) and the node inventory (heartbeats in
 * memory, written by the sweep, reachability changes reported once,
 * revocation, reload from the store).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "auth/enroll.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/random.h"
#include "sched/node.h"
#include "store/store.h"
#include "tmpdir.h"

#define FP "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SEC NSEC_PER_SEC

struct ctx {
	char dir[64];
	struct store *s;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	if (tmpdir_make(c->dir, sizeof(c->dir), "nodes") != 0 || store_open(c->dir, &c->s) != 0)
		return -1;
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

/* Uses the token up for a new node, in one transaction as agentapi.c does. */
static int consume(struct store *s, const char *token_id, const char *name, int64_t now)
{
	struct node_info n = {.enrolled_at = now, .cert_not_after = now + 3600 * SEC};
	assert_int_equal(random_id("nod", n.id), 0);
	snprintf(n.name, sizeof(n.name), "%s", name);
	snprintf(n.cert_fingerprint, sizeof(n.cert_fingerprint), FP);
	struct store_tx *tx;
	assert_int_equal(store_tx_begin(s, NULL, STORE_WRITE, &tx), 0);
	int rc = enroll_token_consume(tx, token_id, n.id, now);
	if (rc == 0)
		rc = node_insert(tx, &n);
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	return store_tx_commit(tx);
}

static void test_token_shape_and_single_use(void **state)
{
	struct ctx *c = *state;
	struct enroll_token t, got;
	char text[ENROLL_TOKEN_LEN];
	assert_int_equal(enroll_token_create(c->s, FP, 600, NULL, "usr_x", &t, text), 0);
	assert_int_equal(strlen(text), ENROLL_TOKEN_LEN - 1);
	assert_memory_equal(text, "odx-enroll-" FP "-", 11 + 64 + 1);
	assert_memory_equal(text + 76, t.id + 4, 24);
	int64_t now = time_now_ns();
	assert_int_equal(enroll_token_check(c->s, text, now, &got), 0);
	assert_string_equal(got.id, t.id);
	assert_string_equal(got.node_name, "");
	/* checking does not use it up; consuming does, once */
	assert_int_equal(enroll_token_check(c->s, text, now, &got), 0);
	assert_int_equal(consume(c->s, t.id, "n1", now), 0);
	assert_int_equal(enroll_token_check(c->s, text, now, &got), ODX_EAUTH);
	assert_int_equal(consume(c->s, t.id, "n2", now), ODX_EAUTH);
}

static void test_token_expiry_and_binding(void **state)
{
	struct ctx *c = *state;
	struct enroll_token t, got;
	char text[ENROLL_TOKEN_LEN];
	assert_int_equal(enroll_token_create(c->s, FP, 1, "web-1", "usr_x", &t, text), 0);
	assert_string_equal(t.node_name, "web-1");
	int64_t now = time_now_ns();
	assert_int_equal(enroll_token_check(c->s, text, now, &got), 0);
	assert_string_equal(got.node_name, "web-1");
	assert_int_equal(enroll_token_check(c->s, text, now + 2 * SEC, &got), ODX_EAUTH);
	assert_int_equal(consume(c->s, t.id, "web-1", now + 2 * SEC), ODX_EAUTH);
	/* bounds */
	assert_int_equal(enroll_token_create(c->s, FP, 0, NULL, "u", &t, text), ODX_EINVAL);
	assert_int_equal(enroll_token_create(c->s, FP, 86401, NULL, "u", &t, text), ODX_EINVAL);
	assert_int_equal(enroll_token_create(c->s, FP, 60, "Bad_Name", "u", &t, text), ODX_EINVAL);
	assert_int_equal(enroll_token_create(c->s, "abc", 60, NULL, "u", &t, text), ODX_EINVAL);
}

static void test_bad_tokens_get_one_answer(void **state)
{
	struct ctx *c = *state;
	struct enroll_token t, got;
	char text[ENROLL_TOKEN_LEN], bad[ENROLL_TOKEN_LEN + 8];
	assert_int_equal(enroll_token_create(c->s, FP, 600, NULL, "usr_x", &t, text), 0);
	int64_t now = time_now_ns();
	/* wrong secret, same id */
	snprintf(bad, sizeof(bad), "%s", text);
	bad[ENROLL_TOKEN_LEN - 2] = bad[ENROLL_TOKEN_LEN - 2] == '0' ? '1' : '0';
	assert_int_equal(enroll_token_check(c->s, bad, now, &got), ODX_EAUTH);
	/* unknown id */
	snprintf(bad, sizeof(bad), "%s", text);
	bad[80] = bad[80] == '0' ? '1' : '0';
	assert_int_equal(enroll_token_check(c->s, bad, now, &got), ODX_EAUTH);
	/* malformed */
	const char *junk[] = {"", "odx-enroll-", "odx-enroll-" FP, "ODX-ENROLL-" FP "-00",
			      "odk_0123"};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		assert_int_equal(enroll_token_check(c->s, junk[i], now, &got), ODX_EAUTH);
	snprintf(bad, sizeof(bad), "%s", text);
	bad[20] = 'G';
	assert_int_equal(enroll_token_check(c->s, bad, now, &got), ODX_EAUTH);
	snprintf(bad, sizeof(bad), "%sa", text);
	assert_int_equal(enroll_token_check(c->s, bad, now, &got), ODX_EAUTH);
	/* the real one still works: a wrong secret does not burn it */
	assert_int_equal(enroll_token_check(c->s, text, now, &got), 0);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(enroll_name_valid("a"));
	assert_true(enroll_name_valid("web-01"));
	assert_false(enroll_name_valid(""));
	assert_false(enroll_name_valid("-web"));
	assert_false(enroll_name_valid("Web"));
	assert_false(enroll_name_valid("a_b"));
	assert_false(enroll_name_valid("../x"));
	char long_name[80];
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	assert_false(enroll_name_valid(long_name));
	long_name[63] = '\0';
	assert_true(enroll_name_valid(long_name));
}

struct changes {
	int n;
	bool last_unreachable;
	char last_id[ID_MAX_LEN];
};

static void on_change(const struct node_info *n, bool unreachable, void *arg)
{
	struct changes *ch = arg;
	ch->n++;
	ch->last_unreachable = unreachable;
	snprintf(ch->last_id, sizeof(ch->last_id), "%s", n->id);
}

static void add_node(struct ctx *c, struct node_registry *r, const char *name, int64_t now,
		     struct node_info *out)
{
	struct node_info n = {.enrolled_at = now, .cert_not_after = now + 3600 * SEC};
	assert_int_equal(random_id("nod", n.id), 0);
	snprintf(n.name, sizeof(n.name), "%s", name);
	snprintf(n.cert_fingerprint, sizeof(n.cert_fingerprint), FP);
	struct store_tx *tx;
	assert_int_equal(store_tx_begin(c->s, NULL, STORE_WRITE, &tx), 0);
	int rc = node_insert(tx, &n);
	if (rc < 0) {
		store_tx_abort(tx);
		assert_int_equal(rc, 0);
	}
	assert_int_equal(store_tx_commit(tx), 0);
	assert_int_equal(node_registry_add(r, &n, now), 0);
	*out = n;
}

static void test_inventory(void **state)
{
	struct ctx *c = *state;
	struct node_registry *r;
	int64_t now = time_now_ns(), grace = 3 * SEC;
	assert_int_equal(node_registry_open(c->s, grace, &r), 0);
	struct node_info a, b;
	add_node(c, r, "alpha", now, &a);
	add_node(c, r, "beta", now, &b);
	/* a second live node with the same name is refused by the store */
	struct node_info dup = a;
	assert_int_equal(random_id("nod", dup.id), 0);
	struct store_tx *tx;
	assert_int_equal(store_tx_begin(c->s, NULL, STORE_WRITE, &tx), 0);
	assert_int_equal(node_insert(tx, &dup), ODX_ECONFLICT);
	store_tx_abort(tx);

	json_t *status = json_pack("{s:s, s:{s:i}}", "agent_version", "1.0", "capacity", "cpus", 2);
	assert_int_equal(node_registry_heartbeat(r, a.id, status, now + 1 * SEC), 0);
	json_decref(status);
	assert_int_equal(node_registry_heartbeat(r, "nod_nope", NULL, now), ODX_ENOTFOUND);

	/* b goes quiet: reported unreachable once, a stays ready */
	struct changes ch = {0};
	assert_int_equal(node_registry_sweep(r, c->s, now + 2 * SEC, on_change, &ch), 0);
	assert_int_equal(ch.n, 0);
	assert_int_equal(node_registry_sweep(r, c->s, now + 3500 * 1000 * 1000LL, on_change, &ch),
			 0);
	assert_int_equal(ch.n, 1);
	assert_string_equal(ch.last_id, b.id);
	assert_true(ch.last_unreachable);
	assert_int_equal(node_registry_sweep(r, c->s, now + 3600 * 1000 * 1000LL, on_change, &ch),
			 0);
	assert_int_equal(ch.n, 1);
	json_t *v;
	assert_int_equal(node_registry_get(r, b.id, now + 4 * SEC, &v), 0);
	assert_string_equal(json_string_value(json_object_get(v, "state")), "unreachable");
	json_decref(v);
	assert_int_equal(node_registry_get(r, a.id, now + 2 * SEC, &v), 0);
	assert_string_equal(json_string_value(json_object_get(v, "state")), "ready");
	assert_string_equal(json_string_value(json_object_get(v, "agent_version")), "1.0");
	json_decref(v);
	/* it comes back (and a keeps talking) */
	assert_int_equal(node_registry_heartbeat(r, a.id, NULL, now + 4 * SEC), 0);
	assert_int_equal(node_registry_heartbeat(r, b.id, NULL, now + 5 * SEC), 0);
	assert_int_equal(node_registry_sweep(r, c->s, now + 5 * SEC, on_change, &ch), 0);
	assert_int_equal(ch.n, 2);
	assert_false(ch.last_unreachable);

	/* revoke: gone from memory and, after a reload, from the inventory */
	struct node_info gone;
	assert_int_equal(node_registry_revoke(r, c->s, a.id, &gone), 0);
	assert_string_equal(gone.name, "alpha");
	assert_int_equal(node_registry_live(r, a.id), ODX_ENOTFOUND);
	assert_int_equal(node_registry_revoke(r, c->s, a.id, &gone), ODX_ENOTFOUND);
	json_t *items;
	assert_int_equal(node_registry_list(r, NULL, 50, now, &items), 0);
	assert_int_equal(json_array_size(items), 1);
	json_decref(items);
	node_registry_free(r);

	assert_int_equal(node_registry_open(c->s, grace, &r), 0);
	assert_int_equal(node_registry_live(r, a.id), ODX_ENOTFOUND);
	assert_int_equal(node_registry_live(r, b.id), 0);
	/* the sweep wrote b's last heartbeat: it is what the reload knows */
	assert_int_equal(node_registry_get(r, b.id, now + 5 * SEC, &v), 0);
	assert_string_equal(json_string_value(json_object_get(v, "state")), "ready");
	json_decref(v);
	/* the name of a revoked node is free again */
	struct node_info a2;
	add_node(c, r, "alpha", now, &a2);
	node_registry_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_token_shape_and_single_use, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_expiry_and_binding, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_tokens_get_one_answer, setup, teardown),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test_setup_teardown(test_inventory, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
