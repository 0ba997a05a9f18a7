"""The CLI as users run it: exit codes, init -> validate -> render, up/verify/down, demo, schema."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import GENERATED_PAIR, leftovers, netns_names, nsgen, run

from nsgen.topology import presets


def test_presets_lists_one_line_each() -> None:
    result = nsgen("presets")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert len(lines) == len(presets.PRESETS)
    assert lines[0].startswith("pair ")


def test_init_validate_render_round_trip(tmp_path: Path) -> None:
    topology = tmp_path / "lab.yaml"
    assert nsgen("init", "--preset", "pair", "-o", topology).returncode == 0
    assert topology.read_text().startswith("# nsgen topology")
    refused = nsgen("init", "-o", topology)
    assert refused.returncode == 2 and "exists already" in refused.stderr
    valid = nsgen("validate", topology)
    assert valid.returncode == 0, valid.stderr
    assert "ok: lab 'pair', 2 namespaces, 1 link" in valid.stdout
    assert nsgen("render", topology, "-o", tmp_path / "out").returncode == 0
    for name in ("setup.sh", "teardown.sh", "verify.sh", "helpers.sh", "topology.yaml"):
        rendered = (tmp_path / "out" / name).read_text()
        committed = (GENERATED_PAIR / name).read_text()
        assert rendered == committed.replace("from preset 'pair'.", "from lab.yaml.")


def test_normalised_topology_renders_the_same_lab(tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert nsgen("render", GENERATED_PAIR / "topology.yaml", "-o", again).returncode == 0
    assert (again / "topology.yaml").read_text() == (GENERATED_PAIR / "topology.yaml").read_text()


def test_schema_is_valid_and_accepts_every_preset() -> None:
    result = nsgen("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    for preset in presets.PRESETS.values():
        jsonschema.validate(preset.build(), schema)
    normalised = yaml.safe_load((GENERATED_PAIR / "topology.yaml").read_text())
    jsonschema.validate(normalised, schema)


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert nsgen("render", "--preset", "nope").returncode == 2
    assert "'nope' is not one of 'pair', 'bridge', 'mesh', 'router', 'host'" in nsgen("render", "--preset", "nope").stderr
    both = nsgen("up", GENERATED_PAIR / "topology.yaml", "--preset", "pair", in_process=True)
    assert both.returncode == 2 and "not both" in both.stderr
    assert nsgen("render", "--no-such-option").returncode == 2
    long_prefix = nsgen("render", "--prefix", "x" * 15, "-o", tmp_path / "out")
    assert long_prefix.returncode == 2 and "prefix" in long_prefix.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.kernel
def test_up_verify_down_pass_on_exit_status(prefix: str) -> None:
    nothing = nsgen("verify", "--prefix", prefix)  # nothing is up yet: no lab to verify
    assert nothing.returncode == 2 and nothing.stderr == f"nsgen: no lab of prefix '{prefix}' is running: give its topology file or --preset\n"
    up = nsgen("up", "--prefix", prefix)
    assert up.returncode == 0, up.stderr
    assert "lab pair is up: 2 namespace(s), 0 root-namespace device(s)" in up.stdout
    again = nsgen("up", "--prefix", prefix)
    assert again.returncode == 0 and "already up: nothing to do" in again.stdout
    verify = nsgen("verify", "--preset", "pair", "--prefix", prefix)
    assert verify.returncode == 0 and "2 passed, 0 failed" in verify.stdout
    down = nsgen("down", "--prefix", prefix)
    assert down.returncode == 0 and "is down" in down.stdout
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_demo_runs_every_phase_and_leaves_nothing(prefix: str, tmp_path: Path) -> None:
    before = netns_names()
    result = nsgen("demo", "--prefix", prefix, "--workdir", tmp_path / "kept")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    phases = ["[1/5] render", "[2/5] set up", "[3/5] show links", "[4/5] verify", "[5/5] tear down", "demo passed"]
    assert [out.index(phase) for phase in phases] == sorted(out.index(phase) for phase in phases)
    assert f"--- netns {prefix}ns-0 ---" in out and "inet 172.16.0.3/32" in out
    assert "ok    ns-0 -> 172.16.0.3" in out and "ok    ns-1 -> 172.16.0.2" in out
    assert (tmp_path / "kept" / "setup.sh").exists()
    assert leftovers(prefix) == set() and netns_names() == before


@pytest.mark.kernel
def test_demo_tears_down_only_a_lab_it_set_up(prefix: str, tmp_path: Path) -> None:
    """A name of the lab taken (someone's namespace), or the lab up already: the demo refuses before it
    sets anything up, and what was there stays (it tore both down)."""
    blocker = f"{prefix}ns-1"
    run("ip", "netns", "add", blocker, check=True)
    result = nsgen("demo", "--prefix", prefix)
    assert result.returncode == 2 and "[5/5]" not in result.stdout
    assert f"is there already (or its names are taken: namespace {blocker}): the demo sets up a lab of its own" in result.stderr
    assert leftovers(prefix) == {blocker}
    run("ip", "netns", "del", blocker, check=True)
    assert nsgen("up", "--prefix", prefix).returncode == 0
    again = nsgen("demo", "--prefix", prefix)
    assert again.returncode == 2 and "nsgen down first" in again.stderr
    assert leftovers(prefix) == {f"{prefix}ns-0", f"{prefix}ns-1"}  # the lab that was up stays up
    assert nsgen("down", "--prefix", prefix).returncode == 0
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_demo_tears_down_even_when_its_output_is_closed(prefix: str) -> None:
    reader = subprocess.Popen([sys.executable, "-m", "nsgen", "demo", "--prefix", prefix], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    assert reader.stdout is not None
    reader.stdout.readline()
    reader.stdout.close()  # like `nsgen demo | head -1`
    reader.wait(timeout=60)
    assert leftovers(prefix) == set()


@pytest.mark.parametrize(
    "args, message",
    [
        (["render", "--no-such-option"], "No such option: --no-such-option"),
        (["render", "--style", "fancy"], "Invalid value for '--style': 'fancy' is not one of 'batched', 'tutorial'."),
        (["graph", "--format", "svg"], "'svg' is not one of 'mermaid', 'dot'."),
        (["runtime", "nope.sh"], "'nope.sh' is no script, section or file (a file in this directory: ./nope.sh)"),
    ],
)
def test_a_bad_flag_is_one_usage_line_and_exit_2(args: list[str], message: str) -> None:
    result = nsgen(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.rstrip().endswith("--help)")


def test_help_lists_the_choices() -> None:
    assert "--style <batched|tutorial>" in nsgen("up", "--help").stdout
    assert "<mermaid|dot>" in nsgen("graph", "--help").stdout


def test_bare_nsgen_prints_its_help_and_h_and_version_work() -> None:
    bare = nsgen()
    assert bare.returncode == 0 and bare.stdout.startswith("Usage: nsgen [OPTIONS] COMMAND [ARGS]...\n")
    assert "\n  render " in bare.stdout and bare.stderr == ""
    assert nsgen("-h").stdout == bare.stdout
    assert nsgen("--version").stdout == nsgen("version").stdout != ""
    assert nsgen("render", "-h").stdout.startswith("Usage: nsgen render")


def test_init_writes_only_what_validate_accepts(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    refused = nsgen("init", "--preset", "bridge", "-n", "1024", "-o", big)  # one port too many (100000 took 3 s to refuse)
    assert refused.returncode == 2 and not big.exists()
    assert refused.stderr == ("--preset bridge: bridges.v-net-0: bridge 'v-net-0' has 1024 ports; a Linux bridge takes at"
                              " most 1023 (the kernel refuses more with 'Exchange full')\n")


@pytest.mark.parametrize("kind", ["missing", "directory", "not a cast"])
def test_docs_refuses_a_cast_that_is_not_one(tmp_path: Path, kind: str) -> None:
    cast = tmp_path / "pair.cast"
    if kind == "directory":
        cast.mkdir()
    elif kind == "not a cast":
        cast.write_text("hello\n")
    result = nsgen("docs", "--preset", "pair", "--cast", cast, "-o", tmp_path / "site", in_process=True)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"{cast}: ")
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("kind", ["a user's file", "a symlink", "a directory", "a directory, with /"])
def test_record_refuses_what_would_lose_a_users_file_before_the_demo_runs(tmp_path: Path, prefix: str, kind: str) -> None:
    notes = tmp_path / "notes.cast"
    notes.write_text("my notes\n")
    cast = tmp_path / "out.cast"
    if kind == "a user's file":
        cast = notes
    elif kind == "a symlink":
        cast.symlink_to(notes)
    else:
        cast = tmp_path / "dir"
        cast.mkdir()
    given = f"{cast}/" if kind.endswith("/") else str(cast)
    result = nsgen("record", "--preset", "pair", "--prefix", prefix, "-o", given, in_process=True)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"nsgen record: {cast}: ")
    assert notes.read_text() == "my notes\n" and not any(name.startswith(prefix) for name in netns_names())
