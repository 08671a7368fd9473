"""Summaries of py-spy's raw (folded) profiles: where the samples were, by function, inclusive and self.

    python -m event_pipeline.bench.profiles var/bench/hour.folded     # the top functions as a text table
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _name(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    return f"{match['func']} ({match['file']})"


def summarise(folded: Path, top: int = 25) -> str:
    inclusive: Counter = Counter()
    own: Counter = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_name(f) for f in stack.split(";") if f]
        for name in set(frames):
            inclusive[name] += samples
        if frames:
            own[frames[-1]] += samples
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "inclusive  self   function"]
    for name, samples in inclusive.most_common(top):
        lines.append(f"{samples / total:8.1%} {own[name] / total:6.1%}  {name}")
    lines += ["", "self-time leaders:"]
    for name, samples in own.most_common(top):
        lines.append(f"{samples / total:8.1%}  {name}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1])))
