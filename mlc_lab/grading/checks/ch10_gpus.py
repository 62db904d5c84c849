"""Official checks for exercises/10_gpus.md (GPU schedules and the GPU model).

Nothing here needs a GPU: a schedule is judged by the CUDA C it generates (thread binding, shared
memory, barriers), by its kernel facts, and by its output on A @ B from the same TensorIR with the
thread loops run one after another on the CPU (`mlc_lab.codegen.tvm.gpu.cpu_check`).
"""

from __future__ import annotations

import numpy as np

from mlc_lab.grading.session import Grading, check
from mlc_lab.sim.gpu_model import GPUS, KernelLaunch, occupancy


def _schedule_cases(g: Grading, fn_name: str, shapes: list[tuple[int, int, int]], shared: bool) -> None:
    g.need(fn_name)
    for m, n, k in shapes:
        a = g.rng.standard_normal((m, k)).astype(np.float32)
        b = g.rng.standard_normal((k, n)).astype(np.float32)
        with g.case(f"{fn_name}(sch) on a {m}x{k} @ {k}x{n} matmul") as case:
            answer = g.probe("gpu_schedule", fn_name, [m, n, k], a, b)
            assert "error" not in answer, f"the scheduled kernel does not build for CUDA: {answer.get('error')}"
            cuda, kernels = answer["cuda"], answer["kernels"]
            case.got = f"kernels {kernels}"
            assert "blockIdx" in cuda and "threadIdx" in cuda, "the kernel binds no loop to blockIdx and threadIdx"
            threads = int(np.prod(kernels[0]["block"]))
            assert threads >= 32, f"a block of {threads} threads leaves most of a warp idle: bind more threads"
            if shared:
                assert "__shared__" in cuda, "the CUDA source declares no __shared__ buffer: stage the tiles"
                assert "__syncthreads()" in cuda, "shared tiles without __syncthreads(): a race"
                assert kernels[0]["shared_bytes"] > 0, "no shared memory is allocated"
            err = float(np.abs(np.asarray(answer["out"]) - a @ b).max())
            assert err < 1e-3, f"the kernel's output differs from A @ B by {err:.3g}"


@check(points=2)
def check_bind_to_threads(g: Grading) -> None:
    """bind_to_threads(sch): every output element gets a thread; the kernel computes A @ B."""
    m, n = (int(g.rng.integers(17, 200)) for _ in range(2))
    _schedule_cases(g, "bind_to_threads", [(64, 64, 32), (m, n, int(g.rng.integers(4, 48)))], shared=False)


@check(points=3)
def check_tile_shared(g: Grading) -> None:
    """tile_shared(sch): tiles of A and B staged in shared memory, barriers around them, A @ B computed."""
    m, n = (64 * int(g.rng.integers(1, 4)) for _ in range(2))
    _schedule_cases(g, "tile_shared", [(128, 128, 64), (m, n, 16 * int(g.rng.integers(1, 5)))], shared=True)


@check(points=2, forbids=("mlc_lab.sim.gpu_model.occupancy",))
def check_blocks_per_sm(g: Grading) -> None:
    """blocks_per_sm(threads, registers, shared_bytes): resident blocks per A100 SM (the occupancy limit)."""
    fn = g.need("blocks_per_sm")
    cases = [(256, 32, 0), (256, 64, 0), (256, 32, 48 * 1024), (1024, 32, 0), (96, 40, 0)]
    cases += [  # up to 512 threads x 128 registers: every drawn block fits on an SM
        (32 * int(g.rng.integers(1, 17)), int(g.rng.integers(16, 129)), int(g.rng.integers(0, 40 * 1024)))
        for _ in range(5)
    ]
    for threads, registers, shared in cases:
        want, _, _ = occupancy(KernelLaunch("k", 1, 1, 1, threads, shared, registers), GPUS["A100"])
        g.compare(
            f"blocks_per_sm({threads}, {registers}, {shared})",
            lambda t=threads, r=registers, s=shared: int(fn(t, r, s)),
            want,
        )
