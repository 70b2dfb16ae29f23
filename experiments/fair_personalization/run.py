"""Personalized (MAML, ME) vs global (AL) vs local-only with α, λ chosen on a validation split.

Usage::

    python experiments/fair_personalization/run.py experiments/fair_personalization/spec.toml \
        --out experiments/results/fair_personalization

Protocol (experiments/README.md, "Investigation"):

1. per setting and seed, build the data set of the setting's base config;
2. split each client's *training* rows into fit / validation (``validation_fraction``; the
   test rows are not touched) with a stream of its own (``SeedSequence(seed,
   spawn_key=(VALIDATION_PURPOSE,))``), run MAML for every α and ME for every λ on the fit
   rows and score the served models on the validation rows;
3. choose α*, λ* per setting by the mean over seeds of the validation client-mean accuracy;
4. rerun AL, local-only, MAML(α*), ME(λ*) on the full training rows, score on the test rows;
5. control: ME(λ*)'s served-model solve started from the untrained w⁰ (no federation at all),
   which separates what the federated w contributes from what the local prox solve does.

The served models are those of persafl_np.sim.engine.evaluate (eq. (SIM-EVAL) of
theory/simulator.md): w for AL, θ_i = w − α∇f_i(w) for MAML (eq. (MAML-1)), θ̂_i(w) for ME
(eq. (ME-1)), the client's own model for local-only. The majority-class predictor of each
client's training labels is reported as a floor.

Writes ``DIR/fair_personalization.json`` (atomic) and prints the markdown tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from persafl_np.atomic import atomic_write_text
from persafl_np.config import SimConfig, simulate
from persafl_np.data.federated import ClientData, FederatedDataset
from persafl_np.data.partition import split_train_test
from persafl_np.sim.engine import Problem

#: Spawn key of the validation-split stream; distinct from every purpose in persafl_np.sim.streams
#: (0–6) so the split does not consume or shift any stream the simulator uses.
VALIDATION_PURPOSE = 100


def base_config(sweep_file: Path, overrides: dict[str, Any], seed: int) -> dict:
    """The base dict of a sweep file with dotted ``overrides`` applied and ``seed`` set."""
    with sweep_file.open("rb") as fh:
        d = tomllib.load(fh)["base"]
    d = json.loads(json.dumps(d))  # deep copy of plain TOML values
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = d
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    d["seed"] = seed
    return d


def validation_split(data: FederatedDataset, fraction: float, seed: int) -> FederatedDataset:
    """Same clients; training rows split into (fit, validation); the test rows are dropped."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(VALIDATION_PURPOSE,)))
    clients = []
    for c in data.clients:
        fit, val = split_train_test(np.arange(c.X_train.shape[0]), fraction, rng)
        clients.append(ClientData(c.X_train[fit], c.y_train[fit], c.X_train[val], c.y_train[val]))
    return FederatedDataset(clients=tuple(clients), n_features=data.n_features,
                            n_classes=data.n_classes, name=data.name + "+validation")


def majority_accuracy(data: FederatedDataset) -> float:
    """Client-mean test accuracy of predicting each client's most frequent training label."""
    accs = [float(np.mean(c.y_test == np.bincount(c.y_train).argmax()))
            for c in data.clients if c.y_test.shape[0]]
    return float(np.mean(accs))


def variant(d: dict, oracle: str, algorithm: str, **oracle_params: float) -> SimConfig:
    d = json.loads(json.dumps(d))
    d["oracle"] = {**d.get("oracle", {}), "name": oracle, **oracle_params}
    d["algorithm"] = {**d.get("algorithm", {}), "name": algorithm}
    return SimConfig.from_dict(d)


def one_run(job: tuple) -> dict:
    """(phase, setting, seed, label, config dict, use_validation, fraction) -> scores."""
    phase, setting, seed, label, cfg_dict, use_val, fraction = job
    cfg = SimConfig.from_dict(cfg_dict)
    data = cfg.data.build(cfg.seed)
    if use_val:
        data = validation_split(data, fraction, cfg.seed)
    if phase == "control":
        return _served_at_init(cfg, data) | {"phase": phase, "setting": setting, "seed": seed,
                                             "label": label}
    res = simulate(cfg, dataset=data)
    h = res.history.columns
    return {"phase": phase, "setting": setting, "seed": seed, "label": label,
            "acc_pers_mean": float(h["acc_pers_mean"][-1]),
            "acc_pers_min": float(h["acc_pers_min"][-1]),
            "acc_global": float(h["acc_global"][-1]), "status": res.status,
            "n_grad": int(res.counters["n_grad"]), "arrivals": int(res.counters["arrivals"]),
            "majority": majority_accuracy(data)}


def _served_at_init(cfg: SimConfig, data: FederatedDataset) -> dict:
    """Control without federation: the oracle's served model personalize(w⁰) on each client.

    For ME this is θ̂_i(w⁰) = argmin f_i(θ) + (λ/2)‖θ − w⁰‖² (eq. (ME-1)) — the same
    evaluation-time solve ME gets, started from the untrained w⁰ instead of the federated w^T,
    i.e. what ME's served model would be if the server had learned nothing.
    """
    model = cfg.model.build(data.n_classes)
    oracle = cfg.oracle.build()
    w0 = Problem.build(model, oracle, data, seed=cfg.seed).w0
    accs = [float(np.mean(model.predict(oracle.personalize(model, w0, c.X_train, c.y_train),
                                        c.X_test) == c.y_test))
            for c in data.clients if c.y_test.shape[0]]
    return {"acc_pers_mean": float(np.mean(accs)), "acc_pers_min": float(np.min(accs)),
            "acc_global": float("nan"), "status": "ok", "n_grad": 0, "arrivals": 0,
            "majority": majority_accuracy(data)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    with args.spec.open("rb") as fh:
        spec = tomllib.load(fh)
    frac = float(spec["validation_fraction"])
    if not 0.0 < frac < 1.0:
        raise ValueError(f"validation_fraction must lie in (0, 1), got {frac!r}")
    seeds = [int(s) for s in spec["seeds"]]
    settings = {name: (args.spec.parent / s["base"], s.get("overrides", {}))
                for name, s in spec["settings"].items()}
    cands = [("maml", "alpha", float(a)) for a in spec["maml_alpha"]]
    cands += [("moreau", "lam", float(v)) for v in spec["moreau_lam"]]

    def jobs_for(phase: str, chosen: dict | None) -> list[tuple]:
        jobs = []
        for name, (path, over) in settings.items():
            for seed in seeds:
                d = base_config(path, over, seed)
                if phase == "validation":
                    for oracle, key, v in cands:
                        cfg = variant(d, oracle, "persafl", **{key: v})
                        jobs.append((phase, name, seed, f"{oracle} {key}={v:g}",
                                     cfg.to_dict(), True, frac))
                    continue
                runs = [("AL", variant(d, "plain", "persafl")),
                        ("local-only", variant(d, "plain", "local"))]
                for oracle, key in (("maml", "alpha"), ("moreau", "lam")):
                    v = chosen[(name, oracle)]
                    runs.append((f"{oracle} {key}={v:g}", variant(d, oracle, "persafl",
                                                                  **{key: v})))
                jobs += [(phase, name, seed, lab, c.to_dict(), False, frac) for lab, c in runs]
                ctrl = runs[-1]  # ME(λ*): its served-model solve from w⁰, no federation
                jobs.append(("control", name, seed, ctrl[0] + " from w0 (no federation)",
                             ctrl[1].to_dict(), False, frac))
        return jobs

    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        val_rows = list(pool.map(one_run, jobs_for("validation", None)))
        chosen = {}
        for name in settings:
            for oracle in ("maml", "moreau"):
                scores = {}
                for oc, k, v in cands:
                    if oc == oracle:
                        lab = f"{oc} {k}={v:g}"
                        scores[v] = np.mean([r["acc_pers_mean"] for r in val_rows
                                             if r["setting"] == name and r["label"] == lab])
                chosen[(name, oracle)] = max(scores, key=scores.get)
        test_rows = list(pool.map(one_run, jobs_for("test", chosen)))

    args.out.mkdir(parents=True, exist_ok=True)
    out = {"spec": str(args.spec), "chosen": {f"{n}|{o}": v for (n, o), v in chosen.items()},
           "validation": val_rows, "test": test_rows}
    atomic_write_text(args.out / "fair_personalization.json", json.dumps(out, indent=1))
    print(report(out))


def _sd(a: list[float]) -> float:
    """Sample standard deviation (ddof = 1), as in ``persafl summarize`` and the README tables."""
    return float(np.std(a, ddof=1)) if len(a) > 1 else 0.0


def report(out: dict) -> str:
    """Markdown tables: validation scores per candidate, then test scores per run.

    ``python run.py --report DIR/fair_personalization.json`` reprints them without running.
    """
    lines = ["Validation (client-mean acc. on the validation rows, mean ± std over seeds):", "",
             "| setting | candidate | val. acc. |", "|---|---|---|"]
    val = out["validation"]
    for key in dict.fromkeys((r["setting"], r["label"]) for r in val):
        a = [r["acc_pers_mean"] for r in val if (r["setting"], r["label"]) == key]
        lines.append(f"| {key[0]} | {key[1]} | {np.mean(a):.3f} ± {_sd(a):.3f} |")
    lines += ["", "Test (chosen α*, λ*; mean ± std over seeds; per-seed values in brackets):", "",
              "| setting | served model | client-mean acc. | worst client | majority-class floor |",
              "|---|---|---|---|---|"]
    test = out["test"]
    for key in dict.fromkeys((r["setting"], r["label"]) for r in test):
        rs = [r for r in test if (r["setting"], r["label"]) == key]
        a = [r["acc_pers_mean"] for r in rs]
        lo = [r["acc_pers_min"] for r in rs]
        maj = [r["majority"] for r in rs]
        per = ", ".join(f"{x:.3f}" for x in a)
        lines.append(f"| {key[0]} | {key[1]} | {np.mean(a):.3f} ± {_sd(a):.3f} [{per}] | "
                     f"{np.mean(lo):.3f} | {np.mean(maj):.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--report":
        print(report(json.loads(Path(sys.argv[2]).read_text())))
    else:
        main(sys.argv[1:])
