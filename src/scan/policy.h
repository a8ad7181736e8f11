/*
 * policy.h — a tenant's scan gating policies (SPEC §7, docs/scan-policies.md).
 *
 * A policy says which images it covers (glob patterns over image
 * references) and what blocks a deployment of them: any critical finding
 * (block_critical) and/or more high findings than max_high. Exceptions
 * waive one vulnerability id, with an owner, a reason and an expiry; an
 * expired exception stops applying by itself.
 *
 * Evaluation fails closed: an enabled blocking policy that covers the image
 * blocks it when no completed scan exists. A disabled policy never blocks.
 * Each policy applies its own exceptions only; a finding is counted by its
 * chosen (highest) severity.
 *
 * JSON (POST/PUT body, strict): {"name", "images": [...], "block_critical",
 * "max_high", "exceptions": [{"id","owner","reason","expires_at"}], "enabled"};
 * scan_policy_to_json writes the same keys with the defaults filled in.
 */
#ifndef ODX_SCAN_POLICY_H
#define ODX_SCAN_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jsonx.h"
#include "scan/model.h"

#define SCAN_POLICY_NAME_MAX	   63
#define SCAN_POLICY_MAX_IMAGES	   64
#define SCAN_POLICY_PATTERN_MAX	   255
#define SCAN_POLICY_MAX_EXCEPTIONS 256
#define SCAN_POLICY_EXC_ID_MAX	   128
#define SCAN_POLICY_OWNER_MAX	   254
#define SCAN_POLICY_REASON_MAX	   1024
#define SCAN_POLICY_MAX_HIGH_MAX   INT32_MAX
#define SCAN_IMAGE_REF_MAX	   512 /* bytes of an image reference as given */
#define SCAN_IMAGE_NORM_SIZE	   (SCAN_IMAGE_REF_MAX + 32) /* holds any normalised form */
#define SCAN_VERDICT_MAX_FINDINGS  100 /* listed in a verdict; findings_total counts all */

struct scan_policy_exception {
	const char *id;		/* matches any alias of a finding, ASCII case-insensitive */
	const char *owner;	/* non-empty */
	const char *reason;	/* non-empty */
	const char *expires_at; /* RFC 3339 UTC, as given */
	int64_t expires_ns; /* expires_at in ns since the epoch; applies while now < expires_at */
};

/*
 * A parsed policy. Plain and read-only: built only by scan_policy_parse,
 * freed with scan_policy_free; its strings live in `doc`.
 */
struct scan_policy {
	const char *name;
	const char **images; /* glob patterns; nimages == 0: every image */
	size_t nimages;
	bool block_critical;
	int64_t max_high; /* -1: no limit; else block when high findings > max_high */
	struct scan_policy_exception *exceptions;
	size_t nexceptions;
	bool enabled;
	json_t *doc; /* private: owns the strings above */
};

/*
 * Parses a policy body. name_from_path (PUT) may be NULL; when both it and
 * the body's "name" are given they must be equal. Returns 0 with *out (free
 * with scan_policy_free), ODX_EINVAL with a reason in msg (never echoing a
 * value), or ODX_ENOMEM. body is not modified.
 */
int scan_policy_parse(const json_t *body, const char *name_from_path, struct scan_policy **out,
		      char msg[static JSONX_MSG_LEN]);
/* The policy as stored/returned by the API, defaults filled in; new reference, NULL on ENOMEM. */
json_t *scan_policy_to_json(const struct scan_policy *p);
/* NULL ok. */
void scan_policy_free(struct scan_policy *p);

/*
 * Normalises a Docker image reference: "busybox" -> "docker.io/library/busybox:latest",
 * "user/app:1" -> "docker.io/user/app:1", "index.docker.io/x" -> "docker.io/library/x:latest";
 * a digest reference keeps its digest and gets no ":latest". Writes out (NUL-terminated)
 * only on success; cap SCAN_IMAGE_NORM_SIZE always suffices. Returns 0, ODX_EINVAL (not
 * a reference of at most SCAN_IMAGE_REF_MAX bytes) or ODX_ETOOBIG (cap too small).
 */
int scan_image_normalise(const char *ref, char *out, size_t cap);

/*
 * True when p covers image: no patterns, or a pattern matching the image as
 * given or normalised ('*' any run of characters including '/', '?' one
 * character). Ignores `enabled`.
 */
bool scan_policy_applies(const struct scan_policy *p, const char *image);

/*
 * Evaluates the tenant's policies for deploying image, with merged the
 * image's merged report (NULL: no completed scan) at now_unix (seconds).
 * Returns 1 blocked, 0 allowed (*verdict_out set in both cases, new
 * reference), ODX_EINVAL or ODX_ENOMEM (*verdict_out untouched).
 * Verdict: {"blocked", "policies": [{"name","reason"}] (one entry per rule
 * that fired), "findings": [...] (<= SCAN_VERDICT_MAX_FINDINGS, critical then
 * high, report order), "findings_total", "exceptions_applied":
 * [{"policy","id","owner","expires_at"}] (active exceptions that waived a
 * high or critical finding)}.
 */
int scan_policy_evaluate(const struct scan_policy *const *policies, size_t n, const char *image,
			 const struct scan_report *merged, int64_t now_unix, json_t **verdict_out);

#endif
