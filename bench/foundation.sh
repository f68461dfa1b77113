#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Foundation benchmark (issue 2): apply 10,000 services in one file, list
# them, and the daemon's memory with 10,000 services and 20,000 endpoints.
# The daemon runs with a throwaway state dir and socket and --mode none: it
# measures the store and the socket, and touches no networking.
#
# usage: bench/foundation.sh [BUILD_DIR] [N_SERVICES]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
N=${2:-10000}
T=$(mktemp -d /tmp/svcd-bench-XXXXXX)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

STATE=${BENCH_STATE_DIR:-$T/state}
SOCK=$T/svcd.sock
ctl() { "$BUILD/svcctl" --socket "$SOCK" "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

start() {
	# The host namespace: no data plane, no DNS address on lo, no pods.
	"$BUILD/svcd" --mode none --no-dns --no-pods --state-dir "$STATE" --socket "$SOCK" \
		--resync-period 0 >>"$T/svcd.log" 2>&1 &
	PID=$!
	for _ in $(seq 200); do ctl status >/dev/null 2>&1 && return; sleep 0.05; done
	echo "svcd did not start:"; cat "$T/svcd.log"; exit 1
}
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$PID/status"; }

# Selector-less services, each with an Endpoints object of two addresses.
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++)
	printf "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc-%d\",\"namespace\":\"bench\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080}]}}\n", i }' >"$T/services.json"
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++)
	printf "{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":{\"name\":\"svc-%d\",\"namespace\":\"bench\"},\"subsets\":[{\"addresses\":[{\"ip\":\"10.%d.%d.1\"},{\"ip\":\"10.%d.%d.2\"}],\"ports\":[{\"name\":\"http\",\"port\":8080}]}]}\n", i, 100 + int(i / 250), i % 250, 100 + int(i / 250), i % 250 }' >"$T/endpoints.json"
awk -v n="$N" 'BEGIN { print "---"; for (i = 0; i < n; i++)
	printf "apiVersion: v1\nkind: Service\nmetadata:\n  name: y-%d\n  namespace: yaml\nspec:\n  selector:\n    app: y-%d\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n---\n", i, i }' >"$T/services.yaml"

start
t=$(now); ctl apply -f "$T/services.json" >/dev/null; apply_s=$(since "$t")
t=$(now); ctl apply -f "$T/endpoints.json" >/dev/null; apply_ep_s=$(since "$t")
t=$(now); ctl list >"$T/list.txt"; list_s=$(since "$t")
rows=$(($(wc -l <"$T/list.txt") - 1))
[ "$rows" -eq "$N" ] || { echo "list shows $rows services, expected $N"; exit 1; }
eps=$(ctl status -o json | awk -F'[:,]' '/"endpoints"/ { gsub(/ /, "", $2); print $2; exit }')
rss=$(rss_mb)
t=$(now); ctl apply -f "$T/services.json" >/dev/null; reapply_s=$(since "$t")
kill "$PID"; wait "$PID" || true; PID=
t=$(now); start; restart_s=$(since "$t")
rss_restart=$(rss_mb)
t=$(now); ctl apply -f "$T/services.yaml" >/dev/null; apply_yaml_s=$(since "$t")

fs=$(findmnt -n -o FSTYPE -T "$STATE" 2>/dev/null || echo "?")
echo "svcd foundation benchmark: $N services ($fs state dir)"
printf '  %-46s %8s s   (target < 2 s)\n' "apply $N services, one JSON file" "$apply_s"
printf '  %-46s %8s s\n' "apply $N services, one YAML file (more)" "$apply_yaml_s"
printf '  %-46s %8s s\n' "apply $N Endpoints objects ($((2 * N)) addresses)" "$apply_ep_s"
printf '  %-46s %8s s\n' "re-apply $N unchanged services" "$reapply_s"
printf '  %-46s %8s s   (target < 0.2 s)\n' "svcctl list of $N services" "$list_s"
printf '  %-46s %8s MB  (target < 50 MB; %s endpoint objects)\n' "daemon RSS, $N services + $((2 * N)) endpoints" "$rss" "$eps"
printf '  %-46s %8s s, %s MB\n' "restart: load $((2 * N)) objects from disk" "$restart_s" "$rss_restart"
