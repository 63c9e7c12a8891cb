"""Run under callgrind by run.py --instructions: set up one contender, then sign N requests.

A run with N=0 does all the same set-up, so the difference over N is the cost of one call.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))

from _contenders import CONTENDERS, RPC_BODY, StaticHeader


def main(name: str, calls: int, credentials: dict[str, object]) -> None:
    if name == "floor: set one header":
        request = requests.Request(
            "POST", str(credentials["apiUrl"]) + "rpc", json=RPC_BODY
        ).prepare()
        headers = request.headers
        for _ in range(calls):
            headers["Authorization"] = "Bearer static-token"
        return
    if name == "floor: static AuthBase":
        request = requests.Request(
            "POST", str(credentials["apiUrl"]) + "rpc", json=RPC_BODY
        ).prepare()
        attach = StaticHeader("Bearer static-token")
    else:
        contender = next(cls for cls in CONTENDERS if cls.name == name)(credentials)
        contender.warm()
        request = requests.Request("POST", contender.rpc_url, json=RPC_BODY).prepare()
        attach = contender.attach  # type: ignore[assignment]
    for _ in range(calls):
        attach(request)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]))
