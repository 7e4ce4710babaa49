"""What the landing-zone sensor sees: which landed files are new, settled and different in content.

No Dagster here: ``assets/automation.py``'s sensor calls :func:`advance` once per tick with the
cursor it stored last time and gets back the scopes to run, the new cursor and what it skipped.

* **Scopes.** Each day of the time-based sources is one scope (``"2024-01-05"``: every daily
  source's files of that day); the snapshot sources' files together are the scope ``"snapshots"``.
* **Settled, not half-written.** A scope is taken only when its files' (size, mtime) are the same
  at two consecutive ticks: a file still being written changes between ticks and waits. (A
  ``_SUCCESS`` marker was not chosen: it needs every upstream system's cooperation and collection
  would read the marker as a landed file.)
* **Exactly once.** A settled scope is compared by *content* (SHA-256 of every file, with its name)
  with what the cursor says was last run: the same bytes landed again, or touched, run nothing.
  Run keys are derived from the content digests alone (the previous and the new), so they are the
  same in every process; a daemon restarted with its durable cursor neither re-runs nor skips, and
  one that lost its cursor re-requests keys Dagster has already seen, which Dagster drops.
* **Bad paths never stop the sensor.** An unknown source folder, a day folder whose name is not a
  real ``YYYY-MM-DD`` date (or holds ``..``), a symbolic link anywhere (to a file or a folder, even
  one pointing out of the landing zone: never followed), a sub-folder, a name with ``..``, a path
  that cannot be read: each becomes a :class:`Skipped` with its reason and is left out of the scope.
  Hidden entries (``.x.importing`` while an import writes) are left out silently; collection
  records them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

SNAPSHOTS = "snapshots"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CURSOR_VERSION = 2


@dataclass(frozen=True)
class Skipped:
    """A landing-zone path the sensor does not act on, and why."""

    path: str
    reason: str


@dataclass
class Scan:
    """The landing zone at one moment: each scope's regular files ``{relative path: (size, mtime_ns)}``."""

    scopes: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class Tick:
    """What one evaluation decided: the scopes to run (with their run keys), the new cursor, what it left out."""

    runs: list[tuple[str, str]]  # (scope, run key)
    cursor: str
    skipped: list[Skipped]
    waiting: list[str]  # scopes whose files changed since the last tick (taken once they hold still)
    unchanged_content: list[str]  # scopes whose files were re-landed or touched with the same bytes


def _day_problem(name: str) -> str | None:
    if ".." in name:
        return "the folder name contains '..'"
    if not _DAY.match(name):
        return "the folder name is not a YYYY-MM-DD day"
    try:
        date.fromisoformat(name)
    except ValueError:
        return "the folder name is not a real date"
    return None


def scan(landing_root: Path, daily_sources: Iterable[str], snapshot_sources: Iterable[str],
         days: set[str] | None = None) -> Scan:
    """Every regular file under ``<landing_root>/<source>/<day>/``, by scope; never raises for a path.

    ``days`` (the daily partitions' keys) bounds the daily scopes: a day outside is skipped with a
    reason (the code location must reload so the partitions cover it)."""
    daily, snapshot = set(daily_sources), set(snapshot_sources)
    result = Scan()
    root = Path(landing_root)
    if not root.is_dir():
        return result
    real_root = os.path.realpath(root)

    def skip(path: Path, reason: str) -> None:
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            rel = str(path)
        result.skipped.append(Skipped(rel, reason))

    def entries(folder: Path) -> list[os.DirEntry]:
        try:
            with os.scandir(folder) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            skip(folder, f"cannot be listed: {exc.strerror or exc}")
            return []

    for source in entries(root):
        if source.name.startswith("."):
            continue
        path = Path(source.path)
        if source.is_symlink():
            skip(path, "a symbolic link: never followed")
            continue
        if not source.is_dir(follow_symlinks=False):
            skip(path, "not a source folder (files go in <source>/<YYYY-MM-DD>/)")
            continue
        if source.name not in daily | snapshot:
            skip(path, f"unknown source {source.name!r}; known: {', '.join(sorted(daily | snapshot))}")
            continue
        for day in entries(path):
            if day.name.startswith("."):
                continue
            day_path = Path(day.path)
            if day.is_symlink():
                skip(day_path, "a symbolic link: never followed (collection refuses it)")
                continue
            if not day.is_dir(follow_symlinks=False):
                skip(day_path, "not a day folder (files go in <source>/<YYYY-MM-DD>/)")
                continue
            problem = _day_problem(day.name)
            if problem:
                skip(day_path, problem)
                continue
            if source.name in daily and days is not None and day.name not in days:
                skip(day_path, "the day is outside the daily partitions: reload the code location so the "
                               "partitions cover the newly landed days")
                continue
            scope = day.name if source.name in daily else SNAPSHOTS
            files = result.scopes.setdefault(scope, {})
            for entry in entries(day_path):
                if entry.name.startswith("."):
                    continue
                file_path = Path(entry.path)
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    skip(file_path, f"cannot be read: {exc.strerror or exc}")
                    continue
                if stat.S_ISLNK(info.st_mode):
                    skip(file_path, "a symbolic link: never followed (collection quarantines it)")
                elif stat.S_ISDIR(info.st_mode):
                    skip(file_path, "a sub-folder: only the day folder's own files are collected")
                elif not stat.S_ISREG(info.st_mode):
                    skip(file_path, "not a regular file (a pipe, socket or device)")
                elif ".." in entry.name:
                    skip(file_path, "the file name contains '..'")
                elif not os.path.realpath(file_path).startswith(real_root + os.sep):
                    skip(file_path, "resolves outside the landing zone")
                else:
                    files[file_path.relative_to(root).as_posix()] = (info.st_size, info.st_mtime_ns)
    result.scopes = {scope: files for scope, files in result.scopes.items() if files}
    return result


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a regular file, opened without following a link."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def content_digest(landing_root: Path, files: Iterable[str]) -> str:
    """One digest of a scope's files: each file's name and SHA-256."""
    return _digest([[rel, file_sha256(Path(landing_root) / rel)] for rel in sorted(files)])


def run_key(scope: str, previous: str | None, content: str) -> str:
    """The same in every process for the same landed bytes: the scope, and a digest of the content run
    before and the content now (so content A → B → A runs A again instead of meeting A's old key)."""
    return f"{scope}:{_digest([previous, content])[:24]}"


def advance(cursor: str | None, landing_root: Path, daily_sources: Iterable[str], snapshot_sources: Iterable[str],
            days: set[str] | None = None) -> Tick:
    """One sensor tick: compare the landing zone with the cursor, return the runs to request and the new cursor.

    The cursor holds, per scope, the fingerprint (names, sizes, mtimes) and content digest of what was
    last run, and the fingerprints seen at the previous tick for scopes not yet settled."""
    state = json.loads(cursor) if cursor else {}
    if state.get("v") != CURSOR_VERSION:  # a cursor from an older sensor: start over; run keys drop repeats
        state = {}
    done: dict[str, dict] = state.get("done", {})
    pending: dict[str, str] = state.get("pending", {})
    now = scan(landing_root, daily_sources, snapshot_sources, days)
    runs, waiting, unchanged, skipped = [], [], [], list(now.skipped)
    next_pending: dict[str, str] = {}
    for scope in sorted(now.scopes, key=lambda s: (s != SNAPSHOTS, s)):  # snapshots first: days need them
        files = now.scopes[scope]
        fingerprint = _digest(files)
        last = done.get(scope)
        if last and last["fingerprint"] == fingerprint:
            continue
        if pending.get(scope) != fingerprint:
            next_pending[scope] = fingerprint
            waiting.append(scope)
            continue
        try:
            content = content_digest(landing_root, files)
        except OSError as exc:  # a file vanished or changed type between scan and read: look again next tick
            skipped.append(Skipped(scope, f"a file could not be read ({exc.strerror or exc}); retried next tick"))
            continue
        previous = last["content"] if last else None
        done[scope] = {"fingerprint": fingerprint, "content": content}
        if content == previous:
            unchanged.append(scope)
            continue
        runs.append((scope, run_key(scope, previous, content)))
    new_cursor = json.dumps({"v": CURSOR_VERSION, "done": done, "pending": next_pending}, sort_keys=True)
    return Tick(runs=runs, cursor=new_cursor, skipped=skipped, waiting=waiting, unchanged_content=unchanged)
