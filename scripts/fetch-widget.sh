#!/usr/bin/env bash
# The real DrayDog widget for the replica's camera page: Vue 2.7 and Element UI 2.15
# from the npm registry, pinned by version and integrity, unpacked into a cache
# outside the package (never committed). Idempotent; sourced by setup.sh, or run.
set -euo pipefail
WIDGET_DIR="${DRAYDOG_WIDGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/draydog/widget}"
# name version integrity: keep in step with modules/replica/widget.py
PACKAGES=(
  "vue 2.7.16 sha512-4gCtFXaAA3zYZdTp5s4Hl2sozuySsgz4jy1EnpBHNfpMa9dK1ZCG7viqBPCwXtmgc8nHqUsAu3G4gtmXkkY3Sw=="
  "element-ui 2.15.14 sha512-2v9fHL0ZGINotOlRIAJD5YuVB8V7WKxrE9Qy7dXhRipa035+kF7WuU/z+tEmLVPBcJ0zt8mOu1DKpWcVzBK8IA=="
)

if ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing Debian's nodejs and npm (for the replica's widget)" >&2
  if [ "$(id -u)" -eq 0 ]; then run_root=(); else run_root=(sudo); fi
  "${run_root[@]}" apt-get update -qq
  "${run_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

for entry in "${PACKAGES[@]}"; do
  read -r name version integrity <<<"$entry"
  target="$WIDGET_DIR/$name-$version"
  [ -f "$target/package.json" ] && continue
  echo "setup: fetching $name@$version for the replica's camera page into $WIDGET_DIR" >&2
  work="$(mktemp -d)"
  (cd "$work" && npm pack --silent "$name@$version" >/dev/null)
  tarball="$(ls "$work"/*.tgz)"
  actual="sha512-$(python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tarball")"
  if [ "$actual" != "$integrity" ]; then
    echo "setup: $name@$version does not match its pinned integrity ($actual)" >&2
    rm -rf "$work"
    exit 1
  fi
  mkdir -p "$work/unpacked" "$WIDGET_DIR"
  tar -xzf "$tarball" -C "$work/unpacked"
  rm -rf "$target"
  mv "$work/unpacked/package" "$target"
  rm -rf "$work"
done
export DRAYDOG_WIDGET_DIR="$WIDGET_DIR"
