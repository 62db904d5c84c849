"""Auto-tuning: schedule search spaces, search strategies, cost models, the tuning log, and the machine model."""

from mlc_lab.tuning.hardware import MachineModel, measure_bandwidth_gbs, measure_machine, measure_peak_gflops

__all__ = ["MachineModel", "measure_bandwidth_gbs", "measure_machine", "measure_peak_gflops"]
