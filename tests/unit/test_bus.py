"""cluster.bus: messages between server processes are signed, timed and checked."""

from __future__ import annotations

import json
import time

import pytest

from visio.cluster import bus
from visio.cluster.bus import BadMessage, open_sealed, seal

SECRET = b"a cluster secret of thirty-two bytes!"


def test_a_sealed_message_opens_with_the_same_secret():
    raw = seal(SECRET, "process-a", "end", {"room": "abc-defg-hij"})
    assert open_sealed(SECRET, raw) == ("end", "process-a", {"room": "abc-defg-hij"})


@pytest.mark.parametrize(
    "raw",
    [
        seal(b"another secret", "a", "end", {"room": "abc-defg-hij"}),
        "0" * 64 + '.{"k":"end","f":"a","t":0,"b":{}}',
        "no signature at all",
        "",
    ],
)
def test_a_message_not_signed_with_the_secret_is_refused(raw):
    with pytest.raises(BadMessage, match="signature"):
        open_sealed(SECRET, raw)


def signed(payload: object) -> str:
    import hashlib
    import hmac

    text = json.dumps(payload)
    return hmac.new(SECRET, text.encode(), hashlib.sha256).hexdigest() + "." + text


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([1, 2], "not an object"),
        ({"k": "end", "f": "a", "t": time.time()}, "missing"),
        ({"k": 3, "f": "a", "t": time.time(), "b": {}}, "missing"),
        ({"k": "end", "f": "a", "t": "now", "b": {}}, "too old"),
        ({"k": "end", "f": "a", "t": time.time() - 3600, "b": {}}, "too old"),
        ({"k": "end", "f": "a", "t": time.time() + 3600, "b": {}}, "future"),
    ],
)
def test_a_signed_but_malformed_or_stale_message_is_refused(payload, reason):
    with pytest.raises(BadMessage, match=reason):
        open_sealed(SECRET, signed(payload))


def test_a_batch_delivers_each_item_and_drops_the_bad_ones_alone():
    delivered, dropped = [], []
    hub = bus.Bus.__new__(bus.Bus)  # no Redis needed to read what arrives
    hub.secret, hub.dropped = SECRET, 0
    hub._handlers = {"deliver": lambda sender, body: delivered.append((sender, body))}
    items = [{"k": "deliver", "b": {"n": 1}}, {"k": "nonsense", "b": {}}, "x", {"k": "deliver"}]
    items.append({"k": "deliver", "b": {"n": 2}})
    hub._receive(seal(SECRET, "edge", bus.BATCH, {"items": items}))
    dropped.append(hub.dropped)
    assert delivered == [("edge", {"n": 1}), ("edge", {"n": 2})]
    assert dropped == [3]
