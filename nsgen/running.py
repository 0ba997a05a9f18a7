"""Running a rendered lab's scripts, streaming their output and passing on their exit status."""

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nsgen import rendering
from nsgen.sources import LoadedLab


@contextmanager
def rendered(loaded: LoadedLab, keep: Path | None = None) -> Iterator[Path]:
    """The lab's scripts in `keep` (left there), or in a temporary directory removed afterwards."""
    if keep is not None:
        rendering.write(rendering.render(loaded), keep)
        yield keep
        return
    scratch = Path(tempfile.mkdtemp(prefix=f"nsgen-{loaded.lab.name}-"))
    try:
        lab_dir = scratch / loaded.lab.name
        rendering.write(rendering.render(loaded), lab_dir)
        yield lab_dir
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_script(lab_dir: Path, script: str) -> int:
    """Run one of the lab's scripts with bash; its output goes straight to ours."""
    return subprocess.run(["bash", str(lab_dir / script)], cwd=lab_dir, check=False).returncode


def run_helper(lab_dir: Path, function: str) -> int:
    """Call one of the functions helpers.sh defines (displayLinks, displayAddr, ...)."""
    command = 'source ./helpers.sh && "$1"'
    return subprocess.run(["bash", "-c", command, "nsgen", function], cwd=lab_dir, check=False).returncode
