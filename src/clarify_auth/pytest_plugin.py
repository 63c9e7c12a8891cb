"""pytest fixtures for testing code that uses clarify-auth, registered on install.

- ``fake_clarify``: a started :class:`clarify_auth.testing.FakeClarify`.
- ``clarify_credentials_file``: a ``clarify-credentials.json`` (OAuth) for it.
- ``mosquitto_broker``: a local mosquitto with TLS and a password, for MQTT code
  (a :class:`MosquittoBroker`); skips, saying why, when ``mosquitto`` or
  ``cryptography`` is not installed.

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

    from clarify_auth._mosquitto import MosquittoBroker
    from clarify_auth.testing import FakeClarify

__all__ = ["MosquittoBroker", "clarify_credentials_file", "fake_clarify", "mosquitto_broker"]


def __getattr__(name: str) -> object:
    """``MosquittoBroker`` loads on first use, so the plugin costs nothing to import."""
    if name == "MosquittoBroker":
        from clarify_auth._mosquitto import MosquittoBroker  # noqa: PLC0415

        return MosquittoBroker
    msg = f"module 'clarify_auth.pytest_plugin' has no attribute {name!r}"
    raise AttributeError(msg)


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


@pytest.fixture(scope="session")
def mosquitto_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """A local mosquitto (TLS on 127.0.0.1, a CA of its own, one user), shared by the session.

    Connect with ``clarify_auth.mqtt.connect(broker.credentials(), host=broker.host,
    port=broker.port, ca_certs=broker.ca_certs)``. Skips the test, saying what to
    install, when ``mosquitto`` or ``cryptography`` is missing.
    """
    from clarify_auth._mosquitto import (  # noqa: PLC0415 - only when a test asks
        BrokerUnavailableError,
        RunningMosquitto,
    )

    try:
        running = RunningMosquitto(tmp_path_factory.mktemp("mosquitto"))
    except BrokerUnavailableError as exc:
        pytest.skip(str(exc))
    try:
        yield running.broker
    finally:
        running.stop()
