"""Random training patches from real slices, normalised as the codec normalises images.

Each volume is scaled by its own min..max to [-0.5, 0.5] (exactly what the encoder does),
cut into 2D slices along all three axes, and sampled into square patches with medical
augmentation: flips, 90-degree rotations, and random intensity windows (a patch may use
only part of the dynamic range, as soft tissue does in a CT with bone and air). Patches
that are almost constant (air) are kept only with a small probability.
"""

from __future__ import annotations

import numpy as np


def normalise(volume: np.ndarray) -> np.ndarray:
    """Map a volume's own [min, max] to [-0.5, 0.5] (float32)."""
    lo, hi = float(volume.min()), float(volume.max())
    scale = 1.0 / (hi - lo) if hi > lo else 0.0
    return ((volume - lo) * scale - 0.5).astype(np.float32)


def slices_of(volume: np.ndarray, min_size: int) -> list[np.ndarray]:
    """All 2D slices along the three axes whose sides are both >= min_size."""
    out = []
    for axis in range(3):
        if volume.shape[axis] == 1:
            continue
        moved = np.moveaxis(volume, axis, 0)
        if min(moved.shape[1:]) >= min_size:
            out.extend(moved)
    if volume.shape[0] == 1 or not out:
        out.extend(s for s in volume if min(s.shape) >= min_size)
    return out


class PatchSampler:
    """Draws batches of (N, P, P, 1) float32 patches from a list of volumes."""

    def __init__(self, volumes: list[np.ndarray], patch: int, seed: int = 0,
                 flat_keep: float = 0.1, flat_std: float = 0.01):
        self.patch = patch
        self.rng = np.random.default_rng(seed)
        self.flat_keep = flat_keep
        self.flat_std = flat_std
        self.slices: list[np.ndarray] = []
        weights = []
        for v in volumes:
            s = slices_of(normalise(v), patch)
            self.slices.extend(s)
            # every volume gets equal total weight, split over its slices by area
            areas = np.array([x.size for x in s], dtype=np.float64)
            weights.extend(areas / areas.sum() if len(s) else [])
        if not self.slices:
            raise ValueError(f"no slice is at least {patch} pixels on each side")
        w = np.asarray(weights)
        self.p = w / w.sum()

    def _one(self) -> np.ndarray:
        p = self.patch
        while True:
            s = self.slices[self.rng.choice(len(self.slices), p=self.p)]
            y = self.rng.integers(0, s.shape[0] - p + 1)
            x = self.rng.integers(0, s.shape[1] - p + 1)
            patch = s[y : y + p, x : x + p]
            if patch.std() >= self.flat_std or self.rng.random() < self.flat_keep:
                break
        patch = np.rot90(patch, self.rng.integers(4))
        if self.rng.random() < 0.5:
            patch = patch[:, ::-1]
        # random intensity window: shrink and shift inside [-0.5, 0.5]
        scale = self.rng.uniform(0.3, 1.0) if self.rng.random() < 0.5 else 1.0
        patch = patch * scale
        room = 0.5 - np.abs(patch).max()
        patch = patch + self.rng.uniform(-room, room)
        return patch.astype(np.float32)

    def batch(self, n: int) -> np.ndarray:
        return np.stack([self._one() for _ in range(n)])[..., None]
