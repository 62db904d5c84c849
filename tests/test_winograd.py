"""Winograd convolution (`mlc_lab.codegen.winograd`): the transforms' math, the lowering against the
interpreter (odd sizes, batches, 'valid' padding, a fused epilogue, constant weights), the `winograd`
knob's place in the tuner's space, and a tuning log's Winograd record reaching the compiled model."""

import numpy as np
import pytest

from mlc_lab.codegen import winograd
from mlc_lab.codegen.tiling import ConfigSchedule, UnsupportedKernel, VectorISA, apply_config, default_config
from mlc_lab.ir.builder import GraphBuilder
from mlc_lab.ir.interpreter import interpret
from mlc_lab.tuning.database import Record, TuningDatabase
from mlc_lab.tuning.measure import MeasuredCost, kernel_info, scheduled_func
from mlc_lab.tuning.space import space_for
from mlc_lab.tuning.task import Task, conv2d_task

AVX2 = VectorISA("AVX2", 8, 16)


@pytest.mark.parametrize("m", winograd.TILE_SIZES)
def test_the_transforms_compute_a_3_tap_correlation_in_1d_and_2d(m):
    bt, g, at = (np.array(x, dtype=np.float64) for x in winograd.TRANSFORMS[m])
    rng = np.random.default_rng(m)
    d, f = rng.standard_normal(m + 2), rng.standard_normal(3)
    np.testing.assert_allclose(at @ ((g @ f) * (bt @ d)), [d[i : i + 3] @ f for i in range(m)], atol=1e-12)
    d2, f2 = rng.standard_normal((m + 2, m + 2)), rng.standard_normal((3, 3))
    y = at @ ((g @ f2 @ g.T) * (bt @ d2 @ bt.T)) @ at.T
    expected = [[np.sum(d2[i : i + 3, j : j + 3] * f2) for j in range(m)] for i in range(m)]
    np.testing.assert_allclose(y, expected, atol=1e-12)


def _conv_node(batch, h, w, cin, cout, padding, *, epilogue=False, constant_weight=False, seed=0):
    rng = np.random.default_rng(seed)
    b = GraphBuilder("conv")
    x = b.input("x", (batch, h, w, cin))
    weight = rng.standard_normal((3, 3, cin, cout)).astype(np.float32)
    wt = b.constant(weight, "w") if constant_weight else b.input("w", (3, 3, cin, cout))
    y = b.conv2d(x, wt, padding=padding, data_layout="NHWC", kernel_layout="HWIO")
    if epilogue:
        y = b.relu(b.add(y, b.constant(rng.standard_normal(cout).astype(np.float32), "bias")))
    return b.build(y), weight


def _run(kernel_func, arrays, out_shape):
    import tvm

    from mlc_lab.codegen.tvm.build import host_target

    ex = tvm.compile(tvm.IRModule({"main": kernel_func}), target=host_target())
    dev = tvm.cpu()
    out = tvm.runtime.tensor(np.zeros(out_shape, np.float32), dev)
    ex["main"](*[tvm.runtime.tensor(a, dev) for a in arrays], out)
    return out.numpy()


@pytest.mark.parametrize("m", winograd.TILE_SIZES)
@pytest.mark.parametrize("batch, h, w, cin, cout, padding", [(1, 7, 9, 8, 16, 1), (2, 6, 5, 4, 8, 0)])
def test_a_winograd_conv_gives_the_interpreters_answer(m, batch, h, w, cin, cout, padding):
    graph, weight = _conv_node(batch, h, w, cin, cout, padding)
    task = Task("conv", graph.outputs[0])
    info = kernel_info(task)
    assert info.winograd_ok
    config = {**default_config(info, AVX2), "winograd": m}
    assert space_for(info).violation(config) is None
    func, constants = scheduled_func(task, config, info)
    script = func.script()
    assert "_wino_m" in script and "_wino_v" in script  # the transformed matmul, not the direct loops
    x = np.random.default_rng(1).standard_normal((batch, h, w, cin)).astype(np.float32)
    expected = interpret(graph, x, weight)[0]
    got = _run(func, [x, weight, *constants], expected.shape)
    # rounding through the transforms' constants: ~1e-6 (m=2) to ~1e-5 (m=4) of the largest output
    np.testing.assert_allclose(got, expected, rtol=0, atol=5e-5 * np.abs(expected).max())


def test_the_epilogue_runs_in_the_output_transform_and_a_constant_weight_is_transformed_at_build():
    import re

    from mlc_lab.codegen.tvm import build
    from mlc_lab.codegen.tvm.lower import lower_node
    from mlc_lab.passes import ElementwiseFusionPass

    graph, _ = _conv_node(1, 10, 10, 8, 16, 1, epilogue=True, constant_weight=True)
    graph = ElementwiseFusionPass().apply(graph)
    (node,) = [n for n in graph.nodes if n.op == "fused"]
    info = kernel_info(Task("fused", node))
    hook = ConfigSchedule({**default_config(info, AVX2), "winograd": 4}, info)
    script = lower_node(node, hook).func.script()
    blocks = re.findall(r'T\.sblock\("(\w+)"\)', script)
    # bias + relu are computed by the output transform's block (named after the conv): no pass of their own
    assert [b for b in blocks if "wino" not in b] == ["root", "conv2d_pad", "conv2d"], blocks
    assert script.count("meta_schedule.layout_rewrite_preproc") == 1  # U's first pass: once, at build time
    x = np.random.default_rng(2).standard_normal((1, 10, 10, 8)).astype(np.float32)
    expected = interpret(graph, x)[0]
    got = build(graph, schedule=hook)(x)[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=5e-5 * np.abs(expected).max())


def test_only_nhwc_3x3_stride_1_convs_offer_the_knob_and_a_mismatched_config_is_refused():
    nhwc, nchw = conv2d_task(1, 8, 8, 8, 3, "NHWC"), conv2d_task(1, 8, 8, 8, 3, "NCHW")
    one_by_one = conv2d_task(1, 8, 8, 8, 1, "NHWC")
    assert space_for(kernel_info(nhwc)).knobs["winograd"] == [0, *winograd.TILE_SIZES]
    for task in (nchw, one_by_one):
        info = kernel_info(task)
        assert "winograd" not in space_for(info).knobs
        assert "not a knob" in space_for(info).violation({**default_config(info, AVX2), "winograd": 2})
    b = GraphBuilder("strided")
    x, w = b.input("x", (1, 8, 8, 8)), b.input("w", (3, 3, 8, 8))
    conv = b.conv2d(x, w, strides=2, padding=1, data_layout="NHWC", kernel_layout="HWIO")
    strided = Task("s", b.build(conv).outputs[0])
    assert "winograd" not in space_for(kernel_info(strided)).knobs
    # a record's algorithm must match the kernel's lowering: the tuning-log hooks fall back instead
    from mlc_lab.tuning.lowering import lower

    info = kernel_info(nhwc)
    direct_config = default_config(info, AVX2)
    with pytest.raises(Exception, match="winograd=2, but the kernel was lowered direct"):
        lower(nhwc.node, lambda sch, node: apply_config(sch, {**direct_config, "winograd": 2}, info))
    with pytest.raises(UnsupportedKernel, match="winograd=0, but the kernel was lowered Winograd"):
        lower(nhwc.node, _WinogradLowering(direct_config, info))


class _WinogradLowering(ConfigSchedule):
    """Asks for a Winograd lowering, then applies a direct config."""

    def algorithm(self, node) -> int:
        return 2


def test_a_tuning_logs_winograd_record_reaches_the_compiled_model(tmp_path):
    from mlc_lab.codegen.tvm import build
    from mlc_lab.codegen.tvm.lower import lower_node
    from mlc_lab.tuning.apply import schedule_from_db

    graph, weight = _conv_node(1, 12, 12, 8, 16, 1, constant_weight=True)
    node = graph.outputs[0]
    task = Task("conv", node)
    cost = MeasuredCost(task, repeat=1, min_repeat_ms=0)
    config = {**default_config(cost.info, AVX2), "winograd": 2}
    trial = cost(config)
    assert trial.ok, trial.error  # the tuner's own check against the interpreter
    db = TuningDatabase(tmp_path / "log.jsonl")
    db.append(Record(task.key, config, trial.cost))
    hook = schedule_from_db(db)
    assert hook.algorithm(node) == 2
    assert "_wino_m" in lower_node(node, hook).func.script()
    x = np.random.default_rng(3).standard_normal((1, 12, 12, 8)).astype(np.float32)
    compiled = build(graph, schedule=schedule_from_db(db))
    expected = interpret(graph, x)[0]
    np.testing.assert_allclose(compiled(x)[0], expected, rtol=0, atol=5e-5 * np.abs(expected).max())
