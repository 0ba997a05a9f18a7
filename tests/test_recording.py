"""Recordings, for real: demo.sh live, casts made by asciinema's recorder, GIFs by agg, the page in Chromium."""

import json
import re
from html import unescape as html_unescape
from pathlib import Path

import pytest
from browser import SCREENSHOT_BUDGET, chromium, page_console, page_dom, terminal_text
from conftest import REPO, leftovers, nsgen, run, shellcheck

from nsgen.plan import lab_plans, progress
from nsgen.render import docs_page, lab_files, writing
from nsgen.render.demo_terminal import STEP
from nsgen.run import recording
from nsgen.topology import presets
from nsgen.validate import sources

#: Values the kernel picks, masked before two recordings are compared.
KERNEL_PICKED = [
    (re.compile(r"([0-9a-f]{2}:){5}[0-9a-f]{2}"), "MAC"),
    (re.compile(r"@if\d+"), "@ifN"),
    (re.compile(r"time[= ][\d.]+ ?ms"), "time=T"),
    (re.compile(r"= [\d.]+/[\d.]+/[\d.]+/[\d.]+ ms"), "= RTT"),
]


def lab_dir(tmp_path: Path, prefix: str, preset: str = "pair") -> Path:
    out = tmp_path / preset
    writing.write(lab_files.render(sources.load(preset=preset, prefix=prefix)), out)
    return out


def events(cast: Path) -> tuple[dict, list[list]]:
    header, *lines = cast.read_text().splitlines()
    return json.loads(header), [json.loads(line) for line in lines]


def _after_markers(recorded: list[list]) -> list[list]:
    """The event that follows each marker: the step's comment."""
    return [recorded[i + 1] for i, event in enumerate(recorded[:-1]) if event[1] == "m"]


def cast_text(cast: Path) -> str:
    """The cast's terminal output as asciinema itself replays it, colours and line ends dropped."""
    out = run("asciinema", "cat", cast, check=True).stdout
    return re.sub(r"\x1b\[[0-9;]*m", "", out).replace("\r\n", "\n")


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each preset's demo.sh as nsgen writes it (no prefix: the committed one), shellchecked all at once, on every
    CPU: a test's own shellcheck of it then finds it done."""
    out = tmp_path_factory.mktemp("demos")
    for preset in presets.PRESETS:
        writing.write({"demo.sh": lab_files.render(sources.load(preset=preset))["demo.sh"]}, out / preset)
    shellcheck(*(out / preset / "demo.sh" for preset in presets.PRESETS), options=["--severity=style"])
    return {preset: out / preset / "demo.sh" for preset in presets.PRESETS}


@pytest.mark.parametrize("preset", sorted(presets.PRESETS))
def test_demo_shows_setups_tutorial_commands_and_passes_shellcheck(preset: str, demos: dict[str, Path]) -> None:
    demo = demos[preset].read_text()
    setup = lab_files.render(sources.load(preset=preset), "tutorial")["setup.sh"]
    commands = [line.strip() for line in setup.splitlines() if re.match(r"  (ip|ip\d+|set_sysctl) ", line)]
    assert commands and all(f"\n  run {command}\n" in demo for command in commands)
    assert demos[preset].stat().st_mode & 0o777 == 0o755
    result = shellcheck(demos[preset], options=["--severity=style"])
    assert result.returncode == 0, result.stdout


@pytest.mark.kernel
def test_demo_runs_live_typing_and_leaves_nothing(tmp_path: Path, prefix: str) -> None:
    result = run("bash", lab_dir(tmp_path, prefix) / "demo.sh", "--delay", "0.001")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    steps = [
        "# --- create new namespaces\n",
        f"$ ip netns add {prefix}ns-0\n",
        "$ ip0 addr add 172.16.0.2 dev veth-0\n",
        "$ displayLinks\n",
        "inet 172.16.0.3/32",
        f"$ ip netns exec {prefix}ns-0 ping -4 -c 1 -i 0.5 -w 3 172.16.0.3\n",
        "64 bytes from 172.16.0.3",
        f"$ ip netns del {prefix}ns-1\n",
        "lab pair: demo done",
    ]
    assert [out.index(step) for step in steps] == sorted(out.index(step) for step in steps)
    assert "\x1b" not in out  # no colours when not on a terminal
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_demo_deletes_what_it_created_when_a_step_fails_or_a_signal_comes(tmp_path: Path, prefix: str) -> None:
    hook = tmp_path / "hook.bash"
    # right before `ip1 addr add`, ns-1 disappears: the step fails for real, in the kernel
    hook.write_text('set -T\ntrap \'if [[ -z ${fired-} && ${BASH_COMMAND} == "run ip1 addr add"* ]]; then fired=1; eval "${FAULT}"; fi\' DEBUG\n')
    demo = lab_dir(tmp_path, prefix) / "demo.sh"
    failed = run("bash", demo, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "BASH_ENV": str(hook),
                                    "NSGEN_TYPING_DELAY": "0", "FAULT": f"ip netns del {prefix}ns-1"})  # fmt: skip
    assert failed.returncode != 0
    assert re.search(r"demo.sh: failed at line \d+: run ip1 addr add 172.16.0.3 dev veth-1\n", failed.stderr)
    assert leftovers(prefix) == set()
    signalled = run("bash", demo, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "BASH_ENV": str(hook),
                                       "NSGEN_TYPING_DELAY": "0", "FAULT": "kill -TERM $$"})  # fmt: skip
    assert signalled.returncode == 143 and "demo.sh: terminated" in signalled.stderr
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_record_makes_a_valid_cast_that_is_the_same_twice(tmp_path: Path, prefix: str) -> None:
    lab = lab_dir(tmp_path, prefix)
    options = recording.CastOptions(cols=100, rows=28, title="pair", typing_speed=0.02)
    casts = [tmp_path / "first.cast", tmp_path / "second.cast"]
    for cast in casts:
        assert recording.record(lab, cast, options) == 0
        assert leftovers(prefix) == set()
    header, recorded = events(casts[0])
    assert header == {"version": 2, "width": 100, "height": 28, "title": "pair", "env": recording.ENV}
    assert all(len(event) == 3 and event[1] in ("o", "m") and isinstance(event[2], str) for event in recorded)
    # a marker where each step of the demo starts, labelled as `nsgen check` names the step, in order
    steps = [event[2] for event in recorded if event[1] == "m"]
    shown = [e for e in recorded if e[1] == "o" and e[2].startswith(STEP)]
    assert len(steps) == len(shown) and all(e[1] == "o" and e[2].startswith(STEP) for e in _after_markers(recorded))
    pair = sources.load(preset="pair").lab
    setup = [stage.label for stage in progress.stages(pair, lab_plans.setup(pair))]
    assert [label for label in steps if label in setup] == setup
    assert steps[steps.index("create new namespaces") + 1] == "create 1 veth pair, each end directly where it lives"
    times = [event[0] for event in recorded]
    assert times == sorted(times) and times[0] >= 0
    typed = [recorded[i + 1] for i, event in enumerate(recorded[:-1]) if event[2] == recording.PROMPT]
    assert typed and all(len(event[2]) == 1 for event in typed)  # commands come a character at a time
    text = cast_text(casts[0])
    for expected in (
        f"$ ip netns add {prefix}ns-0\n",
        f"$ ip link add name veth-0 netns {prefix}ns-0 type veth peer name veth-1 netns {prefix}ns-1\n",
        "$ ip1 route add 172.16.0.0/16 dev veth-1\n",
        "$ displayAddr\n",
        "inet 172.16.0.2/32 scope global veth-0",
        f"$ ip netns exec {prefix}ns-0 ping -4 -c 1 -i 0.5 -w 3 172.16.0.3\n",
        "64 bytes from 172.16.0.3: icmp_seq=1",
        f"$ ip netns del {prefix}ns-0\n",
    ):
        assert expected in text, expected
    masked = [casts[0].read_text(), casts[1].read_text()]
    for pattern, mask in KERNEL_PICKED:
        masked = [pattern.sub(mask, text) for text in masked]
    assert masked[0] == masked[1]


@pytest.mark.kernel
def test_raw_keeps_real_timings(tmp_path: Path, prefix: str) -> None:
    cast = tmp_path / "raw.cast"
    assert recording.record(lab_dir(tmp_path, prefix), cast, recording.CastOptions(typing_speed=0.001, raw=True)) == 0
    header, _ = events(cast)
    assert header["version"] == 2 and "timestamp" in header and (header["width"], header["height"]) == (120, 30)
    assert f"$ ip netns add {prefix}ns-0\n" in cast_text(cast)
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_failing_demo_fails_the_recording(tmp_path: Path, prefix: str) -> None:
    blocker = f"{prefix}ns-1"
    run("ip", "netns", "add", blocker, check=True)  # the lab is partly there: the demo stops at once
    status = recording.record(lab_dir(tmp_path, prefix), tmp_path / "failed.cast")
    assert status == 2
    assert f"lab pair is already there: namespace {blocker}" in cast_text(tmp_path / "failed.cast")
    assert leftovers(prefix) == {blocker}  # not the demo's to delete


@pytest.mark.kernel
def test_gif(tmp_path: Path, prefix: str) -> None:
    renderer = recording.agg()
    assert renderer is not None, recording.AGG_MISSING
    cast, gif = tmp_path / "pair.cast", tmp_path / "pair.gif"
    assert recording.record(lab_dir(tmp_path, prefix), cast, recording.CastOptions(typing_speed=0)) == 0
    assert recording.make_gif(cast, gif, renderer) == 0
    assert gif.read_bytes()[:6] == b"GIF89a" and gif.stat().st_size > 10_000


@pytest.mark.browser
@pytest.mark.kernel
def test_docs_page_plays_offline_in_headless_chromium(tmp_path: Path, prefix: str) -> None:
    loaded = sources.load(preset="pair", prefix=prefix)
    cast = tmp_path / "pair.cast"
    assert recording.record(lab_dir(tmp_path, prefix), cast) == 0
    out = tmp_path / "page"
    page = docs_page.files(loaded, cast)
    assert sorted(page) == sorted(["index.html", "pair.cast", *docs_page.PLAYER.values()])
    writing.write(page, out, ())
    html = (out / "index.html").read_text()
    assert html == docs_page.page(loaded, cast.read_text(), "pair.cast")  # deterministic
    assert not re.search(r"""(src|href)="(?!asciinema-player|pair\.cast|#|https://mermaid)""", html)
    assert '<span class="line" id="setup.sh-L1">#!/usr/bin/env bash</span>' in html

    shown = f'$ ip0() {{ ip netns exec {prefix}ns-0 ip "$@"; }}'
    dom = page_dom(tmp_path / "profile-dump", f"file://{out / 'index.html'}", shown)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert shown in terminal_text(dom.stdout), dom.stdout[-2000:]
    chapters = docs_page.chapters(cast.read_text())
    assert len(re.findall(r'class="ap-marker-container', dom.stdout)) == len(chapters) > 10  # on the progress bar
    listed = re.findall(r'<a href="#player" data-marker="(\d+)">([^<]*)</a>', dom.stdout)
    assert [(int(i), html_unescape(label)) for i, label in listed] == [(i, label) for i, (_, label) in enumerate(chapters)]
    assert 'id="pause-at-steps"' in dom.stdout
    assert page_console(dom.stderr) == []
    requested = set(re.findall(r"NotifyBeforeURLRequest: (\S+)", dom.stderr))
    assert {url for url in requested if not url.split("?")[0].endswith("update.googleapis.com/service/update2/json")} == set()
    screenshot = tmp_path / "docs-page.png"
    shot = run(*chromium(tmp_path / "profile-shot", SCREENSHOT_BUDGET, f"--screenshot={screenshot}", f"file://{out / 'index.html'}"))
    assert shot.returncode == 0 and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_cli_record_passes_on_the_demos_exit_status_and_writes_the_docs(tmp_path: Path, prefix: str) -> None:
    cast, gif = tmp_path / "pair.cast", tmp_path / "pair.gif"
    ok = nsgen("record", "--prefix", prefix, "-o", cast, "--cols", "90", "--typing-speed", "0", "--gif", gif)
    assert ok.returncode == 0, ok.stderr
    assert events(cast)[0]["width"] == 90 and gif.read_bytes()[:6] == b"GIF89a"
    docs = nsgen("docs", "--prefix", prefix, "--cast", cast, "-o", tmp_path / "page")
    assert docs.returncode == 0, docs.stderr
    assert (tmp_path / "page" / "index.html").exists() and (tmp_path / "page" / "asciinema-player.min.js").exists()
    run("ip", "netns", "add", f"{prefix}ns-0", check=True)
    failed = nsgen("record", "--preset", "pair", "--prefix", prefix, "-o", tmp_path / "failed.cast")
    assert failed.returncode == 2 and "demo.sh failed with exit status 2" in failed.stderr
    assert "  its last lines:\n" in failed.stderr and f"  | demo.sh: lab pair is already there: namespace {prefix}ns-0" in failed.stderr
    run("ip", "netns", "del", f"{prefix}ns-0", check=True)
    refused = nsgen("docs", "--preset", "pair", "--prefix", prefix, "--cast", tmp_path / "failed.cast", "-o", tmp_path / "failed")
    assert refused.returncode == 2 and not (tmp_path / "failed").exists()
    assert refused.stderr.startswith(f"{tmp_path / 'failed.cast'}: its demo of lab 'pair' did not run to its end (it ends with: ")
    assert nsgen("play", tmp_path / "missing.cast").returncode == 2


def test_the_committed_docs_page_is_current(tmp_path: Path) -> None:
    """docs/pair/ shows the pair lab's scripts as they are rendered now (with the committed recording)."""
    docs = REPO / "docs"
    result = nsgen("docs", "--preset", "pair", "--cast", docs / "pair.cast", "-o", tmp_path / "page", in_process=True)
    assert result.returncode == 0, result.stderr
    stale = "docs/pair is stale: run `nsgen docs --preset pair --cast docs/pair.cast -o docs/pair`"
    for name in ("index.html", "pair.cast"):
        assert (tmp_path / "page" / name).read_bytes() == (docs / "pair" / name).read_bytes(), stale
