/*
 * fuzz-trivy.c — Trivy JSON reports (trivy.c): the "trivy" member of
 * POST /v1/scans/import, or what `trivy image -f json` printed.
 *
 * scan-oracles.h runs the input through trivy_parse and trivy_from_json and
 * checks what they give. Trivy's own oracle: a finding has no EPSS, KEV or
 * CPE-match flag (Trivy reports none of these).
 */
#include <stdint.h>
#include <stdlib.h>

#include "scan-oracles.h"
#include "scan/trivy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_trivy_finding(const struct scan_finding *f)
{
	if (f->epss != -1 || f->epss_percentile != -1 || f->kev || f->cpe_match)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct scan_oracle trivy = {SCAN_ENGINE_TRIVY, trivy_parse, trivy_from_json,
						 check_trivy_finding};
	return oracle_run(&trivy, data, size);
}
