#!/usr/bin/env bash
# Builds Brisk's GPU binaries on a development machine (no GPU needed) and
# packs them, with the shared libraries a CUDA machine lacks and the real
# test models, into one folder that a lent GPU machine runs in one call:
#
#   tests/gpu/pack-for-device.sh [PACK_DIR]      # default: .gpupack in the checkout (git-ignored)
#   # then, on the GPU machine, from the checkout's root:
#   bash .gpupack/run.sh [OUT_DIR]               # runs tests/gpu/run-gpu-checks.sh on the pack
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

# Every GPU test and benchmark target the tests declare, plus the CLI.
mapfile -t targets < <(grep -oE 'add_executable\((gpu_(test|bench)_[A-Za-z0-9_]+)' "$REPO/tests/CMakeLists.txt" |
  sed 's/add_executable(//' | sort -u)
[ "${#targets[@]}" -gt 0 ] || { echo "pack-for-device: no gpu_test_*/gpu_bench_* targets in tests/CMakeLists.txt" >&2; exit 1; }

echo "pack-for-device: building ${targets[*]} brisk-cli in $BUILD (sm_$ARCHS)"
cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBRISK_WITH_UI=OFF -DBRISK_CUDA_ARCHS="$ARCHS" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target brisk-cli "${targets[@]}"

rm -rf "$PACK"
mkdir -p "$PACK/app" "$PACK/tests" "$PACK/lib"
bins=("$BUILD/app/brisk-cli")
cp "$BUILD/app/brisk-cli" "$PACK/app/"
for t in "${targets[@]}"; do
  [ -x "$BUILD/tests/$t" ] || { echo "pack-for-device: $BUILD/tests/$t was not built" >&2; exit 1; }
  cp "$BUILD/tests/$t" "$PACK/tests/"
  bins+=("$BUILD/tests/$t")
done
strip --strip-debug "$PACK"/app/* "$PACK"/tests/* 2>/dev/null || true  # -lineinfo stays in the fatbins

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
  is_provided "$lib" || cp -L "$path" "$PACK/lib/$lib"
done < <(for b in "${bins[@]}"; do ldd "$b"; done | awk '$2 == "=>" { print $1, $3 }' | sort -u)
[ "$missing" -eq 0 ] || exit 1

if [ -d "$MODELS" ]; then
  cp -rL "$MODELS" "$PACK/models"
else
  echo "pack-for-device: no models at $MODELS: the real-model GPU tests will skip" >&2
fi

cat >"$PACK/run.sh" <<'RUN'
#!/usr/bin/env bash
# On the GPU machine, from the checkout's root: bash .gpupack/run.sh [OUT_DIR]
# (environment as tests/gpu/run-gpu-checks.sh: BRISK_GPU_CHECK_BUDGET_S, BRISK_GPU_CHECK_SKIP, ...).
set -uo pipefail
PACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$PACK/.." && pwd)"
# CUDA's libraries where the image keeps them, after the packed ones.
cuda_libs=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -e "$d/libcublasLt.so.13" ] && cuda_libs="$cuda_libs:$d"
done
if [ -z "$cuda_libs" ] && ! ldconfig -p 2>/dev/null | grep -q 'libcublasLt.so.13'; then
  d=$(find / -xdev -name 'libcublasLt.so.13' -printf '%h\n' 2>/dev/null | head -1)
  [ -n "$d" ] && cuda_libs=":$d"
fi
export LD_LIBRARY_PATH="$PACK/lib$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ -d "$PACK/models" ] && export BRISK_MODELS_DIR="${BRISK_MODELS_DIR:-$PACK/models}"
missing=$(ldd "$PACK/app/brisk-cli" "$PACK"/tests/* 2>/dev/null | grep 'not found' | sort -u)
[ -z "$missing" ] || echo "run.sh: libraries not found: $missing"
exec "$REPO/tests/gpu/run-gpu-checks.sh" "$PACK" "${1:-${OUT:-/tmp/brisk-gpu-checks}}"
RUN
chmod +x "$PACK/run.sh"

size_kib=$(du -sk "$PACK" | cut -f1)
echo "pack-for-device: $PACK holds $(ls "$PACK/tests" | wc -l) GPU programs, brisk-cli, $(ls "$PACK/lib" | wc -l) libraries$([ -d "$PACK/models" ] && echo ", models"): $((size_kib / 1024)) MiB"
if [ "$size_kib" -gt $((LIMIT_MIB * 1024)) ]; then
  echo "pack-for-device: larger than $LIMIT_MIB MiB (BRISK_PACK_LIMIT_MIB): it may not travel with the tree" >&2
  exit 1
fi
echo "pack-for-device: on the GPU machine run: bash ${PACK#"$REPO"/}/run.sh [OUT_DIR]   (carry: ${PACK#"$REPO"/})"
