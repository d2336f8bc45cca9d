"""See and replay dead-lettered messages.

A message lands in ``<service>.dead-letters`` when its handler failed more times than
the queue's delivery limit, or when its payload did not fit its contract. Ops list them,
fix the cause, and replay them to the queue they came from (the handler is idempotent,
so a replay of something already handled is a no-op). A pack of events
(:mod:`runtime.packs`) is listed event by event, and replayed whole::

    python -m runtime.deadletters list   review --uri amqp://guest:guest@127.0.0.1/govpm-jinjiang
    python -m runtime.deadletters replay review --uri ... [--all | --event-id ID]
"""
import argparse
import json
import sys

import amqp

from .messaging import dead_letter_names
from .packs import envelopes
from .publisher import connection_params


def _origin(message):
    headers = message.properties.get("application_headers") or {}
    queue = headers.get("x-first-death-queue")
    reason = headers.get("x-first-death-reason")
    if not queue:
        deaths = headers.get("x-death") or []
        if deaths:
            queue = deaths[0].get("queue")
            reason = deaths[0].get("reason")
    return queue, reason


def _summaries(message):
    """One summary per event the message carries (several for a pack, :mod:`runtime.packs`)."""
    queue, reason = _origin(message)
    try:
        bodies = envelopes(json.loads(message.body))
    except (ValueError, TypeError):
        bodies = [{}]
    out = []
    for body in bodies:
        body = body if isinstance(body, dict) else {}
        summary = {
            "event_id": body.get("event_id") or message.properties.get("message_id"),
            "event_type": body.get("event_type"),
            "correlation_id": body.get("correlation_id"),
            "from_queue": queue,
            "reason": reason,
        }
        if len(bodies) > 1:
            summary["pack_of"] = len(bodies)  # replayed, and listed, together
        out.append(summary)
    return out


def _drain(channel, queue, limit):
    taken = []
    while len(taken) < limit:
        message = channel.basic_get(queue, no_ack=False)
        if message is None:
            break
        taken.append(message)
    return taken


def list_dead_letters(uri, service, limit=100):
    """Peek: returns summaries and puts the messages back."""
    _, queue = dead_letter_names(service)
    conn = amqp.Connection(**connection_params(uri))
    conn.connect()
    try:
        channel = conn.channel()
        taken = _drain(channel, queue, limit)
        out = [summary for m in taken for summary in _summaries(m)]
        for message in taken:
            channel.basic_reject(message.delivery_tag, requeue=True)
        return out
    finally:
        conn.close()


def replay(uri, service, event_id=None, limit=1000):
    """Republish dead letters (all, or one event id) to the queue each came from. The
    events of a pack go back together, the one asked for and the rest: those handled
    already are no-ops, as any replay of a handled event."""
    _, queue = dead_letter_names(service)
    conn = amqp.Connection(**connection_params(uri))
    conn.connect()
    replayed = []
    try:
        channel = conn.channel()
        channel.confirm_select()
        for message in _drain(channel, queue, limit):
            summaries = _summaries(message)
            target = summaries[0]["from_queue"]
            if not target or (event_id and all(s["event_id"] != event_id for s in summaries)):
                channel.basic_reject(message.delivery_tag, requeue=True)
                continue
            headers = dict(message.properties.get("application_headers") or {})
            for key in [k for k in headers if k.startswith("x-death") or k.startswith("x-first-death")
                        or k.startswith("x-last-death") or k == "x-delivery-count"]:
                headers.pop(key)
            fresh = amqp.Message(message.body, content_type=message.properties.get("content_type", "application/json"),
                                 delivery_mode=2, message_id=message.properties.get("message_id"),
                                 application_headers=headers)
            channel.basic_publish_confirm(fresh, exchange="", routing_key=target, mandatory=True)
            channel.basic_ack(message.delivery_tag)
            replayed.extend(summaries)
        return replayed
    finally:
        conn.close()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m runtime.deadletters", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("service")
    parser.add_argument("--uri", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--event-id")
    parser.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            rows = list_dead_letters(args.uri, args.service)
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            print(f"{len(rows)} 条死信 / dead letters in {dead_letter_names(args.service)[1]}", file=sys.stderr)
        else:
            if not (args.all or args.event_id):
                print("指定 --all 或 --event-id / give --all or --event-id", file=sys.stderr)
                return 2
            rows = replay(args.uri, args.service, event_id=args.event_id)
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            print(f"已重放 {len(rows)} 条 / replayed {len(rows)}", file=sys.stderr)
    except (OSError, amqp.exceptions.AMQPError) as exc:
        print(f"无法连接代理或队列 / cannot reach the broker or queue: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
