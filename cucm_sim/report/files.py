"""Where cucm-sim writes: whole or not at all, only where it may, and never over what it did not write.

Every command that writes goes through here, under one set of rules (docs/limits.md tells users):

- **A result directory** (`run`, `capacity`) is prepared before the long work starts (`prepare_directory`).
  The target is checked; a new one is claimed at once with an atomic `mkdir`, so of two runs racing for one
  DIR exactly one wins and the other is told it exists; a hidden staging directory
  `.cucm-sim.XXXXXXXX.partial` is made beside it, which also proves the place is writable before any work.
  The result is written into the staging directory and renamed into place (over the empty claim, or over
  an old result, which is put back if the swap fails).
- **--force replaces only what cucm-sim wrote**: an empty directory, or one that holds nothing but the files
  of its kind (`DirectoryKind`), its signature file among them.  Anything else, a symbolic link, the current
  directory or one of its parents is refused with a message naming what is there.
- **A file** (`write_text_atomically`, `write_bytes_atomically`) is written to a temporary sibling
  `.NAME.XXXXXXXX.partial`, fsync'd, then moved into place with `os.replace`.
- **Leftovers of a killed run**: the claim and the staging directory each hold a lock file, `flock`ed for as
  long as their writer lives (the kernel drops the lock when the process dies, by SIGKILL too).  Preparing a
  result in a folder first removes the staging directories there whose lock is free, and a claim whose lock
  is free counts as absent (it is removed); a live claim is refused as "being written".  Nothing else is
  ever removed.
- **Signals**: the renames that put a result in place run with SIGINT and SIGTERM blocked, so an interrupt
  lands before them (nothing changed) or after them (the result is whole), never between.
- Any failure to write (a read-only place, a full disk, a name too long) is a `UserError` saying
  "cannot write ...", and leaves the previous result as it was and no temporary behind.

POSIX only (`fcntl.flock`, `signal.pthread_sigmask`), like the rest of cucm-sim's process handling.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from cucm_sim.errors import OutputExistsError, UserError

STAGING_PREFIX: Final = ".cucm-sim."
STAGING_SUFFIX: Final = ".partial"
TRASH_SUFFIX: Final = ".old"
LOCK_NAME: Final = ".cucm-sim.lock"
"""The lock file inside a staging directory; it is removed before the directory is moved into place."""
FOREIGN_NAMES_SHOWN: Final = 3


@dataclass(frozen=True)
class DirectoryKind:
    """A kind of directory cucm-sim writes: the command that writes it, every file name it may hold, and the
    file whose presence marks it as one (`signature`)."""

    command: str
    files: frozenset[str]
    signature: str

    def foreign_entries(self, directory: Path) -> list[str]:
        """The names in `directory` this kind does not write (sorted): not one of its files, nor the temporary
        `.NAME.XXXXXXXX.partial` of one (see `write_bytes_atomically`); a sub-directory or a link is foreign
        whatever its name."""
        with os.scandir(directory) as entries:
            return sorted(entry.name for entry in entries
                          if not self._writes(entry.name) or not entry.is_file(follow_symlinks=False))

    def _writes(self, name: str) -> bool:
        return name in self.files or (name.endswith(STAGING_SUFFIX) and any(
            name.startswith(f".{file}.") for file in self.files))


def reason(error: OSError) -> str:
    """An OSError's reason in words ('No space left on device')."""
    return error.strerror or str(error)


# ------------------------------------------------------------------ result directories
def check_directory_target(out_dir: Path, kind: DirectoryKind, *, force: bool) -> None:
    """Refuse (UserError) an `out_dir` that exists without `force`, or that --force may not replace.  The
    claim of a cucm-sim that died (an empty directory but for its free lock) is removed: it counts as absent."""
    if not os.path.lexists(out_dir) or _remove_stale_claim(out_dir):
        return
    if not force:
        raise OutputExistsError([f"{out_dir}: already exists; choose another --out or pass --force to replace it"])
    refuse_unreplaceable(out_dir, kind)


def refuse_unreplaceable(out_dir: Path, kind: DirectoryKind) -> None:
    """Refuse (UserError) an existing `out_dir` that --force may not replace (see the module docstring)."""
    if out_dir.is_symlink():
        raise OutputExistsError([f"{out_dir}: is a symbolic link; --force replaces only a directory cucm-sim "
                                 "wrote, never a link: give the directory's own path, or another --out"])
    if not out_dir.is_dir():
        raise OutputExistsError([f"{out_dir}: exists and is not a directory; --force replaces only a directory "
                                 f"written by `{kind.command}`"])
    if _is_current_or_parent(out_dir):
        raise OutputExistsError([f"{out_dir}: is the current directory or one of its parents; --force replaces "
                                 f"only a result directory of `{kind.command}`: give a new --out"])
    try:  # replaceable: empty, or only this kind's regular files with the signature among them
        foreign = kind.foreign_entries(out_dir)
        owned = not any(out_dir.iterdir()) or (out_dir / kind.signature).is_file()
    except OSError as error:
        raise UserError([f"{out_dir}: cannot read the directory ({reason(error)})"]) from None
    if foreign:
        shown = ", ".join(foreign[:FOREIGN_NAMES_SHOWN])
        more = f" and {len(foreign) - FOREIGN_NAMES_SHOWN:,} more" if len(foreign) > FOREIGN_NAMES_SHOWN else ""
        raise OutputExistsError([f"{out_dir}: holds {shown}{more}, which `{kind.command}` did not write; "
                                 f"--force replaces only a result directory of `{kind.command}` (or an empty "
                                 "one): choose another --out"])
    if not owned:
        raise OutputExistsError([f"{out_dir}: has no {kind.signature}, so it is not a result directory of "
                                 f"`{kind.command}`; --force replaces only those (or an empty one): choose "
                                 "another --out"])


def _remove_stale_claim(out_dir: Path) -> bool:
    """If `out_dir` is a claim (a directory holding only the lock file): remove it and return True when its
    writer is dead; refuse it (UserError) while its writer lives.  False for anything else."""
    try:
        if out_dir.is_symlink() or not out_dir.is_dir() or os.listdir(out_dir) != [LOCK_NAME]:
            return False
        lock = os.open(out_dir / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        if not _lock_at_once(lock):
            raise OutputExistsError([f"{out_dir}: already exists: another cucm-sim is writing its result there "
                                     "right now; wait for it or choose another --out"])
        os.unlink(out_dir / LOCK_NAME)
        out_dir.rmdir()
    except OSError:
        return False
    finally:
        os.close(lock)
    return True


def _is_current_or_parent(path: Path) -> bool:
    resolved, here = path.resolve(), Path.cwd().resolve()
    return resolved == here or resolved in here.parents


def prepare_directory(out_dir: Path, kind: DirectoryKind, *, force: bool) -> PreparedDirectory:
    """Check `out_dir`, claim it if new, and make the staging directory beside it: every check a write could
    fail is done here, before the long work.  Use the result as a context manager; `fill` writes and moves
    the result into place; leaving the block without `fill` removes everything this made."""
    check_directory_target(out_dir, kind, force=force)
    parent = out_dir.absolute().parent
    created = _make_parents(parent)
    prepared = PreparedDirectory(out_dir, kind, force, created)
    try:
        remove_stale_staging(parent)
        if not force or not os.path.lexists(out_dir):
            prepared.claim()  # without --force always: DIR may have appeared since it was checked
        prepared.stage()
    except BaseException:
        prepared.abandon()
        raise
    return prepared


class PreparedDirectory:
    """A result directory about to be written: its claim (if it was new), the staging directory, the lock."""

    def __init__(self, out_dir: Path, kind: DirectoryKind, force: bool, created_parents: list[Path]) -> None:
        self.out_dir = out_dir
        self.kind = kind
        self.force = force
        self._created_parents = created_parents
        self._claimed = False
        self._staging: Path | None = None
        self._lock: int | None = None
        self._claim_lock: int | None = None
        self._done = False

    @property
    def staging(self) -> Path:
        """The hidden directory the result is written into before it is moved into place."""
        if self._staging is None:
            raise RuntimeError("not staged")
        return self._staging

    def claim(self) -> None:
        """Make `out_dir` as the claim of this run: an atomic mkdir (of two racing runs, one wins), holding
        only a lock file, locked while this process lives (so that a later run can tell a dead claim)."""
        try:
            os.mkdir(self.out_dir)
        except FileExistsError:
            if not self.force:
                raise OutputExistsError([f"{self.out_dir}: already exists (another cucm-sim may be writing it); "
                                         "choose another --out or pass --force to replace it"]) from None
            refuse_unreplaceable(self.out_dir, self.kind)
            return
        except OSError as error:
            raise UserError([f"{self.out_dir}: cannot create the directory ({reason(error)})"]) from None
        self._claimed = True
        self._claim_lock = _locked_file(self.out_dir / LOCK_NAME, f"{self.out_dir}: cannot write in it")

    def stage(self) -> None:
        """Make the staging directory beside `out_dir` and lock it for as long as this process lives."""
        parent = self.out_dir.absolute().parent
        try:
            self._staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, suffix=STAGING_SUFFIX, dir=parent))
            self._staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; a result should not be
        except OSError as error:
            raise UserError([f"{self.out_dir}: cannot write in {parent} ({reason(error)})"]) from None
        self._lock = _locked_file(self._staging / LOCK_NAME, f"{self.out_dir}: cannot write in {parent}")

    def fill(self, write: Callable[[Path], list[str]]) -> list[Path]:
        """Call `write(staging)` (it returns the names it wrote), then move the result into place.  A failure
        to write is a UserError; the old result (if any) stays as it was and nothing temporary is left."""
        try:
            names = write(self.staging)
        except OSError as error:
            self.abandon()
            raise UserError([f"cannot write {self.out_dir}: {reason(error)}; {self._unchanged()}"]) from None
        try:
            with signals_blocked():
                os.unlink(self.staging / LOCK_NAME)  # not part of the result; the lock itself is held until closed
                if self._claimed:
                    os.unlink(self.out_dir / LOCK_NAME)  # the claim must be empty for the rename
                self._move_into_place()
                self._done = True
        except OSError as error:
            self.abandon()
            raise UserError([f"cannot write {self.out_dir}: {reason(error)}; {self._unchanged()}"]) from None
        finally:
            self._close_lock()
        return [self.out_dir / name for name in names]

    def _unchanged(self) -> str:
        return "the previous result is unchanged" if not self._claimed and self.out_dir.is_dir() else \
            "nothing was written"

    def _move_into_place(self) -> None:
        if self._claimed or (self.force and not os.path.lexists(self.out_dir)):
            self.staging.rename(self.out_dir)  # over the empty claim (rename replaces an empty directory)
            self._claimed = False
            return
        if not self.force:
            raise OutputExistsError([f"{self.out_dir}: already exists; choose another --out or pass --force"])
        refuse_unreplaceable(self.out_dir, self.kind)  # again: it may have changed while the work ran
        trash = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, suffix=TRASH_SUFFIX, dir=self.staging.parent))
        old = trash / "old"
        self.out_dir.rename(old)
        try:
            self.staging.rename(self.out_dir)
        except BaseException:
            old.rename(self.out_dir)
            shutil.rmtree(trash, ignore_errors=True)
            raise
        shutil.rmtree(trash)

    def abandon(self) -> None:
        """Remove everything this made that is not a finished result: staging, the empty claim, new parents."""
        if self._done:
            return
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
        self._close_lock()
        if self._claimed:
            with contextlib.suppress(OSError):
                os.unlink(self.out_dir / LOCK_NAME)
            with contextlib.suppress(OSError):
                self.out_dir.rmdir()  # only if still empty
        for directory in reversed(self._created_parents):
            with contextlib.suppress(OSError):
                directory.rmdir()
        self._done = True

    def _close_lock(self) -> None:
        for lock in (self._lock, self._claim_lock):
            if lock is not None:
                os.close(lock)
        self._lock = self._claim_lock = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.abandon()


def _lock_at_once(descriptor: int) -> bool:
    """Take an exclusive flock on `descriptor` if nobody holds one (True), without waiting (False)."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _locked_file(path: Path, problem: str) -> int:
    """Create `path` and hold an exclusive lock on it; the open descriptor (the lock lasts until it is closed
    or the process ends).  UserError '`problem` (reason)' when it cannot be made."""
    unlocked = path.with_name(f"{path.name}.new")  # locked before it takes its name: never seen free while alive
    try:
        descriptor = os.open(unlocked, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        raise UserError([f"{problem} ({reason(error)})"]) from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else holds it
        os.rename(unlocked, path)
    except OSError as error:
        os.close(descriptor)
        with contextlib.suppress(OSError):
            os.unlink(unlocked)
        raise UserError([f"{problem} ({reason(error)})"]) from None
    return descriptor


def _make_parents(parent: Path) -> list[Path]:
    """Make `parent` and the folders above it that are missing; return those made, outermost first."""
    missing = [folder for folder in (parent, *parent.parents) if not folder.exists()][::-1]
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        for folder in reversed(missing):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise UserError([f"{parent}: cannot create the output's folder ({reason(error)})"]) from None
    return missing


def remove_stale_staging(folder: Path) -> list[Path]:
    """Remove the staging directories in `folder` left by a cucm-sim that died (their lock is free); return
    them.  A staging directory whose writer lives, or that cannot be checked, is left alone."""
    removed: list[Path] = []
    try:
        entries = [entry for entry in os.scandir(folder)
                   if entry.name.startswith(STAGING_PREFIX) and entry.name.endswith(STAGING_SUFFIX)
                   and entry.is_dir(follow_symlinks=False)]
    except OSError:
        return removed
    for entry in entries:
        try:
            lock = os.open(Path(entry.path) / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue  # no lock file: being moved into place right now, or not ours to judge
        try:
            if _lock_at_once(lock):  # not while its writer lives
                shutil.rmtree(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
        finally:
            os.close(lock)
    return removed


# ------------------------------------------------------------------ files
def write_text_atomically(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` whole or not at all (see `write_bytes_atomically`)."""
    write_bytes_atomically(path, text.encode("utf-8"))


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all: a temporary sibling, fsync'd, then os.replace.  UserError
    'cannot write PATH (reason)' on failure, with no temporary left and an old `path` unchanged."""
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=STAGING_SUFFIX, dir=path.parent)
    except OSError as error:
        raise UserError([f"cannot write {path} ({reason(error)})"]) from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; the result should not be
        with signals_blocked():
            os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise UserError([f"cannot write {path} ({reason(error)})"]) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_file_target(path: Path, option: str) -> None:
    """Refuse (UserError) a file `path` that cannot be written: its folder missing or not writable, or a
    directory in its place.  Call it before a long run; it tries a real temporary file, then removes it."""
    if not path.parent.is_dir():
        raise UserError([f"{option} {path}: the folder {path.parent} does not exist"])
    if path.is_dir():
        raise UserError([f"{option} {path}: is a directory; give a file name"])
    try:
        descriptor, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=STAGING_SUFFIX, dir=path.parent)
    except OSError as error:
        raise UserError([f"{option} {path}: cannot write in {path.parent} ({reason(error)})"]) from None
    os.close(descriptor)
    os.unlink(probe)


def remove_stale_partial_files(folder: Path, names: frozenset[str]) -> None:
    """Remove the temporary `.NAME.XXXXXXXX.partial` files of `write_bytes_atomically` for the given names in
    `folder`.  Call it only while holding `lock_directory(folder)`: then no writer of ours is alive there."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(STAGING_SUFFIX) and entry.is_file(follow_symlinks=False) and any(
                    entry.name.startswith(f".{name}.") for name in names):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


@contextlib.contextmanager
def lock_directory(folder: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (flock on the directory itself) for the block: a second cucm-sim that
    asks for it gets a UserError naming `what` instead of writing the same files at the same time."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        raise UserError([f"{folder}: cannot open the directory ({reason(error)})"]) from None
    try:
        if not _lock_at_once(descriptor):
            raise UserError([f"{folder}: another cucm-sim is writing {what} there right now; wait for it to "
                             "finish, or choose another --out"])
        yield
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back during the block (they are delivered right after it)."""
    blocked = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
