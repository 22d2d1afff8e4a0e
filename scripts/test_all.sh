#!/usr/bin/env bash
# `make test` (the README's test command, which .ci/run calls): every test but the
# release rebuild, with all of its own set-up.
#
# The text tests (scripts/test_text_pythons.sh: pure-Python model-text code on every
# declared Python, in light venvs without torch) need neither the project's venv nor
# Docker nor the sandbox image, so they run in the background while those are set
# up. Set-up is mostly downloads and unpacking, the text tests are CPU: overlapped,
# the two cost about the wall time of the longer one instead of their sum (on the
# 2-core reference machine, about 4 min of set-up and 3 min of text tests). The rest
# of the suite starts only after the text tests end, so it never runs beside them.
#
# usage: scripts/test_all.sh [VERSION...]    (Python versions for the text tests)
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p .cache
text_log=.cache/test-text.log
bash scripts/test_text_pythons.sh "$@" > "$text_log" 2>&1 &
text_pid=$!
# a failed set-up must not leave the text tests running on their own
trap 'kill "$text_pid" 2>/dev/null || true' EXIT

make --no-print-directory setup
bash scripts/ensure_chromium.sh

text_rc=0
wait "$text_pid" || text_rc=$?
trap - EXIT
cat "$text_log"
if [[ $text_rc -ne 0 ]]; then
    echo "test_all: the text tests failed (exit $text_rc; log: $text_log)" >&2
    exit "$text_rc"
fi

# Two workers, one module each at a time (module fixtures are built once); the long
# modules start first (tests/conftest.py, LONGEST_FIRST). TEST_WORKERS=0 runs the
# suite in this process instead.
exec "${VENV:-.venv}/bin/pytest" -q -n "${TEST_WORKERS:-2}" --dist loadfile \
    --no-loadscope-reorder -m "not text and not release"
