"""Problems found in a topology, each reported as one line: file, field path, what is wrong."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a topology: `source` is the file, `field` the path inside it."""

    source: str
    field: str
    message: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.source, self.field, self.message) if part)


class TopologyError(Exception):
    """A topology that cannot be rendered; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


def field_path(parts: "tuple[object, ...] | list[object]") -> str:
    """`('links', 0, 1)` -> `links[0][1]`; `('namespaces', 'ns-0', 'alias')` -> `namespaces.ns-0.alias`."""
    text = ""
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif isinstance(part, str) and part and all(ch.isalnum() or ch in "_-" for ch in part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text
