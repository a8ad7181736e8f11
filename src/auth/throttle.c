/*
 * throttle.c — see throttle.h. A fixed table of slots indexed by SHA-256 of
 * the key with a short probe; when the probe is full the stalest slot is
 * reused, so memory stays bounded whatever an attacker sends.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "auth/throttle.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/hash.h"

#define SLOTS 8192
#define PROBE 8

struct slot {
	uint8_t key[SHA256_LEN];
	bool used;
	int failures;
	int64_t window_start, last_failure;
};

struct throttle {
	pthread_mutex_t lock;
	struct slot slots[SLOTS];
};

int throttle_new(struct throttle **out)
{
	struct throttle *t = calloc(1, sizeof(*t));
	if (!t)
		return ODX_ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
}

void throttle_free(struct throttle *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static void key_of(char kind, const char *s, uint8_t out[static SHA256_LEN])
{
	size_t n = strlen(s);
	char buf[512];
	if (n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[0] = kind;
	memcpy(buf + 1, s, n);
	hash_sha256(buf, n + 1, out);
}

/* The slot for key; with create, claims a free or the stalest slot. Lock held. */
static struct slot *find(struct throttle *t, const uint8_t key[static SHA256_LEN], bool create,
			 int64_t now)
{
	uint32_t h;
	memcpy(&h, key, sizeof(h));
	struct slot *victim = NULL;
	for (int i = 0; i < PROBE; i++) {
		struct slot *s = &t->slots[(h + (uint32_t)i) % SLOTS];
		if (s->used && memcmp(s->key, key, SHA256_LEN) == 0) {
			if (now - s->window_start > THROTTLE_WINDOW_S * NSEC_PER_SEC) {
				s->failures = 0;
				s->window_start = now;
			}
			return s;
		}
		if (!victim || !s->used || (victim->used && s->last_failure < victim->last_failure))
			victim = s;
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	memcpy(victim->key, key, SHA256_LEN);
	victim->used = true;
	victim->window_start = now;
	return victim;
}

static int64_t locked_until(const struct slot *s, int limit)
{
	if (!s || s->failures < limit)
		return 0;
	int shift = s->failures - limit;
	int64_t secs = shift >= 10 ? THROTTLE_WINDOW_S : (int64_t)1 << shift;
	if (secs > THROTTLE_WINDOW_S)
		secs = THROTTLE_WINDOW_S;
	return s->last_failure + secs * NSEC_PER_SEC;
}

int throttle_check(struct throttle *t, const char *account, const char *address, int64_t now_ns,
		   int *retry_after_s)
{
	uint8_t ka[SHA256_LEN], ki[SHA256_LEN];
	key_of('a', account, ka);
	key_of('i', address, ki);
	pthread_mutex_lock(&t->lock);
	int64_t until = locked_until(find(t, ka, false, now_ns), THROTTLE_ACCOUNT_LIMIT);
	int64_t until_ip = locked_until(find(t, ki, false, now_ns), THROTTLE_ADDRESS_LIMIT);
	pthread_mutex_unlock(&t->lock);
	if (until_ip > until)
		until = until_ip;
	if (until <= now_ns)
		return 0;
	*retry_after_s = (int)((until - now_ns + NSEC_PER_SEC - 1) / NSEC_PER_SEC);
	return ODX_ERATELIMIT;
}

void throttle_failure(struct throttle *t, const char *account, const char *address, int64_t now_ns)
{
	uint8_t ka[SHA256_LEN], ki[SHA256_LEN];
	key_of('a', account, ka);
	key_of('i', address, ki);
	pthread_mutex_lock(&t->lock);
	struct slot *s = find(t, ka, true, now_ns);
	s->failures++;
	s->last_failure = now_ns;
	s = find(t, ki, true, now_ns);
	s->failures++;
	s->last_failure = now_ns;
	pthread_mutex_unlock(&t->lock);
}

void throttle_success(struct throttle *t, const char *account)
{
	uint8_t ka[SHA256_LEN];
	key_of('a', account, ka);
	pthread_mutex_lock(&t->lock);
	struct slot *s = find(t, ka, false, 0);
	if (s)
		s->used = false;
	pthread_mutex_unlock(&t->lock);
}
