"""The action server runs its actions without TensorFlow (issue 19: its memory)."""

from __future__ import annotations

import json
import subprocess
import sys

from bot.settings import PROJECT_DIR

PROBE = """
import json, sys
from bot.action_server import keep_tensorflow_out
keep_tensorflow_out()
from actions.feedback import analyse
result = analyse("物流很快，但是质量太差了")
import jieba
print(json.dumps({
    "tensorflow": sys.modules.get("tensorflow") is not None,
    "jieba_global_dictionary": jieba.dt.initialized,
    "themes": list(result.themes),
    "polarity": result.polarity,
}))
"""


def test_the_actions_feedback_analysis_runs_without_tensorflow() -> None:
    """Nor with jieba's process-wide dictionary (about 115 MiB), which its own segmenter does
    not use. Its memory is measured by `make bench` (docs/benchmarks.md), not asserted here."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["tensorflow"] is False
    assert probe["jieba_global_dictionary"] is False
    assert probe["themes"] == ["物流", "质量"] and probe["polarity"] == "negative"
