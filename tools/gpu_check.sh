#!/usr/bin/env bash
# Every GPU check in one go (about 10 minutes on one GPU; run from the project root after
# `make setup-gpu`): the gpu-marked tests (each framework trains on the GPU with its process's GPU
# memory measured, builds the reference model there with TF32 off, trains in mixed precision with its
# own mechanism), then the figures: every framework on the MLP and the CNN, fp32 and mixed-bf16 and
# mixed-fp16, quick profile, on --device cuda. On a machine without an NVIDIA GPU the tests skip with
# their reasons and every trial of the run is `skipped` with its framework's reason.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-results/gpu-check}
echo "== GPUs"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "no NVIDIA GPU (nvidia-smi: not found or failing)"
echo "== gpu-marked tests"
"$PY" -m pytest -m gpu -rs -q tests/test_gpu.py
tests=$?
echo "== figures: MLP and CNN, fp32 / mixed-bf16 / mixed-fp16, --device cuda"
"$PY" bench.py run --device cuda -w mnist_mlp -w mnist_cnn --precision fp32,mixed-bf16,mixed-fp16 \
    -f pytorch -f tensorflow -f jax -f keras -f mxnet --profile quick --timeout 300 --out "$OUT"
run=$?
echo "== done: tests exit $tests, run exit $run (report under $OUT)"
[ "$tests" -eq 0 ] && [ "$run" -le 1 ]
