#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian packages svcd needs to build and test, and only the ones
# that are missing.  Idempotent: when everything is present it only asks dpkg.
set -euo pipefail

# Build: gcc (build-essential), pkg-config and the libraries of the Makefile's
# PKGS plus libev.  Tests: iproute2 (ip netns), nftables, dig, valgrind,
# pgrep/pkill (procps), fuser/killall (psmisc), busybox-static (the test
# image of scripts/mkimage.sh).  zlib: gzip layers of imported images.
# No clang or libclang-rt-14-dev: we build with gcc, whose ASan/UBSan/LSan
# runtimes (libasan8, libubsan1, liblsan0) come with build-essential, and
# LeakSanitizer works with them on this machine kind.
pkgs=(
	build-essential pkg-config
	libev-dev libcjson-dev libnl-3-dev libnl-route-3-dev libmnl-dev libnftnl-dev libyaml-dev zlib1g-dev
	iproute2 nftables dnsutils valgrind procps psmisc busybox-static curl
)

missing=()
for p in "${pkgs[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: not root; run: sudo $0" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
