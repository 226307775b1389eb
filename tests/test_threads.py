"""Parallel Numba kernels run from several Python threads under the package's defaults.

Numba's workqueue layer aborts the whole process when two threads launch a parallel
kernel at once, so the check runs in a child process and reads its exit status.
"""

import os
import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent(
    """
    import threading
    import neurosparse as ns
    import numba
    import torch

    torch.manual_seed(0)
    x = torch.rand(50, 16, 2048)
    neuron = ns.LIF(0.9, 0.5)
    want, _ = neuron(x)  # the parallel CPU kernel (lif_cpu), one thread
    got, errors = {}, []

    def run(k):
        try:
            for _ in range(20):
                got[k] = neuron(x)[0]
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(torch.equal(z, want) for z in got.values()) and len(got) == 2
    print("layer", numba.threading_layer())
    """
)


def test_parallel_kernel_from_two_threads():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    env["NEUROSPARSE_KERNELS"] = "numba"
    env["NUMBA_NUM_THREADS"] = "2"
    res = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "layer" in res.stdout
    assert "layer workqueue" not in res.stdout  # the layer that aborts is opt-in only
