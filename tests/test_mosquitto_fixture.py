"""The mosquitto_broker fixture: a local TLS mosquitto for users' MQTT tests, or a clear skip."""

from __future__ import annotations

import dataclasses
import os
import sys
import threading

import pytest

paho = pytest.importorskip("paho.mqtt.client")

from clarify_auth import _mosquitto, mqtt  # noqa: E402

try:
    _mosquitto.find_mosquitto()
except _mosquitto.BrokerUnavailableError:  # pragma: no cover - CI installs mosquitto
    if os.environ.get("CLARIFY_AUTH_REQUIRE_MOSQUITTO"):
        pytest.fail("mosquitto is required here (.ci/run installs it)", pytrace=False)


def test_a_client_logs_in_over_verified_tls_and_publishes(mosquitto_broker, tmp_path):
    """The broker's credentials file and CA connect with TLS verified; a message round-trips."""
    path = mosquitto_broker.write_credentials(tmp_path / "clarify-credentials.json")
    received: list[bytes] = []
    subscribed, arrived = threading.Event(), threading.Event()
    client = mqtt.connect(
        path,
        host=mosquitto_broker.host,
        port=mosquitto_broker.port,
        ca_certs=mosquitto_broker.ca_certs,
    )
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_message = lambda c, u, message: (received.append(message.payload), arrived.set())
    client.subscribe("fixture/test", qos=1)
    assert subscribed.wait(10)

    client.publish("fixture/test", b"21.5", qos=1).wait_for_publish(10)

    assert arrived.wait(10)
    assert received == [b"21.5"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert mosquitto_broker.password not in repr(mosquitto_broker)
    client.loop_stop()
    client.disconnect()


def test_a_wrong_password_is_refused(mosquitto_broker):
    """The broker checks the password, as Clarify's does: another one is refused."""
    wrong = dataclasses.replace(mosquitto_broker, password="not-the-password").credentials()

    with pytest.raises(mqtt.MQTTConnectionError, match="refused"):
        mqtt.connect(
            wrong,
            host=mosquitto_broker.host,
            port=mosquitto_broker.port,
            ca_certs=mosquitto_broker.ca_certs,
        )


@pytest.mark.parametrize(
    ("missing", "reason"),
    [
        ("mosquitto", "mosquitto is not installed: apt-get install mosquitto"),
        ("cryptography", "cryptography is not installed"),
    ],
)
def test_the_fixture_skips_saying_what_to_install(missing, reason, pytester, monkeypatch):
    """Without mosquitto or cryptography a test using the fixture is skipped with the fix."""
    if missing == "mosquitto":
        monkeypatch.setattr(_mosquitto.shutil, "which", lambda name: None)
        monkeypatch.setattr(_mosquitto, "_FALLBACK_FOLDERS", ())
    else:
        monkeypatch.setitem(sys.modules, "cryptography", None)
    pytester.makepyfile("def test_mqtt(mosquitto_broker):\n    pass\n")

    result = pytester.runpytest("-rs")

    result.assert_outcomes(skipped=1)
    assert reason in result.stdout.str()


def test_the_broker_type_is_importable_from_the_plugin_for_annotations():
    """clarify_auth.pytest_plugin.MosquittoBroker is the fixture's type; other names do not exist."""
    from clarify_auth import pytest_plugin

    assert pytest_plugin.MosquittoBroker is _mosquitto.MosquittoBroker
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = pytest_plugin.nope
