"""Check my work: a learner types a lab's setup in the guide's form, one step at a time, and `nsgen check`
(and the standalone check.sh) names the next step each time, what it lacks, and exits 0 at the end."""

import shlex
from pathlib import Path

import pytest
from conftest import leftovers, nsgen, run

from nsgen.plan import lab_plans, progress
from nsgen.render import lab_files, styles, writing
from nsgen.validate import sources


def test_each_fact_belongs_to_the_step_that_makes_it() -> None:
    lab = sources.load(preset="pair").lab
    stages = progress.stages(lab, lab_plans.setup(lab))
    assert [(s.label, [f.label for f in s.facts]) for s in stages] == [
        ("create new namespaces", ["ns-0: namespace", "ns-1: namespace"]),
        (
            "create 1 veth pair, each end directly where it lives",
            ["ns-0: device veth-0", "ns-0: veth-0 mtu 1500", "ns-1: device veth-1", "ns-1: veth-1 mtu 1500"],
        ),
        ("give those devices an ip addr", ["ns-0: veth-0 address 172.16.0.2/32", "ns-1: veth-1 address 172.16.0.3/32"]),
        ("an IPv4-only lab: no IPv6 link-local addresses", []),
        ("set the interfaces up, and each namespace's loopback", ["ns-0: lo up", "ns-0: veth-0 up", "ns-1: lo up", "ns-1: veth-1 up"]),
        (
            "route the traffic: without routes a namespace reaches only its own subnets",
            ["ns-0: route 172.16.0.0/16 dev veth-0", "ns-1: route 172.16.0.0/16 dev veth-1"],
        ),
    ]


def _type(lab_dir: Path, stage: progress.Stage, names: dict[str, str]) -> None:
    """A learner types a step's commands as the guide writes them (helpers.sh's aliases)."""
    lines = [shlex.join(styles.tutorial_words(command, names)) for command in stage.step.commands]
    typed = run("bash", "-c", "source ./helpers.sh && " + " && ".join(lines), cwd=lab_dir)
    assert typed.returncode == 0, typed.stderr


def _checked(lab_dir: Path, preset: str, prefix: str) -> tuple[int, list[str]]:
    """`nsgen check`'s exit status and lines, asserted to be check.sh's too."""
    checked = nsgen("check", "--preset", preset, "--prefix", prefix)
    standalone = run("bash", lab_dir / "check.sh")
    assert (standalone.returncode, standalone.stdout) == (checked.returncode, checked.stdout), standalone.stderr
    return checked.returncode, checked.stdout.splitlines()


@pytest.mark.kernel
@pytest.mark.parametrize("preset", ["pair", "bridge"])
def test_check_names_the_next_step_after_each_one_typed_and_passes_at_the_end(
    preset: str, tmp_path: Path, prefix: str
) -> None:
    loaded = sources.load(preset=preset, prefix=prefix)
    lab_dir = tmp_path / preset
    writing.write(lab_files.render(loaded, "tutorial"), lab_dir)
    stages = progress.stages(loaded.lab, lab_plans.setup(loaded.lab))
    names = styles.aliases(loaded.lab)
    try:
        for stage in stages:
            status, lines = _checked(lab_dir, preset, prefix)
            assert status == 1
            done = [line for line in lines if line.startswith("✓")]
            if stage.facts:  # a step that leaves nothing to read (link-local off) is done as soon as it is reached
                assert len(done) == stage.number - 1, lines
                assert lines[len(done)] == f'✗ step {stage.number} "{stage.label}": not done'
                assert "  its commands, as the guide writes them:" in lines
            _type(lab_dir, stage, names)
        status, lines = _checked(lab_dir, preset, prefix)
        assert status == 0, lines
        assert lines[-1] == f"lab {preset}: every step is done"
        assert len([line for line in lines if line.startswith("✓")]) == len(stages)
    finally:
        run("bash", lab_dir / "teardown.sh")
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_wrong_address_and_a_missing_route_are_named(tmp_path: Path, prefix: str) -> None:
    loaded = sources.load(preset="pair", prefix=prefix)
    lab_dir = tmp_path / "pair"
    writing.write(lab_files.render(loaded), lab_dir)
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    try:
        ns0 = ["ip", "netns", "exec", f"{prefix}ns-0", "ip"]
        assert run(*ns0, "addr", "del", "172.16.0.2/32", "dev", "veth-0").returncode == 0
        assert run(*ns0, "addr", "add", "172.16.0.9/32", "dev", "veth-0").returncode == 0
        status, lines = _checked(lab_dir, "pair", prefix)
        assert status == 1
        assert lines[2:6] == [
            '✗ step 3 "give those devices an ip addr": not done',
            "  ns-0: veth-0 address 172.16.0.2/32: missing",
            "  its commands, as the guide writes them:",
            "    ip0 addr add 172.16.0.2 dev veth-0",
        ]
        assert "! not the lab's: ns-0: veth-0 address 172.16.0.9/32: extra" in lines
        assert run(*ns0, "addr", "flush", "dev", "veth-0").returncode == 0
        assert run(*ns0, "addr", "add", "172.16.0.2", "dev", "veth-0").returncode == 0
        assert run("ip", "netns", "exec", f"{prefix}ns-1", "ip", "route", "flush", "dev", "veth-1").returncode == 0
        status, lines = _checked(lab_dir, "pair", prefix)
        assert status == 1
        assert '✗ step 6 "route the traffic: without routes a namespace reaches only its own subnets": not done' in lines
        assert "  ns-1: route 172.16.0.0/16 dev veth-1: missing" in lines
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_lesson_shows_each_step_and_checks_it_after_enter(
    tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`nsgen lesson`: each Enter checks the step just typed (the learner here types it, then presses Enter),
    and a step typed wrong is shown again."""
    from nsgen.cli import learn
    from nsgen.cli.options import PresetName

    loaded = sources.load(preset="pair", prefix=prefix)
    lab_dir = tmp_path / "pair"
    writing.write(lab_files.render(loaded, "tutorial"), lab_dir)
    stages = progress.stages(loaded.lab, lab_plans.setup(loaded.lab))
    names = styles.aliases(loaded.lab)
    pending = list(stages)
    skipped = {3}  # the addresses: the first Enter comes before they are typed

    def enter(prompt: str) -> str:
        stage = pending[0]
        if stage.number in skipped:
            skipped.clear()
            return ""
        _type(lab_dir, pending.pop(0), names)
        return ""

    monkeypatch.setattr("builtins.input", enter)
    try:
        learn.lesson(None, PresetName("pair"), prefix, None)  # returns once every step is done
    except BaseException:
        run("bash", lab_dir / "teardown.sh")
        raise
    out = capsys.readouterr().out
    assert out.count("# --- step 3 of 6: give those devices an ip addr") == 2  # shown again: not done the first time
    assert "  ns-0: veth-0 address 172.16.0.2/32: missing" in out
    assert "ip0 addr add 172.16.0.2 dev veth-0" in out
    assert out.rstrip().endswith("lab pair: every step is done")
    assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_value_changed_by_hand_is_offered_its_repair_and_lesson_shows_what_check_shows(
    tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nsgen.cli import learn
    from nsgen.cli.options import PresetName

    loaded = sources.load(preset="pair", prefix=prefix)
    lab_dir = tmp_path / "pair"
    writing.write(lab_files.render(loaded), lab_dir)
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    try:
        ns0 = ["ip", "netns", "exec", f"{prefix}ns-0", "ip"]
        assert run(*ns0, "link", "set", "dev", "veth-0", "mtu", "1400").returncode == 0
        assert run(*ns0, "addr", "add", "172.16.0.9/32", "dev", "veth-0").returncode == 0
        status, lines = _checked(lab_dir, "pair", prefix)  # check.sh's lines are nsgen check's
        assert status == 1
        assert lines[1:5] == [
            '✗ step 2 "create 1 veth pair, each end directly where it lives": not done',
            "  ns-0: veth-0 mtu 1500: different (1400)",
            "  what repairs it:",
            f"    ip -n {prefix}ns-0 link set dev veth-0 mtu 1500",
        ]
        repaired = run("bash", "-c", lines[4].strip())
        assert repaired.returncode == 0, repaired.stderr  # the command offered works as written

        monkeypatch.setattr("builtins.input", lambda prompt: "")
        learn.lesson(None, PresetName("pair"), prefix, None)  # every step is done: one Enter each
        out = capsys.readouterr().out
        assert "! not the lab's: ns-0: veth-0 address 172.16.0.9/32: extra" in out  # as check shows it
        assert out.rstrip().endswith("lab pair: every step is done, and 1 thing(s) beyond it")
        status, lines = _checked(lab_dir, "pair", prefix)
        assert status == 1 and lines[-1] == "lab pair: every step is done, and 1 thing(s) beyond it"
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_check_and_apply_without_a_file_look_at_the_running_lab(prefix: str) -> None:
    assert nsgen("up", "--preset", "bridge", "-n", "2", "--prefix", prefix).returncode == 0
    try:
        checked = nsgen("check", "--prefix", prefix)  # not pair's steps: bridge's, the lab that runs
        assert (checked.returncode, checked.stdout.splitlines()[-1]) == (0, "lab bridge: every step is done")
        run("ip", "-n", f"{prefix}ns-1", "route", "del", "default", check=True)
        applied = nsgen("apply", "--prefix", prefix)  # its own topology: what repairs its drift
        assert applied.returncode == 0 and "+ ns-1: route default via 172.16.0.1" in applied.stdout, applied.stdout
        assert nsgen("status", "--prefix", prefix).returncode == 0
    finally:
        nsgen("down", "--prefix", prefix)
    assert leftovers(prefix) == set()
    nothing = nsgen("check", "--prefix", prefix)  # none runs: pair, as a learner builds it by hand
    assert nothing.stdout.splitlines()[-1] == "lab pair: 0 of 6 step(s) done"
