"""Every citation of theory/ in code and docs resolves inside the repository.

A citation is ``theory/NAME.md`` (or, inside theory/, a relative ``NAME.md``) optionally
followed by labels: ``§X`` (a section heading), ``eq. (TAG)`` / ``(TAG)`` (a ``\\tag{TAG}`` or a
bold label in the target) or ``Prop. X``. The project's original theory brief is not in the
repository, so nothing may cite it: its results live in theory/brief_results.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("persafl_np", "tests", "benchmarks", "experiments", "figures", "docs", "theory")
SUFFIXES = {".py", ".md", ".toml"}

PATH_RE = re.compile(r"theory/([\w-]+\.md)")
REL_RE = re.compile(r"(?<![\w/])([a-z][\w-]*\.md)\b")  # inside theory/: a sibling file
SEC_RE = re.compile(r"§([A-Za-z0-9]+)")
TAG_RE = re.compile(r"\(([A-Z][A-Za-z]*-?[\w-]*\d[\w-]*|[A-Z]{1,4}-[A-Z][\w-]*|T\d[a-z]?)\)")
PROP_RE = re.compile(r"Prop\. ([A-Z]+-\d+)")
BRIEF_RE = re.compile(r"\bbrief(?!_results)|theory_brief|d4_audit", re.IGNORECASE)


def _files() -> list[Path]:
    out = [ROOT / "README.md", ROOT / "CHANGELOG.md"]
    for top in SCANNED:
        out += [p for p in (ROOT / top).rglob("*") if p.suffix in SUFFIXES and p.is_file()]
    return [p for p in out if p.exists() and p.resolve() != Path(__file__).resolve()]


def _citations(path: Path) -> list[tuple[int, Path, str]]:
    """(line number, target file, text after the path up to the next citation) per citation."""
    found = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        hits = [(m.start(), m.end(), ROOT / "theory" / m.group(1)) for m in PATH_RE.finditer(line)]
        if path.parent == ROOT / "theory":
            hits += [(m.start(), m.end(), ROOT / "theory" / m.group(1))
                     for m in REL_RE.finditer(line)
                     if not line[max(0, m.start() - 7):m.start()].endswith("theory/")]
        hits.sort()
        for k, (_, end, target) in enumerate(hits):
            stop = hits[k + 1][0] if k + 1 < len(hits) else len(line)
            found.append((n, target, line[end:min(stop, end + 40)]))
    return found


def _has_section(text: str, sec: str) -> bool:
    heads = [h for h in text.splitlines() if h.startswith("#")]
    return any(f"§{sec}." in h or f"§{sec} " in h or re.match(rf"#+ {re.escape(sec)}\.", h)
               for h in heads)


def test_every_theory_citation_resolves():
    bad = []
    for path in _files():
        for n, target, tail in _citations(path):
            where = f"{path.relative_to(ROOT)}:{n}"
            if not target.exists():
                bad.append(f"{where}: no file theory/{target.name}")
                continue
            text = target.read_text(encoding="utf-8")
            for sec in SEC_RE.findall(tail):
                if not _has_section(text, sec):
                    bad.append(f"{where}: theory/{target.name} has no section §{sec}")
            for tag in TAG_RE.findall(tail):
                if f"\\tag{{{tag}}}" not in text and f"({tag})" not in text:
                    bad.append(f"{where}: theory/{target.name} has no label ({tag})")
            for prop in PROP_RE.findall(tail):
                if f"Prop. {prop}" not in text and f"Proposition {prop}" not in text:
                    bad.append(f"{where}: theory/{target.name} has no Prop. {prop}")
    assert not bad, "\n".join(bad)


def test_nothing_cites_material_outside_the_repository():
    bad = [f"{p.relative_to(ROOT)}:{n}: {line.strip()[:90]}"
           for p in _files()
           for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
           if BRIEF_RE.search(line)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("label", ["B1", "B2", "B3", "B4", "B6", "C5", "D4", "D5", "D7"])
def test_brief_results_holds_the_cited_labels(label):
    assert f"({label})" in (ROOT / "theory" / "brief_results.md").read_text(encoding="utf-8")


def test_the_checker_catches_a_broken_citation(tmp_path, monkeypatch):
    """The checker is not vacuous: a missing section and a missing tag are both reported."""
    text = (ROOT / "theory" / "async_theorem.md").read_text(encoding="utf-8")
    assert _has_section(text, "4") and not _has_section(text, "99")
    fake = tmp_path / "x.py"
    fake.write_text("see theory/async_theorem.md eq. (T77) and theory/nope.md §2\n")
    cites = _citations(fake)
    assert [c[1].name for c in cites] == ["async_theorem.md", "nope.md"]
    assert TAG_RE.findall(cites[0][2]) == ["T77"] and "\\tag{T77}" not in text
    assert BRIEF_RE.search("as the theory brief says") and not BRIEF_RE.search("brief_results.md")
