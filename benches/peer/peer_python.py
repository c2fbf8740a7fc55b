#!/usr/bin/env python3
"""The five-operation STP workflow through Gate's official Python SDK (gate-api 7.2.161),
run N times in sequence against a Gate STP emulator. Prints one JSON line.

    python3 benches/peer/peer_python.py http://127.0.0.1:18080/api/v4 200

Each round: create a group, find it by name, add a user, list the members, remove the
user. Every answer is checked, so a broken run cannot report a speed.
"""

import json
import sys
import time

import gate_api
from gate_api import AccountApi, ApiClient, Configuration, StpGroup

# The emulator's built-in demo world (gate_stp::mock::demo).
MAIN_KEY = "demo-main-key"
MAIN_SECRET = "demo-main-secret"
SUB_USER = 10001
REQUESTS_PER_ROUND = 5


def workflow(api: AccountApi, name: str) -> None:
    group = api.create_stp_group(StpGroup(name=name))
    found = api.list_stp_groups(name=name)
    assert [g.id for g in found] == [group.id], found
    added = api.add_stp_group_users(group.id, [SUB_USER])
    assert SUB_USER in [u.user_id for u in added], added
    members = api.list_stp_groups_users(group.id)
    assert [u.user_id for u in members] == [SUB_USER], members
    left = api.delete_stp_group_users(group.id, SUB_USER)
    assert SUB_USER not in [u.user_id for u in left], left


def main() -> int:
    base, rounds = sys.argv[1], int(sys.argv[2])
    prefix = sys.argv[3] if len(sys.argv) > 3 else "py"
    api = AccountApi(ApiClient(Configuration(host=base, key=MAIN_KEY, secret=MAIN_SECRET)))
    started = time.perf_counter()
    for round_ in range(rounds):
        workflow(api, f"{prefix}-{round_}")
    seconds = time.perf_counter() - started
    requests = rounds * REQUESTS_PER_ROUND
    print(
        json.dumps(
            {
                "impl": f"gate-api {gate_api.__version__} (Python)",
                "rounds": rounds,
                "requests": requests,
                "seconds": round(seconds, 4),
                "req_per_s": round(requests / seconds, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
