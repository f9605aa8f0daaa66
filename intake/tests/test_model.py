"""The subject model: trained on the demo appeals, it routes, explains and defers to a person."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from intake.model import CALIBRATION_FOLDS, DEMO_EXAMPLES, Example, load_examples, train
from shared.orgdata import SUBJECT_CLASSES


@pytest.fixture(scope="module")
def model():
    return train(load_examples())


def test_the_demo_appeals_cover_every_subject_class_enough_to_calibrate():
    counts = Counter(e.subject_class for e in load_examples())
    assert set(counts) == set(SUBJECT_CLASSES) - {"other"}
    assert min(counts.values()) >= CALIBRATION_FOLDS


def test_appeals_it_has_not_seen_go_to_the_line_of_service_that_handles_them(model):
    unseen = {
        "education": ("咨询孩子转学到县城小学的问题", "孩子今年三年级，跟我们到县城打工，想转到城关小学读书，学校说没有学位。"),
        "health": ("镇卫生院医生态度差", "带孩子去卫生院看病，医生不耐烦，开了很多药。"),
        "power": ("屯里又停电了", "这周已经停电三次，电压也不稳，供电所不给解释。"),
        "labour": ("老板拖欠半年工资不给", "在工厂打工半年，老板一直拖着不发工资，也没签劳动合同。"),
    }
    for subject, (title, text) in unseen.items():
        assert model.predict(title, text).subject_class == subject, title


def test_the_decision_names_the_words_that_made_it(model):
    prediction = model.predict("学校周末强制补课收费", "县一中周末组织补课，每个学生收费两百元。")
    assert prediction.subject_class == "education"
    assert 0 < len(prediction.words) <= 5
    assert all(word in "学校周末强制补课收费县一中周末组织补课每个学生收费两百元" for word in prediction.words)


def test_the_words_named_are_letters_never_punctuation_digits_or_the_title_text_seam(model):
    appeals = [(e.title, e.text) for e in load_examples()]
    words = {w for p in model.predict_many(appeals) for w in p.words}
    assert words
    assert all(w.isalpha() for w in words), sorted(w for w in words if not w.isalpha())[:10]


def test_below_the_threshold_a_person_triages(model):
    prediction = model.predict("你好", "请帮帮忙")
    assert 0 < prediction.probability < 1
    assert prediction.needs_manual_triage == (prediction.probability < model.threshold)
    strict = train(load_examples(), threshold=1.0)
    assert strict.predict("县城路灯坏了", "芝州路的路灯不亮").needs_manual_triage


def test_a_class_with_too_few_examples_to_calibrate_is_refused():
    examples = [Example("路灯不亮", "路灯坏了", "infrastructure")] * 3 + [Example("学校收费", "乱收费", "education")] * 2
    with pytest.raises(ValueError, match="education"):
        train(examples)


def test_an_unknown_class_in_the_examples_file_is_refused(tmp_path):
    path = tmp_path / "examples.jsonl"
    path.write_text(json.dumps({"subject_class": "weather", "title": "下雨", "text": "雨很大"}, ensure_ascii=False) + "\n")
    with pytest.raises(ValueError, match="weather"):
        load_examples(path)
    assert DEMO_EXAMPLES.exists()


def test_the_stacked_probabilities_are_scikit_learns_own():
    """``SubjectModel._proba`` computes the calibrated probabilities as one matrix product
    (a tenth of scikit-learn's per-class loop for one appeal); it must be the same arithmetic."""
    import numpy as np

    from intake.model import document

    model = train(load_examples())
    examples = load_examples()[::9]
    matrix = model._vectorizer.transform([document(e.title, e.text) for e in examples] + ["", "😀"])
    assert model._stacked is not None
    np.testing.assert_allclose(model._proba(matrix), model._classifier.predict_proba(matrix), rtol=0, atol=1e-12)
    two = train([Example("路灯不亮", "路灯坏了", "infrastructure")] * 3 + [Example("欠薪", "拖欠工资", "labour")] * 3)
    assert two._stacked is None  # two classes: scikit-learn's own arithmetic
    assert two.predict("路灯不亮", "").subject_class == "infrastructure"


def test_the_tfidf_rows_are_scikit_learns_own(model):
    """``SubjectModel._tfidf`` builds the n-gram rows without scikit-learn's per-call checks
    (a third of its CPU for one appeal); it must give the vectorizer's own rows: for the
    examples, an empty text, one with no n-gram the model knows, one with repeats."""
    import numpy as np

    from intake.model import document

    texts = [document(e.title, e.text) for e in load_examples()[::7]] + ["", "😀😀", "路灯路灯路灯不亮", "ABC abc 123"]
    ours, theirs = model._tfidf(texts), model._vectorizer.transform(texts)
    assert ours.shape == theirs.shape and ours.nnz == theirs.nnz
    np.testing.assert_array_equal(ours.indptr, theirs.indptr)
    np.testing.assert_array_equal(ours.indices, theirs.indices)
    np.testing.assert_allclose(ours.data, theirs.data, rtol=0, atol=1e-12)
    assert model._tfidf([]).shape == (0, theirs.shape[1])
