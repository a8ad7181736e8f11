#!/usr/bin/env bash
# Builds the images the tests run, locally and without any registry:
#   odysseus-test/busybox:1  Debian's static busybox + a minimal /etc
#   odysseus-test/busybox:2  the same plus /VERSION containing "2", so that
#                            update and rollback tests can tell them apart
# Idempotent: an image that already exists is left alone (FORCE=1 rebuilds).
# Needs a running engine (scripts/docker-up) and busybox-static.
set -euo pipefail

export DOCKER_API_VERSION=${DOCKER_API_VERSION:-1.41}
repo=odysseus-test/busybox
busybox=/bin/busybox
applets=(sh id sleep cat echo wget nc ip ifconfig ping httpd touch ls mkdir true false
         kill ps hostname)

have() { [ "${FORCE:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }

if have "$repo:1" && have "$repo:2"; then
  exit 0
fi
# Debian's busybox package is dynamically linked; only busybox-static's
# binary runs in an image with no libc.
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "build.sh: $busybox missing or not static; install busybox-static" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,root,proc,sys,dev}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
cp "$busybox" "$root/bin/busybox"
for a in "${applets[@]}"; do
  ln -s busybox "$root/bin/$a"
done
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP

# Numeric owners: the image must not depend on this machine's users.
import_tag() { # tag
  tar --numeric-owner --owner=0 --group=0 -C "$root" -c . |
    docker import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - "$repo:$1" >/dev/null
  echo "build.sh: built $repo:$1" >&2
}
have "$repo:1" || import_tag 1
echo 2 >"$root/VERSION"
have "$repo:2" || import_tag 2
