#!/usr/bin/env bash
# The GPU measurements issue 23 is waiting for, in one device call (about 9 minutes):
# written 2026-12-07 when no device could be started. From the repository root on the
# GPU machine, after ../shared/GPU.md's set-up (numpy 2.4 wheel first on PYTHONPATH,
# the repository and benchmarks/ on it too); results go to $OUT (default: /tmp/gpu_out).
#
# 1. tests/test_gpu.py on the code as committed: it has never run the kept EventLinear
#    call (test_event_linear_kept_call_equals_the_general_path) nor the final form of the
#    wide gather.
# 2. The host time of an eager EventLinear call, kept call against the general path
#    (profile_event_gpu.py --sections host), and the eager 2-layer streaming net
#    (gpu_events.py --sections net): the <= 30 µs per layer call of issue 23.
# 3. The fused gather (kernels/event_linear_cuda.py, FUSED = False, never timed) beside
#    the row tile and the event lists, 1 to 256 rows, 0.1-10 % input, in CUDA graphs.
# 4. tests/test_gpu.py's event Linear tests with FUSED on from one row (a copy of the
#    kernels module edited in place: run it last, on a scratch checkout).
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name --format=csv,noheader
git log --oneline -1
timeout 200 python3 -m pytest tests/test_gpu.py -p no:warnings 2>&1 | tail -8
echo "tests/test_gpu.py rc=${PIPESTATUS[0]}"
timeout 50 python3 benchmarks/profile_event_gpu.py --sections host --reps 5 \
  --out "$OUT/profile_event_gpu_host.json" 2>&1 | grep "^host"
timeout 120 python3 benchmarks/gpu_events.py --sections net --reps 3 \
  --out "$OUT/gpu_events_net.json" 2>&1 | tail -30
timeout 150 python3 benchmarks/profile_event_gpu.py --sections graphs --rows 1,8,16,64,256 \
  --rates 0.001,0.01,0.1 --reps 5 --out "$OUT/profile_event_gpu_fused.json" 2>&1 | tail -70
sed -i 's/^FUSED = False/FUSED = True/; s/^SPLIT_ROWS = 16 /SPLIT_ROWS = 1 /' \
  kernels/event_linear_cuda.py
grep -n "^FUSED\|^SPLIT_ROWS" kernels/event_linear_cuda.py
timeout 60 python3 -m pytest tests/test_gpu.py -p no:warnings -x -k "event_linear or graph_stream" \
  2>&1 | tail -8
echo "tests/test_gpu.py with FUSED rc=${PIPESTATUS[0]}"
git checkout -- kernels/event_linear_cuda.py
