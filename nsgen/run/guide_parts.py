"""Recording the guide's demo parts (III to V, nsgen.render.guide): each demo, beside its CNI files (and Part V's
image), run in a sandbox of its own while asciinema records it."""

import os
import shutil
from pathlib import Path

from nsgen.render import guide, writing
from nsgen.run import busybox_image, recording, sandbox

#: The Debian package of each program a demo part runs.
PACKAGES = {
    "jq": "jq", "flock": "util-linux", "nsenter": "util-linux", "unshare": "util-linux", "sha256sum": "coreutils",
    "containerd": "containerd", "ctr": "containerd", "runc": "runc", "busybox": "busybox-static",
}


def missing(part: guide.Part) -> str | None:
    """Why this machine cannot record `part` (it needs root, and programs), or None."""
    if os.geteuid() != 0:
        return f"recording {part.name} needs root: it runs in a sandbox of namespaces"
    absent = [tool for tool in ("unshare", *part.needs) if shutil.which(tool) is None]
    if absent:
        packages = " ".join(dict.fromkeys(PACKAGES[tool] for tool in absent))
        return f"recording {part.name} needs {', '.join(absent)}, which this machine lacks (Debian: apt-get install {packages})"
    if "busybox" in part.needs and not busybox_image.is_static(busybox := _busybox()):
        return f"recording {part.name} needs a static busybox for its image, and {busybox} is not (Debian: busybox-static)"
    return None


def _busybox() -> Path:
    """The busybox on PATH, its links followed."""
    return Path(shutil.which("busybox") or "busybox").resolve()


def record(part: guide.Part, directory: Path, cast: Path) -> int:
    """Record `part`'s demo into `cast`, its files written into `directory` (a scratch directory of the caller's);
    demo.sh's exit status."""
    writing.write(guide.demo_files(part), directory, guide.EXECUTABLES)
    if "busybox" in part.needs:
        busybox_image.archive(directory / "busybox.tar", guide.IMAGE, _busybox())
    with sandbox.sandbox() as wrapper:
        return recording.record(directory, cast, wrapper=wrapper)
