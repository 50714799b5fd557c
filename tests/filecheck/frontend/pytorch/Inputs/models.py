"""Models for the importer's FileCheck tests: each function returns (model, example_args)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Linear(4 * 3 * 3, 5)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        z = self.fc(h.permute(0, 1, 2, 3).flatten(1))
        return F.cross_entropy(z, y), z


def small():
    torch.manual_seed(0)
    return Small(), (torch.randn(2, 3, 6, 6), torch.tensor([1, 4]))


def small_eval():
    model, args = small()
    return model.eval(), args


def cumsum():
    return (lambda x: torch.cumsum(x, 1)), (torch.randn(2, 3),)
