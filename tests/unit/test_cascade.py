"""visio.janus.cascade without Janus: stream descriptions and the checks made before asking."""

from __future__ import annotations

import pytest

from visio.janus.cascade import FeedStream, _checked, extmap_id, feed_streams_of

# A publisher's own `configured` reply from Janus 1.1.2 (a browser camera: Opus + VP8
# simulcast), trimmed.
CONFIGURED = {
    "videoroom": "event",
    "configured": "ok",
    "streams": [
        {"type": "audio", "mindex": 0, "mid": "0", "codec": "opus", "fec": True},
        {"type": "video", "mindex": 1, "mid": "1", "codec": "vp8", "simulcast": True},
        {"type": "video", "mindex": 2, "mid": "2", "disabled": True},
    ],
}


def test_streams_from_a_publish_reply_become_remote_publisher_streams():
    streams = feed_streams_of(CONFIGURED)
    assert [s.remote(audiolevel_ext_id=1) for s in streams] == [
        {
            "mid": "0",
            "mindex": 0,
            "type": "audio",
            "codec": "opus",
            "fec": True,
            "audiolevel_ext_id": 1,
        },
        {"mid": "1", "mindex": 1, "type": "video", "codec": "vp8", "simulcast": True},
        # Janus gives no codec for a disabled stream but asks one for every stream.
        {"mid": "2", "mindex": 2, "type": "video", "codec": "vp8", "disabled": True},
    ]


def test_data_streams_need_no_codec():
    assert FeedStream(mindex=0, mid="0", type="data").remote() == {
        "mid": "0",
        "mindex": 0,
        "type": "data",
    }


def test_streams_are_put_in_mline_order_and_must_all_be_there():
    video, audio = FeedStream(1, "v", "video", "vp8"), FeedStream(0, "a", "audio", "opus")
    assert _checked([video, audio]) == [audio, video]
    with pytest.raises(ValueError, match="m-line indexes"):
        _checked([video])
    with pytest.raises(ValueError, match="m-line indexes"):
        _checked([])


def test_extmap_id_reads_the_offer():
    sdp = (
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
        "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
        "a=extmap:4/sendonly urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    )
    assert extmap_id(sdp) == 4
    assert extmap_id(sdp, "urn:ietf:params:rtp-hdrext:toffset") is None
