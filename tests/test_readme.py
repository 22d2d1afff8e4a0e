"""The README reads as sentences: no paragraph starts mid-sentence (a fragment
stranded by an edit, like the "and writes results/..." that followed the table)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def prose_paragraphs(text: str) -> list[str]:
    """Paragraphs outside code fences that are not headings, lists, tables or rules."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return [p for p in paragraphs if not re.match(r"(#|[-*|] |\||---|\d+\. )", p)]


def test_no_paragraph_starts_mid_sentence() -> None:
    for name in ("README.md", "results/README.md"):
        for paragraph in prose_paragraphs((REPO / name).read_text()):
            first = paragraph.lstrip("*_[(")
            starts_a_sentence = (first[:1].isupper() or first[:1] in "`$"
                                 or first.startswith("collapse-bench "))  # the name
            assert starts_a_sentence, (name, paragraph[:60])
