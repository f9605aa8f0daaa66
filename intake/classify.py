"""分类: what kind of matter (五事), which subject, how urgent — from keyword rules.

Keyword rules on the normalised text rather than a word segmenter: the vocabulary of
appeals is small and stable, a rule is explainable to the triage clerk (``matched`` lists
the words that decided), and it needs no model or dictionary. Rules are data
(:class:`Rules`): a region passes its own or extends the default.

Subject and confidence
    A keyword found in the title weighs 2, in the description 1; found in both, 3 (the
    title names the matter, a repetition in the description confirms it). Keywords that
    mostly say *where* the matter is (鱼塘, 农田, 小区…, ``Rules.place_words``) weigh half:
    "鱼塘边需要安装护栏" is about the guardrail, not the fish. Inside one keyword list a
    word contained in a longer hit counts once ("燃气泄漏" does not also score "燃气").

    With ``w1`` the best subject's weight and ``w2`` the runner-up's::

        strength   = min(1, w1 / 3)        # a keyword in title + description is full evidence
        separation = 1 - w2 / (2 * w1)     # 1 when alone, 0.5 when the runner-up ties
        confidence = strength * separation

    So one title hit alone gives 0.67 (auto-triaged at the default threshold 0.5), one
    description hit alone 0.33 (a person looks), and a tie between two subjects halves
    whatever evidence there is. No hit at all: subject ``other``, confidence 0.

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

The DOMAIN story of the fishpond guardrail (通挽镇) comes out as subject
``infrastructure`` (the ask is to build a facility; the catalogue sends that to the
building department, the pond is only where), category 期盼事 (villagers ask for
something that does not exist yet) and urgency ``urgent`` (children pass a danger). A
*broken* guardrail by the same pond, with no wish in it, is 揪心事: an existing hazard.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import MappingProxyType

from shared.events import FiveMatters, Urgency
from shared.orgdata import SUBJECT_CLASSES  # the one list of subject classes (code → name)

OTHER = "other"

TITLE_WEIGHT = 2.0
DESCRIPTION_WEIGHT = 1.0
PLACE_WORD_FACTOR = 0.5
FULL_EVIDENCE = 3.0  # title + description hit of one keyword

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
    """Keyword rules as data. Immutable: build a new one with :meth:`extended` or ``dataclasses.replace``.

    - ``subjects``: subject class code → keywords (codes must be in ``SUBJECT_CLASSES``);
    - ``emergency`` / ``urgent``: urgency keywords;
    - ``categories``: 五事 → cue words;
    - ``place_words``: keywords that usually say where, not what (weigh half);
    - ``negators``: a word right before an urgency keyword cancels that occurrence.
    """

    subjects: Mapping[str, tuple[str, ...]]
    emergency: tuple[str, ...]
    urgent: tuple[str, ...]
    categories: Mapping[FiveMatters, tuple[str, ...]] = field(default_factory=dict)
    place_words: frozenset[str] = frozenset()
    negators: tuple[str, ...] = ()
    # Every keyword of every list, once: scanned once per appeal (see ``classify``).
    vocabulary: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = [code for code in self.subjects if code not in SUBJECT_CLASSES]
        if unknown:
            raise ValueError(f"unknown subject classes {unknown}; known: {', '.join(SUBJECT_CLASSES)}")
        freeze = object.__setattr__
        freeze(self, "subjects", MappingProxyType({k: _words(v) for k, v in self.subjects.items()}))
        freeze(self, "categories", MappingProxyType({FiveMatters(k): _words(v) for k, v in self.categories.items()}))
        freeze(self, "emergency", _words(self.emergency))
        freeze(self, "urgent", _words(self.urgent))
        freeze(self, "place_words", frozenset(_words(self.place_words)))
        freeze(self, "negators", _words(self.negators))
        lists = (*self.subjects.values(), *self.categories.values(), self.emergency, self.urgent)
        freeze(self, "vocabulary", tuple(dict.fromkeys(w for words in lists for w in words)))

    def candidates(self, *texts: str) -> frozenset[str]:
        """The keywords found anywhere in ``texts``: every other keyword can be skipped."""
        joined = "\0".join(texts)  # no keyword holds NUL, so none spans two texts
        return frozenset([w for w in self.vocabulary if w in joined])

    def extended(self, subject: str, *words: str) -> Rules:
        """A copy with more keywords for one subject (a region adds its own: 甘蔗, 蔗糖…)."""
        subjects = dict(self.subjects)
        subjects[subject] = (*subjects.get(subject, ()), *words)
        return replace(self, subjects=subjects)


DEFAULT_RULES = Rules(
    subjects={
        # Bare 桥 is left out on purpose: it is in many place names (石桥村, 桥头镇). Generic
        # danger words (危险, 安全隐患, 受伤) are not subject words: a dangerous road is still a
        # road; they raise urgency and make a 揪心事 instead.
        "infrastructure": (
            "路灯", "道路", "马路", "公路", "村道", "巷道", "路面", "坑洼", "坑槽", "护栏",
            "围栏", "栏杆", "桥梁", "桥面", "危桥", "便桥", "小桥", "座桥", "井盖", "停水", "停电",
            "自来水", "供水", "水压", "供电", "电线", "电杆", "变压器", "下水道", "排水", "水管",
            "管道", "硬化", "水泥路", "涵洞", "信号", "宽带",
        ),
        "environment": (
            "垃圾", "污水", "臭", "噪音", "噪声", "扰民", "油烟", "粉尘", "扬尘", "焚烧", "烧秸秆",
            "排污", "污染", "黑烟", "死鱼", "河道", "乱倒", "乱堆",
        ),
        "public_safety": (
            "火灾", "着火", "起火", "消防", "燃气", "煤气", "天然气", "溺水", "落水", "掉进",
            "掉入", "塌方", "滑坡", "泥石流", "治安", "小偷", "被盗", "盗窃", "被偷", "触电",
            "落石", "爆炸", "打架斗殴", "诈骗", "防溺水",
        ),
        "social_security": (
            "养老", "低保", "医保", "社保", "救助", "残疾", "五保", "特困", "养老金", "高龄补贴",
            "补贴", "退休", "新农合", "医疗保险", "孤寡", "留守",
        ),
        "disputes": (
            "纠纷", "邻里", "欠薪", "拖欠", "工资", "讨薪", "土地纠纷", "宅基地", "吵架", "打架",
            "赔偿", "矛盾", "占用", "争执", "调解",
        ),
        "consultation": (
            "咨询", "政策", "怎么办理", "如何办理", "怎么申请", "如何申请", "请问", "流程",
            "需要什么材料", "条件", "标准是多少",
        ),
        "agriculture": (
            "鱼塘", "农田", "耕地", "灌溉", "水渠", "沟渠", "种植", "养殖", "化肥", "农药", "种子",
            "农机", "病虫", "鱼苗", "甘蔗", "粮食", "抽水",
        ),
        "transport": (
            "公交", "班车", "客运", "红绿灯", "信号灯", "斑马线", "停车", "交通", "堵车", "校车",
            "站台", "乱停",
        ),
        "housing": (
            "危房", "房屋", "漏雨", "墙体", "裂缝", "拆迁", "物业", "改造", "楼道", "电梯",
            "违建", "违章建筑", "房产证",
        ),
        # The lines of service added for what real citizens write (#26). Their words are
        # kept clear of the older lists above, so those route as before; the subject of
        # an appeal is to come from a trained model, these only give the rules a word each.
        "education": (
            "学校", "入学", "学位", "上学", "小学", "中学", "幼儿园", "教师", "老师", "补课",
            "招生", "教育", "学费", "校长",
        ),
        "health": (
            "医院", "诊所", "医生", "看病", "疫苗", "接种", "计生", "生育", "二孩", "二胎",
            "卫生院", "村医", "药品", "救护车", "患者",
        ),
        "market": (
            "传销", "涨价", "乱收费", "假货", "假冒", "食品安全", "过期", "消费者", "垄断",
            "欺诈", "缺斤短两", "商家", "保健品",
        ),
        "culture_tourism": (
            "景区", "旅游", "文物", "古建筑", "非物质文化遗产", "图书馆", "文化", "体育",
            "健身", "游客",
        ),
        "police": (
            "派出所", "警察", "报警", "户口", "身份证", "交警", "酒驾", "赌博", "吸毒", "飙车",
        ),
        "urban_management": (
            "城管", "占道", "摆摊", "流动摊贩", "乱搭乱建", "市容", "违章搭建", "广告牌",
        ),
        "power": ("电费", "电压", "电表", "供电所", "电力", "跳闸", "电业局"),
        "water_supply": ("水费", "水质", "水表", "自来水公司", "水龙头"),
        "gas": ("燃气费", "燃气公司", "管道气", "液化气", "燃气管道"),
        "telecom": ("网络", "手机信号", "移动公司", "联通", "电信", "基站", "光纤", "网速"),
        "civil_affairs": ("婚姻登记", "养老院", "敬老院", "殡葬", "墓地", "退役军人", "民政"),
        "labour": ("劳动合同", "辞退", "加班", "工伤", "劳动法", "用人单位", "招聘", "就业", "农民工"),
        "land": ("国土", "土地证", "征地", "采矿", "采砂", "矿山", "林地", "确权"),
    },
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
    place_words=("鱼塘", "农田", "耕地", "河道", "小区", "楼道", "站台"),
    negators=("不", "无", "没", "未", "没有", "无人", "没人", "没有人", "不会有"),
)


@dataclass(frozen=True)
class Classification:
    """The triage proposal. ``matched`` explains it to the clerk: the winning subject's
    keywords first, then rival subjects' (why confidence is not higher), then the urgency
    words, then the 五事 cue words or ``hint:<category>``."""

    category: FiveMatters
    subject_class: str
    urgency: Urgency
    confidence: float
    matched: tuple[str, ...]
    needs_manual_triage: bool


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
    place_words: frozenset[str] = frozenset(),
    negators: tuple[str, ...] = (),
    candidates: frozenset[str] | None = None,
) -> _Hits:
    """Weigh a keyword list: 2 in the title, 1 in the description, 3 in both; place words half.

    Where a word appears says how sure we are: the title names the matter, the
    description confirms or merely mentions it.
    """
    if candidates is not None and candidates.isdisjoint(words):
        return _NO_HITS
    in_title = _found(words, title, negators, candidates)
    in_description = _found(words, description, negators, candidates)
    hits = tuple(w for w in words if w in in_title or w in in_description)  # declaration order, for reading
    weight = sum(
        (TITLE_WEIGHT * (w in in_title) + DESCRIPTION_WEIGHT * (w in in_description))
        * (PLACE_WORD_FACTOR if w in place_words else 1.0)
        for w in hits
    )
    return _Hits(weight, hits)


def _subject(title: str, description: str, rules: Rules, candidates: frozenset[str] | None = None) -> tuple[str, float, tuple[str, ...]]:
    """Best subject, its confidence (see module doc) and the subject words that decided.

    Ties between subjects go to the one declared first in the rules; the tie already
    halves the confidence, so a person will look at it.
    """
    scored = [
        (code, hits)
        for code, words in rules.subjects.items()
        if (hits := _hits(words, title, description, place_words=rules.place_words, candidates=candidates)).weight > 0
    ]
    if not scored:
        return OTHER, 0.0, ()
    scored.sort(key=lambda item: item[1].weight, reverse=True)  # stable: declaration order on ties
    best_code, best = scored[0]
    runner_up = scored[1][1].weight if len(scored) > 1 else 0.0
    strength = min(1.0, best.weight / FULL_EVIDENCE)
    separation = 1.0 - runner_up / (2 * best.weight)
    words = tuple(w for _, hits in scored for w in hits.words)  # the winner's first, then the rivals'
    return best_code, strength * separation, words


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
    *,
    hinted_category: FiveMatters | None = None,
    threshold: float = 0.5,
    rules: Rules = DEFAULT_RULES,
) -> Classification:
    """Classify one appeal. Never raises on text: anything unrecognised is ``other`` for a person to triage."""
    t, d = normalise(title), normalise(description)
    candidates = rules.candidates(t, d)  # one scan of the vocabulary instead of one per list
    subject, confidence, subject_words = _subject(t, d, rules, candidates)
    urgency, urgency_words = _urgency(t, d, rules, candidates)
    if hinted_category is not None:
        category, category_words = FiveMatters(hinted_category), (f"{HINT_PREFIX}{FiveMatters(hinted_category).value}",)
    else:
        category, category_words = _category(t, d, rules, urgency, candidates)
    confidence = round(confidence, 3)
    return Classification(
        category=category,
        subject_class=subject,
        urgency=urgency,
        confidence=confidence,
        matched=tuple(dict.fromkeys((*subject_words, *urgency_words, *category_words))),
        needs_manual_triage=confidence < threshold,
    )
