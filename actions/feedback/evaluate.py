"""Precision and recall of `analyse` against hand-labelled comments.

    python -m actions.feedback.evaluate tests/feedback/labelled_comments.yml [--mistakes]

A labelled file is YAML: `comments:` a list of {text, themes: [...], polarity}. Themes are
scored per theme and micro-averaged over all (comment, theme) pairs; polarity by accuracy and
per-class precision and recall. The numbers are recorded in docs/feedback.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from actions.feedback import POLARITIES, Analysis, analyse, themes


@dataclass(frozen=True)
class LabelledComment:
    text: str
    themes: frozenset[str]
    polarity: str


@dataclass(frozen=True)
class Scores:
    label: str
    support: int  # labelled
    predicted: int
    correct: int

    @property
    def precision(self) -> float | None:
        return _ratio(self.correct, self.predicted)

    @property
    def recall(self) -> float | None:
        return _ratio(self.correct, self.support)

    @property
    def f1(self) -> float | None:
        return _ratio(2 * self.correct, self.support + self.predicted)


@dataclass(frozen=True)
class Mistake:
    text: str
    expected: str  # "物流,质量 / negative"
    got: str


@dataclass(frozen=True)
class FeedbackReport:
    comments: int
    themes: tuple[Scores, ...]  # in themes() order
    micro: Scores
    polarity_accuracy: float
    polarities: tuple[Scores, ...]  # positive, negative, neutral
    mistakes: tuple[Mistake, ...]


def evaluate(path: str | Path) -> FeedbackReport:
    """The report of `analyse` on the labelled comments in `path`."""
    return score_comments(load_labelled(path), analyse)


def load_labelled(path: str | Path) -> tuple[LabelledComment, ...]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    comments = tuple(_labelled(item) for item in data["comments"])
    unknown = {t for c in comments for t in c.themes} - set(themes())
    unknown_polarity = {c.polarity for c in comments} - set(POLARITIES)
    if unknown or unknown_polarity:
        raise ValueError(f"{path}: unknown labels {sorted(unknown | unknown_polarity)}")
    return comments


def score_comments(
    comments: Sequence[LabelledComment], analyser: Callable[[str], Analysis]
) -> FeedbackReport:
    """Compares `analyser` with the labels (the analyser is an argument for tests)."""
    results = [(comment, analyser(comment.text)) for comment in comments]
    pairs = [(c.themes, frozenset(a.themes)) for c, a in results]
    per_theme = tuple(_theme_scores(name, pairs) for name in themes())
    polarities = [(c.polarity, a.polarity) for c, a in results]
    correct = sum(expected == got for expected, got in polarities)
    return FeedbackReport(
        comments=len(comments),
        themes=per_theme,
        micro=_sum_scores("micro", per_theme),
        polarity_accuracy=correct / len(comments) if comments else 0.0,
        polarities=tuple(_class_scores(label, polarities) for label in POLARITIES),
        mistakes=tuple(_mistake(c, a) for c, a in results if not _agrees(c, a)),
    )


def to_markdown(report: FeedbackReport, *, title: str = "") -> str:
    """The report as two markdown tables (themes, polarity)."""
    lines = [f"{title} ({report.comments} comments)" if title else f"{report.comments} comments"]
    lines += ["", "| theme | labelled | predicted | precision | recall | F1 |", "|" + " --- |" * 6]
    lines += [_row(s) for s in report.themes] + [_row(report.micro, bold=True)]
    lines += ["", f"Polarity accuracy: **{report.polarity_accuracy:.2f}**", ""]
    lines += ["| polarity | labelled | predicted | precision | recall | F1 |", "|" + " --- |" * 6]
    lines += [_row(s) for s in report.polarities]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--mistakes", action="store_true", help="list the misread comments")
    args = parser.parse_args(argv)
    for path in args.paths:
        report = evaluate(path)
        print(to_markdown(report, title=str(path)), end="\n\n")
        if args.mistakes:
            print("\n".join(_mistake_lines(report.mistakes)), end="\n\n")
    return 0


def _labelled(item: dict[str, object]) -> LabelledComment:
    labels = item.get("themes") or []
    if not isinstance(labels, list):
        raise ValueError(f"themes of {item.get('text')!r} must be a list")
    return LabelledComment(str(item["text"]), frozenset(map(str, labels)), str(item["polarity"]))


def _theme_scores(name: str, pairs: Iterable[tuple[frozenset[str], frozenset[str]]]) -> Scores:
    counts = [(name in expected, name in got) for expected, got in pairs]
    return _counted(name, counts)


def _class_scores(label: str, pairs: Iterable[tuple[str, str]]) -> Scores:
    return _counted(label, [(expected == label, got == label) for expected, got in pairs])


def _counted(label: str, counts: Sequence[tuple[bool, bool]]) -> Scores:
    support = sum(expected for expected, _ in counts)
    predicted = sum(got for _, got in counts)
    return Scores(label, support, predicted, sum(e and g for e, g in counts))


def _sum_scores(label: str, scores: Sequence[Scores]) -> Scores:
    return Scores(
        label,
        sum(s.support for s in scores),
        sum(s.predicted for s in scores),
        sum(s.correct for s in scores),
    )


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _agrees(comment: LabelledComment, analysis: Analysis) -> bool:
    return comment.themes == set(analysis.themes) and comment.polarity == analysis.polarity


def _mistake(comment: LabelledComment, analysis: Analysis) -> Mistake:
    expected = [t for t in themes() if t in comment.themes]
    return Mistake(
        comment.text,
        f"{','.join(expected) or '-'} / {comment.polarity}",
        f"{','.join(analysis.themes) or '-'} / {analysis.polarity} ({analysis.score:+.2f})",
    )


def _mistake_lines(mistakes: Sequence[Mistake]) -> list[str]:
    return [f"- {m.text}: expected {m.expected}, got {m.got}" for m in mistakes]


def _row(scores: Scores, *, bold: bool = False) -> str:
    label = f"**{scores.label}**" if bold else scores.label
    numbers = (scores.precision, scores.recall, scores.f1)
    cells = [label, str(scores.support), str(scores.predicted), *map(_number, numbers)]
    return "| " + " | ".join(cells) + " |"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())
