"""A running lab's record: the normalised topology setup.sh and apply.sh leave under /run/nsgen; a
multi-host lab's, the controller's own, which `nsgen up` and `apply` write under /run/nsgen-multihost
(each host keeps its own record too, under its /run/nsgen)."""

from pathlib import Path

from nsgen.problems import Problem, TopologyError
from nsgen.topology import yaml_file
from nsgen.topology.model import Lab
from nsgen.validate import sources

RECORDS = Path("/run/nsgen")
#: The controller's records of the multi-host labs it deployed (a directory apart: no lab's key names it).
MULTIHOST_RECORDS = Path("/run/nsgen-multihost")


def record_path(lab: Lab) -> Path:
    """Where the running `lab` is recorded: /run/nsgen/PREFIXNAME.yaml (the scripts' lab_key); a
    multi-host lab, on the controller: /run/nsgen-multihost/PREFIXNAME.yaml."""
    return (MULTIHOST_RECORDS if lab.machines else RECORDS) / f"{lab.key}.yaml"


def write_record(lab: Lab, text: str) -> None:
    """Record the multi-host `lab` as running on the hosts (`text`: its normalised topology)."""
    MULTIHOST_RECORDS.mkdir(parents=True, exist_ok=True)
    record_path(lab).write_text(text)


def recorded(lab: Lab) -> sources.LoadedLab | None:
    """What the record of `lab` (same name and prefix) says is running, if there is a record that names a
    lab (an empty one names none, as the scripts take it too); a record of another lab whose prefix and
    name make the same key (`rv-a-` and `bridge`, `rv-` and `a-bridge`) is refused, naming both."""
    path = record_path(lab)
    if not path.exists():
        return None
    text = yaml_file.read_text(path)
    if text == yaml_file.dump(yaml_file.document(lab)):  # `lab`'s own record, byte for byte: not validated again
        return sources.LoadedLab(lab, f"the record {path}")
    loaded = _named(yaml_file.parse(text, path.name), path)
    if loaded is None:
        return None
    if (loaded.lab.name, loaded.lab.prefix) != (lab.name, lab.prefix):
        said = f"records lab '{loaded.lab.name}' of prefix '{loaded.lab.prefix}', whose prefix and name make the key"
        said += f" of lab '{lab.name}' of prefix '{lab.prefix}': give one of them another --prefix"
        raise TopologyError([Problem(str(path), "", said)])
    return loaded


def _read(path: Path) -> sources.LoadedLab | None:
    """The lab a record names, or None where it names none (empty, or cut short before its name)."""
    return _named(yaml_file.read(path), path)


def _named(document: object, path: Path) -> sources.LoadedLab | None:
    """The lab the record at `path` (parsed: `document`) names, or None where it names none."""
    if not isinstance(document, dict) or "name" not in document:
        return None
    return sources.from_document(document, str(path), f"the record {path}")


def running() -> list[sources.LoadedLab]:
    """Every lab recorded as running on this machine (or deployed from it), by record name."""
    paths = [path for where in (RECORDS, MULTIHOST_RECORDS) if where.is_dir() for path in sorted(where.glob("*.yaml"))]
    return [loaded for path in paths if (loaded := _read(path)) is not None]


def owner(lab: Lab) -> sources.LoadedLab | None:
    """Another running lab (by its record) that has one of `lab`'s namespaces or root-namespace devices."""
    names = {ns.netns for ns in lab.namespaces} | set(lab.root_devices)
    for other in running():
        if other.lab.machines:  # its namespaces are on its hosts
            continue
        if other.lab.key != lab.key and names & ({ns.netns for ns in other.lab.namespaces} | set(other.lab.root_devices)):
            return other
    return None


def load_old(new: Lab, old_file: Path | None = None) -> Lab:
    """The topology the lab of `new` runs: `old_file` (--from), else its record. Both must be the
    same lab (name and prefix): a plan changes a lab, it does not rename it."""
    if old_file is not None:
        old = sources.from_document(yaml_file.read(old_file), old_file.name, old_file.name, new.prefix).lab
    else:
        path = record_path(new)
        if not path.exists():
            raise TopologyError(
                [
                    Problem(
                        str(path),
                        "",
                        f"no record of lab '{new.name}' here: is it up (set up by nsgen)? Give its topology with --from OLD",
                    )
                ]
            )
        old = sources.from_document(yaml_file.read(path), path.name, path.name).lab
    if (old.name, old.prefix) != (new.name, new.prefix):
        raise TopologyError(
            [
                Problem(
                    "--from",
                    "",
                    f"the running lab is '{old.prefix}{old.name}', the new one '{new.prefix}{new.name}':"
                    " a plan changes a lab, not its name",
                )
            ]
        )
    return old
