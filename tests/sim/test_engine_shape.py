"""Engine shape: the arrival-source protocol, rules that keep per-client models, no private
imports across packages."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np

from persafl_np.algorithms import Algorithm, local_only
from persafl_np.sim import EventDriven, Replay, TheoremMode, run
from persafl_np.sim.arrivals import ArrivalSource, ArrivalSpec, make_source


def test_every_source_implements_the_protocol(ls_problem):
    res = run(ls_problem, Algorithm(local_only()), TheoremMode(), T=3)
    specs = [TheoremMode(tau=2), EventDriven(), Replay.from_trace(res.trace)]
    for spec in specs:
        assert isinstance(spec, ArrivalSpec)
        assert isinstance(make_source(spec, 5, 0, 1, False), ArrivalSource)
    assert isinstance(make_source(EventDriven(), 5, 0, 2, True), ArrivalSource)  # rounds


def test_local_only_is_the_rules_state_not_its_name(make_problem):
    """A rule with the local rule's pull/client_models under another name behaves the same:
    the engine never looks at rule names."""
    prob = make_problem(n=4)
    rule = local_only()
    renamed = dataclasses.replace(rule, name="my_local")
    for spec in (TheoremMode(tau=1), EventDriven()):
        a = run(prob, Algorithm(rule, Q=2, eta=0.05, batch_size=4), spec, T=15, seed=2)
        b = run(prob, Algorithm(renamed, Q=2, eta=0.05, batch_size=4), spec, T=15, seed=2)
        assert a.digest() == b.digest()
        np.testing.assert_array_equal(a.client_params, b.client_params)
        assert a.client_params.shape == (4, prob.w0.shape[0])


def test_no_private_imports_across_packages():
    """No module imports a private (_name) object from another subpackage of persafl_np."""
    root = Path(__file__).resolve().parents[2] / "persafl_np"
    bad = []
    for f in root.rglob("*.py"):
        pkg = f.relative_to(root).parts[0]
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("persafl_np."):
                other = node.module.split(".")[1]
                if other != pkg and any(a.name.startswith("_") for a in node.names):
                    bad.append(f"{f.relative_to(root)}: from {node.module} import "
                               + ", ".join(a.name for a in node.names))
    assert not bad, bad


def test_the_loop_restores_the_collector_threshold():
    import gc

    from persafl_np.algorithms import Algorithm, persafl
    from persafl_np.models import LeastSquares
    from persafl_np.personalization import Plain
    from persafl_np.sim import EventDriven, Problem, run

    rng = np.random.default_rng(0)
    prob = Problem.build(LeastSquares(), Plain(),
                         [(rng.normal(size=(4, 2)), rng.normal(size=4)) for _ in range(3)])
    old = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        run(prob, Algorithm(persafl(0.7), Q=1, eta=0.1), EventDriven(), T=20, seed=0)
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(10**6, 10, 10)  # a caller's own higher threshold is left alone
        run(prob, Algorithm(persafl(0.7), Q=1, eta=0.1), EventDriven(), T=20, seed=0)
        assert gc.get_threshold() == (10**6, 10, 10)
    finally:
        gc.set_threshold(*old)
