"""Where a lab comes from: a topology file or a built-in preset."""

from dataclasses import dataclass
from pathlib import Path

from nsgen.topology import presets, yaml_file
from nsgen.topology.model import Lab
from nsgen.validate.lab import build_lab


@dataclass(frozen=True)
class LoadedLab:
    """A validated lab and the words naming its origin in generated headers (`preset 'pair'`, `lab.yaml`)."""

    lab: Lab
    origin: str


def load(
    path: Path | None = None, preset: str | None = None, prefix: str | None = None, count: int | None = None
) -> LoadedLab:
    """Load and validate the lab from `path`, else from `preset` (default: `pair`) at size `count`."""
    if path is not None:
        # The origin goes into comments of the scripts: a file name must not be able to end a comment line.
        origin = path.name if path.name.isprintable() else ascii(path.name)
        return from_document(yaml_file.read(path), path.name, origin, prefix)
    name = preset or presets.DEFAULT_PRESET
    sized = f" --count {count}" if count is not None else ""
    return from_document(presets.build(name, count), f"preset {name}", f"preset '{name}'{sized}", prefix)


def from_document(document: object, source: str, origin: str, prefix: str | None = None) -> LoadedLab:
    """Validate a parsed topology; `source` names it in problems, `origin` in generated headers."""
    return LoadedLab(build_lab(document, source, prefix), origin)
