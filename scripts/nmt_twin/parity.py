#!/usr/bin/env python3
"""Expected tokens of NeMo 0.x's beam and greedy search on a tiny seeded model, for nemo-core's
parity test (nemo-core/tests/nmt_twin_parity.rs).

Needs PyTorch (`apt-get install -y python3-torch`; run with `/usr/bin/python3`). Regenerate the
fixture from the repository root with:

    cargo run -p nemo-core --example nmt_twin_fixture -- /tmp/nmt_twin
    /usr/bin/python3 scripts/nmt_twin/parity.py /tmp/nmt_twin nemo-core/tests/fixtures/nmt_twin_parity.json

The example writes the model's weights (`weights.safetensors`, nemo-rs's names) and
`inputs.json` (config, seed, special ids, source batches); this script decodes every batch with
`model.nemo_beam_search` (beam 4, length penalty 0 and 1) and `model.nemo_greedy_search`, checks
that the key/value-cache search gives the same tokens, and writes the config, the sources and the
expected ids (BOS, EOS and PAD removed) — not the weights, which the test rebuilds from the seed.
It refuses inputs where a live hypothesis would be fed PAD or greedy search emits PAD before EOS
(NeMo's masking of such a step is not nemo-core's), and reports whether the length penalty
changes an answer and whether a hypothesis ends while others go on.
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as twin  # noqa: E402

MAX_DELTA = 6
BEAM = 4


def main():
    src_dir, out_path = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    with open(os.path.join(src_dir, "inputs.json")) as f:
        inputs = json.load(f)
    cfg = inputs["config"]
    pad, bos, eos = inputs["pad"], inputs["bos"], inputs["eos"]
    m = twin.TwinModel(cfg).eval()
    m.load_weights(twin.read_safetensors(os.path.join(src_dir, "weights.safetensors")))

    cases, penalty_matters, ends_early = [], False, False
    for bi, rows in enumerate(inputs["batches"]):
        src, src_mask = twin.batch(rows, pad)
        limit = twin.max_length(src.shape[1], cfg["max_seq_length"], MAX_DELTA)
        common = dict(max_seq_length=cfg["max_seq_length"], max_delta_length=MAX_DELTA)
        answers = {}
        for len_pen in (0.0, 1.0):
            fed_pad = []
            out = twin.nemo_beam_search(m, src, src_mask, bos, eos, pad, BEAM, len_pen,
                                        fed_pad=fed_pad, **common)
            if fed_pad:
                sys.exit(f"batch {bi}, len_pen {len_pen}: a live hypothesis is fed PAD at "
                         f"steps {fed_pad}; pick other inputs")
            kv = twin.beam_search_kv(m, src, src_mask, bos, eos, pad, BEAM, len_pen, **common)
            if not torch.equal(out, kv):
                sys.exit(f"batch {bi}: the memory and key/value searches disagree:\n{out}\n{kv}")
            expected = [twin.strip(r, eos, pad) for r in out.tolist()]
            # A row's best hypothesis ended (EOS) before the search's last step.
            early = [eos in r[1:] and r.index(eos, 1) < out.shape[1] - 1 for r in out.tolist()]
            ends_early |= any(early)
            answers[len_pen] = expected
            cases.append({"batch": bi, "search": "beam", "beam_size": BEAM, "len_pen": len_pen,
                          "limit": limit, "steps": out.shape[1] - 1, "ended_early": early,
                          "expected": expected})
        penalty_matters |= answers[0.0] != answers[1.0]
        out = twin.nemo_greedy_search(m, src, src_mask, bos, eos, pad, **common)
        for r in out.tolist():
            body = r[1:r.index(eos)] if eos in r[1:] else r[1:]
            if pad in body:
                sys.exit(f"batch {bi}: greedy search emits PAD before EOS: {r}")
        cases.append({"batch": bi, "search": "greedy", "limit": limit - 1,
                      "steps": out.shape[1] - 1,
                      "expected": [twin.strip(r, eos, pad) for r in out.tolist()]})

    print(f"length penalty changes an answer: {penalty_matters}; "
          f"a best hypothesis ends before its search: {ends_early}")
    fixture = {
        "generator": "scripts/nmt_twin/parity.py (see its docstring); PyTorch "
                     + torch.__version__,
        "config": cfg,
        "seed": inputs["seed"],
        "pad": pad,
        "bos": bos,
        "eos": eos,
        "max_delta_length": MAX_DELTA,
        "batches": inputs["batches"],
        "cases": cases,
    }
    with open(out_path, "w") as f:
        # One line per key, one per case: small diffs when it is regenerated.
        lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in fixture.items() if k != "cases"]
        cases_text = ",\n".join(f"  {json.dumps(c)}" for c in cases)
        f.write("{\n" + ",\n".join(lines) + f',\n "cases": [\n{cases_text}\n ]\n}}\n')
    print(f"wrote {out_path}: {len(cases)} cases")


if __name__ == "__main__":
    main()
