"""mlc_lab: a readable ML compiler for the mlc-lab book."""

from mlc_lab.ir import Graph, GraphBuilder, interpret

__version__ = "0.1.0"
__all__ = ["Graph", "GraphBuilder", "interpret"]
