"""Which needs a comment most likely belongs to: TF-IDF similarity, computed
locally with scikit-learn (no remote service), between the comment and each
need's document (its name, written twice, and every earlier evidence text).

Word unigrams and bigrams plus character 3-5-grams within words, so "SSO",
"single sign-on" and "sign on" meet as often as the evidence lets them;
sublinear term frequency so a need with hundreds of pieces of evidence does
not drown the others. docs/triage.md reports the top-3 accuracy."""

from __future__ import annotations

from dataclasses import dataclass

TOP = 3
# scikit-learn and SciPy are imported on first use, not when the app starts
# (about a second that every web worker, RQ worker and command would pay).


@dataclass
class Suggester:
    need_ids: list
    _words: object = None
    _chars: object = None
    _matrix: object = None

    @classmethod
    def fit(cls, documents: dict) -> Suggester:
        """`documents`: {need id: (name, [evidence texts])}."""
        from scipy.sparse import hstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.preprocessing import normalize

        need_ids = list(documents)
        texts = [" ".join([name, name, *evidence]) for name, evidence in documents.values()]
        suggester = cls(need_ids)
        if not any(text.strip() for text in texts):
            return suggester
        suggester._words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english",
                                           strip_accents="unicode", min_df=1)
        suggester._chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True,
                                           strip_accents="unicode", lowercase=True)
        try:
            words = suggester._words.fit_transform(texts)
        except ValueError:  # only stop words: keep the character n-grams
            suggester._words = None
            words = None
        chars = suggester._chars.fit_transform(texts)
        suggester._matrix = normalize(hstack([m for m in (words, chars) if m is not None]).tocsr())
        return suggester

    def _vectors(self, queries):
        from scipy.sparse import hstack
        from sklearn.preprocessing import normalize

        parts = []
        if self._words is not None:
            parts.append(self._words.transform(queries))
        parts.append(self._chars.transform(queries))
        return normalize(hstack(parts).tocsr())

    def top(self, queries: list[str], n: int = TOP) -> list[list[tuple]]:
        """For each query, up to `n` (need id, score) pairs, best first, score > 0."""
        if self._matrix is None or not queries:
            return [[] for _ in queries]
        from sklearn.metrics.pairwise import linear_kernel

        scores = linear_kernel(self._vectors(queries), self._matrix)
        out = []
        for row in scores:
            order = sorted(range(len(row)), key=lambda i: (-row[i], self.need_ids[i]))[:n]
            out.append([(self.need_ids[i], round(float(row[i]), 3)) for i in order if row[i] > 0])
        return out
