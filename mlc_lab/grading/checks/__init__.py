"""Official checks, one module per exercise notebook: `exercises/01_ir.md` -> `ch01_ir.py`.

Each `check_*(ns)` receives the executed notebook's globals and raises AssertionError with a
readable message on failure. See `mlc_lab.grading` for the whole protocol.
"""
