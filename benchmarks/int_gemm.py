"""Which integer GEMM is faster on this machine: integers held in float32 (the shipped
choice, exact because every partial sum stays below 2^24) or true int8 x int8 -> int32?

    python benchmarks/int_gemm.py      # prints one line per decoder layer shape

The shapes are the integer decoder's ConvLSTM GEMMs for a 512x512 slice (tiny model):
positions x K (3*3*Cin + C) x N (4C). Best of 5 warm runs of the jitted product; both
forms give the same integers (checked).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

SHAPES = [(32 * 32, 960, 384), (64 * 64, 312, 384), (128 * 128, 280, 256), (256 * 256, 176, 128)]


def best(f, *a):
    f(*a).block_until_ready()
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        f(*a).block_until_ready()
        ts.append(time.perf_counter() - t)
    return min(ts)


def main() -> None:
    rng = np.random.default_rng(0)
    f32 = jax.jit(lambda x, w: jax.lax.dot_general(x, w, (((1,), (0,)), ((), ())),
                                                   precision=jax.lax.Precision.HIGHEST,
                                                   preferred_element_type=jnp.float32).astype(jnp.int32))
    i8 = jax.jit(lambda x, w: jax.lax.dot_general(x, w, (((1,), (0,)), ((), ())),
                                                  preferred_element_type=jnp.int32))
    tot = [0.0, 0.0]
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}")
    for m, k, n in SHAPES:
        x = rng.integers(-127, 128, (m, k)).astype(np.int8)
        w = rng.integers(-127, 128, (k, n)).astype(np.int8)
        xf, wf = jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)
        xi, wi = jnp.asarray(x), jnp.asarray(w)
        assert np.array_equal(np.asarray(f32(xf, wf)), np.asarray(i8(xi, wi)))
        a, b = best(f32, xf, wf), best(i8, xi, wi)
        tot[0] += a
        tot[1] += b
        print(f"{m}x{k}x{n}: float32-held {a * 1e3:.2f} ms, int8->int32 {b * 1e3:.2f} ms ({b / a:.1f}x)")
    print(f"all four: float32-held {tot[0] * 1e3:.1f} ms, int8->int32 {tot[1] * 1e3:.1f} ms ({tot[1] / tot[0]:.1f}x)")


if __name__ == "__main__":
    main()
