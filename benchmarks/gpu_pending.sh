#!/usr/bin/env bash
# The GPU measurements issue 23 is waiting for, in one device call (about 6 minutes):
# updated 2026-12-07 (sixth session), after the fused gather became the default from 8 to
# 127 rows without a device call left to time the new limits. From the repository root on
# the GPU machine, after ../shared/GPU.md's set-up (numpy 2.4 wheel first on PYTHONPATH,
# the repository and benchmarks/ on it too); results go to $OUT (default: /tmp/gpu_out).
#
# 1. tests/test_gpu.py on the code as committed (the fused gather by default from 8 rows:
#    it passed the event tests when forced on from one row, not yet as the default).
# 2. The limits of the fused gather: rows 2-7 and 65-255 were not measured
#    (profile_event_gpu.py's "default" variant is what the kernels pick).
# 3. The eager 2-layer streaming net with the new limits (batch 16 takes the fused gather).
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
# everything printed also goes to $OUT/log.txt, so a run cut short returns what it did
exec > >(tee -a "$OUT/log.txt") 2>&1
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 200 python3 -m pytest tests/test_gpu.py -p no:warnings 2>&1 | tail -8
echo "tests/test_gpu.py rc=${PIPESTATUS[0]}"
timeout 150 python3 benchmarks/profile_event_gpu.py --sections graphs --rows 2,4,8,96,128,192 \
  --rates 0.001,0.01,0.1 --reps 5 --out "$OUT/profile_event_gpu_limits.json" 2>&1 | grep "^rows"
timeout 120 python3 benchmarks/gpu_events.py --sections net --reps 3 \
  --out "$OUT/gpu_events_net.json" 2>&1 | tail -30
