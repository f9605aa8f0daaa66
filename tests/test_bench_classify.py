"""The classification bench's arithmetic: what counts as agreement, manual triage and confusion."""

from __future__ import annotations

import pytest

from bench.classify import BOARD_CLASSES, Proposal, Scores, confusion_markdown, load_messages, score

MAPPING = {"城乡建设": frozenset({"infrastructure", "housing"}), "卫生计生": frozenset()}


def test_a_proposal_agrees_when_it_is_any_class_of_the_board_label():
    scores = score(
        ["城乡建设", "城乡建设", "城乡建设"],
        [Proposal("infrastructure", manual=False), Proposal("housing", manual=True), Proposal("transport", manual=False)],
        MAPPING,
    )
    assert (scores.total, scores.agreed, scores.manual, scores.auto_right) == (3, 2, 1, 1)
    assert scores.agreement == pytest.approx(2 / 3)
    assert scores.manual_rate == pytest.approx(1 / 3)
    assert scores.auto_right_rate == pytest.approx(1 / 3)  # the manual one is right but a person routed it


def test_a_label_the_platform_cannot_express_never_agrees():
    scores = score(["卫生计生", "卫生计生"], [Proposal("other", manual=True), Proposal("consultation", manual=False)], MAPPING)
    assert scores.agreed == 0 and scores.label_agreement("卫生计生", MAPPING) == (0, 2)
    assert scores.confusion["卫生计生"] == {"other": 1, "consultation": 1}


def test_the_confusion_table_has_a_row_per_label_and_bolds_only_agreeing_cells():
    scores = score(["城乡建设", "城乡建设", "卫生计生"], [Proposal("housing", False), Proposal("transport", False), Proposal("housing", False)], MAPPING)
    table = confusion_markdown(scores, MAPPING)
    assert table[2].startswith("| 城乡建设 (housing, infrastructure) | 1/2 |")
    assert "**1**" in table[2] and table[3].startswith("| 卫生计生 (none) | 0/1 |") and "**" not in table[3]


def test_labels_and_proposals_must_pair_up_and_every_label_be_mapped():
    with pytest.raises(ValueError, match="2 labels but 1 proposals"):
        score(["城乡建设", "城乡建设"], [Proposal("housing", False)], MAPPING)
    with pytest.raises(ValueError, match="without a mapping: 其他"):
        score(["其他"], [Proposal("housing", False)], MAPPING)
    assert Scores().agreement == 0.0 and Scores().manual_rate == 0.0


def test_every_board_label_of_the_real_messages_is_mapped(tmp_path):
    assert load_messages(tmp_path / "absent.csv") is None  # skipped cleanly without the data
    messages = load_messages()
    if messages is None:
        pytest.skip("../shared/data/appeals-real-train.csv is not beside the project")
    assert {m.label for m in messages} == set(BOARD_CLASSES)
