#!/usr/bin/env bash
# Peer comparison, outside CI: Gate's official Python SDK and this crate's client each run
# the same five-operation STP workflow ROUNDS times, one request at a time, against the
# same Gate STP emulator (rate limit off). Prints requests/s of each and the ratio.
#
#   bash benches/peer/run.sh [ROUNDS] [REPEATS]     (defaults 1000 and 5)
#
# Needs python3 with pip; installs gate-api 7.2.161 into target/peer-venv if missing.
set -euo pipefail

ROUNDS="${1:-1000}"
REPEATS="${2:-5}"
PORT="${PEER_PORT:-18089}"
SDK_VERSION="7.2.161"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

cargo build --quiet --release --features cli --bin gate-stp --example peer_workflow

VENV="$ROOT/target/peer-venv"
if ! "$VENV/bin/python" -c "import gate_api, sys; sys.exit(gate_api.__version__ != '$SDK_VERSION')" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "gate-api==$SDK_VERSION"
fi

BASE="http://127.0.0.1:$PORT/api/v4"
MOCK_PID=""
stop_emulator() { [[ -n "$MOCK_PID" ]] && kill "$MOCK_PID" 2>/dev/null && wait "$MOCK_PID" 2>/dev/null; MOCK_PID=""; }
trap stop_emulator EXIT

# A fresh emulator for every run: groups pile up (each round creates one), and neither
# side should pay for the other's leftovers.
fresh_emulator() {
    stop_emulator || true
    target/release/gate-stp mock --listen "127.0.0.1:$PORT" --no-rate-limit >/dev/null 2>&1 &
    MOCK_PID=$!
    for _ in $(seq 50); do
        curl -fsS "$BASE/spot/time" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "the emulator did not start on port $PORT" >&2
    return 1
}

RESULTS="$ROOT/target/peer-results.jsonl"
# Each run in this shell (not a pipeline's subshell), so that it owns the emulator it starts.
python_run() { fresh_emulator && "$VENV/bin/python" benches/peer/peer_python.py "$BASE" "$1" "$2" >>"$RESULTS"; }
rust_run() { fresh_emulator && target/release/examples/peer_workflow "$BASE" "$1" "$2" >>"$RESULTS"; }

# Alternate the two, after one short warm-up run each (page cache, CPU frequency).
: >"$RESULTS"
python_run 20 warm
rust_run 20 warm
: >"$RESULTS"
for i in $(seq "$REPEATS"); do
    python_run "$ROUNDS" "py$i"
    rust_run "$ROUNDS" "rs$i"
done
stop_emulator || true
cat "$RESULTS"

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
by_impl = {}
for run in runs:
    by_impl.setdefault(run["impl"], []).append(run["req_per_s"])
print()
print("| implementation | runs | requests per run | median req/s | min | max |")
print("|---|---|---|---|---|---|")
medians = {}
for name, rates in by_impl.items():
    medians[name] = statistics.median(rates)
    requests = next(r["requests"] for r in runs if r["impl"] == name)
    print(f"| {name} | {len(rates)} | {requests} | {medians[name]:,.0f} | {min(rates):,.0f} | {max(rates):,.0f} |")
rust = next(v for k, v in medians.items() if "Rust" in k)
python = next(v for k, v in medians.items() if "Python" in k)
print(f"\nratio (Rust / Python, median req/s): {rust / python:.2f}")
PY
