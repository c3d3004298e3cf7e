"""What a room's members are told when a transcription job goes wrong (audit L6)."""

from __future__ import annotations

from visio.transcripts.routes import public_error


def test_l6_job_errors_name_tracks_but_never_paths_or_tool_output():
    crash = "the transcription worker was killed by signal 9: /srv/visio/lib/x.py line 3"
    model = "no speech model in /nonexistent/whisper (model.bin missing)"
    for reason in (crash, "Traceback (most recent call last): ..."):
        told = public_error("failed", reason)
        assert told == "the transcription failed; the server's log says why"
    # A missing model is the operator's to fix: told so, by the setting's name, not its path.
    told = public_error("failed", model)
    assert "speech_model_dir" in told and "/nonexistent" not in told
    partial = (
        "Some tracks could not be used: Bob's microphone: janus-pp-rec failed on "
        "p-1-camera-2-audio-0.mjr: /usr/bin/janus-pp-rec: bad header; Ann: screen: bad Opus"
    )
    assert public_error("done", partial) == (
        "Some tracks could not be used: Ann's screen, Bob's microphone"
    )
    video = "Some tracks could not be used: Cy's camera: p-2-camera-3-video-1.mjr cannot be decoded"
    assert public_error("done", video) == "Some tracks could not be used: Cy's camera"
    nothing = "nothing to transcribe: Alice's microphone: p-9-camera-1-audio-0.mjr is empty"
    assert public_error("failed", nothing) == (
        "nothing to transcribe: no usable audio was captured (Alice's microphone could not be read)"
    )
    assert public_error("failed", "interrupted 3 times by server restarts") == (
        "interrupted 3 times by server restarts"
    )
    assert public_error("done", None) is None
