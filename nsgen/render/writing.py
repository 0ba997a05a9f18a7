"""Writing rendered files into a directory without losing a file nsgen did not write, and finding
where a directory differs.

A directory nsgen writes carries a manifest (MANIFEST: `SHA256  PATH` a line, as `sha256sum`
prints it) of the files it wrote. A later write replaces those files, removes the ones it no longer
writes, and leaves everything else alone (and says so). It refuses, changing nothing, a path that
is a file or a dangling symlink, a non-empty directory without a manifest, a file it would
overwrite that it did not write, a file where it writes a directory, and a file it wrote that was
edited since. A file that holds exactly what nsgen writes there is not a user's: overwriting it
loses nothing.
"""

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Collection
from pathlib import Path

from nsgen.render.lab_files import SCRIPTS

#: The manifest of a directory nsgen wrote: the files it wrote and their sha256.
MANIFEST = ".nsgen-manifest"


class OutputError(Exception):
    """An output path nsgen will not write into: one line, naming the path and why."""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _is_executable(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o100)


def _present(out_dir: Path) -> set[str]:
    """What `out_dir` holds but its manifest, by relative path: every entry that is not a directory (files,
    symlinks, pipes, sockets), and each empty directory (with a trailing /)."""
    found = set()
    for path in out_dir.rglob("*"):
        relative = path.relative_to(out_dir).as_posix()
        if not path.is_dir() or path.is_symlink():
            found.add(relative)
        elif not any(path.iterdir()):
            found.add(relative + "/")
    return found - {MANIFEST}


def written(out_dir: Path) -> dict[str, str]:
    """The files nsgen wrote into `out_dir`, by relative path, and their sha256 (its manifest)."""
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return {}
    return {path: digest for digest, path in (line.split("  ", 1) for line in manifest.read_text().splitlines() if line)}


def check(files: dict[str, str | None], out_dir: Path) -> set[str]:
    """What `out_dir` holds that is not nsgen's (left alone); OutputError where writing `files` (relative paths, and
    their text, or None where it is not known yet) would lose something of a user's."""
    if out_dir.is_symlink() and not out_dir.exists():
        raise OutputError(f"{out_dir}: a dangling symlink: give a directory")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: not a directory: give a directory to write the files into")
    if not out_dir.exists():
        return set()
    if not (out_dir / MANIFEST).is_file() and _holds_other(out_dir, files):  # decided before walking it all
        raise OutputError(f"{out_dir}: not empty, and nsgen did not write it (no {MANIFEST}): give a new or empty directory")
    present = _present(out_dir)
    # a file that holds what nsgen writes there now loses nothing (a cast the guide keeps, put there by hand)
    same = {p for p in present & files.keys() if _holds(out_dir / p, files[p])}
    if not (out_dir / MANIFEST).is_file() and present - same:
        raise OutputError(f"{out_dir}: not empty, and nsgen did not write it (no {MANIFEST}): give a new or empty directory")
    ours = written(out_dir)
    edited = sorted(p for p in (present & ours.keys()) - same if not _holds(out_dir / p, None, ours[p]))
    if edited:
        raise OutputError(f"{out_dir}: {', '.join(edited)} changed since nsgen wrote it: move it away, then write again")
    foreign = present - ours.keys() - same
    in_the_way = {parent.as_posix() for name in files for parent in Path(name).parents} & present
    taken = sorted((foreign & files.keys()) | in_the_way)
    if taken:
        raise OutputError(f"{out_dir}: {', '.join(taken)} not written by nsgen: move it away, then write again")
    return foreign


def check_file(path: Path, force: bool = False) -> None:
    """OutputError where writing the file `path` (a cast, a GIF) would lose something of a user's: a
    directory, a symlink (nsgen writes through none), a file already there (unless `force`)."""
    if path.is_symlink():
        raise OutputError(f"{path}: a symlink: nsgen writes no file through one; give the file itself")
    if path.is_dir():
        raise OutputError(f"{path}: a directory: give the file's name (e.g. {path.as_posix().rstrip('/')}/lab.cast)")
    if path.exists() and not force:
        raise OutputError(f"{path}: exists already (use --force to overwrite it)")


def _holds_other(out_dir: Path, files: dict[str, str | None]) -> bool:
    """Whether `out_dir` holds anything but files of `files` with their text (and the directories
    they are in): it stops at the first such entry, so `/usr` or `/` is refused at once, and a
    directory it may not read counts as one."""
    parents = {parent.as_posix() for name in files for parent in Path(name).parents}
    pending = [out_dir]
    try:
        while pending:
            for path in pending.pop().iterdir():
                relative = path.relative_to(out_dir).as_posix()
                if path.is_dir() and not path.is_symlink() and relative in parents:
                    pending.append(path)
                elif relative not in files or not _holds(path, files[relative]):
                    return True
    except OSError:
        return True
    return False


def _holds(path: Path, text: str | None, digest: str | None = None) -> bool:
    """Whether `path` is a regular file holding `text` (or text of sha256 `digest`)."""
    if path.is_symlink() or not path.is_file() or (text is None and digest is None):
        return False
    content = _read(path)
    return content == text if text is not None else _sha256(content) == digest


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def write(files: dict[str, str], out_dir: Path, executables: Collection[str] = SCRIPTS) -> list[str]:
    """Write `files` (relative paths) into `out_dir`, with its manifest; the files left alone.

    Where the directory holds nsgen's files only, it is replaced in one rename once all are written;
    otherwise each file is renamed into place, stale ones of nsgen's removed, the manifest last."""
    out_dir = Path(os.path.abspath(out_dir))
    if out_dir.is_symlink() and out_dir.is_dir():
        out_dir = out_dir.resolve()  # write into the directory it points to, not over the link
    foreign = check(files, out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, text in files.items():
            path = staging / name
            path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            path.chmod(0o755 if name in executables else 0o644)
        manifest = "".join(f"{_sha256(text)}  {name}\n" for name, text in sorted(files.items()))
        (staging / MANIFEST).write_text(manifest, encoding="utf-8")
        staging.chmod(stat.S_IMODE(out_dir.stat().st_mode) if out_dir.is_dir() else 0o755)
        if not out_dir.exists():
            os.rename(staging, out_dir)
        elif not foreign and not Path.cwd().is_relative_to(out_dir):  # a shell in it would be left in a deleted one
            retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            os.rename(out_dir, retired / "lab")
            os.rename(staging, out_dir)
            shutil.rmtree(retired)
        else:
            _replace_files(staging, out_dir, files, written(out_dir))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(foreign)


def _replace_files(staging: Path, out_dir: Path, files: dict[str, str], old: dict[str, str]) -> None:
    """Each new file renamed into `out_dir`, the old ones nsgen no longer writes removed, the manifest last."""
    for name in files:
        (out_dir / name).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.replace(staging / name, out_dir / name)
    for name in old.keys() - files.keys():
        (out_dir / name).unlink(missing_ok=True)
    os.replace(staging / MANIFEST, out_dir / MANIFEST)


def differences(files: dict[str, str], out_dir: Path, executables: Collection[str] = SCRIPTS) -> list[str]:
    """Relative paths of the files in `out_dir` that differ from `files`: changed, missing or extra."""
    present = _present(out_dir) if out_dir.is_dir() else set()
    changed = [
        name
        for name, text in files.items()
        if name not in present
        or _read(out_dir / name) != text
        or _is_executable(out_dir / name) != (name in executables)
    ]
    return sorted(changed + sorted(present - files.keys()))
