"""The guide's pages (`nsgen docs --guide`): a page per part, its steps as chapters, and an index of the five parts;
the committed docs/guide is what nsgen writes now (from its committed casts), and each committed cast is what its
demo shows when it is recorded again here (Parts III to V in nsgen's sandbox, Parts I and II in an emulated host)."""

import os
import re
import shutil
import subprocess
import sys
import time
from html import unescape as html_unescape
from pathlib import Path

import pytest
from browser import page_console, page_dom, terminal_text
from cni_harness import processes_mentioning
from conftest import REPO, netns_names, nsgen, root_link_names, run, shellcheck
from test_recording import KERNEL_PICKED, cast_text

from nsgen.render import docs_page, guide
from nsgen.run import busybox_image, emulated_hosts, guide_parts, recording, sandbox
from nsgen.run.emulated_hosts import Host
from nsgen.validate import sources

GUIDE = REPO / "docs" / "guide"
DEMO_PARTS = [part for part in guide.PARTS if part.preset is None]
#: What changes from run to run beyond a pair's: a root-namespace device's ifindex, the dummy's log's times and PIDs,
#: the image's digest (it holds this machine's busybox), a link-local address (from a MAC), busybox's round trips, and
#: a container's host veth in Part V (named after containerd's namespace, the sandbox's own).
RUN_PICKED = [
    (re.compile(r"veth[0-9a-f]{11}"), "vethH"),
    (re.compile(r"^\d+: ", re.M), "N: "),
    (re.compile(r"at [0-9T:-]+Z, pid \d+"), "at T, pid N"),
    (re.compile(r"sha256:[0-9a-f]{64}"), "sha256:D"),
    (re.compile(r"fe80::[0-9a-f:]+/64"), "fe80::L/64"),
    (re.compile(r"min/avg/max = [\d./]+ ms"), "min/avg/max = RTT"),
]


def masked(text: str) -> str:
    for pattern, mask in [*KERNEL_PICKED, *RUN_PICKED]:
        text = pattern.sub(mask, text)
    return text


def committed_cast(part: guide.Part) -> Path:
    return next((GUIDE / part.directory).glob("*.cast"))


def test_the_committed_guide_is_current(tmp_path: Path) -> None:
    out = tmp_path / "guide"
    shutil.copytree(GUIDE, out)  # its casts are kept: the pages are written again around them
    result = nsgen("docs", "--guide", "-o", out, in_process=True)
    assert result.returncode == 0, result.stderr
    stale = "docs/guide is stale: run `nsgen docs --guide -o docs/guide` (delete a part's cast to record it again)"
    for path in GUIDE.rglob("*"):
        if path.is_file():
            assert (out / path.relative_to(GUIDE)).read_bytes() == path.read_bytes(), f"{stale}: {path.name}"


def test_the_index_links_each_part_with_its_steps() -> None:
    index = (GUIDE / "index.html").read_text()
    for part in guide.PARTS:
        steps = len(docs_page.chapters(committed_cast(part).read_text()))
        assert f'<a href="{part.directory}/index.html">{part.title}</a>: {steps} steps' in index
        page = (GUIDE / part.directory / "index.html").read_text()
        assert 'data-marker="0"' in page and f'data-marker="{steps - 1}"' in page


def test_a_demo_part_page_shows_its_demo_and_its_cni_files() -> None:
    for part in DEMO_PARTS:
        page = (GUIDE / part.directory / "index.html").read_text()
        assert f"<h1>{part.title}</h1>" in page
        for name in ("demo.sh", *part.shown):
            assert f'<details id="{name}"' in page
        assert "nsgen cni --name nsgen-net" in page


@pytest.mark.parametrize("given", [["--preset", "pair"], ["--prefix", "x-"], ["--cast", "docs/pair.cast"]])
def test_guide_takes_no_lab(given: list[str]) -> None:
    refused = nsgen("docs", "--guide", *given, "-o", "/nonexistent/guide", in_process=True)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == ("--guide: writes the guide's own parts, with the guide's names: give no topology, preset,"
                              " prefix, count or cast\n")


@pytest.mark.parametrize("broken", ["garbage\n", "truncated"])
def test_a_broken_cast_in_the_output_is_named_before_anything_is_recorded(
    tmp_path: Path, broken: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "guide"
    shutil.copytree(GUIDE, out)
    cast = out / "part-4" / "nsgen-bridge.cast"
    cast.write_text(broken if broken != "truncated" else cast.read_text()[:3000])
    (out / "part-3" / "dummy.cast").unlink()  # to record: it is not, the broken cast stops all first
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # and before what the machine lacks (root, or jq), as root or not
    result = nsgen("docs", "--guide", "-o", out, in_process=True)
    why = ("not an asciinema cast (its first line is no asciicast v2 or v3 header)" if broken != "truncated"
           else f"not a whole asciinema cast (its line {cast.read_text().count(chr(10)) + 1} is no event: [time, code, data])")
    assert (result.returncode, result.stderr) == (2, f"--guide: {cast}: {why}: delete it to record Part IV again\n")
    assert not (out / "part-3" / "dummy.cast").exists()


def test_a_cast_put_in_the_output_by_hand_is_kept_and_shown(tmp_path: Path) -> None:
    """A cast recorded again (NSGEN_RECORD=1) and copied over the committed one: the pages are written around it."""
    out = tmp_path / "guide"
    shutil.copytree(GUIDE, out)
    other = REPO / "docs" / "pair.cast"  # a pair recording of its own, not the guide's
    shutil.copyfile(other, out / "part-1" / "pair.cast")
    result = nsgen("docs", "--guide", "-o", out, in_process=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("(recorded now: none, each cast kept)\n")
    assert (out / "part-1" / "pair.cast").read_bytes() == other.read_bytes()
    shown = docs_page.page(sources.load(preset="pair"), other.read_text(), "pair.cast", guide.PARTS[0].title)
    assert (out / "part-1" / "index.html").read_text() == shown


def test_a_non_empty_directory_is_refused_before_anything_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # said before what the machine lacks (root, or jq), as root or not
    started = time.monotonic()
    result = nsgen("docs", "--guide", "-o", out, in_process=True)
    assert result.returncode == 2 and "not empty, and nsgen did not write it" in result.stderr
    assert time.monotonic() - started < 10 and sorted(p.name for p in out.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("part", DEMO_PARTS, ids=lambda part: part.directory)
def test_a_demo_part_runs_only_in_the_sandbox_and_passes_shellcheck(tmp_path: Path, part: guide.Part) -> None:
    demo = tmp_path / "demo.sh"
    demo.write_text(guide.demo_files(part)["demo.sh"])
    refused = run("bash", demo, env={"PATH": os.environ["PATH"]})
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == "demo.sh: runs only in nsgen's sandbox, which keeps this machine as it is: nsgen docs --guide records it\n"
    assert shellcheck(demo).returncode == 0


def test_the_sandbox_script_passes_shellcheck() -> None:
    assert shellcheck(REPO / "templates" / "guide" / "sandbox.sh").returncode == 0


def test_a_part_this_machine_cannot_record_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "guide"
    shutil.copytree(GUIDE, out)
    (out / "part-5" / "containerd.cast").unlink()
    tools = tmp_path / "bin"  # this machine without containerd, ctr, runc and busybox
    tools.mkdir()
    for tool in ("unshare", "jq", "flock", "nsenter", "sha256sum"):
        (tools / tool).symlink_to(shutil.which(tool))
    result = subprocess.run([sys.executable, "-m", "nsgen", "docs", "--guide", "-o", out], capture_output=True,
                            text=True, env={**os.environ, "PATH": str(tools)})
    if os.geteuid() == 0:
        why = ("recording Part V needs containerd, ctr, runc, busybox, which this machine lacks"
               " (Debian: apt-get install containerd runc busybox-static)")
    else:
        why = "recording Part V needs root: it runs in a sandbox of namespaces"
    assert (result.returncode, result.stderr) == (2, f"--guide: {why}\n")
    assert not (out / "part-5" / "containerd.cast").exists()


def _machine() -> dict[str, object]:
    """What a sandbox must leave as it was: namespaces, root devices, the CNI directories, sandbox cgroups."""
    return {
        "netns": netns_names(),
        "links": root_link_names(),
        "cni": sorted(str(p) for d in (Path("/etc/cni"), Path("/opt/cni"), Path("/var/lib/cni")) if d.exists() for p in d.rglob("*")),
        "cgroups": sorted(map(str, [*sandbox.CGROUPS.glob(sandbox.name()), *sandbox.CGROUPS.glob(f"*/{sandbox.name()}")])),
        "containerd": sorted(p for p in map(str, Path("/run").glob("containerd*"))),
    }


def _record_again(part: guide.Part, tmp_path: Path) -> None:
    before = _machine()
    cast = tmp_path / part.cast_name
    assert guide_parts.missing(part) is None
    assert guide_parts.record(part, tmp_path / part.directory, cast) == 0, cast_text(cast)[-2000:]
    assert _machine() == before
    if os.environ.get("NSGEN_RECORD") == "1":  # the committed recording made again, here (then `nsgen docs --guide`)
        shutil.copyfile(cast, committed_cast(part))
    stale = f"{committed_cast(part)} is stale: run this test with NSGEN_RECORD=1, then `nsgen docs --guide -o docs/guide`"
    assert masked(cast_text(cast)) == masked(cast_text(committed_cast(part))), stale
    steps = [label for _, label in docs_page.chapters(cast.read_text())]
    assert len(steps) == cast_text(cast).count("\n# --- ") and steps[0]


@pytest.mark.kernel
def test_part_3_recorded_again_is_the_committed_one(tmp_path: Path) -> None:
    _record_again(guide.PARTS[2], tmp_path)
    text = cast_text(committed_cast(guide.PARTS[2]))
    assert "=== ADD at" in text and "=== DEL at" in text and '"supportedVersions": [' in text


@pytest.mark.kernel
def test_part_4_recorded_again_is_the_committed_one(tmp_path: Path) -> None:
    _record_again(guide.PARTS[3], tmp_path)
    text = cast_text(committed_cast(guide.PARTS[3]))
    assert "2 received, 0% packet loss" in text and "CHECK c1: all there" in text
    assert '"msg": "CHECK: eth0 lacks the address 10.244.0.2/24"' in text and "CHECK c1: exit status 1" in text


@pytest.mark.kernel
@pytest.mark.containerd
def test_part_5_recorded_again_is_the_committed_one(tmp_path: Path) -> None:
    _record_again(guide.PARTS[4], tmp_path)
    text = cast_text(committed_cast(guide.PARTS[4]))
    assert "inet 10.244.0.2/24 scope global eth0" in text and "2 packets received, 0% packet loss" in text
    assert "c1 exited with status 137\n$ ls /var/lib/cni/networks/nsgen-net\nlock\n" in text
    assert re.search(r"\$ ip -br link show master cni-nsgen0\nveth[0-9a-f]{11}@if2 +UP ", text)  # c1's, while it runs


@pytest.mark.kernel
@pytest.mark.parametrize("part", [part for part in guide.PARTS if part.preset], ids=lambda part: part.directory)
def test_a_preset_part_recorded_again_is_the_committed_one(host: Host, tmp_path: Path, part: guide.Part) -> None:
    """Recorded in an emulated host: its names are the guide's (ns-0, ...) and stay the host's own."""
    cast = tmp_path / "part.cast"
    command = ["env", f"--chdir={tmp_path}", sys.executable, "-m", "nsgen", "record", "--preset", part.preset, "-o", cast]
    result = run(*emulated_hosts.argv(host, [str(word) for word in command]))
    assert result.returncode == 0, result.stdout + result.stderr
    if os.environ.get("NSGEN_RECORD") == "1":
        shutil.copyfile(cast, committed_cast(part))
    stale = f"{committed_cast(part)} is stale: run this test with NSGEN_RECORD=1, then `nsgen docs --guide -o docs/guide`"
    assert masked(cast_text(cast)) == masked(cast_text(committed_cast(part))), stale


@pytest.mark.browser
def test_a_demo_part_page_plays_offline_in_headless_chromium_with_its_chapters(tmp_path: Path) -> None:
    part = guide.PARTS[3]
    page = GUIDE / part.directory / "index.html"
    dom = page_dom(tmp_path / "profile", f"file://{page}", "$ cat cni/nsgen-net.conflist")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "$ cat cni/nsgen-net.conflist" in terminal_text(dom.stdout)
    chapters = docs_page.chapters(committed_cast(part).read_text())
    assert len(re.findall(r'class="ap-marker-container', dom.stdout)) == len(chapters) == 11  # on the progress bar
    listed = re.findall(r'<a href="#player" data-marker="(\d+)">([^<]*)</a>', dom.stdout)
    assert [(int(i), html_unescape(label)) for i, label in listed] == [(i, label) for i, (_, label) in enumerate(chapters)]
    assert page_console(dom.stderr) == []


@pytest.mark.kernel
def test_a_failed_recording_says_what_the_demo_said_last(host: Host, tmp_path: Path) -> None:
    """In an emulated host (its names its own), Part I's ns-0 is there already: its demo refuses, and nsgen says why."""
    out = tmp_path / "guide"
    shutil.copytree(GUIDE, out)
    (out / "part-1" / "pair.cast").unlink()
    assert run(*emulated_hosts.argv(host, ["ip", "netns", "add", "ns-0"])).returncode == 0
    result = run(*emulated_hosts.argv(host, [sys.executable, "-m", "nsgen", "docs", "--guide", "-o", str(out)]))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[:2] == ["nsgen docs: the demo of Part I: two namespaces joined by a veth pair failed with exit status 2",
                         "  its last lines:"]
    assert "  | demo.sh: lab pair is already there: namespace ns-0 (run teardown.sh first)" in lines
    assert not (out / "part-1" / "pair.cast").exists()


@pytest.mark.kernel
def test_a_sandbox_removes_the_cgroups_a_killed_one_left(tmp_path: Path) -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    gone = next(pid for pid in range(pid_max - 1, 1, -1) if not Path(f"/proc/{pid}").exists())
    left = [sandbox.CGROUPS / hierarchy / f"nsgen-sandbox-{gone}" for hierarchy in ("pids", "memory")]
    left = [path for path in left if path.parent.is_dir()] or [sandbox.CGROUPS / f"nsgen-sandbox-{gone}"]
    try:
        for path in left:
            (path / "c1").mkdir(parents=True)  # as containerd makes them: its namespace, a container in it
        with sandbox.sandbox() as wrapper:
            assert run(*wrapper, "true").returncode == 0
        assert not any(path.exists() for path in left)
    finally:
        for path in left:
            for directory in (path / "c1", path):
                if directory.exists():
                    directory.rmdir()


def test_the_paths_known_before_recording_are_the_pages_paths() -> None:
    recorded = {part.number: (sources.load(preset=part.preset) if part.preset else None, committed_cast(part))
                for part in guide.PARTS}
    assert sorted(guide.paths()) == sorted(guide.files(recorded))


def test_a_file_where_a_part_s_directory_goes_is_refused_before_anything_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "guide"
    shutil.copytree(GUIDE, out)
    shutil.rmtree(out / "part-3")
    (out / "part-3").write_text("mine\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # said before what the machine lacks (root, or jq), as root or not
    result = nsgen("docs", "--guide", "-o", out, in_process=True)
    assert (result.returncode, result.stderr) == (2, f"nsgen docs: {out}: part-3 not written by nsgen: move it away, then write again\n")
    assert (out / "part-3").read_text() == "mine\n"


def test_a_sandbox_removes_stale_cgroups_once_each_in_v1_and_v2_trees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Co-mounted v1 controllers show one hierarchy under several names (symlinks); v2 has one tree at the top."""
    monkeypatch.setattr(sandbox, "CGROUPS", tmp_path)
    (tmp_path / "cpu,cpuacct").mkdir()
    for alias in ("cpu", "cpuacct"):
        (tmp_path / alias).symlink_to("cpu,cpuacct")
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    gone = next(pid for pid in range(pid_max - 1, 1, -1) if not Path(f"/proc/{pid}").exists())
    stale = [tmp_path / "cpu,cpuacct" / f"nsgen-sandbox-{gone}" / "c1", tmp_path / f"nsgen-sandbox-{gone}" / "c1"]
    alive = tmp_path / "cpu,cpuacct" / f"nsgen-sandbox-{os.getppid()}"
    for directory in (*stale, alive):
        directory.mkdir(parents=True)
    with sandbox.sandbox():
        assert not any(path.parent.exists() for path in stale) and alive.is_dir()
        (tmp_path / sandbox.name()).mkdir()  # as containerd makes them while the sandbox runs
    assert not (tmp_path / sandbox.name()).exists() and alive.is_dir()


def test_a_static_busybox_is_needed_for_part_5_s_image(tmp_path: Path) -> None:
    assert busybox_image.is_static(Path(shutil.which("busybox")).resolve())
    dynamic = Path(shutil.which("ls")).resolve()
    assert not busybox_image.is_static(dynamic) and not busybox_image.is_static(REPO / "README.md")
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("unshare", *guide.PARTS[4].needs):
        (tools / tool).symlink_to(dynamic if tool == "busybox" else shutil.which(tool))
    script = "from nsgen.render import guide; from nsgen.run import guide_parts; print(guide_parts.missing(guide.PARTS[4]))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ, "PATH": str(tools)})
    if os.geteuid() == 0:
        assert result.stdout == (f"recording Part V needs a static busybox for its image, and {dynamic} is not"
                                 " (Debian: busybox-static)\n")
    else:  # root comes first: without it, no busybox is good enough
        assert result.stdout == "recording Part V needs root: it runs in a sandbox of namespaces\n"


@pytest.mark.kernel
@pytest.mark.containerd
def test_a_term_signal_stops_a_recording_as_ctrl_c_does_and_leaves_nothing(tmp_path: Path) -> None:
    out, scratch = tmp_path / "guide", tmp_path / "tmp"
    shutil.copytree(GUIDE, out)
    (out / "part-5" / "containerd.cast").unlink()
    scratch.mkdir()
    nsgen_docs = subprocess.Popen([sys.executable, "-m", "nsgen", "docs", "--guide", "-o", out], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(scratch)})
    name = f"nsgen-sandbox-{nsgen_docs.pid}"
    deadline = time.monotonic() + 30
    while not [*sandbox.CGROUPS.glob(name), *sandbox.CGROUPS.glob(f"*/{name}")]:  # containerd runs a container
        assert time.monotonic() < deadline and nsgen_docs.poll() is None, nsgen_docs.communicate()
        time.sleep(0.05)
    nsgen_docs.terminate()
    _, stderr = nsgen_docs.communicate(timeout=30)
    assert (nsgen_docs.returncode, stderr) == (130, "nsgen docs: interrupted while recording Part V: nothing written\n")
    assert list(scratch.iterdir()) == [] and not (out / "part-5" / "containerd.cast").exists()
    assert not [*sandbox.CGROUPS.glob(name), *sandbox.CGROUPS.glob(f"*/{name}")]
    assert not processes_mentioning(name)  # the sandbox, its containerd, its shims


def test_a_cast_s_events_are_checked_and_a_v3_cast_s_times_added_up(tmp_path: Path) -> None:
    cast = tmp_path / "v3.cast"
    cast.write_text('{"version": 3, "term": {"cols": 80, "rows": 24}}\n[1.5, "m", "one"]\n[0.5, "o", "x"]\n[0.5, "m", "two"]\n')
    assert recording.cast_problem(cast) is None
    assert docs_page.chapters(cast.read_text()) == [(1.5, "one"), (2.5, "two")]
    for event in ('[0.1, "o", 5]', '["a", "m", "x"]', '[0.1, "o"]'):
        cast.write_text(f'{{"version": 2, "width": 80, "height": 24}}\n[0.1, "o", "x"]\n{event}\n')
        assert recording.cast_problem(cast) == "not a whole asciinema cast (its line 3 is no event: [time, code, data])"


@pytest.mark.kernel
def test_nsgen_docs_guide_records_a_missing_demo_part_and_writes_its_page(tmp_path: Path) -> None:
    out = tmp_path / "guide"
    shutil.copytree(GUIDE, out)
    (out / "part-3" / "dummy.cast").unlink()
    result = nsgen("docs", "--guide", "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("(recorded now: Part III)\n")
    recorded = out / "part-3" / "dummy.cast"
    assert masked(cast_text(recorded)) == masked(cast_text(committed_cast(guide.PARTS[2])))
    page = (out / "part-3" / "index.html").read_text()
    casts = {part.number: (sources.load(preset=part.preset) if part.preset else None, committed_cast(part))
             for part in guide.PARTS}
    assert page == guide.files({**casts, 3: (None, recorded)})["part-3/index.html"]
    assert (out / "index.html").read_bytes() == (GUIDE / "index.html").read_bytes()
