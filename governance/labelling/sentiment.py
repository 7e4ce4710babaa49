"""Review sentiment (negative / neutral / positive) on all-MiniLM-L6-v2, trained from star ratings.

Model
    MiniLM encoder → mean pooling → dropout → a head over the **five star levels**. Training targets
    are the review's star with a little ordinal smoothing (``ordinal_smoothing`` of the mass goes to
    the neighbouring stars), so "4★ vs 5★" still teaches the encoder something and a 3★ review is
    "between" 2★ and 4★ rather than an unrelated class. The three sentiment probabilities are
    sums of star probabilities (1–2★, 3★, 4–5★).
Weak labels and skew
    Stars are the (noisy) labels: 1–2★ negative, 3★ neutral, 4–5★ positive. The ~80 % positive skew
    is countered with per-example weights ``(n / (k · n_class)) ** class_weight_power``.
Post-hoc calibration (fitted on a validation split carved from the training data, never on test)
    1. a per-class log-prior shift ``bias`` (grid search maximising validation macro-F1; the decision
       rule for a skewed 3-class problem) — for the stacked default the neutral class alone, so the
       negative-vs-positive call stays the one learned on unseen shops — then
    2. temperature scaling of the shifted log-probabilities (minimising validation NLL).
    Both keep the argmax consistent with the reported probability.
Settings
    ``demo`` (the default): frozen encoder, head trained on cached embeddings, stacked
    (``combine="stack"``, ``stacking.py``) with a TF-IDF word 1–2-gram logistic regression
    (``lexical.py``) and the VADER lexicon's scores: the frozen vector says what a review is about,
    the n-grams how this shop's reviewers say how they feel, the lexicon how anyone does. The
    combination's weights are learned on out-of-group scores (each shop scored by parts trained
    without it), so on a new shop it trusts the shop-specific n-grams only as far as they carried
    over between the training shops (``lodo.py``). ``combine="blend"`` is the older fixed blend
    (``lexical_weight``).
    ``budget`` (``train-sentiment``'s default): ``full`` on at most ``own_sample`` (4,000) of the
    shop's own training reviews, so that a fine-tune that holds on other shops fits ~7 minutes.
    ``full``: full fine-tune with layer-wise learning-rate decay, length-grouped batches, bf16
    autocast where the CPU/GPU computes bf16 natively; stacked with the same TF-IDF model and lexicon,
    the combiner fitted on the validation split's scores (+1.4 points of balanced accuracy on the
    clothing file's held-out part over the network alone).
Inference
    ``torch`` backend: length bucketing + ``torch.inference_mode`` (+ bf16 autocast on CUDA);
    ``onnx-int8``: the same network exported to ONNX, attention-fused, weights dynamically
    quantised to int8, run by ONNX Runtime; ``torch-int8``: ``torch.ao`` dynamic quantisation.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from governance.labelling.encoder import (
    BASE_MODEL_NAME, Progress, ProgressReporter, base_model_path, cpu_has_bf16, export_onnx, length_buckets,
    load_encoder, load_tokenizer, mean_pool, onnx_session, onnxruntime_available, pick_device, token_lengths,
    torch_and_transformers,
)
from governance.labelling.metrics import LABELS, binary_scores, macro_f1, sentiment_report, stars_to_class
from governance.labelling.stacking import Combiner, lexicon_scores, out_of_group_folds, stack_features
from governance.labelling.training import total_steps, train_epochs

log = logging.getLogger(__name__)

MODEL_NAME = "sentiment-minilm-l6"
TASK = "sentiment"
_STAR_GROUPS = (np.array([0, 1]), np.array([2]), np.array([3, 4]))
ONNX_FILE = "model.int8.onnx"
BACKENDS = ("auto", "torch", "torch-bf16", "torch-int8", "onnx-int8")


@dataclass(frozen=True)
class SentimentConfig:
    """Hyper-parameters; recorded verbatim in the model card."""

    setting: str = "demo"
    freeze_encoder: bool = True
    epochs: int = 1                  # encoder passes (fine-tune); ignored when frozen
    head_epochs: int = 60            # passes over cached embeddings (frozen)
    batch_size: int = 32
    max_length: int = 128
    lr: float = 5e-5                 # top encoder layer; lower layers get lr * layer_decay**depth
    layer_decay: float = 0.9
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_frac: float = 0.06
    dropout: float = 0.1
    head_hidden: int = 0             # 0: linear head; >0: one hidden layer (GELU)
    normalize_pooled: bool = False   # L2-normalise the mean-pooled vector before the head
    class_weight_power: float = 0.5  # 0: no weighting, 1: fully balanced
    ordinal_smoothing: float = 0.2
    val_fraction: float = 0.1
    max_steps: int | None = None     # cap on optimizer steps (fine-tune), e.g. for a quick run
    num_layers: int | None = None    # keep only the first N encoder layers (None: all 6)
    bf16: str = "auto"               # "auto" | "on" | "off" — autocast while fine-tuning
    calibrate: bool = True
    seed: int = 0
    #: weight of the TF-IDF word-n-gram model (lexical.py) in the log-probability blend; 0 = network only
    lexical_weight: float = 0.0
    #: >0 (with freeze_encoder False): train only the top N encoder layers + head, over the lower
    #: layers' hidden states computed once and cached by content hash (``upper.py``)
    train_layers: int = 0
    #: how the frozen setting combines the head, the TF-IDF model and the lexicon: "blend" (fixed
    #: ``lexical_weight``) or "stack" (weights learned on out-of-group scores, ``stacking.py``)
    combine: str = "blend"
    #: at most this many of the shop's own training reviews (``workflows``: star levels kept in
    #: proportion, each at least a tenth of the sample): what lets a fine-tune fit a time budget
    own_sample: int | None = None


_FULL = SentimentConfig(setting="full", freeze_encoder=False, epochs=2, batch_size=32, max_length=128, lr=8e-5,
                        layer_decay=0.85, head_lr=1e-3, warmup_frac=0.06, combine="stack")
SETTINGS: dict[str, SentimentConfig] = {
    "demo": SentimentConfig(setting="demo", freeze_encoder=True, head_epochs=60, head_hidden=256, head_lr=1e-3,
                            dropout=0.1, normalize_pooled=True, combine="stack"),
    "full": _FULL,
    "budget": replace(_FULL, setting="budget", own_sample=4000),
    "upper": SentimentConfig(setting="upper", freeze_encoder=False, train_layers=2, epochs=2, batch_size=32,
                             max_length=128, lr=1e-4, layer_decay=0.85, head_lr=1e-3, warmup_frac=0.06),
}


def config_for(setting: str = "demo", **overrides) -> SentimentConfig:
    try:
        base = SETTINGS[setting]
    except KeyError:
        raise ValueError(f"unknown setting {setting!r}; use one of {sorted(SETTINGS)}") from None
    return replace(base, **overrides) if overrides else base


# --------------------------------------------------------------------------------------------------
# the network


def _build_net(encoder, n_out: int, head_hidden: int, dropout: float, normalize: bool = False):
    torch, _ = torch_and_transformers()
    nn = torch.nn
    hidden = encoder.config.hidden_size

    class SentimentNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            self.normalize = normalize
            self.dropout = nn.Dropout(dropout)
            if head_hidden:
                self.head = nn.Sequential(nn.Linear(hidden, head_hidden), nn.GELU(), nn.Dropout(dropout),
                                          nn.Linear(head_hidden, n_out))
            else:
                self.head = nn.Linear(hidden, n_out)

        def pooled(self, input_ids, attention_mask):
            h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            pooled = mean_pool(h.float(), attention_mask)
            return torch.nn.functional.normalize(pooled, dim=-1) if normalize else pooled

        def head_logits(self, pooled):
            return self.head(self.dropout(pooled.float()))

        def forward(self, input_ids, attention_mask):
            return self.head_logits(self.pooled(input_ids, attention_mask))

    return SentimentNet()


@dataclass
class Calibration:
    bias: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    temperature: float = 1.0


def star_logits_to_log3(logits: np.ndarray) -> np.ndarray:
    """Log of the three sentiment probabilities from five star logits."""
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(1, keepdims=True)
    p3 = np.stack([p[:, g].sum(1) for g in _STAR_GROUPS], 1)
    return np.log(np.clip(p3, 1e-12, 1.0))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def apply_calibration(logits: np.ndarray, cal: Calibration) -> np.ndarray:
    return apply_calibration_log3(star_logits_to_log3(logits), cal)


def apply_calibration_log3(lp: np.ndarray, cal: Calibration) -> np.ndarray:
    return _softmax((lp + np.asarray(cal.bias)) / cal.temperature)


def blend_log3(lp_net: np.ndarray, lp_lex: np.ndarray | None, weight: float) -> np.ndarray:
    """Weighted log-probability blend of the network and the lexical model, renormalised."""
    if lp_lex is None or not weight:
        return lp_net
    z = (1 - weight) * lp_net + weight * lp_lex
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def fit_calibration(logits: np.ndarray, ratings: np.ndarray) -> Calibration:
    """Prior shift for macro-F1, then temperature for NLL — both on validation data only."""
    return fit_calibration_log3(star_logits_to_log3(logits), ratings)


def fit_calibration_log3(lp: np.ndarray, ratings: np.ndarray, *, neutral_only: bool = False) -> Calibration:
    """`fit_calibration` on three-class log-probabilities (e.g. a blend). `neutral_only` shifts the
    neutral class alone, so the negative-vs-positive call (``p_negative > p_positive``) stays the
    combiner's, which was fitted on shops its parts had not seen."""
    y = stars_to_class(ratings)
    grid = np.arange(-2.0, 2.01, 0.1)
    best = (macro_f1(y, lp.argmax(1)), 0.0, 0.0)
    for b0 in ([0.0] if neutral_only else grid):
        for b1 in grid:
            f = macro_f1(y, (lp + np.array([b0, b1, 0.0])).argmax(1))
            # prefer the smallest shift among (near-)ties: less fitting to validation noise
            if f > best[0] + 1e-9 or (abs(f - best[0]) <= 1e-9 and abs(b0) + abs(b1) < abs(best[1]) + abs(best[2])):
                best = (f, float(b0), float(b1))
    bias = np.array([best[1], best[2], 0.0])
    z = lp + bias
    ts = np.exp(np.linspace(np.log(0.05), np.log(10.0), 200))
    nll = [-np.log(np.clip(_softmax(z / t)[np.arange(len(y)), y], 1e-12, None)).mean() for t in ts]
    return Calibration(bias=[round(float(b), 4) for b in bias], temperature=float(ts[int(np.argmin(nll))]))


# --------------------------------------------------------------------------------------------------
# the classifier object handed to the labelling functions


class SentimentClassifier:
    """A trained sentiment model: tokenizer + network + calibration, with several inference backends."""

    def __init__(self, net, tokenizer, config: SentimentConfig, calibration: Calibration | None = None, *,
                 device: str | None = None, name: str = MODEL_NAME, version: str = "unregistered",
                 preferred_backend: str = "torch", path: Path | None = None):
        self.net, self.tokenizer, self.config = net, tokenizer, config
        self.calibration = calibration or Calibration()
        self.device = pick_device(device)
        self.net.to(self.device).eval()
        self.name, self.version = name, version
        self.preferred_backend = preferred_backend
        self.path = path
        #: what the model reads: {"title_used": bool, "title_column": name or None, "formula": ...}
        self.input: dict = {}
        #: the TF-IDF model blended in (config.lexical_weight) or stacked, or None
        self.lexical = None
        #: the learned combination of head, TF-IDF and lexicon (config.combine == "stack"), or None
        self.combiner: Combiner | None = None
        self._int8_torch = None
        self._ort = None

    # ---- persistence -------------------------------------------------------------------------
    def save(self, directory: Path | str, *, export_onnx: bool = True) -> Path:
        torch, _ = torch_and_transformers()
        from safetensors.torch import save_file  # noqa: PLC0415
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        net = self.net.to("cpu")
        net.encoder.save_pretrained(str(d / "encoder"))
        self.tokenizer.save_pretrained(str(d / "tokenizer"))
        save_file({k: v.contiguous() for k, v in net.head.state_dict().items()}, str(d / "head.safetensors"))
        meta = {"labels": list(LABELS), "star_groups": [g.tolist() for g in _STAR_GROUPS],
                "config": asdict(self.config), "calibration": asdict(self.calibration),
                "preferred_backend": self.preferred_backend, "name": self.name, "input": self.input}
        (d / "sentiment.json").write_text(json.dumps(meta, indent=2))
        if self.lexical is not None:
            self.lexical.save(d / "lexical")
        if self.combiner is not None:
            self.combiner.save(d)
        if export_onnx:
            try:
                export_onnx_int8(self, d / ONNX_FILE)
            except Exception as e:  # noqa: BLE001 - the fast path is optional
                log.warning("ONNX int8 export skipped: %s", e)
        net.to(self.device)
        return d

    @classmethod
    def load(cls, directory: Path | str, *, device: str | None = None, version: str | None = None) -> SentimentClassifier:
        torch, _ = torch_and_transformers()
        from safetensors.torch import load_file  # noqa: PLC0415
        d = Path(directory)
        meta = json.loads((d / "sentiment.json").read_text())
        config = SentimentConfig(**meta["config"])
        encoder = load_encoder(d / "encoder")
        net = _build_net(encoder, 5, config.head_hidden, config.dropout, config.normalize_pooled)
        net.head.load_state_dict(load_file(str(d / "head.safetensors")))
        clf = cls(net, load_tokenizer(d / "tokenizer"), config, Calibration(**meta["calibration"]), device=device,
                  name=meta.get("name", MODEL_NAME), version=version or d.name,
                  preferred_backend=meta.get("preferred_backend", "torch"), path=d)
        clf.input = meta.get("input", {})
        from governance.labelling.lexical import LexicalModel  # noqa: PLC0415
        clf.lexical = LexicalModel.load(d / "lexical")
        clf.combiner = Combiner.load(d)
        if config.combine == "stack" and (clf.combiner is None or clf.lexical is None):
            raise FileNotFoundError(f"{d}: a stacked sentiment model without its combiner.json or lexical/ "
                                    f"(an incomplete copy); retrain with `governance train-sentiment`")
        return clf

    # ---- inference ---------------------------------------------------------------------------
    def resolve_backend(self, backend: str | None = "auto") -> str:
        backend = backend or "auto"
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; use one of {BACKENDS}")
        if backend != "auto":
            return backend
        if self.device.startswith("cuda"):
            return "torch"
        if self.preferred_backend == "onnx-int8" and not onnxruntime_available():
            return "torch"
        return self.preferred_backend

    def star_logits(self, texts: Sequence[str], *, batch_size: int = 64, backend: str | None = "auto",
                    progress: Progress | None = None, show_progress: bool | None = False) -> np.ndarray:
        """Raw five-star logits, computed in length buckets (sorted by token count)."""
        torch, _ = torch_and_transformers()
        backend = self.resolve_backend(backend)
        texts = [t if isinstance(t, str) else "" for t in texts]
        out = np.zeros((len(texts), 5), dtype=np.float32)
        if not texts:
            return out
        lengths = token_lengths(self.tokenizer, texts, self.config.max_length)
        rep = ProgressReporter(len(texts), progress, show_progress, "sentiment")
        if backend == "onnx-int8":
            sess = self._onnx_session()
            for idx in length_buckets(lengths, min(batch_size, 32)):
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.config.max_length, return_tensors="np")
                out[idx] = sess.run(None, {"input_ids": enc["input_ids"].astype(np.int64),
                                           "attention_mask": enc["attention_mask"].astype(np.int64)})[0]
                rep.update(len(idx))
            rep.close()
            return out
        net = self._torch_int8() if backend == "torch-int8" else self.net
        device = "cpu" if backend == "torch-int8" else self.device
        bf16 = device.startswith("cuda") or backend == "torch-bf16"
        with torch.inference_mode():
            for idx in length_buckets(lengths, batch_size):
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.config.max_length, return_tensors="pt").to(device)
                with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
                    logits = net(enc["input_ids"], enc["attention_mask"])
                out[idx] = logits.float().cpu().numpy()
                rep.update(len(idx))
        rep.close()
        return out

    def log3(self, texts: Sequence[str], logits: np.ndarray) -> np.ndarray:
        """Uncalibrated 3-class log-probabilities: the network's (from its star logits), stacked with the
        lexical model's and the lexicon's, or blended with the lexical model's when there is one."""
        texts = list(texts)
        if self.combiner is not None:
            return self.combiner.log_proba(self.stack_inputs(texts, logits))
        lex = self.lexical.log_proba(texts) if self.lexical is not None and self.config.lexical_weight else None
        return blend_log3(star_logits_to_log3(logits), lex, self.config.lexical_weight)

    def stack_inputs(self, texts: Sequence[str], logits: np.ndarray) -> np.ndarray:
        """What the combiner reads (``stacking.FEATURES``): the network's, the TF-IDF model's and the lexicon's
        scores of `texts`."""
        texts = list(texts)
        return stack_features(star_logits_to_log3(logits), self.lexical.log_proba(texts), lexicon_scores(texts))

    def predict_proba(self, texts: Sequence[str], **kwargs) -> np.ndarray:
        """Calibrated (negative, neutral, positive) probabilities, shape (n, 3)."""
        texts = [t if isinstance(t, str) else "" for t in texts]
        return apply_calibration_log3(self.log3(texts, self.star_logits(texts, **kwargs)), self.calibration)

    def predict(self, texts: Sequence[str], **kwargs) -> list[str]:
        return [LABELS[i] for i in self.predict_proba(texts, **kwargs).argmax(1)]

    def _torch_int8(self):
        if self._int8_torch is None:
            torch, _ = torch_and_transformers()
            import warnings  # noqa: PLC0415
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._int8_torch = torch.ao.quantization.quantize_dynamic(
                    copy.deepcopy(self.net).to("cpu").eval(), {torch.nn.Linear}, dtype=torch.qint8)
        return self._int8_torch

    def _onnx_session(self):
        if self._ort is None:
            path = self.path / ONNX_FILE if self.path is not None else None
            if path is None or not path.is_file():
                tmp = Path(tempfile.mkdtemp(prefix="sentiment-onnx-"))
                path = export_onnx_int8(self, tmp / ONNX_FILE)
            torch, _ = torch_and_transformers()
            self._ort = onnx_session(path, torch.get_num_threads())
        return self._ort


def export_onnx_int8(clf: SentimentClassifier, target: Path) -> Path:
    """The classifier's star logits as fused, int8-quantised ONNX (the encoder module's one export path)."""
    return export_onnx(clf.net, clf.tokenizer, target, output_name="star_logits", int8=True)


# --------------------------------------------------------------------------------------------------
# training


@dataclass
class TrainedSentiment:
    classifier: SentimentClassifier
    config: SentimentConfig
    validation: dict                  # figures on the validation split (calibrated, production backend)
    epoch_seconds: list[float]        # wall time of each training epoch (encoder passes, or head epochs)
    embed_seconds: float              # frozen setting: time to embed the training data once
    history: list[dict]
    n_train: int
    n_val: int
    backend_check: dict = field(default_factory=dict)


def _soft_targets(stars: np.ndarray, smoothing: float) -> np.ndarray:
    n = len(stars)
    t = np.zeros((n, 5), dtype=np.float32)
    s = stars - 1
    t[np.arange(n), s] = 1.0 - smoothing
    lo, hi = s - 1, s + 1
    has_lo, has_hi = lo >= 0, hi <= 4
    both = has_lo & has_hi
    t[np.arange(n)[both], lo[both]] += smoothing / 2
    t[np.arange(n)[both], hi[both]] += smoothing / 2
    t[np.arange(n)[~has_lo], hi[~has_lo]] += smoothing
    t[np.arange(n)[~has_hi], lo[~has_hi]] += smoothing
    return t


def weighted_star_loss(logits, targets, weights):
    """Cross-entropy of five-star logits against soft star targets, weighted per example."""
    torch, _ = torch_and_transformers()
    return (-(targets * torch.log_softmax(logits, -1)).sum(-1) * weights).sum() / weights.sum()


def class_weights(ratings: np.ndarray, power: float) -> np.ndarray:
    y = stars_to_class(ratings)
    counts = np.bincount(y, minlength=3).astype(float)
    w = np.where(counts > 0, len(y) / (3 * np.maximum(counts, 1)), 0.0) ** power
    return w[y].astype(np.float32)


def split_validation(texts: Sequence[str], ratings: np.ndarray, fraction: float, seed: int):
    from sklearn.model_selection import train_test_split  # noqa: PLC0415
    idx = np.arange(len(texts))
    strat = ratings if np.bincount(ratings).min(initial=len(ratings)) >= 2 and len(set(ratings)) > 1 else None
    try:
        tr, va = train_test_split(idx, test_size=fraction, random_state=seed, stratify=strat)
    except ValueError:
        tr, va = train_test_split(idx, test_size=fraction, random_state=seed)
    return np.sort(tr), np.sort(va)


def _use_bf16(config: SentimentConfig, device: str) -> bool:
    if config.bf16 == "on":
        return True
    if config.bf16 == "off":
        return False
    return device.startswith("cuda") or cpu_has_bf16()


def train_sentiment(texts: Sequence[str], ratings, config: SentimentConfig | str = "demo", *,
                    val_texts: Sequence[str] | None = None, val_ratings=None, device: str | None = None,
                    progress: Progress | None = None, log_fn: Callable[[str], None] | None = None,
                    check_backends: bool = True, precomputed: np.ndarray | None = None,
                    cache_dir: Path | str | None = None, groups: Sequence[str] | None = None) -> TrainedSentiment:
    """Train on (text, star) pairs; validation is carved from the training data unless given.

    `precomputed` (frozen setting only): the encoder's pooled vectors of `texts`, as the network's
    ``pooled`` computes them under bf16 autocast (e.g. a cache shared with the frozen baseline). The
    head is then trained and calibrated on them, and the model's production backend is
    ``torch-bf16`` — the path that reproduces them.
    `cache_dir` (``Settings.model_cache``; the ``upper`` setting): the frozen lower layers' hidden
    states are kept there by content hash.
    `groups` (the ``stack`` combiner): each text's shop or source, so that the combiner learns from
    scores on shops the scoring parts did not see; without it, hashed folds.
    """
    torch, _ = torch_and_transformers()
    say = log_fn or log.info
    if isinstance(config, str):
        config = config_for(config)
    texts = [t if isinstance(t, str) else "" for t in texts]
    ratings = np.asarray(ratings, dtype=np.int64)
    pre_val = None
    if config.combine not in ("blend", "stack"):
        raise ValueError(f"unknown combine {config.combine!r}; use 'blend' or 'stack'")
    present = sorted(set(stars_to_class(ratings).tolist()))
    if len(present) < 2:
        raise ValueError(f"all {len(texts):,} rated reviews are {LABELS[present[0]] if present else 'missing'}: a "
                         f"sentiment model needs reviews of at least two of negative (1–2★), neutral (3★) and "
                         f"positive (4–5★)")
    if groups is not None and len(groups) != len(texts):
        raise ValueError(f"groups has {len(groups)} entries for {len(texts)} texts")
    if precomputed is not None and (not config.freeze_encoder or val_texts is not None):
        raise ValueError("precomputed pooled vectors need the frozen setting and a carved validation split")
    if val_texts is None:
        tr, va = split_validation(texts, ratings, config.val_fraction, config.seed)
        val_texts, val_ratings = [texts[i] for i in va], ratings[va]
        texts, ratings = [texts[i] for i in tr], ratings[tr]
        groups = None if groups is None else [groups[i] for i in tr]
        if precomputed is not None:
            precomputed, pre_val = precomputed[tr], precomputed[va]
    val_ratings = np.asarray(val_ratings, dtype=np.int64)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = pick_device(device)
    path = base_model_path()
    tokenizer = load_tokenizer(path)
    encoder = load_encoder(path, num_layers=config.num_layers)
    net = _build_net(encoder, 5, config.head_hidden, config.dropout, config.normalize_pooled).to(device)
    targets = torch.tensor(_soft_targets(ratings, config.ordinal_smoothing))
    weights = torch.tensor(class_weights(ratings, config.class_weight_power))
    history: list[dict] = []
    epoch_seconds: list[float] = []
    embed_seconds = 0.0
    clf = SentimentClassifier(net, tokenizer, config, device=device)

    def val_logits() -> np.ndarray:
        return clf.star_logits(val_texts, backend="torch")

    def val_score(logits: np.ndarray) -> float:
        return macro_f1(stars_to_class(val_ratings), star_logits_to_log3(logits).argmax(1))

    if config.freeze_encoder:
        # embed once (frozen), then train the head on the cached pooled vectors
        for p in net.encoder.parameters():
            p.requires_grad_(False)
        t0 = time.perf_counter()
        if precomputed is not None:
            pooled, pooled_val = torch.tensor(precomputed), torch.tensor(pre_val)
        else:
            pooled = torch.tensor(_pooled(clf, texts, progress))
            pooled_val = torch.tensor(_pooled(clf, val_texts, None))
        embed_seconds = time.perf_counter() - t0
        say(f"embedded {len(texts)} train + {len(val_texts)} val texts in {embed_seconds:.1f}s")
        best_score, history, epoch_seconds = _fit_head(net, pooled, targets, weights, pooled_val, val_score, config,
                                                       device)
        say(f"head trained {config.head_epochs} epochs, best val macro-F1 {best_score:.3f}")
        net.eval()
        if precomputed is not None:  # the production path is then the bf16 one that made the cache
            with torch.inference_mode():
                logits_val = net.head_logits(pooled_val.to(device)).float().cpu().numpy()
            clf.preferred_backend = "torch-bf16" if cpu_has_bf16() else "torch"
        else:
            logits_val = val_logits()  # through the fp32 inference path, as at labelling time
    elif config.train_layers:
        from governance.labelling.upper import lower_states, train_upper, upper_logits  # noqa: PLC0415
        n_lower = len(net.encoder.encoder.layer) - config.train_layers
        t0 = time.perf_counter()
        states = lower_states(net.encoder, tokenizer, texts, n_lower, config.max_length, cache_root=cache_dir,
                              encoder_path=path, progress=progress)
        states_val = lower_states(net.encoder, tokenizer, val_texts, n_lower, config.max_length,
                                  cache_root=cache_dir, encoder_path=path)
        embed_seconds = time.perf_counter() - t0
        say(f"lower {n_lower} layers: states of {len(texts)} train + {len(val_texts)} val texts in "
            f"{embed_seconds:.1f}s (cached by content hash)")

        def star_loss(logits, batch):
            return weighted_star_loss(logits, targets[batch].to(device), weights[batch].to(device))

        epoch_seconds, history = train_upper(
            net, states, config, rng, loss=star_loss, say=say, progress=progress,
            val_score=lambda: val_score(upper_logits(net, states_val, n_lower)))
        logits_val = upper_logits(net, states_val, n_lower)
    else:
        def star_loss(logits, batch):
            return weighted_star_loss(logits, targets[batch].to(device), weights[batch].to(device))

        epoch_seconds, history = fine_tune(net, tokenizer, texts, config, device, rng, loss=star_loss,
                                           val_score=lambda: val_score(val_logits()), say=say, progress=progress)
        logits_val = val_logits()

    if config.lexical_weight or config.combine == "stack":
        from governance.labelling.lexical import LexicalModel  # noqa: PLC0415
        t0 = time.perf_counter()
        clf.lexical = LexicalModel.fit(texts, stars_to_class(ratings))
        how = "stacked" if config.combine == "stack" else f"blended with weight {config.lexical_weight}"
        say(f"lexical model (TF-IDF 1–2-grams, {len(clf.lexical.vocabulary):,} terms) fitted in "
            f"{time.perf_counter() - t0:.1f}s; {how}")
    if config.combine == "stack" and config.freeze_encoder:
        clf.combiner = _fit_combiner(net.encoder, pooled, texts, ratings, groups, targets, weights, pooled_val,
                                     val_score, config, device, say)
    elif config.combine == "stack":  # an encoder trained once per group is too dear: the validation split's scores
        clf.combiner = Combiner.fit(clf.stack_inputs(val_texts, logits_val), stars_to_class(val_ratings))
        say(f"combiner fitted on the validation split's scores ({len(val_texts):,} reviews)")
    lp_val = clf.log3(val_texts, logits_val)
    if config.calibrate:
        clf.calibration = fit_calibration_log3(lp_val, val_ratings, neutral_only=config.combine == "stack")
        say(f"calibration: bias {clf.calibration.bias}, temperature {clf.calibration.temperature:.3f}")
    proba_val = apply_calibration_log3(lp_val, clf.calibration)
    validation = sentiment_report(val_ratings, proba_val)
    backend_check = {}
    if check_backends and not device.startswith("cuda"):
        backend_check = choose_fast_backend(clf, val_texts, val_ratings, proba_val, log_fn=say)
    return TrainedSentiment(classifier=clf, config=config, validation=validation, epoch_seconds=epoch_seconds,
                            embed_seconds=embed_seconds, history=history, n_train=len(texts), n_val=len(val_texts),
                            backend_check=backend_check)


def _fit_head(net, pooled, targets, weights, pooled_val, val_score, config: SentimentConfig, device: str):
    """Train the head over cached pooled vectors; keep the epoch with the best validation score.
    Returns (best score, history, seconds per epoch)."""
    torch, _ = torch_and_transformers()
    opt = torch.optim.AdamW(net.head.parameters(), lr=config.head_lr, weight_decay=config.weight_decay)
    n = len(pooled)
    bs = max(64, config.batch_size * 8)
    best = (-1.0, None)
    history, epoch_seconds = [], []
    threads = torch.get_num_threads()
    # tiny matrices: one thread is ~20x faster than two when the CPU is shared (no spin-waiting)
    torch.set_num_threads(1)
    try:
        for ep in range(config.head_epochs):
            t0 = time.perf_counter()
            net.train()
            perm = torch.randperm(n)
            total = 0.0
            for i in range(0, n, bs):
                b = perm[i:i + bs]
                logp = torch.log_softmax(net.head_logits(pooled[b].to(device)), -1)
                loss = (-(targets[b].to(device) * logp).sum(-1) * weights[b].to(device)).sum() / weights[b].sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(b)
            net.eval()
            with torch.inference_mode():
                vl = net.head_logits(pooled_val.to(device)).float().cpu().numpy()
            score = val_score(vl)
            epoch_seconds.append(time.perf_counter() - t0)
            history.append({"epoch": ep + 1, "loss": total / n, "val_macro_f1": score})
            if score > best[0]:
                best = (score, copy.deepcopy(net.head.state_dict()))
    finally:
        torch.set_num_threads(threads)
    net.head.load_state_dict(best[1])
    net.eval()
    return best[0], history, epoch_seconds


def _fit_combiner(encoder, pooled, texts: list[str], ratings: np.ndarray, groups, targets, weights, pooled_val,
                  val_score, config: SentimentConfig, device: str, say) -> Combiner:
    """The ``stack`` combiner (``stacking.py``): each training text scored by a head and a TF-IDF model
    trained without its group, then a balanced logistic regression over those scores and the lexicon's."""
    torch, _ = torch_and_transformers()
    from governance.labelling.lexical import LexicalModel  # noqa: PLC0415
    t0 = time.perf_counter()
    y3 = stars_to_class(ratings)
    net_oof, lex_oof = np.zeros((len(texts), 3)), np.zeros((len(texts), 3))
    folds = out_of_group_folds(groups, texts)
    kind = "groups" if groups is not None and len(set(groups)) >= 2 else "hashed folds"
    say(f"combiner: scoring {len(folds)} {kind} of the training part, each by a head and a TF-IDF model trained "
        f"without it")
    for i, (name, held) in enumerate(folds):
        t1 = time.perf_counter()
        keep = ~held
        torch.manual_seed(config.seed)
        fold_net = _build_net(encoder, 5, config.head_hidden, config.dropout, config.normalize_pooled).to(device)
        keep_t, held_t = torch.from_numpy(keep), torch.from_numpy(held)
        _fit_head(fold_net, pooled[keep_t], targets[keep_t], weights[keep_t], pooled_val, val_score, config, device)
        with torch.inference_mode():
            net_oof[held] = star_logits_to_log3(fold_net.head_logits(pooled[held_t].to(device)).float().cpu().numpy())
        kept = [t for t, k in zip(texts, keep) if k]
        lex_oof[held] = LexicalModel.fit(kept, y3[keep]).log_proba([t for t, h in zip(texts, held) if h])
        say(f"  {name} ({int(held.sum()):,} reviews) scored in "
            f"{time.perf_counter() - t1:.1f}s ({i + 1}/{len(folds)})")
    combiner = Combiner.fit(stack_features(net_oof, lex_oof, lexicon_scores(texts)), y3)
    say(f"combiner fitted on out-of-group scores ({len(folds)} {kind}) in "
        f"{time.perf_counter() - t0:.1f}s")
    return combiner


def fine_tune(net, tokenizer, texts: Sequence[str], config: SentimentConfig, device: str, rng: np.random.Generator,
              *, loss: Callable, val_score: Callable[[], float], say: Callable[[str], None],
              progress: Progress | None = None) -> tuple[list[float], list[dict]]:
    """The whole encoder and head trained (fine-tuning and distillation) by ``training.train_epochs``:
    texts tokenised per length-grouped batch, bf16 autocast where it pays, layer-wise learning-rate
    decay. ``loss(logits, batch_indices)`` gets fp32 five-star logits. Returns (epoch seconds, history)."""
    torch, _ = torch_and_transformers()
    lengths = token_lengths(tokenizer, texts, config.max_length)
    bf16 = _use_bf16(config, device)
    say(f"fine-tuning: {len(texts)} texts, {math.ceil(len(texts) / config.batch_size)} steps/epoch, "
        f"{total_steps(len(texts), config)} steps, bf16={bf16}, device={device}")

    def batch_logits(b):
        enc = tokenizer([texts[i] for i in b], padding=True, truncation=True, max_length=config.max_length,
                        return_tensors="pt").to(device)
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            return net(enc["input_ids"], enc["attention_mask"])

    return train_epochs(net, _param_groups(net, config), lengths, config, rng, batch_logits=batch_logits,
                        loss=loss, val_score=val_score, say=say, progress=progress)


def choose_fast_backend(clf: SentimentClassifier, val_texts, val_ratings, proba_fp32: np.ndarray, *,
                        max_drop_points: float = 0.5, log_fn: Callable[[str], None] | None = None) -> dict:
    """Use the int8 path in production only if validation balanced accuracy drops ≤ `max_drop_points`."""
    say = log_fn or log.info
    _, bal32 = binary_scores(val_ratings, proba_fp32)
    out = {"fp32_balanced_accuracy": bal32}
    if not onnxruntime_available():
        out["onnx-int8"] = "onnxruntime not installed"
        return out
    try:
        p8 = clf.predict_proba(val_texts, backend="onnx-int8")
    except Exception as e:  # noqa: BLE001
        out["onnx-int8"] = f"export failed: {e}"
        say(f"int8 path unavailable: {e}")
        return out
    _, bal8 = binary_scores(val_ratings, p8)
    out["int8_balanced_accuracy"] = bal8
    out["agreement"] = float((p8.argmax(1) == proba_fp32.argmax(1)).mean())
    ok = np.isnan(bal32) or (bal32 - bal8) * 100 <= max_drop_points
    if ok:
        clf.preferred_backend = "onnx-int8"
    out["chosen"] = clf.preferred_backend
    say(f"int8 check on validation: balanced acc fp32 {bal32:.4f} vs int8 {bal8:.4f}, "
        f"agreement {out['agreement']:.4f} → production backend {clf.preferred_backend}")
    return out


def _pooled(clf: SentimentClassifier, texts: Sequence[str], progress: Progress | None) -> np.ndarray:
    torch, _ = torch_and_transformers()
    out = np.zeros((len(texts), clf.net.encoder.config.hidden_size), dtype=np.float32)
    lengths = token_lengths(clf.tokenizer, texts, clf.config.max_length)
    rep = ProgressReporter(len(texts), progress, False, "embed")
    cuda = clf.device.startswith("cuda")
    bf16 = (cuda or cpu_has_bf16()) if clf.config.bf16 == "auto" else clf.config.bf16 == "on"
    clf.net.eval()
    with torch.inference_mode():
        for idx in length_buckets(lengths, 64):
            enc = clf.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                max_length=clf.config.max_length, return_tensors="pt").to(clf.device)
            with torch.autocast(clf.device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
                p = clf.net.pooled(enc["input_ids"], enc["attention_mask"])
            out[idx] = p.float().cpu().numpy()
            rep.update(len(idx))
    rep.close()
    return out


def _param_groups(net, config: SentimentConfig) -> list[dict]:
    """Layer-wise learning-rate decay: top layer `lr`, each layer below ×`layer_decay`, embeddings lowest."""
    layers = net.encoder.encoder.layer
    n = len(layers)
    groups = [{"params": list(net.head.parameters()), "lr": config.head_lr}]
    for i, layer in enumerate(layers):
        groups.append({"params": list(layer.parameters()), "lr": config.lr * config.layer_decay ** (n - 1 - i)})
    groups.append({"params": list(net.encoder.embeddings.parameters()), "lr": config.lr * config.layer_decay ** n})
    rest = [p for name, p in net.encoder.named_parameters()
            if not name.startswith(("encoder.layer", "embeddings"))]
    if rest:
        groups.append({"params": rest, "lr": config.lr})
    return groups


def untrained_classifier(*, num_layers: int | None = None, device: str | None = None) -> SentimentClassifier:
    """Base MiniLM + a randomly initialised head: same compute as a trained model (for benchmarks)."""
    torch, _ = torch_and_transformers()
    torch.manual_seed(0)
    path = base_model_path()
    config = config_for("demo", num_layers=num_layers)
    net = _build_net(load_encoder(path, num_layers=num_layers), 5, config.head_hidden, config.dropout,
                     config.normalize_pooled)
    return SentimentClassifier(net, load_tokenizer(path), config, device=device, version="untrained")


__all__ = ["BASE_MODEL_NAME", "Calibration", "MODEL_NAME", "SETTINGS", "SentimentClassifier", "SentimentConfig",
           "TrainedSentiment", "apply_calibration", "apply_calibration_log3", "blend_log3", "config_for",
           "fit_calibration", "fit_calibration_log3", "train_sentiment"]
