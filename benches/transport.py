"""Transport benchmark: framed-message round trips and throughput between two
endpoints on 127.0.0.1 (QUIC + TLS 1.3 + length-prefixed postcard frames).

Runs the Rust bench `rust/net/benches/transport.rs` (release build) and prints
its results as a table. Usage: python benches/transport.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_bench() -> list[dict[str, float]]:
    out = subprocess.run(
        ["cargo", "bench", "--quiet", "-p", "mosaik-net", "--bench", "transport"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main() -> int:
    rows = run_bench()
    print(f"{'bench':<11} {'size':>7} {'p50 us':>9} {'p99 us':>9} {'msgs/s':>10} {'MiB/s':>8}")
    for r in rows:
        size = f"{int(r['size']) // 1024} KiB"
        if r["bench"] == "round_trip":
            print(f"{'round trip':<11} {size:>7} {r['p50_us']:>9.1f} {r['p99_us']:>9.1f}")
        else:
            line = f"{'throughput':<11} {size:>7} {'':>9} {'':>9}"
            print(f"{line} {r['msgs_per_s']:>10.0f} {r['mib_per_s']:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
