"""A Python client of the Visio protocol: joins meetings as a bot with aiortc."""

from visio.client.media import ColourTrack, PcmAudioTrack, TestPatternTrack, tone
from visio.client.session import VisioClient, VisioError

__all__ = ["ColourTrack", "PcmAudioTrack", "TestPatternTrack", "VisioClient", "VisioError", "tone"]
