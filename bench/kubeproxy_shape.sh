#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The peer side of the nftables benchmark: load the ruleset kube-proxy's
# nftables mode would program for N ClusterIP services with E endpoints each
# (bench/gen_kubeproxy.awk writes it as knftables would) with Debian's `nft`,
# the way kube-proxy runs it (`nft -f`), and time
#   - the first full sync, into an empty namespace, and
#   - the partial sync that adds one more service to that loaded ruleset.
#
#   +-------------------------------+
#   | netns kpshape-<random>        |   nothing but a ruleset: no links,
#   |   table ip kube-proxy         |   no traffic; the host's own ruleset
#   +-------------------------------+   is never touched
#
# usage: bench/kubeproxy_shape.sh N E [size]
# prints:
#   kubeproxy_full_load_seconds X
#   kubeproxy_add_one_seconds Y
#   kubeproxy_ruleset_lines Z        (with "size": `nft list ruleset | wc -l`)
# Wall-clock seconds, millisecond precision, each including the exec of nft
# (as kube-proxy pays it).  Needs root, nftables, iproute2.
set -euo pipefail

usage() {
	echo "usage: $0 N_SERVICES ENDPOINTS_PER_SERVICE [size]" >&2
	exit 2
}

if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
N=$1
E=$2
SIZE=${3:-}
[[ $N =~ ^[0-9]+$ && $E =~ ^[0-9]+$ ]] || usage
[ -z "$SIZE" ] || [ "$SIZE" = size ] || usage

GEN="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/gen_kubeproxy.awk"
for cmd in nft ip awk sha256sum; do
	command -v "$cmd" >/dev/null || {
		echo "$0: $cmd not found (Debian: apt-get install nftables iproute2)" >&2
		exit 1
	}
done
[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/kpshape-XXXXXX")
NS=
cleanup() {
	local pid
	if [ -n "$NS" ]; then
		for pid in $(ip netns pids "$NS" 2>/dev/null); do
			kill "$pid" 2>/dev/null || true
		done
		ip netns delete "$NS" 2>/dev/null || true
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# Microseconds since the epoch (bash 5: EPOCHREALTIME; the separator follows
# the locale, so keep the digits only).
now_us() {
	if [ -n "${EPOCHREALTIME:-}" ]; then
		echo "${EPOCHREALTIME//[!0-9]/}"
	else
		echo $(($(date +%s%N) / 1000))
	fi
}
# Seconds between two now_us values, rounded to the millisecond.
seconds() {
	local ms=$((($2 - $1 + 500) / 1000))
	printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# The generator's scratch files land in $T too, so cleanup takes them.
TMPDIR=$T awk -v services="$N" -v endpoints="$E" -f "$GEN" >"$T/full.nft"
TMPDIR=$T awk -v endpoints="$E" -v add_one="$N" -f "$GEN" >"$T/add-one.nft"

# A fresh random name; NS is set only once the namespace is ours, so that
# cleanup never deletes one it did not create.
name="kpshape-$$-$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')"
ip netns add "$name"
NS=$name

t0=$(now_us)
ip netns exec "$NS" nft -f "$T/full.nft"
t1=$(now_us)
ip netns exec "$NS" nft -f "$T/add-one.nft"
t2=$(now_us)

echo "kubeproxy_full_load_seconds $(seconds "$t0" "$t1")"
echo "kubeproxy_add_one_seconds $(seconds "$t1" "$t2")"
if [ -n "$SIZE" ]; then
	echo "kubeproxy_ruleset_lines $(ip netns exec "$NS" nft list ruleset | wc -l)"
fi
