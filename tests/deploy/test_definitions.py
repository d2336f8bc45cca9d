"""deploy/rabbitmq/definitions.json is exactly what scripts/gen_definitions.py produces now,
and what it produces matches the contracts' topology and the runtime's queue arguments."""
import base64
import json
import os
import re

import pytest

from contracts.events import SUBSCRIPTIONS, queue_name
from runtime.messaging import DEFAULT_DELIVERY_LIMIT, queue_arguments
from tests.deploy.support import AGENCY_SERVICES, DEPLOY, load_generator

gen = load_generator()
COMMITTED = os.path.join(DEPLOY, "rabbitmq", "definitions.json")


def committed():
    with open(COMMITTED, encoding="utf-8") as fh:
        return fh.read()


def test_the_committed_definitions_equal_what_the_generator_produces_now():
    assert committed() == gen.render(gen.build()), \
        "deploy/rabbitmq/definitions.json is stale: run  .venv/bin/python scripts/gen_definitions.py"


def test_the_generator_check_mode_agrees(capsys):
    assert gen.main(["--check"]) == 0


def test_a_renamed_vhost_and_suffixed_users_change_nothing_but_the_names():
    """What the broker test applies to its temporary vhost is the committed file, renamed."""
    users = {s: f"{s}-x1" for s in AGENCY_SERVICES}
    renamed = json.dumps(gen.build(vhost="govpm-tmp", user_names=users))
    renamed = renamed.replace('"govpm-tmp"', '"govpm"')
    for service, name in users.items():
        renamed = renamed.replace(f'"{name}"', f'"{service}"')
    assert json.loads(renamed) == json.loads(committed())


def test_there_is_one_user_per_agency_service_with_a_placeholder_hash_that_cannot_log_in():
    document = json.loads(committed())
    assert [u["name"] for u in document["users"]] == list(AGENCY_SERVICES)
    assert all(u["password_hash"] == "" and u["tags"] == [] for u in document["users"])
    assert document["vhosts"] == [{"name": "govpm"}]


def test_every_subscription_has_its_quorum_queue_with_delivery_limit_and_dead_letter_exchange_and_binding():
    document = json.loads(committed())
    queues = {q["name"]: q for q in document["queues"]}
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in document["bindings"]}
    exchanges = {e["name"]: e for e in document["exchanges"]}
    for source, event_type, routing_key, subscriber, method in SUBSCRIPTIONS:
        name = queue_name(source, event_type, subscriber, method)
        assert queues[name]["arguments"] == queue_arguments(subscriber, DEFAULT_DELIVERY_LIMIT)
        assert queues[name]["arguments"]["x-queue-type"] == "quorum"
        assert (f"{source}.events", name, routing_key) in bindings
        assert exchanges[f"{source}.events"]["type"] == "topic"
        assert exchanges[f"{subscriber}.dlx"]["type"] == "fanout"
        assert (f"{subscriber}.dlx", f"{subscriber}.dead-letters", "") in bindings
        assert queues[f"{subscriber}.dead-letters"]["arguments"] == {"x-queue-type": "quorum"}


def test_rpc_queues_are_declared_as_nameko_declares_them():
    document = json.loads(committed())
    queues = {q["name"]: q for q in document["queues"]}
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in document["bindings"]}
    for service in ("registry", "review", "budget", "security", "filing"):
        assert queues[f"rpc-{service}"]["arguments"] == {}  # nameko re-declares it without arguments
        assert queues[f"rpc-{service}"]["durable"] is True
        assert ("nameko-rpc", f"rpc-{service}", f"{service}.*") in bindings


def test_policies_bound_redelivery_and_dead_letter_every_evt_queue():
    document = json.loads(committed())
    policies = document["policies"]
    for source, event_type, _key, subscriber, method in SUBSCRIPTIONS:
        name = queue_name(source, event_type, subscriber, method)
        matching = sorted((p for p in policies if re.search(p["pattern"], name)), key=lambda p: -p["priority"])
        assert matching[0]["definition"] == {"delivery-limit": DEFAULT_DELIVERY_LIMIT,
                                             "dead-letter-exchange": f"{subscriber}.dlx"}
    fallback = [p for p in policies if p["pattern"] == "^evt-"]
    assert fallback and fallback[0]["definition"]["delivery-limit"] == DEFAULT_DELIVERY_LIMIT


def _owner(resource):
    """The agency service that owns a queue or exchange, by the naming rules."""
    if resource == "nameko-rpc":
        return None
    match = re.fullmatch(r"evt-[a-z0-9_]+-[a-z0-9_]+--([a-z]+)\..+", resource) \
        or re.fullmatch(r"rpc-([a-z]+)", resource) \
        or re.fullmatch(r"rpc\.reply-([a-z]+)-.+", resource) \
        or re.fullmatch(r"([a-z]+)\.(events|dlx|dead-letters)", resource)
    return match.group(1)


def test_each_user_may_configure_and_consume_only_resources_of_its_own():
    document = json.loads(committed())
    names = [q["name"] for q in document["queues"]] + [e["name"] for e in document["exchanges"]]
    names += [f"rpc.reply-{s}-0b0e2b52-6e3c-4a5e-9a39-0f5e3c3b2a11" for s in AGENCY_SERVICES]
    for permission in document["permissions"]:
        user = permission["user"]
        for name in names:
            owner = _owner(name)
            if owner not in (None, user):
                assert not re.fullmatch(permission["configure"], name), (user, "configure", name)
                assert not re.fullmatch(permission["write"], name), (user, "write", name)
                if not name.endswith(".events"):  # read on an events exchange = may bind from it
                    assert not re.fullmatch(permission["read"], name), (user, "read", name)
        for name in names:
            if _owner(name) == user and not name.endswith(".events"):
                assert re.fullmatch(permission["read"], name), (user, "read", name)
                assert re.fullmatch(permission["configure"], name), (user, "configure", name)


def test_each_user_may_bind_only_from_the_events_exchanges_it_subscribes_to_and_only_its_routing_keys():
    document = json.loads(committed())
    permissions = {p["user"]: p for p in document["permissions"]}
    topics = {(t["user"], t["exchange"]): t for t in document["topic_permissions"]}
    for service in AGENCY_SERVICES:
        subscribed = {(s[0], s[2]) for s in SUBSCRIPTIONS if s[3] == service}
        for source in ("registry", "review", "budget", "security", "filing"):
            keys = {key for src, key in subscribed if src == source}
            readable = bool(re.fullmatch(permissions[service]["read"], f"{source}.events"))
            assert readable == bool(keys), (service, source)
            if keys:
                rule = topics[(service, f"{source}.events")]
                assert all(re.fullmatch(rule["read"], k) for k in keys)
                assert not re.fullmatch(rule["read"], "#") and not re.fullmatch(rule["write"], "x")


def test_only_the_gateway_may_send_rpc_requests_today_and_only_to_the_services_it_calls():
    document = json.loads(committed())
    topics = {(t["user"], t["exchange"]): t for t in document["topic_permissions"]}
    reply = "0b0e2b52-6e3c-4a5e-9a39-0f5e3c3b2a11"
    targets = gen.rpc_targets()
    for service in AGENCY_SERVICES:
        rule = topics[(service, "nameko-rpc")]
        assert re.fullmatch(rule["write"], reply) and re.fullmatch(rule["read"], reply)
        assert re.fullmatch(rule["read"], f"{service}.*")
        for other in AGENCY_SERVICES:
            allowed = other in targets[service]
            assert bool(re.fullmatch(rule["write"], f"{other}.get_project")) == allowed, (service, other)
    assert targets["gateway"] == ["budget", "filing", "registry", "review", "security"]


def test_the_password_hash_is_rabbitmqs_salted_sha256():
    # produced by RabbitMQ 3.10 for the password "guest"
    known = "92KkdPiJi1j2D9V9pkfua+NbIAiRLj2JsgEiTWHr2yLuZhgi"
    assert gen.hash_password("guest", salt=base64.b64decode(known)[:4]) == known
    assert gen.hash_password("guest") != gen.hash_password("guest")  # a fresh salt each time


def test_passwords_come_from_the_environment_and_are_never_written_into_the_repository(monkeypatch, tmp_path):
    for service in AGENCY_SERVICES:
        monkeypatch.setenv(f"GOVPM_AMQP_PASSWORD_{service.upper()}", f"pw-{service}")
    with pytest.raises(SystemExit):
        gen.main(["--passwords-from-env"])
    out = tmp_path / "definitions.json"
    assert gen.main(["--passwords-from-env", "--out", str(out), "--vhost", "govpm-jinjiang"]) == 0
    document = json.loads(out.read_text())
    assert all(u["password_hash"] and "pw-" not in u["password_hash"] for u in document["users"])
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    monkeypatch.delenv("GOVPM_AMQP_PASSWORD_FILING")
    with pytest.raises(SystemExit, match="GOVPM_AMQP_PASSWORD_FILING"):
        gen.main(["--passwords-from-env", "--out", str(out)])


def test_a_service_that_hides_its_rpc_targets_behind_cluster_rpc_is_refused(tmp_path):
    for package in list(gen.PACKAGES.values()):
        os.makedirs(tmp_path / package, exist_ok=True)
    (tmp_path / "services" / "review" / "service.py").write_text(
        "from nameko.rpc import ClusterRpc\nclass S:\n    rpc = ClusterRpc()\n")
    with pytest.raises(SystemExit, match="ClusterRpc"):
        gen.rpc_targets(str(tmp_path))
    (tmp_path / "services" / "review" / "service.py").write_text(
        "from nameko.rpc import ServiceRpc\nclass S:\n    r = ServiceRpc('registry')\n")
    assert gen.rpc_targets(str(tmp_path))["review"] == ["registry"]
