#!/usr/bin/env bash
# Runs the test suite once per Keras backend (Keras fixes its backend at import).
#   bash tests/run.sh --install   # first installs the package with its test extras
#   BACKENDS="jax" bash tests/run.sh -k losses   # a subset; extra args go to pytest
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--install" ]; then
    shift
    python3 -m pip install -q -e ".[test]" || exit 1
fi
export TF_CPP_MIN_LOG_LEVEL=3
status=0
for backend in ${BACKENDS:-tensorflow jax torch}; do
    echo "=== KERAS_BACKEND=$backend"
    KERAS_BACKEND=$backend python3 -m pytest -q -p no:cacheprovider "$@" tests || status=1
done
exit $status
