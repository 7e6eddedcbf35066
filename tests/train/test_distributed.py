"""Two gloo processes under torchrun train on their own shards and end with identical weights."""

import subprocess
import sys
import textwrap

import torch

from moldiff.train.data import BatchOrder

SCRIPT = textwrap.dedent("""
    import os, sys, torch
    from moldiff.config import load_config
    from moldiff.train import distributed
    from moldiff.train.loop import Trainer
    out = sys.argv[1]
    cfg = load_config(None, ["data.max_train=64", "model.hidden=16", "model.layers=2", "train.batch_size=8",
                             "train.max_steps=4", "train.log_every=100", "train.eval_every=100",
                             "tracking.enabled=false", "train.threads=1", f"out_dir={out}/run"])
    distributed.setup()
    trainer = Trainer(cfg, log=lambda m: None)
    first = trainer.order.batch(0, 0).tolist()
    trainer.run()
    torch.save({"weights": trainer.net.state_dict(), "first_batch": first},
               f"{out}/rank{distributed.rank()}.pt")
    distributed.teardown()
""")


def test_two_ranks_end_identical(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
           str(tmp_path)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert set(r0["first_batch"]).isdisjoint(r1["first_batch"])  # each rank has its own shard
    for k, v in r0["weights"].items():
        assert torch.equal(v, r1["weights"][k]), k
    assert (tmp_path / "run/last.pt").exists()  # rank 0 wrote the checkpoint


def test_shards_partition_an_epoch():
    orders = [BatchOrder(100, 10, seed=3, rank=r, world=2) for r in range(2)]
    seen = [i for o in orders for b in range(o.batches_per_epoch()) for i in o.batch(0, b).tolist()]
    assert sorted(seen) == list(range(100))
