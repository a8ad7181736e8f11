/*
 * trivy.h — a Trivy JSON report (`trivy image -f json`, SchemaVersion 2) read
 * into the finding model (model.h). trivy.c's top comment gives the mapping.
 */
#ifndef ODX_SCAN_TRIVY_H
#define ODX_SCAN_TRIVY_H

#include <stddef.h>

#include "core/jdoc.h"
#include "scan/model.h"

/*
 * Parses len bytes of report text (at most SCAN_MAX_REPORT) and frees the
 * JSON tree before returning. 0 with *out a new report (scan_report_free);
 * ODX_EINVAL (malformed, a field we read has the wrong type, not a Trivy
 * report), ODX_ETOOBIG (over a bound of model.h) or ODX_ENOMEM with a reason
 * in msg that names the place ("Results[3].Vulnerabilities[7]: ...") and
 * never quotes the input. *out is written only on success.
 */
int trivy_parse(const char *buf, size_t len, struct scan_report **out,
		char msg[static SCAN_MSG_LEN]);
/* trivy_parse on an already decoded report; root stays the caller's, nothing points into it. */
int trivy_from_json(const struct jval *root, struct scan_report **out, char msg[static SCAN_MSG_LEN]);

#endif
