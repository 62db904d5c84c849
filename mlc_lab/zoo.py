"""The book's models: small PyTorch modules built in-repo with deterministic weights.

No downloads: every model is a short nn.Module whose weights come from a fixed seed (independent of
the global RNG state), so every reader, test and chapter sees the same numbers. BatchNorm running
statistics and affine parameters are randomised (not the 0/1 of a fresh layer), so that folding
BatchNorm into a convolution is tested for real.

    >>> m = load("small_cnn")
    >>> graph = m.graph()                      # via mlc_lab.frontends.torch.from_torch
    >>> logits, = interpret(graph, *m.numpy_inputs())
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlc_lab._deps import require

try:
    import torch
    from torch import nn
except ModuleNotFoundError:
    require("torch", "mlc_lab.zoo (its models are PyTorch modules)")  # raises, naming the extra, if torch is missing
    raise

from mlc_lab.ir.graph import Graph

__all__ = ["ZooModel", "load", "names"]


@dataclass
class ZooModel:
    """A model with its example inputs (batch 1) and a sentence on what it is for."""

    name: str
    module: nn.Module
    example_inputs: tuple[torch.Tensor, ...]
    description: str
    _graph: Graph | None = field(default=None, init=False, repr=False, compare=False)

    def graph(self) -> Graph:
        """The imported IR graph (converted once, then cached: passes build new graphs, never edit it)."""
        if self._graph is None:
            from mlc_lab.frontends.torch import from_torch

            self._graph = from_torch(self.module, self.example_inputs, name=self.name)
        return self._graph

    def numpy_inputs(self) -> list[np.ndarray]:
        return [t.detach().numpy().copy() for t in self.example_inputs]

    def torch_outputs(self) -> list[np.ndarray]:
        """PyTorch's own answer on the example inputs: the reference every compiled version must match."""
        with torch.no_grad():
            out = self.module.eval()(*self.example_inputs)
        return [t.numpy() for t in (out if isinstance(out, (tuple, list)) else (out,))]


# == the models ===================================================================================
class MLP(nn.Module):
    """784 -> 256 -> 128 -> 10 with ReLU: the dense-layer workhorse (an MNIST classifier's shape)."""

    def __init__(self, sizes: tuple[int, ...] = (784, 256, 128, 10)) -> None:
        super().__init__()
        self.fc1 = nn.Linear(sizes[0], sizes[1])
        self.fc2 = nn.Linear(sizes[1], sizes[2])
        self.fc3 = nn.Linear(sizes[2], sizes[3])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class SmallCNN(nn.Module):
    """Two conv-bn-relu blocks joined by a residual add, a max pool, global pooling and a linear head."""

    def __init__(self, channels: int = 16, num_classes: int = 10) -> None:
        super().__init__()
        self.block1 = conv_bn_relu(3, channels)
        self.block2 = conv_bn_relu(channels, channels)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block1(x)
        h = self.pool(h + self.block2(h))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1))


class BasicBlock(nn.Module):
    """ResNet's two 3x3 convolutions plus a shortcut (a strided 1x1 conv when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + shortcut)


class ResNet18(nn.Module):
    """ResNet-18's topology (stem, 4 stages of 2 BasicBlocks, pool, fc) at a configurable width."""

    def __init__(self, width: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [width, 2 * width, 4 * width, 8 * width]
        cin = width
        for i, cout in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TransformerBlock(nn.Module):
    """A transformer encoder block with attention written out: q/k/v projections, heads, softmax(QK^T/sqrt(d))V.

    norm_first=False is the original post-LN block (x = LN(x + attn(x))); True is pre-LN (x = x + attn(LN(x))).
    """

    def __init__(self, d_model: int = 128, heads: int = 4, ffn: int = 512, norm_first: bool = False) -> None:
        super().__init__()
        self.heads, self.norm_first = heads, norm_first
        self.q, self.k, self.v = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, ffn), nn.GELU(), nn.Linear(ffn, d_model))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        split = lambda t: t.view(b, s, self.heads, d // self.heads).transpose(1, 2)  # (b, heads, s, d_head)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        ctx = torch.softmax(scores, dim=-1) @ v
        return self.out(ctx.transpose(1, 2).reshape(b, s, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            x = x + self.attention(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + self.attention(x))
        return self.norm2(x + self.mlp(x))


# == building them deterministically ===============================================================
def _seeded(seed: int, make: Callable[[], nn.Module]) -> nn.Module:
    """Build a module from `seed` without touching (or depending on) the global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = make()
        _randomize_norms(module)
    return module.eval()


def _randomize_norms(module: nn.Module) -> None:
    """Give every BatchNorm/LayerNorm non-trivial statistics and affine parameters (uses the seeded RNG)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 2.0)


def _randn(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _mlp(seed: int = 0, batch: int = 1) -> ZooModel:
    return ZooModel(
        "mlp",
        _seeded(seed, MLP),
        (_randn(seed + 1, batch, 784),),
        "3-layer perceptron 784-256-128-10 with ReLU: dense layers, bias_add, the simplest fusion targets",
    )


def _small_cnn(seed: int = 0, batch: int = 1, channels: int = 16, image_size: int = 16) -> ZooModel:
    return ZooModel(
        "small_cnn",
        _seeded(seed, lambda: SmallCNN(channels)),
        (_randn(seed + 1, batch, 3, image_size, image_size),),
        f"two conv-bn-relu blocks with a residual add, pooling and a linear head ({channels} channels, "
        f"{image_size}x{image_size} input): small enough for every test",
    )


def _resnet18(seed: int = 0, batch: int = 1, width: int = 32, image_size: int = 64, num_classes: int = 10) -> ZooModel:
    return ZooModel(
        "resnet18",
        _seeded(seed, lambda: ResNet18(width, num_classes)),
        (_randn(seed + 1, batch, 3, image_size, image_size),),
        f"ResNet-18 topology (7x7/2 stem, 3x3/2 max pool, 4 stages of 2 BasicBlocks, global pool, fc) with "
        f"stage widths {[width * 2**i for i in range(4)]} on {image_size}x{image_size} images, {num_classes} classes",
    )


def _transformer_block(
    seed: int = 0,
    batch: int = 1,
    d_model: int = 128,
    heads: int = 4,
    seq: int = 32,
    ffn: int = 512,
    norm_first: bool = False,
) -> ZooModel:
    style = "pre-LN" if norm_first else "post-LN"
    return ZooModel(
        "transformer_block",
        _seeded(seed, lambda: TransformerBlock(d_model, heads, ffn, norm_first)),
        (_randn(seed + 1, batch, seq, d_model),),
        f"{style} transformer encoder block (d_model={d_model}, {heads} heads, seq={seq}, ffn={ffn}, GELU) "
        "with attention spelled out as matmul/softmax/matmul",
    )


_MODELS: dict[str, Callable[..., ZooModel]] = {
    "mlp": _mlp,
    "small_cnn": _small_cnn,
    "resnet18": _resnet18,
    "transformer_block": _transformer_block,
}


def names() -> list[str]:
    """The zoo's model names."""
    return list(_MODELS)


def load(name: str, **kwargs: Any) -> ZooModel:
    """Build a zoo model; keyword arguments (seed, batch, width, image_size, ...) vary it."""
    if name not in _MODELS:
        raise ValueError(f"no zoo model {name!r}; the zoo has: {', '.join(names())}")
    return _MODELS[name](**kwargs)
