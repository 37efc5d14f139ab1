#!/usr/bin/env bash
# Builds Brisk's GPU binaries on a development machine (no GPU needed) and
# packs them, with the shared libraries a CUDA machine lacks and the real
# test models, into one folder that a lent GPU machine runs in one call:
#
#   tests/gpu/pack-for-device.sh [PACK_DIR]      # default: .gpupack in the checkout (git-ignored)
#   # then, on the GPU machine, from the checkout's root (carry .gpupack):
#   bash .gpupack/run.sh [RESULTS_DIR]           # runs tests/gpu/run-gpu-checks.sh on the pack
#
# The pack is PACK_DIR/brisk-gpu.tar.xz and run.sh,
# which unpacks it under /tmp, runs the checks into RESULTS_DIR (default
# /tmp/brisk-gpu-checks) and, where $OUT is set (the device tool's output
# folder, which returns at most 8 files), copies summary.md there with the
# whole results folder as gpu-checks.tar.gz.
#
# Why: a device lease is 15 minutes, start-up included; building there costs
# most of it, and a lease once failed because a hand-made pack left out a
# library (libicudata). This script asks ldd, so the pack holds every
# library the binaries load except the C/C++ runtime and CUDA's own (the
# GPU image has those: its driver, CUDA 13 runtime, cuBLAS and cuBLASLt).
#
# Environment:
#   BRISK_GPU_BUILD_DIR   build folder (default: build-gpu in the checkout), configured
#                         with -DBRISK_WITH_UI=OFF -DBRISK_CUDA_ARCHS=${BRISK_CUDA_ARCHS:-90}
#                         -DBRISK_SHARED_LIBS=ON (the kernels' machine code once, in
#                         libbrisk_cuda_kernels.so, not in each of the six programs)
#   BRISK_MODELS_DIR      real test models to pack (default: ../shared/models beside the checkout)
#   BRISK_PACK_LIMIT_MIB  fail when the pack is larger (default 48: a call carries 64 MiB with the tree)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PACK="${1:-$REPO/.gpupack}"
BUILD="${BRISK_GPU_BUILD_DIR:-$REPO/build-gpu}"
ARCHS="${BRISK_CUDA_ARCHS:-90}"
MODELS="${BRISK_MODELS_DIR:-$REPO/../shared/models}"
LIMIT_MIB="${BRISK_PACK_LIMIT_MIB:-48}"

command -v nvcc >/dev/null || { echo "pack-for-device: nvcc not on PATH: the CUDA backend cannot be built" >&2; exit 1; }

# Every GPU test (tests/gpu/test_NAME.cpp is target gpu_test_NAME) and benchmark target, plus the CLI.
mapfile -t targets < <({
  for f in "$REPO"/tests/gpu/test_*.cpp; do echo "gpu_$(basename "$f" .cpp)"; done
  grep -oE 'add_executable\((gpu_bench_[A-Za-z0-9_]+)' "$REPO/tests/CMakeLists.txt" | sed 's/add_executable(//'
} | sort -u)
[ "${#targets[@]}" -gt 0 ] || { echo "pack-for-device: no gpu_test_*/gpu_bench_* targets in tests/CMakeLists.txt" >&2; exit 1; }

echo "pack-for-device: building ${targets[*]} brisk-cli in $BUILD (sm_$ARCHS)"
cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBRISK_WITH_UI=OFF -DBRISK_CUDA_ARCHS="$ARCHS" \
  -DBRISK_SHARED_LIBS=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target brisk-cli "${targets[@]}"

STAGE="$BUILD/gpupack-stage"
rm -rf "$PACK" "$STAGE"
mkdir -p "$PACK" "$STAGE/app" "$STAGE/tests" "$STAGE/lib"
bins=("$BUILD/app/brisk-cli")
cp "$BUILD/app/brisk-cli" "$STAGE/app/"
for t in "${targets[@]}"; do
  [ -x "$BUILD/tests/$t" ] || { echo "pack-for-device: $BUILD/tests/$t was not built" >&2; exit 1; }
  cp "$BUILD/tests/$t" "$STAGE/tests/"
  bins+=("$BUILD/tests/$t")
done
strip --strip-debug "$STAGE"/app/* "$STAGE"/tests/* 2>/dev/null || true  # -lineinfo stays in the fatbins

# Libraries: all that ldd resolves, except what every Linux and the CUDA image provide.
is_provided() {
  case "$(basename "$1")" in
    linux-vdso* | ld-linux* | libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | libgcc_s.so* | \
      libstdc++.so* | libcuda.so* | libcudart.so* | libcublas.so* | libcublasLt.so* | libnvidia* | libz.so*)
      return 0 ;;
  esac
  return 1
}
missing=0
while read -r lib path; do
  if [ "$path" = "not" ]; then
    echo "pack-for-device: ldd cannot resolve $lib here" >&2
    missing=1
    continue
  fi
  is_provided "$lib" || cp -L "$path" "$STAGE/lib/$lib"
done < <(for b in "${bins[@]}"; do ldd "$b"; done | awk '$2 == "=>" { print $1, $3 }' | sort -u)
[ "$missing" -eq 0 ] || exit 1

if [ -d "$MODELS" ]; then
  cp -rL "$MODELS" "$STAGE/models"
  chmod -R u+w "$STAGE/models"
else
  echo "pack-for-device: no models at $MODELS: the real-model GPU tests will skip" >&2
fi

tar -C "$STAGE" -cf - . | xz -T0 -6 >"$PACK/brisk-gpu.tar.xz"

cat >"$PACK/run.sh" <<'RUN'
#!/usr/bin/env bash
# On the GPU machine, from the checkout's root: bash .gpupack/run.sh [RESULTS_DIR]
# (environment as tests/gpu/run-gpu-checks.sh: BRISK_GPU_CHECK_BUDGET_S, BRISK_GPU_CHECK_SKIP, ...).
set -uo pipefail
PACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$PACK/.." && pwd)"
BIN=/tmp/brisk-gpupack
rm -rf "$BIN" && mkdir -p "$BIN" && xz -dc "$PACK/brisk-gpu.tar.xz" | tar -C "$BIN" -xf - || exit 1
# CUDA's libraries where the image keeps them, after the packed ones.
cuda_libs=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -e "$d/libcublasLt.so.13" ] && cuda_libs="$cuda_libs:$d"
done
if [ -z "$cuda_libs" ] && ! ldconfig -p 2>/dev/null | grep -q 'libcublasLt.so.13'; then
  d=$(find / -xdev -name 'libcublasLt.so.13' -printf '%h\n' 2>/dev/null | head -1)
  [ -n "$d" ] && cuda_libs=":$d"
fi
export LD_LIBRARY_PATH="$BIN/lib$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ -d "$BIN/models" ] && export BRISK_MODELS_DIR="${BRISK_MODELS_DIR:-$BIN/models}"
missing=$(ldd "$BIN/app/brisk-cli" "$BIN"/tests/* 2>/dev/null | grep 'not found' | sort -u)
[ -z "$missing" ] || echo "run.sh: libraries not found: $missing"
RESULTS="${1:-/tmp/brisk-gpu-checks}"
"$REPO/tests/gpu/run-gpu-checks.sh" "$BIN" "$RESULTS"
rc=$?
if [ -n "${OUT:-}" ] && [ -d "$OUT" ] && [ "$(cd "$RESULTS" && pwd)" != "$(cd "$OUT" && pwd)" ]; then
  cp "$RESULTS/summary.md" "$OUT/" 2>/dev/null
  tar -C "$(dirname "$RESULTS")" -czf "$OUT/gpu-checks.tar.gz" "$(basename "$RESULTS")"
fi
exit $rc
RUN
chmod +x "$PACK/run.sh"
rm -rf "$STAGE"

size_kib=$(du -sk "$PACK" | cut -f1)
echo "pack-for-device: $PACK holds ${#targets[@]} GPU programs, brisk-cli, $(tar -tJf "$PACK/brisk-gpu.tar.xz" | grep -c '^./lib/.') libraries$([ -d "$MODELS" ] && echo ", models") compressed: $((size_kib / 1024)) MiB"
if [ "$size_kib" -gt $((LIMIT_MIB * 1024)) ]; then
  echo "pack-for-device: larger than $LIMIT_MIB MiB (BRISK_PACK_LIMIT_MIB): it may not travel with the tree" >&2
  exit 1
fi
echo "pack-for-device: on the GPU machine run: bash ${PACK#"$REPO"/}/run.sh   (carry: ${PACK#"$REPO"/})"
