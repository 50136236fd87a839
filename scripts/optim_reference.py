#!/usr/bin/python3
"""Reference numbers for nemo-core's optimizers, gradient clipping and LR schedules.

Writes nemo-core/tests/fixtures/optim.json, read by nemo-core/tests/optim.rs.

- SGD and AdamW: torch.optim.SGD / torch.optim.AdamW (PyTorch 1.13, Debian's python3-torch).
- NovoGrad: NeMo's `Novograd.step` (nemo/core/optim/novograd.py) restated below in torch ops.
- Clipping: torch.nn.utils.clip_grad_norm_.
- Schedules: NeMo 0.x's policies (nemo/utils/lr_policies.py) restated in Python.

Every case runs 5 steps over parameters a (2, 3), b (4,), c (3,) with given gradients and
learning rates; b is frozen at step 2 (its .grad is None, as NeMo's freezing leaves it) and c has
no gradient at step 3.

Run: /usr/bin/python3 scripts/optim_reference.py
"""

import json
import math
import os

import torch

torch.manual_seed(0)
torch.set_num_threads(2)

SHAPES = {"a": (2, 3), "b": (4,), "c": (3,)}
LRS = [0.1, 0.05, 0.08, 0.02, 0.1]
STEPS = len(LRS)
SKIP = {2: "b", 3: "c"}  # step -> parameter without a gradient at that step

INIT = {k: torch.randn(s) for k, s in SHAPES.items()}
GRADS = [{k: torch.randn(s) for k, s in SHAPES.items()} for _ in range(STEPS)]


class NovogradReference(torch.optim.Optimizer):
    """NeMo's NovoGrad (without `luc`), written from nemo/core/optim/novograd.py."""

    def __init__(self, params, lr, betas=(0.95, 0.98), eps=1e-8, weight_decay=0.0,
                 grad_averaging=False, amsgrad=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      grad_averaging=grad_averaging, amsgrad=amsgrad))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                st = self.state[p]
                if not st:
                    st["step"] = 0
                    st["exp_avg"] = torch.zeros_like(p)
                    st["exp_avg_sq"] = torch.zeros([])
                    if group["amsgrad"]:
                        st["max_exp_avg_sq"] = torch.zeros([])
                st["step"] += 1
                norm_sq = g.norm().pow(2)
                v = st["exp_avg_sq"]
                if v == 0:
                    v.copy_(norm_sq)
                else:
                    v.mul_(beta2).add_(norm_sq, alpha=1.0 - beta2)
                if group["amsgrad"]:
                    torch.max(st["max_exp_avg_sq"], v, out=st["max_exp_avg_sq"])
                    denom = st["max_exp_avg_sq"].sqrt().add(group["eps"])
                else:
                    denom = v.sqrt().add(group["eps"])
                d = g / denom
                if group["weight_decay"] != 0:
                    d = d.add(p, alpha=group["weight_decay"])
                if group["grad_averaging"]:
                    d = d.mul(1.0 - beta1)
                st["exp_avg"].mul_(beta1).add_(d)
                p.add_(st["exp_avg"], alpha=-group["lr"])


CASES = [
    ("sgd_plain", {"name": "sgd"}),
    ("sgd_momentum", {"name": "sgd", "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    ("sgd_nesterov", {"name": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 0.001}),
    ("adamw", {"name": "adamw", "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01}),
    ("adamw_amsgrad", {"name": "adamw", "betas": [0.8, 0.95], "eps": 1e-6, "weight_decay": 0.1,
                       "amsgrad": True}),
    ("novograd", {"name": "novograd"}),
    ("novograd_wd_averaging", {"name": "novograd", "betas": [0.8, 0.5], "weight_decay": 0.001,
                               "grad_averaging": True}),
    ("novograd_amsgrad", {"name": "novograd", "betas": [0.9, 0.7], "weight_decay": 0.01,
                          "amsgrad": True}),
]


def make_optimizer(config, params):
    kw = {k: v for k, v in config.items() if k != "name"}
    if "betas" in kw:
        kw["betas"] = tuple(kw["betas"])
    if config["name"] == "sgd":
        return torch.optim.SGD(params, lr=LRS[0], **kw)
    if config["name"] == "adamw":
        return torch.optim.AdamW(params, lr=LRS[0], **kw)
    return NovogradReference(params, lr=LRS[0], **kw)


def flat(t):
    return [float(x) for x in t.detach().reshape(-1)]


def run_case(config):
    params = {k: torch.nn.Parameter(v.clone()) for k, v in INIT.items()}
    opt = make_optimizer(config, list(params.values()))
    after = []
    for step in range(STEPS):
        for g in opt.param_groups:
            g["lr"] = LRS[step]
        for k, p in params.items():
            p.grad = None if SKIP.get(step) == k else GRADS[step][k].clone()
        opt.step()
        after.append({k: flat(p) for k, p in params.items()})
    state = {}
    for k, p in params.items():
        st = opt.state[p]
        for slot in ("momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            if slot in st and st[slot] is not None:
                state[f"{k}.{slot}"] = flat(st[slot])
        if "step" in st:
            state[f"{k}.step"] = int(st["step"])
    return {"config": config, "after": after, "state": state}


def clip_case(max_norm):
    grads = {k: torch.randn(s) * 2.0 for k, s in SHAPES.items()}
    params = {k: torch.nn.Parameter(torch.zeros(s)) for k, s in SHAPES.items()}
    for k, p in params.items():
        p.grad = grads[k].clone()
    total = torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm)
    return {
        "max_norm": max_norm,
        "grads": {k: flat(g) for k, g in grads.items()},
        "total_norm": float(total),
        "clipped": {k: flat(p.grad) for k, p in params.items()},
    }


# --- NeMo 0.x learning-rate policies (nemo/utils/lr_policies.py), restated -----------------

def nemo_lr(name, lr, step, total, warmup_steps=None, warmup_ratio=None, min_lr=0.0, power=1.0):
    if warmup_steps is not None:
        w = warmup_steps
    elif warmup_ratio is not None:
        w = int(warmup_ratio * total)
    else:
        w = 0
    if step < w:
        return lr * (step + 1) / (w + 1)
    if step > total:
        return min_lr  # 0.x returns 0 here; all cases below use min_lr 0 past the end or check min_lr
    if name == "WarmupPolicy":
        return lr
    if name == "WarmupAnnealing":
        # 0.x: max((progress - 1) / (warmup_ratio - 1), 0) * lr (no min_lr); today's adds min_lr.
        mult = (step - w) / (total - w)
        return min_lr + (1 - mult) * (lr - min_lr)
    if name == "CosineAnnealing":
        s, t = step - w, total - w
        return (lr - min_lr) * (0.5 * (1 + math.cos(math.pi * s / t))) + min_lr
    if name == "PolynomialDecayAnnealing":
        s, t = min(step - w, total - w), total - w
        return (lr - min_lr) * math.pow(1.0 - s / t, power) + min_lr
    raise ValueError(name)


def nemo0_warmup_annealing(lr, step, total, w):
    """NeMo 0.x's WarmupAnnealing literally (checks the restatement above with min_lr 0)."""
    if step < w:
        return lr * (step + 1) / (w + 1)
    if step > total:
        return 0
    progress = float(step / total)
    ratio = float(w / total)
    return lr * max((progress - 1.0) / (ratio - 1.0), 0.0)


SCHEDULES = [
    {"name": "WarmupPolicy", "lr": 0.01, "warmup_steps": 5},
    {"name": "WarmupAnnealing", "lr": 0.02, "warmup_ratio": 0.1},
    {"name": "WarmupAnnealing", "lr": 0.02, "warmup_steps": 7, "min_lr": 0.001},
    {"name": "CosineAnnealing", "lr": 0.05, "warmup_steps": 10, "min_lr": 1e-4},
    {"name": "CosineAnnealing", "lr": 0.01, "warmup_ratio": 0.05},
    {"name": "PolynomialDecayAnnealing", "lr": 0.1, "warmup_steps": 4, "power": 2.0,
     "min_lr": 1e-3},
    {"name": "PolynomialDecayAnnealing", "lr": 0.1, "power": 0.5},
]
TOTAL = 100
SCHED_STEPS = [0, 1, 3, 4, 5, 6, 9, 10, 11, 25, 50, 77, 99, 100, 101, 150]


def schedule_values(cfg):
    kw = {k: v for k, v in cfg.items() if k not in ("name", "lr")}
    return [nemo_lr(cfg["name"], cfg["lr"], s, TOTAL, **kw) for s in SCHED_STEPS]


def main():
    for s in SCHED_STEPS:  # the restated linear policy equals 0.x's with min_lr 0
        a = nemo_lr("WarmupAnnealing", 0.02, s, TOTAL, warmup_ratio=0.1)
        b = nemo0_warmup_annealing(0.02, s, TOTAL, 10)
        assert abs(a - b) < 1e-15, (s, a, b)
    out = {
        "shapes": {k: list(s) for k, s in SHAPES.items()},
        "init": {k: flat(v) for k, v in INIT.items()},
        "grads": [{k: flat(g) for k, g in step.items()} for step in GRADS],
        "lrs": LRS,
        "skip": {str(k): v for k, v in SKIP.items()},
        "cases": {name: run_case(cfg) for name, cfg in CASES},
        "clip": [clip_case(1.0), clip_case(100.0)],
        "schedules": {
            "max_steps": TOTAL,
            "steps": SCHED_STEPS,
            "cases": [{"config": c, "lr": schedule_values(c)} for c in SCHEDULES],
        },
    }
    path = os.path.join(os.path.dirname(__file__), "..", "nemo-core", "tests", "fixtures",
                        "optim.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.normpath(path)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
