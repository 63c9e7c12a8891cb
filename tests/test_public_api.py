"""The public namespace: exactly the contract's names, sorted, with one exception root."""

from __future__ import annotations

import inspect
import pathlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

import clarify_auth
from conftest import run_bare_python

CONTRACT_CHECK = Path(__file__).resolve().parents[2] / "shared" / "tools" / "contract_check.py"


def test_all_is_sorted_and_complete():
    """__all__ is sorted and lists every public name the package defines."""
    public = {
        name
        for name in dir(clarify_auth)
        if not name.startswith("_") and not inspect.ismodule(getattr(clarify_auth, name))
    }

    assert clarify_auth.__all__ == sorted(clarify_auth.__all__)
    assert set(clarify_auth.__all__) - {"__version__"} == public


def test_import_is_lazy_and_cheap():
    """import clarify_auth loads neither requests nor pydantic; the first public name does."""
    code = (
        "import sys, clarify_auth; "
        "assert 'requests' not in sys.modules and 'pydantic' not in sys.modules, sorted(sys.modules); "
        "clarify_auth.ClarifySession; "
        "assert 'requests' in sys.modules and 'pydantic' in sys.modules"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr


def test_unknown_attribute_is_an_attribute_error():
    """A name the package does not have raises AttributeError, as for any module."""
    with pytest.raises(AttributeError, match="no_such_name"):
        clarify_auth.no_such_name  # noqa: B018


def test_every_exception_has_one_root():
    """Every exception class the package exports derives from ClarifyAuthError."""
    errors = [
        v
        for v in vars(clarify_auth).values()
        if inspect.isclass(v) and issubclass(v, BaseException)
    ]

    assert len(errors) == 7
    assert all(issubclass(e, clarify_auth.ClarifyAuthError) for e in errors)
    assert issubclass(clarify_auth.CredentialsError, ValueError)
    assert issubclass(clarify_auth.ConfigurationError, ValueError)


def test_authenticators_and_session_are_requests_types():
    """Authenticators are requests auth handlers; the session is a requests.Session."""
    for cls in (
        clarify_auth.Authenticator,
        clarify_auth.BasicAuth,
        clarify_auth.OAuthClientCredentials,
    ):
        assert issubclass(cls, requests.auth.AuthBase)
    assert issubclass(clarify_auth.ClarifySession, requests.Session)


@pytest.mark.parametrize("name", ["httpx", "mqtt", "pyclarify", "testing"])
def test_public_submodules_are_attributes_after_import_clarify_auth(name):
    """After 'import clarify_auth' alone, clarify_auth.httpx, .mqtt, .pyclarify and .testing work."""
    result = run_bare_python(
        f"import clarify_auth; module = clarify_auth.{name}; print(module.__name__, module.__all__)"
    )

    assert result.stdout.startswith(f"clarify_auth.{name} [")


def test_skip_reasons_name_nothing_of_the_projects_own_layout():
    """A user running the tests meets skip reasons about their machine, not our folders."""
    texts = [path.read_text(encoding="utf-8") for path in Path(__file__).parent.rglob("*.py")]
    reasons = [r for text in texts for r in re.findall(r"reason=\s*\"([^\"]*)\"", text)]
    skips = [r for text in texts for r in re.findall(r"pytest\.skip\(\s*\"([^\"]*)\"", text)]

    assert len(reasons) > 5
    assert not [r for r in reasons + skips if "shared/" in r or "checkout" in r]


def test_package_ships_type_information():
    """py.typed is in the package, so users' type checkers read our annotations."""
    assert (Path(clarify_auth.__file__).parent / "py.typed").exists()


@pytest.mark.skipif(
    not CONTRACT_CHECK.exists(),
    reason="the maintainers' API contract checker is not part of this copy (nothing to check)",
)
def test_contract_check_finds_every_promised_name():
    """The shared contract checker finds nothing missing."""
    result = subprocess.run(
        [sys.executable, str(CONTRACT_CHECK)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "every promised name is present" in result.stdout


# -- attacks an adversarial review found, beside the behaviour they attack --


def test_pyproject_declares_filelock_as_a_runtime_dependency():
    """filelock is a runtime dependency of the distribution, as the contract and README say."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: pytest's own dependency
        import tomli as tomllib

    pyproject = pathlib.Path(__file__).parent.parent / "pyproject.toml"
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]

    assert any(d.replace(" ", "").lower().startswith("filelock") for d in dependencies)
