"""What the benchmarks measure besides time: peak memory and the machine's load.

Peak memory is a process's ``VmHWM`` (its resident high-water mark, /proc/<pid>/status), never
``ru_maxrss``: Linux carries the high-water mark of the image an ``exec`` replaced — the forked copy of
the benchmark's parent, which may just have made a large input — into the child's, so a child smaller
than its parent reported the parent's peak.
"""

from __future__ import annotations

import os
import threading


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def vm_hwm(pid: int | str = "self") -> int:
    """A process's peak resident memory in bytes (``VmHWM``); 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    parents[int(entry.name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return tree


class TreePeak:
    """Peak memory of this process and its descendants (a JVM, Spark's Python workers), sampled.

    ``own``: this process's VmHWM (exact). ``tree``: the sum over every process seen of its VmHWM — an
    upper bound of what the tree held at once (the processes need not peak together, and a forked
    worker counts the pages it shares with its parent again); a process that lives shorter than one
    sampling interval is missed."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self._stop = every, threading.Event()
        self._peaks: dict[int, int] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.own = self.tree = 0

    def _sample(self) -> None:
        for pid in _descendants(os.getpid()):
            self._peaks[pid] = max(self._peaks.get(pid, 0), vm_hwm(pid))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.own = vm_hwm()
        self._peaks[os.getpid()] = self.own
        self.tree = sum(self._peaks.values())
