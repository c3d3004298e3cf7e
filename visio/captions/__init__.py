"""Live captions: each speaker's audio forwarded by Janus, recognised as they speak, and
sent as captions to the participants who turned them on."""
