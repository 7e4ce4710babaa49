"""Sentiment labelling throughput: naive vs production vs faster paths, plus training time per epoch.

    python bench/label.py            # ~2000 test reviews, layer sweep, longer training probe
    python bench/label.py --quick    # ~300 reviews, a few training steps (≈1–2 min)
    python bench/label.py --categories   # query/product categories: zero-shot vs CategoryModel (Instacart)
    python bench/label.py --lodo         # sentiment leave-one-domain-out table (shared review sets)

Paths (same model, same texts, same run):
  naive           batch of one, fp32, unsorted, no inference_mode / no_grad
  production fp32 length-bucketed batches of 64, torch.inference_mode (bf16 autocast on CUDA)
  torch bf16      as production, bf16 autocast on the CPU (fast only where the CPU has AVX512-BF16/AMX)
  torch int8      torch.ao dynamic int8 quantisation of the Linear layers
  ONNX int8       exported, attention-fused, int8-quantised, ONNX Runtime
  student         the newest distilled model (`python -m governance.labelling.evaluate --distill 3`),
                  fp32 and ONNX int8, when one is registered
The model is --model (a registered version) or the promoted one under --models-root (else base
MiniLM with an untrained head: identical compute). Texts: the real reviews' fixed test split when available.
Balanced accuracy (1–2★ vs 4–5★) is shown per path where labels exist and the model is trained.
Other processes on the machine skew absolute numbers: the load average is printed; compare rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _texts(n: int):
    from governance.labelling.data import fixed_split, load_real_reviews, real_reviews_path
    if real_reviews_path() is not None:
        _, test = fixed_split(load_real_reviews())
        test = test.head(n)
        return test["text"].to_list(), test["rating"].to_numpy(), "real reviews (fixed test split)"
    rng = np.random.default_rng(0)
    words = "the dress fits well fabric soft love color quality poor returned small large great nice".split()
    texts = [" ".join(rng.choice(words, rng.integers(10, 80))) for _ in range(n)]
    return texts, None, "synthetic word salad (real data absent)"


def _latest_student(models_root: str):
    """The newest registered distilled sentiment model (``evaluate --distill``), promoted or not."""
    from governance.labelling.registry import ModelRegistry
    from governance.labelling.sentiment import TASK, SentimentClassifier
    reg = ModelRegistry(models_root)
    for version in reversed(reg.versions(TASK)):
        if "distilled" in reg.card(TASK, version).hyperparameters.get("setting", ""):
            return SentimentClassifier.load(reg.path(TASK, version), version=version)
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="sentiment labelling throughput")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--models-root", default="data/models")
    ap.add_argument("-n", type=int, default=None, help="texts per path")
    ap.add_argument("--model", default=None, help="a registered sentiment version (default: the promoted one)")
    ap.add_argument("--categories", action="store_true",
                    help="instead: the category benchmark (Instacart names -> aisle/department), zero-shot baseline "
                         "and CategoryModel in the same run (governance.labelling.category_bench)")
    ap.add_argument("--lodo", action="store_true",
                    help="instead: the leave-one-domain-out sentiment table over the shared review sets "
                         "(governance.labelling.lodo)")
    a = ap.parse_args(argv)
    print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other processes skew "
          f"timings)")
    if a.categories:
        from governance.labelling.category_bench import main as categories_main
        return categories_main([])
    if a.lodo:
        from governance.labelling.lodo import main as lodo_main
        return lodo_main([])
    import torch

    from governance.labelling.metrics import binary_scores
    from governance.labelling.sentiment import (
        _build_net, _param_groups, apply_calibration, config_for, untrained_classifier,
    )
    from governance.labelling.registry import ModelRegistry
    from governance.labelling.sentiment import TASK, SentimentClassifier
    from governance.labelling.workflows import load_current_sentiment

    n = a.n or (300 if a.quick else 2000)
    n_naive = min(n, 60 if a.quick else 200)
    texts, ratings, source = _texts(n)
    try:
        clf = (SentimentClassifier.load(ModelRegistry(a.models_root).path(TASK, a.model), version=a.model) if a.model
               else load_current_sentiment(a.models_root))
        model_desc = f"{clf.name} {clf.version} ({clf.config.setting})"
        trained = True
    except FileNotFoundError:
        clf = untrained_classifier()
        model_desc = "base MiniLM + untrained head"
        trained = False
    print(f"device: {clf.device}; torch threads {torch.get_num_threads()}; cpu count {os.cpu_count()}; "
          f"load average {os.getloadavg()[0]:.2f} (other processes skew absolute numbers)")
    print(f"model: {model_desc}; texts: {len(texts)} {source}\n")

    rows = []

    # naive: batch of one, fp32, no inference mode
    net = clf.net
    t0 = time.perf_counter()
    for t in texts[:n_naive]:
        enc = clf.tokenizer([t], truncation=True, max_length=clf.config.max_length, return_tensors="pt").to(clf.device)
        net(enc["input_ids"], enc["attention_mask"])
    naive = n_naive / (time.perf_counter() - t0)
    rows.append(("naive (batch 1, fp32, no inference_mode)", naive, None, n_naive))

    backends = [("production fp32 (bucketed, inference_mode)", "torch"),
                ("torch bf16 autocast (bucketed)", "torch-bf16"),
                ("torch dynamic int8 (bucketed)", "torch-int8"),
                ("ONNX Runtime int8, fused attention (bucketed)", "onnx-int8")]
    if clf.device.startswith("cuda"):
        backends = backends[:1]
    for label, backend in backends:
        try:
            clf.star_logits(texts[:16], backend=backend)  # warm-up (and one-off export/quantisation)
            t0 = time.perf_counter()
            logits = clf.star_logits(texts, backend=backend)
            speed = len(texts) / (time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001
            print(f"{label}: failed ({e})")
            continue
        bal = None
        if trained and ratings is not None:
            bal = binary_scores(ratings, apply_calibration(logits, clf.calibration))[1]
        rows.append((label, speed, bal, len(texts)))

    student = _latest_student(a.models_root)
    if student is not None:
        layers = student.net.encoder.config.num_hidden_layers
        for label, backend in ((f"distilled student {student.version}, {layers} layers, fp32", "torch"),
                               (f"distilled student {student.version}, {layers} layers, ONNX int8", "onnx-int8")):
            student.star_logits(texts[:16], backend=backend)
            t0 = time.perf_counter()
            logits = student.star_logits(texts, backend=backend)
            speed = len(texts) / (time.perf_counter() - t0)
            bal = binary_scores(ratings, apply_calibration(logits, student.calibration))[1] if ratings is not None \
                else None
            rows.append((label, speed, bal, len(texts)))
    elif not a.quick and not clf.device.startswith("cuda"):
        for layers in (4, 3):
            c = untrained_classifier(num_layers=layers)
            c.star_logits(texts[:16], backend="onnx-int8")
            t0 = time.perf_counter()
            c.star_logits(texts, backend="onnx-int8")
            rows.append((f"  (speed only) ONNX int8, first {layers} of 6 layers", len(texts) / (time.perf_counter() - t0),
                         None, len(texts)))

    print(f"{'path':<50} {'reviews/s':>10} {'× naive':>8} {'bal. acc':>9} {'n':>6}")
    print("-" * 87)
    for label, speed, bal, k in rows:
        b = f"{bal * 100:.1f}%" if bal is not None else "-"
        print(f"{label:<50} {speed:>10.1f} {speed / naive:>7.1f}× {b:>9} {k:>6}")

    # ---- training time per epoch -----------------------------------------------------------------
    print("\ntraining time per epoch (extrapolated to 16,300 reviews = the real data's training part less validation):")
    card_epochs = None
    if trained and clf.path is not None and (clf.path / "card.json").is_file():
        import json
        card = json.loads((clf.path / "card.json").read_text())
        card_epochs = card.get("notes", {}).get("epoch_seconds")
        emb = card.get("notes", {}).get("embed_seconds")
        if card_epochs:
            print(f"  recorded in the model card ({card['hyperparameters']['setting']}): "
                  + ", ".join(f"{s:.0f}s" for s in card_epochs[:5]) + (" …" if len(card_epochs) > 5 else "")
                  + (f"; one-off embedding {emb:.0f}s" if emb else ""))
    from governance.labelling.encoder import base_model_path, load_encoder, load_tokenizer
    cfg = config_for("full")
    tok = load_tokenizer(base_model_path())
    net = _build_net(load_encoder(base_model_path()), 5, 0, 0.1).to(clf.device).train()
    opt = torch.optim.AdamW(_param_groups(net, cfg))
    steps = 4 if a.quick else 15
    rng = np.random.default_rng(0)
    for bf16 in (False, True):
        t0 = time.perf_counter()
        seen = 0
        for s in range(steps):
            b = [texts[i] for i in rng.integers(0, len(texts), cfg.batch_size)]
            enc = tok(b, padding=True, truncation=True, max_length=cfg.max_length, return_tensors="pt").to(clf.device)
            with torch.autocast(clf.device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
                loss = net(enc["input_ids"], enc["attention_mask"]).float().logsumexp(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(b)
        rate = seen / (time.perf_counter() - t0)
        print(f"  full fine-tune, {'bf16 autocast' if bf16 else 'fp32'}, batch 32, ≤128 tokens (random batches): "
              f"{rate:.1f} reviews/s → {16300 / rate / 60:.1f} min/epoch ({steps} steps measured)")
    # frozen demo: one embedding pass dominates; head epochs are sub-second
    t0 = time.perf_counter()
    clf.star_logits(texts[:200], backend="torch-bf16" if not clf.device.startswith("cuda") else "torch")
    rate = 200 / (time.perf_counter() - t0)
    print(f"  demo (frozen encoder): one bf16 embedding pass {rate:.0f} reviews/s → {16300 / rate / 60:.1f} min, "
          f"then head epochs of < 1 s each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
