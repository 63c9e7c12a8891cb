"""Options are typed: mypy --strict reports a misspelt or mistyped option in a user's code."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mypy")

ROOT = Path(__file__).resolve().parents[3]

WRONG = {
    "session-misspelt": (
        "clarify_auth.ClarifySession(creds, atempts=6)",
        'Unexpected keyword argument "atempts" for "ClarifySession"',
    ),
    "session-mistyped": (
        'clarify_auth.ClarifySession(creds, attempts="six")',
        'Argument "attempts" to "ClarifySession" has incompatible type "str"; expected "int"',
    ),
    "session-store-mistyped": (
        "clarify_auth.ClarifySession(creds, token_cache=42)",
        (
            'Argument "token_cache" to "ClarifySession" has incompatible type "Literal[42]"; '
            'expected "TokenStore | Literal[False] | None"'
        ),
    ),
    "from-credentials-misspelt": (
        "clarify_auth.OAuthClientCredentials.from_credentials(creds, dedline=30)",
        'Unexpected keyword argument "dedline" for "from_credentials"',
    ),
    "from-credentials-mistyped": (
        "clarify_auth.Authenticator.from_credentials(creds, shared='yes')",
        'Argument "shared" to "from_credentials" of "Authenticator" has incompatible type "str"',
    ),
}


def test_mypy_reports_each_wrong_option_and_nothing_else(tmp_path):
    """Each wrong spelling or type is one mypy error on its own line; the right file has none."""
    for name, (call, _) in WRONG.items():
        (tmp_path / f"wrong_{name.replace('-', '_')}.py").write_text(
            textwrap.dedent(f"""\
                import clarify_auth


                def use(creds: clarify_auth.Credentials) -> None:
                    {call}
                """)
        )

    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--config-file",
         str(ROOT / "pyproject.toml"), str(tmp_path), str(ROOT / "tests" / "typing" / "check_options.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )  # fmt: skip

    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    for name, (_, message) in WRONG.items():
        mine = [line for line in errors if f"wrong_{name.replace('-', '_')}.py" in line]
        assert mine, (name, result.stdout)
        assert any(message in line for line in mine), (name, mine)
    assert not [line for line in errors if "check_options.py" in line], result.stdout
