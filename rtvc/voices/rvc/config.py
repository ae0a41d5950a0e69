"""The synthesizer configuration an RVC ``.pth`` declares (its 18-entry ``config`` list)."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from math import prod
from typing import Any

from rtvc.errors import ModelLoadError

__all__ = ["REFERENCE_CONFIGS", "SynthConfig", "reference_config"]

SAMPLE_RATES = {"32k": 32000, "40k": 40000, "48k": 48000}


@dataclass(frozen=True, slots=True)
class SynthConfig:
    """Positional arguments of RVC's ``SynthesizerTrnMs*NSFsid`` in file order."""

    spec_channels: int
    segment_size: int
    inter_channels: int
    hidden_channels: int
    filter_channels: int
    n_heads: int
    n_layers: int
    kernel_size: int
    p_dropout: float
    resblock: str
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    upsample_rates: tuple[int, ...]
    upsample_initial_channel: int
    upsample_kernel_sizes: tuple[int, ...]
    spk_embed_dim: int
    gin_channels: int
    sample_rate: int

    @property
    def hop(self) -> int:
        """Output samples per 10 ms frame (the decoder's total upsampling)."""
        return prod(self.upsample_rates)

    @classmethod
    def from_list(cls, values: Any, *, source: str) -> SynthConfig:
        """Validate the ``config`` entry of a ``.pth``; raise ModelLoadError naming ``source`` otherwise."""
        if not isinstance(values, (list, tuple)) or len(values) != 18:
            n = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
            raise ModelLoadError(f"{source}: 'config' must be the WebUI's 18-entry list, got {n}")

        def bad(index: int, expected: str) -> ModelLoadError:
            return ModelLoadError(f"{source}: config[{index}] ({cls.__slots__[index]}) must be {expected}, "
                                  f"got {values[index]!r}")

        def positive_int(index: int) -> int:
            v = values[index]
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise bad(index, "a positive integer")
            return v

        def int_tuple(index: int) -> tuple[int, ...]:
            v = values[index]
            if not isinstance(v, (list, tuple)) or not v or any(
                    isinstance(i, bool) or not isinstance(i, int) or i <= 0 for i in v):
                raise bad(index, "a non-empty list of positive integers")
            return tuple(v)

        ints = {i: positive_int(i) for i in (0, 1, 2, 3, 4, 5, 6, 7, 13, 15, 16)}
        p_dropout = values[8]
        if isinstance(p_dropout, bool) or not isinstance(p_dropout, (int, float)) or not 0 <= p_dropout < 1:
            raise bad(8, "a dropout probability in [0, 1)")
        resblock = str(values[9])
        if resblock not in ("1", "2"):
            raise bad(9, '"1" or "2"')
        dil = values[11]
        if not isinstance(dil, (list, tuple)) or not all(isinstance(d, (list, tuple)) for d in dil):
            raise bad(11, "a list of dilation lists")
        dilations = tuple(tuple(d) for d in dil)
        if any(not d or any(isinstance(i, bool) or not isinstance(i, int) or i <= 0 for i in d) for d in dilations):
            raise bad(11, "lists of positive integers")
        sr = values[17]
        sr = SAMPLE_RATES.get(sr, sr) if isinstance(sr, str) else sr
        if sr not in SAMPLE_RATES.values():
            raise bad(17, "32000, 40000 or 48000")
        config = cls(ints[0], ints[1], ints[2], ints[3], ints[4], ints[5], ints[6], ints[7], float(p_dropout),
                     resblock, int_tuple(10), dilations, int_tuple(12), ints[13], int_tuple(14), ints[15], ints[16],
                     int(sr))
        config.check(source=source)
        return config

    def check(self, *, source: str) -> None:
        """Cross-field consistency: what the network construction silently assumes."""
        problems = []
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            problems.append("upsample_rates and upsample_kernel_sizes differ in length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            problems.append("resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        if self.resblock == "2" and any(len(d) != 2 for d in self.resblock_dilation_sizes):
            problems.append('resblock "2" takes two dilations per kernel')
        if self.resblock == "1" and any(len(d) != 3 for d in self.resblock_dilation_sizes):
            problems.append('resblock "1" takes three dilations per kernel')
        if self.hop * 100 != self.sample_rate:
            problems.append(f"upsample_rates multiply to {self.hop}, but {self.sample_rate} Hz needs "
                            f"{self.sample_rate // 100} samples per 10 ms frame")
        if any((k - u) % 2 for u, k in zip(self.upsample_rates, self.upsample_kernel_sizes, strict=False)):
            problems.append("every upsample kernel minus its rate must be even")
        if self.hidden_channels % self.n_heads:
            problems.append("hidden_channels must be divisible by n_heads")
        if self.upsample_initial_channel % (2 ** len(self.upsample_rates)):
            problems.append("upsample_initial_channel must halve cleanly at every upsampling")
        if self.inter_channels % 2:
            problems.append("inter_channels must be even (the flow splits it in halves)")
        if problems:
            raise ModelLoadError(f"{source}: inconsistent config: " + "; ".join(problems))

    def to_list(self) -> list:
        """The 18-entry list exactly as the WebUI writes it (lists, not tuples)."""
        out: list = []
        for value in astuple(self):
            if isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out.append(value)
        if out[8] == 0.0:
            out[8] = 0
        return out


def _reference(sr: int, upsample_rates: tuple[int, ...], kernels: tuple[int, ...]) -> SynthConfig:
    return SynthConfig(
        spec_channels=513 if sr == 32000 else 1025, segment_size=32, inter_channels=192, hidden_channels=192,
        filter_channels=768, n_heads=2, n_layers=6, kernel_size=3, p_dropout=0.0, resblock="1",
        resblock_kernel_sizes=(3, 7, 11), resblock_dilation_sizes=((1, 3, 5),) * 3, upsample_rates=upsample_rates,
        upsample_initial_channel=512, upsample_kernel_sizes=kernels, spk_embed_dim=109, gin_channels=256,
        sample_rate=sr)


# The configurations the WebUI trains with (configs/v1|v2/*.json); v2 40k uses the v1 40k file.
REFERENCE_CONFIGS: dict[tuple[str, str], SynthConfig] = {
    ("v1", "32k"): _reference(32000, (10, 4, 2, 2, 2), (16, 16, 4, 4, 4)),
    ("v1", "40k"): _reference(40000, (10, 10, 2, 2), (16, 16, 4, 4)),
    ("v1", "48k"): _reference(48000, (10, 6, 2, 2, 2), (16, 16, 4, 4, 4)),
    ("v2", "32k"): _reference(32000, (10, 8, 2, 2), (20, 16, 4, 4)),
    ("v2", "40k"): _reference(40000, (10, 10, 2, 2), (16, 16, 4, 4)),
    ("v2", "48k"): _reference(48000, (12, 10, 2, 2), (24, 20, 4, 4)),
}


def reference_config(version: str, sr: str) -> SynthConfig:
    """The WebUI's training configuration for ``version`` ("v1"/"v2") and ``sr`` ("32k"/"40k"/"48k")."""
    try:
        return REFERENCE_CONFIGS[(version, sr)]
    except KeyError:
        raise ModelLoadError(f"no RVC configuration for version {version!r} at {sr!r}") from None
