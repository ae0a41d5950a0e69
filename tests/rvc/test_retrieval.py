"""faiss retrieval index: RVC's k=8 inverse-square-distance blend."""

from __future__ import annotations

import numpy as np
import pytest

from rtvc.errors import ModelLoadError
from rtvc.voices.rvc.retrieval import RetrievalIndex

faiss = pytest.importorskip("faiss")


def _write_index(path, vectors: np.ndarray, *, add: bool = True) -> None:
    n_ivf = max(1, min(int(16 * np.sqrt(len(vectors))), len(vectors) // 39))
    index = faiss.index_factory(vectors.shape[1], f"IVF{n_ivf},Flat")
    faiss.extract_index_ivf(index).nprobe = 1
    index.train(vectors)
    if add:
        index.add(vectors)
    faiss.write_index(index, str(path))


def test_k8_inverse_square_blend(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((400, 16)).astype(np.float32)
    _write_index(tmp_path / "added_IVF10_Flat_nprobe_1_x_v1.index", vectors)
    index = RetrievalIndex.load(tmp_path / "added_IVF10_Flat_nprobe_1_x_v1.index", dim=16)
    np.testing.assert_array_equal(np.sort(index.vectors, axis=0), np.sort(vectors, axis=0))
    queries = rng.standard_normal((5, 16)).astype(np.float32)
    score, ix = index.index.search(queries, 8)
    got = index.retrieve(queries)
    for row in range(5):
        valid = ix[row] >= 0
        d2 = ((index.vectors[ix[row][valid]] - queries[row]) ** 2).sum(axis=1)
        np.testing.assert_allclose(score[row][valid], d2, rtol=1e-4)  # faiss gives squared distances
        w = 1.0 / d2**2
        want = (index.vectors[ix[row][valid]] * (w / w.sum())[:, None]).sum(axis=0)
        np.testing.assert_allclose(got[row], want, rtol=1e-4, atol=1e-5)
    blended = index.blend(queries, 0.75)
    np.testing.assert_allclose(blended, 0.75 * got + 0.25 * queries, rtol=1e-5, atol=1e-6)
    assert index.blend(queries, 0.0) is queries


def test_exact_match_does_not_divide_by_zero(tmp_path):
    vectors = np.random.default_rng(1).standard_normal((200, 8)).astype(np.float32)
    _write_index(tmp_path / "i.index", vectors)
    index = RetrievalIndex.load(tmp_path / "i.index")
    out = index.retrieve(index.vectors[:3])
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, index.vectors[:3], atol=1e-4)


def test_bad_indexes(tmp_path):
    vectors = np.random.default_rng(2).standard_normal((100, 8)).astype(np.float32)
    _write_index(tmp_path / "trained.index", vectors, add=False)
    with pytest.raises(ModelLoadError, match="added_"):
        RetrievalIndex.load(tmp_path / "trained.index")
    _write_index(tmp_path / "ok.index", vectors)
    with pytest.raises(ModelLoadError, match="768-d"):
        RetrievalIndex.load(tmp_path / "ok.index", dim=768)
    data = (tmp_path / "ok.index").read_bytes()
    (tmp_path / "cut.index").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="cut.index"):
        RetrievalIndex.load(tmp_path / "cut.index")
