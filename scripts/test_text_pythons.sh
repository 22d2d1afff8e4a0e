#!/usr/bin/env bash
# The text tests (`pytest -m text`: tasks/, harness/metrics/diversity.py, the filters,
# the JSONL writers; policy in tasks/model_text.py) on every Python the project
# declares, each in a light venv that has no torch, so they also prove that the
# text code imports without it.
#
# usage: scripts/test_text_pythons.sh [VERSION...]     e.g. 3.12 3.13
# Without arguments: every "Programming Language :: Python :: 3.X" classifier in
# pyproject.toml, so the versions declared and the versions tested cannot drift.
#
# Interpreters: pythonX.Y on PATH, else pyenv's newest X.Y.* ($PYENV_ROOT or
# ~/.pyenv). A missing one is skipped with a message locally and is an error in
# CI (CI=true/1 or REQUIRE_DOCKER=1), so CI can never pass without testing one.
# Venvs live in .cache/text-venvs/pyX.Y (git-ignored), rebuilt when the
# `text-tests` extra in pyproject.toml changes; the package comes from PYTHONPATH.
# Per-version logs with hypothesis statistics: .cache/text-venvs/pyX.Y.log.
set -euo pipefail
cd "$(dirname "$0")/.."

strict=0
case "${CI:-}" in true|1|yes) strict=1 ;; esac
[[ "${REQUIRE_DOCKER:-}" == "1" ]] && strict=1
root=${TEXT_VENVS:-.cache/text-venvs}
mkdir -p "$root"

versions=("$@")
if [[ ${#versions[@]} -eq 0 ]]; then
    mapfile -t versions < <(sed -n 's/.*"Programming Language :: Python :: \(3\.[0-9]*\)".*/\1/p' \
                            pyproject.toml)
fi
mapfile -t files < <(grep -l '^pytestmark = pytest.mark.text' tests/test_*.py)
if [[ ${#versions[@]} -eq 0 || ${#files[@]} -eq 0 ]]; then
    echo "test-text: no Python versions or no text test files found" >&2
    exit 1
fi

is_version() {  # is_version PY X.Y: PY runs and is Python X.Y
    "$1" -c "import sys; sys.exit('%d.%d' % sys.version_info[:2] != '$2')" 2>/dev/null
}

find_python() {  # find_python X.Y: print the interpreter's path, or fail
    local v=$1 py pyenv_root
    if py=$(command -v "python$v") && is_version "$py" "$v"; then
        echo "$py"; return 0
    fi
    pyenv_root=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
    while read -r py; do
        if [[ -n "$py" ]] && is_version "$py" "$v"; then echo "$py"; return 0; fi
    done < <(ls -d "$pyenv_root/versions/$v".*/bin/python 2>/dev/null | sort -V -r)
    return 1
}

failed=()
skipped=()
passed=()
for v in "${versions[@]}"; do
    if ! py=$(find_python "$v"); then
        if [[ $strict -eq 1 ]]; then
            echo "test-text: ERROR: Python $v not found (CI must test every declared Python;" \
                 "install it, e.g. \`pyenv install $v\`)" >&2
            failed+=("$v (missing)")
        else
            echo "test-text: SKIP Python $v: not found (install it, e.g. \`pyenv install $v\`;" \
                 "CI fails instead of skipping)" >&2
            skipped+=("$v")
        fi
        continue
    fi
    mapfile -t reqs < <("$py" -c 'import tomllib
with open("pyproject.toml", "rb") as fh:
    print("\n".join(tomllib.load(fh)["project"]["optional-dependencies"]["text-tests"]))')
    if [[ ${#reqs[@]} -eq 0 ]]; then
        echo "test-text: cannot read the text-tests extra from pyproject.toml" >&2
        exit 1
    fi
    stamp_id=$( (printf '%s\n' "${reqs[@]}"; "$py" -VV) | sha256sum | cut -c1-12)
    venv="$root/py$v"
    if [[ ! -f "$venv/.installed-$stamp_id" ]]; then
        echo "test-text: building $venv with $py: ${reqs[*]}"
        rm -rf "$venv"
        "$py" -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check "${reqs[@]}" \
            2> >(grep -v '^WARNING: Location' >&2)
        touch "$venv/.installed-$stamp_id"
    fi
    log="$root/py$v.log"
    echo "test-text: Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')" \
         "(no torch): ${files[*]}"
    set +e
    HYPOTHESIS_STORAGE_DIRECTORY="$root/hypothesis" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" \
        "$venv/bin/python" -m pytest -q -p no:cacheprovider -m text --durations=5 \
        --hypothesis-show-statistics "${files[@]}" > "$log" 2>&1
    rc=$?
    set -e
    # The result line, then examples per property test (from the statistics).
    grep -E '^(FAILED|ERROR)|[0-9]+ (passed|failed|error)' "$log" | tail -n 20
    awk '/^tests\/.*::.*:$/ { name = $1; sub(/:$/, "", name); sub(/^tests\//, "", name) }
         /passing, .*failing/ && name != "" { printf "  %-72s %s examples\n", name, $2; name = "" }' "$log"
    if [[ $rc -ne 0 ]]; then
        echo "test-text: Python $v FAILED (full log: $log)" >&2
        failed+=("$v")
    else
        passed+=("$v")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "test-text: failed on Python ${failed[*]}" >&2
    exit 1
fi
echo "test-text: passed on Python ${passed[*]:-(none)}${skipped:+; SKIPPED (not installed): ${skipped[*]}}"
