"""Commands for documentation: record (a real run as an asciinema cast), play, docs (an offline page)."""

import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from nsgen.cli.options import Count, File, Prefix, Preset, load, one_machine, reports_problems, write_or_check
from nsgen.problems import Problem, TopologyError
from nsgen.render import docs_page, writing
from nsgen.render import guide as guide_pages
from nsgen.run import guide_parts, recording, scripts
from nsgen.validate import sources


@reports_problems
def record(
    file: File = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Cast to write (default: LAB.cast).")] = None,
    cols: Annotated[int, typer.Option(min=20, help="Terminal width.")] = recording.CastOptions.cols,
    rows: Annotated[int, typer.Option(min=5, help="Terminal height.")] = recording.CastOptions.rows,
    title: Annotated[Optional[str], typer.Option(help="The cast's title.")] = None,
    typing_speed: Annotated[
        float, typer.Option(min=0, help="Seconds per typed character (0: each command at once).")
    ] = recording.CastOptions.typing_speed,
    idle_time_limit: Annotated[
        Optional[float], typer.Option(min=0, help="Players shorten pauses longer than this many seconds.")
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Keep the real timings (demo.sh types for real).")] = False,
    gif: Annotated[Optional[Path], typer.Option(help="Also render the cast as an animated GIF (needs agg).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite a cast (and GIF) already there.")] = False,
) -> None:
    """Record the lab's demo.sh, run for real, as a reproducible asciinema cast (and a GIF)."""
    loaded = one_machine(load(file, preset, prefix, count), "record")
    renderer = recording.agg()
    if gif is not None and renderer is None:
        raise TopologyError([Problem("--gif", "", recording.AGG_MISSING)])
    cast = output or Path(f"{loaded.lab.name}.cast")
    for path in (cast, *([gif] if gif is not None else [])):  # before the demo runs, not after
        writing.check_file(path, force)
    options = recording.CastOptions(cols, rows, title, typing_speed, idle_time_limit, raw)
    with scripts.rendered(loaded) as lab_dir:
        status = recording.record(lab_dir, cast, options)
    if status != 0:
        _failed("record", f"lab '{loaded.lab.name}'", "demo.sh", cast, status)
    if gif is not None and renderer is not None:
        status = recording.make_gif(cast, gif, renderer, idle_time_limit)
    typer.echo(f"recorded lab '{loaded.lab.name}' into {cast}{f' and {gif}' if gif else ''}")
    raise typer.Exit(status)


def play(
    cast: Annotated[Path, typer.Argument(help="An asciinema cast.", exists=True, dir_okay=False)],
    pause_on_markers: Annotated[
        bool, typer.Option("--pause-on-markers", "-m", help="Pause at each step (space goes on).")
    ] = False,
) -> None:
    """Replay a cast in this terminal (asciinema play), its steps as markers."""
    raise typer.Exit(recording.play(cast, pause_on_markers))


@reports_problems
def docs(
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write the page into.")],
    file: File = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
    cast: Annotated[Optional[Path], typer.Option(help="Show this cast instead of recording the demo now.")] = None,
    guide: Annotated[
        bool, typer.Option("--guide", help="The guide's five parts: a page each (a cast already in OUTPUT is kept), an index.")
    ] = False,
) -> None:
    """Write the lab's static HTML page (offline): its demo in a player, with its steps as chapters, its
    topology, its scripts; with --guide, a page for each of the guide's five parts and an index (Parts III-V are
    recorded in a sandbox of namespaces, and need root, jq, and for Part V containerd, runc and a static busybox)."""
    if guide and any(given is not None for given in (file, preset, prefix, count, cast)):
        message = "writes the guide's own parts, with the guide's names: give no topology, preset, prefix, count or cast"
        raise TopologyError([Problem("--guide", "", message)])
    if guide:
        _guide(output)
        return
    loaded = one_machine(load(file, preset, prefix, count), "docs")
    if cast is not None and (problem := recording.cast_problem(cast)):
        raise TopologyError([Problem(str(cast), "", problem)])
    if cast is not None and not recording.finished(cast, loaded.lab.name):
        ended = next(reversed(recording.last_lines(cast, 1)), "nothing")
        problem = f"its demo of lab '{loaded.lab.name}' did not run to its end (it ends with: {ended}): record it again"
        raise TopologyError([Problem(str(cast), "", problem)])
    with scripts.rendered(loaded) as lab_dir:
        if cast is None:
            cast = lab_dir / f"{loaded.lab.name}.cast"
            status = recording.record(lab_dir, cast)
            if status != 0:
                _failed("docs", f"lab '{loaded.lab.name}'", "demo.sh", cast, status)
        page = docs_page.files(loaded, cast)
    write_or_check(page, output, (), False, f"wrote the page of lab '{loaded.lab.name}' into {output}/: {', '.join(page)}")


def _guide(output: Path) -> None:
    """The guide's pages into `output`: each part recorded now (a demo part in a sandbox), unless its cast is there.

    Checked before anything is recorded, each check stopping the rest: the casts kept in `output`, then `output`
    itself (new, or nsgen's to write again), then what this machine lacks for the parts to record; so a problem of
    what the user gave reads the same on any machine, as root or not."""
    labs = {part.number: sources.load(preset=part.preset) for part in guide_pages.PARTS if part.preset}
    given = {part.number: output / part.directory / part.cast_name for part in guide_pages.PARTS}
    broken = [Problem("--guide", "", f"{cast}: {why}: delete it to record {guide_pages.PARTS[n - 1].name} again")
              for n, cast in given.items() if cast.exists() and (why := recording.cast_problem(cast))]
    if broken:
        raise TopologyError(broken)
    kept = {str(cast.relative_to(output)): cast.read_text(encoding="utf-8") for cast in given.values() if cast.exists()}
    writing.check({path: kept.get(path) for path in guide_pages.paths()}, output)
    to_record = [part for part in guide_pages.PARTS if not given[part.number].exists()]
    lacking = [Problem("--guide", "", why) for part in to_record if not part.preset and (why := guide_parts.missing(part))]
    if lacking:
        raise TopologyError(lacking)
    with tempfile.TemporaryDirectory(prefix="nsgen-guide-") as scratch:
        casts = dict(given)  # each part's cast: the one kept, or the one recorded now
        for part in to_record:
            cast = casts[part.number] = Path(scratch) / f"{part.directory}.cast"
            if part.preset:
                with scripts.rendered(labs[part.number]) as lab_dir:
                    status = recording.record(lab_dir, cast)
            else:
                status = guide_parts.record(part, Path(scratch) / part.directory, cast)
            if status != 0:
                _failed("docs", part.name, f"the demo of {part.title}", cast, status)
        pages = guide_pages.files({part.number: (labs.get(part.number), casts[part.number]) for part in guide_pages.PARTS})
        recorded = ", ".join(part.name for part in to_record) or "none, each cast kept"
        wrote = f"wrote the guide's pages into {output}/: the index and {len(guide_pages.PARTS)} parts (recorded now: {recorded})"
        write_or_check(pages, output, (), False, wrote)


def _failed(command: str, name: str, demo: str, cast: Path, status: int) -> None:
    """Say how `demo`, of `name`, recorded into `cast` ended (its last lines, if it ran), and exit with its status."""
    if status == 130:
        typer.echo(f"nsgen {command}: interrupted while recording {name}: nothing written", err=True)
        raise typer.Exit(130)
    typer.echo(f"nsgen {command}: {demo} failed with exit status {status}", err=True)
    if cast.exists() and not recording.cast_problem(cast):
        typer.echo("  its last lines:\n" + "".join(f"  | {line}\n" for line in recording.last_lines(cast)), err=True, nl=False)
    raise typer.Exit(status)
