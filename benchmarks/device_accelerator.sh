#!/usr/bin/env bash
# There (the GPU machine: JAX, no TensorFlow, no package index), after benchmarks/device_inputs.sh here,
# with .device carried: bench_accelerator's JAX rows at the `gpu` size (16 frames of 112 px, batch 256)
# → $OUT/accelerator_gpu.md and its JSON line. Each row is a process of its own; ROWS_TIMEOUT bounds all;
# a row that fails (out of device memory at BATCH per device, 0: the size's 256) is reported, the others go on.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .device/whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
timeout "${ROWS_TIMEOUT:-540}" python3 benchmarks/bench_accelerator.py --size gpu --device_inputs .device/inputs \
  --backends jax --models "${MODELS:-default,mobilenet_v3_small,efficientnet_b0}" --precisions bfloat16,float32 \
  --batch_size "${BATCH:-0}" \
  --output "${OUT:-results}/accelerator_gpu.md"
