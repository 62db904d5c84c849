"""API-drift smoke tests: exactly the external calls the book relies on, one test per pinned stack.

When a pinned version changes, these fail first and say which stack broke and which chapters use it,
before the larger tests fail for reasons that are harder to read.
"""

import numpy as np
import pytest


def test_torch_export_gives_high_level_aten_ops():
    """torch 2.13 (chapter 1, frontends): torch.export keeps aten.conv2d/linear/batch_norm and fx meta."""
    import torch

    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.LazyLinear(2)
    )
    model(torch.randn(1, 3, 5, 5))
    ep = torch.export.export(model.eval(), (torch.randn(1, 3, 5, 5),))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert {"aten.conv2d.default", "aten.batch_norm.default", "aten.linear.default"} <= targets
    assert all("val" in n.meta for n in ep.graph.nodes if n.op == "call_function")
    assert ep.graph_signature.inputs_to_parameters


def test_tvm_te_tensorir_compile_and_time():
    """apache-tvm 0.27 (chapters 2-4): te -> create_prim_func -> s_tir.Schedule -> tvm.compile -> time_evaluator."""
    import tvm
    from tvm import te

    a = te.placeholder((64,), "float32", name="a")
    b = te.compute((64,), lambda i: a[i] * 2.0, name="b")
    sch = tvm.s_tir.Schedule(te.create_prim_func([a, b]))
    (i,) = sch.get_loops(sch.get_sblock("b"))
    _, inner = sch.split(i, factors=[None, 16])
    sch.vectorize(inner)
    target = tvm.target.Target({"kind": "llvm", "mcpu": tvm.target.codegen.llvm_get_system_cpu(), "num-cores": 1})
    ex = tvm.compile(sch.mod, target=target)
    x = tvm.runtime.tensor(np.arange(64, dtype=np.float32))
    y = tvm.runtime.tensor(np.zeros(64, np.float32))
    ex["main"](x, y)
    np.testing.assert_array_equal(y.numpy(), np.arange(64) * 2)
    assert ex.mod.time_evaluator("main", tvm.cpu(), number=1, repeat=1)(x, y).median > 0


def test_tvm_relax_import_fuse_and_vm():
    """apache-tvm 0.27 (chapters 1-3): from_exported_program, LegalizeOps/FuseOps/FuseTIR, ConvertLayout, VM."""
    import torch
    import tvm
    from tvm import relax
    from tvm.relax.frontend.torch import from_exported_program

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    x = torch.randn(1, 3, 6, 6)
    mod = from_exported_program(torch.export.export(model, (x,)))
    mod = relax.transform.ConvertLayout({"relax.nn.conv2d": ["NHWC", "OHWI"]})(mod)
    target = tvm.target.Target({"kind": "llvm", "mcpu": tvm.target.codegen.llvm_get_system_cpu(), "num-cores": 1})
    with target:
        fused = tvm.transform.Sequential(
            [
                relax.transform.LegalizeOps(),
                relax.transform.AnnotateTIROpPattern(),
                relax.transform.FuseOps(),
                relax.transform.FuseTIR(),
            ]
        )(mod)
    vm = relax.VirtualMachine(tvm.compile(fused, target), tvm.cpu())
    out = vm["main"](tvm.runtime.tensor(x.numpy()))
    np.testing.assert_allclose(out[0].numpy(), model(x).detach().numpy(), atol=1e-5)  # main returns a tuple


def test_tvm_metaschedule_is_importable_with_its_builder_pieces():
    """apache-tvm 0.27 + apache-tvm-ffi pin (chapter 5): MetaSchedule's Python builder/runner hooks exist."""
    from tvm.s_tir import meta_schedule as ms

    assert hasattr(ms, "tune_tir") and hasattr(ms.builder, "PyBuilder") and hasattr(ms.runner, "PyRunner")


def test_torch_mlir_bindings_passes_and_jit():
    """torch-mlir 20261001 (chapters 1, 6): FX importer, PassManager to LLVM, ExecutionEngine."""
    import torch
    from torch_mlir import fx, ir
    from torch_mlir.execution_engine import ExecutionEngine
    from torch_mlir.passmanager import PassManager

    module = fx.export_and_import(torch.nn.ReLU(), torch.randn(2, 3), output_type="linalg-on-tensors")
    assert "linalg.generic" in str(module)
    with ir.Context():
        m = ir.Module.parse(
            "func.func @add(%a: f32, %b: f32) -> f32 attributes {llvm.emit_c_interface} {"
            " %c = arith.addf %a, %b : f32  return %c : f32 }"
        )
        PassManager.parse("builtin.module(convert-to-llvm,reconcile-unrealized-casts)").run(m.operation)
        engine = ExecutionEngine(m, opt_level=2)
        assert engine is not None


def test_iree_compile_and_run():
    """iree-base-compiler/runtime 3.13 (chapter 7): compile_str for llvm-cpu, load_vm_flatbuffer."""
    import iree.compiler
    import iree.runtime

    src = (
        "func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {"
        " %y = arith.addf %x, %x : tensor<4xf32> return %y : tensor<4xf32> }"
    )
    vmfb = iree.compiler.compile_str(src, target_backends=["llvm-cpu"], extra_args=["--iree-llvmcpu-target-cpu=host"])
    module = iree.runtime.load_vm_flatbuffer(vmfb, driver="local-sync")
    np.testing.assert_array_equal(np.asarray(module.main(np.arange(4, dtype=np.float32))), [0, 2, 4, 6])


def test_xdsl_parses_rewrites_and_prints():
    """xdsl 0.74 (chapter 7): Parser, PatternRewriteWalker, Printer on upstream MLIR text."""
    from io import StringIO

    from xdsl.context import Context
    from xdsl.dialects import arith, get_all_dialects
    from xdsl.parser import Parser
    from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern
    from xdsl.printer import Printer

    ctx = Context()
    for name, dialect in get_all_dialects().items():
        ctx.register_dialect(name, dialect)
    module = Parser(
        ctx, "func.func @f(%a: f32) -> f32 { %b = arith.addf %a, %a : f32\n func.return %b : f32 }"
    ).parse_module()

    class ToMul(RewritePattern):
        @op_type_rewrite_pattern
        def match_and_rewrite(self, op: arith.AddfOp, rewriter: PatternRewriter) -> None:
            rewriter.replace(op, [arith.MulfOp(op.lhs, op.rhs)])

    PatternRewriteWalker(ToMul()).rewrite_module(module)
    out = StringIO()
    Printer(stream=out).print_op(module)
    assert "arith.mulf" in out.getvalue()


def test_book_toolchain_reads_myst_notebooks():
    """jupyter-book 1.0.x, jupytext, myst-nb, nbval (every chapter): versions the book build was verified with."""
    import jupyter_book
    import jupytext
    import myst_nb
    import nbval

    assert jupyter_book.__version__.startswith("1.0"), "jupyter-book 2.x cannot build offline"
    nb = jupytext.reads(
        "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n  name: python3\n"
        "  display_name: Python 3\n  language: python\n---\n\n# t\n\n```{code-cell} ipython3\n1 + 1\n```\n",
        fmt="md:myst",
    )
    assert [c.cell_type for c in nb.cells] == ["markdown", "code"]
    assert myst_nb.__version__ and nbval


@pytest.mark.parametrize("module", ["scipy.special", "matplotlib.pyplot", "xgboost", "tqdm"])
def test_support_libraries_import(module):
    """Small dependencies the package uses (interpreter, plots, cost model, progress bars)."""
    __import__(module)
