/* actions.c — see actions.h. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "crypto/random.h"
#include "sched/actions.h"

struct action {
	char id[ID_MAX_LEN], node[ID_MAX_LEN], container[ID_MAX_LEN];
	int tail;
	int64_t since;
	bool taken, done;
	int rc;
	char *output;
	size_t len;
	struct action *next;
};

struct actions {
	pthread_mutex_t lock;
	pthread_cond_t done; /* CLOCK_MONOTONIC */
	struct action *head;
	actions_wake_fn wake;
	void *arg;
};

int actions_new(actions_wake_fn wake, void *arg, struct actions **out)
{
	struct actions *a = calloc(1, sizeof(*a));
	if (!a)
		return ODX_ENOMEM;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->done, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&a->lock, NULL);
	a->wake = wake;
	a->arg = arg;
	*out = a;
	return 0;
}

void actions_free(struct actions *a)
{
	if (!a)
		return;
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->done);
	free(a);
}

static void unlink_action(struct actions *a, struct action *x)
{
	for (struct action **p = &a->head; *p; p = &(*p)->next)
		if (*p == x) {
			*p = x->next;
			return;
		}
}

int actions_logs(struct actions *a, const char *node_id, const char *container, int tail,
		 int64_t since_s, int timeout_ms, char **text, size_t *len)
{
	struct action x = {.tail = tail, .since = since_s};
	if (random_id("act", x.id) < 0)
		return ODX_EINTERNAL;
	snprintf(x.node, sizeof(x.node), "%s", node_id);
	snprintf(x.container, sizeof(x.container), "%s", container);
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&a->lock);
	x.next = a->head;
	a->head = &x;
	pthread_mutex_unlock(&a->lock);
	if (a->wake)
		a->wake(node_id, a->arg);
	pthread_mutex_lock(&a->lock);
	while (!x.done && pthread_cond_timedwait(&a->done, &a->lock, &until) == 0)
		;
	unlink_action(a, &x); /* gone: a late answer finds nothing */
	pthread_mutex_unlock(&a->lock);
	if (!x.done)
		return ODX_EUNAVAIL;
	if (x.rc == 0) {
		*text = x.output;
		*len = x.len;
	} else {
		free(x.output);
	}
	return x.rc;
}

json_t *actions_take(struct actions *a, const char *node_id)
{
	json_t *list = json_array();
	pthread_mutex_lock(&a->lock);
	for (struct action *x = a->head; list && x; x = x->next) {
		if (x->taken || strcmp(x->node, node_id) != 0)
			continue;
		x->taken = true;
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:i, s:I}", "id", x->id, "type",
						      "logs", "container", x->container, "tail",
						      x->tail, "since", (json_int_t)x->since));
	}
	pthread_mutex_unlock(&a->lock);
	return list;
}

int actions_result(struct actions *a, const char *node_id, const char *id, const char *error,
		   const void *output, size_t len)
{
	if (len > ACTIONS_OUTPUT_MAX)
		return ODX_ETOOBIG;
	char *copy = NULL;
	if (!error && !(copy = malloc(len + 1)))
		return ODX_ENOMEM;
	if (copy) {
		memcpy(copy, output, len);
		copy[len] = '\0';
	}
	pthread_mutex_lock(&a->lock);
	struct action *x = a->head;
	while (x && (strcmp(x->id, id) != 0 || strcmp(x->node, node_id) != 0 || x->done))
		x = x->next;
	if (x) {
		x->done = true;
		x->rc = !error ? 0 : strcmp(error, "not_found") == 0 ? ODX_ENOTFOUND : ODX_EIO;
		x->output = copy;
		x->len = len;
		pthread_cond_broadcast(&a->done);
	}
	pthread_mutex_unlock(&a->lock);
	if (!x)
		free(copy);
	return x ? 0 : ODX_ENOTFOUND;
}
