#!/usr/bin/python3
"""Golden values for the LR and L1 schedules of SAELens 1.5.

What it encodes:
  * get_lr_scheduler of sae_lens/training/optim.py (SAELens 1.5.0), rebuilt here from
    docs/saelens-semantics.md section 3 on top of the REAL torch.optim.lr_scheduler classes of
    the installed torch (1.13): main phase LambdaLR(1.0) / CosineAnnealingLR(T_max=main,
    eta_min=lr_end) / CosineAnnealingWarmRestarts(T_0=main // cycles, eta_min=lr_end), built
    first; warm-up LinearLR(1/W, 1, W-1) with milestone W; decay LinearLR(lr_end/lr, 0, D) with
    milestone T-D (lr_end := lr for "constant"); all inside SequentialLR. For every case the
    learning rate the optimiser holds before each of T+1 steps is recorded (index t = the lr
    used by training step t; index T = the value after the last scheduler.step()).
  * The L1Scheduler (final * (k+1)/W while k < W, set after each step) as a tiny class, and
    the coefficient each training step uses.

Regenerate (needs Debian's python3-torch 1.13):
    /usr/bin/python3 tests/reference/schedules_reference.py
writes tests/fixtures/schedules/lr_schedules.json and tests/fixtures/schedules/l1_schedules.json.
"""

import json
import os
import warnings

import torch
from torch.optim import lr_scheduler

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "fixtures", "schedules")


def build_lr_scheduler(name, optimizer, training_steps, lr, warm_up_steps, decay_steps, lr_end,
                       num_cycles):
    """SAELens 1.5 get_lr_scheduler, written from the semantics doc (order of construction
    matters: torch schedulers step once in their constructor)."""
    main_steps = training_steps - warm_up_steps - decay_steps
    norm_name = name.lower()
    if norm_name == "constant":
        main = lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda steps: 1.0)
    elif norm_name == "cosineannealing":
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=main_steps, eta_min=lr_end)
    elif norm_name == "cosineannealingwarmrestarts":
        main = lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=main_steps // num_cycles,
                                                        eta_min=lr_end)
    else:
        raise ValueError(f"Unsupported scheduler: {norm_name}")
    if norm_name == "constant":
        lr_end = lr
    schedulers = []
    milestones = []
    if warm_up_steps > 0:
        schedulers.append(lr_scheduler.LinearLR(optimizer, start_factor=1 / warm_up_steps,
                                                end_factor=1.0, total_iters=warm_up_steps - 1))
        milestones.append(warm_up_steps)
    schedulers.append(main)
    if decay_steps > 0:
        if lr_end == 0.0:
            raise ValueError("Cannot have decay_steps with lr_end=0.0, this would decay from 0 to 0 "
                             "and be a waste.")
        schedulers.append(lr_scheduler.LinearLR(optimizer, start_factor=lr_end / lr, end_factor=0.0,
                                                total_iters=decay_steps))
        milestones.append(training_steps - decay_steps)
    return lr_scheduler.SequentialLR(optimizer, schedulers=schedulers, milestones=milestones)


def run_lr_case(name, lr, training_steps, warm_up_steps, decay_steps, lr_end, num_cycles,
                sample_steps=None):
    case = {
        "name": name,
        "lr": lr,
        "training_steps": training_steps,
        "warm_up_steps": warm_up_steps,
        "decay_steps": decay_steps,
        "lr_end": lr_end,
        "num_cycles": num_cycles,
    }
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=lr)
    try:
        scheduler = build_lr_scheduler(name, optimizer, training_steps, lr, warm_up_steps,
                                       decay_steps, lr_end, num_cycles)
    except (ValueError, ZeroDivisionError) as error:
        case["error"] = str(error)
        return case
    values = []
    for step in range(training_steps + 1):
        values.append(optimizer.param_groups[0]["lr"])
        if step == training_steps:
            break
        optimizer.step()  # no grad: a no-op that keeps torch's call-order check quiet
        scheduler.step()
    if sample_steps is None:
        case["lrs"] = values
    else:
        case["samples"] = [[s, values[s]] for s in sample_steps]
    return case


def lr_cases():
    cases = []
    lr = 0.1
    # The doc's test (main phase of length 0): 0.05, 0.1, 0.1, 0.075, 0.05, 0.025, then 0.0.
    cases.append(run_lr_case("constant", lr, 6, 2, 4, 0.0, 1))
    for name in ["constant", "cosineannealing", "cosineannealingwarmrestarts"]:
        for warm_up in [0, 1, 2, 7]:
            for decay in [0, 1, 3, 10]:
                for total in [13, 37]:
                    if warm_up + decay > total:
                        continue
                    lr_ends = [lr / 10] if name == "constant" else [lr / 10, 0.003]
                    cycles = [1, 3] if name == "cosineannealingwarmrestarts" else [1]
                    for lr_end in lr_ends:
                        for num_cycles in cycles:
                            cases.append(run_lr_case(name, lr, total, warm_up, decay, lr_end,
                                                     num_cycles))
    # Mixed-case name (SAELens lower-cases it) and a main phase not divisible by the cycles.
    cases.append(run_lr_case("CosineAnnealingWarmRestarts", 3e-4, 50, 5, 4, 3e-5, 4))
    cases.append(run_lr_case("CosineAnnealing", 3e-4, 50, 5, 4, 3e-5, 1))
    # Errors raised while the scheduler is built.
    cases.append(run_lr_case("linear", lr, 10, 0, 0, lr / 10, 1))
    cases.append(run_lr_case("cosineannealing", lr, 6, 0, 2, 0.0, 1))
    cases.append(run_lr_case("constant", 0.0, 6, 0, 2, 0.0, 1))
    cases.append(run_lr_case("cosineannealingwarmrestarts", lr, 10, 2, 2, lr / 10, 7))
    cases.append(run_lr_case("cosineannealing", lr, 10, 0, 2, 0.2, 1))
    # Long runs: the notebook's schedule (constant, lr 5e-5, no warm-up, 20% decay) and cosine
    # ones where torch's recursive form accumulates rounding over thousands of steps.
    samples = [0, 1, 2, 999, 1000, 10000, 15999, 16000, 16001, 17000, 19998, 19999, 20000]
    cases.append(run_lr_case("constant", 5e-5, 20000, 0, 4000, 5e-6, 1, samples))
    samples_cos = samples + [499, 500, 501, 5000, 12345]
    samples_cos.sort()
    cases.append(run_lr_case("cosineannealing", 5e-5, 20000, 500, 4000, 5e-6, 1, samples_cos))
    cases.append(run_lr_case("cosineannealingwarmrestarts", 5e-5, 20000, 500, 4000, 5e-6, 3,
                             samples_cos))
    return cases


class ReferenceL1Scheduler:
    """SAELens 1.5 L1Scheduler on a stand-in SAE object (semantics doc section 3)."""

    def __init__(self, l1_warm_up_steps, final):
        self.l1_warmup_steps = l1_warm_up_steps
        self.final_l1_value = final
        self.current_step = 0
        self.l1_coefficient = final
        if self.l1_warmup_steps != 0:
            self.l1_coefficient = 0.0

    def step(self):
        step = self.current_step
        if step < self.l1_warmup_steps:
            self.l1_coefficient = self.final_l1_value * ((1 + step) / self.l1_warmup_steps)
        else:
            self.l1_coefficient = self.final_l1_value
        self.current_step += 1


def l1_case(final, warm_up, total, sample_steps=None):
    scheduler = ReferenceL1Scheduler(warm_up, final)
    values = []
    for _ in range(total):
        values.append(scheduler.l1_coefficient)  # used by this training step
        scheduler.step()
    case = {"final": final, "warm_up_steps": warm_up}
    if sample_steps is None:
        case["coefficients"] = values
    else:
        case["samples"] = [[s, values[s]] for s in sample_steps]
    return case


def l1_cases():
    return [
        l1_case(0.005, 0, 10),
        l1_case(0.005, 1, 10),
        l1_case(5.0, 3, 10),
        l1_case(1e-3, 7, 20),
        l1_case(2.0, 10000, 10020, [0, 1, 2, 3, 4999, 5000, 9999, 10000, 10001, 10019]),
        # The notebook: final 0.005, 1000 warm-up steps, 20000 steps.
        l1_case(0.005, 1000, 20000, [0, 1, 500, 999, 1000, 19999]),
    ]


def main():
    warnings.simplefilter("ignore")
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "lr_schedules.json"), "w") as f:
        json.dump({"torch_version": torch.__version__, "cases": lr_cases()}, f)
        f.write("\n")
    with open(os.path.join(OUT_DIR, "l1_schedules.json"), "w") as f:
        json.dump({"cases": l1_cases()}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
