"""The benchmark's consumer floor consumes as the suite's subscriptions do."""
from bench import floor
from runtime.messaging import DEFAULT_PREFETCH


def test_the_consumer_floor_uses_the_subscriptions_prefetch():
    assert floor.PREFETCH == DEFAULT_PREFETCH
