"""Server rules as optax-style ``(init, update)`` pairs of pure functions (theory/simulator.md §4).

A rule never mutates its state: ``update(state, c)`` returns a new :class:`ServerState`.
``state.version`` counts server model updates t (the staleness clock, theory/brief_results.md
§A); a rule that buffers (FedBuff, synchronous rounds) increments it only when it steps.

Rules (theory/brief_results.md (B2)–(B6)), with Δ = y_0 − y_Q the client's update and u its
pulled model:

* ``persafl(β)``           (B2)  w ← w − βΔ on every applied arrival.
* ``fedasync(α, s)``       (B4)  α_t = α s(τ);  w ← (1 − α_t) w + α_t (u − Δ).
* ``fedbuff(η_g, K, s)``   (B3)  acc ← acc + s(τ)Δ; after K arrivals w ← w − η_g acc/K.
* ``sync_average(β)``      (B5, B6, FedAvg) w ← w − β·mean_{i∈S}Δ_i at the end of a round
                           (= (1−β)w + β·mean w_i, pFedMe's mixing; β = 1 is FedAvg).
* ``local_only()``         no server model: each client keeps its own w_i ← w_i − Δ_i, in the
                           rule's state (``pull``/``client_models`` below).

A rule may declare ``pull(state, i)`` — the model client i's next job starts from (default: the
server model ``state.w``) — and ``client_models(state, n)`` — per-client models to evaluate and
report (default: none). The engine uses only these, never the rule's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from persafl_np.algorithms.weights import StalenessWeight, constant
from persafl_np.parameters import Param, check, declares

__all__ = [
    "Contribution",
    "ServerRule",
    "ServerState",
    "fedasync",
    "fedbuff",
    "local_only",
    "persafl",
    "sync_average",
]


class ServerState(NamedTuple):
    """w: server model w^t; version: t; acc/count: the FedBuff buffer (None/0 when empty).

    Immutable (a NamedTuple rather than a frozen dataclass: it is built once per arrival and
    NamedTuple construction is ~5x cheaper, which matters at 10⁵ events/s)."""

    w: Any
    version: int = 0
    acc: Any = None
    count: int = 0


class Contribution(NamedTuple):
    """One client result reaching the server.

    delta: Δ = y_0 − y_Q; pulled: the model u = w^{t−τ} the job started from; staleness: τ;
    flush: the last arrival of a synchronous round (buffering rules step now); client: i.
    """

    delta: Any
    pulled: Any
    staleness: int
    flush: bool = False
    client: int = -1


@dataclass(frozen=True)
class ServerRule:
    """``init(w0) -> ServerState`` and ``update(state, Contribution) -> ServerState``.

    K: arrivals per server step when the buffer is full (1 for unbuffered rules).
    params: the rule's hyper-parameters, for reports and the resolved config.
    needs_pulled: ``update`` reads ``Contribution.pulled`` (False lets the engine drop a
        computed job's pulled model before its arrival; it then passes ``pulled=None``).
    pull: ``pull(state, i)`` → the model client i's next job starts from (None: ``state.w``).
    client_models: ``client_models(state, n)`` → the n clients' own models (None: the rule
        has only the server model).
    linear: s when ``update(state, c)`` is exactly ``ServerState(state.w − s·c.delta,
        state.version + 1)`` (no buffer, no other input); the engine may then apply a run of
        such updates at once, w^{t+k} = w^t + Σ_{j≤k} (−s·Δ_j) summed left to right — the same
        roundings (theory/simulator.md §3.3). None: updates are applied one by one.
    """

    name: str
    init: Callable[[Any], ServerState]
    update: Callable[[ServerState, Contribution], ServerState]
    K: int = 1
    params: tuple[tuple[str, Any], ...] = ()
    needs_pulled: bool = True
    pull: Callable[[ServerState, int], Any] | None = None
    client_models: Callable[[ServerState, int], list] | None = None
    linear: float | None = None


#: The rules' parameters, declared once (persafl_np.parameters).
BETA = Param("beta", "float", 1.0, "server step: w <- w - beta*Delta (B2; B5/B6 mixing)",
             lo=0.0, lo_open=True)
ALPHA = Param("alpha", "float", 0.5, "FedAsync mixing alpha (B4)", lo=0.0, lo_open=True, hi=1.0)
ETA_G = Param("eta_g", "float", 1.0, "FedBuff server step eta_g (B3)", lo=0.0, lo_open=True)
K_BUFFER = Param("K", "int", 10, "FedBuff buffer size: arrivals per server step (B3)", lo=1)
CLIENTS_PER_ROUND = Param("clients_per_round", "int", 10,
                          "clients sampled per synchronous round (<= n_clients)", lo=1)


#: ServerState(...) without the NamedTuple's Python-level __new__ (one frame less per arrival).
_new = tuple.__new__


def _init(w0: Any) -> ServerState:
    return ServerState(w=w0, version=0)


@declares(BETA)
def persafl(beta: float = 1.0) -> ServerRule:
    """PersA-FL server (theory/brief_results.md (B2)): w^{t+1} = w^t − βΔ."""
    beta = check(BETA, beta)

    def update(state: ServerState, c: Contribution) -> ServerState:
        return _new(ServerState, (state.w - beta * c.delta, state.version + 1, None, 0))

    return ServerRule("persafl", _init, update, 1, (("beta", beta),), needs_pulled=False,
                      linear=beta)


@declares(ALPHA)
def fedasync(alpha: float = 0.5, weight: StalenessWeight | None = None) -> ServerRule:
    """FedAsync (theory/brief_results.md (B4)): w ← (1−α_t)w + α_t x, α_t = α s(τ), x = u − Δ."""
    alpha = check(ALPHA, alpha)
    s = weight or constant()

    def update(state: ServerState, c: Contribution) -> ServerState:
        a = alpha * s(c.staleness)
        x = c.pulled - c.delta
        return _new(ServerState, ((1.0 - a) * state.w + a * x, state.version + 1, None, 0))

    return ServerRule("fedasync", _init, update, 1, (("alpha", alpha), ("weight", s)))


@declares(ETA_G, K_BUFFER)
def fedbuff(eta_g: float = 1.0, K: int = 10, weight: StalenessWeight | None = None) -> ServerRule:
    """FedBuff (theory/brief_results.md (B3)): acc += s(τ)Δ; every K arrivals w ← w − η_g·acc/K."""
    eta_g = check(ETA_G, eta_g)
    K = check(K_BUFFER, K, "K (buffer size)")
    s = weight or constant()

    def update(state: ServerState, c: Contribution) -> ServerState:
        term = s(c.staleness) * c.delta
        acc = term if state.acc is None else state.acc + term
        count = state.count + 1
        if count < K and not c.flush:
            return _new(ServerState, (state.w, state.version, acc, count))
        # A flushed partial buffer (synchronous round with dropouts) is averaged over what arrived.
        return _new(ServerState, (state.w - (eta_g / count) * acc, state.version + 1, None, 0))

    return ServerRule("fedbuff", _init, update, K, (("eta_g", eta_g), ("K", K), ("weight", s)),
                      needs_pulled=False)


@declares(BETA, CLIENTS_PER_ROUND)
def sync_average(beta: float = 1.0, clients_per_round: int = 10) -> ServerRule:
    """Synchronous round (FedAvg β=1, Per-FedAvg, pFedMe mixing β): w ← w − β·mean_{i∈S}Δ_i."""
    beta = check(BETA, beta)
    clients_per_round = check(CLIENTS_PER_ROUND, clients_per_round)
    rule = fedbuff(eta_g=beta, K=clients_per_round)
    return ServerRule(
        "sync_average", rule.init, rule.update, rule.K,
        (("beta", float(beta)), ("clients_per_round", clients_per_round)), needs_pulled=False,
    )


@declares()
def local_only() -> ServerRule:
    """Each client trains alone on its own model: w_i ← w_i − Δ_i (w_i = w⁰ until its first job).

    The state's ``w`` stays w⁰; ``acc`` is the table {i: w_i} of the clients that have trained.
    The one exception to "a rule never mutates its state": the table is updated in place (a
    copy per arrival would cost O(n·d)); no other state object shares it.
    """

    def init(w0: Any) -> ServerState:
        return ServerState(w=w0, version=0, acc={})

    def update(state: ServerState, c: Contribution) -> ServerState:
        state.acc[c.client] = c.pulled - c.delta
        return ServerState(state.w, state.version + 1, state.acc)

    def pull(state: ServerState, i: int) -> Any:
        return state.acc.get(i, state.w)

    def client_models(state: ServerState, n: int) -> list:
        return [state.acc.get(i, state.w) for i in range(n)]

    return ServerRule("local", init, update, 1, (), True, pull, client_models)
