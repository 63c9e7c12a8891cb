"""MkDocs hooks: show the marked code blocks of the docs as code, with what their mark means.

The docs mark some blocks in their info string (```python mqtt, ```python redis,
```python pytest, ```json output) so that tests/test_docs.py knows how to run
them. Python-Markdown's fences take a language only, so each mark becomes a
title above the block here; the Markdown files stay as the tests read them.
"""

from __future__ import annotations

import re
from typing import Any

TITLES = {
    "mqtt": "needs an MQTT broker: Clarify's, or a local one in tests",
    "redis": "needs a Redis server",
    "pytest": "a pytest test module",
    "output": "output",
}
MARKED = re.compile(r"^```(\w+) (\w+)$", flags=re.MULTILINE)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Turn ```LANG MARK into ```LANG with MARK's title."""

    def titled(match: re.Match[str]) -> str:
        language, mark = match.groups()
        title = TITLES.get(mark, mark)
        return f'```{language} title="{title}"'

    return MARKED.sub(titled, markdown)
