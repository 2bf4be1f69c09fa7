"""The route guard's memory:// counting paths count exactly like the generic ones."""

from __future__ import annotations

import random

from stemedb.api.guard.counters import Counters, MemoryCounter, Window
from stemedb.api.guard.quota import QuotaMeter, quota_headers
from stemedb.api.guard.ratelimit import RateLimits, rate_headers
from stemedb.config import QuotaConfig, RateLimitConfig


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _limits(clock: FakeClock) -> tuple[MemoryCounter, RateLimits, QuotaMeter]:
    memory = MemoryCounter(clock)
    counters = Counters(memory)
    rates = RateLimits(RateLimitConfig(enabled=True, window_seconds=60), counters)
    quota = QuotaMeter(QuotaConfig(enabled=True, tokens_per_hour=50), counters)
    return memory, rates, quota


def test_guard_keys_are_the_counters_of_hit_and_charge() -> None:
    _, rates, quota = _limits(FakeClock())
    item = rates.counters.item(7, rates.window_seconds)
    assert rates.key("key", "k1", 7) == MemoryCounter.key(item, ("key", "k1"))
    assert rates.key("endpoint", "/v1/x", 7, "key:k1") == MemoryCounter.key(
        item, ("endpoint", "/v1/x", "key:k1")
    )
    quota_item = rates.counters.item(quota.tokens_per_hour, quota.window_seconds)
    assert quota.key("agent") == MemoryCounter.key(quota_item, ("quota", "agent"))


def test_add_each_counts_like_one_hit_per_counter_and_stops_at_the_first_refusal() -> None:
    clock = FakeClock()
    fast, _, _ = _limits(clock)
    slow = MemoryCounter(clock)
    rng = random.Random(4)
    keys = [(limit, 10, "s", str(limit)) for limit in (3, 5, 8)]
    for _ in range(2000):
        clock.now += rng.choice((0.0, 0.5, 3.0))
        chosen = rng.sample(keys, rng.randint(1, 3))
        index, window = fast.add_each(chosen)
        expected: list[Window] = []
        for key in chosen:
            expected.append(slow.add(key))
            if not expected[-1].allowed:
                break
        if not expected[-1].allowed:
            assert (index, window) == (len(expected) - 1, expected[-1])
        else:
            tightest = min(expected, key=lambda w: w.remaining)  # first of equals
            assert (index, window) == (-1, tightest)
        for key in keys:
            assert fast.look(key) == slow.look(key)


def test_add_and_look_agree_with_hit_now_and_peek_now() -> None:
    clock = FakeClock()
    memory, rates, _ = _limits(clock)
    item = rates.counters.item(2, 60)
    for step in range(6):
        clock.now += 25.0 * (step % 2)
        assert memory.add(MemoryCounter.key(item, ("a",))) == memory.hit_now(item, ("b",))
        assert memory.look(MemoryCounter.key(item, ("a",))) == memory.peek_now(item, ("b",))


def test_limit_headers_keep_their_values() -> None:
    window = Window(True, 100, 7, 1_000_059.2)
    assert rate_headers(window, 60, now=1_000_000.0) == [
        (b"ratelimit-policy", b"100;w=60"),
        (b"ratelimit", b"limit=100, remaining=7, reset=60"),
        (b"x-ratelimit-limit", b"100"),
        (b"x-ratelimit-remaining", b"7"),
        (b"x-ratelimit-reset", b"1000060"),
    ]
    refused = Window(False, 100, -3, 1_000_000.5)
    assert rate_headers(refused, 60, now=1_000_000.4)[1] == (
        b"ratelimit",
        b"limit=100, remaining=0, reset=1",
    )
    assert quota_headers(Window(False, 50, -4, 1_003_599.01)) == [
        (b"x-quota-limit", b"50"),
        (b"x-quota-remaining", b"0"),
        (b"x-quota-reset", b"1003600"),
    ]
