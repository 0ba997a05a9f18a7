"""Making many texts in two processes at once: half in a forked child, half here."""

import marshal
import os
import threading
from collections.abc import Callable, Collection, Iterable


def in_two_processes(make: Callable[[str], str], names: Iterable[str], forked: Collection[str]) -> dict[str, str]:
    """`make(name)` for each of `names`: those in `forked` by a forked child, which sends them back
    through a pipe, while this process makes the rest. Without fork (or with threads running, which
    a fork would not copy) all are made here, and so are the child's if it fails."""
    names = list(names)
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return {name: make(name) for name in names}
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its texts, marshalled into the pipe, then out without any cleanup of the parent's
        status = 1
        try:
            os.close(read_end)
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(marshal.dumps({name: make(name) for name in forked}))
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    pipe = os.fdopen(read_end, "rb")
    try:
        files = {name: make(name) for name in names if name not in forked}
        sent = pipe.read()
    finally:  # also when making ours failed: a child still writing gets EPIPE and ends
        pipe.close()
        _, status = os.waitpid(pid, 0)
    files |= marshal.loads(sent) if status == 0 else {name: make(name) for name in forked}  # noqa: S302 - our child's
    return {name: files[name] for name in names}
