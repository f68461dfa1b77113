#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every benchmark, one after the other (make bench).  Each prints its own
# figures; benchmarks against a peer run both in the same invocation.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
for b in bench/foundation.sh bench/nft.sh bench/podnet.sh bench/launch.sh bench/dns.sh bench/lb.sh; do
	echo "== $b"
	"$b" "$BUILD"
done
