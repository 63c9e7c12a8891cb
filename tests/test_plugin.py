"""The pytest plugin: fixtures reach users' test suites through the pytest11 entry point."""

from __future__ import annotations

from importlib.metadata import entry_points


def test_plugin_is_registered_as_an_entry_point():
    """pip install registers clarify_auth.pytest_plugin under pytest11."""
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}

    assert plugins.get("clarify_auth") == "clarify_auth.pytest_plugin"


def test_fixtures_work_in_a_users_test_suite(pytester):
    """A user's tests get a started fake and a matching credentials file, with nothing to import."""
    pytester.makepyfile(
        """
        import json

        import clarify_auth


        def test_fixtures(fake_clarify, clarify_credentials_file):
            fake_clarify.on("clarify.selectItems", result={"data": [{"id": "x"}]})
            data = json.loads(clarify_credentials_file.read_text())

            with clarify_auth.ClarifySession(clarify_credentials_file) as session:
                items = session.rpc("clarify.selectItems")

            assert clarify_credentials_file.name == "clarify-credentials.json"
            assert data["apiUrl"] == fake_clarify.api_url
            assert items == {"data": [{"id": "x"}]}
            assert fake_clarify.token_requests == 1


        def test_each_test_gets_a_fresh_fake(fake_clarify):
            assert fake_clarify.token_requests == 0


        def test_discovery_finds_the_file(clarify_credentials_file, monkeypatch):
            monkeypatch.setenv("CLARIFY_CREDENTIALS", str(clarify_credentials_file))
            assert clarify_auth.ClarifySession().rpc("clarify.selectItems")["data"] == []
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=3)


def test_fixtures_are_listed_with_their_docs(pytester):
    """pytest --fixtures shows both fixtures with a description."""
    result = pytester.runpytest_subprocess("--fixtures")

    result.stdout.fnmatch_lines(
        ["*fake_clarify*", "*FakeClarify serving on 127.0.0.1*", "*clarify_credentials_file*"]
    )
