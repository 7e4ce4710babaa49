"""Sentence embeddings cached by content hash (``settings.model_cache``/embeddings/<embedder key>/).

A text's vector is stored under the first 16 bytes of ``sha256(text)``, in shard files of
``keys`` (sorted, ``S16``) and ``vectors``; a lookup is one ``np.searchsorted`` per shard, and only
the texts no shard holds go through the encoder (then written as one new shard). The key of the
embedder (model files, max length, backend, precision, normalisation) names the directory, so a
vector is only ever reused by the computation that made it. Shards are written atomically
(temporary file, then ``os.replace``), so concurrent writers never leave a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: shards beyond this are merged into one at the next write
MAX_SHARDS = 16


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """First 16 bytes of sha256 of each text (``S16`` array)."""
    return np.array([hashlib.sha256((t or "").encode("utf-8", "surrogatepass")).digest()[:16] for t in texts],
                    dtype="S16")


def embedder_key(embedder) -> str:
    """A directory name that changes whenever the vectors would (weights, length, backend, precision)."""
    path = Path(getattr(embedder, "path", "model"))
    weights = path / "model.safetensors"
    stamp = f"{weights.stat().st_size}" if weights.is_file() else "?"
    raw = (f"{path.resolve()}|{stamp}|{getattr(embedder, 'max_length', '?')}|{getattr(embedder, 'backend', '?')}|"
           f"{getattr(embedder, 'bf16', '?')}")
    return f"{path.name or 'model'}-{hashlib.sha256(raw.encode()).hexdigest()[:12]}"


class EmbeddingCache:
    """Vectors of texts under ``root/<key>``; ``encode(embedder, texts)`` fills what is missing."""

    def __init__(self, root: Path | str, chunk: int = 2048):
        self.root = Path(root)
        self.chunk = chunk

    def _dir(self, key: str) -> Path:
        return self.root / "embeddings" / key

    def _shards(self, key: str) -> list[Path]:
        d = self._dir(key)
        return sorted(d.glob("shard-*.npz")) if d.is_dir() else []

    def lookup(self, key: str, keys: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, found mask) for ``keys`` (``S16``)."""
        out = np.zeros((len(keys), dim), dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        for shard in self._shards(key):
            try:
                with np.load(shard) as z:
                    sk, sv = z["keys"], z["vectors"]
            except (OSError, ValueError, KeyError):  # a damaged shard is ignored, never fatal
                continue
            if not len(sk) or sv.shape[1] != dim:
                continue
            pos = np.clip(np.searchsorted(sk, keys), 0, len(sk) - 1)
            hit = (sk[pos] == keys) & ~found
            out[hit] = sv[pos[hit]]
            found |= hit
            if found.all():
                break
        return out, found

    def store(self, key: str, keys: np.ndarray, vectors: np.ndarray) -> None:
        if not len(keys):
            return
        d = self._dir(key)
        d.mkdir(parents=True, exist_ok=True)
        shards = self._shards(key)
        if len(shards) >= MAX_SHARDS:  # merge the old shards with the new vectors into one
            parts_k, parts_v = [keys], [vectors]
            for s in shards:
                try:
                    with np.load(s) as z:
                        parts_k.append(z["keys"])
                        parts_v.append(z["vectors"])
                except (OSError, ValueError, KeyError):
                    pass
            keys, vectors = np.concatenate(parts_k), np.concatenate(parts_v)
        keys, first = np.unique(keys, return_index=True)
        vectors = vectors[first].astype(np.float32)
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".npz.tmp")
        os.close(fd)
        with open(tmp, "wb") as f:
            np.savez(f, keys=keys, vectors=vectors)
        digest = hashlib.sha256(keys.tobytes()).hexdigest()[:16]
        os.replace(tmp, d / f"shard-{digest}.npz")
        if len(shards) >= MAX_SHARDS:
            for s in shards:
                if s.name != f"shard-{digest}.npz":
                    s.unlink(missing_ok=True)

    def encode(self, embedder, texts: Sequence[str], *, key: str | None = None, progress=None,
               **encode_kwargs) -> np.ndarray:
        """``embedder.encode(texts)``, reading what the cache holds and storing what it computed."""
        texts = [t if isinstance(t, str) else "" for t in texts]
        key = key or embedder_key(embedder) + ("" if encode_kwargs.get("normalize", True) else "-raw")
        keys = text_keys(texts)
        dim = int(getattr(embedder, "dim", 384))
        out, found = self.lookup(key, keys, dim)
        miss = np.flatnonzero(~found)
        if len(miss):
            uniq, inverse = np.unique(keys[miss], return_inverse=True)
            first = np.zeros(len(uniq), dtype=np.int64)
            first[inverse[::-1]] = miss[::-1]
            vecs = np.zeros((len(uniq), dim), dtype=np.float32)
            done = int(found.sum())
            # in chunks, each stored at once: an interrupted run keeps what it computed
            for s in range(0, len(uniq), self.chunk):
                part = slice(s, s + self.chunk)
                base = done + s

                def sub(d: int, _t: int, base=base) -> None:
                    if progress is not None:
                        progress(base + d, len(texts))

                vecs[part] = embedder.encode([texts[i] for i in first[part]], progress=sub, **encode_kwargs)
                self.store(key, uniq[part], vecs[part])
            out[miss] = vecs[inverse]
        elif progress is not None:
            progress(len(texts), len(texts))
        return out


def cached_encode(embedder, texts: Sequence[str], cache_dir: Path | str | None, **kwargs) -> np.ndarray:
    """Encode through the cache under ``cache_dir`` (``Settings.model_cache``), or directly when None."""
    if cache_dir is None:
        return embedder.encode(list(texts), **kwargs)
    return EmbeddingCache(cache_dir).encode(embedder, texts, **kwargs)
