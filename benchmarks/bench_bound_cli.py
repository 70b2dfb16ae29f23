"""Time ``persafl bound README-config --run``: seconds to the first output line and to the end.

The README's run configuration (softmax, MAML, FedProx Synthetic, 20 clients, T = 600) is read
from README.md itself. The command runs as a real process (python -m persafl_np), its stdout
lines timestamped as they arrive; also reports the process's CPU time (load-independent-ish).
Goal (issue 11): first output within 2 s, done within 60 s on 2 cores. Usage::

    python benchmarks/bench_bound_cli.py [--seeds 4] [--stride auto]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="4")
    ap.add_argument("--stride", default="auto")
    args = ap.parse_args()
    text = (ROOT / "README.md").read_text()
    block = re.search(r"^```toml\n(seed = 0\nT = 600.*?)^```", text, re.M | re.S).group(1)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "readme.toml"
        cfg.write_text(block)
        cmd = [sys.executable, "-m", "persafl_np", "bound", str(cfg), "--run", "--quiet",
               "--seeds", args.seeds, "--stride", args.stride]
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
        first = None
        lines = []
        for line in p.stdout:
            if first is None:
                first = time.perf_counter() - t0
            lines.append(line.rstrip())
        rc = p.wait()
        total = time.perf_counter() - t0
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    print("\n".join(ln for ln in lines if ln.startswith(("measured", "  (", "verdict"))))
    print(f"exit {rc}; first output after {first:.2f} s; done after {total:.1f} s wall; "
          f"CPU {cpu.ru_utime + cpu.ru_stime:.1f} s; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
