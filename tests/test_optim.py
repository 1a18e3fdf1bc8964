"""The optimizer's schedule: warm-up and cosine decay, and what a resume keeps of it."""

import pytest
import torch

from speechseq.optim import WarmupCosine, restore_scheduler


def test_warmup_cosine_schedule():
    schedule = WarmupCosine(warmup_steps=10, total_steps=110, final_ratio=0.1)
    assert schedule(0) == pytest.approx(0.1)
    assert schedule(9) == pytest.approx(1.0)
    assert schedule(60) == pytest.approx(0.55)
    assert schedule(110) == pytest.approx(0.1)
    assert schedule(500) == pytest.approx(0.1)


def test_resume_follows_a_changed_schedule_length():
    """Resuming with a different ``train.epochs`` must not bring back the old total steps."""

    def make(total):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return torch.optim.lr_scheduler.LambdaLR(opt, WarmupCosine(0, total, 0.0))

    old = make(100)
    for _ in range(50):
        old.optimizer.step()
        old.step()
    new = make(60)
    restore_scheduler(new, old.state_dict())
    assert new.last_epoch == 50
    assert new.lr_lambdas[0].total_steps == 60
    new.optimizer.step()
    new.step()
    # step 51 of 60 on a cosine to 0: well below the old schedule's 0.5-ish value
    assert new.get_last_lr()[0] < 0.1
