"""`--out`: the folder, one lock per artifact folder, staged folders published together or
not at all, SIGTERM as an exit, and warnings held until the export succeeds."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from edgecnn.errors import EdgecnnError
from edgecnn.progress import Progress

LOCK_SUFFIX = ".lock"
PARTIAL_SUFFIX = ".partial"


class ExportBusy(EdgecnnError):
    """Another live export is writing the same artifact folder into the same --out (exit code 1)."""


def _acquire_lock(path: Path) -> int | None:
    """An exclusive flock on `path` (created if needed); None if a live process holds it.

    The lock file is removed on release; a lock taken on a file that was removed (or
    replaced) meanwhile is dropped and taken again, so two holders never coexist.
    """
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _release_lock(path: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)  # still held: nobody else can have it open and locked
    os.close(fd)


def _lock_holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(path.read_text().strip() or 0)
        if pid:
            return f" (pid {pid})"
    return ""


class _OutFolder:
    """`--out` for one export: created if missing (and removed again if the export fails),
    one lock per artifact folder, stale `.partial` folders of dead exports swept, staged
    folders published together or not at all."""

    def __init__(self, path, folder_names: list[str]):
        self.path = Path(path)
        self._names = list(dict.fromkeys(folder_names))
        self._created: list[Path] = []
        self._locks: list[tuple[Path, int]] = []
        self._staged: list[Path] = []

    def __enter__(self) -> "_OutFolder":
        missing = []
        for folder in (self.path, *self.path.parents):
            if folder.exists():
                break
            missing.append(folder)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EdgecnnError(f"cannot create --out {self.path}: {exc.strerror}") from None
        self._created = missing  # deepest first
        try:
            for name in self._names:
                lock = self.path / f".{name}{LOCK_SUFFIX}"
                fd = _acquire_lock(lock)
                if fd is None:
                    raise ExportBusy(
                        f"another export{_lock_holder(lock)} is writing {name} into "
                        f"{self.path}; wait for it to finish or choose another --out"
                    )
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
                self._locks.append((lock, fd))
            self._sweep_stale()
        except BaseException:
            self._close(failed=True)
            raise
        return self

    def _sweep_stale(self) -> None:
        """Remove `.NAME.*.partial` folders whose export is gone (no one holds NAME's lock)."""
        held = {name for name in self._names}
        for entry in self.path.iterdir():
            if not (entry.name.startswith(".") and entry.name.endswith(PARTIAL_SUFFIX) and entry.is_dir()):
                continue
            name = entry.name[1 : -len(PARTIAL_SUFFIX)].rpartition(".")[0]
            if not name:
                continue
            if name in held:
                shutil.rmtree(entry, ignore_errors=True)
                continue
            lock = self.path / f".{name}{LOCK_SUFFIX}"
            fd = _acquire_lock(lock)
            if fd is None:
                continue  # a live export of NAME owns it
            try:
                shutil.rmtree(entry, ignore_errors=True)
            finally:
                _release_lock(lock, fd)

    def staging(self, folder_name: str) -> Path:
        staging = Path(tempfile.mkdtemp(prefix=f".{folder_name}.", suffix=PARTIAL_SUFFIX, dir=self.path))
        self._staged.append(staging)
        return staging

    def publish(self, staged: list[tuple[Path, Path, dict]]) -> list[dict]:
        """Rename every staged folder into place (an earlier folder of the same name is replaced)."""
        for staging, final, _ in staged:
            if final.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=PARTIAL_SUFFIX, dir=self.path))
                self._staged.append(old)
                os.replace(final, old / final.name)
            os.replace(staging, final)
        return [manifest for _, _, manifest in staged]

    def __exit__(self, exc_type, exc, tb) -> None:
        self._close(failed=exc_type is not None)

    def _close(self, *, failed: bool) -> None:
        for folder in self._staged:
            shutil.rmtree(folder, ignore_errors=True)
        for lock, fd in reversed(self._locks):
            _release_lock(lock, fd)
        self._locks = []
        if failed:
            for folder in self._created:  # deepest first; only if nothing else arrived meanwhile
                with contextlib.suppress(OSError):
                    folder.rmdir()


@contextlib.contextmanager
def _terminate_as_exit():
    """SIGTERM becomes SystemExit(143) in the main thread, so cleanups run as for Ctrl-C."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _terminated(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _HeldWarnings:
    """A Progress whose warnings wait until `release()`: a failed export shows its error alone."""

    def __init__(self, progress: Progress):
        self._progress = progress
        self._held: list[str] = []

    def start(self, label, total=None):
        self._progress.start(label, total)

    def advance(self, steps=1):
        self._progress.advance(steps)

    def warn(self, message):
        self._held.append(message)

    def epoch_end(self, epoch, epochs, logs):
        report = getattr(self._progress, "epoch_end", None)
        if report is not None:
            report(epoch, epochs, logs)

    @property
    def held(self) -> list[str]:
        """The warnings held so far."""
        return list(self._held)

    def release(self):
        held, self._held = self._held, []
        for message in held:
            self._progress.warn(message)
