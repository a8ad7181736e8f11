/*
 * fuzz-grype.c — Grype JSON reports (grype.c): the "grype" member of
 * POST /v1/scans/import, or what `grype -o json` printed.
 *
 * scan-oracles.h runs the input through grype_parse and grype_from_json and
 * checks what they give; the checks it makes of every finding (EPSS -1 or
 * 0..1 among them) are all Grype's. The base64 image config
 * (source.target.config) is decoded too: seeds carry one, so mutations
 * reach the decoder.
 */
#include <stddef.h>
#include <stdint.h>

#include "scan-oracles.h"
#include "scan/grype.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct scan_oracle grype = {SCAN_ENGINE_GRYPE, grype_parse, grype_from_json,
						 NULL};
	return oracle_run(&grype, data, size);
}
