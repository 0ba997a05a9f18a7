"""Writing rendered files into a directory, all at once, and finding where a directory differs."""

import os
import shutil
import tempfile
from collections.abc import Collection
from pathlib import Path

from nsgen.render.lab_files import SCRIPTS


def _is_executable(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o100)


def write(files: dict[str, str], out_dir: Path, executables: Collection[str] = SCRIPTS) -> None:
    """Write `files` (relative paths) as the whole content of `out_dir`, replacing it only once all are written."""
    out_dir = out_dir.absolute()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, text in files.items():
            path = staging / name
            path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            path.chmod(0o755 if name in executables else 0o644)
        staging.chmod(0o755)
        if out_dir.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            os.rename(out_dir, retired / "lab")
            os.rename(staging, out_dir)
            shutil.rmtree(retired)
        else:
            os.rename(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def differences(files: dict[str, str], out_dir: Path, executables: Collection[str] = SCRIPTS) -> list[str]:
    """Relative paths of the files in `out_dir` that differ from `files`: changed, missing or extra."""
    files_there = out_dir.rglob("*") if out_dir.is_dir() else ()
    present = {path.relative_to(out_dir).as_posix() for path in files_there if path.is_file()}
    changed = [
        name
        for name, text in files.items()
        if name not in present
        or (out_dir / name).read_text(encoding="utf-8") != text
        or _is_executable(out_dir / name) != (name in executables)
    ]
    return sorted(changed + sorted(present - files.keys()))
