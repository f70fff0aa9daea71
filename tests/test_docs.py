"""The README and docs/ hold together: every relative link and image points at a file that exists, every
``#anchor`` at a heading of its target (GitHub's rules), every docs page is in the index, and the front page
stays short. Pure Python: no TensorFlow, a fraction of a second.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from conftest import REPO

README_MAX_LINES = 200
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
# The target of an inline link or image, `[text](target)` or `![alt](target "title")`.
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$", re.M)
HTML_ANCHOR = re.compile(r"<a\s[^>]*\b(?:name|id)=\"([^\"]+)\"", re.I)
SKIPPED_SCHEMES = ("http://", "https://", "mailto:")


def prose(text: str) -> str:
    """The text without fenced code blocks and HTML comments (no links or headings live there)."""
    return COMMENT.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, lowercased, punctuation but hyphens dropped,
    spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a page offers; a repeated heading gets -1, -2, ... as on GitHub."""
    text = prose(page.read_text(encoding="utf-8"))
    found: set[str] = set(HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for heading in HEADING.findall(text):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(prose(page.read_text(encoding="utf-8")))


def test_the_pages_are_found():
    names = [page.relative_to(REPO).as_posix() for page in PAGES]
    assert "README.md" in names and "docs/README.md" in names, names
    assert all(links(page) for page in PAGES if page.name == "README.md")


def test_slug_follows_githubs_rules():
    assert slug("Recipes: the tutorial's and a faster one") == "recipes-the-tutorials-and-a-faster-one"
    assert slug("How good are the digits?") == "how-good-are-the-digits"
    assert slug("A full run, measured") == "a-full-run-measured"
    assert slug("Training options, the recipe search and `--recipe fast`") == (
        "training-options-the-recipe-search-and---recipe-fast"
    )
    assert slug("Fashion-MNIST") == "fashion-mnist"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO).as_posix())
def test_relative_links_and_anchors_resolve(page: Path):
    broken = []
    for target in links(page):
        if target.startswith(SKIPPED_SCHEMES):
            continue
        path_part, _, anchor = unquote(target).partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            broken.append(f"{target}: no file {destination}")
        elif anchor:
            if destination.suffix != ".md":
                broken.append(f"{target}: an anchor into a file that is not markdown")
            elif anchor not in anchors(destination):
                broken.append(f"{target}: no heading with anchor #{anchor} in {destination.relative_to(REPO)}")
    assert not broken, f"broken links in {page.relative_to(REPO)}:\n" + "\n".join(broken)


def test_docs_index_lists_every_page():
    index = REPO / "docs" / "README.md"
    listed = {(index.parent / unquote(target).partition("#")[0]).resolve() for target in links(index)}
    missing = [page.name for page in PAGES if page.parent == index.parent and page != index and page not in listed]
    assert not missing, f"docs/README.md does not link {missing}"


def test_readme_is_a_short_front_page():
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines, at most {README_MAX_LINES}: move details to docs/"
