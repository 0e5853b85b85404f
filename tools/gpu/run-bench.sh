#!/usr/bin/env bash
# The script a device `run` calls (tools/gpu/README.md has the exact call): after the run command
# has unpacked the Vulkan loader into / and node + dawn.node into .gpu-carry/, linked
# node_modules/webgpu and put node on PATH, this
#   1. records the machine (GPU, driver, glibc/libstdc++, Vulkan loader and ICD json) in env.txt,
#   2. prints what Dawn sees (adapter.json; retries once with VK_DRIVER_FILES and a loader log),
#   3. runs the tensor bench (ours vs tfjs-webgpu vs PyTorch/CUDA) into tensor.json,
#   4. runs the Idefics2 bench (tiny, medium, 8B shapes) into idefics2.json,
#   5. prints a short summary last (summary.txt),
# every step under a deadline so the whole script ends within --budget seconds (default 345).
# At most 7 files in $OUT: run.log (the run command's tee), env.txt, adapter.json, tensor.json,
# idefics2.json, summary.txt, vk-loader.log (only when the retry ran).
#
#   bash tools/gpu/run-bench.sh [--quick] [--budget=SECONDS] [--no-8b] [--no-torch] [--allow-software]
set -uo pipefail
START=$(date +%s)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
APP=.gpu-carry/app
OUT=${OUT:?OUT must name the results folder}
mkdir -p "$OUT"
BUDGET=345 QUICK="" NO8B="" NOTORCH="" SOFT=""
for a in "$@"; do
  case "$a" in
    --quick) QUICK=--quick ;;
    --budget=*) BUDGET=${a#--budget=} ;;
    --no-8b) NO8B=1 ;;
    --no-torch) NOTORCH=--no-torch ;;
    --allow-software) SOFT=--allow-software ;;
    *) echo "run-bench: unknown option $a" >&2; exit 2 ;;
  esac
done
END=$((START + BUDGET))
NV_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
left() { echo $((END - $(date +%s))); }
say() { echo "== [$(($(date +%s) - START))s] $*"; }
HAVE_TIMEOUT=1
command -v timeout >/dev/null || HAVE_TIMEOUT=0
# run_for SECONDS cmd...: the step's hard stop (the benches stop themselves earlier, at their --deadline).
run_for() {
  local s=$1
  shift
  if [ "$s" -lt 5 ]; then echo "run-bench: no time left for: $*"; return 124; fi
  if [ "$HAVE_TIMEOUT" = 1 ]; then timeout --kill-after=5 "$s" "$@"; else "$@"; fi
}

# ---- 1. the machine ----------------------------------------------------------------------------
say "machine"
{
  echo "date: $(date -u +%FT%TZ)  budget ${BUDGET}s  args: $*"
  echo "uname: $(uname -srm)"
  grep -m1 PRETTY_NAME /etc/os-release 2>/dev/null
  echo "cpus: $(nproc)  mem: $(awk '/MemTotal/ {printf "%.0f GiB", $2/2^20}' /proc/meminfo)"
  echo "node: $(command -v node) $(node -v 2>&1)"
  echo "glibc: $(ldd --version 2>&1 | head -1)"
  for f in /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /lib/x86_64-linux-gnu/libstdc++.so.6; do
    [ -e "$f" ] && { echo "libstdc++: $f newest $(grep -ao 'GLIBCXX_3\.4\.[0-9]*' "$f" | sort -uV | tail -1)"; break; }
  done
  echo "-- nvidia-smi"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem,power.limit --format=csv 2>&1 | head -5
  echo "-- Vulkan loader (ldconfig -p)"
  ldconfig -p 2>/dev/null | grep -i vulkan || echo "(none)"
  echo "-- ICD jsons: VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
  for j in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json "$NV_ICD" ${VK_DRIVER_FILES:+"$VK_DRIVER_FILES"}; do
    [ -f "$j" ] || continue
    lib=$(grep -o '"library_path"[^,}]*' "$j" | sed 's/.*: *"\(.*\)"/\1/')
    known=$( { [ -e "$lib" ] || ldconfig -p | grep -q "/${lib##*/}\$"; } && echo found || echo MISSING)
    echo "$j -> $lib ($known)"
  done | sort -u
  echo "-- python: $(python3 --version 2>&1)"
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# ---- 2. the adapter ----------------------------------------------------------------------------
say "adapter"
run_for 60 node $APP/adapter.mjs --json="$OUT/adapter.json" $QUICK $SOFT
rc=$?
if [ $rc -ne 0 ] && [ -f "$NV_ICD" ]; then
  # No adapter (2) or only a software one (3): name NVIDIA's json and keep the loader's account of why.
  say "adapter rc=$rc: retry with VK_DRIVER_FILES=$NV_ICD (loader log in vk-loader.log)"
  export VK_DRIVER_FILES=$NV_ICD VK_ICD_FILENAMES=$NV_ICD
  VK_LOADER_DEBUG=error,warn,driver run_for 60 node $APP/adapter.mjs --json="$OUT/adapter.json" $QUICK $SOFT 2>"$OUT/vk-loader.log"
  rc=$?
  tail -20 "$OUT/vk-loader.log"
fi
if [ $rc -ne 0 ]; then
  say "FATAL: no usable adapter (rc=$rc); see adapter.json, env.txt, vk-loader.log"
  node tools/gpu/summarize.mjs "$OUT" | tee "$OUT/summary.txt"
  exit 20
fi

# ---- 3. tensor kernels vs tfjs-webgpu vs torch -------------------------------------------------
# 45% of what is left after a 30 s reserve; the Idefics2 step (8B included) gets the rest.
now=$(date +%s)
T_END=$((now + ($(left) - 30) * 9 / 20))
say "tensor bench (deadline in $((T_END - now))s)"
run_for $((T_END - now + 40)) node $APP/bench-tensor.mjs --json="$OUT/tensor.json" --deadline=$((T_END * 1000)) $QUICK $NOTORCH
echo "tensor bench rc=$?"

# ---- 4. Idefics2 -------------------------------------------------------------------------------
now=$(date +%s)
I_END=$((END - 15))
# The 8B shapes need ~20 GB of device memory: the full model on a GPU; on lavapipe (--quick) the
# same widths with 2 layers per tower, a 490 px image and a 12000-word vocabulary (lavapipe binds
# at most 128 MiB): the code path, not the size.
EIGHT=--8b
[ -n "$QUICK" ] && EIGHT="--8b --layers=2 --px=490 --vocab=12000"
[ -n "$NO8B" ] && EIGHT=""
say "idefics2 bench (deadline in $((I_END - now))s)"
run_for $((I_END - now + 10)) node $APP/bench-idefics2.mjs --json="$OUT/idefics2.json" --deadline=$((I_END * 1000)) $QUICK $NOTORCH $EIGHT
echo "idefics2 bench rc=$?"

# ---- 5. summary (last, so the reply's output tail holds it) --------------------------------------
say "done; summary"
node tools/gpu/summarize.mjs "$OUT" | tee "$OUT/summary.txt"
exit 0
