#!/usr/bin/env bash
# Rehearses a device run on this machine (no GPU, lavapipe posing as NVIDIA's driver), as close to
# the GPU machine as a CPU box gets: a copy of exactly what travels (working tree + .gpu-carry),
# run under `env -i` with only OUT/HOME/PATH set, in a chroot of an overlay of / where
#   - the Vulkan loader (libvulkan.so.1) is gone, so the carried gl/*.deb must provide it,
#   - no ICD json is in the standard folders; lavapipe's sits at NVIDIA's path
#     (/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json), so VK_DRIVER_FILES must be set,
#   - there is no node (the carried runtime.deb must provide it), python3 has no torch,
#     and there is no nvidia-smi.
# The command is tools/gpu/device-command.txt with S replaced. Needs root (a mount namespace and
# overlayfs); the real / is untouched (the overlay's upper layer is a tmpfs dropped at the end).
#
#   bash tools/gpu/rehearse.sh [run-bench.sh args...]     default: --quick --allow-software --budget=300
# Results: the folder printed at the end (the files $OUT would return).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
ARGS=${*:---quick --allow-software --budget=300}
[ -f .gpu-carry/runtime.deb ] || { echo "rehearse: run bash tools/gpu/make-bundle.sh first" >&2; exit 1; }
W=$(mktemp -d /tmp/gpu-rehearsal.XXXXXX)
mkdir -p "$W/repo" "$W/out" "$W/ovl" "$W/root"

# What travels: tracked + untracked-not-ignored files that exist, plus the carried folder.
git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  xargs -0 cp -a --parents -t "$W/repo"
cp -a .gpu-carry "$W/repo/"
echo "rehearse: travels $(du -sm "$W/repo" | cut -f1) MiB (of 64)"

CMD=$(sed "s|^S=tools/gpu/run-bench.sh;|S='tools/gpu/run-bench.sh $ARGS';|" tools/gpu/device-command.txt)
printf '%s\n' "$CMD" >"$W/command.txt"

unshare -m --propagation private bash -s "$W" <<'NS'
set -euo pipefail
W=$1
mount -t tmpfs tmpfs "$W/ovl"
mkdir -p "$W/ovl/upper" "$W/ovl/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$W/ovl/upper,workdir=$W/ovl/work" "$W/root"
R=$W/root
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/tmp"
mkdir -p "$R/repo" "$R/out"
mount --bind "$W/repo" "$R/repo"
mount --bind "$W/out" "$R/out"
cp "$W/command.txt" "$R/command.txt"
chroot "$R" /bin/bash -c '
  set -e
  rm -f /usr/lib/x86_64-linux-gnu/libvulkan.so.1*
  mkdir -p /usr/local/nvidia/share/vulkan/icd.d
  mv /usr/share/vulkan/icd.d/lvp_icd*.json /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  rm -f /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/bin/node /usr/local/bin/node
  ldconfig
  if ldconfig -p | grep -q "libvulkan\.so\.1 "; then echo "rehearse: loader still present" >&2; exit 1; fi
  if command -v node; then echo "rehearse: node still present" >&2; exit 1; fi
  cd /repo
  set +e
  env -i OUT=/out HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin bash -c "$(cat /command.txt)"
  echo "rehearse: command exit code $?"
'
NS
# The namespace (and its mounts) ended with the heredoc: drop the copy, keep what $OUT holds.
rm -rf "$W/repo" "$W/ovl" "$W/root"
echo "rehearse: \$OUT files (at most 8 come back):"
find "$W/out" -type f -printf '%P %s bytes\n'
echo "rehearse: results in $W/out"
