"""The text phase: no string of the topology hides characters from the reviewer of its scripts.

A description, a service's command or a check's command is copied into setup.sh and verify.sh, the
files someone reads before running them as root: a bidirectional control (U+202E) or another
invisible format character there would show the reviewer other text than bash runs.
"""

import unicodedata
from typing import Any

from nsgen.validate.context import Context, Path


def check(ctx: Context) -> None:
    """Every string of the document (keys too) free of Unicode format characters (category Cf)."""
    _walk(ctx, [], ctx.doc)


def _walk(ctx: Context, path: Path, value: Any) -> None:
    # an ASCII string holds no format character (the first, U+00AD, is past it): a lab's strings are
    # passed over without a look at their characters, or a list for their path
    if isinstance(value, dict):
        for key, item in value.items():
            if not (isinstance(key, str) and key.isascii()):
                _hidden(ctx, [*path, key], key)
            if isinstance(item, (dict, list)):
                _walk(ctx, [*path, key], item)
            elif not (isinstance(item, str) and item.isascii()):
                _hidden(ctx, [*path, key], item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, (dict, list)):
                _walk(ctx, [*path, index], item)
            elif not (isinstance(item, str) and item.isascii()):
                _hidden(ctx, [*path, index], item)
    else:
        _hidden(ctx, path, value)


def _hidden(ctx: Context, path: Path, text: Any) -> None:
    found = sorted({f"U+{ord(c):04X}" for c in text if unicodedata.category(c) == "Cf"}) if isinstance(text, str) else []
    if found:
        ctx.problem(path, f"an invisible format character ({', '.join(found)}): a reviewer of the scripts would not see it")
