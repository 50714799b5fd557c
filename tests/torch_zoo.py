"""Small PyTorch models for the `torch.compile(backend="mlc")` tests and benchmark: each is a
`torch.nn.Module` whose `forward(x, target)` returns the training loss (and an output), as a
PyTorch user writes one, and an `inputs(batch, dtype)` of the right shapes."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet5(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
        self.f1, self.f2, self.f3 = nn.Linear(16 * 5 * 5, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.max_pool2d(F.relu(self.c1(x)), 2)
        h = F.avg_pool2d(torch.tanh(self.c2(h)), 2)
        h = F.relu(self.f2(F.relu(self.f1(torch.flatten(h, 1)))))
        z = self.f3(h)
        return F.cross_entropy(z, y), z

    @staticmethod
    def inputs(batch: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(batch, 1, 28, 28, dtype=dtype), torch.randint(0, 10, (batch,))


class ResNetSmall(nn.Module):
    """A stem, two residual blocks with batch norm (one strided, with a 1x1 projection),
    global average pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.bn0 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.a1, self.an1 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.a2, self.an2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.b1, self.bn1 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16)
        self.b2, self.bn2 = nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.proj = nn.Conv2d(8, 16, 1, stride=2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.bn0(self.stem(x)))
        h = F.relu(h + self.an2(self.a2(F.relu(self.an1(self.a1(h))))))
        h = F.relu(self.proj(h) + self.bn2(self.b2(F.relu(self.bn1(self.b1(h))))))
        z = self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))
        return F.cross_entropy(z, y), z

    @staticmethod
    def inputs(batch: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(batch, 3, 12, 12, dtype=dtype), torch.randint(0, 10, (batch,))


class ConvAutoencoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.e1, self.e2 = nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.d1 = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
        self.d2 = nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.leaky_relu(self.e2(F.leaky_relu(self.e1(x), 0.1)), 0.1)
        r = torch.sigmoid(self.d2(F.elu(self.d1(h))))
        return F.binary_cross_entropy(r, y), r

    @staticmethod
    def inputs(batch: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.rand(batch, 1, 16, 16, dtype=dtype)
        return x, x.clone()


class VAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc, self.mu, self.logvar = nn.Linear(64, 32), nn.Linear(32, 8), nn.Linear(32, 8)
        self.dec1, self.dec2 = nn.Linear(8, 32), nn.Linear(32, 64)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.softplus(self.enc(x))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.dec2(F.silu(self.dec1(z)))
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / x.shape[0]
        return F.binary_cross_entropy_with_logits(logits, y, reduction="sum") / x.shape[0] + kl, mu

    @staticmethod
    def inputs(batch: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.rand(batch, 64, dtype=dtype)
        return x, (x > 0.5).to(dtype)


class LayerNormMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.f1, self.n1, self.f2, self.f3 = nn.Linear(20, 64), nn.LayerNorm(64), nn.Linear(64, 64), nn.Linear(64, 5)
        self.drop = nn.Dropout(0.25)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.gelu(self.n1(self.f1(x)))
        h = self.drop(F.gelu(self.f2(h), approximate="tanh"))
        z = self.f3(h)
        return F.mse_loss(z, y), z

    @staticmethod
    def inputs(batch: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(batch, 20, dtype=dtype), torch.randn(batch, 5, dtype=dtype)


class SeparableCNN(nn.Module):
    """Depthwise-separable convolutions (groups = channels, then 1x1), batch norm, dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.c0 = nn.Conv2d(3, 16, 3, padding="same")
        self.dw, self.pw, self.bn = nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 32, 1), nn.BatchNorm2d(32)
        self.dw2 = nn.Conv2d(32, 32, 3, stride=2, dilation=2, padding=2, groups=32)
        self.drop, self.fc = nn.Dropout(0.3), nn.Linear(32 * 4 * 4, 10)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.hardtanh(self.c0(x), 0.0, 6.0)
        h = F.relu(self.bn(self.pw(self.dw(h))))
        h = F.max_pool2d(self.dw2(h), 3, stride=1, padding=1)
        z = self.fc(self.drop(h.flatten(1)))
        return F.nll_loss(F.log_softmax(z, dim=1), y), z

    @staticmethod
    def inputs(batch: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(batch, 3, 8, 8, dtype=dtype), torch.randint(0, 10, (batch,))


ZOO: dict[str, Callable[[], nn.Module]] = {
    "lenet5": LeNet5, "resnet": ResNetSmall, "autoencoder": ConvAutoencoder, "vae": VAE, "mlp": LayerNormMLP,
    "separable": SeparableCNN,
}
