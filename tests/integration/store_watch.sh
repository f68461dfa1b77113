#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The daemon watches its store: object files written, replaced or removed by
# hand show up in `svcctl list`; a corrupt file is reported and skipped, left
# on disk, and does not stop the daemon, at run time or at start-up.
#
#   +---------------- node: netns svct-<id>-1 (lo up) ----------------+
#   |  svcd --state-dir $T/state --socket $T/svcd.sock                 |
#   |        watches $T/state/objects/  <--- files written by the test |
#   +------------------------------------------------------------------+
#   svcctl (host side, unix socket only)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

# svc_json NAME CLUSTER-IP PORT: a Service object as the store holds one.
svc_json() {
	cat <<EOF
{
  "apiVersion": "v1",
  "kind": "Service",
  "metadata": {"name": "$1", "namespace": "default"},
  "spec": {
    "type": "ClusterIP",
    "clusterIP": "$2",
    "selector": {"app": "$1"},
    "ports": [{"protocol": "TCP", "port": $3, "targetPort": $3}]
  }
}
EOF
}

# listed NAME IP PORT: `svcctl list` has NAME with that ClusterIP and port.
listed() {
	local row
	row=$(svc_row "$1") || return 1
	[ "$(awk '{ print $3, $4, $5 }' <<<"$row")" = "ClusterIP $2 $3/TCP" ]
}

# logged PATH: a line of the daemon's log since its last start names PATH and `skipping`.
logged() {
	svcd_log | awk -v p="$1" 'index($0, p) && /skipping/ { f = 1 } END { exit !f }'
}

ns_new NODE
svcd_start
obj=$T/state/objects
[ -d "$obj" ] || fail "svcd did not create $obj"

# Written to a dotfile, then renamed into place (what an editor or a config
# tool does); the daemon ignores the dotfile.
svc_json hand-a 10.96.200.1 8080 >"$obj/.hand-a.json.tmp"
mv "$obj/.hand-a.json.tmp" "$obj/hand-a.json"
wait_for 5 listed hand-a 10.96.200.1 8080

# Written in place.
svc_json hand-b 10.96.200.2 9000 >"$obj/hand-b.json"
wait_for 5 listed hand-b 10.96.200.2 9000

# Replaced by rename: the change shows.
svc_json hand-a 10.96.200.1 8081 >"$obj/.hand-a.json.tmp"
mv "$obj/.hand-a.json.tmp" "$obj/hand-a.json"
wait_for 5 listed hand-a 10.96.200.1 8081

# Removed: the service goes.
rm "$obj/hand-a.json"
wait_for 5 svc_gone hand-a
listed hand-b 10.96.200.2 9000 || fail "hand-b went away with hand-a"

# Corrupt at run time: reported with its path, skipped, left on disk.
printf '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": ' >"$obj/broken.json"
wait_for 5 logged "$obj/broken.json"
[ -f "$obj/broken.json" ] || fail "svcd removed the corrupt file $obj/broken.json"
listed hand-b 10.96.200.2 9000 || fail "hand-b lost after a corrupt file appeared"
svcctl status >/dev/null

# Corrupt at start-up: the same, and the rest of the store loads.
svcd_stop
svcd_start
logged "$obj/broken.json" || fail "a corrupt file at start-up is not reported with its path and 'skipping'
$(svcd_log)"
[ -f "$obj/broken.json" ] || fail "svcd removed the corrupt file $obj/broken.json at start-up"
listed hand-b 10.96.200.2 9000 || fail "hand-b not loaded next to a corrupt file"

# Mended: it loads.
svc_json mended 10.96.200.3 7000 >"$obj/.broken.json.tmp"
mv "$obj/.broken.json.tmp" "$obj/broken.json"
wait_for 5 listed mended 10.96.200.3 7000

rm "$obj/hand-b.json" "$obj/broken.json"
wait_for 5 svc_gone hand-b
wait_for 5 svc_gone mended

svcd_stop
