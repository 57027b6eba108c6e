"""codecpickle inspect: what a file would build, without building it."""

from __future__ import annotations

import argparse
import sys

from ..errors import CodecPickleError
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    add_storage_flags,
    error,
    is_remote,
    local_path,
    print_json,
    storage_options,
)

NAME = "inspect"
SUMMARY = "list a file's arrays and the classes it would import, without loading it"
DESCRIPTION = """\
Describe what FILE holds without loading it: for every object in the file,
the format, codec, sizes and ratio, every array (shape, dtype, order, size)
and every class or function the pickle would import, marked allowed or not
by a restricted load (load(..., safe=True), plus any --allow).

Nothing in the file is executed or imported. Use it before loading a file
from elsewhere: --untrusted prints only the names a restricted load would
refuse, one per line, ready to review and pass to load(..., allow=[...]).
FILE may also be a plain pickle or a joblib file (compressed or not), as
load reads them.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE",
                        help="a file, a URL (s3://, http://, ...), or - for standard input")
    parser.add_argument("--allow", action="append", default=[], metavar="NAME",
                        help="also count module.qualname NAME as allowed (repeatable)")
    parser.add_argument("--untrusted", action="store_true",
                        help="print only the globals a restricted load would refuse")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_storage_flags(parser)


def run(args: argparse.Namespace) -> int:
    from .. import inspect as inspect_file

    options = storage_options(args, [args.file])
    target = sys.stdin.buffer if args.file == "-" else local_path(args.file)
    try:
        found = inspect_file(target, allow=args.allow,
                             storage_options=options if is_remote(args.file) else None)
    except (OSError, CodecPickleError) as exc:
        error(f"{args.file}: {exc}")
        return EXIT_FAILED
    if args.untrusted:
        if args.json:
            print_json(found.untrusted)
        else:
            for name in found.untrusted:
                print(name)
        return EXIT_OK
    if args.json:
        print_json({"file": args.file, **found.to_dict()})
    else:
        print(found)
    return EXIT_OK
