"""The ``codecpickle`` command line (also ``python -m codecpickle``).

One module per command; each defines ``NAME``, ``SUMMARY`` (one line for the
command list), ``DESCRIPTION`` (its ``--help`` text), ``add_arguments(parser)``
and ``run(args) -> exit status``.  Exit statuses: 0 success, 1 a damaged file
or a failed check, 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from . import bench, clean, codecs, convert, info, inspect, recompress, verify
from ._common import EXIT_FAILED, EXIT_USAGE, UsageError, error

COMMANDS: tuple[ModuleType, ...] = (
    info, inspect, verify, recompress, convert, bench, codecs, clean
)

_DESCRIPTION = """\
Look into, check and rewrite codecpickle files without unpickling them
(convert is the exception: it rebuilds the object it converts).

FILE may be - to read standard input, or a URL (s3://, http://, any fsspec
protocol; --storage-option KEY=VALUE passes options to its filesystem).
Commands whose output is data accept --json. Exit status: 0 success, 1 a
damaged file or a failed check, 2 bad usage, 130 interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="codecpickle",
        description=_DESCRIPTION,
        epilog="Run 'codecpickle COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"codecpickle {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     title="commands")
    for module in COMMANDS:
        sub = commands.add_parser(
            module.NAME, help=module.SUMMARY, description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``);
    return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except UsageError as exc:
        parser.exit(EXIT_USAGE, f"{parser.prog} {args.command}: error: {exc}\n")
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    raise AssertionError("unreachable")
