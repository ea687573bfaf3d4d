"""Training entry point on a tiny config: it learns, it resumes, it exports a checkpoint."""

import json

import numpy as np

from medcodec.train.export import export_run
from medcodec.model.config import TEST_TINY


def _volumes():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    smooth = np.sin(xx / 6.0) * np.cos(yy / 9.0) * 800 + 1000
    return [np.stack([smooth + rng.normal(0, 5, smooth.shape) for _ in range(3)]).astype(np.float32)]


def test_train_learns_resumes_and_exports(tmp_path):
    from medcodec.train import train

    run = tmp_path / "run"
    kw = dict(batch=4, patch=32, lr=3e-3, save_every=20, volumes=_volumes(), log=lambda s: None)
    train(TEST_TINY, run, steps=40, **kw)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [20, 40]  # logged at every save
    # resume: a second call continues from step 40, not from scratch
    train(TEST_TINY, run, steps=120, **kw)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [20, 40, 50, 60, 80, 100, 120]
    # it learns: the fixed validation batch improves (measured 0.190 -> 0.179)
    assert lines[-1]["val_loss"] < 0.97 * lines[0]["val_loss"]
    saved = [r for r in lines if "val_loss" in r]
    val = [r["val_loss"] for r in saved]
    best = json.loads((run / "best.json").read_text())
    assert best["val_loss"] == min(val) and best["step"] == saved[val.index(min(val))]["step"]
    best_id = export_run(run, tmp_path / "ckpts")
    last_id = export_run(run, tmp_path / "ckpts_last", which="last")
    assert best_id.startswith("test-") and last_id.startswith("test-")
    assert (best_id == last_id) == (best["step"] == 120)
    assert (tmp_path / "ckpts" / best_id / "config.json").is_file()
