"""Publish to Clarify's MQTT broker with the integration's basic-auth credentials file.

    pip install 'clarify-auth[mqtt]'
    python examples/mqtt_publish.py [clarify-credentials.json] [--host H --port P --ca-certs PEM]

TLS with certificate verification is always on: by default against the system's
trust store and mqtt.clarify.io:8883.

The local fake of Clarify has no MQTT broker: ``clarify-auth fake --write
clarify-credentials.json --type basic-auth`` writes a basic-auth file to try
the file itself (``clarify-auth check``), while publishing needs Clarify's
broker or a broker of your own (``--host``, ``--port``, ``--ca-certs``).
"""

from __future__ import annotations

import argparse
import sys

from clarify_auth import ClarifyAuthError, mqtt


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "credentials", nargs="?", help="default: $CLARIFY_CREDENTIALS, ./clarify-credentials.json"
    )
    parser.add_argument("--host", default=mqtt.DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=mqtt.DEFAULT_PORT)
    parser.add_argument("--ca-certs", help="a CA bundle to trust instead of the system's")
    args = parser.parse_args(argv[1:])
    try:
        client = mqtt.connect(
            args.credentials, host=args.host, port=args.port, ca_certs=args.ca_certs
        )
    except mqtt.UntrustedBrokerError as exc:  # the advice names this script's flag
        print(f"error: {exc.problem}; pass --ca-certs PEM for a private CA", file=sys.stderr)
        return 1
    except ClarifyAuthError as exc:  # a bad file, refused credentials, an unreachable broker
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        for value in (20.5, 21.0, 21.5):
            client.publish("clarify/example/temperature", str(value), qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()
    print("published 3 readings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
