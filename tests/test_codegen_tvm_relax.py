"""TVM's own Relax pipeline on the zoo's PyTorch models (the fusion chapter's comparison)."""

from __future__ import annotations

import numpy as np
import pytest

from mlc_lab import zoo
from mlc_lab.interop.relax_reference import relax_reference


@pytest.fixture(scope="module")
def small_cnn():
    return zoo.load("small_cnn")


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_tvm_fuses_small_cnn_and_matches_torch(small_cnn, layout):
    ref = relax_reference(small_cnn.module, small_cnn.example_inputs, layout=layout)
    counts = ref.group_counts()
    # BN folded into the conv, then conv + bias + relu fused (the second also takes the residual add)
    assert counts["fused_conv2d_add_relu"] == 1 and counts["fused_conv2d_add_relu_add"] == 1
    assert ref.num_groups == sum(counts.values()) and ref.num_fused_groups >= 3
    if layout == "NHWC":
        assert counts["transpose"] == 1  # the one layout change at the input; weights were pre-transposed
        assert "NHWC" in ref.prepared.script()
    got = ref(*small_cnn.numpy_inputs())[0]
    np.testing.assert_allclose(got, small_cnn.torch_outputs()[0], atol=1e-4, rtol=0)


def test_unknown_layout_is_refused(small_cnn):
    with pytest.raises(ValueError, match="NCHW8c"):
        relax_reference(small_cnn.module, small_cnn.example_inputs, layout="NCHW8c")
