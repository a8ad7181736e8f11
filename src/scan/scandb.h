/*
 * scandb.h — a tenant's scans, gating policies, scan settings and policy
 * overrides as stored things (docs/scanning.md). The merged findings of a
 * completed scan are kept as the JSON the API shows (model.h's
 * scan_finding_to_json), so a scan reads back exactly as it was answered;
 * scandb_load_findings turns them back into a report for policy checks.
 */
#ifndef ODX_SCANDB_H
#define ODX_SCANDB_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "crypto/random.h"
#include "scan/model.h"
#include "store/store.h"

#define SCANDB_ID_PREFIX	  "scn"
#define SCANDB_RESCAN_DEFAULT_S	  86400
#define SCANDB_RESCAN_MAX_S	  (30 * 86400)
#define SCANDB_POLICIES_MAX	  64

/* A new scan of image (normalised) in state "queued"; id[] gets its id. */
int scandb_create(struct store *s, const char *tenant, const char *image, const char *trigger,
		  const char *actor, char id[static ID_MAX_LEN]);
/* queued -> running; ODX_ECONFLICT when it was not queued. */
int scandb_start(struct store *s, const char *tenant, const char *id);
/*
 * Ends a scan: status "completed" (result = {image_info, findings,
 * recommendations} and summary set) or "failed" (error set); engines says
 * what each engine did. Computes and stores the diff against the image's
 * previous completed scan. Consumes nothing (the JSON stays the caller's).
 */
int scandb_finish(struct store *s, const char *tenant, const char *id, const char *digest,
		  const json_t *engines, const json_t *summary, const json_t *result,
		  const char *error);
/* One scan with findings, recommendations and diff; ODX_ENOTFOUND. */
int scandb_get(struct store *s, const char *tenant, const char *id, json_t **out);
/* Up to limit+1 scan summaries older than the scan `after` ("" = newest), newest first;
 * image (normalised) or NULL for all. */
int scandb_list(struct store *s, const char *tenant, const char *after, int limit,
		const char *image, json_t **items);
/* The findings (JSON array) of image's latest completed scan and that scan's id; a reference
 * with a digest ("name@sha256:...") also takes a scan of any name whose report had that
 * digest. ODX_ENOTFOUND when the image has none. */
int scandb_latest(struct store *s, const char *tenant, const char *image, json_t **findings,
		  char id[static ID_MAX_LEN]);
/* Seconds since image's newest scan of any state was made (-1: never), and whether one is
 * queued or running. */
int scandb_age(struct store *s, const char *tenant, const char *image, int64_t now_ns,
	       int64_t *age_s, int *in_flight);
/* Puts the scans a restart interrupted (running) back in the queue; [{"id","image"}] of every
 * queued scan, oldest first. */
int scandb_requeue(struct store *s, const char *tenant, json_t **out);

/* The diff of two findings arrays: {"new": [...], "fixed": [...], "unchanged": n}. */
json_t *scandb_diff(const json_t *previous, const json_t *current);
/* A report whose findings are the JSON ones (as scan_finding_to_json wrote them). */
int scandb_load_findings(const json_t *findings, struct scan_report **out);

/* Policies: body is the policy's JSON (validated by the caller with scan_policy_parse).
 * create_only: ODX_ECONFLICT when the name is taken (checked in the write transaction). */
int scandb_policy_put(struct store *s, const char *tenant, const char *name, const json_t *body,
		      const char *actor, bool create_only, int *created);
int scandb_policy_get(struct store *s, const char *tenant, const char *name, json_t **out);
/* All of the tenant's policies (at most SCANDB_POLICIES_MAX), by name. */
int scandb_policy_list(struct store *s, const char *tenant, json_t **items);
int scandb_policy_delete(struct store *s, const char *tenant, const char *name);

int scandb_settings_get(struct store *s, const char *tenant, int64_t *rescan_interval_s);
int scandb_settings_put(struct store *s, const char *tenant, int64_t rescan_interval_s);

/* Records an emergency override; id[] gets its id. */
int scandb_override_add(struct store *s, const char *tenant, const char *deployment,
			const char *image, const char *actor, const char *justification,
			const json_t *verdict, char id[static ID_MAX_LEN]);

#endif
