"""Training entry point on a tiny config: it learns, it resumes, it exports a checkpoint."""

import json

import numpy as np

from medcodec import checkpoint
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
    assert [r["step"] for r in lines] == [40]
    # resume: a second call continues from step 40, not from scratch
    train(TEST_TINY, run, steps=120, **kw)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [40, 50, 100, 120]
    assert lines[-1]["loss"] < 0.85 * lines[0]["loss"]  # it learns (measured: 0.19 -> 0.15)
    model_id = checkpoint.export_run(run, tmp_path / "ckpts")
    assert model_id.startswith("test-")
    assert (tmp_path / "ckpts" / model_id / "config.json").is_file()
