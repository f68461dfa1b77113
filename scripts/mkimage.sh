#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# usage: scripts/mkimage.sh [--format docker|oci] [--gzip] OUT.tar NAME[:TAG]
#            [--env K=V]... [--workdir DIR] [--user U] [--expose PORT[/PROTO]]...
#            [--entrypoint JSON-ARRAY] [-- CMD [ARG...]]
#
# Builds a small image from Debian's busybox-static, so that tests need no
# registry and no Docker engine: a `docker save` archive (manifest.json,
# <config>.json, <layer>/layer.tar, repositories; the default) or an OCI
# image layout (oci-layout, index.json, blobs/sha256/...).  --gzip
# compresses the layers.  Same arguments, same bytes: every time stamp is
# the epoch and every owner root.
#
# Two layers, so that imports exercise whiteouts:
#   1. /bin/busybox and a symlink per applet in /bin, /etc/passwd (root,
#      nobody 65534), /etc/group, /etc/motd, /tmp (1777), /root
#   2. /www/index.html, and a whiteout that removes /etc/motd
# Env gets PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# unless --env sets PATH.
set -euo pipefail
export LC_ALL=C

die() {
	echo "mkimage: $*" >&2
	exit 1
}

usage() {
	sed -n '3,5s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

format=docker gzip=0 out='' ref='' workdir='' user='' entrypoint=''
envs=() ports=() cmd=() positional=()
while [ $# -gt 0 ]; do
	case $1 in
	--format) [ $# -ge 2 ] || usage; format=$2; shift 2 ;;
	--gzip) gzip=1; shift ;;
	--env) [ $# -ge 2 ] || usage; envs+=("$2"); shift 2 ;;
	--workdir) [ $# -ge 2 ] || usage; workdir=$2; shift 2 ;;
	--user) [ $# -ge 2 ] || usage; user=$2; shift 2 ;;
	--expose) [ $# -ge 2 ] || usage; ports+=("$2"); shift 2 ;;
	--entrypoint) [ $# -ge 2 ] || usage; entrypoint=$2; shift 2 ;;
	--) shift; cmd=("$@"); break ;;
	-h | --help) usage ;;
	-*) echo "mkimage: unknown option $1" >&2; usage ;;
	*) positional+=("$1"); shift ;;
	esac
done
[ ${#positional[@]} -eq 2 ] || usage
out=${positional[0]} ref=${positional[1]}
case $format in docker | oci) ;; *) die "--format: docker or oci, not $format" ;; esac

# NAME and TAG: a ':' after the last '/' starts the tag.
name=$ref tag=latest
if [[ ${ref##*/} == *:* ]]; then
	name=${ref%:*} tag=${ref##*:}
fi
[[ $name =~ ^[a-z0-9][a-z0-9._/:-]*$ && $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] ||
	die "bad image name $ref"
for e in "${envs[@]}"; do
	[[ $e == ?*=* ]] || die "--env $e: not K=V"
done
for p in "${ports[@]}"; do
	if ! [[ $p =~ ^([0-9]{1,5})(/(tcp|udp|sctp))?$ ]] || [ "${BASH_REMATCH[1]}" -lt 1 ] ||
		[ "${BASH_REMATCH[1]}" -gt 65535 ]; then
		die "--expose $p: not PORT[/tcp|udp|sctp]"
	fi
done
[[ -z $entrypoint || $entrypoint =~ ^\[.*\]$ ]] || die "--entrypoint: a JSON array, like [\"/bin/sh\",\"-c\"]"

busybox=/bin/busybox
[ -x "$busybox" ] || die "$busybox missing: apt-get install busybox-static"
arch=$(dpkg --print-architecture 2>/dev/null) || arch=$(uname -m)
case $arch in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/mkimage.XXXXXX")
partial=''
trap 'rm -rf "$work" ${partial:+"$partial"}' EXIT

# --- JSON, by hand: only strings and arrays of them are needed ---

json_str() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\t'/\\t}
	s=${s//$'\r'/\\r}
	[[ $s != *[$'\001'-$'\037']* ]] || die "control characters in \"$1\""
	printf '"%s"' "$s"
}

json_array() {
	local sep='' a
	printf '['
	for a in "$@"; do
		printf '%s' "$sep"
		json_str "$a"
		sep=,
	done
	printf ']'
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# A layer tar of a directory: sorted, root-owned, epoch times.
pack() {
	tar --create --file="$2" --directory="$1" --format=gnu --sort=name \
		--owner=0 --group=0 --numeric-owner --mtime=@0 .
}

# --- the two layers ---

base=$work/base app=$work/app
mkdir -p "$base"/{bin,etc,tmp,root} "$app"/{www,etc}
chmod 0755 "$base" "$base"/{bin,etc} "$app" "$app"/{www,etc}
chmod 1777 "$base/tmp"
chmod 0700 "$base/root"
install -m 0755 "$busybox" "$base/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$base/bin/$applet"
done
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
	'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$base/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$base/etc/group"
echo 'built by svcd scripts/mkimage.sh' >"$base/etc/motd"
chmod 0644 "$base"/etc/{passwd,group,motd}
echo 'hello from svcd' >"$app/www/index.html"
: >"$app/etc/.wh.motd"
chmod 0644 "$app/www/index.html" "$app/etc/.wh.motd"

pack "$base" "$work/layer1.tar"
pack "$app" "$work/layer2.tar"
diff_ids=("$(sha "$work/layer1.tar")" "$(sha "$work/layer2.tar")")
if [ "$gzip" = 1 ]; then
	for l in layer1 layer2; do gzip -n -9 <"$work/$l.tar" >"$work/$l.blob"; done
else
	for l in layer1 layer2; do mv "$work/$l.tar" "$work/$l.blob"; done
fi

# --- the image config ---

has_path=0
for e in "${envs[@]}"; do [[ $e == PATH=* ]] && has_path=1; done
[ "$has_path" = 1 ] || envs=('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "${envs[@]}")
{
	printf '{"architecture":"%s","os":"linux","created":"1970-01-01T00:00:00Z","config":{' "$arch"
	printf '"Env":'
	json_array "${envs[@]}"
	[ -z "$entrypoint" ] || printf ',"Entrypoint":%s' "$entrypoint"
	if [ ${#cmd[@]} -gt 0 ]; then
		printf ',"Cmd":'
		json_array "${cmd[@]}"
	fi
	[ -z "$workdir" ] || printf ',"WorkingDir":%s' "$(json_str "$workdir")"
	[ -z "$user" ] || printf ',"User":%s' "$(json_str "$user")"
	if [ ${#ports[@]} -gt 0 ]; then
		printf ',"ExposedPorts":{'
		sep=''
		for p in "${ports[@]}"; do
			[[ $p == */* ]] || p=$p/tcp
			printf '%s"%s":{}' "$sep" "$p"
			sep=,
		done
		printf '}'
	fi
	printf '},"rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]},' "${diff_ids[@]}"
	printf '"history":[{"created":"1970-01-01T00:00:00Z","created_by":"mkimage.sh: busybox"},'
	printf '{"created":"1970-01-01T00:00:00Z","created_by":"mkimage.sh: www"}]}'
} >"$work/config.json"

# --- the archive ---

stage=$work/stage
mkdir "$stage"
config_id=$(sha "$work/config.json")

docker_layout() {
	local parent='' i id layers=()
	for i in 1 2; do
		id=${diff_ids[i - 1]}
		mkdir -p "$stage/$id"
		cp "$work/layer$i.blob" "$stage/$id/layer.tar"
		echo '1.0' >"$stage/$id/VERSION"
		printf '{"id":"%s"%s}' "$id" "${parent:+,\"parent\":\"$parent\"}" >"$stage/$id/json"
		layers+=("$id/layer.tar")
		parent=$id
	done
	cp "$work/config.json" "$stage/$config_id.json"
	{
		printf '[{"Config":"%s.json","RepoTags":' "$config_id"
		json_array "$name:$tag"
		printf ',"Layers":'
		json_array "${layers[@]}"
		printf '}]'
	} >"$stage/manifest.json"
	printf '{%s:{%s:"%s"}}' "$(json_str "$name")" "$(json_str "$tag")" "$parent" \
		>"$stage/repositories"
}

# Copy a file into blobs/sha256; prints its digest.
blob() {
	local d
	d=$(sha "$1")
	cp "$1" "$stage/blobs/sha256/$d"
	echo "$d"
}

oci_layout() {
	local media=application/vnd.oci.image.layer.v1.tar manifest l1 l2 cfg fmt
	[ "$gzip" = 0 ] || media=$media+gzip
	mkdir -p "$stage/blobs/sha256"
	l1=$(blob "$work/layer1.blob") l2=$(blob "$work/layer2.blob") cfg=$(blob "$work/config.json")
	fmt='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
	fmt+='"config":{"mediaType":"application/vnd.oci.image.config.v1+json",'
	fmt+='"digest":"sha256:%s","size":%s},"layers":['
	fmt+='{"mediaType":"%s","digest":"sha256:%s","size":%s},'
	fmt+='{"mediaType":"%s","digest":"sha256:%s","size":%s}]}'
	# shellcheck disable=SC2059 # the format is built above
	printf "$fmt" "$cfg" "$(size "$work/config.json")" \
		"$media" "$l1" "$(size "$work/layer1.blob")" \
		"$media" "$l2" "$(size "$work/layer2.blob")" >"$work/manifest.json"
	manifest=$(blob "$work/manifest.json")
	printf '{"imageLayoutVersion":"1.0.0"}' >"$stage/oci-layout"
	fmt='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",'
	fmt+='"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",'
	fmt+='"digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":%s,'
	fmt+='"org.opencontainers.image.ref.name":%s},'
	fmt+='"platform":{"architecture":"%s","os":"linux"}}]}'
	# shellcheck disable=SC2059
	printf "$fmt" "$manifest" "$(size "$work/manifest.json")" "$(json_str "$name:$tag")" \
		"$(json_str "$tag")" "$arch" >"$stage/index.json"
}

"${format}_layout"
# Members named without "./", in a fixed order; written aside, then renamed
# so that OUT is never a partial archive.
mapfile -t members < <(find "$stage" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort)
partial=$out.partial.$$
tar --create --file="$partial" --directory="$stage" --format=gnu --sort=name \
	--owner=0 --group=0 --numeric-owner --mtime=@0 -- "${members[@]}"
mv -f "$partial" "$out"
