#!/bin/sh
# Builds the `debian:bookworm-slim` image from Debian's own packages, for
# machines that can reach Debian's package mirrors but no container registry.
# `tandem bases bootstrap` runs this when the image is missing and a pull
# fails; CI runs it too. Needs root (or fakeroot), debootstrap and docker.
#
# Usage: bootstrap-debian.sh [IMAGE]   (default debian:bookworm-slim)
set -eu

image="${1:-debian:bookworm-slim}"
suite="${TANDEM_DEBIAN_SUITE:-bookworm}"

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image is already here"
    exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    echo "debootstrap is not installed: install it with 'apt-get install debootstrap'" >&2
    exit 1
fi

root="$(mktemp -d "${TMPDIR:-/tmp}/tandem-rootfs.XXXXXX")"
trap 'rm -rf "$root"' EXIT INT TERM

echo "debootstrap $suite into $root (minbase)"
# debootstrap picks Debian's default mirror when none is given.
debootstrap --variant=minbase "$suite" "$root" >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"

# What the official slim image leaves out: documentation, manuals, locales,
# package lists and caches.
cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
CFG
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
rm -rf "$root/usr/share/man"/* "$root/usr/share/info"/* "$root/usr/share/locale"/* \
    "$root/var/lib/apt/lists"/* "$root/var/cache/apt"/*.bin "$root/var/cache/apt/archives"/*.deb \
    "$root/var/log"/*.log "$root/tmp"/* 2>/dev/null || true

echo "importing as $image"
tar --numeric-owner -C "$root" -c . | docker import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$image" >/dev/null
echo "$image is ready"
