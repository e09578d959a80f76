#!/usr/bin/env bash
# Checks the code with ruff (lint, import order, format; settings in
# pyproject.toml), builds the guides and the API reference from the
# docstrings (mkdocs.yml; any warning fails), then runs the test suite once
# per Keras backend (Keras fixes its backend at import).
#   bash tests/run.sh --install   # first installs the package with its test extras,
#                                 # and the peer tools (tests/peer-tools.txt) in a venv of their own
#   BACKENDS="jax" bash tests/run.sh -k losses   # a subset; extra args go to pytest
#   PARALLEL=0 bash tests/run.sh  # one backend after the other
# With 2 or more cores the TensorFlow run goes in parallel with the JAX and
# PyTorch runs (one after the other): each pytest process keeps about one
# core busy (much of the time is tracing and compiling), so this takes about
# 35% less wall time. Each backend's output is printed whole when all finish.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--install" ]; then
    shift
    python3 -m pip install -q -e ".[test]" || exit 1
    peers=${KERAS_CLIP_PEER_TOOLS:-.venv-peer-tools}
    [ -x "$peers/bin/python" ] || python3 -m venv "$peers" || exit 1
    "$peers/bin/python" -m pip install -q -r tests/peer-tools.txt || exit 1
fi
export TF_CPP_MIN_LOG_LEVEL=3
lint=0
echo "=== ruff"
ruff check . && ruff format --check . || lint=1
echo "=== API reference (mkdocs build --strict: a warning fails)"
mkdocs build --strict --quiet || lint=1
read -r -a backends <<< "${BACKENDS:-tensorflow jax torch}"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# One JAX compilation cache for the run (the JAX lane and the JAX processes
# the other lanes start): tests build the same small models again and again,
# and a compile XLA has done once is read back (a JAX subset took 24% less
# time). Empty at the start, removed at the end: nothing carries between runs.
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$logs/jax-cache}
trap 'kill 0; exit 130' INT TERM

run_backends() {  # run_backends BACKEND... -- PYTEST_ARGS...
    local lane=() status=0
    while [ "$1" != "--" ]; do lane+=("$1"); shift; done
    shift
    for backend in "${lane[@]}"; do
        local start=$SECONDS
        KERAS_BACKEND=$backend python3 -m pytest -q -p no:cacheprovider --durations=15 \
            --basetemp="$logs/tmp-$backend" "$@" tests > "$logs/$backend.log" 2>&1
        echo $? > "$logs/$backend.rc"
        echo "--- KERAS_BACKEND=$backend finished (exit $(cat "$logs/$backend.rc"), $((SECONDS - start)) s)"
    done
}

if [ "${PARALLEL:-1}" != 0 ] && [ "$(nproc)" -ge 2 ] && [ "${#backends[@]}" -ge 2 ]; then
    # One OpenMP thread per lane: PyTorch's OpenMP threads spin while they
    # wait, and beside the other lane two of them took the PyTorch
    # learning-quality test from 113 s to 338 s.
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
    run_backends "${backends[0]}" -- "$@" &
    run_backends "${backends[@]:1}" -- "$@" &
    wait
else
    run_backends "${backends[@]}" -- "$@"
fi
status=$lint
for backend in "${backends[@]}"; do
    echo "=== KERAS_BACKEND=$backend"
    cat "$logs/$backend.log"
    [ "$(cat "$logs/$backend.rc")" = 0 ] || status=1
done
exit $status
