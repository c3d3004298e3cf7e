"""Janus' own refusal of a publisher the server did not let publish: defence in depth
behind the server's check (visio.conference.rights).

Every Janus room of a meeting is created with an empty list of allowed tokens, so Janus
refuses a publisher that does not join with one on it. A participant's token for a target
(camera, screen) is a keyed hash of their id; it is on the list of each of the meeting's
rooms while `stage.may_publish` lets them publish that target, and only then. The path
that publishes (Meeting.publish) joins with the token but never decides what is on the
list: a publication that slipped past the server's check is still refused, by Janus.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING

from visio.conference.stage import RIGHT_OF_TARGET, Stage, may_publish

if TYPE_CHECKING:
    from visio.conference.participant import Participant


def new_key() -> str:
    """A meeting's key for its publish tokens (kept with the meeting, for a takeover)."""
    return secrets.token_hex(16)


def publish_token(key: str, participant_id: str, target: str) -> str:
    digest = hmac.new(key.encode(), f"{participant_id}/{target}".encode(), hashlib.sha256)
    return f"{target}-{digest.hexdigest()[:32]}"


def allowed_tokens(key: str, stage: Stage, people: Iterable[Participant]) -> set[str]:
    """The tokens of everyone who may publish now, for each target they may publish."""
    return {
        publish_token(key, person.id, target)
        for person in people
        for target in RIGHT_OF_TARGET
        if may_publish(stage, person, target)
    }
