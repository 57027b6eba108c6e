"""The documentation's code runs: every fenced ``python`` block of README.md
and docs/*.md is executed, so an example that stops working fails here.

Each Markdown file runs in a fresh namespace, its blocks in order (a later
block may use what an earlier one defined), in a temporary working
directory.  Other languages (``sh``, ``text``, ``toml`` ...) are not run.
A block that genuinely cannot run (it needs a network peer or a package
that is not installed) is preceded by the line ``<!-- illustrative -->``
and skipped; use it sparingly.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LANGUAGES = {"python", "py"}
SKIP_MARKER = "<!-- illustrative -->"
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    line: int  # 1-based line of the opening fence
    language: str
    code: str
    illustrative: bool


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced code block in ``text``, in order."""
    blocks: list[Block] = []
    lines = text.splitlines()
    previous = ""  # the last non-blank line before the current one
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            if lines[index].strip():
                previous = lines[index].strip()
            index += 1
            continue
        fence, indent = match["fence"], len(match["indent"])
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            body.append(lines[end][indent:] if lines[end][:indent].isspace() else lines[end])
            end += 1
        blocks.append(
            Block(index + 1, match["info"].lower(), "\n".join(body) + "\n", previous == SKIP_MARKER)
        )
        previous = ""
        index = end + 1
    return blocks


def runnable(path: Path) -> list[Block]:
    return [block for block in fenced_blocks(path.read_text()) if block.language in RUN_LANGUAGES]


@pytest.fixture
def isolated_memory_filesystem() -> Iterator[None]:
    """Examples may write to fsspec's process-wide ``memory://`` store:
    leave it as it was for the tests that follow."""
    try:
        import fsspec
    except ImportError:  # then no example can use it either
        yield
        return
    memory = fsspec.filesystem("memory")
    store, dirs = dict(memory.store), list(memory.pseudo_dirs)
    try:
        yield
    finally:
        memory.store.clear()
        memory.store.update(store)
        memory.pseudo_dirs[:] = dirs


# Pages with something to run (the others, e.g. the generated API page,
# hold only text and shell sessions).
RUNNABLE_DOCS = [path for path in DOCS if any(not b.illustrative for b in runnable(path))]


def test_the_guide_and_readme_have_blocks_to_run() -> None:
    names = {path.name for path in RUNNABLE_DOCS}
    assert {"README.md", "guide.md", "plugins.md"} <= names


@pytest.mark.usefixtures("isolated_memory_filesystem")
@pytest.mark.parametrize(
    "path", RUNNABLE_DOCS, ids=[str(path.relative_to(ROOT)) for path in RUNNABLE_DOCS]
)
def test_python_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = [block for block in runnable(path) if not block.illustrative]
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))  # examples may import from benchmarks/
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    for block in blocks:
        where = f"{path.relative_to(ROOT)}:{block.line}"
        # Blank lines first, so tracebacks point at the Markdown file's own lines.
        code = compile("\n" * block.line + block.code, where, "exec")
        try:
            exec(code, namespace)
        except Exception as exc:
            exc.add_note(f"in the python block at {where}")
            raise


def test_illustrative_blocks_are_rare() -> None:
    skipped = [
        f"{path.name}:{block.line}"
        for path in DOCS
        for block in runnable(path)
        if block.illustrative
    ]
    assert len(skipped) <= 3, skipped


def test_collector_finds_blocks_and_honours_the_marker() -> None:
    text = "\n".join(
        [
            "# Title",
            "```python",
            "x = 1",
            "```",
            "",
            SKIP_MARKER,
            "",
            "```python",
            "raise SystemExit('never run')",
            "```",
            "```sh",
            "echo not python",
            "```",
            "- item:",
            "  ```python",
            "  y = x + 1",
            "  ```",
        ]
    )
    blocks = fenced_blocks(text)
    assert [(b.line, b.language, b.illustrative) for b in blocks] == [
        (2, "python", False),
        (8, "python", True),
        (11, "sh", False),
        (15, "python", False),
    ]
    assert blocks[3].code == "y = x + 1\n"
    assert runnable(ROOT / "README.md"), "README.md has python examples"
    assert sys.modules[__name__].DOCS[0].name == "README.md"
