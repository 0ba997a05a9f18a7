"""The words problems use to name what was found and what was known."""

import difflib
from collections.abc import Iterable
from typing import Any


def known(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'? known: a, b)`: the close name if there is one, and every known name."""
    names = list(choices)
    close = next(iter(difflib.get_close_matches(word, names, n=1, cutoff=0.8)), None)
    hint = f"did you mean '{close}'? " if close else ""
    return f" ({hint}known: {', '.join(names)})" if names else " (none is declared)"


def describe(value: Any) -> str:
    """A value as a problem names it: `a list`, `a string 'x'`, `nothing (null)`."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a mapping"
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    return f"{kinds.get(type(value), type(value).__name__)} {value!r}"
