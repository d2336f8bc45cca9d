"""How the relay cuts events into packs (runtime.packs)."""
import json

from contracts.events import SUBSCRIPTIONS, queue_name
from runtime import packs


def messages(keys, size=10):
    return [(key, json.dumps({"n": n, "pad": "x" * size}).encode(), n) for n, key in enumerate(keys)]


def test_a_batch_is_cut_into_packs_by_routing_key_each_key_in_order_capped_by_count():
    keys = ["a"] * 5 + ["b"] + ["a"] * 2 + ["b"]
    groups = packs.group(messages(keys), size=2)
    assert [[item for _, item in g] for g in groups] == [[0, 1], [2, 3], [4, 6], [5, 8], [7]]
    for key in "ab":  # each key's events in their order, across its packs
        mine = [item for g in groups for _, item in g if keys[item] == key]
        assert mine == [n for n, k in enumerate(keys) if k == key]
    assert all(len({keys[item] for _, item in g}) == 1 for g in groups)


def test_a_pack_stays_under_its_byte_cap_and_a_body_is_valid_json_of_its_envelopes():
    msgs = messages(["a"] * 6, size=100)
    one = len(msgs[0][1])
    groups = packs.group(msgs, size=32, max_bytes=3 * one + 4)  # brackets and commas count
    assert [len(g) for g in groups] == [3, 3]
    for g in groups:
        body = packs.body([b for b, _ in g])
        assert len(body) <= 3 * one + 4
        assert [e["n"] for e in packs.envelopes(json.loads(body))] == [item for _, item in g]


def test_a_lone_event_is_sent_as_its_plain_envelope():
    (group,) = packs.group(messages(["a"]), size=32)
    body = packs.body([b for b, _ in group])
    assert body == group[0][0] and packs.envelopes(json.loads(body)) == [json.loads(body)]
    assert packs.group([], size=32) == []


def test_every_subscriber_queue_is_bound_to_one_routing_key_without_wildcards():
    """What makes packing by routing key invisible to subscribers: a queue sees one key,
    whose events keep their order (runtime.packs, "Order")."""
    queues = {}
    for source, event_type, routing_key, subscriber, method in SUBSCRIPTIONS:
        assert "*" not in routing_key and "#" not in routing_key, routing_key
        queues.setdefault(queue_name(source, event_type, subscriber, method), set()).add(routing_key)
    assert all(len(keys) == 1 for keys in queues.values())
