"""分类: which subject (from the model), how urgent and what kind of matter (五事, from rules).

Subject and confidence come from the trained model (``intake.model``): the most probable
subject class and its calibrated probability, with the n-grams that decided. Below the
threshold (``INTAKE_TRIAGE_THRESHOLD``) a person triages it. There is no keyword path for
the subject: a word list decides on the first word it knows and cannot learn (#26).

What must be certain stays a rule, on the normalised text — explainable to the triage
clerk (``matched`` lists the words that decided) and never left to a probability:

Urgency
    ``emergency`` words (火灾, 溺水, 燃气泄漏, 人员受伤, 被困…) beat ``urgent`` words (危险,
    安全隐患, 孩子, 老人, 漏水…). An emergency is something happening *now* — a false alarm
    sends someone out within 30 minutes — so an occurrence of an emergency word counts only
    when it reports an event (:func:`_occurrence`):

    - not negated ("暂无人员受伤", "无人受伤");
    - not figurative or part of another noun: a word right before it (很受伤, 心里受伤,
      涨得爆炸, 防溺水) or right after it, optionally after 的 (火灾隐患, 火灾险, 燃气泄漏报警器,
      落水管, 受伤害, 爆炸性, 被困扰, 有决堤的风险, 起火的视频);
    - the nearest time/mood marker before it in its sentence is not a *potential* one (可能,
      万一, 一旦, 担心, 防止, 以免, 容易…: a danger, which counts as urgent) nor an *elsewhere or
      past* one (去年, 上次, 之前, 曾经, 当时, a date like "2013年", 新闻, 外地…: nobody can be
      sent to it now); a *now* marker nearer the word (正在, 刚刚, 现在, 已经, 又…) overrides
      them: "去年就着过一次火，现在又着火了" is an emergency;
    - in a letter about an aftermath or a recurring problem (至今, 赔偿, 理赔, 认定, 救助, 死亡,
      多次, 投诉, 频发…) only an occurrence whose sentence has a now marker and no past one
      counts: "火灾之后补助至今未发" tells of a past fire, "多次投诉没人管。现在电线起火了" of a
      fire now.

    ``matched`` lists the emergency words that counted (or, for an urgent appeal, the urgent
    words and the emergency words told as a danger).

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

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING

from shared.events import FiveMatters, Urgency
from shared.orgdata import SUBJECT_CLASSES  # the one list of subject classes (code → name)

if TYPE_CHECKING:  # intake.model imports ``normalise`` from here
    from intake.model import SubjectModel

__all__ = ["SUBJECT_CLASSES", "Classification", "Rules", "DEFAULT_RULES", "classify", "normalise", "urgency"]

#: Where a sentence ends (after ``normalise``: full-width ！？； are half-width by then). A
#: time marker governs its whole sentence: "前年路口发生过车祸，有人受伤" is one past event.
SENTENCE_BREAKS = frozenset(".!?;。…")

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
    - ``negators``: a word right before an urgency keyword cancels that occurrence;
    - ``figurative`` / ``compounds``: a word right before / right after (optionally after
      的) an emergency word means it names no event (很受伤, 火灾隐患);
    - ``potential`` / ``elsewhere`` / ``now``: time and mood markers; the nearest one before an
      emergency word in its sentence decides (potential: a danger, counted as urgent; elsewhere
      or past: not counted; now: counted);
    - ``aftermath``: words of a letter about what followed an event or about a recurring
      problem; then only emergency words whose sentence has a ``now`` marker (and no past one)
      count.
    """

    emergency: tuple[str, ...]
    urgent: tuple[str, ...]
    categories: Mapping[FiveMatters, tuple[str, ...]] = field(default_factory=dict)
    negators: tuple[str, ...] = ()
    figurative: tuple[str, ...] = ()
    compounds: tuple[str, ...] = ()
    potential: tuple[str, ...] = ()
    elsewhere: tuple[str, ...] = ()
    now: tuple[str, ...] = ()
    aftermath: tuple[str, ...] = ()
    # Every keyword of every list, once: scanned once per appeal (see ``classify``).
    vocabulary: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        freeze = object.__setattr__
        freeze(self, "categories", MappingProxyType({FiveMatters(k): _words(v) for k, v in self.categories.items()}))
        freeze(self, "emergency", _words(self.emergency))
        freeze(self, "urgent", _words(self.urgent))
        for name in ("negators", "figurative", "compounds", "potential", "elsewhere", "now", "aftermath"):
            freeze(self, name, _words(getattr(self, name)))
        lists = (*self.categories.values(), self.emergency, self.urgent)
        freeze(self, "vocabulary", tuple(dict.fromkeys(w for words in lists for w in words)))

    def candidates(self, *texts: str) -> frozenset[str]:
        """The keywords found anywhere in ``texts``: every other keyword can be skipped."""
        joined = "\0".join(texts)  # no keyword holds NUL, so none spans two texts
        return frozenset([w for w in self.vocabulary if w in joined])


DEFAULT_RULES = Rules(
    emergency=(
        # fire, explosion, gas
        "火灾", "着火", "起火", "失火", "山火", "火势", "烧起来", "火烧到", "点着了", "爆炸",
        "燃气泄漏", "煤气泄漏", "天然气泄漏", "气泄漏", "漏气", "煤气味", "燃气味", "中毒",
        # collapse, landslide, flood
        "塌方", "坍塌", "倒塌", "往下塌", "滑坡", "泥石流", "决堤", "管涌", "冒浑水", "被淹", "淹了", "漫进", "冲走",
        # water: a person (not a phone) falling in
        "溺水", "落水", "人掉进", "人掉入", "孩子掉进", "掉进河", "掉进水", "掉下去了", "掉进去了", "没上来", "跳河", "跳楼", "跳下去",
        # injured, trapped, unconscious, missing
        "人员受伤", "受伤", "砍伤", "砸伤", "砸中", "砸到", "压住", "压到", "压在下面", "流血", "血流不止",
        "触电", "被电到", "被电了", "被困", "困在", "困人", "卡在车里", "卡在驾驶室", "出不来", "昏迷", "晕倒", "叫不醒",
        "一动不动", "喘不上气", "喘不过气", "起不来", "走失", "走丢", "失踪", "锁在车里", "蛇咬", "追尾",
        "持刀", "拿刀", "快来人", "喊救命", "呼救",
    ),
    urgent=(
        "危险", "安全隐患", "隐患", "不安全", "危及生命", "生命危险", "孩子", "小孩", "学生", "老人", "孕妇", "漏水",
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
    # 很受伤, 心里受伤, 涨得爆炸, 信息爆炸, 游戏中毒, 防溺水, 模拟起火
    figurative=("很", "太", "好", "真", "真的", "挺", "非常", "特别", "简直", "得", "心里", "心灵", "信息", "游戏", "防", "模拟"),
    # 火灾隐患, 火灾险, 燃气泄漏报警器, 落水管, 受伤害, 爆炸性, 被困扰, 决堤的风险, 起火的视频,
    # 火灾之后, 溺水救援(队), 流血流汗, 事故认定, 受伤处 (not "后": 起火后果)
    compounds=(
        "隐患", "险", "风险", "危险", "报警", "管", "害", "性", "扰", "之后", "以后", "视频", "新闻",
        "报道", "事故认定", "认定", "应急", "演练", "预案", "救援", "流汗", "价", "处",
    ),
    potential=(
        "可能", "万一", "一旦", "如果", "要是", "假如", "若是", "担心", "害怕", "怕", "恐", "防止", "避免",
        "预防", "以免", "免得", "容易", "随时", "会", "导致", "引发", "存在", "隐患", "风险",
    ),
    elsewhere=(
        "去年", "前年", "当年", "年前", "月前", "周前", "天前", "上次", "上回", "上个月", "上月", "上周",
        "之前", "以前", "曾经", "曾", "那次", "那场", "发生过", "新闻", "视频", "报道", "网上", "外地", "多地",
        "看了", "以为", "模拟", "演练", "当时", "当晚", "当天", "当日", "那天", "那时",
        # a date written in digits ("2013年5月11日"): an event told afterwards, not a call for help
        *(f"{digit}{unit}" for unit in "年月" for digit in "0123456789"),
    ),
    now=(
        "正在", "刚刚", "刚才", "现在", "已经", "目前", "此刻", "马上", "立即", "赶紧", "赶快", "快来", "还在",
        "又",
    ),
    aftermath=(
        "至今", "迄今", "仍未", "赔偿", "理赔", "索赔", "补偿", "补助", "补发", "报销", "医药费",
        "医疗费", "工伤", "认定", "保险", "重建", "事后", "救助", "追讨", "维权", "死亡", "去世", "身亡", "遇难",
        # a recurring problem complained about
        "频发", "屡次", "多次", "经常", "三天两头", "整改", "投诉",
    ),
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


class Reading(StrEnum):
    """What one occurrence of an emergency word reports."""

    event = "event"  # happening now, or told as happening: counts
    potential = "potential"  # a danger that may happen (万一起火): counts as urgent
    none = "none"  # negated, figurative, a noun of something else, past or elsewhere


@lru_cache(maxsize=64)
def _marker_kinds(
    aftermath: tuple[str, ...], potential: tuple[str, ...], elsewhere: tuple[str, ...], now: tuple[str, ...]
) -> tuple[re.Pattern[str] | None, dict[str, str]]:
    """One alternation of every marker, longest first (a marker inside a longer one is not
    read: "至今" hides its "今"), and each marker's kind; a marker in two lists takes the
    later list's kind.
    Aftermath words are matched too only so that they hide the shorter markers inside them."""
    kind_of = {m: kind for kind, words in (("aftermath", aftermath), ("potential", potential), ("elsewhere", elsewhere), ("now", now)) for m in words}
    if not kind_of:
        return None, kind_of
    return re.compile("|".join(re.escape(m) for m in sorted(kind_of, key=len, reverse=True))), kind_of


def _sentence_start(text: str, start: int) -> int:
    """Index where the sentence holding ``text[start]`` begins (after the last break before it)."""
    for i in range(start - 1, -1, -1):
        if text[i] in SENTENCE_BREAKS:
            return i + 1
    return 0


def _occurrence(text: str, start: int, end: int, rules: Rules, aftermath: bool) -> Reading:
    """What the emergency word at ``text[start:end]`` reports (see the module doc).

    Negated, figurative or part of another noun → none; otherwise the nearest marker before
    it in its sentence decides (potential → potential, elsewhere/past → none, now or no
    marker → event); in a letter about an aftermath (``aftermath``) an event needs a now
    marker and no past one in its sentence.
    """
    before = text[:start]
    if before.endswith(rules.negators) or before.endswith(rules.figurative):
        return Reading.none
    after = text[end:]
    if after.startswith(rules.compounds) or (after.startswith("的") and after[1:].startswith(rules.compounds)):
        return Reading.none
    pattern, kind_of = _marker_kinds(rules.aftermath, rules.potential, rules.elsewhere, rules.now)
    kinds = [] if pattern is None else [kind_of[m.group()] for m in pattern.finditer(text, _sentence_start(text, start), start)]
    nearest = next((kind for kind in reversed(kinds) if kind != "aftermath"), None)
    if nearest == "potential":
        return Reading.potential
    if nearest == "elsewhere":
        return Reading.none
    if aftermath:  # "多次投诉没人管，现在电线起火了" is news; "2013年…本人正在车间工作…砸到" is not
        return Reading.event if "now" in kinds and "elsewhere" not in kinds else Reading.none
    return Reading.event


def _found(
    words: tuple[str, ...],
    text: str,
    negators: tuple[str, ...] = (),
    candidates: frozenset[str] | None = None,
    judge: Callable[[str, int, int], bool] | None = None,
) -> frozenset[str]:
    """The keywords that occur in ``text``, longest first, each occurrence claiming its characters.

    A shorter keyword wholly inside a longer hit is not found again ("燃气泄漏" does not
    also score "燃气"; a negated "人员受伤" does not leave "受伤" behind); one that merely
    overlaps a hit still counts. With ``negators``, an occurrence right after one of them
    ("暂无人员受伤", "无人受伤") does not count; with ``judge``, an occurrence counts only if
    ``judge(text, start, end)`` (the emergency words' reading, :func:`_occurrence`).
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
                if not text.endswith(negators, 0, start) and (judge is None or judge(text, start, end)):
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
    judge: Callable[[str, int, int], bool] | None = None,
) -> _Hits:
    """Weigh a keyword list: 2 in the title, 1 in the description, 3 in both.

    Where a word appears says how sure we are: the title names the matter, the
    description confirms or merely mentions it.
    """
    if candidates is not None and candidates.isdisjoint(words):
        return _NO_HITS
    in_title = _found(words, title, negators, candidates, judge)
    in_description = _found(words, description, negators, candidates, judge)
    hits = tuple(w for w in words if w in in_title or w in in_description)  # declaration order, for reading
    weight = sum(TITLE_WEIGHT * (w in in_title) + DESCRIPTION_WEIGHT * (w in in_description) for w in hits)
    return _Hits(weight, hits)


def _urgency(title: str, description: str, rules: Rules, candidates: frozenset[str] | None = None) -> tuple[Urgency, tuple[str, ...]]:
    """Emergency words told as events beat urgent words and emergency words told as a danger
    that may happen (万一起火: urgent); negated, figurative, past or elsewhere ones do not count."""
    aftermath = any(word in text for word in rules.aftermath for text in (title, description))

    def reads(reading: Reading) -> Callable[[str, int, int], bool]:
        return lambda text, start, end: _occurrence(text, start, end, rules, aftermath) is reading

    options = {"negators": rules.negators, "candidates": candidates}
    emergency = _hits(rules.emergency, title, description, **options, judge=reads(Reading.event))
    if emergency.words:
        return Urgency.emergency, emergency.words
    danger = _hits(rules.emergency, title, description, **options, judge=reads(Reading.potential))
    urgent = _hits(rules.urgent, title, description, **options)
    words = tuple(dict.fromkeys((*urgent.words, *danger.words)))
    if words:
        return Urgency.urgent, words
    return Urgency.normal, ()


def urgency(title: str, description: str, rules: Rules = DEFAULT_RULES) -> tuple[Urgency, tuple[str, ...]]:
    """The urgency of one appeal and the words that decided, from the rules alone (no model):
    what ``classify`` proposes as ``urgency``."""
    t, d = normalise(title), normalise(description)
    return _urgency(t, d, rules, rules.candidates(t, d))


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
        needs_manual_triage=prediction.probability < limit or not prediction.readable,
        words=prediction.words,
        model_version=prediction.model_version,
    )
