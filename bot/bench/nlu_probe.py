"""Parses a test split with a trained NLU model in a process of its own, pinned to one core.

Run as `python -m bot.bench.nlu_probe MODEL TEXTS_JSON OUT_JSON` by `bot.bench.nlu`: a process per
model, so its peak resident memory is that model's alone, and latency is measured per message
(one `parse_message` call each) the way the server parses a turn: wall time, and the CPU time
the process spent, which other jobs on a shared machine do not inflate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

from bot.nlu.evaluate import predicted_intent

WARM_UP_MESSAGES = 5


async def probe(model: Path, texts: list[str]) -> dict[str, Any]:
    """The predicted full intents, per-message latencies (ms) and the peak memory (MiB)."""
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
    logging.getLogger("rasa").setLevel(logging.WARNING)
    agent = Agent.load(str(model))
    for text in texts[:WARM_UP_MESSAGES]:
        await agent.parse_message(text)
    predicted, latencies, cpu = [], [], []
    for text in texts:
        started, started_cpu = time.perf_counter(), time.process_time()
        parse = await agent.parse_message(text)
        latencies.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        predicted.append(predicted_intent(parse))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"predicted": predicted, "latencies_ms": latencies, "cpu_ms": cpu, "peak_mib": peak_mib}


def main(argv: list[str]) -> int:
    model, texts_file, out_file = (Path(arg) for arg in argv)
    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    out_file.write_text(json.dumps(asyncio.run(probe(model, texts))), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
