"""分类: what kind of matter (五事), which subject, how urgent — from keyword rules.

Keyword rules on the normalised text rather than a segmenter: the vocabulary of appeals
is small and stable, rules are explainable to the triage clerk (``matched``), and they
need no model. Rules are data: a region can pass its own.

Confidence: each hit weighs 2 in the title and 1 in the description; the best subject's
weight w1 against the runner-up's w2 gives ``min(1, w1 / 4) * (w1 / (w1 + w2))`` — one
clear title hit is 0.5, two are 1.0, and a tie between two subjects halves it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.events import FiveMatters, Urgency
from shared.orgdata import SUBJECT_CLASSES  # noqa: F401 - re-exported: the one list of subject classes



@dataclass(frozen=True)
class Rules:
    subjects: Mapping[str, tuple[str, ...]]
    emergency: tuple[str, ...]
    urgent: tuple[str, ...]
    categories: Mapping[FiveMatters, tuple[str, ...]] = field(default_factory=dict)


DEFAULT_RULES = Rules(
    subjects={
        "infrastructure": ("路灯", "道路", "路面", "坑洼", "护栏", "桥", "井盖", "停水", "停电", "自来水", "供水", "供电", "电线", "下水道", "排水", "水管", "硬化"),
        "environment": ("垃圾", "污水", "臭", "噪音", "噪声", "扰民", "油烟", "粉尘", "焚烧", "排污", "污染"),
        "public_safety": ("安全隐患", "危险", "火灾", "燃气", "煤气", "溺水", "塌方", "治安", "偷", "盗", "触电", "落石"),
        "social_security": ("养老", "低保", "医保", "社保", "救助", "残疾", "五保", "特困", "养老金", "补贴"),
        "disputes": ("纠纷", "邻里", "欠薪", "拖欠", "工资", "土地纠纷", "吵架", "打架", "赔偿", "矛盾"),
        "consultation": ("咨询", "政策", "怎么办理", "如何办理", "请问", "流程", "条件"),
        "agriculture": ("鱼塘", "农田", "灌溉", "水渠", "种植", "养殖", "化肥", "农机", "病虫"),
        "transport": ("公交", "班车", "红绿灯", "停车", "交通", "客运"),
        "housing": ("危房", "房屋", "漏雨", "裂缝", "拆迁", "物业", "改造"),
    },
    emergency=("火灾", "着火", "塌方", "溺水", "落水", "掉进", "触电", "燃气泄漏", "煤气泄漏", "人员受伤", "危及生命", "被困"),
    urgent=("危险", "安全隐患", "孩子", "老人", "漏水", "漏电", "断水", "停电", "很黑", "不安全"),
    categories={
        FiveMatters.emergency: ("火灾", "着火", "塌方", "溺水", "落水", "掉进", "触电", "泄漏", "被困", "看病难", "无钱", "困难"),
        FiveMatters.anxiety: ("危险", "安全隐患", "不安全", "孩子", "老人"),
        FiveMatters.annoyance: ("噪音", "噪声", "扰民", "垃圾", "臭", "油烟", "吵"),
        FiveMatters.hope: ("希望", "建议", "请求", "盼", "能否", "安装", "增设", "修建"),
    },
)


@dataclass(frozen=True)
class Classification:
    category: FiveMatters
    subject_class: str
    urgency: Urgency
    confidence: float
    matched: tuple[str, ...]
    needs_manual_triage: bool


def normalise(text: str) -> str:
    """Full-width to half-width, lower case, no whitespace."""
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def _hits(words: tuple[str, ...], title: str, description: str) -> tuple[int, list[str]]:
    weight, found = 0, []
    for word in words:
        in_title, in_text = word in title, word in description
        if in_title or in_text:
            weight += 2 if in_title else 1
            found.append(word)
    return weight, found


def classify(
    title: str,
    description: str,
    *,
    hinted_category: FiveMatters | None = None,
    threshold: float = 0.5,
    rules: Rules = DEFAULT_RULES,
) -> Classification:
    t, d = normalise(title), normalise(description)
    scored = sorted(
        ((*_hits(words, t, d), subject) for subject, words in rules.subjects.items()),
        key=lambda item: item[0],
        reverse=True,
    )
    best_weight, best_words, best_subject = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0
    if best_weight == 0:
        subject, confidence, matched = "other", 0.0, []
    else:
        subject, matched = best_subject, best_words
        confidence = min(1.0, best_weight / 4) * (best_weight / (best_weight + runner_up))

    urgency = Urgency.normal
    emergency_weight, emergency_words = _hits(rules.emergency, t, d)
    urgent_weight, urgent_words = _hits(rules.urgent, t, d)
    if emergency_weight:
        urgency, matched = Urgency.emergency, matched + emergency_words
    elif urgent_weight:
        urgency, matched = Urgency.urgent, matched + urgent_words

    category = hinted_category or _category(t, d, rules, urgency)
    return Classification(
        category=category,
        subject_class=subject,
        urgency=urgency,
        confidence=round(confidence, 3),
        matched=tuple(dict.fromkeys(matched)),
        needs_manual_triage=confidence < threshold,
    )


def _category(title: str, description: str, rules: Rules, urgency: Urgency) -> FiveMatters:
    """急难事 for emergencies; otherwise the category with the most cue hits; 操心事 by default."""
    if urgency is Urgency.emergency:
        return FiveMatters.emergency
    best, best_weight = FiveMatters.worry, 0
    for category, words in rules.categories.items():
        weight, _ = _hits(words, title, description)
        if weight > best_weight:
            best, best_weight = category, weight
    return best
