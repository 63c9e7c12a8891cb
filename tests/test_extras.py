"""A missing extra: one traceback whose last line names the extra to install, by import or attribute."""

from __future__ import annotations

import pytest

from conftest import run_bare_python

_CASES = [
    ("httpx", "httpx"),
    ("httpx", "anyio"),
    ("mqtt", "paho"),
]


@pytest.mark.parametrize("form", ["import", "attribute"])
@pytest.mark.parametrize(("extra", "package"), _CASES, ids=[f"{e}-without-{p}" for e, p in _CASES])
def test_a_missing_extra_is_one_traceback_naming_the_extra(extra, package, form):
    """'import clarify_auth.X' or 'clarify_auth.X' without the extra: one traceback, the extra named."""
    use = (
        f"import clarify_auth.{extra}"
        if form == "import"
        else f"import clarify_auth; clarify_auth.{extra}"
    )
    code = f"import sys; sys.modules[{package!r}] = None; {use}"

    result = run_bare_python(code, check=False)

    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1
    assert result.stderr.count("Traceback") == 1, result.stderr
    assert "During handling" not in result.stderr
    assert "direct cause" not in result.stderr
    assert last == (
        f"ImportError: clarify_auth.{extra} needs the '{extra}' extra: "
        f"pip install 'clarify-auth[{extra}]'"
    )
