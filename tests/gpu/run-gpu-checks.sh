#!/usr/bin/env bash
# Runs every GPU check of Brisk on a CUDA machine and writes a summary table.
#
#   tests/gpu/run-gpu-checks.sh [BUILD_DIR] [OUT_DIR]
#
# BUILD_DIR (default: build-gpu in the checkout) holds a Brisk build with the
# CUDA backend; without brisk-cli in it, the script configures and builds one
# (-DBRISK_WITH_UI=OFF, CUDA archs "native", else 90). OUT_DIR (default
# /tmp/brisk-gpu-checks) receives one log per step and summary.md: check,
# figure, target, PASS/FAIL/SKIP/INFO. The summary is printed last.
#
# Steps: nvidia-smi; every gpu_test_* executable in BUILD_DIR/tests (Qt Test,
# with a per-test timeout); brisk-cli sysinfo (device bandwidth, F16/FP8 GEMM
# throughput); a synthetic 1.1B F16 model (make-model, under /tmp); then
# brisk-cli bench --backend cuda: single-sequence decode (F16, INT8, FP8) as
# a fraction of the measured device bandwidth, 64 concurrent sequences vs
# one, prefill F16 vs FP8, and a 256-request workload against Hugging Face
# transformers generate() on the same shape (hf_generate_baseline.py).
# Every step runs even when an earlier one failed; the whole script is sized
# to finish in under 8 minutes on an H100 (BRISK_GPU_CHECK_BUDGET_S stops
# starting new steps once spent).
#
# Environment:
#   LD_LIBRARY_PATH          honoured as given (carried .so files)
#   BRISK_MODELS_DIR         real test models for the GPU tests (else they look in ../shared/models)
#   BRISK_GPU_CHECK_BUDGET_S seconds after which remaining steps are skipped (default 450)
#   BRISK_GPU_TEST_TIMEOUT_S per GPU test executable (default 180)
#   BRISK_GPU_CHECK_MODEL    an existing model to benchmark instead of making the 1.1B one
#   BRISK_GPU_CHECK_SKIP     bench step names to skip (e.g. "decode1-int8 decode1-f16-no-cuda-graphs",
#                            "decode-attention", "prefill-attention", "decode-layer", "decode-layer-ncu",
#                            "hf-baseline", "prefill-gemm"), for a short device lease
#   BRISK_GPU_CHECK_ONLY     the only bench steps to run (same names; the GPU tests always run), e.g.
#                            "decode1-f16 decode1-f16-l2-prefetch decode-layer decode-layer-ncu"
#   BRISK_GPU_CHECKS_CPU=1   no CUDA device: run the benchmark steps on the CPU backend with a
#                            tiny model and few tokens, to test this script itself (figures meaningless)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-$REPO/build-gpu}"
OUT="${2:-/tmp/brisk-gpu-checks}"
BUDGET_S="${BRISK_GPU_CHECK_BUDGET_S:-450}"
TEST_TIMEOUT_S="${BRISK_GPU_TEST_TIMEOUT_S:-180}"
CPU_MODE="${BRISK_GPU_CHECKS_CPU:-0}"
START=$(date +%s)

mkdir -p "$OUT"
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
OUT="$(cd "$OUT" && pwd)"
ROWS="$OUT/rows.tsv"
: >"$ROWS"
rm -f "$OUT"/*.log "$OUT"/*.json "$OUT"/*.txt

say() { printf '[%4ds] %s\n' "$(($(date +%s) - START))" "$*"; }
# One row of the summary: check, figure, target, verdict.
row() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$ROWS"; }
elapsed() { echo $(($(date +%s) - START)); }
over_budget() { [ "$(elapsed)" -ge "$BUDGET_S" ]; }
# Runs a command with a time limit, output to $OUT/NAME.log; returns its status, never exits.
run_logged() {
  local name="$1" limit="$2"
  shift 2
  local rc=0
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1 || rc=$?
  [ "$rc" -eq 124 ] && echo "TIMEOUT after ${limit}s" >>"$OUT/$name.log"
  return "$rc"
}
# A field of a JSON file by a Python expression on `j` (empty when missing).
jget() {
  python3 - "$1" "$2" <<'PY' 2>/dev/null || true
import json, sys
try:
    j = json.load(open(sys.argv[1]))
    v = eval(sys.argv[2], {"j": j})
    print("" if v is None else v)
except Exception:
    print("")
PY
}
# Arithmetic and comparisons on decimals: calc EXPR (Python syntax); empty on error.
calc() { python3 -c "import sys; print($1)" 2>/dev/null || true; }

# sysinfo caches the measured ceilings; with no writable home, under OUT_DIR so every bench reuses them.
if [ -z "${XDG_CACHE_HOME:-}" ] && ! mkdir -p "${HOME:-/nonexistent}/.cache/brisk" 2>/dev/null; then
  export XDG_CACHE_HOME="$OUT/cache"
fi

say "Brisk GPU checks: repo $REPO, build $BUILD, out $OUT"

# ------------------------------------------------------------------ build
CLI="$BUILD/app/brisk-cli"
if [ ! -x "$CLI" ]; then
  say "no brisk-cli in $BUILD: configuring and building"
  nproc_=$(nproc 2>/dev/null || echo 4)
  configure() {
    cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBRISK_WITH_UI=OFF -DBRISK_CUDA_ARCHS="$1"
  }
  if { configure native || configure 90; } >"$OUT/build.log" 2>&1 &&
    cmake --build "$BUILD" -j"$nproc_" >>"$OUT/build.log" 2>&1; then
    row "build" "configured and built in $(elapsed) s" "builds" "PASS"
  else
    row "build" "failed (build.log)" "builds" "FAIL"
  fi
else
  row "build" "using $BUILD" "-" "INFO"
fi

# ------------------------------------------------------------------ the device
HAVE_GPU=0
if command -v nvidia-smi >/dev/null 2>&1 && run_logged nvidia-smi 30 nvidia-smi; then
  HAVE_GPU=1
  say "nvidia-smi:"
  cat "$OUT/nvidia-smi.log"
  gpu_name=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 || true)
  row "nvidia-smi" "${gpu_name:-ok}" "a device" "PASS"
else
  echo "nvidia-smi not found or failed: no NVIDIA driver/device on this machine" >>"$OUT/nvidia-smi.log"
  say "no NVIDIA device (nvidia-smi missing or failing)"
  row "nvidia-smi" "no device" "a device" "SKIP"
fi

# ------------------------------------------------------------------ GPU tests
shopt -s nullglob
gpu_tests=("$BUILD"/tests/gpu_test_*)
shopt -u nullglob
if [ "${#gpu_tests[@]}" -eq 0 ]; then
  row "GPU tests" "none found in $BUILD/tests" "all pass" "FAIL"
fi
for t in "${gpu_tests[@]}"; do
  if [ ! -f "$t" ] || [ ! -x "$t" ]; then continue; fi
  name=$(basename "$t")
  if over_budget; then
    row "$name" "not run: time budget spent" "all pass" "SKIP"
    continue
  fi
  say "running $name"
  rc=0
  # Qt Test: the full text log to a file and to stdout (tee'd into the .log).
  (cd "$BUILD/tests" && QT_QPA_PLATFORM=offscreen timeout --kill-after=10 "$TEST_TIMEOUT_S" \
    "$t" -o "$OUT/$name.txt,txt" -o "-,txt") >"$OUT/$name.log" 2>&1 || rc=$?
  totals=$(grep -h '^Totals:' "$OUT/$name.log" | tail -1 | sed 's/^Totals: //; s/, [0-9]* blacklisted//' || true)
  grep -E '^(FAIL!|SKIP|QWARN|QDEBUG)' "$OUT/$name.log" | head -40 || true
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    row "$name" "timed out after ${TEST_TIMEOUT_S}s; ${totals:-no totals}" "all pass" "FAIL"
  elif [ "$rc" -ne 0 ]; then
    row "$name" "exit $rc; ${totals:-crashed}" "all pass" "FAIL"
  elif [ "$(grep -E '^PASS +:' "$OUT/$name.log" | grep -cvE '::(initTestCase|cleanupTestCase)\(\)' || true)" = "0" ] &&
    grep -qE '^SKIP' "$OUT/$name.log"; then
    # Nothing but the set-up ran: no device (the reason is the QSKIP message).
    reason=$(grep -m1 '^SKIP' "$OUT/$name.log" | sed 's/^SKIP *: *//' | cut -c1-120 || true)
    row "$name" "$totals (${reason:-skipped})" "all pass" "SKIP"
  else
    row "$name" "$totals" "all pass" "PASS"
  fi
done

# ------------------------------------------------------------------ sysinfo
if [ -x "$CLI" ]; then
  say "brisk-cli sysinfo"
  run_logged sysinfo 120 "$CLI" sysinfo || true
  cat "$OUT/sysinfo.log" || true
  run_logged sysinfo-json 120 sh -c "\"$CLI\" sysinfo --json > \"$OUT/sysinfo.json\"" || true
fi
BW=""
if [ -f "$OUT/sysinfo.json" ]; then
  cuda_ok=$(jget "$OUT/sysinfo.json" 'j["cuda_available"]')
  if [ "$cuda_ok" = "True" ]; then
    BW=$(jget "$OUT/sysinfo.json" 'j["gpus"][0]["bandwidth_bytes_per_s"] or ""')
    F16=$(jget "$OUT/sysinfo.json" 'j["gpus"][0]["f16_flops"] or ""')
    FP8=$(jget "$OUT/sysinfo.json" 'j["gpus"][0]["fp8_flops"] or ""')
    gname=$(jget "$OUT/sysinfo.json" 'j["gpus"][0]["name"] + ", sm_%d%d" % (j["gpus"][0]["cc_major"], j["gpus"][0]["cc_minor"])')
    row "sysinfo: GPU" "$gname" "listed" "PASS"
    if [ -n "$BW" ]; then
      row "sysinfo: device bandwidth" "$(calc "'%.0f GB/s' % ($BW / 1e9)")" "measured" "PASS"
      row "sysinfo: cuBLAS F16 GEMM 8192^3" "$(calc "'%.0f TFLOP/s' % ($F16 / 1e12)")" "measured" "PASS"
      if [ -n "$FP8" ] && [ "$(calc "$FP8 > 0")" = "True" ]; then
        row "sysinfo: cuBLASLt FP8 GEMM / F16" "$(calc "'%.0f TFLOP/s, %.2fx' % ($FP8 / 1e12, $FP8 / $F16)")" \
          ">= 1.5x (H100)" "$([ "$(calc "$FP8 / $F16 >= 1.5")" = "True" ] && echo PASS || echo FAIL)"
      else
        row "sysinfo: cuBLASLt FP8 GEMM" "$(jget "$OUT/sysinfo.json" 'j["gpus"][0]["fp8_method"]' | cut -c1-100)" "-" "INFO"
      fi
    else
      row "sysinfo: GPU ceilings" "$(jget "$OUT/sysinfo.json" 'j["gpus"][0]["measure_error"]' | cut -c1-120)" "measured" "FAIL"
    fi
  else
    row "sysinfo: CUDA" "unavailable: $(jget "$OUT/sysinfo.json" 'j["cuda_reason"]' | cut -c1-120)" "available" "SKIP"
  fi
else
  row "sysinfo" "no output (sysinfo.log)" "runs" "FAIL"
fi

# ------------------------------------------------------------------ benchmarks
BACKEND=cuda
BENCH_OK=1
if [ "$CPU_MODE" = "1" ]; then
  BACKEND=cpu
  say "BRISK_GPU_CHECKS_CPU=1: benchmark steps on the CPU with a tiny model (figures meaningless)"
  BW=$(jget "$OUT/sysinfo.json" 'j["read_bandwidth_bytes_per_s"] or ""')
elif [ "${cuda_ok:-}" != "True" ]; then
  BENCH_OK=0
fi

# Sizes: the H100 budget (1.1B F16 model); CPU mode shrinks everything.
if [ "$CPU_MODE" = "1" ]; then
  MODEL_ARGS=(--dims "256,688,4,8,4,32000,1024" --dtype f16)
  MODEL_NAME=tiny-f16.gguf
  SINGLE_OUT=32 MULTI=8 MULTI_OUT=16 PREFILL_N=2 PREFILL_LEN=128 WL_N=8 WL_PROMPT=32 WL_OUT=16
else
  MODEL_ARGS=(--shape 1.1b --dtype f16)
  MODEL_NAME=1.1b-f16.gguf
  SINGLE_OUT=256 MULTI=64 MULTI_OUT=256 PREFILL_N=32 PREFILL_LEN=512 WL_N=256 WL_PROMPT=128 WL_OUT=128
fi
MODEL="${BRISK_GPU_CHECK_MODEL:-/tmp/brisk-gpu-checks-models/$MODEL_NAME}"

if [ "$BENCH_OK" = "1" ] && [ -x "$CLI" ] && [ ! -f "$MODEL" ]; then
  mkdir -p "$(dirname "$MODEL")"
  say "make-model ${MODEL_ARGS[*]} $MODEL"
  if run_logged make-model 300 "$CLI" make-model "${MODEL_ARGS[@]}" "$MODEL"; then
    row "make-model" "$(tail -1 "$OUT/make-model.log" | cut -c1-140)" "written" "PASS"
  else
    row "make-model" "failed (make-model.log)" "written" "FAIL"
    rm -f "$MODEL"
  fi
fi
[ -f "$MODEL" ] || BENCH_OK=0

# Whether step NAME is skipped: not listed in BRISK_GPU_CHECK_ONLY where that is set, else listed in
# BRISK_GPU_CHECK_SKIP.
skipped() {
  if [ -n "${BRISK_GPU_CHECK_ONLY:-}" ]; then
    [[ " $BRISK_GPU_CHECK_ONLY " != *" $1 "* ]]
    return
  fi
  [[ " ${BRISK_GPU_CHECK_SKIP:-} " == *" $1 "* ]]
}
# bench NAME LIMIT ARGS...: brisk-cli bench --json into $OUT/NAME.json; 0 when it produced a result.
bench() {
  local name="$1" limit="$2"
  shift 2
  if over_budget; then
    echo "not run: time budget spent" >"$OUT/$name.log"
    return 3
  fi
  if skipped "$name"; then
    echo "not run: skipped (BRISK_GPU_CHECK_SKIP / BRISK_GPU_CHECK_ONLY)" >"$OUT/$name.log"
    return 3
  fi
  say "bench $name: $*"
  local rc=0
  timeout --kill-after=10 "$limit" "$CLI" bench "$MODEL" --backend "$BACKEND" --json --warmup 1 "$@" \
    >"$OUT/$name.json" 2>"$OUT/$name.log" || rc=$?
  [ "$rc" -eq 124 ] && echo "TIMEOUT after ${limit}s" >>"$OUT/$name.log"
  if [ "$rc" -ne 0 ] || [ -n "$(jget "$OUT/$name.json" 'j["error"]')" ]; then
    tail -5 "$OUT/$name.log" || true
    return 1
  fi
  return 0
}
why() {  # the reason a bench step has no figure, for the table
  case "$1" in
    3) tail -1 "$OUT/$2.log" 2>/dev/null || echo "not run" ;;
    *) echo "failed: $(tail -1 "$OUT/$2.log" 2>/dev/null | cut -c1-110)" ;;
  esac
}
# PASS/FAIL against a target; in CPU mode the figures judge nothing.
verdict() {
  if [ "$CPU_MODE" = "1" ]; then
    echo "INFO"
  elif [ "$(calc "$1")" = "True" ]; then
    echo PASS
  else
    echo FAIL
  fi
}

if [ "$BENCH_OK" != "1" ]; then
  reason="no CUDA device"
  [ "${cuda_ok:-}" = "True" ] && reason="no model (make-model.log)"
  [ -x "$CLI" ] || reason="no brisk-cli"
  for c in "decode 1 seq F16: % of device bandwidth" "decode 1 seq INT8" "decode 1 seq FP8" \
    "decode 64 seqs / 1 seq" "prefill FP8 / F16" "256 requests: Brisk / HF generate()"; do
    row "$c" "not run: $reason" "-" "SKIP"
  done
else
  # One sequence at a time: decode streams every weight per token.
  SINGLE=(--num-requests 2 --max-concurrency 1 --max-num-seqs 1 --prompt-len fixed:128 --output-len "fixed:$SINGLE_OUT")
  declare -A single_tps
  for dt in f16 int8 fp8-e4m3; do
    name="decode1-$dt"
    dtype_args=(--dtype "$dt")
    [ "$dt" = "f16" ] && dtype_args=(--dtype auto)
    rc=0
    bench "$name" 180 "${SINGLE[@]}" "${dtype_args[@]}" || rc=$?
    label="decode 1 seq $(echo "$dt" | tr "[:lower:]" "[:upper:]" | sed 's/-E4M3/ E4M3/')"
    if [ "$rc" -eq 0 ]; then
      tps=$(jget "$OUT/$name.json" 'j["roofline"]["decode_tokens_per_s"]')
      frac=$(jget "$OUT/$name.json" 'j["roofline"]["decode_bandwidth_fraction"]')
      if [ -z "$frac" ] || [ "$(calc "${frac:-0} <= 0")" = "True" ]; then
        # The roofline had no ceiling: bytes per step x steps per second / sysinfo's bandwidth.
        frac=$(calc "$(jget "$OUT/$name.json" 'j["roofline"]["decode_bytes_per_step"]') / $(jget "$OUT/$name.json" 'j["roofline"]["decode_step_s"]') / $BW")
      fi
      single_tps[$dt]="$tps"
      step=$(jget "$OUT/$name.json" 'j["roofline"]["decode_step_s"]')
      fwd=$(jget "$OUT/$name.json" 'j["roofline"].get("decode_forward_s", 0)')
      figure="$(calc "'%.1f tok/s, %.0f%% of bandwidth (step %.3f ms, forward %.3f ms)' % ($tps, 100 * $frac, 1e3 * ${step:-0}, 1e3 * ${fwd:-0})")"
      if [ "$dt" = "f16" ]; then
        row "$label: % of device bandwidth" "$figure" ">= 70%" "$(verdict "$frac >= 0.70")"
      else
        row "$label: % of device bandwidth" "$figure" "-" "INFO"
      fi
    else
      row "$label" "$(why "$rc" "$name")" "$([ "$dt" = f16 ] && echo '>= 70%' || echo '-')" \
        "$([ "$rc" -eq 3 ] && echo SKIP || echo FAIL)"
    fi
  done

  # A/B: the same single-sequence decode with every layer in one persistent
  # launch (--persistent-decode), with the next weights prefetched
  # into L2 during RoPE and attention (--l2-prefetch), with each kernel
  # launched only once the one before has finished (--no-dependent-launch), with the norms,
  # residual adds and SwiGLU as kernels of their own (--no-fused-decode),
  # with RoPE and the KV write folded into the q/k/v projection (--fused-rope),
  # with split attention merged in its kernel (--split-merge-in-kernel), both,
  # and without graphs.
  # "a+b" runs with both flags.
  for ab in persistent-decode l2-prefetch fused-rope split-merge-in-kernel fused-rope+split-merge-in-kernel no-dependent-launch \
    no-fused-decode no-cuda-graphs; do
    rc=0
    flags=()
    IFS=+ read -ra names <<<"$ab"
    for f in "${names[@]}"; do flags+=("--$f"); done
    name="decode1-f16-${ab//+/-and-}"  # file names that travel back: letters, digits, '.', '_', '-'
    label="decode 1 seq F16, ${flags[*]}"
    if [ "$CPU_MODE" = "1" ]; then  # the CPU backend refuses CUDA-only flags (exit 2)
      row "$label" "not run: CPU mode, CUDA-only flags" "-" "SKIP"
      continue
    fi
    bench "$name" 180 "${SINGLE[@]}" --dtype auto "${flags[@]}" || rc=$?
    if [ "$rc" -eq 0 ]; then
      tps=$(jget "$OUT/$name.json" 'j["roofline"]["decode_tokens_per_s"]')
      step=$(jget "$OUT/$name.json" 'j["roofline"]["decode_step_s"]')
      frac=$(jget "$OUT/$name.json" 'j["roofline"]["decode_bandwidth_fraction"]')
      row "$label" "$(calc "'%.1f tok/s, %.0f%% of bandwidth (step %.3f ms)' % ($tps, 100 * ${frac:-0}, 1e3 * $step)")" "-" "INFO"
    else
      row "$label" "$(why "$rc" "$name")" "-" "$([ "$rc" -eq 3 ] && echo SKIP || echo FAIL)"
    fi
  done

  # Many sequences share each weight read: aggregate decode vs one sequence.
  rc=0
  bench decode64 240 --num-requests "$MULTI" --max-num-seqs "$MULTI" --max-num-batched-tokens 8192 \
    --prompt-len fixed:128 --output-len "fixed:$MULTI_OUT" || rc=$?
  if [ "$rc" -eq 0 ] && [ -n "${single_tps[f16]:-}" ]; then
    tps=$(jget "$OUT/decode64.json" 'j["roofline"]["decode_tokens_per_s"]')
    step=$(jget "$OUT/decode64.json" 'j["roofline"]["decode_step_s"]')
    fwd=$(jget "$OUT/decode64.json" 'j["roofline"].get("decode_forward_s", 0)')
    ratio=$(calc "$tps / ${single_tps[f16]}")
    row "decode $MULTI seqs / 1 seq (F16)" "$(calc "'%.0f tok/s, %.1fx (step %.3f ms, forward %.3f ms)' % ($tps, $ratio, 1e3 * $step, 1e3 * ${fwd:-0})")" ">= 20x" \
      "$(verdict "$ratio >= 20")"
  elif [ "$rc" -eq 0 ]; then
    row "decode $MULTI seqs / 1 seq (F16)" "no single-sequence figure to compare" ">= 20x" "FAIL"
  else
    row "decode $MULTI seqs / 1 seq (F16)" "$(why "$rc" decode64)" ">= 20x" "$([ "$rc" -eq 3 ] && echo SKIP || echo FAIL)"
  fi

  # The prefill GEMMs alone, through the backend's matmul (activation
  # conversion or quantization, GEMM, rescale), one 1.1B layer at 8192 tokens.
  GEMM_BENCH="$BUILD/tests/gpu_bench_prefill_gemm"
  if [ "$CPU_MODE" != "1" ] && [ -x "$GEMM_BENCH" ] && ! over_budget && ! skipped prefill-gemm; then
    say "prefill GEMMs: $GEMM_BENCH --tokens 8192"
    grc=0
    timeout --kill-after=10 120 "$GEMM_BENCH" --tokens 8192 --reps 10 >"$OUT/prefill-gemm.json" \
      2>"$OUT/prefill-gemm.log" || grc=$?
    r=$(jget "$OUT/prefill-gemm.json" '[x for x in j["results"] if x["dtype"] == "fp8-e4m3"][0]["vs_f16"]')
    if [ "$grc" -eq 0 ] && [ -n "$r" ]; then
      f16=$(jget "$OUT/prefill-gemm.json" '[x for x in j["results"] if x["dtype"] == "f16"][0]["ms_per_layer"]')
      f8=$(jget "$OUT/prefill-gemm.json" '[x for x in j["results"] if x["dtype"] == "fp8-e4m3"][0]["ms_per_layer"]')
      sc=$(jget "$OUT/prefill-gemm.json" '[x for x in j["results"] if x["dtype"] == "fp8-e4m3"][0]["fp8_scaled_gemms"]')
      row "prefill GEMMs of a layer, 8192 tokens: FP8 with F32 promotion (--no-fp8-fast-accum) / F16" \
        "$(calc "'%.3f vs %.3f ms, %.2fx (%s GEMMs scaled by cuBLASLt)' % ($f8, $f16, $r, '$sc')")" \
        "-" "INFO"
    else
      row "prefill GEMMs FP8 / F16" "failed: $(tail -1 "$OUT/prefill-gemm.log" 2>/dev/null | cut -c1-100)" \
        ">= 1.5x (H100)" "FAIL"
    fi
    # The same seven GEMMs alone (inputs already F16 / FP8): the tensor-core work without conversion passes.
    g=$(jget "$OUT/prefill-gemm.json" '"%.3f vs %.3f ms, %.2fx (%.0f vs %.0f TFLOP/s, scaled %s)" % (j["gemm_only"]["fp8_ms"], j["gemm_only"]["f16_ms"], j["gemm_only"]["fp8_vs_f16"], j["gemm_only"]["fp8_tflops"], j["gemm_only"]["f16_tflops"], j["gemm_only"]["fp8_scaled"])')
    row "prefill GEMMs of a layer alone (no conversion passes): FP8 / F16" "${g:-no figure (prefill-gemm.json)}" "-" "INFO"
    # FP8 with cuBLASLt's fast accumulation (the default): through the backend, and alone.
    rf=$(jget "$OUT/prefill-gemm.json" '[x for x in j["results"] if x["dtype"] == "fp8-e4m3-fast-accum"][0]["vs_f16"]')
    ff=$(jget "$OUT/prefill-gemm.json" '"%.3f ms, %.2fx F16 (%.0f TFLOP/s)" % (j["gemm_only"]["fp8_fast_accum_ms"], j["gemm_only"]["fp8_fast_accum_vs_f16"], j["gemm_only"]["fp8_fast_accum_tflops"])')
    if [ -n "$rf" ]; then
      row "prefill GEMMs of a layer, 8192 tokens: FP8 (fast accumulation, the default) / F16" \
        "$(calc "'%.2fx through the backend' % $rf"); alone ${ff:-no figure}" ">= 1.5x (H100)" "$(verdict "$rf >= 1.5")"
    else
      row "prefill GEMMs FP8 fast accumulation / F16" "no figure (prefill-gemm.json)" ">= 1.5x (H100)" "FAIL"
    fi
    # Every cuBLASLt algorithm for each FP8 GEMM timed: would choosing by measurement reach the target?
    sw=$(jget "$OUT/prefill-gemm.json" '"heuristic %.3f ms, fastest %.3f ms = %.2fx F16; with fast accumulation %.3f / %.3f ms = %.2fx (%d algorithms, complete %s)" % (j["fp8_algo_sweep"]["heuristic_ms"], j["fp8_algo_sweep"]["best_ms"], j["fp8_algo_sweep"]["best_vs_f16"], j["fp8_algo_sweep"]["fast_accum_heuristic_ms"], j["fp8_algo_sweep"]["fast_accum_best_ms"], j["fp8_algo_sweep"]["fast_accum_best_vs_f16"], j["fp8_algo_sweep"]["algorithms_timed"], j["fp8_algo_sweep"]["complete"])')
    row "prefill FP8 GEMMs, every cuBLASLt algorithm timed" "${sw:-no figure (prefill-gemm.json)}" "-" "INFO"
    # The GEMMs alone through cuBLASLt by output type (F32 as the engine writes, or half) and grouping (q/k/v
    # and gate/up separate as the engine runs them, or merged): what holds FP8 under 1.5x, if either.
    gm=$(jget "$OUT/prefill-gemm.json" '"; ".join("%s, %s: F32 out %s, half out %s" % (n, g, *[("%.2fx" % v) if v > 0 else "n/a (no algorithm)" for v in (j["gemm_matrix"][n + "_vs_f16"]["f32_out_" + g], j["gemm_matrix"][n + "_vs_f16"]["half_out_" + g])]) for n in ("fp8-e4m3", "fp8-e4m3-fast-accum") for g in ("separate", "merged"))')
    row "prefill GEMMs alone, FP8 / F16 by output type and merged projections" "${gm:-no figure (prefill-gemm.json)}" "-" "INFO"
  fi

  # Decode attention alone: one sequence, per call, by context length and KV dtype, beside an empty launch.
  ATTN_BENCH="$BUILD/tests/gpu_bench_decode_attention"
  if [ "$CPU_MODE" != "1" ] && [ -x "$ATTN_BENCH" ] && ! over_budget &&
    ! skipped decode-attention; then
    say "decode attention: $ATTN_BENCH"
    timeout --kill-after=10 60 "$ATTN_BENCH" --reps 1000 >"$OUT/decode-attention.json" 2>"$OUT/decode-attention.log" || true
    figure=$(jget "$OUT/decode-attention.json" '"; ".join("%s %s %d seqs ctx %d, merge %s: %.1f us" % (r["kernel"], r["kv"], r["seqs"], r["ctx"], r["merge"], r["us_per_call"]) for r in j["results"]) + "; empty launch %.1f us" % j["results"][0]["empty_launch_us"]')
    row "decode attention per call (1.1B heads)" "${figure:-no figure (decode-attention.log)}" "-" "INFO"
  fi

  # Prefill attention alone: 8 prompts of 128, 512 and 2048 tokens on the 1.1B heads, through the tiled
  # kernel and the register-tiled one (the default for head_dim 64 and 128).
  if [ "$CPU_MODE" != "1" ] && [ -x "$ATTN_BENCH" ] && ! over_budget && ! skipped prefill-attention; then
    say "prefill attention: $ATTN_BENCH --prefill 128,512,2048"
    timeout --kill-after=10 60 "$ATTN_BENCH" --seqs "" --merge reduce --kernels auto --prefill 128,512,2048 \
      --kv f32,f16 --reps 1000 >"$OUT/prefill-attention.json" 2>"$OUT/prefill-attention.log" || true
    figure=$(jget "$OUT/prefill-attention.json" '"; ".join("%s %s KV, %d x %d tokens: %.0f us, %.1f TFLOP/s" % (r["kernel"], r["kv"], r["seqs"], r["prompt"], r["us_per_call"], r["tflops"]) for r in j["results"] if r.get("prefill"))')
    row "prefill attention per call (1.1B heads)" "${figure:-no figure (prefill-attention.log)}" "-" "INFO"
  fi

  # One token's layers op by op (F16, 256-token context), the fold on and off, split attention merged by a
  # reduce kernel and in kernel, graphs replayed, with the L2 weight prefetch at 0, 8, 16 MiB and half the
  # L2: where the single-sequence step's time goes. (The GEMV's blocks per multiprocessor were swept in the
  # twelfth session: the default, 3, was fastest; --gemv-blocks 0,2,1 sweeps them again.)
  LAYER_BENCH="$BUILD/tests/gpu_bench_decode_layer"
  if [ "$CPU_MODE" != "1" ] && [ -x "$LAYER_BENCH" ] && ! over_budget && ! skipped decode-layer; then
    say "decode layer: $LAYER_BENCH"
    timeout --kill-after=10 90 "$LAYER_BENCH" --reps 1100 --gemv-blocks 0 >"$OUT/decode-layer.json" \
      2>"$OUT/decode-layer.log" || true
    figure=$(jget "$OUT/decode-layer.json" '"; ".join("merge %s, blocks/SM %d: " % (s["split_merge"], s["gemv_blocks_per_sm"]) + ", ".join("%s %.1f us" % (o["op"], o["us_per_call"]) for o in s["ops"]) + "; stack " + ", ".join("RoPE %s, L2 prefetch %d MiB: %.0f us (%.0f%% of copy bandwidth)" % (t["rope"], t.get("l2_prefetch_mb", 0), t["graph_us"], 100 * t["bandwidth_fraction"]) for t in s["stacks"]) for s in j["settings"]) + "; one launch: " + ", ".join(("blocks/SM %d declined" % t["blocks_per_sm"]) if t.get("declined") else ("blocks/SM %d (resident %d): %.0f us (%.0f%% of copy bandwidth; phases of a layer %s us)" % (t["blocks_per_sm"], t.get("resident_blocks_per_sm", 0), t["graph_us"], 100 * t["bandwidth_fraction"], "/".join("%.1f" % x for x in t.get("phase_us", [])))) for t in j.get("one_launch", []))')
    row "decode layers op by op (1.1B, F16, 22 layers)" "${figure:-no figure (decode-layer.log)}" "-" "INFO"
  fi

  # The same layer's kernels under Nsight Compute where it is installed and reads the counters: each
  # kernel's own duration and device-memory traffic (caches flushed before each, clocks left alone),
  # without the launches and waits between kernels that the stack above includes.
  if [ "$CPU_MODE" != "1" ] && [ -x "$LAYER_BENCH" ] && command -v ncu >/dev/null 2>&1 && ! over_budget &&
    ! skipped decode-layer-ncu; then
    say "decode layer kernels under ncu"
    # The report goes to its own file (--log-file), the program's JSON to decode-layer-ncu.json.
    timeout --kill-after=10 150 ncu --clock-control none --profile-from-start off --csv --print-units base \
      --log-file "$OUT/decode-layer-ncu.csv" \
      --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active,launch__grid_size,launch__registers_per_thread \
      "$LAYER_BENCH" --profile-layer 1 >"$OUT/decode-layer-ncu.json" 2>"$OUT/decode-layer-ncu.log" || true
    figure=$(python3 - "$OUT/decode-layer-ncu.csv" <<'PY' 2>>"$OUT/decode-layer-ncu.log" || true
import csv, re, sys
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
head, body = rows[0], rows[1:]
col = {n: i for i, n in enumerate(head)}
kernels = {}
for r in body:
    k = kernels.setdefault(int(r[col["ID"]]), {"name": r[col["Kernel Name"]]})
    try:
        k[r[col["Metric Name"]]] = float(r[col["Metric Value"]].replace(",", ""))
    except ValueError:  # "n/a" and the like: the metric is left out
        pass
def short(n):  # "void ns::(anonymous namespace)::f<(T)1, (int)0>(args)" -> "f<1, 0>"
    n = re.sub(r"^void ", "", n.replace("(anonymous namespace)::", ""))
    depth = 0
    for i, c in enumerate(n):
        depth += (c == "<") - (c == ">")
        if c == "(" and depth == 0:
            n = n[:i]
            break
    return re.sub(r"^(\w+::)+", "", re.sub(r"\((\w+::)*\w+\)", "", n))
out = []
for i in sorted(kernels):
    k = kernels[i]
    name = short(k["name"])
    ns = k.get("gpu__time_duration.sum", 0)
    gbs = k.get("dram__bytes_read.sum", 0) / ns if ns else 0
    out.append("%s: %.1f us, %.0f GB/s read (%.0f%% of peak), grid %d, %d regs, warps %.0f%%" % (
        name, ns / 1e3, gbs, k.get("dram__throughput.avg.pct_of_peak_sustained_elapsed", 0),
        k.get("launch__grid_size", 0), k.get("launch__registers_per_thread", 0),
        k.get("sm__warps_active.avg.pct_of_peak_sustained_active", 0)))
print("; ".join(out))
PY
)
    row "decode layer kernels under ncu (1.1B, F16)" "${figure:-no figure (decode-layer-ncu.log)}" "-" "INFO"
  fi

  # Prefill-heavy: long prompts, one output token; pure prefill steps are GEMM-bound.
  declare -A prefill_tps
  for dt in f16 fp8-e4m3; do
    name="prefill-$dt"
    dtype_args=(--dtype "$dt")
    [ "$dt" = "f16" ] && dtype_args=(--dtype auto)
    rc=0
    bench "$name" 180 --num-requests "$PREFILL_N" --max-num-seqs 16 --max-num-batched-tokens 4096 \
      --no-prefix-cache --prompt-len "fixed:$PREFILL_LEN" --output-len fixed:1 "${dtype_args[@]}" || rc=$?
    if [ "$rc" -eq 0 ]; then
      prefill_tps[$dt]=$(jget "$OUT/$name.json" 'j["roofline"]["prefill_tokens_per_s"]')
    else
      prefill_tps[$dt]=""
    fi
  done
  if [ -n "${prefill_tps[f16]}" ] && [ -n "${prefill_tps[fp8-e4m3]}" ] &&
    [ "$(calc "${prefill_tps[f16]} > 0")" = "True" ]; then
    ratio=$(calc "${prefill_tps[fp8-e4m3]} / ${prefill_tps[f16]}")
    row "prefill FP8 / F16 ($PREFILL_LEN-token prompts)" \
      "$(calc "'%.0f vs %.0f tok/s, %.2fx' % (${prefill_tps[fp8-e4m3]}, ${prefill_tps[f16]}, $ratio)")" \
      "- (the 1.5x target is the GEMMs')" "INFO"
  else
    row "prefill FP8 / F16" "no figure (prefill-f16.log, prefill-fp8-e4m3.log)" "-" \
      "$({ over_budget || skipped prefill-f16 || skipped prefill-fp8-e4m3; } && echo SKIP || echo FAIL)"
  fi

  # The workload: Brisk end to end vs Hugging Face generate() on the same shape.
  rc=0
  bench workload256 240 --num-requests "$WL_N" --max-num-seqs 256 --max-num-batched-tokens 8192 \
    --prompt-len "fixed:$WL_PROMPT" --output-len "fixed:$WL_OUT" || rc=$?
  brisk_tps=""
  [ "$rc" -eq 0 ] && brisk_tps=$(jget "$OUT/workload256.json" 'j["summary"]["generation_tokens_per_s"]')
  hf_tps=""
  if [ "$CPU_MODE" = "1" ]; then
    echo "CPU mode: the HF baseline needs a CUDA device" >"$OUT/hf-baseline.log"
  elif over_budget; then
    echo "not run: time budget spent" >"$OUT/hf-baseline.log"
  elif skipped hf-baseline; then
    echo "not run: skipped (BRISK_GPU_CHECK_SKIP / BRISK_GPU_CHECK_ONLY)" >"$OUT/hf-baseline.log"
  else
    dims=$(jget "$OUT/decode1-f16.json" '",".join(str(j["model"][k]) for k in ["dim","hidden_dim","n_layers","n_heads","n_kv_heads","vocab_size","context_length"])')
    theta=$(jget "$OUT/decode1-f16.json" 'j["model"]["rope_theta"]')
    say "HF transformers generate() baseline (dims ${dims:-1.1b default})"
    hf_rc=0
    timeout --kill-after=10 240 python3 "$REPO/tests/gpu/hf_generate_baseline.py" ${dims:+--dims "$dims"} \
      ${theta:+--rope-theta "$theta"} --num-requests "$WL_N" --prompt-len "$WL_PROMPT" --output-len "$WL_OUT" \
      --batch-size 64 >"$OUT/hf-baseline.json" 2>"$OUT/hf-baseline.log" || hf_rc=$?
    [ "$hf_rc" -eq 124 ] && echo "TIMEOUT after 240s" >>"$OUT/hf-baseline.log"
    hf_tps=$(jget "$OUT/hf-baseline.json" 'j["generation_tokens_per_s"] if j["ok"] else ""')
  fi
  label="$WL_N requests ($WL_PROMPT in, $WL_OUT out): Brisk / HF generate() batch 64"
  if [ -n "$brisk_tps" ] && [ -n "$hf_tps" ]; then
    ratio=$(calc "$brisk_tps / $hf_tps")
    row "$label" "$(calc "'%.0f vs %.0f tok/s, %.1fx' % ($brisk_tps, $hf_tps, $ratio)")" ">= 5x" \
      "$(verdict "$ratio >= 5")"
  elif [ -n "$brisk_tps" ]; then
    hf_err=$(jget "$OUT/hf-baseline.json" 'j.get("error", "")')
    [ -n "$hf_err" ] || hf_err=$(tail -1 "$OUT/hf-baseline.log" 2>/dev/null || true)
    row "$label" "Brisk $(calc "'%.0f' % $brisk_tps") tok/s; HF: $(echo "$hf_err" | cut -c1-100)" \
      ">= 5x" "$([ "$CPU_MODE" = 1 ] && echo SKIP || echo FAIL)"
  else
    row "$label" "$(why "$rc" workload256)" ">= 5x" "$([ "$rc" -eq 3 ] && echo SKIP || echo FAIL)"
  fi
fi

# ------------------------------------------------------------------ summary
{
  echo "# Brisk GPU checks"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(elapsed) s; build $BUILD; backend $BACKEND; NVIDIA device: $([ "$HAVE_GPU" = 1 ] && echo yes || echo no)"
  [ "$CPU_MODE" = "1" ] && echo "**CPU mode (BRISK_GPU_CHECKS_CPU=1): a tiny model on the CPU backend; the figures only test the script.**"
  echo
  echo "Sizes: model $(basename "$MODEL"); single-sequence decode: 128-token prompts, $SINGLE_OUT output tokens;" \
    "$MULTI concurrent sequences x $MULTI_OUT tokens; prefill: $PREFILL_N prompts of $PREFILL_LEN tokens;" \
    "workload: $WL_N requests of $WL_PROMPT in / $WL_OUT out (fewer than a full benchmark, to fit 8 minutes)."
  echo
  echo "| check | figure | target | result |"
  echo "|---|---|---|---|"
  while IFS=$'\t' read -r c f t v; do
    echo "| $c | $f | $t | $v |"
  done <"$ROWS"
  echo
  echo "Logs: $OUT/*.log; GPU test logs: $OUT/gpu_test_*.txt; bench results: $OUT/*.json"
} >"$OUT/summary.md"
rm -f "$ROWS"
echo
cat "$OUT/summary.md"
# The exit status says whether anything failed; every step ran regardless.
if grep -q '| FAIL |$' "$OUT/summary.md"; then exit 1; fi
exit 0
