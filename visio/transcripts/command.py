"""`visio transcribe FILE…`: the meeting pipeline on any audio or video files.

Each file is one speaker, named after the file (or by --speaker); several files are laid
on one timeline from their starts, as a meeting's tracks are.
"""

from __future__ import annotations

import sys
from pathlib import Path

from visio.config import Settings, user_cache_dir


def _error(message: str) -> None:
    print(f"visio transcribe: {message}", file=sys.stderr)


def _progress(fraction: float) -> None:
    if sys.stderr.isatty():
        print(f"\rtranscribing… {fraction:4.0%}", end="", file=sys.stderr, flush=True)


def models_dir(settings: Settings) -> Path:
    """Where the default speech model is assembled for this command: the configured
    data_dir's models, as the server's, else the user's cache, so that running it in any
    folder leaves no ./var behind."""
    if settings.data_dir_configured:
        return settings.models_dir
    return user_cache_dir() / "models"


def transcribe_files(
    settings: Settings,
    files: list[str],
    output: str,
    language: str,
    speakers: list[str],
) -> int:
    from visio.speech.model import ModelError, resolve_model_dir
    from visio.speech.recognizer import Recognizer
    from visio.speech.speakers import SpeakerModelError, load_diarizer
    from visio.transcripts import pipeline
    from visio.transcripts.tracks import AudioSource, file_sources

    paths = [Path(name) for name in files]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        _error(f"no such file: {', '.join(missing)}")
        return 2
    if speakers and len(speakers) != len(paths):
        _error(f"{len(speakers)} --speaker names for {len(paths)} files: give one per file")
        return 2
    sources = file_sources(paths)
    if speakers:
        sources = [
            AudioSource(s.path, name, s.source, s.offset)
            for s, name in zip(sources, speakers, strict=True)
        ]
    options = pipeline.Options(language=language, title=paths[0].stem if len(paths) == 1 else "")
    try:
        model = resolve_model_dir(settings.speech_model_dir or None, models_dir(settings))
        recognizer = Recognizer(model, threads=settings.speech_threads)
        diarizer = load_diarizer(settings.diarizer)
        transcript = pipeline.transcribe(sources, recognizer, diarizer, options, _progress)
    except (ModelError, SpeakerModelError, pipeline.PipelineError, ValueError) as exc:
        _error(str(exc))
        return 1
    finally:
        if sys.stderr.isatty():
            print(file=sys.stderr)
    written = pipeline.write_outputs(
        transcript, Path(output), paths[0].stem if len(paths) == 1 else "transcript"
    )
    for problem in options.problems:
        _error(f"skipped {problem}")
    for path in written.values():
        print(path)
    return 1 if options.problems else 0
