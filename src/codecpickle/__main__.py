"""Command line: ``python -m codecpickle`` (or the ``codecpickle`` script).

``codecs`` lists the codecs this installation can use; ``info FILE`` prints
what a file's header says (format version, codec and its parameters, the
plugin that provided the codec) without unpickling anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ._reader import read_header_meta
from ._sources import StreamSource
from .codecs import available_codecs
from .errors import CodecPickleError


def _codecs(_: argparse.Namespace) -> int:
    for info in available_codecs().values():
        origin = info.source if info.version is None else f"{info.source} {info.version}"
        state = "available" if info.available else f"unavailable: {info.error}"
        print(f"{info.name:<12} {origin:<28} {state}")
    return 0


def _info(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            with open(path, "rb") as file:
                version, meta = read_header_meta(StreamSource(file))
        except (OSError, CodecPickleError) as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{path}: codecpickle format {version}, " + json.dumps(meta, sort_keys=True))
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="codecpickle", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("codecs", help="list available codecs").set_defaults(run=_codecs)
    info = commands.add_parser("info", help="show what a file's header says")
    info.add_argument("files", nargs="+", metavar="FILE")
    info.set_defaults(run=_info)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
