"""DataflowBackend (CGRA-like): real outputs, a legal placement and routing, the initiation interval, validation."""

from __future__ import annotations

import numpy as np
import pytest

from mlc_lab import GraphBuilder, interpret, zoo
from mlc_lab.backends import DataflowBackend as FromBackends
from mlc_lab.backends.custom import ConfigError, DataflowBackend, MappingError


@pytest.fixture(scope="module")
def models():
    return {name: (m.graph(), m.numpy_inputs()) for name in zoo.names() for m in [zoo.load(name)]}


def assert_same_outputs(graph, inputs, outputs):
    for got, want in zip(outputs, interpret(graph, *inputs), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def assert_legal(program, backend):
    """Every stage placed on its own PEs inside the grid, routes between real PEs, II covering every limit."""
    for conf in program.configurations:
        placed = {}
        for i in conf.stages:
            for r, c in program.layers[i].pes:
                assert 0 <= r < backend.rows and 0 <= c < backend.cols
                assert (r, c) not in placed, "a PE holds two stages"
                placed[(r, c)] = i
                assert conf.pe_stage[r, c] == i
        assert (conf.pe_stage >= 0).sum() == len(placed)
        for src, dst, p, q in conf.routes:
            assert placed[p] == src and placed[q] == dst
        assert conf.ii >= max(program.layers[i].cycles for i in conf.stages)
        assert conf.ii >= np.ceil(max(conf.east.max(initial=0), conf.south.max(initial=0)) / backend.tracks_per_link)


def test_public_api_is_importable_from_both_places():
    assert FromBackends is DataflowBackend


@pytest.mark.parametrize("name", ["mlp", "small_cnn", "resnet18", "transformer_block"])
def test_outputs_equal_the_interpreter_and_the_mapping_is_legal(models, name):
    graph, inputs = models[name]
    backend = DataflowBackend(rows=8, cols=8)
    program = backend.compile(graph)
    outputs, report = backend.execute(program, inputs)
    assert_same_outputs(graph, inputs, outputs)
    assert_legal(program, backend)
    assert 0 < report.utilization <= 1
    assert report.initiation_interval == sum(c.ii for c in program.configurations)
    expected = report.macs / (report.compute_cycles * backend.pes * backend.macs_per_pe_per_cycle)
    assert report.utilization == pytest.approx(expected)


def test_small_grid_needs_several_configurations(models):
    graph, inputs = models["resnet18"]
    big = DataflowBackend(rows=8, cols=8, pe_memory_kb=1024)
    small = DataflowBackend(rows=2, cols=2, pe_memory_kb=1024)
    rep_big = big.execute(big.compile(graph), inputs)[1]
    program = small.compile(graph)
    outputs, rep_small = small.execute(program, inputs)
    assert_same_outputs(graph, inputs, outputs)
    assert_legal(program, small)
    assert rep_big.configurations == 1
    assert rep_small.configurations >= 21 // 4  # at most 4 stages on 4 PEs at a time
    assert rep_small.reconfiguration_cycles == rep_small.configurations * small.reconfiguration_cycles
    assert rep_small.offchip_bytes > rep_big.offchip_bytes  # intermediate tensors spill between configurations


def test_batch_streams_at_the_initiation_interval(models):
    graph, inputs = models["mlp"]
    one = DataflowBackend(rows=4, cols=4, batch=1).compile(graph).report
    many = DataflowBackend(rows=4, cols=4, batch=16).compile(graph).report
    assert many.initiation_interval == one.initiation_interval
    assert many.cycles - one.cycles == 15 * one.initiation_interval
    assert many.latency_cycles == one.latency_cycles


def test_routing_can_bound_the_interval():
    """Wide MAC lanes and one routing track: moving the 256x64 activation costs more than computing it."""
    rng = np.random.default_rng(0)
    b = GraphBuilder("chatty")
    x = b.input("x", (256, 64))
    h = b.relu(b.dense(x, b.constant(rng.standard_normal((64, 64)).astype(np.float32))))
    y = b.dense(h, b.constant(rng.standard_normal((64, 64)).astype(np.float32)))
    graph = b.build(y)
    narrow = DataflowBackend(rows=4, cols=4, macs_per_pe_per_cycle=4096, tracks_per_link=1)
    wide = DataflowBackend(rows=4, cols=4, macs_per_pe_per_cycle=4096, tracks_per_link=64)
    program = narrow.compile(graph)
    assert program.configurations[0].limit == "routing"
    assert wide.compile(graph).report.initiation_interval < program.report.initiation_interval
    outputs, _ = narrow.execute(program, [rng.standard_normal((256, 64)).astype(np.float32)])
    assert outputs[0].shape == (256, 64)


def test_weights_larger_than_the_grid_are_refused(models):
    graph, _ = models["resnet18"]
    with pytest.raises(MappingError, match="pe_memory_kb"):
        DataflowBackend(rows=2, cols=2, pe_memory_kb=16).compile(graph)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"rows": 0}, "rows"),
        ({"cols": -1}, "cols"),
        ({"macs_per_pe_per_cycle": 0}, "macs_per_pe_per_cycle"),
        ({"pe_memory_kb": 0}, "pe_memory_kb"),
        ({"tracks_per_link": 0}, "tracks_per_link"),
        ({"clock_mhz": 0}, "clock_mhz"),
        ({"dram_bandwidth_gbps": -3}, "dram_bandwidth_gbps"),
        ({"reconfiguration_cycles": -1}, "reconfiguration_cycles"),
        ({"word_bytes": 0}, "word_bytes"),
        ({"batch": 0}, "batch"),
    ],
)
def test_bad_configuration_names_the_parameter(kwargs, param):
    with pytest.raises(ConfigError, match=param):
        DataflowBackend(**kwargs)


def test_program_prints_and_draws(models):
    import matplotlib

    matplotlib.use("Agg")
    graph, _ = models["small_cnn"]
    program = DataflowBackend(rows=4, cols=4).compile(graph)
    assert "configuration 0" in str(program) and "II" in str(program)
    fig = program.draw()
    assert fig.axes[0].get_title().startswith("configuration 0")
    assert "II per configuration" in program.report.summary()
