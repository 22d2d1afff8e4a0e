#!/usr/bin/env bash
# Issue 21's attack classes through the normal CLI, one eval per class.
#   bash bench/verdict_attacks.sh OUT_DIR [COLLAPSE_BENCH]
# COLLAPSE_BENCH: the command to score with (default: .venv/bin/collapse-bench). Run it
# once with a checkout of the old code (and its image, COLLAPSE_BENCH_SANDBOX_IMAGE) and
# once with this one to get the before/after table (bench/results/verdict_attacks.txt).
set -euo pipefail
out=${1:?usage: verdict_attacks.sh OUT_DIR [COLLAPSE_BENCH]}
cb=${2:-.venv/bin/collapse-bench}
py=$(dirname "$(command -v "$cb" || echo .venv/bin/collapse-bench)")/python
"$py" "$(dirname "$0")/verdict_attacks.py" "$out"
for f in "$out"/*.jsonl; do
  name=$(basename "$f" .jsonl)
  case $name in custom_problems|*.verdicts) continue ;; esac
  suite=humaneval
  [ "$name" = custom_isclose ] && suite=$out/custom_problems.jsonl
  t0=$EPOCHREALTIME
  "$cb" eval --suite "$suite" --samples "$f" --out "$out/$name.json" --k 1 --no-progress \
    >/dev/null 2>"$out/$name.log" || echo "$name: eval exit $?" >&2
  "$py" -c "import sys; print(sys.argv[1], round(float(sys.argv[2]) - float(sys.argv[3]), 1))" \
    "$name" "$EPOCHREALTIME" "$t0" >>"$out/seconds.txt"
done
"$py" "$(dirname "$0")/verdict_attacks.py" --summarize "$out"
