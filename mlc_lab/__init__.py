"""mlc_lab: a readable ML compiler for the mlc-lab book."""

from mlc_lab.frontends import from_torch  # a thin wrapper: PyTorch is imported only when it is called
from mlc_lab.ir import Graph, GraphBuilder, interpret

__version__ = "0.1.0"
__all__ = ["Graph", "GraphBuilder", "from_torch", "interpret"]
