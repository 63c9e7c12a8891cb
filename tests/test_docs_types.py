"""Every Python snippet of the README and the docs passes mypy --strict, as a reader copies it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
# ```python, and ```python mqtt / ```python redis: those need a server to run, not to type-check.
BLOCK = re.compile(r"^```python( [a-z-]+)?\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)


def snippets() -> list[tuple[str, str]]:
    """(where, code); a notebook cell (top-level await) is checked as the body of a coroutine."""
    found = []
    for page in PAGES:
        for number, (info, code) in enumerate(BLOCK.findall(page.read_text(encoding="utf-8")), 1):
            checked = code
            if info.strip() == "notebook":
                lines = code.splitlines(keepends=True)
                body = "".join(f"    {line}" if line.strip() else line for line in lines)
                checked = f"async def _cell() -> None:\n{body}"
            found.append((f"{page.relative_to(ROOT).as_posix()} block {number}", checked))
    return found


def test_every_snippet_passes_mypy_strict(tmp_path):
    """mypy --strict finds nothing in any block (top-level await allowed: the notebook form)."""
    names = {}
    for index, (where, code) in enumerate(snippets()):
        name = f"snippet_{index:03d}.py"
        names[name] = where
        header = '# mypy: disable-error-code="top-level-await"\n'
        (tmp_path / name).write_text(header + code, encoding="utf-8")

    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--config-file",
         str(ROOT / "pyproject.toml"), str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )  # fmt: skip

    assert len(names) >= 10
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    located = [f"{names[line.split(':')[0].rsplit('/', 1)[-1]]}: {line}" for line in errors]
    assert not located, "\n".join(located)
