"""分类: what the triage clerk needs from the classifier — subject, 五事, urgency, and why.

The subject comes from the model trained on the demo appeals (as on a county's first day);
五事 and urgency from the rules. No database, no broker.
"""

from dataclasses import FrozenInstanceError, replace

import pytest

from intake import classify as classify_module
from intake.classify import DEFAULT_RULES, Rules
from intake.model import load_examples, train
from shared.events import FiveMatters, Urgency

MODEL = train(load_examples())


def classify(title, description, **options):
    return classify_module.classify(title, description, MODEL, **options)

# --------------------------------------------------------------------------- the two stories


def test_streetlamp_story_goes_straight_to_infrastructure_as_an_everyday_matter():
    found = classify("村口路灯不亮", "城关镇城中社区村口的路灯坏了三天，晚上很黑")
    assert found.subject_class == "infrastructure"  # the catalogue sends it to 住建局
    assert found.category is FiveMatters.worry  # 操心事: something broken in daily life
    assert found.urgency is Urgency.normal  # dark, but nobody in danger: dispatch within 0.5 day
    assert not found.needs_manual_triage and MODEL.threshold <= found.confidence < 1
    assert any("路灯" in word for word in found.words)  # the clerk sees why


def test_fishpond_guardrail_story_is_a_wish_for_a_facility_with_children_at_risk():
    # Decision: subject infrastructure (the ask is to build a guardrail; the pond is where),
    # category 期盼事 (villagers ask for something that does not exist yet), and the danger
    # to children shows as urgency "urgent" rather than by changing the category.
    found = classify("鱼塘边需要安装护栏", "村里鱼塘边没有护栏，孩子放学经过很危险，希望安装护栏")
    assert found.subject_class == "infrastructure"
    assert found.category is FiveMatters.hope
    assert found.urgency is Urgency.urgent
    assert not found.needs_manual_triage
    assert {"危险", "孩子"} <= set(found.matched)  # the urgency words
    assert any("护栏" in word for word in found.words)  # the model's: the guardrail, not the fish


def test_a_broken_guardrail_by_the_same_pond_is_a_safety_worry_not_a_wish():
    found = classify("鱼塘边的护栏断了", "护栏断了一截，孩子经过很危险")
    assert (found.subject_class, found.category, found.urgency) == ("infrastructure", FiveMatters.anxiety, Urgency.urgent)


# --------------------------------------------------------------------------- everyday kinds


def test_construction_noise_at_night_is_an_environmental_nuisance():
    found = classify("晚上施工噪音扰民", "工地半夜还在施工，吵得睡不着")
    assert (found.subject_class, found.category, found.urgency) == ("environment", FiveMatters.annoyance, Urgency.normal)
    assert any("噪音" in word or "扰民" in word for word in found.words)


def test_wage_arrears_is_a_dispute_and_a_hardship_but_no_emergency():
    found = classify("老板拖欠工资", "在工地干了三个月，老板拖欠工资不给，过年回不了家")
    assert found.subject_class == "labour"  # 人社局 labour inspection (劳动监察)
    assert found.category is FiveMatters.emergency  # 急难事: a family without its income
    assert found.urgency is Urgency.normal  # nobody's life is in danger
    assert not found.needs_manual_triage


def test_a_question_about_the_low_income_allowance_goes_to_the_allowance():
    found = classify("咨询低保政策", "请问家里老人低保怎么办理，需要什么材料")
    # A question about a line of service goes to that line (#26: "咨询E市小孩入学问题" is education);
    # 低保 is 民政局's (the catalogue's civil_affairs line).
    assert found.subject_class == "civil_affairs"
    assert found.category is FiveMatters.worry
    assert any("低保" in word for word in found.words)  # the clerk sees it is about 低保
    assert not found.needs_manual_triage


def test_a_wish_for_a_bus_stop_is_transport_and_hope():
    found = classify("希望开通到县城的公交", "村里老人去县城看病不方便，建议增设公交班车")
    assert (found.subject_class, found.category) == ("transport", FiveMatters.hope)


# --------------------------------------------------------------------------- emergencies


@pytest.mark.parametrize(
    ("title", "description"),
    [
        ("有人掉进鱼塘", "孩子落水了，快来人"),
        ("小区燃气泄漏", "楼道里闻到很浓的煤气味，担心爆炸"),
        ("村后山体塌方", "塌方把路堵了，有车被困"),
    ],
)
def test_danger_to_life_is_an_emergency_and_an_urgent_hardship(title, description):
    found = classify(title, description)
    assert found.urgency is Urgency.emergency  # respond within 30 minutes
    assert found.category is FiveMatters.emergency  # 急难事
    assert any(word in found.matched for word in ("落水", "掉进", "燃气泄漏", "塌方", "被困"))


def test_a_fire_or_drowning_is_public_safety_and_a_gas_smell_goes_to_the_gas_company():
    assert classify("有人掉进鱼塘", "孩子落水了，快来人").subject_class == "public_safety"
    assert classify("仓库着火了", "有人被困在里面").subject_class == "public_safety"
    assert classify("小区燃气泄漏", "闻到很浓的煤气味").subject_class == "gas"


def test_a_negated_injury_does_not_raise_a_false_alarm():
    found = classify("路面塌陷", "村道路面塌陷一个大坑，暂无人员受伤，但很危险")
    assert found.urgency is Urgency.urgent  # not emergency: nobody hurt
    assert found.category is FiveMatters.anxiety
    assert classify("路面塌陷", "无人受伤").urgency is Urgency.urgent


# --------------------------------------------------------------------------- unknown text


@pytest.mark.parametrize(
    ("title", "description"),
    [
        ("", ""),
        ("asdf qwer", "？？？！！！"),
        ("😀😀😀", "\x00\t\n"),
        ("啊" * 5000, "哦" * 20000),
    ],
)
def test_unknown_text_goes_to_a_person_and_never_raises(title, description):
    found = classify(title, description)
    assert found.subject_class in MODEL.classes  # the model always proposes a class …
    # … but not one it is sure of, or (emoji, punctuation) nothing it can read: a person triages it.
    assert found.needs_manual_triage
    assert found.category is FiveMatters.worry and found.urgency is Urgency.normal


def test_the_proposal_says_which_words_decided_and_which_version_decided():
    found = classify("村口路灯不亮", "城关镇城中社区村口的路灯坏了三天，晚上很黑")
    assert found.subject_class == "infrastructure" and found.model_version == "demo"
    assert found.words and any("路灯" in w or "灯不亮" in w for w in found.words)
    assert found.matched[: len(found.words)] == found.words  # the model's words come first
    assert all(not any(ch.isdigit() for ch in w) for w in classify("13977710001路灯不亮", "电话13977710001").words)


# --------------------------------------------------------------------------- hint, normalisation, threshold


def test_the_citizens_category_is_respected_and_shown_as_theirs():
    found = classify("村口路灯不亮", "路灯坏了", hinted_category=FiveMatters.hope)
    assert found.category is FiveMatters.hope
    assert "hint:期盼事" in found.matched
    assert found.subject_class == "infrastructure"  # the subject is still ours


def test_a_hint_never_hides_an_emergency():
    found = classify("仓库着火了", "有人被困在里面", hinted_category=FiveMatters.worry)
    assert found.category is FiveMatters.worry  # their choice stands
    assert found.urgency is Urgency.emergency  # but the 30-minute clock still starts


def test_full_width_characters_and_spaces_do_not_hide_keywords():
    plain = classify("村口路灯不亮", "坏了３天")
    typed = classify("村口 路　灯 不亮", "坏 了 ３ 天")
    assert typed == plain
    assert classify("ＡＢ栋停水", "").subject_class == classify("AB栋停水", "").subject_class == "water_supply"


def test_the_threshold_decides_who_needs_a_person():
    text = ("鱼塘边需要安装护栏", "鱼塘边没有护栏，希望安装")
    found = classify(*text)
    assert found.needs_manual_triage == (found.confidence < MODEL.threshold)
    assert classify(*text, threshold=found.confidence + 0.01).needs_manual_triage
    assert not classify(*text, threshold=found.confidence).needs_manual_triage
    assert not classify("有个事情", "", threshold=0.0).needs_manual_triage


# --------------------------------------------------------------------------- rules are data


def test_a_longer_keyword_is_not_counted_again_through_a_shorter_one():
    rules = Rules(emergency=("泄漏", "燃气泄漏"), urgent=())
    assert classify("", "燃气泄漏", rules=rules).matched[-1:] == ("燃气泄漏",)
    assert "泄漏" not in classify("", "燃气泄漏", rules=rules).matched[len(MODEL.predict("", "燃气泄漏").words):]


def test_a_region_can_replace_the_urgency_rules():
    quiet = replace(DEFAULT_RULES, emergency=())
    assert classify("仓库着火了", "").urgency is Urgency.emergency
    assert classify("仓库着火了", "", rules=quiet).urgency is Urgency.normal


def test_rules_are_checked_normalised_and_frozen():
    with pytest.raises(ValueError, match="empty"):
        Rules(emergency=("火灾", " "), urgent=())
    full_width = Rules(emergency=("ＬＥＤ灯爆炸",), urgent=())
    assert classify("led灯爆炸", "", rules=full_width).urgency is Urgency.emergency
    with pytest.raises(TypeError):
        DEFAULT_RULES.categories[FiveMatters.hope] = ("x",)  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        DEFAULT_RULES.urgent = ()  # type: ignore[misc]


def test_every_category_has_cue_words_and_no_subject_keywords_are_left():
    assert set(DEFAULT_RULES.categories) == set(FiveMatters)
    assert not hasattr(DEFAULT_RULES, "subjects")  # one subject path: the model


def test_looking_only_at_the_keywords_present_decides_exactly_as_looking_at_all():
    """``classify`` scans the vocabulary once per appeal and weighs only the keywords found
    (the hot path); every list weighed in full must come out the same."""
    import random

    from intake.classify import _hits

    rng = random.Random(7)
    pieces = [*DEFAULT_RULES.vocabulary, "暂无", "无人", "没有", "的", "了", "村口", "，"]
    lists = [*DEFAULT_RULES.categories.values(), DEFAULT_RULES.emergency, DEFAULT_RULES.urgent]
    for _ in range(300):
        title = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        candidates = DEFAULT_RULES.candidates(title, text)
        for words in lists:
            options = {"negators": DEFAULT_RULES.negators}
            assert _hits(words, title, text, **options, candidates=candidates) == _hits(words, title, text, **options)
