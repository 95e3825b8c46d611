"""Which message categories a customer turns on or off, read from what they typed.

`parse_consent_change` returns only the categories the customer changed, as
{category: granted} over crm_store's CATEGORIES (care, follow_up, survey, offer).

How a message is read:

1. Fold it (full-width to ASCII, Traditional to Simplified, lower case) and split it into
   clauses at punctuation (，,;；。.!?) and before words that start a new thought: 但/但是/不过,
   只/仅, 保留 (not after 不/只: 不保留, 只保留), 其他/其余/剩下, 除了, and English
   but/except/only/keep. "、" and "和" do not split: "优惠、问卷都退订" is one clause about
   two categories.
2. Read each clause: the categories it names (关怀/问候/祝福/生日/节日 care; 回访/跟进 follow_up;
   问卷/调查/满意度/评价 survey; 优惠/促销/广告/活动/券 offer; English words too), its polarity
   (off words such as 退订/不要/别/取消/停止/TD/stop are checked before on words such as
   订阅/保留/可以/要/keep, so 不要 is never read as 要), and its markers: 其他 (the rest),
   全部/都 (all), 只 (only), 除了 (except). 生日/节日 next to an offer word qualify the offer
   (a 生日券 is an offer, not a greeting). A clause saying 不变/照旧 is skipped.
3. Combine, left to right:
   - a clause with categories and a polarity sets them ("退订优惠");
   - categories without a polarity wait for the next clause that has one ("优惠，退订"); any
     still waiting at the end take the last polarity seen, else the intent's
     (unsubscribe off, subscribe on);
   - 其他/全部 with a polarity sets every category not named elsewhere ("其他的都可以");
   - 只 with an on word turns the unnamed categories off ("只保留回访");
   - 除了 X inverts X against the clause's polarity, which then goes to the rest
     ("除了回访都退订": follow_up on, the rest off);
   - a polarity with no category anywhere in the message applies to all ("TD", "全部退订",
     "别再给我发消息了"); with categories elsewhere it is a repetition and ignored.
   - nothing recognisable at all: the intent decides for all four (unsubscribe / subscribe),
     any other intent changes nothing.
4. A clause that recounts the past ("我之前退订了优惠", "I unsubscribed last month") is history,
   not a request: its categories wait for the request that follows ("…，现在想恢复") or, with
   none, take the intent's polarity. Only what the customer asks for now changes anything.
   现在/如今/now also start a new clause, so "之前退订了优惠现在想恢复" is read as two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from actions.rules._text import fold
from crm_store.models import CATEGORIES


def _words(*words: str) -> str:
    """An alternation in which ASCII words only match whole ("ads", not "loads")."""
    return "|".join(
        rf"(?<![a-z]){re.escape(w)}(?![a-z])" if w.isascii() else re.escape(w) for w in words
    )


# Care words that only qualify when an offer is named in the same clause (生日券 is an offer).
_CARE_QUALIFIERS = ("生日", "节日", "节假日", "birthday", "holiday", "holidays")
_CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "care": ("关怀", "问候", "祝福", "关心", "贺卡", "保养", "贴士", "care", "greetings"),
    "follow_up": ("回访", "跟进", "随访", "回电", "follow up", "follow-up", "followup", "callback"),
    "survey": (
        *("问卷", "调查", "调研", "满意度", "评价", "评分", "打分"),
        *("survey", "surveys", "questionnaire", "questionnaires", "feedback"),
    ),
    "offer": (
        *("优惠", "促销", "广告", "活动", "券", "折扣", "打折", "营销", "推销", "推广", "特价"),
        *("红包", "promotion", "promotions", "promo", "promos", "offer", "offers", "deals"),
        *("coupon", "coupons", "discount", "discounts", "marketing", "ads"),
    ),
}
_CATEGORY = {name: re.compile(_words(*words)) for name, words in _CATEGORY_WORDS.items()}
_QUALIFIER = re.compile(_words(*_CARE_QUALIFIERS))

_ON_OVERRIDE = re.compile("取消退订|重新订阅")
_OFF = re.compile(
    r"退(?:订|掉|出)|取消|关掉|关闭|停止|停掉|屏蔽|拒绝|拒收|没必要|没兴趣|算了|免了"
    r"|不(?:要|用|需要|想|再|必|接收|收|可以|保留|订阅|继续|愿意)|别(?![的人])|"
    + _words("td", "stop", "unsubscribe", "no more", "don't", "dont", "opt out", "opt-out", "no")
)
_ON = re.compile(
    "订阅|开通|开启|打开|恢复|保留|继续|接收|可以|都行|也行|要|愿意|留着|照发|没问题|欢迎|重新|再发|发给我|"
    + _words("subscribe", "keep", "yes", "ok", "fine", "resume", "opt in", "opt-in", "want")
    + "|"
    + _words("send", "receive", "again", "turn on", "back on")
)
_UNCHANGED = re.compile("不变|照旧|维持原样|保持原样")
_REST = re.compile("其他|其它|其余|剩下|剩余|别的|" + _words("others", "other", "the rest", "else"))
_ALL = re.compile("全部|所有|一切|统统|都|" + _words("all", "everything", "any"))
_ONLY = re.compile("只|仅|" + _words("only", "just"))
_EXCEPT = re.compile("除了|除去|" + _words("except", "other than"))
_SPLIT = re.compile(
    r"[,;.!?。\n]+|(?=但是|但|不过|可是|只|仅|(?<![不别没只仅])保留|其他|其它|其余|剩下|除了|"
    + r"(?<!到)现在|如今|"
    + _words("but", "except", "only", "keep", "now")
    + ")"
)
# A clause about the past: a time before now, without a word that asks for something now.
_PAST = re.compile(
    "之前|以前|上次|上回|上个月|上月|上周|上星期|前几天|前阵子|前段时间|曾经|原来|当时|当初|去年|先前|早前|"
    + _words("before", "previously", "earlier", "last month", "last week", "last time", "ago")
)
_ASKS_NOW = re.compile(
    "现在|如今|想|请|麻烦|帮我|希望|能不能|能否|可不可以|" + _words("now", "please")
)
_INTENT_DEFAULT = {"unsubscribe": False, "subscribe": True}


@dataclass(frozen=True)
class _Clause:
    categories: tuple[str, ...]
    polarity: bool | None  # True: turn on, False: turn off, None: not said
    rest: bool
    all: bool
    only: bool
    except_: bool


def _categories(clause: str) -> tuple[str, ...]:
    found = [name for name in CATEGORIES if _CATEGORY[name].search(clause)]
    if _QUALIFIER.search(clause) and "offer" not in found and "care" not in found:
        found.insert(0, "care")
    return tuple(found)


def _polarity(clause: str) -> bool | None:
    if _ON_OVERRIDE.search(clause):
        return True
    if _OFF.search(clause):
        return False
    return True if _ON.search(clause) else None


def _read(clause: str) -> _Clause | None:
    """What one clause says; None when it says nothing (empty, or 其他不变)."""
    if not clause.strip() or _UNCHANGED.search(clause):
        return None
    recounts_the_past = bool(_PAST.search(clause)) and not _ASKS_NOW.search(clause)
    return _Clause(
        categories=_categories(clause),
        polarity=None if recounts_the_past else _polarity(clause),
        rest=bool(_REST.search(clause)),
        all=bool(_ALL.search(clause)),
        only=bool(_ONLY.search(clause)),
        except_=bool(_EXCEPT.search(clause)),
    )


@dataclass
class _Change:
    """The running result while the clauses are read left to right."""

    named: bool  # does any clause name a category?
    explicit: dict[str, bool] = field(default_factory=dict)
    others: bool | None = None
    pending: list[tuple[str, bool]] = field(default_factory=list)  # (category, inverted)
    last: bool | None = None

    def resolve(self, polarity: bool) -> bool:
        """Give waiting categories this polarity; whether there were any."""
        waiting, self.pending = self.pending, []
        for category, inverted in waiting:
            self.explicit[category] = polarity != inverted
        return bool(waiting)

    def add(self, clause: _Clause) -> None:
        if clause.polarity is None:
            self.pending += [(c, clause.except_) for c in clause.categories]
            return
        polarity = self.last = clause.polarity
        resolved = self.resolve(polarity)
        if clause.categories:
            self.set_named(clause, polarity)
        elif clause.rest or (not resolved and (clause.all or not self.named)):
            self.others = polarity

    def set_named(self, clause: _Clause, polarity: bool) -> None:
        if clause.except_:
            self.explicit.update(dict.fromkeys(clause.categories, not polarity))
            self.others = polarity
        elif clause.rest:  # "其他广告": only what was not settled before
            for category in clause.categories:
                self.explicit.setdefault(category, polarity)
        else:
            self.explicit.update(dict.fromkeys(clause.categories, polarity))
            if clause.only and polarity and self.others is None:
                self.others = False

    def result(self, intent_default: bool | None) -> dict[str, bool]:
        default = self.last if self.last is not None else intent_default
        if default is not None:
            self.resolve(default)
        if not self.named and self.last is None:
            self.others = intent_default
        if self.others is not None:
            for category in CATEGORIES:
                self.explicit.setdefault(category, self.others)
        return {c: self.explicit[c] for c in CATEGORIES if c in self.explicit}


def parse_consent_change(text: str, intent: str) -> dict[str, bool]:
    """The categories the customer turns on (True) or off (False); see the module docstring."""
    clauses = [c for c in map(_read, _SPLIT.split(fold(text))) if c is not None]
    change = _Change(named=any(c.categories for c in clauses))
    for clause in clauses:
        change.add(clause)
    return change.result(_INTENT_DEFAULT.get(intent))


def describe_consents(consents: dict[str, bool]) -> tuple[list[str], list[str]]:
    """(categories on, categories off) in CATEGORIES order; unknown keys are ignored."""
    on = [c for c in CATEGORIES if consents.get(c) is True]
    off = [c for c in CATEGORIES if consents.get(c) is False]
    return on, off
