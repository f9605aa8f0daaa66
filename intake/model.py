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
written for the demo counties (``intake/training/demo_examples.jsonl``) and, at run time,
the county's own (every manual triage, every upheld return) — not yet wired (#26).
This module is pure: it trains and predicts, it neither reads the database nor writes files.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from intake.classify import normalise
from shared.orgdata import SUBJECT_CLASSES

DEMO_EXAMPLES = Path(__file__).resolve().parent / "training" / "demo_examples.jsonl"

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


def load_examples(path: Path = DEMO_EXAMPLES) -> list[Example]:
    """Examples from a JSON-lines file of ``{"subject_class", "title", "text"}``; unknown classes are refused."""
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

    def __init__(self, vectorizer: TfidfVectorizer, classifier: CalibratedClassifierCV, threshold: float, trained_on: int) -> None:
        self._vectorizer = vectorizer
        self._classifier = classifier
        self.threshold = threshold
        self.trained_on = trained_on
        self.classes: tuple[str, ...] = tuple(classifier.classes_)
        # The calibrated model averages one SVM per fold; their mean weight says which n-gram
        # pushes which subject, for the explanation.
        self._weights = np.mean([c.estimator.coef_ for c in classifier.calibrated_classifiers_], axis=0)
        self._features = vectorizer.get_feature_names_out()

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """One row of class probabilities (in ``classes`` order) per (title, text)."""
        return self._classifier.predict_proba(self._vectorizer.transform([document(t, x) for t, x in pairs]))

    def predict_many(self, pairs: Sequence[tuple[str, str]]) -> list[Prediction]:
        matrix = self._vectorizer.transform([document(t, x) for t, x in pairs])
        probabilities = self._classifier.predict_proba(matrix)
        out = []
        for row in range(matrix.shape[0]):
            best = int(np.argmax(probabilities[row]))
            probability = float(probabilities[row, best])
            out.append(Prediction(self.classes[best], round(probability, 3), self._explain(matrix, row, best), probability < self.threshold))
        return out

    def predict(self, title: str, text: str) -> Prediction:
        return self.predict_many([(title, text)])[0]

    def _explain(self, matrix, row: int, klass: int) -> tuple[str, ...]:  # noqa: ANN001 - a scipy sparse row
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        columns, values = matrix.indices[start:end], matrix.data[start:end]
        pushes = values * self._weights[klass, columns]
        order = np.argsort(-pushes)
        words = [self._features[columns[i]].strip() for i in order if pushes[i] > 0]
        # Longer n-grams read better; a 1-gram inside one already shown adds nothing.
        shown: list[str] = []
        for word in words:
            if word and "\n" not in word and not any(word in s for s in shown):
                shown.append(word)
            if len(shown) == EXPLAIN_WORDS:
                break
        return tuple(shown)


def train(examples: Iterable[Example], *, threshold: float = DEFAULT_THRESHOLD, c: float = 1.0) -> SubjectModel:
    """Fit the model on labelled examples. Every class present needs ``CALIBRATION_FOLDS`` examples."""
    examples = list(examples)
    counts = Counter(e.subject_class for e in examples)
    if len(counts) < 2:
        raise ValueError("a model needs examples of at least two subject classes")
    if thin := sorted(k for k, n in counts.items() if n < CALIBRATION_FOLDS):
        raise ValueError(f"fewer than {CALIBRATION_FOLDS} examples of: {', '.join(thin)}")
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=1)
    matrix = vectorizer.fit_transform([document(e.title, e.text) for e in examples])
    classifier = CalibratedClassifierCV(LinearSVC(C=c), method="sigmoid", cv=CALIBRATION_FOLDS)
    classifier.fit(matrix, [e.subject_class for e in examples])
    return SubjectModel(vectorizer, classifier, threshold, len(examples))
