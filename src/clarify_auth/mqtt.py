"""MQTT with the same credentials file: Clarify's broker takes the Basic Auth pair.

Needs the ``mqtt`` extra (paho-mqtt 2.2 or later): ``pip install 'clarify-auth[mqtt]'``.
The user name is the integration ID (``clientId``) and the password the
``clientSecret`` of a ``basic-auth`` credentials file. TLS with certificate and
host name verification is always on; the one way to turn verification off is
``insecure_local_test_broker=True``, for a broker on 127.0.0.1 only.

Example:
    >>> from clarify_auth import mqtt
    >>> client = mqtt.connect("clarify-credentials.json")  # doctest: +SKIP
    >>> client.publish("my/topic", b"21.5")  # doctest: +SKIP
"""

from __future__ import annotations

import gc
import logging
import os
import ssl
import threading
import warnings
from typing import Any

try:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
except ImportError:  # pragma: no cover - the test extra installs it
    msg = "clarify_auth.mqtt needs the 'mqtt' extra: pip install 'clarify-auth[mqtt]'"
    raise ImportError(msg) from None

from clarify_auth._errors import ClarifyAuthError, CredentialsError, InsecureTransportError
from clarify_auth._urls import is_loopback_host
from clarify_auth.credentials.model import BasicAuthCredentials, Credentials, load_credentials

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MQTTConnectionError",
    "UntrustedBrokerError",
    "configure_client",
    "connect",
    "create_client",
]

logger = logging.getLogger("clarify_auth")

DEFAULT_HOST = "mqtt.clarify.io"
DEFAULT_PORT = 8883
_DEFAULT_CONNECT_TIMEOUT_S = 10.0


class MQTTConnectionError(ClarifyAuthError):
    """The broker could not be reached, was not trusted, or refused the credentials."""


class UntrustedBrokerError(MQTTConnectionError):
    """The broker's TLS certificate is not trusted: a private CA needs ``ca_certs=``.

    ``problem`` is the message without that advice, for a program that takes
    the CA bundle its own way (``examples/mqtt_publish.py`` names its
    ``--ca-certs`` flag instead).

    Example:
        >>> error = UntrustedBrokerError("MQTT broker h:8883: its TLS certificate is not trusted")
        >>> str(error)
        'MQTT broker h:8883: its TLS certificate is not trusted; pass ca_certs= for a private CA'
    """

    def __init__(self, problem: str) -> None:
        """Keep ``problem``; the message adds what to pass."""
        super().__init__(f"{problem}; pass ca_certs= for a private CA")
        self.problem = problem


def configure_client(
    client: paho.Client,
    credentials: Credentials | str | os.PathLike[str] | None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    ca_certs: str | os.PathLike[str] | None = None,
    insecure_local_test_broker: bool = False,
) -> tuple[str, int]:
    """Set the user name, password and TLS of an existing paho ``Client``.

    Args:
        client: A ``paho.mqtt.client.Client``.
        credentials: ``basic-auth`` :class:`Credentials`, a path to such a file,
            or ``None`` for :func:`clarify_auth.load_credentials` discovery.
        host: The broker; Clarify's by default.
        port: The TLS port; 8883 by default.
        ca_certs: A CA bundle to trust; ``None`` means the system's trust store.
        insecure_local_test_broker: Skip certificate verification. Only for a
            broker on a loopback address; logged as a warning.

    Returns:
        ``(host, port)``, to pass to ``client.connect``.

    Raises:
        CredentialsError: The credentials are not ``basic-auth`` (the message
            says what to download instead) or cannot be loaded.
        InsecureTransportError: Verification was to be skipped for a host that
            is not loopback.
    """
    if not isinstance(client, paho.Client):
        raise TypeError(f"expected a paho.mqtt.client.Client, got {type(client).__name__}")
    inner = _basic_credentials(credentials)
    if insecure_local_test_broker and not is_loopback_host(host):
        raise InsecureTransportError(
            f"refusing to skip TLS verification for {host}: insecure_local_test_broker is "
            "for a test broker on a loopback address only"
        )
    client.username_pw_set(inner.client_id, inner.client_secret.get_secret_value())
    context = ssl.create_default_context(cafile=os.fspath(ca_certs) if ca_certs else None)
    if insecure_local_test_broker:
        logger.warning(
            "TLS certificate verification is OFF for the MQTT broker %s:%s (test broker only)",
            host,
            port,
        )
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    client.tls_set_context(context)
    return host, port


def create_client(
    credentials: Credentials | str | os.PathLike[str] | None,
    *,
    client_id: str = "",
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    ca_certs: str | os.PathLike[str] | None = None,
    insecure_local_test_broker: bool = False,
) -> paho.Client:
    """A new MQTT 3.1.1 paho ``Client`` configured by :func:`configure_client` (not connected).

    Connect it with ``client.connect(host, port)``, or use :func:`connect`, which
    also waits for the broker's answer and raises a clear error.
    """
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
    configure_client(
        client,
        credentials,
        host=host,
        port=port,
        ca_certs=ca_certs,
        insecure_local_test_broker=insecure_local_test_broker,
    )
    return client


def connect(
    credentials: Credentials | str | os.PathLike[str] | None = None,
    *,
    client_id: str = "",
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    ca_certs: str | os.PathLike[str] | None = None,
    timeout: float = _DEFAULT_CONNECT_TIMEOUT_S,
    insecure_local_test_broker: bool = False,
) -> paho.Client:
    """Create a client, connect it, start its network loop, and wait for the broker's answer.

    Returns:
        A connected client whose loop runs on a background thread; call
        ``client.loop_stop()`` and ``client.disconnect()`` when done.

    Raises:
        MQTTConnectionError: The broker could not be reached in ``timeout``
            seconds, its certificate is not trusted, or it refused the
            credentials. The message names the broker, never the password.
    """
    client = create_client(
        credentials,
        client_id=client_id,
        host=host,
        port=port,
        ca_certs=ca_certs,
        insecure_local_test_broker=insecure_local_test_broker,
    )
    answered = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(
        _client: paho.Client, _userdata: object, _flags: object, reason: Any, _props: object
    ) -> None:
        outcome["reason"] = reason
        answered.set()

    client.on_connect = on_connect
    client.connect_timeout = timeout  # the TCP connect and TLS handshake, too
    where = f"MQTT broker {host}:{port}"
    with warnings.catch_warnings():
        # paho-mqtt 2.2 leaves its TLS socket to the garbage collector when the
        # handshake fails inside connect(); it is collected here, quietly.
        warnings.simplefilter("ignore", ResourceWarning)
        failure = _open(client, host, port, where)
        gc.collect()
    if failure is not None:
        raise failure
    client.loop_start()
    if not answered.wait(timeout):
        _close(client)
        raise MQTTConnectionError(f"{where}: no answer to CONNECT within {timeout:g} s")
    reason = outcome["reason"]
    if reason.is_failure:
        _close(client)
        raise MQTTConnectionError(
            f"{where} refused the connection: {reason}; check that the credentials file "
            "is the integration's basic-auth file (user name = integration ID)"
        )
    return client


def _open(client: paho.Client, host: str, port: int, where: str) -> MQTTConnectionError | None:
    """Connect; return why it failed, or None (paho's exception dies with this frame)."""
    try:
        client.connect(host, port, keepalive=60)
    except ssl.SSLCertVerificationError as exc:
        return UntrustedBrokerError(
            f"{where}: its TLS certificate is not trusted ({exc.verify_message})"
        )
    except (OSError, ssl.SSLError) as exc:
        return MQTTConnectionError(f"{where}: cannot connect ({type(exc).__name__}: {exc})")
    return None


def _close(client: paho.Client) -> None:
    """Give up on a connection attempt without leaving a socket open."""
    client.disconnect()
    client.loop_stop()
    sock = client.socket()
    if sock is not None:
        sock.close()


def _basic_credentials(
    credentials: Credentials | str | os.PathLike[str] | None,
) -> BasicAuthCredentials:
    if not isinstance(credentials, Credentials):
        credentials = load_credentials(credentials)
    inner = credentials.credentials
    if not isinstance(inner, BasicAuthCredentials):
        raise CredentialsError(
            "credentials.type: is 'client-credentials', but Clarify's MQTT broker takes "
            "Basic Auth: in Clarify, add a 'basic-auth' credential to the integration and "
            "use the credentials file it offers for download"
        )
    return inner
