#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `svcctl apply --wait` returns once the data plane has programmed the change:
# afterwards status shows appliedGeneration >= desiredGeneration and synced.
#
#   +---------------- node: netns svct-<id>-1 (lo up) ----------------+
#   |  svcd --state-dir $T/state --socket $T/svcd.sock                 |
#   +------------------------------------------------------------------+
#   svcctl (host side, unix socket only)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

# assert_synced WHAT: status -o json says the data plane caught up.
assert_synced() {
	local st desired applied
	st=$(svcctl status -o json)
	desired=$(json_field "$st" desiredGeneration) || fail "$1: no desiredGeneration in: $st"
	applied=$(json_field "$st" appliedGeneration) || fail "$1: no appliedGeneration in: $st"
	[[ $desired =~ ^[0-9]+$ && $applied =~ ^[0-9]+$ ]] || fail "$1: generations are not numbers: $st"
	((applied >= desired)) || fail "$1: appliedGeneration $applied < desiredGeneration $desired"
	((desired > 0)) || fail "$1: desiredGeneration is $desired after an apply"
	assert_eq "$(json_field "$st" synced)" true "$1: synced"
}

ns_new NODE
svcd_start

out=$(svcctl apply --wait -f "$EXAMPLES/my-app.yaml")
assert_match "$out" '^service/my-app-service created$' "apply --wait"
assert_synced "after apply --wait"

# An update, waited for as well.
sed 's/port: 80$/port: 81/' "$EXAMPLES/my-app.yaml" >"$T/my-app-81.yaml"
out=$(svcctl apply --wait -f "$T/my-app-81.yaml")
assert_match "$out" '^service/my-app-service configured$' "apply --wait of an update"
assert_synced "after apply --wait of an update"

svcd_stop
