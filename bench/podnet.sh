#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The pod networking benchmark: N pods (default 200) wired, then unwired, by
# svcd's podnet + IPAM (build/bench/podnet) and by the reference CNI bridge
# plugin with host-local IPAM (Debian's containernetworking-plugins,
# isGateway, ipMasq, hairpinMode), in the same run.
#
#   svcd side: its own net + mount ns      CNI side: its own net + mount ns
#     svcd0 10.244.0.1/16                     cnibr0 10.88.0.1/16
#       |-- vethXXXXXXXX -- pod ns: eth0        |-- vethXXXXXXXX -- pod ns: eth0
#       |-- ...              (x N)              |-- ...              (x N)
#
# Each side runs in a network and mount namespace made for it (unshare), so
# the host's links, routes, ruleset and mounts are never touched, and all of
# it goes when the side's process exits.  svcd pins its pod namespaces under
# the run's temp dir; the CNI side mounts a tmpfs over /run in its mount
# namespace, so `ip netns add` (and iptables' lock) stay in there.  svcd's
# IPAM directory and CNI's dataDir are under one temp dir ($TMPDIR).
#
# What is timed, per pod:
#   ADD  svcd: ipam_alloc + podnet_add, namespace creation included.
#        CNI: the plugin's ADD; `ip netns add` is timed apart and shown too.
#   DEL  svcd: podnet_del + ipam_release.  podnet_del sets the host veth down
#        and the kernel deletes the pair with the namespace afterwards; GONE
#        is the time from svcd's first DEL until no veth of it is left.
#        CNI: the plugin's DEL (it deletes the pair in line); `ip netns
#        delete` is timed apart.
# The ratios compare svcd with the plugin alone: CNI's figures exclude the
# namespace work that svcd's include.
#
# usage: bench/podnet.sh [BUILD_DIR]        (default build; needs root)
# Environment: PODNET_BENCH_PODS (200); TMPDIR (/tmp; /dev/shm puts the
# state on tmpfs, without the disk's fsyncs).
# Exit status: 0 when every target passes, 1 otherwise.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CNI_DIR=/usr/lib/cni

now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }
ms() { awk -v us="$1" -v n="$2" 'BEGIN { printf "%.3f", us / n / 1000 }'; }

# cni_side DIR N: run inside the CNI side's namespaces; prints
# "NS <ms> ADD <ms> DEL <ms> NSDEL <ms>", means per pod.
cni_side() {
	local dir=$1 n=$2 i t0 t1 t2 ns=0 add=0 del=0 nsdel=0 out
	mount -t tmpfs -o mode=0755 svcd-bench /run
	ip link set lo up
	cat >"$dir/cni.conf" <<-EOF
		{"cniVersion": "1.0.0", "name": "bench", "type": "bridge", "bridge": "cnibr0",
		 "isGateway": true, "ipMasq": true, "hairpinMode": true,
		 "ipam": {"type": "host-local", "subnet": "10.88.0.0/16", "dataDir": "$dir/cni"}}
	EOF
	export CNI_PATH=$CNI_DIR CNI_IFNAME=eth0
	for ((i = 0; i < n; i++)); do
		t0=$(now_us)
		ip netns add "cni-$i"
		t1=$(now_us)
		out=$(CNI_COMMAND=ADD CNI_CONTAINERID="bench-$i" CNI_NETNS="/run/netns/cni-$i" \
			"$CNI_DIR/bridge" <"$dir/cni.conf") || { echo "CNI ADD $i: $out" >&2; exit 1; }
		t2=$(now_us)
		ns=$((ns + t1 - t0)) add=$((add + t2 - t1))
	done
	for ((i = 0; i < n; i++)); do
		t0=$(now_us)
		out=$(CNI_COMMAND=DEL CNI_CONTAINERID="bench-$i" CNI_NETNS="/run/netns/cni-$i" \
			"$CNI_DIR/bridge" <"$dir/cni.conf") || { echo "CNI DEL $i: $out" >&2; exit 1; }
		t1=$(now_us)
		ip netns delete "cni-$i"
		t2=$(now_us)
		del=$((del + t1 - t0)) nsdel=$((nsdel + t2 - t1))
	done
	echo "NS $(ms $ns "$n") ADD $(ms $add "$n") DEL $(ms $del "$n") NSDEL $(ms $nsdel "$n")"
}

if [ "${1:-}" = --cni-side ]; then
	cni_side "$2" "$3"
	exit 0
fi

BUILD=$(cd "${1:-build}" && pwd)
BIN=$BUILD/bench/podnet
N=${PODNET_BENCH_PODS:-200}
[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "$0: $BIN not found; run make bench-tools" >&2; exit 1; }
if [ ! -x "$CNI_DIR/bridge" ] || [ ! -x "$CNI_DIR/host-local" ]; then
	echo "installing containernetworking-plugins (the reference CNI bridge plugin)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containernetworking-plugins >/dev/null
fi
for cmd in ip unshare awk iptables; do
	command -v "$cmd" >/dev/null || { echo "$0: $cmd not found" >&2; exit 1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/svcpodnet-XXXXXX")
CHILD=

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	set +e
	[ -z "$CHILD" ] || { kill "$CHILD" 2>/dev/null; wait "$CHILD" 2>/dev/null; }
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# side NAME CMD...: CMD in a fresh network and mount namespace; output in $T/NAME.out.
side() {
	local name=$1
	shift
	unshare --net --mount --propagation private -- "$@" >"$T/$name.out" &
	CHILD=$!
	wait "$CHILD" || { echo "$0: the $name side failed" >&2; exit 1; }
	CHILD=
}

echo "== $N pods, state in $(df --output=fstype "$T" | tail -1) ($T)"
mkdir -p "$T/svcd" "$T/cni"
side svcd "$BIN" "$T/svcd" "$N"
side cni bash "$0" --cni-side "$T" "$N"

read -r _ ADD _ _ < <(grep '^ADD ' "$T/svcd.out")
read -r _ DEL _ _ < <(grep '^DEL ' "$T/svcd.out")
read -r _ GONE < <(grep '^GONE ' "$T/svcd.out")
read -r _ CNS _ CADD _ CDEL _ CNSDEL <"$T/cni.out"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
RADD=$(ratio "$CADD" "$ADD") RDEL=$(ratio "$CDEL" "$DEL")

printf '%-8s %12s %12s %8s   %s\n' "per pod" "svcd (ms)" "CNI (ms)" "ratio" "CNI with its namespace work"
printf '%-8s %12s %12s %7sx   %s\n' ADD "$ADD" "$CADD" "$RADD" "+ ip netns add $CNS = $(awk -v a="$CADD" -v b="$CNS" 'BEGIN { printf "%.3f", a + b }')"
printf '%-8s %12s %12s %7sx   %s\n' DEL "$DEL" "$CDEL" "$RDEL" "+ ip netns delete $CNSDEL = $(awk -v a="$CDEL" -v b="$CNSDEL" 'BEGIN { printf "%.3f", a + b }')"
echo "  svcd: ADD/DEL p50/max: $(grep '^ADD ' "$T/svcd.out" | cut -d' ' -f3-4 | tr ' ' /) / $(grep '^DEL ' "$T/svcd.out" | cut -d' ' -f3-4 | tr ' ' /) ms;" \
	"veth pairs gone (kernel) $GONE ms per pod from the first DEL"

fail=0
verdict() { # OK TEXT
	if [ "$1" = 1 ]; then echo "PASS  $2"; else echo "FAIL  $2"; fail=1; fi
}
verdict "$(awk -v a="$ADD" 'BEGIN { print (a <= 2) }')" "svcd ADD $ADD ms per pod <= 2 ms"
verdict "$(awk -v r="$RADD" 'BEGIN { print (r >= 18) }')" "ADD ${RADD}x faster than the CNI bridge plugin >= 18x"
verdict "$(awk -v r="$RDEL" 'BEGIN { print (r >= 18) }')" "DEL ${RDEL}x faster than the CNI bridge plugin >= 18x"
exit "$fail"
