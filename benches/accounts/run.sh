#!/usr/bin/env bash
# Accounts side by side (issue 29), outside CI: `gate-stp apply` and `gate-stp plan` of
# one account's file alone and of several accounts' files in one run, GROUPS groups of one
# member per account, on one emulator at Gate's rate limits (150 requests per 10 s per
# endpoint and account). Gate counts its limits per account, so several accounts should
# take about as long as one alone. Prints the wall time of each run and the ratios.
#
#   bash benches/accounts/run.sh [GROUPS]     (default 300)
#   GATE_STP_BIN=path/to/gate-stp bash benches/accounts/run.sh    (another build)
set -euo pipefail

GROUPS_PER_ACCOUNT="${1:-300}"
PORT="${ACCOUNTS_PORT:-18090}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

# GATE_STP_BIN: another build to measure (e.g. an earlier commit's), else this tree's.
if [[ -n "${GATE_STP_BIN:-}" ]]; then
    BIN="$GATE_STP_BIN"
else
    cargo build --quiet --release --features cli --bin gate-stp
    BIN="$ROOT/target/release/gate-stp"
fi

WORK="$(mktemp -d)"
MOCK_PID=""
cleanup() {
    [[ -n "$MOCK_PID" ]] && kill "$MOCK_PID" 2>/dev/null && wait "$MOCK_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# Three main accounts (A: 100000, B: 200000, C: 300000) with a key each and GROUPS
# sub-accounts each: A is worked on alone, B and C side by side.
MAINS="100000 200000 300000"
{
    for main in $MAINS; do
        printf '[[accounts]]\nuser_id = %d\nkey = "key-%d"\nsecret = "secret-%d"\n\n' "$main" "$main" "$main"
        for i in $(seq "$GROUPS_PER_ACCOUNT"); do
            printf '[[accounts]]\nuser_id = %d\nmain = %d\n\n' "$((main + i))" "$main"
        done
    done
} >"$WORK/world.toml"

BASE="http://127.0.0.1:$PORT/api/v4"
"$BIN" mock --listen "127.0.0.1:$PORT" --accounts "$WORK/world.toml" >/dev/null 2>&1 &
MOCK_PID=$!
for _ in $(seq 50); do
    curl -fsS "$BASE/spot/time" >/dev/null 2>&1 && break
    sleep 0.1
done

# One profile per account; each file names its profile.
{
    for main in $MAINS; do
        printf '[profiles.p%d]\nbase_url = "%s"\nkey = "key-%d"\nsecret = "secret-%d"\n\n' "$main" "$BASE" "$main" "$main"
    done
} >"$WORK/config.toml"
chmod 600 "$WORK/config.toml"
export GATE_STP_CONFIG="$WORK/config.toml"
for main in $MAINS; do
    {
        printf 'main_user_id = %d\nprofile = "p%d"\n' "$main" "$main"
        for i in $(seq "$GROUPS_PER_ACCOUNT"); do
            printf '\n[[group]]\nname = "desk-%d"\nmembers = [%d]\n' "$i" "$((main + i))"
        done
    } >"$WORK/$main.toml"
done
A="$WORK/100000.toml"
B="$WORK/200000.toml"
C="$WORK/300000.toml"

# Wall time of one run, in seconds; the run starts 1 s into a fresh 10 s window (the
# emulator's windows are aligned on multiples of 10 s since the epoch), so that no run
# shares a window with the one before.
timed() {
    local now start end
    now=$(date +%s.%N)
    sleep "$(echo "10 - ($now % 10) + 1" | bc)"
    start=$(date +%s.%N)
    "$BIN" "$@" >/dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
ratio() { echo "scale=2; $1 / $2" | bc; }

apply_a=$(timed apply "$A" --yes --max-creates "$GROUPS_PER_ACCOUNT")
apply_bc=$(timed apply "$B" "$C" --yes --max-creates "$GROUPS_PER_ACCOUNT")
plan_a=$(timed plan "$A")
plan_b=$(timed plan "$B")
plan_bc=$(timed plan "$B" "$C")
plan_abc=$(timed plan "$A" "$B" "$C")

printf 'groups per account: %d (one member each)\n' "$GROUPS_PER_ACCOUNT"
printf 'apply from empty, A alone:      %6.2f s\n' "$apply_a"
printf 'apply from empty, B and C:      %6.2f s  (%sx A alone)\n' "$apply_bc" "$(ratio "$apply_bc" "$apply_a")"
printf 'plan, A alone:                  %6.2f s\n' "$plan_a"
printf 'plan, B alone:                  %6.2f s\n' "$plan_b"
printf 'plan, B and C:                  %6.2f s  (%sx B alone)\n' "$plan_bc" "$(ratio "$plan_bc" "$plan_b")"
printf 'plan, A, B and C:               %6.2f s  (%sx A alone)\n' "$plan_abc" "$(ratio "$plan_abc" "$plan_a")"
