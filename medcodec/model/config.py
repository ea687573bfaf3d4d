"""Architecture configuration of the recurrent residual codec.

A :class:`CodecConfig` fully describes the network: it is stored as JSON next to every
checkpoint, so a model is rebuilt from disk without guessing. Spatial layout (2D, NHWC):

encoder  x (H, W, 1) -> conv s2 (stem) -> ConvLSTM s2 ... -> 1x1 conv -> sign -> bits
         (H/F, W/F, bits) with F = 2 ** (1 + len(encoder_channels))
decoder  bits -> 1x1 conv -> [ConvLSTM, depth-to-space x2] * len(decoder_channels)
         -> 1x1 conv -> (H, W, 1)

With one stride-2 stem and three strided ConvLSTMs, F = 16 and ``bits`` code channels cost
``bits / 256`` bits per pixel per iteration before entropy coding.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any


@dataclasses.dataclass(frozen=True)
class QuantConfig:
    """The integer-exact decoder (:mod:`medcodec.model.integer`); see docs/reproducibility.md.

    Attributes:
      weight_max: largest |quantized weight| (127: 8-bit weights); per output channel a
        power-of-two scale.
      act_frac_bits: fractional bits of the decoder's activations h (Q7: |h_q| <= 127).
      from_bits_frac_bits: fractional bits of the ``from_bits`` output, the first ConvLSTM's
        input (Q5: |x| < 4).
      lut_frac_bits, lut_range: the sigmoid/tanh tables take z rounded to 2^-lut_frac_bits
        over [-lut_range, lut_range): 2 * lut_range * 2^lut_frac_bits entries.
      cell_frac_bits, cell_range: the LSTM cell state c in Q12, clipped to |c| < 16.
      recon_frac_bits: the reconstruction in Q16 (int32).
      bias_max: largest |quantized bias| (accumulator units), part of the 2^24 bound.
      init_from: the float checkpoint quantization-aware training starts from.
    """

    weight_max: int = 127
    act_frac_bits: int = 7
    from_bits_frac_bits: int = 5
    lut_frac_bits: int = 6
    lut_range: int = 8
    cell_frac_bits: int = 12
    cell_range: int = 16
    recon_frac_bits: int = 16
    bias_max: int = 2**20
    init_from: str | None = None

    @property
    def act_max(self) -> int:
        return 2**self.act_frac_bits - 1


@dataclasses.dataclass(frozen=True)
class CodecConfig:
    """Widths, depths and kernels of the codec; see :func:`flops_per_pixel`.

    The defaults are the shipped ``tiny`` model: per image pixel per iteration it costs
    22.4 kFLOP to encode (plus the 26.9 kFLOP decoder the encoder also runs, 49.3 k in all)
    and 26.9 kFLOP to decode, 1.31 M parameters; 32 bits per 16x16 block = 0.125 raw bpp
    per iteration. (Toderici et al. 2017 with 1x1 hidden kernels: 918 k / 549 k.)

    Attributes:
      name: short architecture name, part of the model id.
      stem_channels: output channels of the stride-2 stem convolution.
      encoder_channels: hidden channels of each stride-2 encoder ConvLSTM.
      decoder_channels: hidden channels of each decoder ConvLSTM (each followed by a
        2x depth-to-space); their number must equal ``len(encoder_channels) + 1``.
      bits: binary code channels per iteration at 1/F resolution.
      input_kernel: kernel of the ConvLSTM input-to-state convolutions.
      hidden_kernel: kernel of the ConvLSTM state-to-state convolutions (1 is cheap).
      max_iterations: static length of the ``lax.scan``; files may use fewer.
      stochastic_binarizer: training-time binarization; stochastic sign (Toderici 2016) if
        true, deterministic sign with a straight-through gradient if false.
      quant: None for the float decoder; a :class:`QuantConfig` for the integer-exact one
        (omitted from the JSON when None, so float models keep their ids).
    """

    name: str = "tiny"
    stem_channels: int = 32
    encoder_channels: tuple[int, ...] = (64, 96, 96)
    decoder_channels: tuple[int, ...] = (96, 96, 64, 32)
    bits: int = 32
    input_kernel: int = 3
    hidden_kernel: int = 1
    max_iterations: int = 16
    stochastic_binarizer: bool = True
    quant: QuantConfig | None = None

    def __post_init__(self) -> None:
        if len(self.decoder_channels) != len(self.encoder_channels) + 1:
            raise ValueError(
                "decoder_channels needs one entry per 2x upsampling: "
                f"{len(self.encoder_channels) + 1}, got {len(self.decoder_channels)}"
            )
        if self.bits <= 0 or self.max_iterations <= 0:
            raise ValueError("bits and max_iterations must be positive")

    @property
    def factor(self) -> int:
        """Total spatial downsampling F between the image and its code grid."""
        return 2 ** (1 + len(self.encoder_channels))

    @property
    def bpp_per_iteration(self) -> float:
        """Raw code bits per image pixel spent by one iteration (before entropy coding)."""
        return self.bits / self.factor**2

    @property
    def integer(self) -> bool:
        """True for the integer-exact decoder (same image on every machine)."""
        return self.quant is not None

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        if d["quant"] is None:
            del d["quant"]  # float configs serialise (and hash) exactly as before the field existed
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CodecConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in fields}
        if isinstance(kw.get("quant"), dict):
            qfields = {f.name for f in dataclasses.fields(QuantConfig)}
            kw["quant"] = QuantConfig(**{k: v for k, v in kw["quant"].items() if k in qfields})
        return cls(**kw)

    @classmethod
    def from_json(cls, text: str) -> "CodecConfig":
        return cls.from_dict(json.loads(text))


def _conv_flops(cin: int, cout: int, k: int) -> int:
    """FLOPs (2 per multiply-add) per output position of a k x k convolution."""
    return 2 * k * k * cin * cout


def flops_per_pixel(cfg: CodecConfig) -> dict[str, float]:
    """Encoder and decoder FLOPs per image pixel per iteration (convolutions only).

    The encoder figure covers its own convolutions only; encoding also runs the decoder
    every iteration to form the next residual, so ``encode_total`` = encoder + decoder.
    """
    f = 4.0  # pixels per position after the stride-2 stem
    enc = _conv_flops(1, cfg.stem_channels, 3) / f
    cin = cfg.stem_channels
    for c in cfg.encoder_channels:
        f *= 4
        enc += (_conv_flops(cin, 4 * c, cfg.input_kernel) + _conv_flops(c, 4 * c, cfg.hidden_kernel)) / f
        cin = c
    enc += _conv_flops(cin, cfg.bits, 1) / f
    # decoder: starts at the code grid (1/F^2 pixels per position), upsamples 2x per layer
    pos = float(cfg.factor**2)
    dec = _conv_flops(cfg.bits, cfg.decoder_channels[0], 1) / pos
    cin = cfg.decoder_channels[0]
    for c in cfg.decoder_channels:
        dec += (_conv_flops(cin, 4 * c, cfg.input_kernel) + _conv_flops(c, 4 * c, cfg.hidden_kernel)) / pos
        cin = c // 4
        pos /= 4
    dec += _conv_flops(cin, 1, 1) / pos
    return {"encoder": enc, "decoder": dec, "encode_total": enc + dec}


# The Toderici et al. (2017) widths, with 1x1 hidden kernels throughout:
# 369 kFLOP/px/iter encoder, 549 k decoder (918 k to encode), for speed comparisons.
TODERICI_2017 = CodecConfig(
    name="toderici2017",
    stem_channels=64,
    encoder_channels=(256, 512, 512),
    decoder_channels=(512, 512, 256, 128),
    bits=32,
)


# Unit tests only (random weights): 0.46 kFLOP/px/iter encoder, 0.57 k decoder.
TEST_TINY = CodecConfig(
    name="test",
    stem_channels=8,
    encoder_channels=(8, 8, 8),
    decoder_channels=(8, 8, 8, 8),
    bits=8,
    max_iterations=4,
)

# The shipped integer model: the tiny architecture with the integer-exact decoder,
# fine-tuned (quantization-aware) from the float checkpoint ``tiny-1bc2381c``.
TINY_INT = CodecConfig(name="tinyint", quant=QuantConfig(init_from="tiny-1bc2381c"))

# Unit tests of the integer decoder (random weights).
TEST_INT = dataclasses.replace(TEST_TINY, name="testint", quant=QuantConfig())

CONFIGS = {"tiny": CodecConfig(), "tiny-int": TINY_INT, "test": TEST_TINY, "test-int": TEST_INT,
           "toderici2017": TODERICI_2017}


def named_config(name: str) -> CodecConfig:
    """A config from :data:`CONFIGS` or a JSON file path."""
    from ..errors import InputError

    if name in CONFIGS:
        return CONFIGS[name]
    try:
        with open(name, encoding="utf-8") as f:
            return CodecConfig.from_json(f.read())
    except (OSError, ValueError, TypeError) as e:
        raise InputError(f"config {name!r} is neither one of {', '.join(CONFIGS)} nor a readable "
                         f"JSON config file ({e})") from e
