"""A sandbox for recording the guide's CNI parts: a private machine made of namespaces (templates/guide/sandbox.sh).

`unshare` gives the command new PID, network and mount namespaces; the sandbox's script mounts its own /run,
/var/lib and /var/log, layers /etc and /opt over the machine's, and runs the command as a child of its PID 1.
When PID 1 exits the kernel ends every process left (containerd, its shims), and the namespaces, mounts and
devices go with them. Only containerd's cgroups outlive it, named after the sandbox: `sandbox()` removes them.
"""

import errno
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nsgen.render.templates import templates_dir

CGROUPS = Path("/sys/fs/cgroup")
#: New PID, network and mount namespaces (util-linux), a fresh /proc, no mount shared with the machine; if unshare
#: dies (Ctrl-C), the kernel kills the sandbox's PID 1, and so all of it.
UNSHARE = ("unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--mount", "--propagation", "private")


@contextmanager
def sandbox() -> Iterator[list[str]]:
    """The argv prefix that runs a command in a new sandbox; on leaving, the sandbox's cgroups are removed (and
    those of sandboxes whose process is gone, killed before they could remove theirs)."""
    for stale in {path.name for path in _cgroups("nsgen-sandbox-*")}:
        if not Path(f"/proc/{stale.removeprefix('nsgen-sandbox-')}").exists():
            _remove_cgroups(stale)
    try:
        yield [*UNSHARE, "--", "bash", str(templates_dir() / "guide" / "sandbox.sh"), name()]
    finally:
        if left := _remove_cgroups(name()):
            print(f"nsgen: the sandbox's cgroups are still busy, left for the next sandbox: {', '.join(left)}", file=sys.stderr)


def name() -> str:
    """This process's sandbox's name: its containerd namespace, and so its cgroups' (one sandbox at a time)."""
    return f"nsgen-sandbox-{os.getpid()}"


def _cgroups(pattern: str) -> set[Path]:
    """The cgroups named `pattern`, once each: at the top (cgroup v2) or in each hierarchy (v1, where co-mounted
    controllers show one hierarchy under several names)."""
    return {path.resolve() for path in [*CGROUPS.glob(pattern), *CGROUPS.glob(f"*/{pattern}")] if path.is_dir()}


def _remove_cgroups(sandbox_name: str) -> list[str]:
    """Remove the cgroups containerd made for the sandbox `sandbox_name`, deepest first, waiting up to 5 s for one
    still busy (a process of the sandbox not yet gone, after a Ctrl-C); those left."""
    deadline = time.monotonic() + 5
    left = []
    for top in _cgroups(sandbox_name):
        for directory in sorted([top, *top.rglob("*/")], key=lambda path: len(path.parts), reverse=True):
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as error:
                    if error.errno != errno.EBUSY or time.monotonic() > deadline:
                        left.append(str(directory))
                        break
                    time.sleep(0.05)
    return left
