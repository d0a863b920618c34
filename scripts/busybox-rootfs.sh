#!/usr/bin/env bash
# Makes a root filesystem tarball from Debian's busybox-static: /bin/busybox, its applets as symlinks, and the
# few files a container expects. It is the base image of the quick start, of the tests and of `berth new`'s
# program (there is no Docker Hub); the npm package ships it.
set -euo pipefail
out=${1:?usage: busybox-rootfs.sh OUT.tar}
bb=/bin/busybox
# A dynamic busybox would not run in a root filesystem without its libraries.
linkage=$(LC_ALL=C ldd "$bb" 2>&1 || true)
[[ -x $bb && $linkage == *"not a dynamic executable"* ]] ||
  { echo "busybox-rootfs: a static $bb is needed (Debian: apt-get install busybox-static)" >&2; exit 1; }
dir=$(mktemp -d /tmp/berth-rootfs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"/{bin,etc,proc,sys,dev,tmp,root,var/www,usr/bin,usr/sbin,sbin}
chmod 1777 "$dir/tmp"
cp "$bb" "$dir/bin/busybox"
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
tmp="$out.tmp.$$"
tar --numeric-owner --owner=0 --group=0 --mtime='2000-01-01 00:00Z' --sort=name -C "$dir" -cf "$tmp" .
mv "$tmp" "$out"
