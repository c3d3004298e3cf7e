"""The running conference: meetings, the people in them, the lobby, moderation, and the
signalling session of each client.

A join reads downward: `signalling` (one client's frames) → `meetings` (the running
meetings of this process: enter, wait, resume, end) → `meeting` (one meeting's people and
media on Janus) → `participant`. `lobby` holds who waits, `moderation` what moderators may
do. Nothing here knows which transport carries a client's frames: a participant is reached
through its `Outbox`.
"""
