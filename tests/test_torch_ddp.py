"""A `DistributedDataParallel` model compiled with `backend="mlc"` trains with the gloo backend in
two processes on localhost and ends with eager DDP's parameters: mlc's backward fills `.grad`,
DDP's hooks all-reduce it, as for any autograd function."""

from __future__ import annotations

import copy
import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

STEPS = 3


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4 * 4 * 4, 5)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv(x)), 2)
        return F.cross_entropy(self.fc(h.flatten(1)), y)


def _train(model: nn.Module, step, rank: int) -> None:  # noqa: ANN001 - a callable
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(10 + rank)  # each rank its own data
    for _ in range(STEPS):
        x, y = torch.randn(3, 1, 8, 8, generator=gen), torch.randint(0, 5, (3,), generator=gen)
        opt.zero_grad(set_to_none=True)
        step(x, y).backward()
        opt.step()


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        base = Net()
        eager = nn.parallel.DistributedDataParallel(copy.deepcopy(base))
        mine = nn.parallel.DistributedDataParallel(copy.deepcopy(base))
        _train(eager, eager, rank)
        from mlc.runtime import torch_backend

        calls = {"forward": 0, "backward": 0}
        forward, backward = torch_backend.Entry.forward_saving, torch_backend.Entry.backward
        torch_backend.Entry.forward_saving = lambda *a: calls.__setitem__("forward", calls["forward"] + 1) or forward(*a)
        torch_backend.Entry.backward = lambda *a: calls.__setitem__("backward", calls["backward"] + 1) or backward(*a)
        _train(mine, torch.compile(mine, backend="mlc", options={"fallback": "error"}), rank)
        torch.save({"eager": eager.module.state_dict(), "mlc": mine.module.state_dict(), "calls": calls},
                   f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_with_gloo_in_two_processes_matches_eager_ddp(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert all(r["calls"]["forward"] >= STEPS and r["calls"]["backward"] >= STEPS for r in results), results[0]["calls"]
    for key, want in results[0]["eager"].items():
        for r in range(2):
            got = results[r]["mlc"][key]
            assert torch.allclose(got, want, rtol=1e-5, atol=1e-6), (r, key, float((got - want).abs().max()))
        assert torch.equal(results[1]["eager"][key], want)  # DDP keeps the ranks in step
