"""pytest fixtures for testing code that uses clarify-auth, registered on install.

- ``fake_clarify``: a started :class:`clarify_auth.testing.FakeClarify`.
- ``clarify_credentials_file``: a ``clarify-credentials.json`` (OAuth) for it.

Example::

    def test_my_pipeline(fake_clarify, clarify_credentials_file):
        fake_clarify.on("clarify.selectItems", result={"data": []})
        assert my_pipeline.run(clarify_credentials_file) == []
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from clarify_auth.testing import FakeClarify


@pytest.fixture
def fake_clarify() -> Iterator[FakeClarify]:
    """A FakeClarify serving on 127.0.0.1 for the duration of one test."""
    from clarify_auth.testing import FakeClarify  # noqa: PLC0415 - only when a test asks

    with FakeClarify() as fake:
        yield fake


@pytest.fixture
def clarify_credentials_file(fake_clarify: FakeClarify, tmp_path: Path) -> Path:
    """A client-credentials ``clarify-credentials.json`` for ``fake_clarify``, in ``tmp_path``."""
    return fake_clarify.write_credentials(tmp_path / "clarify-credentials.json")
