"""The guide's parts as offline pages (`nsgen docs --guide`): each recorded part's lab page (its demo in a
player, with its steps as chapters), and an index of the five parts."""

from dataclasses import dataclass
from pathlib import Path

from nsgen import __version__
from nsgen.render import docs_page
from nsgen.validate.sources import LoadedLab


@dataclass(frozen=True)
class Part:
    """A part of the guide: its number, its title, and the preset that is its lab (None: not a preset's)."""

    number: int
    title: str
    preset: str | None
    how: str  # what shows it for now, where it has no page

    @property
    def directory(self) -> str:
        return f"part-{self.number}"


PARTS = (
    Part(1, "Part I: two namespaces joined by a veth pair", "pair", ""),
    Part(2, "Part II: a bridge, because a full mesh needs n(n-1)/2 links", "bridge", ""),
    Part(3, "Part III: a dummy CNI plugin", None, "nsgen cni -o cni/ writes it (cni/dummy), called by hand as the guide does"),
    Part(4, "Part IV: a real CNI plugin from scratch", None, "nsgen cni -o cni/ writes it (cni/nsgen-bridge: ADD, CHECK, DEL)"),
    Part(5, "Part V: containerd using it", None, "nsgen cni -o cni/ writes cni/containerd/ (its config and run-container.sh)"),
)


def files(recorded: dict[int, tuple[LoadedLab, Path]]) -> dict[str, str]:
    """The index and each recorded part's page (`part-N/index.html`, its cast, the player), by path."""
    result: dict[str, str] = {}
    steps = {}
    for number, (loaded, cast) in recorded.items():
        part = PARTS[number - 1]
        page = docs_page.files(loaded, cast)
        result |= {f"{part.directory}/{name}": text for name, text in page.items()}
        steps[number] = len(docs_page.chapters(cast.read_text(encoding="utf-8")))
    index = docs_page.environment().get_template("docs/guide.html.j2").render(parts=PARTS, steps=steps, version=__version__)
    return {"index.html": index, **result}
