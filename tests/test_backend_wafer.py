"""CerebrasLikeBackend: real outputs, a valid placement on the mesh, the pipeline's numbers, presets, validation."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from mlc_lab import interpret, zoo
from mlc_lab.backends import CerebrasLikeBackend as FromBackends
from mlc_lab.backends.custom import CerebrasLikeBackend, ConfigError, MappingError
from mlc_lab.backends.custom.stages import split_stages
from mlc_lab.backends.custom.wafer import water_fill


@pytest.fixture(scope="module")
def models():
    return {name: (m.graph(), m.numpy_inputs()) for name in zoo.names() for m in [zoo.load(name)]}


@pytest.fixture(scope="module")
def resnet_400k(models):
    graph, inputs = models["resnet18"]
    backend = CerebrasLikeBackend(cores=400_000, memory_per_core_kb=48)
    tracemalloc.start()
    start = time.perf_counter()
    program = backend.compile(graph)
    outputs, report = backend.execute(program, inputs)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return backend, program, outputs, report, elapsed, peak


def assert_same_outputs(graph, inputs, outputs):
    for got, want in zip(outputs, interpret(graph, *inputs), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_public_api_as_written_in_the_guide(models, resnet_400k):
    assert FromBackends is CerebrasLikeBackend
    graph, inputs = models["resnet18"]
    _, _, outputs, report, elapsed, peak = resnet_400k
    assert_same_outputs(graph, inputs, outputs)
    assert elapsed < 10.0  # compile + execute on 400,000 cores
    assert peak < 2 * 2**30  # bytes allocated by Python and NumPy at the peak
    assert report.cores == 400_000 and report.mesh == (625, 640)


@pytest.mark.parametrize("execution", ["pipelined", "weight_streaming"])
@pytest.mark.parametrize("name", ["mlp", "small_cnn", "transformer_block"])
def test_outputs_equal_the_interpreter(models, name, execution):
    graph, inputs = models[name]
    backend = CerebrasLikeBackend(cores=20_000, execution=execution)
    outputs, report = backend.execute(backend.compile(graph), inputs)
    assert_same_outputs(graph, inputs, outputs)
    assert 0 < report.utilization <= 1
    assert report.macs == sum(la.macs for la in report.layers)


def test_regions_tile_the_mesh_without_overlap(resnet_400k):
    backend, program, _, report, _, _ = resnet_400k
    rows, cols = backend.mesh
    cover = np.zeros((rows, cols), dtype=np.int32)
    for i, layer in enumerate(program.layers):
        r0, c0, h, w = layer.region
        assert 0 <= r0 and r0 + h <= rows and 0 <= c0 and c0 + w <= cols
        assert layer.cores == h * w and 0 < layer.used_cores <= layer.cores
        cover[r0 : r0 + h, c0 : c0 + w] += 1
        assert (program.state.stage[r0 : r0 + h, c0 : c0 + w] == i).all()
    assert cover.max() == 1  # no core in two regions
    assert (program.state.stage >= 0).sum() == cover.sum() <= backend.usable_cores
    assert (program.state.sram_bytes <= backend.memory_per_core_kb * 1024).all()


def test_pipeline_numbers_are_consistent(resnet_400k):
    backend, program, _, report, _, _ = resnet_400k
    stage_cycles = [la.cycles for la in report.layers]
    fabric = int(np.ceil(program.state.links.max_load / backend.link_bytes_per_cycle))
    assert report.interval_cycles == report.compute_cycles == max(max(stage_cycles), fabric)
    assert report.throughput_per_s == pytest.approx(backend.clock_hz / report.interval_cycles)
    assert report.cycles >= sum(stage_cycles[:1])  # latency covers at least the first stage
    expected = report.macs / (report.interval_cycles * backend.usable_cores * backend.macs_per_core_per_cycle)
    assert report.utilization == pytest.approx(expected)
    # per-core utilization: busy cycles of the core's stage over the interval, never above 100%
    util = program.state.utilization
    assert util.max() <= 1.0 + 1e-6
    for layer in report.layers:
        r0, c0, h, w = layer.region
        region = util[r0 : r0 + h, c0 : c0 + w]
        assert region.max() == pytest.approx(layer.cycles / report.interval_cycles, rel=1e-6)
    assert report.bottleneck_kind in ("compute", "memory", "fabric")
    assert report.fabric_byte_hops == pytest.approx(program.state.links.total)


def test_cores_follow_the_work(resnet_400k):
    _, program, _, report, _, _ = resnet_400k
    by_name = {la.name: la for la in report.layers}
    # conv2d_1 (layer1, 2.36 M MACs) and conv2d_5 (layer2's strided conv, 1.18 M MACs): about twice the cores
    ratio = by_name["conv2d_1"].cores / by_name["conv2d_5"].cores
    assert 1.7 < ratio < 2.3
    # the fc layer can use at most 10 outputs x ceil(256 / 32) reduction slices
    assert by_name["linear.dense"].used_cores <= 80


def test_weights_that_do_not_fit_are_refused_or_streamed(models):
    graph, inputs = models["resnet18"]
    small = dict(cores=400, memory_per_core_kb=16)  # 6.4 MB of SRAM for 22 MB of fp16 weights
    with pytest.raises(MappingError, match="weight_streaming"):
        CerebrasLikeBackend(**small).compile(graph)
    backend = CerebrasLikeBackend(**small, execution="weight_streaming")
    outputs, report = backend.execute(backend.compile(graph), inputs)
    assert_same_outputs(graph, inputs, outputs)
    weights = sum(s.weight_elements() for s in split_stages(graph)[0]) * backend.word_bytes
    assert report.offchip_bytes >= weights  # every weight streamed in once
    io_cycles = int(np.ceil(report.max_link_bytes / backend.link_bytes_per_cycle))  # input in, logits out
    assert report.cycles == report.interval_cycles == sum(la.cycles for la in report.layers) + io_cycles
    assert any(la.bound == "weights" for la in report.layers)


def test_presets_match_published_figures():
    wse2, wse3 = CerebrasLikeBackend.wse2(), CerebrasLikeBackend.wse3()
    assert wse2.usable_cores == 850_000 and wse3.usable_cores == 900_000
    assert wse2.fabric_bits_per_s == pytest.approx(220e15)
    assert wse3.fabric_bits_per_s == pytest.approx(214e15)
    assert wse2.memory_bytes_per_cycle * 850_000 * wse2.clock_hz == pytest.approx(20e15)
    assert wse3.memory_bytes_per_cycle * 900_000 * wse3.clock_hz == pytest.approx(21e15)
    assert wse2.sram_bytes == pytest.approx(40e9, rel=0.05) and wse3.sram_bytes == pytest.approx(44e9, rel=0.01)


def test_wse3_compiles_900k_cores_quickly(models):
    graph, _ = models["resnet18"]
    start = time.perf_counter()
    program = CerebrasLikeBackend.wse3().compile(graph)
    assert time.perf_counter() - start < 10.0
    assert program.state.stage.shape == (900, 1000) and program.state.nbytes < 100 * 2**20


def test_water_fill_balances_and_respects_bounds():
    work = np.array([100.0, 50.0, 10.0, 1.0])
    n = water_fill(work, np.array([1, 1, 1, 5]), np.array([1000, 1000, 3, 1000]), 60)
    assert n.sum() <= 60 and n[2] == 3 and n[3] >= 5
    assert abs(n[0] / n[1] - 2) < 0.3  # balanced: equal work per core on the uncapped stages
    assert list(water_fill(work, np.ones(4), np.full(4, 2), 100)) == [2, 2, 2, 2]  # all capped: leftovers idle


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"cores": 0}, "cores"),
        ({"cores": -5}, "cores"),
        ({"memory_per_core_kb": 0}, "memory_per_core_kb"),
        ({"clock_ghz": -1}, "clock_ghz"),
        ({"macs_per_core_per_cycle": 0}, "macs_per_core_per_cycle"),
        ({"link_bytes_per_cycle": 0}, "link_bytes_per_cycle"),
        ({"memory_bytes_per_cycle": -2}, "memory_bytes_per_cycle"),
        ({"mesh": "10x"}, "mesh"),
        ({"cores": 100, "mesh": (20, 20)}, "mesh"),
        ({"word_bytes": 0}, "word_bytes"),
        ({"weight_memory_fraction": 1.5}, "weight_memory_fraction"),
        ({"execution": "batch"}, "execution"),
        ({"external_bandwidth_gbps": 0}, "external_bandwidth_gbps"),
    ],
)
def test_bad_configuration_names_the_parameter(kwargs, param):
    with pytest.raises(ConfigError, match=param):
        CerebrasLikeBackend(**kwargs)


def test_program_prints_and_draws(resnet_400k):
    import matplotlib

    matplotlib.use("Agg")
    _, program, _, report, _, _ = resnet_400k
    text = str(program)
    assert "625x640" in text and "conv2d_19" in text and "pipelined" in text
    assert "bottleneck" in report.summary()
    fig = program.draw(quantities=("stage", "utilization", "sram", "fabric"))
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == 4 and images[0].shape == (625, 640)
    assert report.to_dict()["layers"][0]["region"] == list(report.layers[0].region)
