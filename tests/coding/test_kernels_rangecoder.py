"""The compiled range coder and models against the oracle: constriction's range coder and
the numpy models (tests/coding/reference) that wrote medcodec's streams before."""

import numpy as np
import pytest

from medcodec.coding import rangecoder
from medcodec.coding.kernels import rangecoder as kernel
from medcodec.errors import ContainerError

from .reference import rangecoder as reference


def _constriction(bits: np.ndarray, q: np.ndarray) -> bytes:
    code, payload = reference.bit_encoder()
    code(q.astype(np.float64) / 65536, bits.astype(bool))
    return payload()


@pytest.mark.parametrize("case", ["uniform q", "extreme q", "near one half", "against the model", "empty"])
def test_streams_equal_constriction(case):
    rng = np.random.default_rng(["uniform q", "extreme q", "near one half", "against the model", "empty"].index(case))
    for _ in range(20):
        n = 0 if case == "empty" else int(rng.integers(1, 4000))
        if case == "extreme q":
            q = rng.choice([16, 17, 65519, 65520], n)
        elif case == "near one half":
            q = rng.choice([32767, 32768, 32769], n)
        else:
            q = rng.integers(16, 65521, n)
        p1 = q / 65536
        bits = rng.random(n) < (1 - p1 if case == "against the model" else p1)
        data = rangecoder.encode_bits(bits, q)
        assert data == _constriction(bits, q)
        np.testing.assert_array_equal(rangecoder.decode_bits(data, q), bits)


def test_every_probability_and_both_symbols():
    q = np.repeat(np.arange(16, 65521), 2)
    bits = np.tile([False, True], q.size // 2)
    assert rangecoder.encode_bits(bits, q) == _constriction(bits, q)


def test_long_runs_of_improbable_symbols_carry_through_held_words():
    # symbols at p = 16/65536 against the model shrink the range by 2^12 each: the encoder's
    # inverted (carry) situation and its flush are exercised
    rng = np.random.default_rng(7)
    for _ in range(50):
        n = int(rng.integers(1, 300))
        q = rng.choice([16, 65520], n)
        bits = q == 16  # always the improbable symbol
        assert rangecoder.encode_bits(bits, q) == _constriction(bits, q)


def test_decoder_refuses_words_no_encoder_writes():
    q = np.full(200, 40000)
    with pytest.raises(ContainerError, match="does not decode"):
        rangecoder.decode_bits(np.full(8, 0xFFFFFFFF, "<u4").tobytes(), q)
    with pytest.raises(ContainerError, match="whole number of 32-bit words"):
        rangecoder.decode_bits(b"\x00" * 7, q)


def _counts(model: np.ndarray, n: int) -> np.ndarray:
    return model[4:4 + 2 * n].reshape(n, 2)


def test_model_updates_and_halving_equal_the_numpy_models():
    """Random update batches, some far over the count limit in one context (the halving
    rule's pending contexts), give the same counts and probabilities as the numpy model."""
    rng = np.random.default_rng(3)
    n = 40
    ref, model = reference.AdaptiveBits(n), kernel.new_model(n)
    for step in range(400):
        m = int(rng.choice([0, 1, 5, 300, 3000]))
        hot = rng.random() < 0.3
        ctx = np.full(m, rng.integers(n)) if hot else rng.integers(0, n, m)
        bits = rng.random(m) < rng.random()
        ref.update_at(ctx, bits)
        seen = np.stack([ctx, bits.astype(np.int64)]).astype(np.int64)
        kernel.update(model, seen, m)
        np.testing.assert_array_equal(_counts(model, n), ref.counts[0], err_msg=f"step {step}")
    everything = np.arange(n)
    q = np.array([kernel.probability(model, c) for c in everything])
    np.testing.assert_array_equal(q / 65536, ref.probabilities_at(np.zeros(n, np.intp), everything))
