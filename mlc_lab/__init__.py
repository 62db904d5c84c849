"""mlc_lab: a readable ML compiler for the mlc-lab book."""

from mlc_lab.api import BACKENDS, CompiledModel, compile
from mlc_lab.errors import MlcLabError
from mlc_lab.frontends import from_torch  # a thin wrapper: PyTorch is imported only when it is called
from mlc_lab.ir import Graph, GraphBuilder, interpret

__version__ = "0.1.0"
__all__ = [
    "BACKENDS",
    "CompiledModel",
    "Graph",
    "GraphBuilder",
    "MlcLabError",
    "compile",
    "from_torch",
    "interpret",
    "torch_backend",
]


def torch_backend(gm, example_inputs, **options):  # noqa: ANN001, ANN201 - torch's backend signature
    """`torch.compile(model, backend=mlc_lab.torch_backend)`: see mlc_lab.interop.torch_dynamo."""
    from mlc_lab.interop.torch_dynamo import torch_backend as _torch_backend

    return _torch_backend(gm, example_inputs, **options)
