"""Every command that writes a directory keeps what nsgen did not write: a user's topology beside the
output, a file given as the directory, a dangling symlink, an edited script, a note of the user's in
a directory nsgen wrote. Each refusal is one line, exit 2, nothing changed."""

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import REPO, nsgen
from test_multihost import TRI

from nsgen.render import writing

CAST = REPO / "docs" / "pair.cast"

#: Each command that writes a directory, as a function of the directory and a multi-host topology;
#: and a file it writes there.
WRITERS: dict[str, tuple[Callable[[Path, Path], list[str | Path]], str]] = {
    "render": (lambda out, _: ["render", "--preset", "pair", "-o", out], "setup.sh"),
    "render multi-host": (lambda out, tri: ["render", tri, "-o", out], "h1/setup.sh"),
    "runtime": (lambda out, _: ["runtime", "-o", out], "setup.sh"),
    "cni": (lambda out, _: ["cni", "-o", out], "install.sh"),
    "plan": (lambda out, _: ["plan", "--preset", "bridge", "-n", "4", "--from", REPO / "generated" / "bridge" / "topology.yaml", "-o", out], "apply.sh"),
    "docs": (lambda out, _: ["docs", "--preset", "pair", "--cast", CAST, "-o", out], "index.html"),
    # setup.sh --dry-run: the scripts are written, nothing is changed, no root needed
    "up --workdir": (lambda out, _: ["up", "--preset", "pair", "--dry-run", "--workdir", out], "setup.sh"),
}


@pytest.fixture(scope="module")
def tri(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("topology") / "tri.yaml"
    path.write_text(yaml.safe_dump(TRI))
    return path


def _write(name: str, out: Path, tri: Path, cwd: Path | None = None):
    command, _ = WRITERS[name]
    return nsgen(*command(out, tri), cwd=cwd, in_process=True)  # each writes a page or a dry run's scripts, or refuses


def _one_line_refusal(result) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("name", WRITERS)
def test_a_directory_of_the_users_own_files_is_refused(tmp_path: Path, name: str, tri: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "lab.yaml").write_text("mine\n")
    result = _write(name, project, tri)
    _one_line_refusal(result)
    assert "not empty, and nsgen did not write it" in result.stderr
    assert sorted(p.name for p in project.iterdir()) == ["lab.yaml"] and (project / "lab.yaml").read_text() == "mine\n"


@pytest.mark.parametrize("name", WRITERS)
def test_a_file_or_a_dangling_symlink_is_refused(tmp_path: Path, name: str, tri: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    result = _write(name, notes, tri)
    _one_line_refusal(result)
    assert "not a directory" in result.stderr and notes.read_text() == "mine\n"
    dangling = tmp_path / "gone"
    dangling.symlink_to(tmp_path / "nowhere")
    result = _write(name, dangling, tri)
    _one_line_refusal(result)
    assert "dangling symlink" in result.stderr and not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("name", WRITERS)
def test_a_directory_nsgen_wrote_is_written_again_keeping_the_users_files(tmp_path: Path, name: str, tri: Path) -> None:
    _, written_file = WRITERS[name]
    (tmp_path / "out").mkdir()  # an empty directory, named relative to where nsgen runs
    first = _write(name, Path("out"), tri, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    out = tmp_path / "out"
    assert (out / writing.MANIFEST).is_file() and (out / written_file).is_file()
    (out / "notes.txt").write_text("mine\n")
    (out / "old-script.sh").write_text("nsgen wrote it once\n")  # as if an older nsgen had written it
    manifest = (out / writing.MANIFEST).read_text()
    digest = writing._sha256("nsgen wrote it once\n")
    (out / writing.MANIFEST).write_text(manifest + f"{digest}  old-script.sh\n")
    again = _write(name, Path("out"), tri, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "left alone, not nsgen's: notes.txt" in again.stdout + again.stderr
    assert (out / "notes.txt").read_text() == "mine\n" and not (out / "old-script.sh").exists()
    assert "old-script.sh" not in (out / writing.MANIFEST).read_text()


@pytest.mark.parametrize("name", WRITERS)
def test_an_edited_file_and_a_users_file_in_the_way_are_refused(tmp_path: Path, name: str, tri: Path) -> None:
    _, written_file = WRITERS[name]
    out = tmp_path / "out"
    assert _write(name, out, tri).returncode == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    edited = out / written_file
    edited.write_text(edited.read_text() + "# my change\n")
    result = _write(name, out, tri)
    _one_line_refusal(result)
    assert f"{written_file} changed since nsgen wrote it" in result.stderr
    assert edited.read_text().endswith("# my change\n")
    shutil.rmtree(out)
    assert _write(name, out, tri).returncode == 0
    manifest = (out / writing.MANIFEST).read_text()
    (out / writing.MANIFEST).write_text("".join(line for line in manifest.splitlines(True) if not line.endswith(f"  {written_file}\n")))
    edited.write_text(edited.read_text() + "# mine\n")
    result = _write(name, out, tri)  # the file is there, and nsgen's manifest does not list it: it is not nsgen's
    _one_line_refusal(result)
    assert f"{written_file} not written by nsgen" in result.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != writing.MANIFEST}.keys() <= before.keys()


def test_check_ignores_the_manifest(tmp_path: Path) -> None:
    out = tmp_path / "pair"
    assert nsgen("render", "--preset", "pair", "-o", out).returncode == 0
    assert nsgen("render", "--preset", "pair", "-o", out, "--check").returncode == 0


def test_a_file_that_holds_what_nsgen_writes_is_no_users_file(tmp_path: Path) -> None:
    """Overwriting a file with its own bytes loses nothing: a directory without a manifest holding only such files is
    written, and so is a file nsgen wrote that now holds what it writes again (a cast the guide keeps, put by hand)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").write_text("same\n")
    writing.write({"a": "same\n", "b": "new\n"}, out, ())
    (out / "a").write_text("other\n")  # as edited by hand
    writing.write({"a": "other\n", "b": "new\n"}, out, ())  # ... and what nsgen is asked to write there now
    assert writing.written(out) == {"a": writing._sha256("other\n"), "b": writing._sha256("new\n")}
    (out / "a").write_text("mine\n")
    with pytest.raises(writing.OutputError, match="a changed since nsgen wrote it"):
        writing.write({"a": "other\n"}, out, ())
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "a").write_text("not what is written\n")
    with pytest.raises(writing.OutputError, match="not empty, and nsgen did not write it"):
        writing.write({"a": "same\n"}, tmp_path / "foreign", ())


def test_writing_into_the_current_directory_keeps_it(tmp_path: Path) -> None:
    """`-o .` a second time replaces the files, not the directory: a shell in it stays in a directory that exists."""
    out = tmp_path / "here"
    out.mkdir()
    for _ in range(2):
        assert nsgen("render", "--preset", "pair", "-o", ".", cwd=out).returncode == 0
        assert out.stat().st_ino == (out / ".").stat().st_ino and (out / "setup.sh").is_file()
    inode = out.stat().st_ino
    assert nsgen("render", "--preset", "bridge", "-o", ".", cwd=out).returncode == 0
    assert out.stat().st_ino == inode and "bridge" in (out / "topology.yaml").read_text()


def test_a_pipe_or_an_empty_directory_of_the_users_is_kept_and_so_is_the_directory_s_mode(tmp_path: Path) -> None:
    """Only files show in a listing of files: a directory nsgen wrote, holding a user's empty directory or pipe,
    is written file by file, not replaced; a directory without a manifest holding them is refused."""
    out = tmp_path / "out"
    writing.write({"a": "same\n"}, out, ())
    (out / "drafts").mkdir()
    os.mkfifo(out / "pipe")
    out.chmod(0o700)
    left = writing.write({"a": "new\n"}, out, ())
    assert left == ["drafts/", "pipe"] and (out / "drafts").is_dir() and (out / "pipe").is_fifo()
    assert (out / "a").read_text() == "new\n" and stat.S_IMODE(out.stat().st_mode) == 0o700
    (out / "drafts").rmdir()
    (out / "pipe").unlink()
    writing.write({"a": "newer\n"}, out, ())  # only nsgen's: replaced in one rename, its mode kept
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "a").write_text("same\n")
    os.mkfifo(bare / "pipe")
    with pytest.raises(writing.OutputError, match="not empty, and nsgen did not write it"):
        writing.write({"a": "same\n"}, bare, ())
    assert (bare / "pipe").is_fifo()
