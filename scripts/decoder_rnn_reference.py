#!/usr/bin/env python3
"""Reference outputs of NeMo 0.x's DecoderRnn (teacher-forced) for nemo-asr/tests/attention.rs.

Re-implements the module with PyTorch's own nn.Embedding, nn.GRU/nn.LSTM and nn.Linear and the
Luong "general" attention of NeMo's `Attention` (nemo/backends/pytorch/common/rnn.py, 0.x), plus
the encoder-length mask nemo-rs adds (masked_fill with -inf before the softmax). Weights are
random (seeded) and saved with the outputs under NeMo's parameter names.

Run: /usr/bin/python3 scripts/decoder_rnn_reference.py  (writes
nemo-asr/tests/fixtures/decoder_rnn_reference.json)
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)
torch.set_default_dtype(torch.float64)

V, H, B, TK, S = 7, 5, 2, 6, 4
BOS = 0


class Attention(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.linear_in = nn.Linear(h, h, bias=False)
        self.linear_out = nn.Linear(2 * h, h, bias=False)

    def forward(self, query, context, mask):
        query = self.linear_in(query)
        scores = torch.bmm(query, context.transpose(1, 2))
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        mix = torch.bmm(weights, context)
        out = torch.tanh(self.linear_out(torch.cat((mix, query), dim=2)))
        return out, weights


class DecoderRnn(nn.Module):
    def __init__(self, rnn_type):
        super().__init__()
        self.embedding = nn.Embedding(V, H)
        self.rnn = getattr(nn, rnn_type.upper())(H, H, 1, batch_first=True)
        self.out = nn.Linear(H, V)
        self.attention = Attention(H)

    def forward(self, targets, enc, lengths):
        inputs = F.pad(targets[:, :-1], (1, 0), value=BOS)
        x = self.embedding(inputs)
        h, _ = self.rnn(x)
        mask = torch.arange(enc.shape[1])[None, :] < lengths[:, None]
        h, w = self.attention(h, enc, mask)
        return F.log_softmax(self.out(h), dim=-1), w


cases = []
enc = torch.randn(B, TK, H)
lengths = torch.tensor([6, 4])
targets = torch.tensor([[1, 2, 3, 6], [4, 3, 6, 6]])
for rnn_type in ["gru", "lstm"]:
    m = DecoderRnn(rnn_type)
    with torch.no_grad():
        logp, w = m(targets, enc, lengths)
    cases.append(
        {
            "rnn_type": rnn_type,
            "weights": {
                k: {"shape": list(v.shape), "data": v.flatten().tolist()}
                for k, v in m.state_dict().items()
            },
            "log_probs": logp.flatten().tolist(),
            "attention_weights": w.flatten().tolist(),
        }
    )

out = {
    "voc_size": V,
    "hidden_size": H,
    "bos_id": BOS,
    "encoder_outputs": {"shape": list(enc.shape), "data": enc.flatten().tolist()},
    "encoder_lengths": lengths.tolist(),
    "targets": targets.tolist(),
    "cases": cases,
}
path = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "../nemo-asr/tests/fixtures/decoder_rnn_reference.json",
)
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path))
