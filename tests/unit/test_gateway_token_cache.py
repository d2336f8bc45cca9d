"""The gateway's token cache (gateway/auth.py): how long a token's owner is remembered."""
import pytest

from gateway.auth import Principal, TokenCache
from runtime.config import seconds


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


UNIT = Principal("u1", "unit-a", "unit", unit_id="U-A", unit_name="甲单位")
OFFICER = Principal("u2", "officer-cac", "officer", agency="cac")
ADMIN = Principal("u0", "admin", "admin")


def cache(seconds_=1.0):
    clock = Clock()
    return TokenCache(seconds_, clock=clock), clock


def test_an_owner_is_remembered_for_the_configured_seconds_then_looked_up_again():
    tokens, clock = cache(1.0)
    tokens.put("d1", UNIT, token_seconds_left=3600)
    clock.now += 0.9
    assert tokens.get("d1") == UNIT
    clock.now += 0.2
    assert tokens.get("d1") is None


def test_an_entry_never_outlives_its_token():
    tokens, clock = cache(60.0)
    tokens.put("d1", UNIT, token_seconds_left=0.5)
    clock.now += 0.6
    assert tokens.get("d1") is None
    tokens.put("d2", UNIT, token_seconds_left=0)
    assert tokens.get("d2") is None


def test_an_admin_is_never_remembered_and_zero_seconds_remembers_nobody():
    tokens, _ = cache(60.0)
    tokens.put("d0", ADMIN, token_seconds_left=3600)
    assert tokens.get("d0") is None
    off, _ = cache(0)
    off.put("d1", UNIT, token_seconds_left=3600)
    assert off.get("d1") is None


def test_forgetting_a_user_drops_all_their_tokens_and_no_one_elses():
    tokens, _ = cache(60.0)
    tokens.put("d1", UNIT, token_seconds_left=3600)
    tokens.put("d1b", UNIT, token_seconds_left=3600)
    tokens.put("d2", OFFICER, token_seconds_left=3600)
    tokens.forget_user("u1")
    assert tokens.get("d1") is None and tokens.get("d1b") is None
    assert tokens.get("d2") == OFFICER


def test_a_full_cache_drops_what_expired_first_and_starts_again_if_nothing_did(monkeypatch):
    monkeypatch.setattr(TokenCache, "MAX_ENTRIES", 3)
    tokens, clock = cache(10.0)
    tokens.put("old", UNIT, token_seconds_left=1)
    tokens.put("a", UNIT, token_seconds_left=3600)
    tokens.put("b", OFFICER, token_seconds_left=3600)
    clock.now += 2
    tokens.put("c", OFFICER, token_seconds_left=3600)  # full: "old" has expired and goes
    assert [tokens.get(d) for d in ("a", "b", "c")] == [UNIT, OFFICER, OFFICER]
    tokens.put("d", UNIT, token_seconds_left=3600)  # full of good entries: cleared, then kept
    assert tokens.get("a") is None and tokens.get("d") == UNIT


@pytest.mark.parametrize("value, expected", [("1", 1.0), ("0", 0.0), ("2.5", 2.5), (0, 0.0)])
def test_a_number_of_seconds_is_read_as_such(value, expected):
    assert seconds("TOKEN_CACHE_SECONDS", value) == expected


@pytest.mark.parametrize("value", ["-1", "abc", None, "nan", ""])
def test_a_bad_number_of_seconds_is_refused_in_both_languages(value):
    with pytest.raises(ValueError) as info:
        seconds("TOKEN_CACHE_SECONDS", value)
    assert "TOKEN_CACHE_SECONDS" in str(info.value) and "秒" in str(info.value) and "seconds" in str(info.value)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "soon"])
def test_a_deadline_or_a_pause_must_be_more_than_zero_seconds(value):
    with pytest.raises(ValueError) as info:
        seconds("RPC_TIMEOUT_SECONDS", value, positive=True)
    assert "RPC_TIMEOUT_SECONDS" in str(info.value) and "大于 0 的秒数" in str(info.value) \
        and "seconds > 0" in str(info.value)
    assert seconds("RPC_TIMEOUT_SECONDS", "0.5", positive=True) == 0.5
