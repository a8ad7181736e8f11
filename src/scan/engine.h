/*
 * engine.h — runs a scanner's CLI (`trivy image -f json`, `grype -o json`)
 * on one image and hands back its report (docs/scanning.md).
 *
 * The program is started with posix_spawn (no shell; the image reference is
 * one argv element and was validated by the caller), in a process group of
 * its own, with a small fixed environment (PATH, HOME, TMPDIR, DOCKER_HOST
 * when set: never the daemon's secrets). Its stdout is the report (at most
 * max_out bytes); the last SCAN_ENGINE_ERR_LEN bytes of stderr are kept for
 * the error message. Past the timeout the whole group is killed.
 */
#ifndef ODX_SCAN_ENGINE_H
#define ODX_SCAN_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "scan/model.h"

#define SCAN_ENGINE_ERR_LEN 512

struct scan_engine_output {
	char *report; /* stdout, NUL-terminated (free()); NULL when the run failed */
	size_t len;
	char error[SCAN_ENGINE_ERR_LEN]; /* why it failed: exit status, timeout, stderr tail */
};

/*
 * The executable for configured (a path, or a name looked up in PATH);
 * false when there is none. out gets the path (cap bytes).
 */
bool scan_engine_find(const char *configured, char *out, size_t cap);
/*
 * Runs engine (program path exe) on image. 0 with out->report set when it
 * exited 0 within timeout_s; otherwise a negative code (ODX_EUNAVAIL: could
 * not start or exited non-zero, ODX_ETOOBIG: more than max_out bytes,
 * ODX_EBUSY: timed out or *cancel became true — checked every second, so a
 * daemon stops without waiting for a scan) with out->error saying what happened.
 */
int scan_engine_run(enum scan_engine engine, const char *exe, const char *image, int timeout_s,
		    size_t max_out, const atomic_bool *cancel, struct scan_engine_output *out);
/* Frees out->report; out may be reused. */
void scan_engine_output_done(struct scan_engine_output *out);

#endif
