"""CPU and memory of the processes under test (server, Janus) and of the load workers.

Processes are named by pid (`--server-pid`, `--janus-pid`), or found by name when they
run on this machine: `visio serve` processes and `janus` processes. The figures are
psutil deltas of user + system CPU time over a measuring window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil


class ProcessNotFound(RuntimeError):
    pass


@dataclass(frozen=True)
class Watched:
    role: str  # "server", "janus" or "client"
    pid: int
    process: psutil.Process

    @property
    def label(self) -> str:
        return f"{self.role} {self.pid}"


@dataclass(frozen=True)
class MachineUsage:
    busy_percent: float  # of all cores together
    softirq_percent: float  # of one core: the kernel moving packets (veth, UDP), no process's
    cores: int


@dataclass(frozen=True)
class Usage:
    role: str
    pid: int
    cpu_percent: float  # of one core, over the window
    cpu_seconds: float
    rss_mib: float  # at the end of the window


def watch(role: str, pids: list[int]) -> list[Watched]:
    found = []
    for pid in pids:
        try:
            found.append(Watched(role, pid, psutil.Process(pid)))
        except psutil.NoSuchProcess:
            raise ProcessNotFound(f"no process {pid} (given as a {role} pid)") from None
    return found


def find_by_name() -> tuple[list[int], list[int]]:
    """The pids of `visio serve` and `janus` processes on this machine."""
    servers, januses = [], []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "janus":
            januses.append(process.pid)
        elif "serve" in cmdline and any(part.endswith("visio") for part in cmdline):
            servers.append(process.pid)
    return servers, januses


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


class Window:
    """CPU seconds of watched processes, and of the whole machine, between two samples."""

    def __init__(self, watched: list[Watched]) -> None:
        self.watched = watched
        self.started = time.monotonic()
        self.cpu0 = {w.pid: self._cpu(w) for w in watched}
        self.machine0 = psutil.cpu_times()

    @staticmethod
    def _cpu(watched: Watched) -> float:
        try:
            return _cpu(watched.process)
        except psutil.NoSuchProcess:
            return float("nan")

    def close(self) -> tuple[list[Usage], float, MachineUsage]:
        """Usage per process, the window's length (s), and the whole machine's."""
        wall = time.monotonic() - self.started
        usages = []
        for w in self.watched:
            seconds = self._cpu(w) - self.cpu0[w.pid]
            try:
                rss = w.process.memory_info().rss / 2**20
            except psutil.NoSuchProcess:
                rss = float("nan")
            usages.append(Usage(w.role, w.pid, 100 * seconds / wall, seconds, rss))
        return usages, wall, self._machine()

    def _machine(self) -> MachineUsage:
        now, before = psutil.cpu_times(), self.machine0
        total = sum(now) - sum(before)
        if total <= 0:
            return MachineUsage(float("nan"), float("nan"), psutil.cpu_count() or 1)
        idle = (now.idle + now.iowait) - (before.idle + before.iowait)
        cores = psutil.cpu_count() or 1
        softirq = 100 * cores * (now.softirq - before.softirq) / total
        return MachineUsage(100 * (1 - idle / total), softirq, cores)
