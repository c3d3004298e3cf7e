"""The load tool (`visio load`): lightweight clients that publish pre-encoded media and
count what they receive without decoding it, spread over worker processes.

client.py (one participant) · media.py (pre-encoded loops, DTX talk turns) ·
receiver.py, socket_counting.py (count, do not decode) · rtpstats.py (loss, jitter) ·
scenarios.py (who joins what) · worker.py, pool.py (processes) · rooms.py (HTTP API) ·
resources.py (CPU, RSS) · run.py (steps, hold, measure) · report.py · command.py (CLI).
"""
