"""Deterministic discrete-event simulator (theory/simulator.md)."""

from persafl_np.sim.arrivals import Arrival, EventDriven, Replay, TheoremMode
from persafl_np.sim.engine import Problem, evaluate, run
from persafl_np.sim.timing import JobTime, TraceJobTimes, load_job_trace

__all__ = [
    "Arrival",
    "EventDriven",
    "JobTime",
    "Problem",
    "Replay",
    "TheoremMode",
    "TraceJobTimes",
    "evaluate",
    "load_job_trace",
    "run",
]
