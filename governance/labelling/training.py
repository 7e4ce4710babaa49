"""The one training loop of the sentiment network, whatever it trains: the whole encoder (fine-tuning,
distillation — ``sentiment.fine_tune``) or only its top layers over cached lower-layer states
(``upper.train_upper``). The callers differ in what a batch's logits are and which parameters learn;
the schedule, clipping, validation and best-epoch selection are here once."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from governance.labelling.encoder import (
    Progress,
    ProgressReporter,
    torch_and_transformers,
)


def length_grouped_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle, sort within chunks of 50 batches by length, cut into batches, shuffle the batches."""
    perm = rng.permutation(len(lengths))
    chunk = batch_size * 50
    batches = []
    for i in range(0, len(perm), chunk):
        part = perm[i:i + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[j:j + batch_size] for j in range(0, len(part), batch_size))
    order = rng.permutation(len(batches))
    return [batches[k] for k in order]


def train_epochs(net, groups: list[dict], lengths: np.ndarray, config, rng: np.random.Generator, *,
                 batch_logits: Callable, loss: Callable, val_score: Callable[[], float],
                 say: Callable[[str], None], progress: Progress | None = None) -> tuple[list[float], list[dict]]:
    """Train the parameters in ``groups`` (AdamW param groups with their learning rates) for
    ``config.epochs`` (capped at ``config.max_steps``): length-grouped batches, linear warm-up then
    linear decay to 0, gradient clipping at 1; after each epoch ``val_score()``, and the best epoch's
    weights are kept. ``batch_logits(batch_indices)`` gives a batch's five-star logits,
    ``loss(logits, batch_indices)`` its loss. Returns (epoch seconds, history)."""
    torch, _ = torch_and_transformers()
    opt = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    trained = [p for g in groups for p in g["params"]]
    total = total_steps(len(lengths), config)
    warm = max(1, int(config.warmup_frac * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    rep = ProgressReporter(total * config.batch_size, progress, False, "train")
    step, best = 0, (-1.0, None, -1)
    epoch_seconds: list[float] = []
    history: list[dict] = []
    for ep in range(config.epochs):
        if step >= total:
            break
        t0 = time.perf_counter()
        net.train()
        run_loss, seen = 0.0, 0
        for b in length_grouped_batches(lengths, config.batch_size, rng):
            if step >= total:
                break
            batch_loss = loss(batch_logits(b).float(), torch.as_tensor(b))
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            opt.step()
            sched.step()
            step += 1
            run_loss += batch_loss.item() * len(b)
            seen += len(b)
            rep.update(len(b))
            if step % 50 == 0:
                say(f"epoch {ep + 1} step {step}/{total} loss {run_loss / seen:.4f} "
                    f"{seen / (time.perf_counter() - t0):.1f} texts/s")
        secs = time.perf_counter() - t0
        net.eval()
        score = val_score()
        epoch_seconds.append(secs)
        history.append({"epoch": ep + 1, "steps": step, "loss": run_loss / max(seen, 1), "val_macro_f1": score,
                        "seconds": secs, "texts_per_second": seen / secs})
        say(f"epoch {ep + 1}: {secs:.0f}s ({seen / secs:.1f} texts/s), loss {run_loss / max(seen, 1):.4f}, "
            f"val macro-F1 (uncalibrated) {score:.3f}")
        if score > best[0]:
            best = (score, {k: v.detach().clone() for k, v in net.state_dict().items()}, ep + 1)
    rep.close()
    if best[1] is not None:
        net.load_state_dict(best[1])
        say(f"kept epoch {best[2]} (best validation macro-F1 {best[0]:.3f})")
    net.eval()
    return epoch_seconds, history


def total_steps(n: int, config) -> int:
    """Optimizer steps ``train_epochs`` takes over ``n`` examples."""
    steps = math.ceil(n / config.batch_size) * config.epochs
    return min(steps, config.max_steps) if config.max_steps else steps
