#!/usr/bin/env python3
"""Turn the results.jsonl of benches/compare.sh (or compare_tls.sh) into the markdown table of
BENCHMARKS.md. Servers are columns in the order they first appear; the first is the baseline."""
import json
import statistics
import sys
from collections import defaultdict

def main():
    rates = defaultdict(list)
    cpus = defaultdict(list)
    p99s = defaultdict(list)
    scenarios = []
    servers = []
    for line in open(sys.argv[1]):
        r = json.loads(line)
        b = r["bench"]
        key = (b["connections"], b["size"])
        if key not in scenarios:
            scenarios.append(key)
        if r["server"] not in servers:
            servers.append(r["server"])
        rates[key, r["server"]].append(b["msgs_per_s"])
        if b.get("server_cpu_s_per_million") is not None:
            cpus[key, r["server"]].append(b["server_cpu_s_per_million"])
        p99s[key, r["server"]].append(b["p99_us"])
    runs = max(len(v) for v in rates.values())
    print(f"Medians of {runs} interleaved runs; msgs/s (ratio to {servers[0]}), server CPU s per million messages, p99 round trip.\n")
    print("| scenario | " + " | ".join(servers) + " |")
    print("|---|" + "---|" * len(servers))
    for key in scenarios:
        base = statistics.median(rates[key, servers[0]])
        cells = []
        for server in servers:
            if not rates[key, server]:
                cells.append("-")
                continue
            rate = statistics.median(rates[key, server])
            cpu = statistics.median(cpus[key, server]) if cpus[key, server] else float("nan")
            p99 = statistics.median(p99s[key, server])
            cells.append(f"{rate:,.0f} ({rate / base:.2f}x), {cpu:.2f} s/M, p99 {p99:,.0f} us")
        print(f"| {key[0]} x {key[1]} B | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
