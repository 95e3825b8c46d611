"""The spaCy side: a blank Chinese pipeline segmented by jieba, and matchers from the lexicons.

spaCy (and the TensorFlow it probes for) takes seconds to import, so nothing here imports it
before the first comment is analysed; `pipeline()` builds everything once per process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from actions.feedback._lexicon import (
    PolarityRules,
    ThemeRules,
    lexicon_words,
    load_polarity,
    load_themes,
)

if TYPE_CHECKING:
    from spacy.lang.zh import ChineseTokenizer
    from spacy.language import Language
    from spacy.matcher import Matcher, PhraseMatcher
    from spacy.tokens import Doc, Span

# May be cut off a jieba token around a lexicon word: 坏了 -> 坏 了, 贵是 -> 贵 是.
PARTICLES = frozenset("了的是吧啊呀也还都就又点得地个")
SENTIMENT_LABELS = ("positive", "negative", "neutral")


@dataclass(frozen=True)
class Pipeline:
    nlp: Language
    theme_names: tuple[str, ...]
    polarity: PolarityRules
    theme_matchers: tuple[PhraseMatcher, Matcher]
    sentiment_matchers: tuple[PhraseMatcher, Matcher]

    def themes(self, doc: Doc) -> tuple[str, ...]:
        """The themes named in `doc`, in file order."""
        found = {self.nlp.vocab.strings[match_id] for match_id, _, _ in self._matches(doc)}
        return tuple(name for name in self.theme_names if name in found)

    def sentiment_spans(self, doc: Doc) -> list[Span]:
        """Sentiment words and patterns, labelled positive/negative/neutral, never overlapping."""
        from spacy.util import filter_spans

        matchers = [matcher for matcher in self.sentiment_matchers if len(matcher)]
        spans = [span for matcher in matchers for span in _spans(matcher, doc)]
        return sorted(filter_spans(spans), key=lambda span: span.start)

    def _matches(self, doc: Doc) -> list[tuple[int, int, int]]:
        matchers = [matcher for matcher in self.theme_matchers if len(matcher)]
        return [match for matcher in matchers for match in matcher(doc)]


@lru_cache(maxsize=1)
def pipeline() -> Pipeline:
    """The pipeline for the packaged lexicons, built on first use."""
    return build(load_themes(), load_polarity())


def build(themes: tuple[ThemeRules, ...], polarity: PolarityRules) -> Pipeline:
    """A pipeline for the given lexicons (tests and experiments build their own)."""
    import spacy
    from spacy.lang.zh import Segmenter

    sentiment = {*polarity.positive, *polarity.negative, *polarity.negators}
    whole = {*sentiment, *polarity.neutral, *polarity.modifiers, *polarity.contrast}
    segmenter = LexiconSegmenter(lexicon_words(themes, polarity), whole, sentiment)
    # Built with spaCy's character segmenter, then given ours: asking spaCy for its jieba
    # segmenter loads jieba's process-wide dictionary (about 115 MiB) that ours never uses.
    nlp = spacy.blank("zh")
    tokenizer = cast("ChineseTokenizer", nlp.tokenizer)
    tokenizer.segmenter, tokenizer.jieba_seg = Segmenter.jieba, segmenter
    return Pipeline(
        nlp,
        tuple(theme.name for theme in themes),
        polarity,
        _theme_matchers(nlp, themes),
        _sentiment_matchers(nlp, polarity),
    )


class LexiconSegmenter:
    """jieba that knows the lexicon words and cuts sentiment words out of longer tokens.

    A jieba token made of known pieces is split when that frees a sentiment word or a negator:
    很快 -> 很 快, 不好 -> 不 好, 价格便宜 -> 价格 便宜, and also a theme phrase such as
    物流慢 or 质量问题 (theme patterns are segmented the same way, so they still match).
    Sentiment words and modifiers themselves (不错, 没法用, 一般) are never split.
    The jieba dictionary is private, so the process-wide one (which Rasa's tokenizer may use)
    is left alone. spaCy's ChineseTokenizer only calls `cut(text, cut_all=False)`.
    """

    def __init__(self, words: Iterable[str], whole: Iterable[str], sentiment: Iterable[str]):
        import jieba

        self._known = frozenset(words)
        self._whole = frozenset(whole)
        self._sentiment = frozenset(sentiment)
        self._pieces = self._known | PARTICLES
        self._jieba = jieba.Tokenizer()
        for word in sorted(self._known):
            if len(word) > 1:
                self._jieba.add_word(word)

    def cut(self, text: str, cut_all: bool = False) -> Iterator[str]:
        for token in self._jieba.cut(text, cut_all=cut_all):
            yield from self.split(token)

    def split(self, token: str) -> list[str]:
        """A token as known pieces (太贵 -> 太 贵), or unchanged."""
        if token in self._whole or len(token) < 2:
            return [token]
        pieces = _fewest_pieces(token, self._pieces)
        wanted = self._sentiment if token in self._known else self._known
        if pieces is None or not wanted.intersection(pieces):
            return [token]
        return pieces


def _fewest_pieces(token: str, pieces: frozenset[str]) -> list[str] | None:
    """`token` cut into the fewest members of `pieces`, at least two; None if it cannot be."""
    best: list[list[str] | None] = [[]] + [None] * len(token)
    for end in range(1, len(token) + 1):
        for start in range(1 if end == len(token) else 0, end):
            head = best[start]
            if head is not None and token[start:end] in pieces:
                candidate = [*head, token[start:end]]
                current = best[end]
                if current is None or len(candidate) < len(current):
                    best[end] = candidate
    return best[-1]


def _theme_matchers(nlp: Language, themes: tuple[ThemeRules, ...]) -> tuple[PhraseMatcher, Matcher]:
    from spacy.matcher import Matcher, PhraseMatcher

    phrases, patterns = PhraseMatcher(nlp.vocab, attr="LOWER"), Matcher(nlp.vocab)
    for theme in themes:
        phrases.add(theme.name, [nlp.make_doc(phrase) for phrase in theme.phrases])
        if theme.patterns:
            patterns.add(theme.name, list(theme.patterns))
    return phrases, patterns


def _sentiment_matchers(nlp: Language, rules: PolarityRules) -> tuple[PhraseMatcher, Matcher]:
    from spacy.matcher import Matcher, PhraseMatcher

    phrases, patterns = PhraseMatcher(nlp.vocab, attr="LOWER"), Matcher(nlp.vocab)
    for label, words in zip(
        SENTIMENT_LABELS, (rules.positive, rules.negative, rules.neutral), strict=True
    ):
        phrases.add(label, [nlp.make_doc(word) for word in words])
    for label, found in (
        ("positive", rules.positive_patterns),
        ("negative", rules.negative_patterns),
    ):
        if found:
            patterns.add(label, list(found))
    return phrases, patterns


def _spans(matcher: Any, doc: Doc) -> list[Span]:
    return list(matcher(doc, as_spans=True))
