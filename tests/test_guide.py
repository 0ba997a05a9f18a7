"""The guide's pages (`nsgen docs --guide`): a page per recorded part, its steps as chapters, and an index of
the five parts; the committed docs/guide is what nsgen writes now (from its committed casts)."""

import shutil
from pathlib import Path

from conftest import REPO, nsgen

from nsgen.render import docs_page, guide

GUIDE = REPO / "docs" / "guide"


def test_the_committed_guide_is_current(tmp_path: Path) -> None:
    out = tmp_path / "guide"
    shutil.copytree(GUIDE, out)  # its casts are kept: the pages are written again around them
    result = nsgen("docs", "--guide", "-o", out)
    assert result.returncode == 0, result.stderr
    stale = "docs/guide is stale: run `nsgen docs --guide -o docs/guide` (delete a part's cast to record it again)"
    for path in GUIDE.rglob("*"):
        if path.is_file():
            assert (out / path.relative_to(GUIDE)).read_bytes() == path.read_bytes(), f"{stale}: {path.name}"


def test_the_index_lists_the_five_parts_and_links_the_recorded_ones() -> None:
    index = (GUIDE / "index.html").read_text()
    for part in guide.PARTS:
        assert part.title.split(":")[0] in index
    recorded = [part for part in guide.PARTS if part.preset is not None]
    for part in recorded:
        cast = next((GUIDE / part.directory).glob("*.cast"))
        steps = len(docs_page.chapters(cast.read_text()))
        assert f'<a href="{part.directory}/index.html">{part.title}</a>: {steps} steps' in index
        assert 'data-marker="0"' in (GUIDE / part.directory / "index.html").read_text()
    assert index.count("not recorded yet") == len(guide.PARTS) - len(recorded)


def test_guide_takes_no_lab() -> None:
    refused = nsgen("docs", "--guide", "--preset", "pair", "-o", "/nonexistent/guide")
    assert refused.returncode == 2
    assert refused.stderr == "--guide: the guide's parts are its presets: give no topology, preset, count or cast\n"
