"""Where a lab comes from: a topology file or a built-in preset."""

from dataclasses import dataclass
from pathlib import Path

from nsgen import presets, topology_file
from nsgen.model import Lab
from nsgen.validation import build_lab


@dataclass(frozen=True)
class LoadedLab:
    """A validated lab and the words naming its origin in generated headers (`preset 'pair'`, `lab.yaml`)."""

    lab: Lab
    origin: str


def load(path: Path | None = None, preset: str | None = None, prefix: str | None = None) -> LoadedLab:
    """Load and validate the lab from `path`, else from `preset` (default: the `pair` preset)."""
    if path is not None:
        return LoadedLab(build_lab(topology_file.read(path), path.name, prefix), path.name)
    name = preset or presets.DEFAULT_PRESET
    return LoadedLab(build_lab(presets.get(name).build(), f"preset {name}", prefix), f"preset '{name}'")
