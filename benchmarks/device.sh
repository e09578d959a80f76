#!/usr/bin/env bash
# ViT-B/32 bfloat16 training throughput and MFU on a lent GPU machine, one
# JSON line per system: keras-clip on JAX, keras-clip on the torch backend,
# and transformers' CLIPModel (benchmarks/device_train.py).
#
# That machine has JAX, PyTorch and transformers but no TensorFlow and no
# network; keras and the two packages it needs that are missing there travel
# as wheels in .whl/ (ignored by git). Nothing here tokenises: token ids are
# random ids made on the device.
#
#   bash benchmarks/device.sh --fetch-wheels   # here, once (needs PyPI)
#   bash benchmarks/device.sh                  # there (carry .whl)
#
# Each system runs in its own process (Keras fixes its backend at import);
# a system that fails prints its error and the others still run.
set -u
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--fetch-wheels" ]; then
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl keras==3.15.1 namex optree
  exit
fi

if ! python3 -c "import keras" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
for system in keras-clip/jax keras-clip/torch transformers; do
  backend=${system#keras-clip/}
  [ "$system" = transformers ] && backend=torch
  KERAS_BACKEND=$backend python3 benchmarks/device_train.py --system "$system" "$@" 2>&1 | tail -n 3
done
