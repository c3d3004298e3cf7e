"""Speech on the operator's own CPUs: audio decoding, Whisper recognition, speaker embeddings.

Shared by batch transcription (visio.transcripts) and live captions.
"""
