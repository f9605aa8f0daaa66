"""Emergencies flagged only where a person would (#26): the urgency rules against
``intake/training/urgency.jsonl`` — genuine emergencies happening now, and letters that use
the same words figuratively (很受伤), hypothetically (万一起火), about the past (去年发生火灾),
elsewhere (新闻里的溺水) or about an aftermath (车祸受伤后理赔). Pure rules: no model needed."""

from collections import Counter

import pytest

from intake.classify import urgency
from intake.training import load_urgency, score_emergencies
from shared.events import Urgency

EXAMPLES = load_urgency()


def urgency_of(title: str, text: str) -> Urgency:
    return urgency(title, text)[0]


def test_the_set_is_what_it_claims_to_be():
    counts = Counter(example.urgency for example in EXAMPLES)
    assert counts[Urgency.emergency] >= 50 and counts[Urgency.urgent] + counts[Urgency.normal] >= 100
    assert len({(e.title, e.text) for e in EXAMPLES}) == len(EXAMPLES)  # no duplicates


def test_emergencies_are_flagged_only_where_a_person_would_and_none_is_lost():
    scores = score_emergencies(EXAMPLES, urgency_of)
    assert scores.precision >= 0.9, f"{scores.flagged - scores.right} false alarms among {scores.flagged}"
    assert scores.recall >= 0.9, f"{scores.real - scores.right} of {scores.real} emergencies missed"


@pytest.mark.parametrize(
    ("title", "text", "urgency"),
    [
        # figurative, hypothetical, past, elsewhere, aftermath: not now
        ("处理结果让群众很受伤", "补偿标准太低，大家心里受伤", Urgency.normal),
        ("电动车楼道充电", "万一起火后果不堪设想", Urgency.urgent),  # a danger: urgent
        ("安全隐患", "管道老化，可能导致爆炸", Urgency.urgent),
        ("厂房至今未拆", "去年发生火灾的厂房至今没有拆除", Urgency.normal),
        ("路口装红绿灯", "前年路口发生过车祸，有人受伤", Urgency.normal),
        ("车祸理赔", "车祸受伤后保险公司一直不理赔", Urgency.normal),
        ("防溺水", "学校开展防溺水教育", Urgency.normal),
        ("燃气公司收费", "强制安装燃气泄漏报警器", Urgency.normal),
        # now: an emergency, even after a past one
        ("废品站又着火了", "去年就着过一次火，现在又着火了，浓烟滚滚", Urgency.emergency),
        ("电梯困人", "电梯停在两层中间，里面困了老人，正在喊人", Urgency.emergency),
        ("多次投诉没人管", "电线老化多次投诉没人管。现在电线起火了，快来人", Urgency.emergency),
    ],
)
def test_happening_now_decides(title, text, urgency):
    assert urgency_of(title, text) is urgency
