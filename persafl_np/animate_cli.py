"""``persafl animate RUN_DIR --out FILE.gif``: the animated timeline (or contour view) of a run.

Registered in :mod:`persafl_np.cli` by :func:`add_animate_parser`; the drawing is in
:mod:`persafl_np.plots.animate`. GIF only: Pillow comes with matplotlib, while MP4 would need an
ffmpeg binary (imageio-ffmpeg) for no gain in a slide or a browser.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

__all__ = ["add_animate_parser", "cmd_animate"]


def cmd_animate(args: argparse.Namespace) -> int:
    """Write the animation of ``args.run_dir`` to ``args.out``; 0 on success, 2 on bad input."""
    from persafl_np.plots.animate import animate_contour, animate_timeline, load_run

    t0 = time.perf_counter()
    try:
        if args.view == "contour":
            out = animate_contour(args.run_dir, args.out, frames=args.frames,
                                  seconds=args.seconds, dpi=args.dpi)
        else:
            out = animate_timeline(load_run(args.run_dir), args.out,
                                   frames=150 if args.frames is None else args.frames,
                                   seconds=args.seconds, dpi=args.dpi, max_rows=args.max_rows,
                                   window=args.window, until=args.until)
    except ValueError as exc:
        print(f"persafl animate: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {time.perf_counter() - t0:.1f} s)")
    return 0


def add_animate_parser(subparsers: argparse._SubParsersAction,
                       parents: Sequence[argparse.ArgumentParser] = ()) -> argparse.ArgumentParser:
    """Add the ``animate`` sub-command to ``persafl``'s sub-parsers (``parents``: the command
    line's common flags)."""
    p = subparsers.add_parser(
        "animate", parents=list(parents),
        help="animated GIF of a saved run: jobs, versions and staleness over time",
        description="Animate a run directory written by `persafl run` or `persafl demo`: "
                    "clients as rows, jobs growing in virtual time, the server version counter, "
                    "each arrival flashing its staleness tau = t - p, a live staleness histogram "
                    "and the |grad F|^2 curve (--view timeline); or, for a 2-parameter model, "
                    "the server iterate on the contours of F with each update drawn from the "
                    "stale point it was computed at (--view contour).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", required=True, metavar="FILE.gif")
    p.add_argument("--view", choices=("timeline", "contour"), default="timeline")
    p.add_argument("--frames", type=int, default=None,
                   help="number of frames (timeline default 150; contour: one per update)")
    p.add_argument("--seconds", type=float, default=30.0,
                   help="total duration in seconds (default 30)")
    p.add_argument("--dpi", type=int, default=80, help="resolution, 20..300 (default 80)")
    p.add_argument("--max-rows", type=int, default=16,
                   help="timeline: at most this many client rows (default 16)")
    p.add_argument("--window", type=float, default=None,
                   help="timeline: width of the scrolling view in virtual time")
    p.add_argument("--until", type=float, default=None,
                   help="timeline: last virtual time shown (default: the last arrival)")
    p.set_defaults(func=cmd_animate)
    return p
