#!/usr/bin/env bash
# Here (a checkout after `make install-bench`): writes .device/ (git-ignored), what the GPU machine needs
# to run benchmarks/device_accelerator.sh there without TensorFlow or a package index: the wheels of
# keras, namex, optree and ml_collections for its Python 3.12, and bench_accelerator's inputs at the
# `gpu` size from prepared shards (argument; default bench_input's textured clips at short side 128).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-/tmp/bench_prepare/cache/clip-16x10s-640x360-30fps-medium/prepared-128-10s}
rm -rf .device && mkdir -p .device/whl
.venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .device/whl \
  keras==3.15.1 namex==0.1.0 optree==0.20.0 ml_collections==1.1.0
.venv/bin/python benchmarks/bench_accelerator.py --size gpu --data_dir "$DATA" --write_device_inputs .device/inputs
du -sh .device
