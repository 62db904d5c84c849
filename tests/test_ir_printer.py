"""The text form is stable (golden output) and shows what a reader needs."""

import numpy as np

from mlc_lab.ir import GraphBuilder, Node, TensorType

GOLDEN = """\
graph tiny(%x: f32[1, 3, 8, 8]) -> (f32[1, 4]) {
  %w = constant : f32[4, 3, 3, 3]
  %conv = conv2d(%x, %w) {strides=[2, 2], padding=[1, 1, 1, 1]} : f32[1, 4, 4, 4]
  %relu = relu(%conv) : f32[1, 4, 4, 4]
  %pool = global_avg_pool2d(%relu) : f32[1, 4, 1, 1]
  %flat = reshape(%pool) {shape=[1, 4]} : f32[1, 4]
  %scale = constant [0.5, 2. ] : f32[2]
  %half = constant 0.5 : f32[]
  %out = mul(%flat, %half) : f32[1, 4]
  return %out
}"""


def build():
    b = GraphBuilder("tiny")
    x = b.input("x", (1, 3, 8, 8))
    w = b.constant(np.zeros((4, 3, 3, 3), np.float32), "w")
    c = b.conv2d(x, w, strides=2, padding=1, name="conv")
    r = b.relu(c)
    p = b.global_avg_pool2d(r, name="pool")
    f = b.reshape(p, shape=(1, 4), name="flat")
    b.constant(np.array([0.5, 2.0], np.float32), "scale")
    h = b.constant(0.5, "half")
    return b.build(b.mul(f, h, name="out"))


def test_golden_text():
    assert str(build()) == GOLDEN


def test_fused_node_prints_its_subgraph():
    inner = GraphBuilder("conv_relu")
    p = inner.input("p", (1, 4, 4, 4))
    sub = inner.build(inner.relu(p))
    b = GraphBuilder("outer")
    x = b.input("x", (1, 4, 4, 4))
    f = b.add_node(Node("fused", (x,), {"subgraph": sub, "pattern": "relu"}, TensorType((1, 4, 4, 4)), "f"))
    text = str(b.build(f))
    assert '  %f = fused(%x) {pattern="relu"} : f32[1, 4, 4, 4] {\n      // %p = %x\n' in text
    assert "      %relu = relu(%p) : f32[1, 4, 4, 4]\n      return %relu\n  }" in text
