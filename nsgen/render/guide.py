"""The guide's parts as offline pages (`nsgen docs --guide`): a page for each part, its demo recorded in a player
with its steps as chapters, and an index of the five parts. Parts I and II are presets, each page a lab's page;
Parts III to V use the files of `nsgen cni`, each shown by a demo of its own (templates/guide/part-N.sh.j2), which
`nsgen docs --guide` records in nsgen's sandbox (nsgen.run.sandbox)."""

from dataclasses import dataclass
from pathlib import Path

from nsgen import __version__
from nsgen.render import cni, docs_page, templates
from nsgen.validate.sources import LoadedLab

#: The CNI network of Parts III to V: `nsgen cni` with its defaults.
NETWORK = cni.CniOptions()
#: The image Part V imports (busybox, built offline by nsgen.run.busybox_image) and runs.
IMAGE = "docker.io/library/busybox:latest"


@dataclass(frozen=True)
class Part:
    """A part of the guide: its number, title and cast's name, and either the preset that is its lab or, for a part
    shown by a demo of its own, what it is about, what typing it changes on a machine, the CNI files its page shows
    and the programs its demo runs."""

    number: int
    title: str
    cast_name: str
    preset: str | None = None
    about: str = ""
    touches: str = ""
    shown: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()

    @property
    def directory(self) -> str:
        return f"part-{self.number}"

    @property
    def name(self) -> str:
        """`Part III`: the title's first words."""
        return self.title.split(":")[0]


PARTS = (
    Part(1, "Part I: two namespaces joined by a veth pair", preset="pair", cast_name="pair.cast"),
    Part(2, "Part II: a bridge, because a full mesh needs n(n-1)/2 links", preset="bridge", cast_name="bridge.cast"),
    Part(3, "Part III: a dummy CNI plugin", about=(
        "A CNI plugin is a program: a runtime runs it with CNI_* variables in its environment and the network's config"
        " on stdin, and reads its result on stdout. The dummy plugin configures nothing: it logs what it was sent and"
        " answers as little as the spec allows. Here it is called by hand, as a runtime would: ADD, VERSION, DEL."),
        touches="it makes the namespace demo (deleted at the end) and appends to /var/log/nsgen-cni-dummy.log",
        shown=("dummy",), needs=("jq",), cast_name="dummy.cast"),
    Part(4, "Part IV: a real CNI plugin from scratch", about=(
        "nsgen-bridge, a CNI plugin in bash, joins containers to a Linux bridge: a veth pair per container, an address"
        " from its own store, a default route. Here it is called by hand for two containers' namespaces: ADD, a ping"
        " between them, CHECK (passing, then failing once an address is deleted), DEL."),
        touches=(f"namespaces and the bridge {NETWORK.bridge} (deleted at the end), and the address store in"
                 f" /var/lib/cni/networks/{NETWORK.name}"),
        shown=("nsgen-bridge", f"{NETWORK.name}.conflist"), needs=("jq", "flock", "nsenter", "sha256sum"),
        cast_name="nsgen-bridge.cast"),
    Part(5, "Part V: containerd using it", about=(
        "containerd runs the containers, and its client ctr, with --cni, calls the plugin: ADD when a container"
        " starts, DEL when it ends. install.sh puts nsgen-bridge and its config where ctr looks. Here containerd is"
        " started by hand, busybox imported from a file, and a second container pings the first."),
        touches=(f"/opt/cni/bin, /etc/cni/net.d, /var/lib/cni, the bridge {NETWORK.bridge}, the image in"
                 " /var/lib/containerd, /var/log/containerd.log, and a containerd of its own on /run/containerd, which"
                 " clashes with one already running"),
        shown=("install.sh", "containerd/run-container.sh", "containerd/config.toml"),
        needs=("jq", "flock", "nsenter", "sha256sum", "containerd", "ctr", "runc", "busybox"),
        cast_name="containerd.cast"),
)


def demo_files(part: Part) -> dict[str, str]:
    """A demo part's directory, by path: its demo.sh, and the CNI files of NETWORK under cni/."""
    network = cni.validate(NETWORK)
    context = {
        "part": part, "net": network, "options": NETWORK, "version": __version__,
        "command": NETWORK.command_line(), "image": IMAGE, "first": str(network.ipv4.range_start),
    }
    demo = templates.template(f"guide/{part.directory}.sh.j2").render(context)
    return {"demo.sh": demo} | {f"cni/{path}": text for path, text in cni.render_cni(NETWORK).items()}


#: A demo part's executables, by path under its directory.
EXECUTABLES = frozenset({"demo.sh", *(f"cni/{path}" for path in cni.EXECUTABLES)})


def files(recorded: dict[int, tuple[LoadedLab | None, Path]]) -> dict[str, str]:
    """The index and each recorded part's page (`part-N/index.html`, its cast, the player), by path: a preset's
    part with its lab (LoadedLab), a demo part with None."""
    result: dict[str, str] = {}
    steps = {}
    for number, (loaded, cast) in recorded.items():
        part = PARTS[number - 1]
        page = docs_page.files(loaded, cast, part.title) if loaded is not None else _demo_page(part, cast)
        result |= {f"{part.directory}/{name}": text for name, text in page.items()}
        steps[number] = len(docs_page.chapters(cast.read_text(encoding="utf-8")))
    index = docs_page.environment().get_template("docs/guide.html.j2").render(parts=PARTS, steps=steps, version=__version__)
    return {"index.html": index, **result}


def paths() -> list[str]:
    """Every path `files` writes, known before any part is recorded."""
    names = ("index.html", *docs_page.PLAYER.values())
    return ["index.html", *(f"{part.directory}/{name}" for part in PARTS for name in (*names, part.cast_name))]


def _demo_page(part: Part, cast: Path) -> dict[str, str]:
    """A demo part's page, its cast and the player, by name."""
    cast_text = cast.read_text(encoding="utf-8")
    shown = demo_files(part)
    page = docs_page.environment().get_template("docs/part.html.j2").render(
        part=part,
        version=__version__,
        command=NETWORK.command_line(),
        cast=cast_text,
        cast_name=part.cast_name,
        poster=docs_page.first_command_end(cast_text),
        chapters=docs_page.chapters(cast_text),
        scripts=[("demo.sh", shown["demo.sh"]), *((name, shown[f"cni/{name}"]) for name in part.shown)],
    )
    return docs_page.player() | {part.cast_name: cast_text, "index.html": page}
