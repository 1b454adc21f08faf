"""The TF-IDF reference: it scores as scikit-learn's own pipeline does, its C is picked on val, and it
is stored as plain arrays that load without unpickling anything (an object array is refused)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from models.text.tfidf import C_GRID, TfidfModel, fit_tfidf
from tests.conftest import make_surnames

ROWS = make_surnames(60)
TEXTS = [s for s, _ in ROWS]
LABELS = sorted({n for _, n in ROWS})
Y = np.array([LABELS.index(n) for _, n in ROWS])


@pytest.mark.parametrize("classes", [3, 2])
def test_it_scores_as_scikit_learn_does_and_picks_c_on_val(classes):
    keep = np.isin(Y, range(classes))
    texts, y = [t for t, k in zip(TEXTS, keep, strict=True) if k], Y[keep]
    fit = fit_tfidf("chars", (texts[::2], y[::2]), (texts[1::2], y[1::2]), classes)
    assert [row["C"] for row in fit.history] == list(C_GRID)
    assert fit.val_accuracy == max(row["val_accuracy"] for row in fit.history) > 0.9
    c = fit.model.settings["C"]
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), lowercase=False, sublinear_tf=True)
    expected = LogisticRegression(C=c, max_iter=2000).fit(vectorizer.fit_transform(texts[::2]), y[::2])
    probs = expected.predict_proba(vectorizer.transform(texts[1::2]))
    np.testing.assert_allclose(fit.model.predict_proba(texts[1::2]), probs, atol=1e-5)


def test_it_is_stored_as_plain_arrays_and_an_object_array_is_refused(tmp_path):
    fit = fit_tfidf("chars", (TEXTS[::2], Y[::2]), (TEXTS[1::2], Y[1::2]), len(LABELS))
    files = fit.model.save(tmp_path, "tfidf")
    loaded = TfidfModel.load(files["tfidf_arrays"], files["tfidf_vocab"])
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), fit.model.predict_proba(TEXTS))
    bad = tmp_path / "bad.npz"
    np.savez(bad, coef=np.array([{"a": 1}], dtype=object), intercept=np.zeros(3), idf_0=np.zeros(3))
    with pytest.raises(ValueError, match="allow_pickle"):  # an object array would need unpickling
        TfidfModel.load(str(bad), files["tfidf_vocab"])
