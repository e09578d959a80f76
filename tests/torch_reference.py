"""A PyTorch modified ResNet written from the CLIP paper's description, as
the reference for loading OpenAI / open_clip ResNet checkpoints.

Tensor names follow OpenAI's layout ("conv1", "layer1.0.downsample.0",
"attnpool.q_proj", ...): that layout is what the loader must read.
"""

import collections

import torch
from torch import nn
from torch.nn import functional as F


class Bottleneck(nn.Module):
    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.downsample = None
        if stride > 1 or inplanes != 4 * planes:
            self.downsample = nn.Sequential(
                collections.OrderedDict(
                    [
                        ("-1", nn.AvgPool2d(stride)),
                        ("0", nn.Conv2d(inplanes, 4 * planes, 1, bias=False)),
                        ("1", nn.BatchNorm2d(4 * planes)),
                    ]
                )
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.pool(F.relu(self.bn2(self.conv2(out))))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class AttentionPool(nn.Module):
    """One query (the mean token) attends over the mean and every position."""

    def __init__(self, grid, channels, heads, output_dim):
        super().__init__()
        self.positional_embedding = nn.Parameter(
            torch.randn(grid * grid + 1, channels) / channels**0.5
        )
        self.q_proj = nn.Linear(channels, channels)
        self.k_proj = nn.Linear(channels, channels)
        self.v_proj = nn.Linear(channels, channels)
        self.c_proj = nn.Linear(channels, output_dim)
        self.heads = heads

    def forward(self, x):
        tokens = x.flatten(2).transpose(1, 2)  # (batch, positions, channels)
        tokens = torch.cat([tokens.mean(1, keepdim=True), tokens], 1)
        tokens = tokens + self.positional_embedding
        batch, length, channels = tokens.shape

        def split(t):
            return t.reshape(batch, -1, self.heads, channels // self.heads).transpose(1, 2)

        query = split(self.q_proj(tokens[:, :1]))
        key, value = split(self.k_proj(tokens)), split(self.v_proj(tokens))
        weights = torch.softmax(query @ key.transpose(-1, -2) / (channels // self.heads) ** 0.5, -1)
        pooled = (weights @ value).transpose(1, 2).reshape(batch, channels)
        return self.c_proj(pooled)


class ModifiedResNet(nn.Module):
    def __init__(self, layers, width, image_size, heads, output_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        inplanes = width
        for index, blocks in enumerate(layers):
            planes, stride = width * 2**index, 1 if index == 0 else 2
            stage = []
            for block in range(blocks):
                stage.append(Bottleneck(inplanes, planes, stride if block == 0 else 1))
                inplanes = 4 * planes
            setattr(self, f"layer{index + 1}", nn.Sequential(*stage))
        self.attnpool = AttentionPool(image_size // 32, width * 32, heads, output_dim)

    def forward(self, x):
        for index in (1, 2, 3):
            conv, norm = getattr(self, f"conv{index}"), getattr(self, f"bn{index}")
            x = F.relu(norm(conv(x)))
        x = F.avg_pool2d(x, 2)
        for index in (1, 2, 3, 4):
            x = getattr(self, f"layer{index}")(x)
        return self.attnpool(x)


def randomise_batch_norms(module, generator):
    """Moves every BatchNorm off its identity initialisation (eval mode)."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.BatchNorm2d):
                size = layer.num_features
                layer.weight.copy_(1 + 0.2 * torch.randn(size, generator=generator))
                layer.bias.copy_(0.2 * torch.randn(size, generator=generator))
                layer.running_mean.copy_(0.2 * torch.randn(size, generator=generator))
                layer.running_var.copy_(1 + 0.5 * torch.rand(size, generator=generator))
    return module.eval()
