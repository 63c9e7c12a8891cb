"""A ClarifySession shipped to Dask worker processes: 100 tasks, and how many token requests."""

from __future__ import annotations

import os

import pytest

distributed = pytest.importorskip("distributed")

from clarify_auth import ClarifySession, FileTokenCache  # noqa: E402
from clarify_auth.testing import FakeClarify  # noqa: E402

pytestmark = [
    # distributed's own start-up and shutdown chatter is not ours to judge
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore:.*[Pp]ort.*:UserWarning"),
]


def select_items(session: ClarifySession, number: int) -> int:
    """A task: one API call through the session it was given."""
    return len(session.rpc("clarify.selectItems", {"query": {"limit": 1}})["data"]) + number


@pytest.fixture(scope="module")
def dask_client():
    """Four worker processes, one thread each."""
    with (
        distributed.LocalCluster(
            n_workers=4, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def fake():
    with FakeClarify() as server:
        server.token_latency = 0.2
        yield server


def test_hundred_tasks_with_a_shared_cache_cause_one_token_request(dask_client, fake, tmp_path):
    """100 tasks on 4 worker processes, a cold session and a shared cache: 1 token request."""
    session = ClarifySession(fake.credentials(), token_cache=FileTokenCache(tmp_path / "tokens"))

    futures = dask_client.map(select_items, [session] * 100, range(100), pure=False)
    results = dask_client.gather(futures)

    assert results == list(range(100))
    assert fake.token_requests == 1
    assert fake.rpc_calls == 100


def select_items_where(session: ClarifySession, number: int) -> tuple[int, int]:
    """A task: one API call; the worker's process ID with the result."""
    return select_items(session, number), os.getpid()


def test_without_the_cache_each_worker_process_fetches_once(dask_client, fake):
    """The same 100 tasks without the cache: one token request per worker process (4), not per task."""
    session = ClarifySession(fake.credentials())

    futures = dask_client.map(select_items_where, [session] * 100, range(100), pure=False)
    results = dask_client.gather(futures)

    assert [result for result, _ in results] == list(range(100))
    workers = {pid for _, pid in results}
    assert len(workers) == 4
    assert fake.token_requests == 4


def test_a_session_with_a_token_travels_with_it(dask_client, fake):
    """A session that already holds a token carries it to the workers: no token request there."""
    session = ClarifySession(fake.credentials())
    session.rpc("clarify.selectItems")

    futures = dask_client.map(select_items, [session] * 100, range(100), pure=False)
    results = dask_client.gather(futures)

    assert results == list(range(100))
    assert fake.token_requests == 1


def test_scattered_session_without_cache(dask_client, fake):
    """A cold session scattered once to every worker: one token request per worker process at most."""
    session = ClarifySession(fake.credentials())
    [remote] = dask_client.scatter([session], broadcast=True)

    futures = dask_client.map(select_items, [remote] * 100, range(100), pure=False)
    results = dask_client.gather(futures)

    assert results == list(range(100))
    assert 1 <= fake.token_requests <= 4
    print(f"\nscattered, without the cache: {fake.token_requests} token requests")  # noqa: T201
