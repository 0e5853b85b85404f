#!/usr/bin/env bash
# Make a fresh Debian 12/13 machine ready: pnpm at the pinned version, dependencies, and,
# only when Dawn finds no WebGPU adapter, Mesa's lavapipe (a Vulkan driver on the CPU).
# Idempotent: a second run does nothing slow.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=$(node -p 'require("./package.json").packageManager.split("@")[1]')
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
export TURBO_TELEMETRY_DISABLED=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  echo "setup: installing pnpm $PNPM_VERSION"
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null
fi

echo "setup: installing dependencies"
if [ -n "${CI:-}" ]; then pnpm install --frozen-lockfile; else pnpm install; fi

if node tools/probe-adapter.mjs; then
  exit 0
fi

echo "setup: no WebGPU adapter; installing Mesa lavapipe"
. /etc/os-release
if [ "${ID:-}" != debian ]; then
  echo "setup: not Debian ($PRETTY_NAME): install a Vulkan driver (Mesa >= 24 lavapipe, or your GPU's) by hand" >&2
  exit 1
fi
if [ "$VERSION_CODENAME" = bookworm ]; then
  # Dawn refuses bookworm's Mesa 22; backports carries a recent one.
  echo "deb http://deb.debian.org/debian bookworm-backports main" | as_root tee /etc/apt/sources.list.d/webvlm-backports.list >/dev/null
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
else
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
node tools/probe-adapter.mjs || { echo "setup: still no WebGPU adapter after installing lavapipe" >&2; exit 1; }
