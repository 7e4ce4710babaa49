"""A file-system model registry: versioned artifacts, model cards, a CURRENT pointer, guarded promotion.

Layout::

    <models_root>/<task>/<version>/     one immutable artifact per version (weights, tokenizer, ...)
    <models_root>/<task>/<version>/card.json
    <models_root>/<task>/CURRENT        the promoted version's name (one line)

Every write is atomic: a version is assembled in a temporary directory beside its final place and
renamed into place in one step (a half-written version is never visible); CURRENT is replaced with
``os.replace``. Versions are ``v0001``, ``v0002``, … in registration order.

The card records what is needed to trust and reproduce a model: metrics (with the fingerprint of
the evaluation set they were measured on), the fingerprint of the training data (sha256 of the
training texts and labels), hyper-parameters, the code version (``governance.__version__`` and the
git commit when available) and the creation time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_MODELS_ROOT = Path("data/models")
CARD_FILE = "card.json"
CURRENT_FILE = "CURRENT"
_VERSION = re.compile(r"^v(\d{4,})$")


def code_version() -> dict:
    import governance  # noqa: PLC0415
    out = {"governance": getattr(governance, "__version__", "unknown"), "git_commit": None}
    try:
        root = Path(governance.__file__).resolve().parents[1]
        r = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if r.returncode == 0:
            out["git_commit"] = r.stdout.strip()
            d = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True,
                               timeout=5)
            out["git_dirty"] = bool(d.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


@dataclass
class ModelCard:
    task: str
    model_name: str
    metrics: dict                       # e.g. {"macro_f1": 0.74, ...}
    eval_set: str | None                # fingerprint of the evaluation set the metrics were measured on
    training_data: str                  # fingerprint of the training texts + labels
    hyperparameters: dict
    base_model: str = ""
    n_train: int = 0
    notes: dict = field(default_factory=dict)
    version: str = ""
    created_at: str = ""
    code_version: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)

    @classmethod
    def from_dict(cls, d: dict) -> ModelCard:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    task: str
    candidate: str
    current: str | None             # the version that was current before the decision
    metric: str
    candidate_score: float | None
    current_score: float | None
    reason: str

    def __str__(self) -> str:
        return self.reason


class ModelRegistry:
    def __init__(self, root: Path | str = DEFAULT_MODELS_ROOT):
        self.root = Path(root)

    # ---- reading -----------------------------------------------------------------------------
    def task_dir(self, task: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", task):
            raise ValueError(f"bad task name {task!r}")
        return self.root / task

    def versions(self, task: str) -> list[str]:
        d = self.task_dir(task)
        if not d.is_dir():
            return []
        vs = [p.name for p in d.iterdir() if p.is_dir() and _VERSION.match(p.name) and (p / CARD_FILE).is_file()]
        return sorted(vs, key=lambda v: int(_VERSION.match(v).group(1)))

    def path(self, task: str, version: str) -> Path:
        p = self.task_dir(task) / version
        if not (p / CARD_FILE).is_file():
            raise KeyError(f"no version {version!r} of task {task!r} under {self.root}")
        return p

    def card(self, task: str, version: str) -> ModelCard:
        return ModelCard.from_dict(json.loads((self.path(task, version) / CARD_FILE).read_text()))

    def current(self, task: str) -> str | None:
        f = self.task_dir(task) / CURRENT_FILE
        if not f.is_file():
            return None
        v = f.read_text().strip()
        return v or None

    # ---- writing -----------------------------------------------------------------------------
    def register(self, task: str, write: Callable[[Path], object], card: ModelCard) -> str:
        """Create a new version: `write(tmp_dir)` fills the artifact, the card is added, then one rename."""
        d = self.task_dir(task)
        d.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=d))
        try:
            os.chmod(tmp, 0o755)  # mkdtemp makes it private; a model is read by other processes/users
            write(tmp)
            card.created_at = datetime.now(UTC).isoformat(timespec="seconds")
            card.code_version = card.code_version or code_version()
            card.task = task
            for _ in range(1000):
                existing = [int(_VERSION.match(p.name).group(1)) for p in d.iterdir() if _VERSION.match(p.name)]
                version = f"v{(max(existing) + 1) if existing else 1:04d}"
                card.version = version
                (tmp / CARD_FILE).write_text(card.to_json())
                try:
                    os.rename(tmp, d / version)  # atomic; fails if another writer took the name
                    return version
                except OSError:
                    if not (d / version).exists():
                        raise
            raise RuntimeError("could not allocate a version name")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def set_current(self, task: str, version: str) -> None:
        self.path(task, version)  # must exist
        d = self.task_dir(task)
        fd, tmp = tempfile.mkstemp(prefix=".CURRENT-", dir=d)
        with os.fdopen(fd, "w") as f:
            f.write(version + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, d / CURRENT_FILE)

    def promote_if_better(self, task: str, candidate: str, eval_metric: str, *, higher_is_better: bool = True,
                          min_delta: float = 0.0,
                          evaluate_current: Callable[[Path], float] | None = None) -> PromotionDecision:
        """Make `candidate` CURRENT only if it beats the current model on the fixed evaluation set.

        Both cards must carry `eval_metric` measured on the same evaluation set (same fingerprint).
        When they do not, `evaluate_current(path_of_current)` — if given — re-scores the current
        model on the candidate's evaluation set; without it the candidate is refused (the scores are
        not comparable). Ties (within `min_delta`) keep the current model.
        """
        cand = self.card(task, candidate)
        if eval_metric not in cand.metrics:
            return PromotionDecision(False, task, candidate, self.current(task), eval_metric, None, None,
                                     f"refused: candidate {candidate} has no {eval_metric!r} in its card")
        cs = float(cand.metrics[eval_metric])
        cur = self.current(task)
        if cur is None:
            self.set_current(task, candidate)
            return PromotionDecision(True, task, candidate, None, eval_metric, cs, None,
                                     f"promoted {candidate}: no current {task} model ({eval_metric} {cs:.4f})")
        if cur == candidate:
            return PromotionDecision(False, task, candidate, cur, eval_metric, cs, cs,
                                     f"{candidate} is already the current {task} model")
        cur_card = self.card(task, cur)
        same_set = cur_card.eval_set is not None and cur_card.eval_set == cand.eval_set
        if same_set and eval_metric in cur_card.metrics:
            us = float(cur_card.metrics[eval_metric])
            how = "on the same evaluation set"
        elif evaluate_current is not None:
            us = float(evaluate_current(self.path(task, cur)))
            how = "re-scored on the candidate's evaluation set"
        else:
            return PromotionDecision(False, task, candidate, cur, eval_metric, cs, None,
                                     f"kept {cur}: its {eval_metric} was measured on a different evaluation set "
                                     f"and no evaluator was given to re-score it, so {candidate} cannot be compared")
        better = (cs > us + min_delta) if higher_is_better else (cs < us - min_delta)
        arrow = "higher" if higher_is_better else "lower"
        if better:
            self.set_current(task, candidate)
            return PromotionDecision(True, task, candidate, cur, eval_metric, cs, us,
                                     f"promoted {candidate}: {eval_metric} {cs:.4f} beats current {cur} "
                                     f"{us:.4f} ({how}; {arrow} is better)")
        return PromotionDecision(False, task, candidate, cur, eval_metric, cs, us,
                                 f"kept {cur}: candidate {candidate} {eval_metric} {cs:.4f} does not beat "
                                 f"{us:.4f}{f' by more than {min_delta}' if min_delta else ''} "
                                 f"({how}; {arrow} is better)")
