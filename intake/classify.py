"""分类: which subject (from the model), how urgent and what kind of matter (五事, from rules).

Subject and confidence come from the trained model (``intake.model``): the most probable
subject class and its calibrated probability, with the n-grams that decided. Below the
threshold (``INTAKE_TRIAGE_THRESHOLD``) a person triages it. There is no keyword path for
the subject: a word list decides on the first word it knows and cannot learn (#26).

What must be certain stays a rule, on the normalised text — explainable to the triage
clerk (``matched`` lists the words that decided) and never left to a probability:

Urgency
    ``emergency`` words (火灾, 溺水, 燃气泄漏, 人员受伤…) beat ``urgent`` words (危险,
    安全隐患, 孩子, 老人, 漏水…). A negated occurrence does not count: "暂无人员受伤" is
    not an emergency — a false alarm sends someone out within 30 minutes.

Category (五事)
    An emergency is 急难事. Otherwise the category whose cue words weigh most (same
    title/description weights) wins; on a tie the more serious reading wins
    (急难事 > 揪心事 > 烦心事 > 操心事 > 期盼事), because mistaking a problem for a wish
    costs more than the reverse; no cue at all is 操心事, the everyday matter. A category
    the citizen chose is respected; ``matched`` then carries ``hint:<category>`` so the
    clerk sees where it came from, and urgency is still ours (a fire marked 操心事 stays
    an emergency).

The fishpond guardrail story (通挽镇) comes out as category 期盼事 (villagers ask for
something that does not exist yet) and urgency ``urgent`` (children pass a danger); the
model sends it to ``infrastructure`` (the ask is to build a facility, the pond is only
where). A *broken* guardrail by the same pond, with no wish in it, is 揪心事.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING

from shared.events import FiveMatters, Urgency
from shared.orgdata import SUBJECT_CLASSES  # the one list of subject classes (code → name)

if TYPE_CHECKING:  # intake.model imports ``normalise`` from here
    from intake.model import SubjectModel

__all__ = ["SUBJECT_CLASSES", "Classification", "Rules", "DEFAULT_RULES", "classify", "normalise"]

TITLE_WEIGHT = 2.0
DESCRIPTION_WEIGHT = 1.0

#: Tie-break between categories with equal cue weight: the more serious reading first.
CATEGORY_PRIORITY: tuple[FiveMatters, ...] = (
    FiveMatters.emergency,
    FiveMatters.anxiety,
    FiveMatters.annoyance,
    FiveMatters.worry,
    FiveMatters.hope,
)

HINT_PREFIX = "hint:"


def normalise(text: str) -> str:
    """Full-width → half-width (NFKC), lower case, no whitespace.

    Citizens type on phones with full-width digits and punctuation ("３天", "ＡＢ栋") and
    hotline operators paste text with stray spaces; keywords must match either way.
    """
    return "".join(unicodedata.normalize("NFKC", text or "").lower().split())


def _words(words: Iterable[str]) -> tuple[str, ...]:
    """Normalise keywords the same way as the text and refuse the empty one.

    An empty keyword is a substring of every text and would match everything.
    """
    out = tuple(dict.fromkeys(normalise(w) for w in words))
    if "" in out:
        raise ValueError("a keyword must not be empty (it would match every text)")
    return out


@dataclass(frozen=True)
class Rules:
    """Urgency and 五事 rules as data. Immutable: build a new one with ``dataclasses.replace``.

    - ``emergency`` / ``urgent``: urgency keywords;
    - ``categories``: 五事 → cue words;
    - ``negators``: a word right before an urgency keyword cancels that occurrence.
    """

    emergency: tuple[str, ...]
    urgent: tuple[str, ...]
    categories: Mapping[FiveMatters, tuple[str, ...]] = field(default_factory=dict)
    negators: tuple[str, ...] = ()
    # Every keyword of every list, once: scanned once per appeal (see ``classify``).
    vocabulary: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        freeze = object.__setattr__
        freeze(self, "categories", MappingProxyType({FiveMatters(k): _words(v) for k, v in self.categories.items()}))
        freeze(self, "emergency", _words(self.emergency))
        freeze(self, "urgent", _words(self.urgent))
        freeze(self, "negators", _words(self.negators))
        lists = (*self.categories.values(), self.emergency, self.urgent)
        freeze(self, "vocabulary", tuple(dict.fromkeys(w for words in lists for w in words)))

    def candidates(self, *texts: str) -> frozenset[str]:
        """The keywords found anywhere in ``texts``: every other keyword can be skipped."""
        joined = "\0".join(texts)  # no keyword holds NUL, so none spans two texts
        return frozenset([w for w in self.vocabulary if w in joined])


DEFAULT_RULES = Rules(
    emergency=(
        "火灾", "着火", "起火", "失火", "塌方", "坍塌", "倒塌", "滑坡", "泥石流", "溺水", "落水",
        "掉进", "掉入", "触电", "燃气泄漏", "煤气泄漏", "天然气泄漏", "爆炸", "人员受伤", "受伤",
        "危及生命", "生命危险", "被困", "昏迷", "中毒", "决堤",
    ),
    urgent=(
        "危险", "安全隐患", "隐患", "不安全", "孩子", "小孩", "学生", "老人", "孕妇", "漏水",
        "漏电", "断水", "停水", "停电", "塌陷", "倾斜", "断裂", "松动", "摇摇欲坠", "摔倒",
    ),
    categories={
        FiveMatters.emergency: (
            "生活困难", "看病难", "没钱看病", "无钱", "断粮", "无家可归", "大病", "重病",
            "走投无路", "救急", "急需", "欠薪", "拖欠工资", "讨薪",
        ),
        FiveMatters.anxiety: (
            "危险", "安全隐患", "隐患", "不安全", "担心", "害怕", "提心吊胆", "揪心", "随时可能",
            "摇摇欲坠", "塌陷", "松动", "断裂", "断了",
        ),
        FiveMatters.annoyance: (
            "噪音", "噪声", "扰民", "吵", "垃圾", "臭", "油烟", "粉尘", "扬尘", "乱停", "乱堆",
            "乱倒", "影响休息",
        ),
        FiveMatters.worry: (
            "坏了", "损坏", "破损", "不亮", "故障", "维修", "修理", "停水", "停电", "堵塞",
            "咨询", "怎么办理", "如何办理",
        ),
        FiveMatters.hope: (
            "希望", "建议", "请求", "恳请", "盼望", "期盼", "能否", "可否", "安装", "加装", "增设",
            "新建", "修建", "新修", "开通", "配备",
        ),
    },
    negators=("不", "无", "没", "未", "没有", "无人", "没人", "没有人", "不会有"),
)


@dataclass(frozen=True)
class Classification:
    """The triage proposal. ``matched`` explains it to the clerk: the model's deciding
    n-grams first, then the urgency words, then the 五事 cue words or ``hint:<category>``;
    ``words`` are the model's alone, ``model_version`` the version that proposed it."""

    category: FiveMatters
    subject_class: str
    urgency: Urgency
    confidence: float
    matched: tuple[str, ...]
    needs_manual_triage: bool
    words: tuple[str, ...] = ()
    model_version: str = "demo"


@dataclass(frozen=True)
class _Hits:
    """Keywords of one list found in one appeal, with their summed weight."""

    weight: float
    words: tuple[str, ...]


_NO_HITS = _Hits(0.0, ())


@lru_cache(maxsize=256)
def _longest_first(words: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    """(number, word), longest words first (stable); numbered from 1. Computed once per list."""
    return tuple(enumerate(sorted(words, key=len, reverse=True), start=1))


@lru_cache(maxsize=256)
def _numbers(words: tuple[str, ...]) -> dict[str, int]:
    return {word: number for number, word in _longest_first(words)}


def _found(
    words: tuple[str, ...], text: str, negators: tuple[str, ...] = (), candidates: frozenset[str] | None = None
) -> frozenset[str]:
    """The keywords that occur in ``text``, longest first, each occurrence claiming its characters.

    A shorter keyword wholly inside a longer hit is not found again ("燃气泄漏" does not
    also score "燃气"; a negated "人员受伤" does not leave "受伤" behind); one that merely
    overlaps a hit still counts. With ``negators``, an occurrence right after one of them
    ("暂无人员受伤", "无人受伤") does not count.
    """
    # Most keywords are absent from a given text: walk only the few present (``candidates``:
    # those the caller found in any of the appeal's texts), in the same longest-first order
    # and with the same numbers.
    if candidates is None:
        present = [(number, word) for number, word in _longest_first(words) if word in text]
    else:
        numbers = _numbers(words)
        present = sorted((numbers[word], word) for word in candidates if word in numbers and word in text)
    if not present:
        return frozenset()
    found: set[str] = set()
    owner = [0] * len(text)  # which earlier (longer) hit each character belongs to; 0: none
    for number, word in present:
        start = text.find(word)
        while start != -1:
            end = start + len(word)
            inside = owner[start] != 0 and owner[start:end].count(owner[start]) == len(word)
            if not inside:  # overlapping a longer hit ("路灯" in "灯不亮") still counts
                owner[start:end] = [number] * len(word)
                if not text.endswith(negators, 0, start):
                    found.add(word)
            start = text.find(word, start + 1)
    return frozenset(found)


def _hits(
    words: tuple[str, ...],
    title: str,
    description: str,
    *,
    negators: tuple[str, ...] = (),
    candidates: frozenset[str] | None = None,
) -> _Hits:
    """Weigh a keyword list: 2 in the title, 1 in the description, 3 in both.

    Where a word appears says how sure we are: the title names the matter, the
    description confirms or merely mentions it.
    """
    if candidates is not None and candidates.isdisjoint(words):
        return _NO_HITS
    in_title = _found(words, title, negators, candidates)
    in_description = _found(words, description, negators, candidates)
    hits = tuple(w for w in words if w in in_title or w in in_description)  # declaration order, for reading
    weight = sum(TITLE_WEIGHT * (w in in_title) + DESCRIPTION_WEIGHT * (w in in_description) for w in hits)
    return _Hits(weight, hits)


def _urgency(title: str, description: str, rules: Rules, candidates: frozenset[str] | None = None) -> tuple[Urgency, tuple[str, ...]]:
    """Emergency words beat urgent words; negated occurrences do not count."""
    emergency = _hits(rules.emergency, title, description, negators=rules.negators, candidates=candidates)
    if emergency.words:
        return Urgency.emergency, emergency.words
    urgent = _hits(rules.urgent, title, description, negators=rules.negators, candidates=candidates)
    if urgent.words:
        return Urgency.urgent, urgent.words
    return Urgency.normal, ()


def _category(
    title: str, description: str, rules: Rules, urgency: Urgency, candidates: frozenset[str] | None = None
) -> tuple[FiveMatters, tuple[str, ...]]:
    """急难事 for emergencies; otherwise the heaviest cue list, ties to the more serious reading."""
    if urgency is Urgency.emergency:
        return FiveMatters.emergency, ()
    best, best_hits = FiveMatters.worry, _Hits(0.0, ())
    rank = {category: i for i, category in enumerate(CATEGORY_PRIORITY)}
    for category in sorted(rules.categories, key=lambda c: rank.get(c, len(rank))):
        hits = _hits(rules.categories[category], title, description, candidates=candidates)
        if hits.weight > best_hits.weight:
            best, best_hits = category, hits
    return best, best_hits.words


def classify(
    title: str,
    description: str,
    model: SubjectModel,
    *,
    hinted_category: FiveMatters | None = None,
    threshold: float | None = None,
    rules: Rules = DEFAULT_RULES,
) -> Classification:
    """Classify one appeal: subject from ``model``, urgency and 五事 from ``rules``.

    ``threshold`` (default: the model's) is the probability below which a person triages it.
    Never raises on text: the model always proposes a class, with a low probability when it
    cannot tell."""
    prediction = model.predict(title, description)
    t, d = normalise(title), normalise(description)
    candidates = rules.candidates(t, d)  # one scan of the vocabulary instead of one per list
    urgency, urgency_words = _urgency(t, d, rules, candidates)
    if hinted_category is not None:
        category, category_words = FiveMatters(hinted_category), (f"{HINT_PREFIX}{FiveMatters(hinted_category).value}",)
    else:
        category, category_words = _category(t, d, rules, urgency, candidates)
    limit = model.threshold if threshold is None else threshold
    return Classification(
        category=category,
        subject_class=prediction.subject_class,
        urgency=urgency,
        confidence=prediction.probability,
        matched=tuple(dict.fromkeys((*prediction.words, *urgency_words, *category_words))),
        needs_manual_triage=prediction.probability < limit,
        words=prediction.words,
        model_version=prediction.model_version,
    )
