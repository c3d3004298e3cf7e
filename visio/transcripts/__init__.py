"""Meeting transcripts: capture per-participant audio, transcribe it after the meeting,
attribute every sentence to its speaker, and write it out in the usual formats."""
