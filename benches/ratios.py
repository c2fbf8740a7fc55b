#!/usr/bin/env python3
"""Reads criterion's saved estimates of the last `cargo bench --bench client` run and
prints the medians and the ratios the benchmark targets are stated in, as Markdown.

    cargo bench --features mock --bench client && python3 benches/ratios.py

Standard library only; reads target/criterion/**/new/{benchmark,estimates}.json.
"""

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"

# (bench, floor, target ratio)
PAIRS = [
    *[(f"sign/hook/{n}", f"sign/primitive/{n}", 1.10) for n in (0, 100, 10000)],
    *[
        (f"{group}/gate_stp/{op}", f"{group}/raw_reqwest/{op}", 1.05)
        for group in ("loopback", "loopback_multi_thread")
        for op in ("list_groups", "add_users")
    ],
]


def medians() -> dict[str, float]:
    """Median time in ns of every bench criterion has saved, by its full id."""
    out = {}
    for meta in ROOT.glob("**/new/benchmark.json"):
        full_id = json.loads(meta.read_text())["full_id"]
        estimates = json.loads((meta.parent / "estimates.json").read_text())
        out[full_id] = estimates["median"]["point_estimate"]
    return out


def show(ns: float) -> str:
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def main() -> int:
    print("| bench | median | floor | floor median | ratio | target | met |")
    print("|---|---|---|---|---|---|---|")
    saved = medians()
    missing = []
    for bench, floor, target in PAIRS:
        a, b = saved.get(bench), saved.get(floor)
        if a is None or b is None:
            missing.append(bench if a is None else floor)
            continue
        ratio = a / b
        met = "yes" if ratio <= target else "no"
        print(f"| `{bench}` | {show(a)} | `{floor}` | {show(b)} | {ratio:.3f} | <= {target} | {met} |")
    print()
    print("Paired: what our client adds per request, measured interleaved (`overhead/*`),")
    print("against the floor's median of the same run:")
    print()
    print("| group | operation | overhead | floor median | ratio | target | met |")
    print("|---|---|---|---|---|---|---|")
    for n in (0, 100, 10000):
        extra = saved.get(f"sign/overhead/{n}")
        floor = saved.get(f"sign/primitive/{n}")
        if extra is None or floor is None:
            missing.append(f"sign/overhead/{n}")
            continue
        ratio = (floor + extra) / floor
        met = "yes" if ratio <= 1.10 else "no"
        print(f"| `sign` | `hook/{n}` | {show(extra)} | {show(floor)} | {ratio:.3f} | <= 1.10 | {met} |")
    for group in ("loopback", "loopback_multi_thread"):
        for op in ("list_groups", "add_users"):
            extra = saved.get(f"{group}/overhead/{op}")
            floor = saved.get(f"{group}/raw_reqwest/{op}")
            if extra is None or floor is None:
                missing.append(f"{group}/overhead/{op}")
                continue
            ratio = (floor + extra) / floor
            met = "yes" if ratio <= 1.05 else "no"
            print(f"| `{group}` | `{op}` | {show(extra)} | {show(floor)} | {ratio:.3f} | <= 1.05 | {met} |")
    emulator = saved.get("emulator/concurrent_64")
    if emulator is not None:
        print(
            f"\n`emulator/concurrent_64`: median {show(emulator)} per 64 requests, "
            f"{64 / (emulator / 1e9):,.0f} requests/s"
        )
    if missing:
        print(f"\nnot measured yet: {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
