"""Preprocessing as scikit-learn transformers, fitted on training rows only.

`make_preprocessor(schema, kind)` gives the steps that turn raw rows into what a
model family eats: "linear" (imputed, scaled, one-hot, TF-IDF) or "tree"
(numbers as they are with NaN, categories as pandas categoricals that LightGBM
and XGBoost use natively, dates expanded). Both start from `SchemaCoercer`,
which makes any incoming frame look like the training frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from trainyard.data.schema import Schema, as_datetime, as_numeric

MISSING = "__missing__"
RARE = "__rare__"  # categories seen fewer than min_count times in training, and categories never seen
HIGH_CARDINALITY = 50  # linear models target-encode (out of fold) categoricals with more distinct values than this


class SchemaCoercer(BaseEstimator, TransformerMixin):
    """Select the feature columns and cast each to its role's type; absent columns become missing."""

    def __init__(self, schema: dict | None = None):
        self.schema = schema

    def fit(self, X, y=None):
        self.schema_ = Schema.from_dict(self.schema)
        self.roles_ = {c.name: c.role for c in self.schema_.columns if c.name in self.schema_.features()}
        return self

    def transform(self, X):
        X = pd.DataFrame(X)
        out = {}
        for name, role in self.roles_.items():
            s = X[name] if name in X.columns else pd.Series(np.nan, index=X.index, dtype=object)
            if role == "numeric":
                out[name] = as_numeric(s)
            elif role == "boolean":
                out[name] = _as_bool(s)
            elif role == "datetime":
                out[name] = as_datetime(s)
            else:  # missing is always NaN (a None would escape the imputers when a column holds nothing else)
                out[name] = _as_text(s)
        return pd.DataFrame(out, index=X.index)


def _isna(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _as_text(s: pd.Series) -> pd.Series:
    """Each value as stripped text (object dtype, NaN where missing); each distinct value converted once."""
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) != "string":  # 1, 1.0 and True hash alike
        return s.astype(object).map(lambda v: np.nan if _isna(v) else str(v).strip())
    codes, uniques = pd.factorize(s)
    text = np.array([str(v).strip() for v in uniques] + [np.nan], dtype=object)
    return pd.Series(text[codes], index=s.index, name=s.name)  # code -1 (missing) picks the trailing NaN


def _as_bool(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return s.astype(float)
    lowered = s.astype("string").str.strip().str.lower()
    return lowered.map({"true": 1.0, "t": 1.0, "yes": 1.0, "y": 1.0, "1": 1.0, "false": 0.0, "f": 0.0, "no": 0.0, "n": 0.0, "0": 0.0}).astype(float)


class DatetimeFeatures(BaseEstimator, TransformerMixin):
    """Expand datetime columns into year, month, day, weekday, hour and days since 1970."""

    PARTS = ("year", "month", "day", "day_of_week", "hour")

    def fit(self, X, y=None):
        self.columns_ = list(pd.DataFrame(X).columns)
        return self

    def transform(self, X):
        X = pd.DataFrame(X)
        out = {}
        for name in self.columns_:
            d = as_datetime(X[name])
            for part in self.PARTS:
                out[f"{name}.{part}"] = getattr(d.dt, part).astype(float)
            out[f"{name}.days"] = (d - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86400.0
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features=None):
        return np.array([f"{n}.{p}" for n in self.columns_ for p in (*self.PARTS, "days")])


class TextStats(BaseEstimator, TransformerMixin):
    """Length and word count of a text column, plus a small LSA embedding (TF-IDF -> SVD) for trees."""

    def __init__(self, n_components: int = 16, max_features: int = 20000):
        self.n_components = n_components
        self.max_features = max_features

    def fit(self, X, y=None):
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        text = _text(X)
        self.name_ = str(X.columns[0]) if isinstance(X, pd.DataFrame) else "text"
        self.tfidf_ = TfidfVectorizer(max_features=self.max_features, sublinear_tf=True, min_df=2 if len(text) > 50 else 1)
        try:
            matrix = self.tfidf_.fit_transform(text)
        except ValueError:  # empty vocabulary
            self.tfidf_, self.svd_ = None, None
            return self
        k = min(self.n_components, matrix.shape[1] - 1, matrix.shape[0] - 1)
        self.svd_ = TruncatedSVD(n_components=k, random_state=0).fit(matrix) if k >= 1 else None
        return self

    def transform(self, X):
        text = _text(X)
        parts = [text.str.len().to_numpy(float)[:, None], text.str.split().str.len().fillna(0).to_numpy(float)[:, None]]
        if self.svd_ is not None:
            parts.append(self.svd_.transform(self.tfidf_.transform(text)))
        return np.hstack(parts)

    def get_feature_names_out(self, input_features=None):
        k = self.svd_.n_components if self.svd_ is not None else 0
        return np.array([f"{self.name_}.length", f"{self.name_}.words"] + [f"{self.name_}.lsa{i}" for i in range(k)])


def _text(X) -> pd.Series:
    s = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else pd.Series(np.asarray(X).ravel())
    return s.fillna("").astype(str)


class CategoricalCodes(BaseEstimator, TransformerMixin):
    """Categories as pandas categoricals with the training set's frequent values; rare and unseen values are grouped
    into one '__rare__' category (kept apart from missing)."""

    def __init__(self, min_count: int = 5, max_categories: int = 200):
        self.min_count = min_count
        self.max_categories = max_categories

    def fit(self, X, y=None):
        X = pd.DataFrame(X)
        self.categories_ = {}
        for name in X.columns:
            counts = X[name].dropna().astype(str).value_counts()
            keep = counts[counts >= min(self.min_count, max(1, len(X) // 100))].index[: self.max_categories]
            self.categories_[name] = sorted(keep.tolist())
        self.group_rare_ = True
        return self

    def transform(self, X):
        X = pd.DataFrame(X)
        out = {}
        for n, cats in self.categories_.items():
            s = X[n].astype(object)
            values = s.where(s.isna(), s.astype(str))
            if getattr(self, "group_rare_", False):  # rare and unseen values share one category; missing stays missing
                values = values.where(values.isna() | values.isin(cats), RARE)
                cats = [*cats, RARE]
            out[n] = pd.Categorical(values, categories=cats)
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features=None):
        return np.array(list(self.categories_))


def _cross_fitting(task) -> dict:
    """Shuffled 5-fold cross fitting, spelled as the installed scikit-learn wants it (`cv` splitter from 1.9)."""
    import sklearn

    if tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 9):
        from sklearn.model_selection import KFold, StratifiedKFold

        cls = StratifiedKFold if target_type(task) in ("binary", "multiclass") else KFold
        return {"cv": cls(n_splits=5, shuffle=True, random_state=0)}
    return {"shuffle": True, "random_state": 0}


def target_type(task) -> str:
    """scikit-learn's TargetEncoder target type for a trainyard task (None: let it infer)."""
    return {"binary": "binary", "multiclass": "multiclass", "regression": "continuous"}.get(getattr(task, "value", task), "auto")


def make_preprocessor(schema: Schema, kind: str, task=None) -> Pipeline:
    """The preprocessing pipeline for a model family of the given kind ('linear' or 'tree').

    Linear: categoricals with up to HIGH_CARDINALITY values are one-hot encoded (values seen under 5 times grouped
    as infrequent); those with more are target-encoded with scikit-learn's TargetEncoder, whose fit_transform
    cross-fits (each training row is encoded by a model of the other folds), so the encoding does not leak the
    row's own label. `task` sets the encoder's target type.
    """
    numeric = schema.features("numeric", "boolean")
    categorical = schema.features("categorical")
    dates = schema.features("datetime")
    texts = schema.features("text")
    if kind == "linear":
        parts = []
        if numeric:
            parts.append(("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()), numeric))
        high = [c for c in categorical if (schema.column(c).n_unique or 0) > HIGH_CARDINALITY]
        low = [c for c in categorical if c not in high]
        if low:
            onehot = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5, max_categories=50, sparse_output=True)
            parts.append(("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value=MISSING, keep_empty_features=True), onehot), low))
        if high:
            from sklearn.preprocessing import TargetEncoder

            encoder = TargetEncoder(target_type=target_type(task), **_cross_fitting(task))
            parts.append(("cat_target", make_pipeline(SimpleImputer(strategy="constant", fill_value=MISSING, keep_empty_features=True),
                                                      encoder, StandardScaler()), high))
        if dates:
            parts.append(("date", make_pipeline(DatetimeFeatures(), SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()), dates))
        for name in texts:
            from sklearn.feature_extraction.text import TfidfVectorizer

            parts.append((f"text:{name}", make_pipeline(_FillText(), TfidfVectorizer(max_features=20000, ngram_range=(1, 2), sublinear_tf=True, min_df=2)), [name]))
        return Pipeline([("coerce", SchemaCoercer(schema.to_dict())), ("columns", ColumnTransformer(parts, sparse_threshold=0.3))])
    if kind == "tree":
        parts = []
        if categorical:
            parts.append(("cat", CategoricalCodes(), categorical))
        if numeric:
            parts.append(("num", "passthrough", numeric))
        if dates:
            parts.append(("date", DatetimeFeatures(), dates))
        for name in texts:
            parts.append((f"text:{name}", TextStats(), [name]))
        columns = ColumnTransformer(parts, verbose_feature_names_out=False).set_output(transform="pandas")
        return Pipeline([("coerce", SchemaCoercer(schema.to_dict())), ("columns", columns)])
    raise ValueError(f"unknown preprocessing kind {kind!r}")


class _FillText(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return _text(pd.DataFrame(X))
