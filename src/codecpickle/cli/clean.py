"""codecpickle clean: remove the temporary files that interrupted dumps
leave behind."""

from __future__ import annotations

import argparse
import os
import re
import stat
import time
from collections.abc import Iterator
from typing import Any

from .._atomic import TEMP_SUFFIX
from ._common import EXIT_FAILED, EXIT_OK, count, error, human_size, print_json

NAME = "clean"
SUMMARY = "remove stale temporary files left by interrupted dumps"
DESCRIPTION = f"""\
A dump to a path writes a hidden temporary file next to the target
(.NAME.RANDOM{TEMP_SUFFIX}) and renames it over the target once complete.
A process killed mid-dump (SIGKILL, power loss) cannot remove it. This
command removes such files in DIR that were last modified longer ago than
--older-than (default 1h), so that a dump still running is left alone.

Only regular files whose names follow that pattern are touched; use
--dry-run to list what would be removed.
"""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{12}" + re.escape(TEMP_SUFFIX) + "$")


def duration(text: str) -> float:
    """argparse type: seconds from ``90``, ``90s``, ``15m``, ``1h`` or ``2d``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 90s, 15m, 1h or 2d, got {text!r}"
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="the directory to clean")
    parser.add_argument("--older-than", type=duration, default=3600.0, metavar="AGE",
                        help="only files last modified longer ago than AGE: 90s, 15m, 1h "
                        "(the default), 2d")
    parser.add_argument("--dry-run", "-n", action="store_true",
                        help="list what would be removed, remove nothing")
    parser.add_argument("--recursive", "-r", action="store_true",
                        help="also clean the directories below DIR")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")


def stale_files(directory: str, older_than: float, recursive: bool) -> Iterator[dict[str, Any]]:
    """The temporary files of interrupted dumps in ``directory``."""
    now = time.time()
    for root, dirs, files in os.walk(directory):
        if not recursive:
            dirs.clear()
        for name in sorted(files):
            if not _TEMP_NAME.match(name):
                continue
            path = os.path.join(root, name)
            try:
                status = os.lstat(path)
            except FileNotFoundError:
                continue
            age = now - status.st_mtime
            if stat.S_ISREG(status.st_mode) and age > older_than:
                yield {"path": path, "size": status.st_size, "age_seconds": round(age, 1)}


def run(args: argparse.Namespace) -> int:
    if not os.path.isdir(args.directory):
        error(f"{args.directory}: not a directory")
        return EXIT_FAILED
    found = list(stale_files(args.directory, args.older_than, args.recursive))
    failed = []
    for entry in found:
        entry["removed"] = False
        if not args.dry_run:
            try:
                os.unlink(entry["path"])
                entry["removed"] = True
            except FileNotFoundError:
                entry["removed"] = True  # another cleaner got there first
            except OSError as exc:
                entry["error"] = str(exc)
                failed.append(entry)
    if args.json:
        print_json({"directory": args.directory, "dry_run": args.dry_run, "files": found})
    else:
        verb = "would remove" if args.dry_run else "removed"
        for entry in found:
            if "error" in entry:
                error(f"cannot remove {entry['path']}: {entry['error']}")
            else:
                print(f"{verb} {entry['path']} ({human_size(entry['size'])}, "
                      f"{entry['age_seconds'] / 3600:.1f} h old)")
        total = sum(entry["size"] for entry in found if "error" not in entry)
        print(f"{verb} {count(len(found) - len(failed), 'stale temporary file')} "
              f"({human_size(total)})")
    return EXIT_FAILED if failed else EXIT_OK
