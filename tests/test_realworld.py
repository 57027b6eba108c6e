"""Real-world objects: pandas DataFrames and fitted scikit-learn models."""

from __future__ import annotations

import numpy as np
import pytest

import codecpickle

pd = pytest.importorskip("pandas")
sklearn_ensemble = pytest.importorskip("sklearn.ensemble")


def make_frame(rows: int = 20_000) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "int": rng.integers(0, 1000, rows),
            "float": rng.standard_normal(rows),
            "category": pd.Categorical(rng.choice(["red", "green", "blue"], rows)),
            "string": pd.array([f"item-{i % 977}" for i in range(rows)], dtype="string"),
            "object": [f"obj{i % 13}" for i in range(rows)],
            "datetime": pd.date_range("2020-01-01", periods=rows, freq="min"),
            "tz": pd.date_range("2021-06-01", periods=rows, freq="h", tz="Europe/Paris"),
            "nullable": pd.array([None if i % 10 == 0 else i for i in range(rows)], dtype="Int64"),
        },
        index=pd.RangeIndex(rows, name="row"),
    )


@pytest.mark.parametrize("compress", [None, "zstd", "lz4", "zlib"])
def test_dataframe_round_trips(tmp_path, compress):
    frame = make_frame()
    path = tmp_path / "frame.cpkl"
    codecpickle.dump(frame, path, compress=compress)
    loaded = codecpickle.load(path)
    pd.testing.assert_frame_equal(loaded, frame)
    assert loaded["category"].dtype == frame["category"].dtype


def test_dataframe_with_mmap(tmp_path):
    frame = make_frame()
    path = tmp_path / "frame.cpkl"
    codecpickle.dump(frame, path)
    pd.testing.assert_frame_equal(codecpickle.load(path, mmap_mode="r"), frame)


def test_series_and_index_round_trip():
    series = pd.Series(np.arange(100_000.0), index=pd.date_range("2000", periods=100_000, freq="s"))
    pd.testing.assert_series_equal(codecpickle.loads(codecpickle.dumps(series, "zstd")), series)


@pytest.mark.parametrize("compress", [None, "zstd"])
def test_fitted_random_forest_round_trips(compress):
    rng = np.random.default_rng(0)
    features = rng.standard_normal((2000, 10))
    labels = (features[:, 0] + features[:, 1] > 0).astype(int)
    forest = sklearn_ensemble.RandomForestClassifier(n_estimators=20, random_state=0)
    forest.fit(features, labels)
    loaded = codecpickle.loads(codecpickle.dumps(forest, compress=compress))
    assert type(loaded) is type(forest)
    np.testing.assert_array_equal(loaded.predict(features), forest.predict(features))
    np.testing.assert_array_equal(
        loaded.predict_proba(features), forest.predict_proba(features)
    )
