"""The process's garbage collector setting (runtime.collector, GC_THRESHOLD)."""
import gc

import pytest
from nameko import config
from nameko.containers import ServiceContainer

from runtime import collector
from runtime.ops import Instrumentation


@pytest.fixture(autouse=True)
def kept_threshold():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


class Bare:
    name = "bare"
    instrumentation = Instrumentation()


def test_a_service_sets_the_youngest_generations_threshold_when_it_is_set_up():
    gc.set_threshold(700, 10, 10)
    with config.patch({"GC_THRESHOLD": 25000}):
        container = ServiceContainer(Bare)
        container.start()
        container.stop()
    assert gc.get_threshold() == (25000, 10, 10)


def test_the_default_is_ten_thousand_and_the_older_generations_keep_their_own():
    gc.set_threshold(700, 7, 9)
    with config.patch({}, clear=True):
        assert collector.configure() == 10_000
    assert gc.get_threshold() == (10_000, 7, 9)


@pytest.mark.parametrize("value", ["0", "-5", "often", None])
def test_a_wrong_threshold_stops_the_service_at_start_naming_the_setting(value):
    gc.set_threshold(700, 10, 10)
    with config.patch({"GC_THRESHOLD": value}):
        container = ServiceContainer(Bare)
        with pytest.raises(ValueError, match="GC_THRESHOLD") as raised:
            container.start()
        container.kill()
    assert "正整数" in str(raised.value) and "positive integer" in str(raised.value)
    assert gc.get_threshold() == (700, 10, 10)
