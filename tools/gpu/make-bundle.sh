#!/usr/bin/env bash
# Builds .gpu-carry/, the one ignored folder a device `run` carries (shared/GPU.md, "The bundle"):
#   runtime.deb  stripped node + webgpu's package.json/index.js/dist/linux-x64/dawn.node (dpkg-deb, xz -9e)
#   gl/*.deb     Debian 12 amd64 Vulkan loader + GL/EGL dispatch libraries (apt-get download)
#   app/*.mjs    the benches bundled by tools/gpu/build-app.mjs (no node_modules needed there)
# From the repo root: bash tools/gpu/make-bundle.sh [--app-only] [--force]
#   --app-only  rebuild app/ only (seconds); --force  rebuild runtime.deb and gl/ even if present.
# runtime.deb takes ~70 s (xz); it is kept when node and dawn.node are unchanged (stamp file).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
APP_ONLY=0 FORCE=0
for a in "$@"; do
  case "$a" in
    --app-only) APP_ONLY=1 ;;
    --force) FORCE=1 ;;
    *) echo "make-bundle: unknown option $a" >&2; exit 2 ;;
  esac
done

# Ignored, so it travels only through `carry` (it is in .gitignore too; exclude covers older checkouts).
EXCL="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$EXCL")"
grep -qxF /.gpu-carry/ "$EXCL" 2>/dev/null || echo /.gpu-carry/ >>"$EXCL"
git check-ignore -q .gpu-carry || { echo "make-bundle: .gpu-carry is not ignored by git" >&2; exit 1; }
mkdir -p .gpu-carry/gl

if [ "$APP_ONLY" = 0 ]; then
  # The installed webgpu: the folder of packages/tensor's dependency (pnpm links it there).
  W=$(cd packages/tensor && dirname "$(node -p 'require.resolve("webgpu/package.json")')")
  NODE=$(command -v node)
  [ -f "$W/dist/linux-x64/dawn.node" ] || { echo "make-bundle: no $W/dist/linux-x64/dawn.node" >&2; exit 1; }
  STAMP="node $(node -v) $(stat -c '%s %Y' "$NODE") dawn $(stat -c '%s %Y' "$W/dist/linux-x64/dawn.node") $(node -p "require('$W/package.json').version")"
  if [ "$FORCE" = 1 ] || [ ! -f .gpu-carry/runtime.deb ] || [ "$(cat .gpu-carry/runtime.stamp 2>/dev/null)" != "$STAMP" ]; then
    echo "make-bundle: runtime.deb from $NODE ($(node -v)) and $W (~70 s)"
    d=$(mktemp -d)
    trap 'rm -rf "$d"' EXIT
    R=$d/node-dawn
    mkdir -p "$d/DEBIAN" "$R/bin" "$R/node_modules/webgpu/dist/linux-x64"
    strip --strip-all -o "$R/bin/node" "$NODE"
    cp "$W/package.json" "$W/index.js" "$R/node_modules/webgpu/"
    cp "$W/dist/linux-x64/dawn.node" "$R/node_modules/webgpu/dist/linux-x64/"
    printf 'Package: gpu-node-dawn\nVersion: 1\nArchitecture: amd64\nMaintainer: dev <dev@localhost>\nDescription: node and dawn.node for the GPU machine\n' >"$d/DEBIAN/control"
    dpkg-deb --root-owner-group -Zxz -z9 -Sextreme --build "$d" .gpu-carry/runtime.deb
    echo "$STAMP" >.gpu-carry/runtime.stamp
  else
    echo "make-bundle: runtime.deb is current ($STAMP)"
  fi

  if [ "$FORCE" = 1 ] || ! ls .gpu-carry/gl/libvulkan1_*.deb >/dev/null 2>&1; then
    echo "make-bundle: gl/ loader packages (apt-get download, amd64)"
    rm -f .gpu-carry/gl/*.deb
    l=$(mktemp -d)
    mkdir -p "$l/partial"
    o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$l")
    apt-get "${o[@]}" -qq update
    (cd .gpu-carry/gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
    rm -rf "$l"
  fi
fi

node tools/gpu/build-app.mjs

# What travels: the working tree (tracked + untracked-not-ignored) plus the carried folder; 64 MiB in all.
# (stat fails on files deleted but still tracked: count what exists.)
tree=$(set +o pipefail; git ls-files -z -co --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {printf "%.1f", s/2^20}')
carry=$(du -sb .gpu-carry | awk '{printf "%.1f", $1/2^20}')
echo
du -ah .gpu-carry | sort -k2
echo "make-bundle: working tree ${tree} MiB + .gpu-carry ${carry} MiB = $(awk "BEGIN {print $tree + $carry}") MiB of 64"
awk "BEGIN {exit !($tree + $carry < 60)}" || { echo "make-bundle: WARNING: over 60 MiB, the device run may refuse it" >&2; exit 1; }
