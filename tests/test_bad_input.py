"""Broken topologies: exit code 2, one line naming file, field and problem, no traceback, nothing written.

Each `tests/bad/NAME.yaml` pairs with `NAME.err`, the exact line nsgen must print (golden, as netlab does).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, nsgen

BAD = Path(__file__).parent / "bad"
CASES = sorted(BAD.glob("*.yaml"))


def _render_into_existing_dir(topology: Path, out_dir: Path) -> tuple[int, str, str]:
    out_dir.mkdir(parents=True)
    (out_dir / "keep.txt").write_text("untouched\n")
    result = nsgen("render", topology, "-o", out_dir)
    return result.returncode, result.stdout, result.stderr


def _assert_refused(topology: Path, out_dir: Path, expected: str) -> None:
    code, stdout, stderr = _render_into_existing_dir(topology, out_dir)
    assert code == 2, stdout + stderr
    assert stderr == expected
    assert len(stderr.splitlines()) == 1
    assert stdout == "" and "Traceback" not in stderr
    assert [p.name for p in out_dir.parent.iterdir()] == [out_dir.name]  # no staging dir left behind
    assert [p.name for p in out_dir.iterdir()] == ["keep.txt"]
    assert (out_dir / "keep.txt").read_text() == "untouched\n"


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("topology", CASES, ids=[case.stem for case in CASES])
def test_bad_topology_is_refused(topology: Path, tmp_path: Path) -> None:
    expected = topology.with_suffix(".err").read_text()
    work = tmp_path / "work"
    work.mkdir()
    copy = work / topology.name
    copy.write_bytes(topology.read_bytes())
    _assert_refused(copy, tmp_path / "dest" / "lab", expected)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("binary.yaml", bytes(range(256)) * 4, "binary.yaml: not a text file (it contains NUL bytes)\n"),
        ("latin1.yaml", "name: caf\xe9\n".encode("latin-1"), "latin1.yaml: not UTF-8 text (bad byte at offset 9)\n"),
        (
            "huge.yaml",
            b"# padding\n" * (1024 * 1024),
            "huge.yaml: file is 10485760 bytes; a topology may have at most 8388608\n",
        ),
    ],
)
def test_files_that_are_not_topologies_are_refused(name: str, content: bytes, expected: str, tmp_path: Path) -> None:
    topology = tmp_path / "in" / name
    topology.parent.mkdir()
    topology.write_bytes(content)
    _assert_refused(topology, tmp_path / "dest" / "lab", expected)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    expected = "absent.yaml: cannot read: No such file or directory\n"
    _assert_refused(tmp_path / "absent.yaml", tmp_path / "dest" / "lab", expected)


def test_the_real_command_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    result = nsgen("validate", BAD / "dangling-link.yaml")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (BAD / "dangling-link.err").read_text()


def test_validate_reports_every_problem_one_per_line(tmp_path: Path) -> None:
    topology = tmp_path / "lab.yaml"
    topology.write_text((BAD / "route-host-bits.yaml").read_text().replace("172.16.0.3]", "172.16.0.2]"))
    result = nsgen("validate", topology)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "lab.yaml: namespaces.ns-1.interfaces.veth-1.addresses[0]: address 172.16.0.2 is already given to ns-0:veth-0",
        "lab.yaml: namespaces.ns-1.routes[0].to: '172.16.0.1/16' has host bits set (did you mean '172.16.0.0/16'?)",
    ]


def test_what_is_not_a_regular_file_is_read_to_its_bound_and_never_waited_for(tmp_path: Path) -> None:
    """/dev/zero grew to gigabytes, and a FIFO nobody writes to hung: both are read without waiting, to the bound."""
    zero = nsgen("validate", "/dev/zero", in_process=True)
    assert (zero.returncode, zero.stderr) == (2, "zero: more than 8388608 bytes; a topology may have at most that\n")
    fifo = tmp_path / "lab.yaml"
    os.mkfifo(fifo)
    hung = nsgen("validate", fifo, in_process=True)
    assert (hung.returncode, hung.stderr) == (2, "lab.yaml: the file is empty; expected a mapping with name, namespaces and links\n")
    piped = subprocess.run(["bash", "-c", f"{sys.executable} -m nsgen validate <(cat {REPO}/examples/web.yaml)"],
                           capture_output=True, text=True, check=False)
    assert piped.returncode == 0 and "ok: lab 'web'" in piped.stdout, piped.stderr  # a pipe with a writer is read
