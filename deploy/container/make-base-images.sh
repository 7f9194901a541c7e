#!/usr/bin/env bash
# The two base images of Containerfile, made from Debian's own packages with mmdebstrap (no
# container registry needed): Debian 13 "trixie" brings Node 20. Needs root (or fakeroot mode),
# mmdebstrap and podman. Measured on a 2-core machine: ~25 s (run) and ~6 min (build) from
# deb.debian.org, plus a few seconds each for `podman import`.
#   deploy/container/make-base-images.sh [mirror]
set -euo pipefail
MIRROR="${1:-http://deb.debian.org/debian}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
make_image() { # name packages
  if podman image exists "$1"; then echo "$1: present"; return; fi
  mmdebstrap --variant=minbase --include="$2" trixie "$TMP/rootfs.tar" "$MIRROR"
  podman import --change 'CMD ["/bin/bash"]' "$TMP/rootfs.tar" "$1"
  rm -f "$TMP/rootfs.tar"
}
make_image localhost/inference-engine-base:trixie nodejs,ca-certificates,tini
make_image localhost/inference-engine-build:trixie nodejs,npm,ca-certificates,g++,make,git,python3
