"""Expiry counts time the machine spends suspended: a laptop that slept fetches anew."""

from __future__ import annotations

import sys
import time
from functools import partial

import pytest
import responses

from conftest import TOKEN_URL, make_oauth, token_body


class Machine:
    """Clocks of a machine that can be suspended: monotonic stops, boot time and wall go on."""

    def __init__(self) -> None:
        self.monotonic = 5000.0
        self.boottime = 5000.0
        self.wall = 1_800_000_000.0

    def run(self, seconds: float) -> None:
        self.monotonic += seconds
        self.boottime += seconds
        self.wall += seconds

    def suspend(self, seconds: float) -> None:
        self.boottime += seconds
        self.wall += seconds

    def clock_gettime(self, which: int) -> float:
        if which == getattr(time, "CLOCK_BOOTTIME", -1):
            return self.boottime
        return self.monotonic  # CLOCK_MONOTONIC: stands still while suspended (on Linux)


@pytest.fixture
def machine(monkeypatch):
    m = Machine()
    monkeypatch.setattr(time, "monotonic", lambda: m.monotonic)
    monkeypatch.setattr(time, "clock_gettime", m.clock_gettime, raising=False)
    monkeypatch.setattr(time, "time", lambda: m.wall)
    return m


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CLOCK_BOOTTIME is Linux's")
@responses.activate
def test_a_laptop_that_slept_past_expiry_fetches_before_its_first_request(machine):
    """Two hours asleep with a one-hour token: the first request after waking has a new token."""
    responses.post(TOKEN_URL, json=token_body(1, expires_in=3600))
    responses.post(TOKEN_URL, json=token_body(2, expires_in=3600))
    auth = make_oauth()
    assert auth.authorization() == "Bearer test-token-1"
    machine.run(60)

    machine.suspend(2 * 3600)

    assert auth.authorization() == "Bearer test-token-2"
    assert len(responses.calls) == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CLOCK_BOOTTIME is Linux's")
def test_the_default_clock_on_linux_is_boottime():
    """On Linux the expiry clock is CLOCK_BOOTTIME, which counts suspended time."""
    from clarify_auth.tokens import clock as _clock

    clock = _clock.suspend_aware_clock()

    assert isinstance(clock, partial)
    assert clock.args == (time.CLOCK_BOOTTIME,)
    assert abs(clock() - time.clock_gettime(time.CLOCK_BOOTTIME)) < 1


def test_macos_uses_clock_gettime_monotonic(monkeypatch):
    """On macOS, clock_gettime(CLOCK_MONOTONIC) keeps counting during sleep; it is the one."""
    from clarify_auth.tokens import clock as _clock

    calls = []
    monkeypatch.setattr(time, "clock_gettime", lambda which: calls.append(which) or 1.0)

    clock = _clock.suspend_aware_clock("darwin")
    clock()

    assert calls == [time.CLOCK_MONOTONIC]


@pytest.mark.parametrize("platform", ["win32", "freebsd14", "linux-without-boottime"])
def test_other_systems_get_the_wall_guarded_clock(platform, monkeypatch):
    """Where no clock is known to count sleep, monotonic time guarded by the wall clock is used."""
    from clarify_auth.tokens import clock as _clock

    if platform == "linux-without-boottime":
        monkeypatch.delattr(time, "CLOCK_BOOTTIME", raising=False)
        platform = "linux"

    assert isinstance(_clock.suspend_aware_clock(platform), _clock.WallGuardedClock)


def test_the_wall_guarded_clock_counts_a_suspend(machine):
    """Monotonic time stood still while asleep; the wall clock's progress is counted instead."""
    from clarify_auth.tokens import clock as _clock

    clock = _clock.WallGuardedClock()
    machine.run(10)
    assert clock() == pytest.approx(10)

    machine.suspend(7200)

    assert clock() == pytest.approx(7210)


def test_the_wall_guarded_clock_never_goes_back(machine):
    """A wall clock set back (NTP) neither moves the clock backwards nor stops it."""
    from clarify_auth.tokens import clock as _clock

    clock = _clock.WallGuardedClock()
    machine.suspend(100)
    assert clock() == pytest.approx(100)

    machine.wall -= 3600
    machine.run(5)

    assert clock() == pytest.approx(100)
    machine.run(200)
    assert clock() == pytest.approx(205)


@responses.activate
def test_an_injected_clock_is_still_obeyed(clock):
    """Tests (and users) can still inject a clock of their own."""
    responses.post(TOKEN_URL, json=token_body(1, expires_in=100))
    responses.post(TOKEN_URL, json=token_body(2, expires_in=100))
    auth = make_oauth(clock)
    auth.authorization()

    clock.advance(100)

    assert auth.authorization() == "Bearer test-token-2"
