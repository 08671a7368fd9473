"""Realistic sample dumps for the demo: every source, duplicate deliveries, late and invalid records.

Deterministic per hour (seeded by the hour), so regenerating an hour writes identical objects."""

from __future__ import annotations

import gzip
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from event_pipeline.storage import dump_key

USERS = 240
EVENT_WEIGHTS = {
    "page_view": 30, "view_item": 22, "search": 10, "add_to_cart": 12, "purchase": 6, "login": 8,
    "signup": 2, "email_open": 6,
}
PLANS = ("free", "pro", "enterprise")


@dataclass
class HourDumps:
    """The objects of one hour (key -> bytes) and what went into them."""

    files: dict[str, bytes] = field(default_factory=dict)
    lines: Counter = field(default_factory=Counter)  # source -> lines written (duplicate objects included)


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _ms(ts: datetime) -> int:
    return int((ts - datetime(1970, 1, 1)).total_seconds() * 1000)


def _jsonl(lines: list, gz: bool = True) -> bytes:
    data = b"".join((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines)
    # mtime=0 keeps gzip output byte-identical across runs
    return gzip.compress(data, mtime=0) if gz else data


class HourGenerator:
    def __init__(self, hour: datetime, scale: float = 1.0):
        self.hour = hour
        self.rng = random.Random(hour.strftime("%Y%m%d%H"))
        self.scale = scale
        # a long tail: a few heavy users, many occasional ones
        self.weights = [1.0 / (i + 1) ** 0.8 for i in range(USERS)]

    def user(self) -> int:
        return self.rng.choices(range(USERS), weights=self.weights)[0]

    def moment(self) -> tuple[datetime, datetime]:
        """(event_time, received_at): received within the hour, a few seconds after it happened."""
        received = self.hour + timedelta(seconds=self.rng.uniform(1, 3599))
        return received - timedelta(seconds=self.rng.uniform(0, 5)), received

    def event_name(self) -> str:
        return self.rng.choices(list(EVENT_WEIGHTS), weights=list(EVENT_WEIGHTS.values()))[0]

    def n(self, base: int) -> int:
        return max(1, int(base * self.scale))

    def hackle(self) -> list:
        lines = []
        for _ in range(self.n(90)):
            name, (event_time, received) = self.event_name(), self.moment()
            event = {"key": name, "properties": {"platform": self.rng.choice(["ios", "android", "web"])}}
            if name == "purchase":
                event["value"] = self.rng.choice([9900, 13200, 25000, 4500, 99000])
                event["properties"].update(pay_method=self.rng.choice(["CARD", "BANK"]), is_discount=False)
            lines.append({"received_at": _iso(received),
                          "body": {"event": event, "user": {"id": f"u{self.user():04d}"},
                                   "timestamp": _ms(event_time)}})
        t = _iso(self.hour + timedelta(minutes=30))
        lines += [  # invalid on purpose: nested property, text value, no user
            {"received_at": t, "body": {"event": {"key": "purchase", "value": 100, "properties": {"cart": {"n": 2}}},
                                        "user": {"id": "u0001"}}},
            {"received_at": t, "body": {"event": {"key": "purchase", "value": "lots"}, "user": {"id": "u0002"}}},
            {"received_at": t, "body": {"event": {"key": "login"}, "user": {}}},
        ]
        return lines

    def suprsend_event(self, with_key: bool = True) -> dict:
        name, (event_time, _) = self.event_name(), self.moment()
        user = self.user()
        event = {"distinct_id": f"u{user:04d}", "event": name, "$insert_id": f"ss-{self.rng.getrandbits(64):016x}",
                 "$time": _ms(event_time), "brand_id": "default",
                 "properties": {"first_name": f"User{user}", "nested_key_example": {"nested_key1": "v"}}}
        if name == "purchase":
            event["properties"]["spend_amount"] = self.rng.choice([10, 25, 60])
            event["$idempotency_key"] = f"u{user:04d}-purchase-{self.hour:%Y%m%d%H}"
        elif with_key and self.rng.random() < 0.3:
            event["$idempotency_key"] = f"u{user:04d}-{name}-{self.hour:%Y%m%d}"  # same key all day: retries
        if self.rng.random() < 0.1:
            event["properties"]["$attachments"] = [{"url": "https://example.com/invoice.pdf", "filename": "inv"}]
        return event

    def suprsend(self) -> list:
        _, received = self.moment()
        lines = [{"received_at": _iso(received), "body": self.suprsend_event()} for _ in range(self.n(40))]
        for _ in range(2):  # bulk requests: each event its own record
            lines.append({"received_at": _iso(received), "body": [self.suprsend_event() for _ in range(5)]})
        bad = self.suprsend_event(with_key=False)
        lines += [
            {"received_at": _iso(received), "body": {**bad, "event": "$internal_event", "$insert_id": "ss-bad-1"}},
            {"received_at": _iso(received), "body": {**bad, "$idempotency_key": "k" * 300, "$insert_id": "ss-bad-2"}},
            {"received_at": _iso(received), "body": {**bad, "properties": {"ss_flag": 1}, "$insert_id": "ss-bad-3"}},
        ]
        return lines

    def trakio(self) -> list:
        lines = []
        received = self.hour + timedelta(minutes=1)
        for _ in range(self.n(12)):
            user = self.user()
            lines.append({"received_at": _iso(received), "call": "identify",
                          "body": {"distinct_id": f"u{user:04d}",
                                   "properties": {"name": f"User {user}", "email": f"user{user}@example.com",
                                                  "plan": self.rng.choice(PLANS)}}})
            lines.append({"received_at": _iso(received), "call": "alias",
                          "body": {"distinct_id": f"u{user:04d}", "alias": [f"anon-{user:04d}"]}})
        for _ in range(self.n(35)):
            name, (event_time, received) = self.event_name(), self.moment()
            body = {"distinct_id": f"u{self.user():04d}", "event": name, "properties": {"source": "app"},
                    "time": _iso(event_time)}
            if self.rng.random() < 0.5:
                body["channel"] = "mobile_app"
            if self.rng.random() < 0.2:
                body["company_id"] = "acme_ltd"
            lines.append({"received_at": _iso(received), "call": "track" if name != "page_view" else "page_view",
                          "body": body if name != "page_view" else {**body, "url": "https://shop.example.com/"}})
        if self.hour.hour % 6 == 0:
            lines.append({"received_at": _iso(received), "call": "annotate",
                          "body": {"event": "Deployed update", "properties": {"commit": "5ab430d"},
                                   "channel": "Documentation"}})
        event_time, received = self.moment()
        lines += [  # late (2 hours old) but within the limit, then invalid ones
            {"received_at": _iso(received), "call": "track",
             "body": {"distinct_id": "u0003", "event": "login", "time": _iso(self.hour - timedelta(hours=2))}},
            {"received_at": _iso(received), "call": "group", "body": {"distinct_id": "u0004"}},
            {"received_at": _iso(received), "call": "alias", "body": {"distinct_id": "u0005"}},
            {"received_at": _iso(received), "call": "track",
             "body": {"distinct_id": "u0006", "event": "login", "time": "yesterday-ish"}},
        ]
        return lines

    def orbee(self) -> list:
        lines = []
        for _ in range(self.n(30)):
            user = self.user()
            event_time, received = self.moment()
            action, obj = self.rng.choice([("view", "vehicle"), ("submit", "form"), ("start", "chat")])
            lines.append({"received_at": _iso(received), "path": "/collect/12/34/event",
                          "body": {"action": action, "object": obj, "vendor": "Vendor A", "product": "Product 1",
                                   "instance_id": f"chat-{user:04d}", "anonymous_id": f"anon-{user:04d}",
                                   "timestamp": _iso(event_time), "page": "/inventory"}})
        lines.append({"received_at": _iso(self.hour + timedelta(minutes=5)), "path": "/collect/12/34/event",
                      "body": {"action": "submit", "object": "form", "product": "Product 1",
                               "instance_id": "chat-0007"}})  # vendor missing
        return lines


def generate_hour(hour: datetime, scale: float = 1.0) -> HourDumps:
    gen = HourGenerator(hour, scale)
    out = HourDumps()
    for source, lines in (("hackle", gen.hackle()), ("suprsend", gen.suprsend()),
                          ("trakio", gen.trakio()), ("orbee", gen.orbee())):
        out.files[dump_key(source, hour, "part-0000.jsonl.gz")] = _jsonl(lines)
        out.lines[source] += len(lines)
        if source == "hackle":
            # a re-delivery: the collector retried and wrote the first 20 lines again
            out.files[dump_key(source, hour, "part-0000-retry.jsonl.gz")] = _jsonl(lines[:20])
            out.lines[source] += 20
        if source == "suprsend":
            # broken lines: malformed JSON, not UTF-8, an empty object
            broken = [b'{"received_at": "2026-01-01T00:00:00Z", "body": {"distinct_id": "u1",', b"\xff\xfe\x00bad",
                      b"{}"]
            out.files[dump_key(source, hour, "part-0001.jsonl")] = _jsonl(broken, gz=False)
            out.lines[source] += len(broken)
    return out


def upload(fs, bucket: str, dumps: HourDumps) -> None:
    for key, data in dumps.files.items():
        fs.pipe_file(f"{bucket}/{key}", data)
