#!/usr/bin/env bash
# scripts/gotool.sh MODULE/PATH@VERSION DEST
# Builds a Go tool at a pinned version into DEST (a versioned path), once.
set -euo pipefail
pkg="$1"
dest="$2"
[[ -x $dest ]] && exit 0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "tools: building $pkg (first time only)"
GOBIN="$tmp" GOFLAGS=-mod=mod go install "$pkg"
mkdir -p "$(dirname "$dest")"
# Written under a temporary name and synced first, so that DEST, once it
# exists, is whole even after a crash.
mv "$tmp/$(basename "${pkg%@*}")" "$dest.tmp.$$"
sync "$dest.tmp.$$"
mv -f "$dest.tmp.$$" "$dest"
