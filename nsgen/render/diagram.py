"""`nsgen graph`: the lab's topology as a Mermaid or Graphviz DOT diagram."""

from enum import Enum

from nsgen.render.templates import template
from nsgen.validate.sources import LoadedLab


class GraphFormat(str, Enum):
    """The diagram languages of `nsgen graph`."""

    mermaid = "mermaid"
    dot = "dot"


def graph(loaded: LoadedLab, fmt: GraphFormat) -> str:
    """The lab's topology as a Mermaid or Graphviz DOT diagram."""
    return template(f"graph.{GraphFormat(fmt).value}.j2").render(lab=loaded.lab)
