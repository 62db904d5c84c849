"""Hostile sizes (issue 11, part E): every size is validated at its entry point, every size is a Python
int, and nothing big is allocated before an estimate says it fits.

Memory refusals run against a pretend machine (`small_machine`: a fixed amount of free memory), so they
are the same everywhere and never allocate: a test that failed would try to allocate terabytes and die
with MemoryError rather than pass.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import mlc_lab
from mlc_lab.backends.custom import CerebrasLikeBackend, ConfigError, DataflowBackend, SystolicArrayBackend
from mlc_lab.backends.custom.base import MAX_CORES, MAX_GRID_SIDE
from mlc_lab.backends.custom.executor import run_bytes
from mlc_lab.cli import main
from mlc_lab.ir import GraphBuilder, TensorType, VerificationError, interpret, memory
from mlc_lab.ir.memory import MAX_TENSOR_BYTES, MemoryLimitError, graph_bytes
from mlc_lab.passes import DeadCodeElimination, ElementwiseFusionPass, FoldConstants, PassManager
from mlc_lab.passes.fold import DEFAULT_MAX_ELEMENTS
from mlc_lab.sim.loop_nest import conv2d_input_trace
from mlc_lab.sim.systolic_pe import simulate_gemm_pe

GiB = 2**30
TiB = 2**40


@pytest.fixture
def small_machine(monkeypatch):
    """A machine with 1 GiB free, and no size too small to be checked."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 1 * GiB)
    monkeypatch.setattr(memory, "ALWAYS_FITS_BYTES", 0)


def usage_error(capsys, argv: list[str]) -> str:
    """Run the CLI in-process: a usage error is exit status 2 with one `error:` line on stderr."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def mlp_graph(name: str = "mlp"):
    rng = np.random.default_rng(0)
    b = GraphBuilder(name)
    x = b.input("x", (2, 8))
    h = b.relu(b.dense(x, b.constant(rng.standard_normal((16, 8)).astype(np.float32))))
    return b.build(b.dense(h, b.constant(rng.standard_normal((4, 16)).astype(np.float32))))


# -- mlc-lab tune ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--op", "matmul", "--shape", "0,64,64"], ["--shape", "0"]),
        (["--op", "matmul", "--shape", "a,b,c"], ["--shape", "'a'"]),
        (["--op", "matmul", "--shape", "64,64"], ["--shape", "'64,64'"]),
        (["--op", "matmul", "--shape", f"{2**21},8,8"], ["--shape", "2,097,152"]),
        (["--op", "conv2d", "--shape", "1,16,8,8,16,3", "--layout", "XYZW"], ["--layout", "'XYZW'"]),
        (["--op", "conv2d", "--shape", "1,3,8,8,16,3", "--layout", "NCHW16c"], ["--layout", "C=3"]),
        (["--op", "matmul", "--shape", "8,8,8", "--trials", "0"], ["--trials", "0"]),
        (["--op", "matmul", "--shape", "8,8,8", "--trials", "many"], ["--trials", "'many'"]),
        (["--op", "matmul", "--shape", "8,8,8", "--seed", "-1"], ["--seed", "-1"]),
    ],
)
def test_tune_rejects_bad_sizes_naming_the_option_and_value(capsys, argv, named):
    line = usage_error(capsys, ["tune", *argv])
    assert line.startswith("mlc-lab tune: error: argument ")
    for text in named:
        assert text in line


def test_tune_refuses_a_kernel_that_cannot_fit_before_allocating(capsys, small_machine):
    # 100000^3 float32: A, B and C are 37.3 GiB each, held twice (reference run and TVM buffers).
    line = usage_error(capsys, ["tune", "--op", "matmul", "--shape", "100000,100000,100000"])
    assert "--shape" in line and "matmul_100000x100000x100000" in line and "223.5 GiB" in line


def test_tune_refusal_needs_no_tvm_and_exits_2_from_the_shell():
    code = (
        "import sys; from mlc_lab.cli import main; "
        "rc = main(['tune', '--op', 'matmul', '--shape', '0,64,64']); "
        "sys.exit(rc if 'tvm' not in sys.modules else 99)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "argument --shape" in out.stderr and "Traceback" not in out.stderr


# -- mlc-lab simulate -------------------------------------------------------------------------------------
GEMM = ["systolic", "--gemm", "8,8,8"]


@pytest.mark.parametrize(
    ("argv", "option", "value"),
    [
        (["wafer", "--model", "mlp", "--cores", "1000000000"], "--cores", "1000000000"),
        (["wafer", "--model", "mlp", "--cores", "0"], "--cores", "0"),
        (["wafer", "--model", "mlp", "--cores", "1.5"], "--cores", "1.5"),
        (["wafer", "--model", "mlp", "--memory-per-core-kb", "0"], "--memory-per-core-kb", "0"),
        (["wafer", "--model", "mlp", "--memory-per-core-kb", "inf"], "--memory-per-core-kb", "inf"),
        (["wafer", "--model", "mlp", "--clock-ghz", "nan"], "--clock-ghz", "nan"),
        (["dataflow", "--model", "mlp", "--grid", "100000x100000"], "--grid", "100000"),
        (["dataflow", "--model", "mlp", "--grid", "0x8"], "--grid", "0"),
        (["dataflow", "--model", "mlp", "--grid", "axb"], "--grid", "'axb'"),
        (["dataflow", "--model", "mlp", "--batch", "-3"], "--batch", "-3"),
        (["dataflow", "--model", "mlp", "--pe-memory-kb", "1e300"], "--pe-memory-kb", "1e+300"),
        ([*GEMM, "--array", "5000x4"], "--array", "5000"),
        ([*GEMM, "--clock-mhz", "-1"], "--clock-mhz", "-1"),
        ([*GEMM, "--ifmap-sram-kb", "0"], "--ifmap-sram-kb", "0"),
        ([*GEMM, "--filter-sram-kb", "x"], "--filter-sram-kb", "'x'"),
        ([*GEMM, "--ofmap-sram-kb", "inf"], "--ofmap-sram-kb", "inf"),
        ([*GEMM, "--dram-gbps", "0"], "--dram-gbps", "0"),
        (["systolic", "--gemm", "8,8,0"], "--gemm", "0"),
        (["systolic", "--gemm", f"8,8,{2**31}"], "--gemm", str(2**31)),
        (["systolic", "--gemm", "8,8"], "--gemm", "'8,8'"),
        (["systolic", "--conv", "8,8,3,3,1,1,0"], "--conv", "STRIDE"),
        (["systolic", "--conv", "8,8,3,3,1,one,1"], "--conv", "'one'"),
    ],
)
def test_simulate_rejects_bad_numbers_naming_the_option_and_value(capsys, argv, option, value):
    line = usage_error(capsys, ["simulate", *argv])
    assert f"argument {option}:" in line and value in line


def test_simulate_refusal_exits_2_from_the_shell():
    argv = ["simulate", "dataflow", "--model", "mlp", "--grid", "100000x100000"]
    out = subprocess.run([sys.executable, "-m", "mlc_lab.cli", *argv], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert f"argument --grid: grid rows must be a positive integer at most {MAX_GRID_SIDE}" in out.stderr
    assert "Traceback" not in out.stderr and "MemoryError" not in out.stderr


def test_cli_help_and_version_still_exit_0(capsys):
    assert main(["--version"]) == 0
    assert "mlc-lab" in capsys.readouterr().out


# -- the backends' constructors ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: CerebrasLikeBackend(cores=10**9), "cores"),
        (lambda: CerebrasLikeBackend(cores=MAX_CORES + 1), "cores"),
        (lambda: CerebrasLikeBackend(cores=float("inf")), "cores"),
        (lambda: CerebrasLikeBackend(memory_per_core_kb=0), "memory_per_core_kb"),
        (lambda: CerebrasLikeBackend(memory_per_core_kb=float("nan")), "memory_per_core_kb"),
        (lambda: CerebrasLikeBackend(memory_per_core_kb=-48), "memory_per_core_kb"),
        (lambda: CerebrasLikeBackend(cores=100, mesh=(10**8, 10**8)), "mesh rows"),
        (lambda: SystolicArrayBackend(rows=0), "rows"),
        (lambda: SystolicArrayBackend(cols=100_000), "cols"),
        (lambda: SystolicArrayBackend(rows=True), "rows"),
        (lambda: SystolicArrayBackend(rows=2.5), "rows"),
        (lambda: SystolicArrayBackend(dram_bandwidth_gbps=1e-300), "dram_bandwidth_gbps"),
        (lambda: SystolicArrayBackend(max_cycles=10**12), "max_cycles"),
        (lambda: DataflowBackend(rows=100_000, cols=100_000), "rows"),
        (lambda: DataflowBackend(batch=0), "batch"),
        (lambda: DataflowBackend(pe_memory_kb="lots"), "pe_memory_kb"),
    ],
)
def test_backend_constructors_reject_bad_sizes_naming_the_parameter(make, named):
    with pytest.raises(ConfigError, match=f"^{named} must be") as info:
        make()
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_numpy_integers_and_integral_floats_are_sizes():
    backend = SystolicArrayBackend(rows=np.int64(16), cols=16.0)
    assert (backend.rows, backend.cols) == (16, 16) and type(backend.rows) is int
    report = backend.simulate_gemm(np.int32(8), 8, 8)
    assert report.macs == 8 * 8 * 8


def test_single_layer_sizes_are_bounded():
    with pytest.raises(ConfigError, match="M must be a positive integer at most 2,147,483,647"):
        SystolicArrayBackend().simulate_gemm(2**31, 8, 8)
    with pytest.raises(ConfigError, match="conv KH"):
        SystolicArrayBackend().simulate_conv(8, 8, 0, 3, 1, 1)


# -- memory estimates in the simulators ----------------------------------------------------------------------
def test_wafer_refuses_a_mesh_that_cannot_fit(small_machine, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: GiB // 2)
    backend = CerebrasLikeBackend(cores=MAX_CORES)  # within the limit; its mesh arrays would take ~0.7 GiB
    assert backend.mesh_state_bytes() > 0.8 * GiB // 2
    with pytest.raises(MemoryLimitError, match=r"cores=10,000,000 needs 0\.\d GiB of memory") as info:
        backend.compile(mlp_graph())
    assert isinstance(info.value, MemoryError) and isinstance(info.value, ValueError)


def test_wafer_mesh_estimate_is_what_compile_holds():
    backend = CerebrasLikeBackend(cores=40_000)
    program = backend.compile(mlp_graph())
    held = program.state.nbytes  # the per-core arrays the program keeps
    assert held <= backend.mesh_state_bytes() <= 4 * held


def test_dataflow_refuses_a_mapping_that_cannot_fit(small_machine, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)  # 1 MiB free
    with pytest.raises(MemoryLimitError, match=r"1 configuration\(s\) onto the 256x256 PE grid needs"):
        DataflowBackend(rows=256, cols=256).compile(mlp_graph())


def test_accelerator_execution_counts_the_im2col_copy(small_machine, monkeypatch):
    b = GraphBuilder("conv")
    w = b.constant(np.ones((16, 16, 3, 3), np.float32))
    g = b.build(b.conv2d(b.input("x", (1, 16, 64, 64)), w, padding=1))  # 256 KiB in, 256 KiB out
    x = np.ones((1, 16, 64, 64), np.float32)
    backend = SystolicArrayBackend()
    program = backend.compile(g)
    assert graph_bytes(g, held=False)[0] < 2**20 < run_bytes(g)  # im2col: 64*64 x 144 floats, 2.25 MiB
    monkeypatch.setattr(memory, "available_bytes", lambda: 2 * 2**20)
    message = r"running graph 'conv' on an accelerator model needs 0.0027 GiB \(2.8 MiB\)"
    with pytest.raises(MemoryLimitError, match=message):
        backend.execute(program, [x])
    monkeypatch.setattr(memory, "available_bytes", lambda: 8 * 2**20)
    np.testing.assert_allclose(backend.execute(program, [x])[0][0], interpret(g, x)[0], rtol=1e-5)


def test_cycle_accurate_systolic_refuses_a_trace_that_cannot_fit(small_machine):
    a, b = np.ones((4, 4), np.float32), np.ones((4, 4), np.float32)
    with pytest.raises(MemoryLimitError, match=r"cycle-accurate 4096x4096 array .* \(record=100,000 snapshots\) needs"):
        simulate_gemm_pe(a, b, 4096, 4096, "ws", record=100_000)
    with pytest.raises(ValueError, match="record must be a non-negative integer"):
        simulate_gemm_pe(a, b, 4, 4, "ws", record=-1)
    small = simulate_gemm_pe(a, b, 4, 4, "ws", record=10)  # a few KiB: runs on the same small machine
    np.testing.assert_allclose(small.output, a @ b)


def test_loop_nest_trace_refuses_what_cannot_fit(small_machine, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * 2**20)
    with pytest.raises(MemoryLimitError, match="address trace of a .*-iteration loop nest needs"):
        conv2d_input_trace("NCHW", channels=64, height=130, width=130)  # 9.5M accesses, within MAX_TRACE


# -- shapes in the IR ---------------------------------------------------------------------------------------
def test_element_counts_are_python_ints_that_cannot_overflow():
    ty = TensorType((2**32, 2**32))
    assert ty.numel == 2**64 and ty.nbytes == 2**66  # np.prod(..., dtype=int64) gives 0
    assert TensorType((0, 2**40)).numel == 0


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (("a", 3), "dimension 'a' is not an integer"),
        ((2.5, 3), "dimension 2.5 is not an integer"),
        ((True, 3), "dimension True is not an integer"),
        ((-1, 3), "negative dimension"),
    ],
)
def test_builder_rejects_bad_dimensions_naming_the_input(shape, message):
    with pytest.raises(ValueError, match=f"^input %x: .*{message}"):
        GraphBuilder().input("x", shape)


def test_verifier_refuses_shapes_beyond_the_limit_naming_node_and_shape():
    b = GraphBuilder("huge")
    x = b.input("x", (2**32, 2**32))
    with pytest.raises(VerificationError, match=r"node %x \(input\): shape \[4294967296, 4294967296\]"):
        b.build(b.relu(x))
    b = GraphBuilder("swell")  # an outer product of two 16 GiB vectors: 2^64 elements, which overflow int64
    y = b.matmul(b.input("p", (2**32, 1)), b.input("q", (1, 2**32)), name="swell")
    with pytest.raises(VerificationError, match=r"node %swell \(matmul\): shape \[4294967296, 4294967296\]"):
        b.build(y)
    b = GraphBuilder("empty_but_long")  # an empty tensor needs no memory, but its dimensions are still bounded
    with pytest.raises(VerificationError, match="dimension larger than the limit"):
        b.build(b.relu(b.input("z", (0, MAX_TENSOR_BYTES + 1))))


def test_empty_dimensions_within_the_limit_are_fine():
    b = GraphBuilder("empty")
    g = b.build(b.relu(b.input("x", (0, 2**40))))
    assert interpret(g, np.zeros((0, 2**40), np.float32))[0].shape == (0, 2**40)


# -- compile and the interpreter -------------------------------------------------------------------------------
def big_input_graph():
    b = GraphBuilder("big")
    x = b.input("x", (2**20, 2**20))  # 2^40 elements: 4 TiB of float32
    return b.build(b.relu(x))


@pytest.mark.parametrize("backend", ["interpreter", "tvm", "mlir", "systolic"])
def test_compile_refuses_a_2_to_the_40_element_input_before_the_backend_build(backend):
    # No machine of this kind has 8 TiB free: no patching needed, and nothing is allocated.
    with pytest.raises(
        MemoryLimitError, match=r"backend '\w+' needs 8,192\.0 GiB .*%x \(input\) f32\[1048576, 1048576\]"
    ):
        mlc_lab.compile(big_input_graph(), backend=backend)


def swelling_graph():
    """Two 2 MiB inputs whose sum broadcasts to 2^19 x 2^19: a 1 TiB intermediate."""
    b = GraphBuilder("swelling")
    x, y = b.input("x", (2**19, 1)), b.input("y", (1, 2**19))
    return b.build(b.sum(b.add(x, y, name="outer"), axes=(0, 1)))


def test_compile_refuses_a_1_tib_intermediate_naming_it(small_machine):
    with pytest.raises(MemoryLimitError, match=r"needs 1,024\.0 GiB .*largest tensor %outer"):
        mlc_lab.compile(swelling_graph(), backend="interpreter", passes="none")


def test_interpreter_refuses_a_1_tib_intermediate_before_computing(small_machine):
    x, y = np.ones((2**19, 1), np.float32), np.ones((1, 2**19), np.float32)
    with pytest.raises(MemoryLimitError, match=r"interpreting graph 'swelling' needs 1,024\.0 GiB"):
        interpret(swelling_graph(), x, y)


def test_small_models_compile_and_run_on_a_small_machine(small_machine):
    g = mlp_graph()
    x = np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)
    for backend in ("interpreter", "systolic", "cerebras", "dataflow"):
        np.testing.assert_allclose(mlc_lab.compile(g, backend=backend)(x), interpret(g, x)[0], rtol=1e-5)


def test_graph_bytes_counts_every_value_or_only_the_live_ones():
    b = GraphBuilder("chain")
    x = b.input("x", (256, 256))  # 256 KiB each
    g = b.build(b.relu(b.relu(b.relu(x))))
    assert graph_bytes(g)[0] == 4 * 256 * 1024  # the interpreter keeps all four values
    assert graph_bytes(g, reuse=True)[0] == 3 * 256 * 1024  # input, one dying intermediate, the next
    assert graph_bytes(g, held=False)[0] == 3 * 256 * 1024  # the caller's input is already in memory


# -- constant folding -------------------------------------------------------------------------------------------
def broadcast_graph(n: int):
    """x + broadcast_to(a constant column, n x n): the folded broadcast would be an n x n constant."""
    b = GraphBuilder(f"broadcast{n}")
    column = b.constant(np.arange(n, dtype=np.float32).reshape(n, 1), name="column")
    return b.build(b.add(b.input("x", (1, n)), b.broadcast_to(column, shape=(n, n), name="wide")))


def test_default_preset_keeps_a_2_to_the_15_squared_broadcast_as_a_runtime_op():
    g = broadcast_graph(2**15)  # folding it would allocate 4 GiB at compile time
    optimized = PassManager(mlc_lab.api.resolve_passes("default", g, "interpreter")).apply(g)
    assert [n.name for n in optimized.constants] == ["column"]  # 2^15 elements; nothing was folded
    ops = [n.op for n in optimized.ops] + [n.op for f in optimized.ops if f.op == "fused" for n in f.subgraph.ops]
    assert "broadcast_to" in ops and 2**30 > DEFAULT_MAX_ELEMENTS


def test_the_same_model_unfolded_runs_correctly_at_a_small_size():
    g = broadcast_graph(8)
    passes = [FoldConstants(max_elements=16), ElementwiseFusionPass(), DeadCodeElimination()]
    compiled = mlc_lab.compile(g, backend="interpreter", passes=passes)
    assert all(n.type.numel <= 16 for n in compiled.optimized.constants)  # the broadcast was not folded
    x = np.random.default_rng(2).standard_normal((1, 8)).astype(np.float32)
    np.testing.assert_array_equal(compiled(x), x + np.arange(8, dtype=np.float32).reshape(8, 1))
    folded = FoldConstants().apply(g)  # by default a 64-element broadcast is folded
    assert folded.node("wide").op == "constant"


def test_folding_skips_what_would_not_fit_in_memory(small_machine):
    g = broadcast_graph(2**15)  # 4 GiB folded, on a machine with 1 GiB free
    assert FoldConstants(max_elements=None).apply(g).node("wide").op == "broadcast_to"


def test_fold_limit_is_validated():
    with pytest.raises(ValueError, match="max_elements must be a non-negative int or None"):
        FoldConstants(max_elements=-1)


# == the tuner's Python API ========================================================================
def test_python_tuning_tasks_refuse_empty_and_huge_kernels():
    from mlc_lab.ir.memory import MemoryLimitError
    from mlc_lab.tuning.task import conv2d_task, matmul_task

    with pytest.raises(ValueError, match=r"task matmul_0x64x64: %A has shape \[0, 64\]: an empty kernel"):
        matmul_task(0, 64, 64)
    with pytest.raises(MemoryLimitError, match=r"tuning matmul_100000x100000x100000 needs 223\.5 GiB"):
        matmul_task(100_000, 100_000, 100_000)  # refused before anything is allocated
    with pytest.raises(ValueError, match="negative dimension"):
        conv2d_task(cin=-3)


def test_empty_kernels_are_not_tuning_tasks():
    from mlc_lab.ir import GraphBuilder
    from mlc_lab.tuning.apply import tasks_from_graph

    b = GraphBuilder("empty_k")
    x = b.input("x", (4, 0), "float32")
    y = b.input("y", (4, 8), "float32")
    graph = b.build([b.dense(x, b.input("w", (8, 0), "float32")), b.dense(y, b.input("v", (8, 8), "float32"))])
    assert [t.node.inputs[0].name for t in tasks_from_graph(graph)] == ["y"]
