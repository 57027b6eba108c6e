"""codecpickle codecs: the codecs this installation can use."""

from __future__ import annotations

import argparse

from ..codecs import available_codecs
from ._common import EXIT_OK, print_json

NAME = "codecs"
SUMMARY = "list the codecs, where each comes from, and whether it works here"
DESCRIPTION = """\
List every codec codecpickle knows: the six built-ins, codecs registered
from code, and plugins found through the entry-point group
codecpickle.codecs (with the distribution and version providing each).
A plugin that is installed but fails to import is listed as unavailable,
with the reason.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list")


def run(args: argparse.Namespace) -> int:
    infos = list(available_codecs().values())
    if args.json:
        print_json([
            {
                "name": info.name,
                "source": info.source,
                "version": info.version,
                "available": info.available,
                "error": info.error,
            }
            for info in infos
        ])
        return EXIT_OK
    for info in infos:
        origin = "builtin" if info.source == "builtin" else info.source
        if info.version is not None:
            origin = f"{origin} {info.version}"
        state = "available" if info.available else f"unavailable: {info.error}"
        print(f"{info.name:<12} {origin:<28} {state}")
    return EXIT_OK
