"""clarify_auth.pyclarify.Client: pyclarify's methods on clarify-auth's tokens and session."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

import clarify_auth
from _pyclarify_answers import INTEGRATION, ITEM_ID, answer_like_clarify
from clarify_auth.pyclarify import Client
from clarify_auth.testing import FakeClarify
from conftest import run_bare_python

SECRET = "test-secret-pyclarify-do-not-show"


@pytest.fixture
def fake():
    """A FakeClarify that answers pyclarify's methods in Clarify's schemas."""
    with FakeClarify(integration=INTEGRATION, client_secret=SECRET) as server:
        yield answer_like_clarify(server)


def accepted_connections(fake: FakeClarify) -> list[object]:
    """Record each connection the fake accepts from now on (its server's addresses)."""
    accepted: list[object] = []
    server = fake._server
    accept = server.get_request

    def get_request():
        connection = accept()
        accepted.append(connection[1])
        return connection

    server.get_request = get_request
    return accepted


def bearer_tokens(fake: FakeClarify) -> set[str]:
    return {
        r.headers["Authorization"].removeprefix("Bearer ")
        for r in fake.requests
        if r.headers.get("Authorization", "").startswith("Bearer ")
    }


# -- pyclarify's methods, pyclarify's models ------------------------------------------


def test_select_items_returns_pyclarifys_item_selection(fake):
    """select_items answers pyclarify's Response with an ItemSelection holding the item."""
    from pyclarify.views.generics import ItemSelection, Response

    with Client(fake.credentials()) as client:
        response = client.select_items(limit=10)

    assert isinstance(response, Response)
    assert response.error is None
    assert isinstance(response.result, ItemSelection)
    assert [item.id for item in response.result.data] == [ITEM_ID]
    assert response.result.data[0].attributes.name == "Boiler temperature"
    assert fake.requests[-1].json["method"] == "clarify.selectItems"


def test_insert_returns_pyclarifys_insert_response(fake):
    """insert sends integration.insert with the integration ID and answers an InsertResponse."""
    from pyclarify import DataFrame
    from pyclarify.views.dataframe import InsertResponse

    data = DataFrame(
        series={"boiler-temp": [21.5, 22.0]},
        times=["2026-11-01T21:50:06Z", "2026-11-01T21:51:06Z"],
    )

    with Client(fake.credentials()) as client:
        response = client.insert(data)

    assert response.error is None
    assert isinstance(response.result, InsertResponse)
    assert response.result.signalsByInput["boiler-temp"].created is True
    sent = fake.requests[-1].json
    assert sent["method"] == "integration.insert"
    assert sent["params"]["integration"] == INTEGRATION
    assert sent["params"]["data"]["series"] == {"boiler-temp": [21.5, 22.0]}


def test_save_signals_returns_pyclarifys_save_signals_response(fake):
    """save_signals sends integration.saveSignals and answers a SaveSignalsResponse."""
    from pyclarify import Signal
    from pyclarify.views.signals import SaveSignalsResponse

    with Client(fake.credentials()) as client:
        response = client.save_signals(input_ids=["boiler-temp"], signals=[Signal(name="Boiler")])

    assert response.error is None
    assert isinstance(response.result, SaveSignalsResponse)
    assert response.result.signalsByInput["boiler-temp"].updated is False
    assert fake.requests[-1].json["params"]["signalsByInput"]["boiler-temp"]["name"] == "Boiler"


def test_an_http_error_is_pyclarifys_error_response(fake):
    """A 401 that survives the one retry reaches pyclarify's own error handling, as with pyclarify."""
    fake.reject_rpc_calls(2)

    with Client(fake.credentials()) as client:
        response = client.select_items()

    assert response.result is None
    assert response.error.code == 401
    assert fake.rpc_calls == 2


def test_the_client_is_a_pyclarify_client(fake):
    """Client subclasses pyclarify.Client, so code typed against pyclarify takes it."""
    import pyclarify

    with Client(fake.credentials()) as client:
        assert isinstance(client, pyclarify.Client)
        assert isinstance(client.session, clarify_auth.ClarifySession)
        assert client.base_url == fake.rpc_url


# -- tokens: shared, refreshed, retried -----------------------------------------------


def test_ten_clients_cost_one_token_request(fake):
    """Ten clients from one credentials file, each calling, send one token request."""
    clients = [Client(fake.credentials()) for _ in range(10)]

    for client in clients:
        assert client.select_items().error is None
        client.close()

    assert fake.token_requests == 1
    assert fake.rpc_calls == 10


@pytest.mark.parametrize("shared_client", [True, False], ids=["one-client", "a-client-each"])
def test_thirty_two_threads_starting_cold_send_one_token_request(fake, shared_client):
    """32 threads calling at once on a cold start, on one client or 32, cost one token request."""
    fake.token_latency = 0.3
    one = Client(fake.credentials())
    barrier = threading.Barrier(32)

    def call(_):
        client = one if shared_client else Client(fake.credentials())
        barrier.wait()
        return client.select_items().error

    with ThreadPoolExecutor(32) as pool:
        errors = list(pool.map(call, range(32)))

    assert errors == [None] * 32
    assert fake.token_requests == 1
    assert fake.rpc_calls == 32


def test_the_file_cache_serves_a_client_that_shares_nothing_in_memory(fake, tmp_path):
    """With token_cache=, a client with a private in-process token still reads the file's token."""
    cache = clarify_auth.FileTokenCache(tmp_path / "tokens")

    with Client(fake.credentials(), token_cache=cache) as first:
        first.select_items()
    with Client(fake.credentials(), token_cache=cache, shared=False) as second:
        response = second.select_items()

    assert response.error is None
    assert fake.token_requests == 1


def test_calls_reuse_pooled_connections(fake):
    """Twenty calls open two connections in all: one for the token, one reused for the calls."""
    accepted = accepted_connections(fake)

    with Client(fake.credentials()) as client:
        for _ in range(20):
            assert client.select_items().error is None

    assert fake.rpc_calls == 20
    assert len(accepted) == 2


def test_a_revoked_token_is_refreshed_once_and_the_call_succeeds(fake):
    """After the server revokes the token, the next call gets 401, one new token, and its answer."""
    with Client(fake.credentials()) as client:
        client.select_items()
        fake.revoke_tokens()

        response = client.select_items()

    assert response.error is None
    assert [item.id for item in response.result.data] == [ITEM_ID]
    assert fake.token_requests == 2
    assert [r.status for r in fake.requests if r.path == "/v1/rpc"] == [200, 401, 200]


def test_get_token_and_refresh_token_work_as_pyclarifys(fake):
    """authentication.get_token() returns a live token; refresh_token() a new one."""
    with Client(fake.credentials()) as client:
        first = client.authentication.get_token()
        again = client.authentication.get_token()
        second = client.authentication.refresh_token()

    assert first == again
    assert second != first
    assert fake.is_valid_token(second)
    assert fake.token_requests == 2


def test_basic_auth_credentials_sign_with_basic_and_have_no_token(fake):
    """With basic-auth credentials calls carry the Basic pair; get_token() is None."""
    with Client(fake.credentials("basic-auth")) as client:
        response = client.select_items()

        assert client.authentication.get_token() is None

    assert response.error is None
    assert fake.requests[-1].headers["Authorization"].startswith("Basic ")
    assert fake.token_requests == 0


def test_rejected_credentials_raise_clarify_auths_token_error(fake):
    """A token endpoint that refuses the client raises TokenError (pyclarify's own: AuthError)."""
    fake.fail_token_requests(1, status=401)

    with Client(fake.credentials()) as client, pytest.raises(clarify_auth.TokenError) as caught:
        client.select_items()

    assert caught.value.error == "access_denied"
    assert fake.rpc_calls == 0


def test_requests_have_the_sessions_timeout(fake):
    """A call that the server answers too slowly times out instead of hanging."""
    fake.rpc_latency = 0.5

    with (
        Client(fake.credentials(), timeout=(5, 0.1)) as client,
        pytest.raises(requests.exceptions.ReadTimeout),
    ):
        client.select_items()
    while not any(r.path == "/v1/rpc" for r in fake.requests):  # its late answer, while captured
        threading.Event().wait(0.05)


# -- credentials: where they come from, where they go -------------------------------------


def test_credentials_go_only_to_the_api_origin(fake):
    """A client pointed at another origin sends it no Authorization and never refreshes for it."""
    with FakeClarify(integration=INTEGRATION) as other, Client(fake.credentials()) as client:
        client.select_items()
        client.base_url = other.rpc_url

        response = client.select_items()

        seen = other.requests

    assert response.error.code == 401
    assert [r.path for r in seen] == ["/v1/rpc"]
    assert "Authorization" not in seen[0].headers
    assert fake.token_requests == 1


@pytest.mark.parametrize("form", ["str", "Path", "Credentials", "CLARIFY_CREDENTIALS", "cwd"])
def test_credentials_as_a_path_an_object_or_discovered(fake, form, tmp_path, monkeypatch):
    """Client takes what ClarifySession takes: a path, Credentials, or None for discovery."""
    path = fake.write_credentials(tmp_path / "clarify-credentials.json")
    monkeypatch.chdir(tmp_path)
    if form == "CLARIFY_CREDENTIALS":
        moved = path.rename(tmp_path / "elsewhere.json")
        monkeypatch.setenv("CLARIFY_CREDENTIALS", str(moved))
    given = {"str": str(path), "Path": Path(path), "Credentials": fake.credentials()}.get(form)

    with Client(given) as client:
        response = client.select_items()

    assert response.error is None
    assert client.authentication.integration_id == INTEGRATION
    assert client.authentication.api_url == fake.api_url


def test_credentials_are_chosen_when_the_client_is_built(fake):
    """authenticate() with anything but the client's session is a TypeError saying so."""
    with Client(fake.credentials()) as client, pytest.raises(TypeError, match=r"Client\("):
        client.authenticate("other-credentials.json")


def test_no_secret_or_token_in_repr_str_or_attributes(fake):
    """repr and str of the client and its authentication show neither secret nor token."""
    with Client(fake.credentials()) as client:
        client.select_items()
        (token,) = bearer_tokens(fake)
        shown = [repr(client), str(client), repr(client.authentication), str(client.authentication)]
        authentication = client.authentication
        kept = [
            repr(vars(client)),
            repr(client.headers),
            *(repr(getattr(authentication, name)) for name in authentication.__slots__),
        ]

    assert shown[0] == (
        f"Client(integration={INTEGRATION!r}, api_url={fake.api_url!r}, api_version='1.1')"
    )
    assert shown[2] == f"Authentication(integration_id={INTEGRATION!r}, api_url={fake.api_url!r})"
    for text in shown + kept:
        assert SECRET not in text
        assert token not in text
    assert "Authorization" not in client.headers


# -- api_version ------------------------------------------------------------------------


def test_api_version_none_is_pyclarifys_default(fake):
    """api_version=None sends pyclarify's own default version, which pyclarify also uses."""
    import pyclarify

    with Client(fake.credentials()) as client:
        client.select_items()

    assert client.api_version == pyclarify.__API_version__
    assert fake.requests[-1].headers["X-API-Version"] == pyclarify.__API_version__


def test_api_version_is_sent_and_used_by_pyclarify(fake):
    """An explicit api_version is the header and pyclarify's own api_version."""
    with Client(fake.credentials(), api_version="1.2") as client:
        client.select_items()

    assert client.api_version == "1.2"
    assert fake.requests[-1].headers["X-API-Version"] == "1.2"
    assert fake.requests[-1].headers["User-Agent"].startswith("PyClarify/")
    assert "clarify-auth/" in fake.requests[-1].headers["User-Agent"]


def test_a_malformed_api_version_is_a_configuration_error(fake):
    """api_version is checked as ClarifySession checks it, before anything is sent."""
    with pytest.raises(clarify_auth.ConfigurationError, match="api_version"):
        Client(fake.credentials(), api_version="latest")

    assert fake.requests == []


# -- the extra ----------------------------------------------------------------------------


def test_without_the_extra_the_import_error_names_it():
    """Importing clarify_auth.pyclarify without pyclarify raises one line naming the extra."""
    code = "import sys; sys.modules['pyclarify'] = None; import clarify_auth.pyclarify"

    result = run_bare_python(code, check=False)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "ImportError: clarify_auth.pyclarify needs the 'pyclarify' extra: "
        "pip install 'clarify-auth[pyclarify]'"
    )
    assert "During handling" not in result.stderr


def test_public_names():
    """clarify_auth.pyclarify exports Client and nothing else."""
    import clarify_auth.pyclarify as module

    assert module.__all__ == ["Client"]
