/*
 * deployment.h — a tenant's deployments and their revisions
 * (docs/deployments.md): the validated spec, quota checks inside the
 * tenant's write transaction, revisions kept for rollback.
 *
 * A template is the JSON object every replica of one revision is made from:
 * {image, command, env, resources: {cpu_millicores, memory_mb, pids,
 * storage_mb}, writable_paths, user}, always complete (defaults filled in).
 */
#ifndef ODX_DEPLOYMENT_H
#define ODX_DEPLOYMENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/jsonx.h"
#include "store/store.h"
#include "tenancy/tenancy.h"

#define DEPLOY_NAME_MAX 63
#define DEPLOY_REPLICAS_MAX 100
#define DEPLOY_REVISIONS_KEPT 10

struct deploy_spec {
	char name[DEPLOY_NAME_MAX + 1]; /* "" when the body names none */
	json_t *template;		/* the template fields the body gave (owned) */
	int64_t replicas;		/* -1 when absent */
};

struct deployment {
	char name[DEPLOY_NAME_MAX + 1];
	int64_t revision;
	int64_t replicas;
	int64_t restart_generation;
	char created_by[ID_MAX_LEN];
	int64_t created_at, updated_at;
	json_t *template; /* the current revision's (owned) */
};

void deploy_spec_free(struct deploy_spec *s);
void deployment_free(struct deployment *d);
bool deploy_name_valid(const char *name);
/* The Docker reference grammar, simplified: [host[:port]/]path[:tag][@sha256:64hex]. */
bool deploy_image_valid(const char *ref);
/* The images the tenant's deployments run now (their current revisions), unique. */
int deploy_images(struct store *s, const char *tenant_id, json_t **out);

/*
 * Parses a create (partial false: name and image required) or update body.
 * 0, or ODX_EINVAL with a message naming the field.
 */
int deploy_spec_parse(json_t *body, bool partial, struct deploy_spec *out,
		      char msg[static JSONX_MSG_LEN]);

/*
 * Quota failures are ODX_EQUOTA with *limit naming the exceeded limit
 * ("cpu_millicores", "memory_mb", "containers", "storage_mb").
 */
int deploy_create(struct store *s, const struct tenant *t, const struct deploy_spec *spec,
		  const char *actor, struct deployment *out, const char **limit);
/* Applies the given fields; a changed template makes a new revision. */
int deploy_update(struct store *s, const struct tenant *t, const char *name,
		  const struct deploy_spec *spec, const char *actor, struct deployment *out,
		  const char **limit);
/* A new revision with the template of revision `to` (0: the one before the current). */
int deploy_rollback(struct store *s, const struct tenant *t, const char *name, int64_t to,
		    const char *actor, struct deployment *out, const char **limit);
/* Asks for every replica to be replaced (one at a time, by the scheduler). */
int deploy_restart(struct store *s, const char *tenant_id, const char *name,
		   struct deployment *out);
int deploy_delete(struct store *s, const char *tenant_id, const char *name);
int deploy_get(struct store *s, const char *tenant_id, const char *name, struct deployment *out);
/* Creator of a deployment (the ownership check of SPEC §3). */
int deploy_owner(struct store *s, const char *tenant_id, const char *name, char *owner,
		 size_t size);
/* Up to limit+1 deployments with name > after, as JSON. */
int deploy_list(struct store *s, const char *tenant_id, const char *after, int limit,
		json_t **items);
/* The kept revisions, newest first, as JSON. */
int deploy_revisions(struct store *s, const char *tenant_id, const char *name, json_t **items);
/* The template of one revision (owned). */
int deploy_template(struct store *s, const char *tenant_id, const char *name, int64_t revision,
		    json_t **out);
json_t *deployment_to_json(const struct deployment *d);

#endif
