"""clarify_auth.mqtt against a real mosquitto with TLS on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

paho = pytest.importorskip("paho.mqtt.client")

import clarify_auth  # noqa: E402
from _broker import PASSWORD, USER, start_broker  # noqa: E402
from clarify_auth import mqtt  # noqa: E402

if (
    shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists()
):  # pragma: no cover
    if os.environ.get("CLARIFY_AUTH_REQUIRE_MOSQUITTO"):
        pytest.fail("mosquitto is required here (.ci/run installs it)", pytrace=False)
    pytest.skip("mosquitto is not installed (.ci/run installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    running = start_broker(tmp_path_factory.mktemp("broker"))
    yield running
    running.stop()


def basic(password=PASSWORD):
    return clarify_auth.Credentials.from_dict(
        {
            "integration": USER,
            "credentials": {"type": "basic-auth", "clientId": USER, "clientSecret": password},
        }
    )


def test_right_credentials_connect_and_a_publish_round_trips(broker):
    """The credentials file's pair logs in over verified TLS; a message reaches a subscriber."""
    received: list[bytes] = []
    arrived = threading.Event()
    subscriber = mqtt.connect(
        basic(), client_id="subscriber", host="127.0.0.1", port=broker.port, ca_certs=broker.ca
    )
    subscribed = threading.Event()
    subscriber.on_subscribe = lambda *args: subscribed.set()
    subscriber.on_message = lambda client, userdata, message: (
        received.append(message.payload),
        arrived.set(),
    )
    subscriber.subscribe("clarify/test", qos=1)
    assert subscribed.wait(10)
    publisher = mqtt.connect(
        basic(), client_id="publisher", host="127.0.0.1", port=broker.port, ca_certs=broker.ca
    )

    publisher.publish("clarify/test", b"21.5", qos=1).wait_for_publish(10)

    assert arrived.wait(10)
    assert received == [b"21.5"]
    for client in (publisher, subscriber):
        client.loop_stop()
        client.disconnect()


def test_create_client_then_connect_yourself(broker, caplog):
    """create_client gives a configured MQTT 3.1.1 client that connects with paho's own calls."""
    caplog.set_level(logging.DEBUG)
    connected = threading.Event()
    client = mqtt.create_client(
        basic(), client_id="own-loop", host="127.0.0.1", port=broker.port, ca_certs=broker.ca
    )
    client.enable_logger(logging.getLogger("paho"))
    client.on_connect = lambda c, u, f, reason, p: reason.is_failure or connected.set()

    client.connect("127.0.0.1", broker.port)
    client.loop_start()

    assert connected.wait(10)
    assert client.protocol == paho.MQTTv311
    assert "Sending CONNECT" in caplog.text
    assert PASSWORD not in caplog.text  # paho's own DEBUG log of the CONNECT
    client.loop_stop()
    client.disconnect()


def test_wrong_password_is_refused_clearly(broker, caplog):
    """A wrong password gives MQTTConnectionError naming the broker, never the password."""
    caplog.set_level(logging.DEBUG)

    with pytest.raises(mqtt.MQTTConnectionError) as info:
        mqtt.connect(
            basic("test-secret-wrong"), host="127.0.0.1", port=broker.port, ca_certs=broker.ca
        )

    message = str(info.value)
    assert f"127.0.0.1:{broker.port} refused the connection" in message
    assert "test-secret-wrong" not in message + caplog.text
    assert isinstance(info.value, clarify_auth.ClarifyAuthError)


@pytest.mark.parametrize("trust", ["other-ca", "system"], ids=["other-ca", "system-store"])
def test_untrusted_server_certificate_is_refused(broker, trust):
    """A broker whose certificate the client does not trust is refused before any password is sent."""
    ca = broker.other_ca if trust == "other-ca" else None
    logged = broker.log.stat().st_size

    with pytest.raises(mqtt.MQTTConnectionError, match="TLS certificate is not trusted") as info:
        mqtt.connect(basic(), host="127.0.0.1", port=broker.port, ca_certs=ca)

    assert PASSWORD not in str(info.value)
    assert isinstance(info.value, mqtt.UntrustedBrokerError)
    assert str(info.value) == f"{info.value.problem}; pass ca_certs= for a private CA"
    assert "ca_certs=" not in info.value.problem
    seen = broker_log_once_it_shows(broker, "unknown ca", since=logged)
    assert "unknown ca" in seen  # the client's TLS alert: it stopped in the handshake
    assert "New client connected" not in seen  # so no CONNECT, and no password, was sent


def broker_log_once_it_shows(broker, text, *, since, timeout=10.0):
    """The broker's log from byte `since` on, as soon as it shows `text` (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = broker.log.read_bytes()[since:].decode(errors="replace")
        if text in seen or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)


def test_insecure_option_works_for_a_local_broker_only(broker, caplog):
    """Skipping verification is loud and refused for any host that is not loopback."""
    client = mqtt.connect(
        basic(), host="127.0.0.1", port=broker.port, insecure_local_test_broker=True
    )
    client.loop_stop()
    client.disconnect()

    assert "verification is OFF" in caplog.text
    with pytest.raises(clarify_auth.InsecureTransportError, match="loopback"):
        mqtt.create_client(basic(), host="mqtt.clarify.io", insecure_local_test_broker=True)


def test_unreachable_broker(tmp_path):
    """Nothing listening: a clear MQTTConnectionError."""
    from _broker import free_port

    with pytest.raises(mqtt.MQTTConnectionError, match="cannot connect"):
        mqtt.connect(basic(), host="127.0.0.1", port=free_port())


def test_broker_that_never_answers(tmp_path):
    """A TCP peer that never completes the TLS handshake: the timeout applies, quickly."""
    import gc
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    start = time.monotonic()
    try:
        with pytest.raises(mqtt.MQTTConnectionError, match="cannot connect"):
            mqtt.connect(basic(), host="127.0.0.1", port=listener.getsockname()[1], timeout=0.5,
                         insecure_local_test_broker=True)  # fmt: skip
    finally:
        listener.close()
        gc.collect()

    assert time.monotonic() - start < 3


def test_configure_client_sets_the_pair_and_tls(broker):
    """configure_client returns (host, port) and sets user name, password and verified TLS."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)

    where = mqtt.configure_client(client, basic(), ca_certs=broker.ca)

    assert where == ("mqtt.clarify.io", 8883)
    assert client.username == USER
    assert client._ssl_context.verify_mode.name == "CERT_REQUIRED"
    assert client._ssl_context.check_hostname is True
    assert PASSWORD not in repr(client)


def test_client_credentials_are_refused_with_advice(oauth_creds):
    """OAuth client credentials do not log in to MQTT; the error says what to download instead."""
    with pytest.raises(clarify_auth.CredentialsError, match="basic-auth"):
        mqtt.create_client(oauth_creds)


def test_credentials_from_a_path_and_by_discovery(tmp_path, monkeypatch):
    """A path or discovery work as for ClarifySession."""
    import json

    path = tmp_path / "clarify-credentials.json"
    path.write_text(
        json.dumps(
            {
                "integration": USER,
                "credentials": {"type": "basic-auth", "clientId": USER, "clientSecret": PASSWORD},
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLARIFY_CREDENTIALS", raising=False)

    assert mqtt.create_client(path).username == USER
    assert mqtt.create_client(None).username == USER


def test_not_a_paho_client():
    """configure_client wants a paho Client."""
    with pytest.raises(TypeError, match="paho"):
        mqtt.configure_client(object(), basic())  # type: ignore[arg-type]


def test_example_publishes(broker, tmp_path):
    """examples/mqtt_publish.py connects with a credentials file and publishes."""
    import json
    import subprocess
    import sys

    path = tmp_path / "clarify-credentials.json"
    path.write_text(
        json.dumps(
            {
                "integration": USER,
                "credentials": {"type": "basic-auth", "clientId": USER, "clientSecret": PASSWORD},
            }
        )
    )
    example = Path(__file__).resolve().parents[1] / "examples" / "mqtt_publish.py"
    argv = [
        str(path),
        "--host",
        "127.0.0.1",
        "--port",
        str(broker.port),
        "--ca-certs",
        str(broker.ca),
    ]

    result = subprocess.run(
        [sys.executable, str(example), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    refused = subprocess.run(
        [sys.executable, str(example), *argv[:-2]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "published 3 readings" in result.stdout
    assert refused.returncode == 1
    assert "not trusted" in refused.stderr
    assert "pass --ca-certs PEM for a private CA" in refused.stderr  # the flag the user typed
    assert "ca_certs=" not in refused.stderr
    assert PASSWORD not in result.stdout + result.stderr + refused.stderr


def test_the_docs_mqtt_block_runs(broker, tmp_path, monkeypatch):
    """The docs' MQTT block runs as written, pointed at the test broker instead of Clarify's."""
    import functools
    import json
    import re

    page = (Path(__file__).resolve().parents[1] / "docs" / "mqtt.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"^```python mqtt\n(.*?)^```", page, flags=re.DOTALL | re.MULTILINE)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clarify-credentials.json").write_text(
        json.dumps(
            {
                "integration": USER,
                "credentials": {"type": "basic-auth", "clientId": USER, "clientSecret": PASSWORD},
            }
        )
    )

    class ToTestBroker:
        connect = staticmethod(
            functools.partial(mqtt.connect, host="127.0.0.1", port=broker.port, ca_certs=broker.ca)
        )

    assert "from clarify_auth import mqtt" in block
    exec(block.replace("from clarify_auth import mqtt", ""), {"mqtt": ToTestBroker})  # noqa: S102
