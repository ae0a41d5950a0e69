"""RVC's retrieval index: pull content features towards the training speaker's (faiss ``added_*.index``).

For each content frame: the 8 nearest training features (faiss returns squared L2
distances), weighted by ``1 / distance**2`` normalised per frame, averaged, then blended
``index_rate * retrieved + (1 - index_rate) * original``, as RVC does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtvc.errors import ModelLoadError

__all__ = ["RetrievalIndex"]

K_NEIGHBOURS = 8


class RetrievalIndex:
    """A loaded index plus all its vectors (RVC keeps them in memory to average neighbours)."""

    def __init__(self, index: object, vectors: np.ndarray, path: Path) -> None:
        self.index, self.vectors, self.path = index, vectors, path
        self.dim = vectors.shape[1]

    @classmethod
    def load(cls, path: str | Path, *, dim: int | None = None) -> RetrievalIndex:
        """Read a faiss index; ``dim`` (256 for v1, 768 for v2) is checked when given."""
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"index file not found: {path}")
        try:
            import faiss
        except ImportError:
            raise ModelLoadError(
                "faiss is not installed (pip install faiss-cpu); it is needed for .index files") from None
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ModelLoadError(f"index {path} is truncated or not a faiss index: {first[:200]}") from None
        if dim is not None and index.d != dim:
            raise ModelLoadError(f"index {path} holds {index.d}-d vectors; this voice's content features are {dim}-d")
        if index.ntotal == 0:
            raise ModelLoadError(f"index {path} holds no vectors (a trained_*.index); use the added_*.index file")
        try:
            vectors = index.reconstruct_n(0, index.ntotal)
        except RuntimeError as exc:
            raise ModelLoadError(f"index {path}: cannot read its vectors back: {str(exc)[:200]}") from None
        if not np.isfinite(vectors).all():
            raise ModelLoadError(f"index {path} holds non-finite vectors (corrupt file)")
        if hasattr(index, "nprobe"):
            index.nprobe = max(1, int(index.nprobe))
        return cls(index, np.ascontiguousarray(vectors, dtype=np.float32), path)

    def retrieve(self, feats: np.ndarray) -> np.ndarray:
        """Weighted average of the 8 nearest stored vectors for each row of ``feats [n, dim]``."""
        feats = np.ascontiguousarray(feats, dtype=np.float32)
        k = min(K_NEIGHBOURS, len(self.vectors))
        score, ix = self.index.search(feats, k)
        missing = ix < 0  # an IVF probe may find fewer than k neighbours
        ix = np.where(missing, 0, ix)
        weight = np.where(missing, 0.0, 1.0 / np.maximum(score, 1e-12) ** 2)
        total = weight.sum(axis=1, keepdims=True)
        weight = np.where(total > 0, weight / np.where(total > 0, total, 1.0), 0.0)
        out = np.einsum("nk,nkd->nd", weight.astype(np.float32), self.vectors[ix])
        empty = total[:, 0] <= 0
        out[empty] = feats[empty]  # nothing found: leave the frame as it was
        return out

    def blend(self, feats: np.ndarray, rate: float) -> np.ndarray:
        """``rate * retrieved + (1 - rate) * feats``; ``rate == 0`` skips the search."""
        if rate <= 0:
            return feats
        return rate * self.retrieve(feats) + (1.0 - rate) * feats
