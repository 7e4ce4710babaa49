"""Fine-tune only the upper transformer layers over cached lower-layer hidden states.

The lower ``n_lower`` layers (and the embeddings) stay frozen, so their output for a text never
changes: it is computed once (``inference_mode``, length-bucketed batches) and kept by content hash
(``StateCache``: sha256 of the text → the token states after layer ``n_lower``, float16, one shard
file per write under ``<model_cache>/hidden/<key>/``). Each training epoch then runs only the top
layers + the head, forward and backward: with 2 of MiniLM's 6 layers trained, an epoch costs about
one frozen forward pass instead of the three a full fine-tune costs, and the lower pass is shared
by every epoch, every leave-one-domain-out fold and every retraining on (mostly) the same reviews.

The trained network is the ordinary full encoder (its lower layers untouched), so inference, saving,
ONNX export and the registry are unchanged: ``upper_logits`` over cached states and the full
encoder over the texts give the same logits (up to the float16 rounding of the cached states).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from governance.labelling.embed_cache import text_keys
from governance.labelling.encoder import ProgressReporter, length_buckets, torch_and_transformers
from governance.labelling.training import total_steps, train_epochs

#: shards beyond this are merged into one at the next write
MAX_SHARDS = 8


def _mask4d(encoder, hidden, mask2d):
    from transformers.masking_utils import create_bidirectional_mask  # noqa: PLC0415
    return create_bidirectional_mask(config=encoder.config, inputs_embeds=hidden, attention_mask=mask2d)


def lower_forward(encoder, input_ids, attention_mask, n_lower: int):
    """Token states after the embeddings and the first ``n_lower`` layers."""
    h = encoder.embeddings(input_ids=input_ids)
    m = _mask4d(encoder, h, attention_mask)
    for layer in encoder.encoder.layer[:n_lower]:
        h = layer(h, m)
    return h


def upper_forward(encoder, hidden, attention_mask, n_lower: int):
    """The remaining layers over states from :func:`lower_forward` (last hidden state)."""
    m = _mask4d(encoder, hidden, attention_mask)
    for layer in encoder.encoder.layer[n_lower:]:
        hidden = layer(hidden, m)
    return hidden


def state_key(encoder_path: Path | str, n_lower: int, max_length: int) -> str:
    path = Path(encoder_path)
    weights = path / "model.safetensors"
    stamp = f"{weights.stat().st_size}" if weights.is_file() else "?"
    raw = f"{path.resolve()}|{stamp}|{n_lower}|{max_length}|fp32->fp16"
    return f"{path.name or 'model'}-L{n_lower}-{hashlib.sha256(raw.encode()).hexdigest()[:12]}"


class StateCache:
    """Token states by text hash under ``root/hidden/<key>``: shards of keys (sorted ``S16``), offsets,
    lengths and the concatenated float16 states. A damaged shard is ignored, never fatal."""

    def __init__(self, root: Path | str | None, key: str):
        self.dir = Path(root) / "hidden" / key if root is not None else None

    def _shards(self) -> list[Path]:
        return sorted(self.dir.glob("shard-*.npz")) if self.dir is not None and self.dir.is_dir() else []

    def lookup(self, keys: np.ndarray) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = [None] * len(keys)
        want = {k: i for i, k in enumerate(keys.tolist())}
        for shard in self._shards():
            try:
                with np.load(shard) as z:
                    sk, off, ln, st = z["keys"], z["offsets"], z["lengths"], z["states"]
            except (OSError, ValueError, KeyError):
                continue
            for j, k in enumerate(sk.tolist()):
                i = want.get(k)
                if i is not None and out[i] is None:
                    out[i] = st[off[j]:off[j] + ln[j]]
        # duplicates of a text share its states
        for i, k in enumerate(keys.tolist()):
            if out[i] is None and out[want[k]] is not None:
                out[i] = out[want[k]]
        return out

    def store(self, keys: np.ndarray, states: list[np.ndarray]) -> None:
        if self.dir is None or not len(keys):
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        shards = self._shards()
        if len(shards) >= MAX_SHARDS:  # merge everything into the new shard
            old_k, old_s = [], []
            for shard in shards:
                try:
                    with np.load(shard) as z:
                        sk, off, ln, st = z["keys"], z["offsets"], z["lengths"], z["states"]
                except (OSError, ValueError, KeyError):
                    continue
                old_k.append(sk)
                old_s.extend(st[o:o + n] for o, n in zip(off, ln))
            keys = np.concatenate([*old_k, keys])
            states = [*old_s, *states]
        keys, first = np.unique(keys, return_index=True)
        states = [states[i] for i in first]
        lengths = np.array([len(s) for s in states], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
        os.close(fd)
        with open(tmp, "wb") as f:
            np.savez(f, keys=keys, offsets=offsets, lengths=lengths,
                     states=np.concatenate(states).astype(np.float16))
        os.replace(tmp, self.dir / f"shard-{time.time_ns()}.npz")
        if len(shards) >= MAX_SHARDS:
            for shard in shards:
                shard.unlink(missing_ok=True)


def lower_states(encoder, tokenizer, texts: Sequence[str], n_lower: int, max_length: int, *,
                 cache_root: Path | str | None = None, encoder_path: Path | str | None = None,
                 batch_size: int = 64, progress=None) -> list[np.ndarray]:
    """Float16 token states (length × hidden) after layer ``n_lower`` for each text, from the cache
    where present; the missing texts go through the frozen lower layers once and are stored."""
    torch, _ = torch_and_transformers()
    texts = [t if isinstance(t, str) else "" for t in texts]
    keys = text_keys(texts)
    cache = StateCache(cache_root, state_key(encoder_path or "model", n_lower, max_length)) \
        if cache_root is not None else StateCache(None, "")
    found = cache.lookup(keys)
    missing = [i for i, s in enumerate(found) if s is None]
    if missing:
        sub = [texts[i] for i in missing]
        enc_all = tokenizer(sub, truncation=True, max_length=max_length)
        lengths = np.array([len(x) for x in enc_all["input_ids"]])
        rep = ProgressReporter(len(sub), progress, False, "lower layers")
        new: list[np.ndarray | None] = [None] * len(sub)
        encoder.eval()
        with torch.inference_mode():
            for idx in length_buckets(lengths, batch_size):
                b = tokenizer([sub[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt")
                h = lower_forward(encoder, b["input_ids"], b["attention_mask"], n_lower).float().numpy()
                for r, i in enumerate(idx):
                    new[i] = h[r, :lengths[i]].astype(np.float16)
                rep.update(len(idx))
        rep.close()
        for j, i in enumerate(missing):
            found[i] = new[j]
        uniq = {}
        for j, i in enumerate(missing):
            uniq.setdefault(keys[i], new[j])
        cache.store(np.array(list(uniq), dtype="S16"), list(uniq.values()))
    return found  # type: ignore[return-value]


def _pad(states: list[np.ndarray], idx: np.ndarray):
    torch, _ = torch_and_transformers()
    t = max(len(states[i]) for i in idx)
    d = states[idx[0]].shape[1]
    h = np.zeros((len(idx), t, d), dtype=np.float32)
    m = np.zeros((len(idx), t), dtype=np.int64)
    for r, i in enumerate(idx):
        n = len(states[i])
        h[r, :n] = states[i]
        m[r, :n] = 1
    return torch.from_numpy(h), torch.from_numpy(m)


def upper_logits(net, states: list[np.ndarray], n_lower: int, *, batch_size: int = 128) -> np.ndarray:
    """Five-star logits of the network from cached lower states (inference)."""
    torch, _ = torch_and_transformers()
    out = np.zeros((len(states), 5), dtype=np.float32)
    if not states:
        return out
    lengths = np.array([len(s) for s in states])
    net.eval()
    with torch.inference_mode():
        for idx in length_buckets(lengths, batch_size):
            h, m = _pad(states, idx)
            pooled = _pool(net, upper_forward(net.encoder, h, m, n_lower), m)
            out[idx] = net.head_logits(pooled).float().numpy()
    return out


def _pool(net, hidden, mask):
    torch, _ = torch_and_transformers()
    from governance.labelling.encoder import mean_pool  # noqa: PLC0415
    pooled = mean_pool(hidden.float(), mask)
    return torch.nn.functional.normalize(pooled, dim=-1) if getattr(net, "normalize", False) else pooled


def train_upper(net, states: list[np.ndarray], config, rng: np.random.Generator, *, loss: Callable,
                val_score: Callable[[], float], say: Callable[[str], None], progress=None
                ) -> tuple[list[float], list[dict]]:
    """Train the top ``config.train_layers`` layers + head over cached states by
    ``training.train_epochs`` (layer-wise learning-rate decay; the lower layers stay frozen).
    ``loss(logits, batch_indices)``. Returns (epoch seconds, history)."""
    layers = net.encoder.encoder.layer
    n = len(layers)
    n_lower = n - config.train_layers
    for p in net.encoder.parameters():
        p.requires_grad_(False)
    groups = [{"params": list(net.head.parameters()), "lr": config.head_lr}]
    for i in range(n_lower, n):
        for p in layers[i].parameters():
            p.requires_grad_(True)
        groups.append({"params": list(layers[i].parameters()), "lr": config.lr * config.layer_decay ** (n - 1 - i)})
    say(f"training the top {config.train_layers} layers + head over cached layer-{n_lower} states: "
        f"{len(states)} texts, {total_steps(len(states), config)} steps")

    def batch_logits(b):
        h, m = _pad(states, b)
        return net.head_logits(_pool(net, upper_forward(net.encoder, h, m, n_lower), m))

    try:
        return train_epochs(net, groups, np.array([len(s) for s in states]), config, rng, batch_logits=batch_logits,
                            loss=loss, val_score=val_score, say=say, progress=progress)
    finally:
        for p in net.encoder.parameters():
            p.requires_grad_(True)


__all__ = ["StateCache", "lower_forward", "lower_states", "state_key", "train_upper", "upper_forward",
           "upper_logits"]
