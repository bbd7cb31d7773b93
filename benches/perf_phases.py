"""Split a ``perf record -g`` profile of one CLI load into phases.

Run: ``python3 benches/perf_phases.py perf.data [frequency]``.

The phases are cut at the first and last sample of the writer thread (``tallyclerk-sink``):
start-up before the first write, the load, and what follows the last write (commit, exit). For
each phase: wall seconds, CPU seconds (samples / frequency), the share of each thread and of
each shared object. Used for the profiles in ``benches/README.md``.
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys


def main() -> None:
    data = sys.argv[1]
    freq = float(sys.argv[2]) if len(sys.argv) > 2 else 1999.0
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,time,ip,sym,dso", "-G"],
                         capture_output=True, text=True, check=True).stdout
    samples = []
    pattern = re.compile(r"^\s*(.+?)\s+(\d+\.\d+):\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")
    for line in out.splitlines():
        m = pattern.match(line)
        if m is None:
            continue
        comm, stamp, sym, dso = m.groups()
        sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
        samples.append((float(stamp), comm, dso.rsplit("/", 1)[-1], sym))
    sink = [t for t, c, _, _ in samples if c == "tallyclerk-sink"]
    t0, t1 = min(t for t, *_ in samples), max(t for t, *_ in samples)
    cuts = [("start-up", t0, min(sink)), ("load", min(sink), max(sink)),
            ("after the last write", max(sink), t1 + 1e-9)]
    for name, lo, hi in cuts:
        phase = [s for s in samples if lo <= s[0] < hi]
        print(f"== {name}: {hi - lo:.2f} s wall, {len(phase) / freq:.2f} s CPU")
        for label, key in (("thread", 1), ("object", 2), ("symbol", 3)):
            counts = collections.Counter(s[key] for s in phase)
            top = ", ".join(f"{k or '?'} {100 * n / len(phase):.0f}%"
                            for k, n in counts.most_common(8 if key == 3 else 5))
            print(f"   {label}: {top}")


if __name__ == "__main__":
    main()
