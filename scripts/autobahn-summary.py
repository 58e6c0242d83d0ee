#!/usr/bin/env python3
"""Summarise a kosoku/Autobahn index.json and judge it.

usage: autobahn-summary.py INDEX_JSON LABEL [--groups 1-13]

Prints one line: `LABEL: N cases, OK=.. NON-STRICT=.. INFORMATIONAL=.. UNIMPLEMENTED=.. FAILED=..`
and one line per case that is not clean. Exits 1 when, within the judged groups (all of them by
default), any case is FAILED, NON-STRICT, UNIMPLEMENTED (permessage-deflate, 12.x/13.x, not
negotiated) or ERROR, or any close verdict is other than OK or INFORMATIONAL, or when the index
holds fewer than the suite's 517 cases.
"""
import json
import sys
from collections import Counter


def main():
    path, label = sys.argv[1], sys.argv[2]
    lo, hi = 1, 13
    if "--groups" in sys.argv:
        spec = sys.argv[sys.argv.index("--groups") + 1]
        lo, hi = (int(x) for x in spec.split("-"))
    with open(path) as f:
        index = json.load(f)
    results = {}
    for agent_cases in index.values():
        results.update(agent_cases)
    counts = Counter(r["behavior"] for r in results.values())
    order = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
    parts = [f"{k}={counts.get(k, 0)}" for k in order]
    extra = [f"{k}={v}" for k, v in sorted(counts.items()) if k not in order]
    print(f"{label}: {len(results)} cases, " + " ".join(parts + extra))
    bad = []
    for case, r in sorted(results.items(), key=lambda kv: [int(x) for x in kv[0].split(".")]):
        group = int(case.split(".")[0])
        if not lo <= group <= hi:
            continue
        if r["behavior"] in ("FAILED", "NON-STRICT", "UNIMPLEMENTED", "ERROR") or r.get("behaviorClose") not in ("OK", "INFORMATIONAL"):
            bad.append(case)
            print(f"  {case}: behavior={r['behavior']} close={r.get('behaviorClose')} code={r.get('remoteCloseCode')}")
    if bad:
        print(f"{label}: {len(bad)} case(s) in groups {lo}-{hi} not clean")
        sys.exit(1)
    if (lo, hi) == (1, 13) and len(results) < 517:
        print(f"{label}: only {len(results)} of the suite's 517 cases ran")
        sys.exit(1)


if __name__ == "__main__":
    main()
