"""Run by torchrun in the DDP test: the unchanged trainer on 2 gloo processes."""
import sys

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch.utils.data import TensorDataset

from latente.shared.models import build_model
from latente.shared.params import TrainerConfig
from latente.shared.trainer import fit, seed_everything

out = sys.argv[1]
torch.set_num_threads(1)
seed_everything(0)
data = torch.linspace(-1, 1, 48 * 16).reshape(48, 1, 16).sin()
model = build_model({"name": "conv_ae", "channels": [4], "strides": [2], "norm": None})
result = fit(model, TensorDataset(data[:40]), TensorDataset(data[40:]), TrainerConfig(epochs=3, batch_size=8, patience=None, lr=0.01),
             f"{out}/ckpt", fingerprint={"test": "ddp"})
rank = dist.get_rank()
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{out}/rank{rank}.safetensors")
if rank == 0:
    print(f"LOSSES {result.history[0]['val/loss']} {result.history[-1]['val/loss']} WORLD {dist.get_world_size()}")
dist.destroy_process_group()
