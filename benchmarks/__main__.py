"""`python -m benchmarks [compare|scale|startup|polling|relay ...]`: run the benchmarks (all by default).

Each prints a markdown table.
"""

from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    from benchmarks import compare, polling, relay, scale, startup

    wanted = argv or ["polling", "startup", "scale", "compare", "relay"]
    sections = {
        "polling": ("Polling cost (fake clock)", polling.table),
        "startup": ("Start-up: entrypoint.py to its first API request", startup.table),
        "scale": ("Planning at scale (synthetic artifacts, one subprocess per case)", scale.table),
        "compare": ("Side by side with dbtc 0.7.0 on the local dbt Cloud", lambda: compare.compare()[0]),
        "relay": ("The relay: a run's end to the dispatch and to the restart's trigger", relay.table),
    }
    unknown = [name for name in wanted if name not in sections]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(sections)}", file=sys.stderr)
        return 2
    for name in wanted:
        title, run = sections[name]
        started = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        lines = run()
        print(f"\n### {title}\n\n" + "\n".join(lines), flush=True)
        print(f"({name}: {time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
