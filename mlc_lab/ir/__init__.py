"""The graph IR: types, nodes and graphs, the op set, and the tools every stage uses on them."""

from mlc_lab.ir.builder import GraphBuilder
from mlc_lab.ir.equality import graph_diff, graphs_equal
from mlc_lab.ir.graph import Graph, GraphRewriter, Node
from mlc_lab.ir.interpreter import InterpreterError, evaluate, interpret
from mlc_lab.ir.ops import OPS, Cost, OpDef, OpError, OpKind, Trait, get_op, has_trait, is_source, node_cost, register
from mlc_lab.ir.parser import ParseError, parse_graph
from mlc_lab.ir.printer import constant_payloads, format_graph
from mlc_lab.ir.types import DTYPES, TensorType
from mlc_lab.ir.verifier import VerificationError, verify

__all__ = [
    "DTYPES",
    "OPS",
    "Cost",
    "Graph",
    "GraphBuilder",
    "GraphRewriter",
    "InterpreterError",
    "Node",
    "OpDef",
    "OpError",
    "OpKind",
    "ParseError",
    "TensorType",
    "Trait",
    "VerificationError",
    "constant_payloads",
    "evaluate",
    "format_graph",
    "get_op",
    "graph_diff",
    "graphs_equal",
    "has_trait",
    "interpret",
    "is_source",
    "node_cost",
    "parse_graph",
    "register",
    "verify",
]
