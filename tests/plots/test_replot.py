"""persafl_np.plots.replot: every committed figure redraws from its CSV with the CSV unchanged
(the presentation changed, not the data), and a CSV that does not round-trip is an error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from persafl_np.plots.replot import REPLOTTABLE, replot

FIGURES = Path(__file__).resolve().parents[2] / "figures"


@pytest.fixture
def figures_copy(tmp_path):
    d = tmp_path / "figures"
    shutil.copytree(FIGURES, d, ignore=shutil.ignore_patterns("*.png"))
    return d


@pytest.mark.parametrize("name", REPLOTTABLE)
def test_committed_figure_replots_with_identical_csv(figures_copy, name):
    before = (figures_copy / f"{name}.csv").read_text()
    png = replot(figures_copy, name)
    assert png.read_bytes().startswith(b"\x89PNG")
    assert (figures_copy / f"{name}.csv").read_text() == before


def test_replot_rejects_unknown_and_changed_data(figures_copy):
    with pytest.raises(ValueError, match="name must be one of"):
        replot(figures_copy, "nope")
    p = figures_copy / "timeline.csv"
    lines = p.read_text().splitlines()
    # the same number spelled differently: the CSV written back differs, which must be an error
    edited = lines[2].replace("0.3061686491548194", "0.30616864915481940", 1)
    assert edited != lines[2]
    p.write_text("\n".join(lines[:2] + [edited] + lines[3:]) + "\n")
    with pytest.raises(ValueError, match="changed its data"):
        replot(figures_copy, "timeline")
