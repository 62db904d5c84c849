"""The `mlc-lab` subcommands that drive the core (`simulate`, `tune`, `tune-model`): presentation, on top.

They live here, not beside the engines they call, so that nothing in the core (`backends`, `tuning`)
imports the model zoo or argparse front ends; `mlc_lab.cli` lists them in COMMAND_MODULES.
"""
