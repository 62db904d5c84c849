"""The `mlc-lab` command: one entry point, subcommands contributed by the modules that own them.

Each module listed in COMMAND_MODULES exposes `register(subparsers)`, which adds its subcommand(s)
with `parser.set_defaults(func=...)`; `func(args)` returns the exit code. Registration must stay
cheap (argparse only): import heavy libraries (TVM, torch, nbclient) inside `func`.
To add a command, write `register` in a module of `mlc_lab/commands/` (or the presentation package that
owns it) and list the module here; core packages hold no commands (they would import the zoo).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Modules that contribute subcommands, in the order `mlc-lab --help` lists them.
COMMAND_MODULES: list[str] = [
    "mlc_lab.grading.cli",  # grade
    "mlc_lab.book",  # book, lab
    "mlc_lab.commands.simulate",  # simulate
    "mlc_lab.commands.tune",  # tune, tune-model
    "mlc_lab.commands.coverage",  # coverage
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlc-lab", description="mlc-lab: build the book, open the lab, grade exercises."
    )
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _version() -> str:
    from mlc_lab import __version__

    return f"mlc-lab {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run `mlc-lab` and return its exit status, for usage errors too (2, argparse's message on stderr
    naming the option and the value) rather than raising SystemExit: `main([...])` in a test reads like
    the shell."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except SystemExit as e:  # argparse (usage errors, --help, --version) and subcommands' parser.error
        if isinstance(e.code, str):  # sys.exit("message"): Python prints it and exits with 1
            print(e.code, file=sys.stderr)
            return 1
        return int(e.code or 0)


if __name__ == "__main__":
    sys.exit(main())
