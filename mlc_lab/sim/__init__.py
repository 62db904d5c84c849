"""Simulation pieces shared by the chapters and the accelerator backends."""

from mlc_lab.sim.cache import CacheConfig, CacheStats, simulate_cache, simulate_cache_reference
from mlc_lab.sim.loop_nest import Access, conv2d_input_trace, element_offsets, loop_nest_trace

__all__ = [
    "Access",
    "CacheConfig",
    "CacheStats",
    "conv2d_input_trace",
    "element_offsets",
    "loop_nest_trace",
    "simulate_cache",
    "simulate_cache_reference",
]
