"""One look for every figure: a colour-blind-safe palette, and markers and line styles so that
no two curves are told apart by colour alone.

The palette is Okabe & Ito's (Color Universal Design, 2008), safe under the common colour-vision
deficiencies; :func:`series` gives the k-th curve a colour, a marker and a line style that all
differ from those of curves k−1 and k+1, so overlapping curves stay distinguishable in grey.
"""

from __future__ import annotations

__all__ = ["LINESTYLES", "MARKERS", "OKABE_ITO", "series"]

#: orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple, black
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
             "#000000")
#: the order in which curves take colours (yellow last: it is faint on white)
_ORDER = (4, 5, 2, 0, 6, 1, 7, 3)
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "<")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1)), "-", "--")


def series(k: int) -> dict[str, object]:
    """Plot keywords (color, marker, linestyle) of the k-th curve of a figure (k ≥ 0)."""
    if k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k!r}")
    return {"color": OKABE_ITO[_ORDER[k % len(_ORDER)]], "marker": MARKERS[k % len(MARKERS)],
            "linestyle": LINESTYLES[k % len(LINESTYLES)]}
