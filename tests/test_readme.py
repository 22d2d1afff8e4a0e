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


def test_license_citation_and_package_metadata_agree() -> None:
    """Issue 25: pyproject said MIT but no LICENSE shipped, and nothing said how to cite."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")
    cff = (REPO / "CITATION.cff").read_text()
    fields = dict(re.findall(r"(?m)^([a-z-]+): (.+)$", cff))
    assert fields["cff-version"] == "1.2.0" and fields["title"] == "collapse-bench"
    assert fields["type"] == "software" and fields["license"] == "MIT"
    assert fields["version"] == project["version"] and fields["message"]


def test_shell_completion_as_documented() -> None:
    """The README's completion line is the console script's click completion."""
    import os
    import subprocess
    import sys
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"collapse-bench": "harness.cli:main"}
    readme = (REPO / "README.md").read_text()
    assert 'eval "$(_COLLAPSE_BENCH_COMPLETE=bash_source collapse-bench)"' in readme
    cli = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())"]
    env = {**os.environ, "_COLLAPSE_BENCH_COMPLETE": "bash_complete",
           "COMP_WORDS": "collapse-bench run --fil", "COMP_CWORD": "2"}
    done = subprocess.run(cli, env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.split() == ["plain,--filters", "plain,--filter"], done.stderr
