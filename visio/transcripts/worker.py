"""One transcription job, run in a child process: `python -m visio.transcripts.worker FOLDER`.

A child process keeps a crash in the speech engine (or the memory it takes) away from
the server's meetings. It reports on stdout, one JSON object per line: {"progress": 0.4},
then {"done": true, "problems": [...]} or {"error": "why"}; the exit code says the same.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path
from typing import Any

from visio.transcripts.capture import read_manifest


def _say(**message: Any) -> None:
    print(json.dumps(message), flush=True)


def limit_memory(megabytes: int) -> None:
    """Cap this process's address space (audit M9): a job too big for the machine fails
    alone, rather than the kernel's OOM killer picking the server or Janus."""
    if megabytes > 0:
        size = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))


def run(args: argparse.Namespace) -> list[str]:
    """Do the job; return notes about tracks that could not be used."""
    from visio.speech.model import resolve_model_dir
    from visio.speech.recognizer import Recognizer
    from visio.speech.speakers import load_diarizer
    from visio.transcripts import pipeline
    from visio.transcripts.film import film_capture
    from visio.transcripts.tracks import capture_sources
    from visio.transcripts.video import VideoError

    folder = Path(args.folder)
    manifest = read_manifest(folder)
    sources, problems = capture_sources(folder)
    _say(progress=0.02)
    # The video, when there is one to make, takes the second half of the progress bar.
    filming = args.record and any((folder / "raw").glob("*-video-*.mjr"))
    share = 0.93 * (0.5 if filming else 1.0) if args.transcribe else 0.0
    if args.transcribe:
        recognizer = Recognizer(
            resolve_model_dir(args.model_dir or None, Path(args.models)), threads=args.threads
        )
        options = pipeline.Options(
            language=args.language,
            title=manifest.get("title", ""),
            started_at=pipeline.now_iso(manifest.get("started_at")),
            problems=problems,
        )
        transcript = pipeline.transcribe(
            sources,
            recognizer,
            load_diarizer(args.diarizer),
            options,
            lambda fraction: _say(progress=round(0.02 + share * fraction, 3)),
        )
        pipeline.write_outputs(transcript, folder)
    if args.record:
        pipeline.mix_recording(sources, folder / "recording.ogg")
        if filming:
            start = 0.02 + share
            try:
                film_capture(
                    folder,
                    sources,
                    problems,
                    args.threads,
                    lambda fraction: _say(progress=round(start + (0.97 - start) * fraction, 3)),
                )
            except VideoError as exc:  # the transcript and the audio are still worth having
                problems.append(f"the video: {exc}")
    else:
        pipeline.remove_audio(folder)
    return list(dict.fromkeys(problems))  # a track may be noted by both steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="visio-transcription-worker")
    parser.add_argument("folder")
    parser.add_argument("--language", default="auto")
    parser.add_argument("--transcribe", action="store_true")
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--models", required=True, help="cache folder of the default model")
    parser.add_argument("--model-dir", default="")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--diarizer", default="")
    parser.add_argument("--memory-mb", type=int, default=0, help="address space cap (0: none)")
    args = parser.parse_args(argv)
    limit_memory(args.memory_mb)
    from visio.speech.audio import AudioError
    from visio.speech.model import ModelError
    from visio.speech.speakers import SpeakerModelError
    from visio.transcripts.pipeline import PipelineError
    from visio.transcripts.tracks import TrackError

    known = (AudioError, ModelError, SpeakerModelError, PipelineError, TrackError, ValueError)
    try:
        problems = run(args)
    except known as exc:
        _say(error=str(exc))
        return 1
    except MemoryError:
        _say(error=f"the job needs more memory than transcription_memory_mb ({args.memory_mb})")
        return 1
    except (OSError, KeyError) as exc:
        _say(error=f"the capture folder is incomplete: {exc}")
        return 1
    _say(done=True, problems=problems)
    return 0


if __name__ == "__main__":
    sys.exit(main())
