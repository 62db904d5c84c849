"""Code generators: each turns a verified Graph into something that runs on the CPU.

- `mlc_lab.codegen.tvm`: TE/TensorIR kernels in a Relax module, compiled by TVM's LLVM backend.
- `mlc_lab.codegen.mlir`: func/linalg/tensor MLIR, MLIR's pass pipelines, compiled by IREE or JIT-run.
"""
