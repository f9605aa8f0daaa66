"""分类模型: the subject of an appeal from a statistical model over its title and text.

Keyword rules cannot hold on what real citizens write: the same matter comes in many words
("停电", "无故断电", "电业局"), and a word list decides on the first word it knows. A model
trained on labelled appeals weighs every character n-gram of the text instead:

- **features**: TF-IDF over character 1–3-grams of the normalised title and text (the title
  counted twice: it names the matter). Characters need no segmenter or dictionary and hold
  for place names and typing variants a segmenter would split wrongly;
- **model**: a linear SVM, its scores turned into probabilities by cross-validated sigmoid
  calibration (``CalibratedClassifierCV``), so that "0.8" means right about 8 times in 10;
- **decision**: the most probable subject; below ``threshold`` a person triages (人工分拨).
- **explanation**: the n-grams that pushed the winning subject most (``Prediction.words``),
  so a dispatcher who overrides it sees why it went where it went.

Training examples are appeals with the subject a person gave them: the realistic appeals
written for the demo counties (``intake/training/demo/*.jsonl``) and, at run time,
the county's own (every manual triage, every upheld return; ``intake.learning`` stores
them and keeps the versions). This module is pure: it trains, predicts and evaluates; it
neither reads the database nor writes files. ``python -m intake.model retrain`` is the
command that retrains (see ``intake.learning.retrain``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from intake.classify import normalise
from shared.orgdata import SUBJECT_CLASSES

#: The demo counties' labelled appeals: every ``*.jsonl`` file of this directory, in name order.
DEMO_EXAMPLES = Path(__file__).resolve().parent / "training" / "demo"

#: Below this calibrated probability the appeal goes to manual triage (人工分拨). With 20-odd
#: classes the probability of the best one is rarely high; 0.3 sends about one real message
#: in ten to a person (measured by ``make bench``, section classify — on the same messages).
DEFAULT_THRESHOLD = 0.3
#: Folds of the calibration: each class needs at least this many examples.
CALIBRATION_FOLDS = 3
EXPLAIN_WORDS = 5


@dataclass(frozen=True)
class Example:
    """One appeal with the subject class a person gave it."""

    title: str
    text: str
    subject_class: str


@dataclass(frozen=True)
class Prediction:
    subject_class: str
    probability: float
    words: tuple[str, ...]  # the n-grams that weighed most for it, strongest first
    needs_manual_triage: bool
    model_version: str = "demo"
    readable: bool = True  # False: no letter of the text occurs in any example (then a person triages it)


def load_examples(path: Path = DEMO_EXAMPLES) -> list[Example]:
    """Examples from a JSON-lines file of ``{"subject_class", "title", "text"}`` (or every
    ``*.jsonl`` file of a directory, in name order); unknown classes are refused."""
    if path.is_dir():
        return [e for file in sorted(path.glob("*.jsonl")) for e in load_examples(file)]
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row["subject_class"] not in SUBJECT_CLASSES:
            raise ValueError(f"{path.name}:{number}: unknown subject class {row['subject_class']!r}")
        examples.append(Example(row["title"], row["text"], row["subject_class"]))
    return examples


def document(title: str, text: str) -> str:
    """What the model reads: the title twice (it names the matter), then the text, normalised."""
    t = normalise(title)
    return f"{t}\n{t}\n{normalise(text)}"


class SubjectModel:
    """A trained model; immutable once built by :func:`train`."""

    def __init__(
        self, vectorizer: TfidfVectorizer, classifier: CalibratedClassifierCV, threshold: float, trained_on: int, version: str = "demo"
    ) -> None:
        self._vectorizer = vectorizer
        self._classifier = classifier
        self.threshold = threshold
        self.trained_on = trained_on
        self.version = version  # "demo": the shipped examples only; "v<n>": a promoted retraining
        self.classes: tuple[str, ...] = tuple(str(c) for c in classifier.classes_)
        # The calibrated model averages one SVM per fold; their mean weight says which n-gram
        # pushes which subject, for the explanation.
        self._weights = np.mean([c.estimator.coef_ for c in classifier.calibrated_classifiers_], axis=0)
        self._stacked = _stack(classifier)
        self._features = vectorizer.get_feature_names_out()
        # The letters and characters the examples contain: an appeal with none of them (emoji,
        # another script, only punctuation) gives the model nothing to read, and its "most
        # probable" class is only the largest one — a person must read it.
        self._letters = frozenset(f for f in self._features if len(f) == 1 and f.isalnum())
        # The fitted vectorizer's own pieces, for ``_tfidf``.
        self._analyse = vectorizer.build_analyzer()
        self._vocabulary: dict[str, int] = vectorizer.vocabulary_
        self._idf: np.ndarray = vectorizer.idf_

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """One row of class probabilities (in ``classes`` order) per (title, text)."""
        return self._proba(self._tfidf([document(t, x) for t, x in pairs]))

    def _tfidf(self, documents: Sequence[str]) -> csr_matrix:
        """``TfidfVectorizer.transform`` for this model's settings (character 1–3-grams,
        sublinear tf, the fitted idf, rows scaled to unit length), equal to it
        (``intake/tests/test_model.py``). scikit-learn's own call spends more on checking its
        input and building sparse matrices than on the arithmetic: 0.9 ms of CPU for the one
        appeal of a request, the largest single cost of filing one."""
        indptr, indices, values = [0], [], []
        for text in documents:
            counts = Counter(j for j in map(self._vocabulary.get, self._analyse(text)) if j is not None)
            columns = sorted(counts)
            row = (np.log(np.fromiter((counts[j] for j in columns), float, len(columns))) + 1) * self._idf[columns]
            length = np.sqrt(row @ row)
            indices += columns
            values.append(row / length if length > 0 else row)
            indptr.append(len(indices))
        data = np.concatenate(values) if values else np.zeros(0)
        return csr_matrix((data, np.asarray(indices, dtype=np.int32), np.asarray(indptr, dtype=np.int32)), shape=(len(documents), len(self._idf)))

    def _proba(self, matrix) -> np.ndarray:  # noqa: ANN001 - a scipy sparse matrix
        """``CalibratedClassifierCV.predict_proba``, computed as one matrix product.

        scikit-learn calls one sigmoid calibrator per class and fold in Python: 4 ms for one
        appeal with 24 classes × 3 folds, where intake files one appeal per request. The same
        arithmetic stacked (every fold's SVM weights side by side, the sigmoids vectorised,
        each fold's row normalised, the folds averaged) is a tenth of that and equal to it
        (``intake/tests/test_model.py``)."""
        if self._stacked is None:
            return self._classifier.predict_proba(matrix)
        weights, intercepts, a, b = self._stacked
        folds, classes = a.shape
        scores = np.asarray(matrix @ weights) + intercepts  # (appeals, folds × classes)
        proba = expit(-(a.ravel() * scores + b.ravel())).reshape(-1, folds, classes)
        total = proba.sum(axis=2, keepdims=True)
        proba = np.divide(proba, total, out=np.full_like(proba, 1 / classes), where=total != 0)
        proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
        return proba.mean(axis=1)

    def predict_many(self, pairs: Sequence[tuple[str, str]]) -> list[Prediction]:
        matrix = self._tfidf([document(t, x) for t, x in pairs])
        probabilities = self._proba(matrix)
        out = []
        for row, (title, text) in enumerate(pairs):
            best = int(np.argmax(probabilities[row]))
            probability = float(probabilities[row, best])
            readable = not self._letters.isdisjoint(normalise(title + text))
            out.append(Prediction(
                self.classes[best], round(probability, 3), self._explain(matrix, row, best),
                probability < self.threshold or not readable, self.version, readable,
            ))
        return out

    def predict(self, title: str, text: str) -> Prediction:
        return self.predict_many([(title, text)])[0]

    def _explain(self, matrix, row: int, klass: int) -> tuple[str, ...]:  # noqa: ANN001 - a scipy sparse row
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        columns, values = matrix.indices[start:end], matrix.data[start:end]
        # A two-class model has one weight row (for the second class); the first is its opposite.
        weights = self._weights[klass] if self._weights.shape[0] > 1 else (1 if klass else -1) * self._weights[0]
        pushes = values * weights[columns]
        order = np.argsort(-pushes)
        words = [self._features[columns[i]].strip() for i in order if pushes[i] > 0]
        # Letters only: no line breaks (the title/text seam), no punctuation ("课," is not a word
        # a person reads as a reason), no digits (a piece of a phone or ID number is not an
        # explanation, and it travels on events).
        words = [w for w in words if w.isalpha()][: 4 * EXPLAIN_WORDS]
        # Longer n-grams read better: one inside another candidate adds nothing ("路" in "路灯").
        shown = [w for w in dict.fromkeys(words) if not any(w != o and w in o for o in words)]
        return tuple(shown[:EXPLAIN_WORDS])


def _stack(classifier: CalibratedClassifierCV) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Every fold's one-vs-rest SVM weights and sigmoid parameters side by side, for
    ``SubjectModel._proba``; None when a fold is not the plain many-class case (two classes,
    or a fold that did not see every class): scikit-learn then computes it."""
    classes = len(classifier.classes_)
    folds = classifier.calibrated_classifiers_
    if classes < 3 or any(len(f.estimator.classes_) != classes or len(f.calibrators) != classes for f in folds):
        return None
    weights = np.hstack([f.estimator.coef_.T for f in folds])
    intercepts = np.concatenate([f.estimator.intercept_ for f in folds])
    a = np.array([[c.a_ for c in f.calibrators] for f in folds], dtype=float)
    b = np.array([[c.b_ for c in f.calibrators] for f in folds], dtype=float)
    return weights, intercepts, a, b


def train(examples: Iterable[Example], *, threshold: float = DEFAULT_THRESHOLD, c: float = 1.0, version: str = "demo") -> SubjectModel:
    """Fit the model on labelled examples. Every class present needs ``CALIBRATION_FOLDS`` examples."""
    examples = list(examples)
    counts = Counter(e.subject_class for e in examples)
    if len(counts) < 2:
        raise ValueError("a model needs examples of at least two subject classes")
    if thin := sorted(k for k, n in counts.items() if n < CALIBRATION_FOLDS):
        raise ValueError(f"fewer than {CALIBRATION_FOLDS} examples of: {', '.join(thin)}")
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=1)
    matrix = vectorizer.fit_transform([document(e.title, e.text) for e in examples])
    # A fixed seed: a replica that rebuilds a promoted version from the same examples gets the same model.
    classifier = CalibratedClassifierCV(LinearSVC(C=c, random_state=0), method="sigmoid", cv=CALIBRATION_FOLDS)
    classifier.fit(matrix, [e.subject_class for e in examples])
    return SubjectModel(vectorizer, classifier, threshold, len(examples), version)


def trainable(examples: Iterable[Example]) -> list[Example]:
    """The examples of the classes that have enough to calibrate; a class the centre has
    labelled once or twice waits for more (the demo examples give every class enough)."""
    examples = list(examples)
    counts = Counter(e.subject_class for e in examples)
    return [e for e in examples if counts[e.subject_class] >= CALIBRATION_FOLDS]


# ---------------------------------------------------------------------- evaluation

#: Folds of the evaluation before a version replaces the last one.
EVALUATION_FOLDS = 5
EVALUATION_SEED = 26
#: How much agreement on the demo appeals a candidate may lose and still count as "not worse":
#: one or two of 122 texts flip between runs as the county's examples shift the boundaries.
DEMO_TOLERANCE = 0.02


@dataclass(frozen=True)
class Score:
    """Agreement and manual-triage rate on a set of labelled examples."""

    examples: int
    agreement: float
    manual_rate: float

    def as_dict(self) -> dict[str, float | int]:
        return {"examples": self.examples, "agreement": round(self.agreement, 4), "manual_rate": round(self.manual_rate, 4)}


def _score(truth: Sequence[str], predictions: Sequence[Prediction]) -> Score:
    n = len(truth)
    if not n:
        return Score(0, 0.0, 0.0)
    agreed = sum(p.subject_class == t for t, p in zip(truth, predictions, strict=True))
    return Score(n, agreed / n, sum(p.needs_manual_triage for p in predictions) / n)


def cross_validate(
    evaluated: Sequence[Example],
    always: Sequence[Example],
    *,
    learns: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    folds: int = EVALUATION_FOLDS,
) -> Score:
    """Out-of-sample agreement on ``evaluated``: k folds, each predicted by a model trained on
    ``always`` and the other folds (as the model would meet an appeal it has not seen). With
    ``learns``, only the first ``learns`` of ``evaluated`` may be learnt from: the version
    under test knew only those (the current version, built before the rest were stored)."""
    from sklearn.model_selection import KFold

    if len(evaluated) < 2:
        return Score(0, 0.0, 0.0)
    evaluated = list(evaluated)
    limit = len(evaluated) if learns is None else learns
    predictions: list[Prediction | None] = [None] * len(evaluated)
    splitter = KFold(n_splits=min(folds, len(evaluated)), shuffle=True, random_state=EVALUATION_SEED)
    for train_rows, test_rows in splitter.split(evaluated):
        model = train(trainable([*always, *(evaluated[i] for i in train_rows if i < limit)]), threshold=threshold)
        for i, p in zip(test_rows, model.predict_many([(evaluated[i].title, evaluated[i].text) for i in test_rows]), strict=True):
            predictions[i] = p
    return _score([e.subject_class for e in evaluated], [p for p in predictions if p is not None])


@dataclass(frozen=True)
class Evaluation:
    """A version's evaluation: on the county's own examples, and on the demo appeals."""

    county: Score
    demo: Score

    def as_dict(self) -> dict[str, dict[str, float | int]]:
        return {"county": self.county.as_dict(), "demo": self.demo.as_dict()}


def evaluate(
    demo: Sequence[Example], own: Sequence[Example], *, learns: int | None = None, threshold: float = DEFAULT_THRESHOLD
) -> Evaluation:
    """How well a model trained on ``demo`` + ``own`` routes what it has not seen: cross-validated
    on the county's examples (trained with all the demo ones) and on the demo ones (trained with
    the county's). ``learns``: the version learns only the first ``learns`` of ``own`` (oldest
    first) — so the current version and a candidate are measured on the same examples."""
    known = list(own) if learns is None else list(own)[:learns]
    return Evaluation(
        county=cross_validate(own, demo, learns=learns, threshold=threshold),
        demo=cross_validate(demo, known, threshold=threshold),
    )


def not_worse(candidate: Evaluation, current: Evaluation) -> bool:
    """A candidate replaces the current version only if it routes the county's examples
    better and has not forgotten the demo appeals (within ``DEMO_TOLERANCE``: a few texts
    flip between trainings), or routes them as well and is no worse on the demo appeals at all.

    A careless batch of labels (streetlamps filed as schooling) is outweighed by the demo
    appeals: the candidate routes the county's examples no better and forgets a little —
    it is recorded, not promoted. Both are measured on the same examples (see
    ``intake.learning``), so the comparison is fair."""
    if candidate.county.agreement > current.county.agreement:
        return candidate.demo.agreement >= current.demo.agreement - DEMO_TOLERANCE
    return candidate.county.agreement == current.county.agreement and candidate.demo.agreement >= current.demo.agreement


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m intake.model retrain``: retrain, evaluate, promote if not worse (intake's settings)."""
    import argparse
    import asyncio

    parser = argparse.ArgumentParser(prog="python -m intake.model", description=main.__doc__)
    parser.add_argument("command", choices=["retrain"])
    parser.parse_args(argv)
    from intake.learning import retrain_from_settings

    outcome = asyncio.run(retrain_from_settings())
    print(json.dumps(outcome, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
