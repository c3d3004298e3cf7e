"""What a page of the web app receives, from its own getStats(): for the bad-links tests and
bench/network_quality.py, in Chromium (Playwright) and Firefox (tests/firefox/driver.mjs).

Each constant is the source of a JavaScript function for `page.evaluate`.
"""

# Counts, from now on, the ICE restarts the protocol client asks (window.iceRestarts).
WATCH_ICE_RESTARTS = """() => {
    window.iceRestarts = [];
    window.visioMeeting.conn.addEventListener('ice-restart', (e) => {
        window.iceRestarts.push(e.detail.target);
    });
    return true;
}"""

# The subscriber connection's inbound streams, summed over audio, one entry per video.
RECEIVED = """async () => {
    const pc = window.visioMeeting?.conn?.subscriber?.pc;
    const result = {
        audio: {concealed: 0, samples: 0, packetsLost: 0, packetsReceived: 0},
        video: [], ice: pc ? pc.iceConnectionState : 'none',
        restarts: (window.iceRestarts || []).length,
    };
    if (!pc) return result;
    const stats = await pc.getStats();
    stats.forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        if (s.kind === 'audio') {
            result.audio.concealed += s.concealedSamples || 0;
            result.audio.samples += s.totalSamplesReceived || 0;
            result.audio.packetsLost += s.packetsLost || 0;
            result.audio.packetsReceived += s.packetsReceived || 0;
        } else if (s.kind === 'video') {
            result.video.push({
                mid: s.mid, frames: s.framesDecoded || 0, width: s.frameWidth || 0,
                height: s.frameHeight || 0, freezes: s.freezeCount || 0,
                packetsLost: s.packetsLost || 0, nacks: s.nackCount || 0,
            });
        }
    });
    return result;
}"""


def concealment(before: dict, after: dict) -> float:
    """The share of audio samples concealed (made up by the decoder) between two RECEIVED."""
    samples = after["audio"]["samples"] - before["audio"]["samples"]
    concealed = after["audio"]["concealed"] - before["audio"]["concealed"]
    return concealed / samples if samples > 0 else 1.0


def video_frames(stats: dict) -> int:
    return sum(v["frames"] for v in stats["video"])
