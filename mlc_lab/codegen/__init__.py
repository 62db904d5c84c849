"""Code generators: each turns a verified Graph into something that runs (TVM today, MLIR next)."""
