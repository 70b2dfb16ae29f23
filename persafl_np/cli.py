"""Command line: ``persafl <command>``. Nothing in the package imports this module."""

from __future__ import annotations

import argparse
import sys

import numpy as np

__all__ = ["main"]


def _cmd_demo(args: argparse.Namespace) -> int:
    from persafl_np.models import LeastSquares

    rng = np.random.default_rng(args.seed)
    X = rng.normal(size=(200, 10))
    y = rng.normal(size=200)
    model = LeastSquares(l2=0.01)
    w = model.init_params(rng, 10)
    g = model.grad(w, X, y)
    e = np.eye(10) * 1e-6
    fd = np.array([(model.loss(w + e[j], X, y) - model.loss(w - e[j], X, y)) / 2e-6 for j in range(10)])
    err = float(np.max(np.abs(g - fd)))
    print(f"least squares gradient vs finite differences: max abs error {err:.2e}")
    return 0 if err < 1e-6 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="persafl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run the built-in default job and print a summary")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
