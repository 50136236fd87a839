"""The NMT twin in PyTorch: NeMo 0.x's Transformer encoder-decoder for translation and its
greedy and beam search, written against nemo-rs's parameter names so that one safetensors file
loads into both (see nemo-core/tests/support/nmt_twin.rs for the Rust side).

Needs PyTorch: Debian's package (`apt-get install -y python3-torch`, 1.13 on Debian 12), run
with the system interpreter `/usr/bin/python3`. No other package: safetensors files are read and
written by the 40 lines below.

What it reproduces of NeMo 0.x (`nemo/collections/nlp/nm/trainables/common/transformer/`,
v0.11.1): post-LN blocks (pre-LN as an option, as nemo-core has it), the embedding's LayerNorm
right after token + sinusoidal position (the table divided by sqrt(D), no sqrt(D) scale on the
tokens), Q and K each divided by d_head^(1/4), additive masks of -10000, ReLU feed-forward, one
token table tied to the encoder's embedding, the decoder's and the output layer (which has its
own bias), NeMo's initialization (Xavier-uniform linears, zero biases, N(0, D^-1/2) embeddings),
its label-smoothed loss, and `GreedySequenceGenerator` / `BeamSearchSequenceGenerator` step for
step (`nemo_greedy_search`, `nemo_beam_search`), decoding over NeMo's per-layer memory of
hidden states. One line of NeMo's beam search is not copied: it repeats the first step's memory
with `.repeat(beam, 1, 1)`, which tiles the batch (item 0, 1, ..., 0, 1, ...) where every other
tensor is interleaved (0, 0, ..., 1, 1, ...), so with a batch of more than one sentence and two
or more decoder layers, beams read another sentence's states at the BOS position. Here the
memory is interleaved like the rest (`repeat_interleave`).

`beam_search_kv` is the same search over a key/value cache (what nemo-core runs; the tokens are
the same, it is faster) — the one `translate.py` times.

Names (nemo-rs's, NeMo's inside the blocks):
  encoder_embedding.token_embedding.weight   (V, D), tied to the decoder and the output layer
  encoder_embedding.layer_norm.{weight,bias}, decoder_embedding.layer_norm.{weight,bias}
  encoder.layers.{i}.first_sub_layer.{query_net,key_net,value_net,out_projection,layer_norm}.*
  encoder.layers.{i}.second_sub_layer.{dense_in,dense_out,layer_norm}.*
  decoder.layers.{i}.{first,second}_sub_layer.* (attention), third_sub_layer.* (feed-forward)
  {encoder,decoder}.final_layer_norm.*       (pre-LN only)
  log_softmax.mlp.layer0.bias                (V)
"""

import json
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

NEG_INF = -10000.0

# ---------------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, a JSON header {name: {dtype, shape,
# data_offsets}}, then the raw little-endian data.

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16,
           "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        raw = bytearray(data[start:end])
        t = torch.frombuffer(raw, dtype=_DTYPES[meta["dtype"]]) if raw else torch.empty(0)
        out[name] = t.reshape(meta["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    names = {v: k for k, v in _DTYPES.items()}
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        blob = t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


# ---------------------------------------------------------------------------------------------
# The model.

def sinusoidal_table(max_len, d):
    """NeMo's FixedPositionalEncoding, computed in float64 and rounded once (as nemo-core)."""
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2, dtype=torch.float64) / d)
    table = torch.zeros(max_len, d, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : d // 2]
    return (table / math.sqrt(d)).float()


class Embedding(nn.Module):
    def __init__(self, cfg, token_embedding=None):
        super().__init__()
        self.token_embedding = token_embedding or nn.Embedding(cfg["vocab_size"], cfg["d_model"])
        self.layer_norm = nn.LayerNorm(cfg["d_model"], eps=1e-5)
        self.dropout = nn.Dropout(cfg.get("dropout", 0.0))
        self.register_buffer("pos_enc", sinusoidal_table(cfg["max_seq_length"], cfg["d_model"]),
                             persistent=False)

    def forward(self, ids, start_pos=0):
        h = self.token_embedding(ids) + self.pos_enc[start_pos:start_pos + ids.shape[1]]
        return self.dropout(self.layer_norm(h))


class MultiHeadAttention(nn.Module):
    """NeMo's MultiHeadAttention without the residual (the blocks add it and `layer_norm`)."""

    def __init__(self, cfg):
        super().__init__()
        d, self.heads = cfg["d_model"], cfg["num_attn_heads"]
        self.head = d // self.heads
        self.scale = math.sqrt(math.sqrt(self.head))
        self.query_net, self.key_net = nn.Linear(d, d), nn.Linear(d, d)
        self.value_net, self.out_projection = nn.Linear(d, d), nn.Linear(d, d)
        self.layer_norm = nn.LayerNorm(d, eps=1e-5)
        p = cfg.get("dropout", 0.0)
        self.score_dropout, self.layer_dropout = nn.Dropout(p), nn.Dropout(p)

    def split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head).permute(0, 2, 1, 3)

    def key_values(self, keys, values):
        return self.split(self.key_net(keys)) / self.scale, self.split(self.value_net(values))

    def attend(self, queries, k, v, mask):
        q = self.split(self.query_net(queries)) / self.scale
        scores = torch.matmul(q, k.transpose(-1, -2))
        if mask is not None:
            scores = scores + mask
        probs = self.score_dropout(torch.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        out = self.out_projection(ctx.view(queries.shape[0], queries.shape[1], -1))
        return self.layer_dropout(out)

    def forward(self, queries, keys, values, mask):
        return self.attend(queries, *self.key_values(keys, values), mask)


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, inner = cfg["d_model"], cfg["d_inner"]
        self.dense_in, self.dense_out = nn.Linear(d, inner), nn.Linear(inner, d)
        self.layer_norm = nn.LayerNorm(d, eps=1e-5)
        self.dropout = nn.Dropout(cfg.get("dropout", 0.0))

    def forward(self, x):
        return self.dropout(self.dense_out(F.relu(self.dense_in(x))))


def residual(x, sub, pre_ln, fn):
    """Post-LN `LN(x + fn(x))` (NeMo 0.x) or pre-LN `x + fn(LN(x))`."""
    if pre_ln:
        return x + fn(sub.layer_norm(x))
    return sub.layer_norm(x + fn(x))


class EncoderBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.pre_ln = cfg.get("pre_ln", False)
        self.first_sub_layer, self.second_sub_layer = MultiHeadAttention(cfg), FeedForward(cfg)

    def forward(self, x, mask):
        a = self.first_sub_layer
        x = residual(x, a, self.pre_ln, lambda h: a(h, h, h, mask))
        return residual(x, self.second_sub_layer, self.pre_ln, self.second_sub_layer)


class DecoderBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.pre_ln = cfg.get("pre_ln", False)
        self.first_sub_layer = MultiHeadAttention(cfg)
        self.second_sub_layer = MultiHeadAttention(cfg)
        self.third_sub_layer = FeedForward(cfg)

    def forward(self, x, memory, self_mask, enc, enc_mask):
        """`x` attends to `memory` (NeMo: the layer's inputs at all positions so far)."""
        s, c = self.first_sub_layer, self.second_sub_layer
        if self.pre_ln:
            x = x + s(s.layer_norm(x), s.layer_norm(memory), s.layer_norm(memory), self_mask)
        else:
            x = s.layer_norm(x + s(x, memory, memory, self_mask))
        x = residual(x, c, self.pre_ln, lambda h: c(h, enc, enc, enc_mask))
        return residual(x, self.third_sub_layer, self.pre_ln, self.third_sub_layer)

    def step_kv(self, x, cache, self_mask, cross_kv, enc_mask):
        """One step over a key/value cache `cache` (k, v) of past positions, or None."""
        s, c = self.first_sub_layer, self.second_sub_layer

        def self_attn(h):
            k, v = s.key_values(h, h)
            if cache is not None:
                k, v = torch.cat((cache[0], k), 2), torch.cat((cache[1], v), 2)
            out.append((k, v))
            return s.attend(h, k, v, self_mask)

        out = []
        x = residual(x, s, self.pre_ln, self_attn)
        x = residual(x, c, self.pre_ln, lambda h: c.attend(h, *cross_kv, enc_mask))
        return residual(x, self.third_sub_layer, self.pre_ln, self.third_sub_layer), out[0]


class Stack(nn.Module):
    def __init__(self, cfg, block):
        super().__init__()
        self.layers = nn.ModuleList([block(cfg) for _ in range(cfg["num_layers"])])
        if cfg.get("pre_ln", False):
            self.final_layer_norm = nn.LayerNorm(cfg["d_model"], eps=1e-5)
        else:
            self.final_layer_norm = None

    def finish(self, h):
        return h if self.final_layer_norm is None else self.final_layer_norm(h)


def padding_mask(mask):
    """(B, T) validity -> additive (B, 1, 1, T)."""
    return ((1.0 - mask.float()) * NEG_INF)[:, None, None, :]


def causal_mask(mask):
    """(B, T) validity -> additive (B, 1, T, T): causal and padded keys masked (NeMo's
    form_attention_mask with diagonal=0)."""
    t = mask.shape[1]
    tril = torch.tril(torch.ones(t, t, dtype=torch.bool, device=mask.device))
    allowed = mask.bool()[:, None, :] & tril[None]
    return ((1.0 - allowed.float()) * NEG_INF)[:, None]


class OutputLayer(nn.Module):
    """NeMo's TokenClassifier(num_layers=1, log_softmax=True) with the weight tied: only the
    bias is its own (`log_softmax.mlp.layer0.bias`)."""

    def __init__(self, vocab):
        super().__init__()
        self.mlp = nn.Module()
        self.mlp.layer0 = nn.Module()
        self.mlp.layer0.bias = nn.Parameter(torch.zeros(vocab))


class TwinModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.encoder_embedding = Embedding(cfg)
        self.decoder_embedding = Embedding(cfg, self.encoder_embedding.token_embedding)
        self.encoder = Stack(cfg, EncoderBlock)
        self.decoder = Stack(cfg, DecoderBlock)
        self.log_softmax = OutputLayer(cfg["vocab_size"])

    # -- weights ------------------------------------------------------------------------------

    def nemo_init(self):
        """NeMo's transformer_weights_init: Xavier-uniform linears, zero biases, N(0, D^-1/2)
        embeddings, LayerNorm 1 and 0 (from torch's global generator: seed it first)."""
        std = self.cfg["d_model"] ** -0.5
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, 0.0, std)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.log_softmax.mlp.layer0.bias)

    def named_weights(self):
        """Parameters by nemo-rs name, the tied table once (under the encoder's name)."""
        return dict(self.named_parameters())

    def load_weights(self, tensors):
        own = self.named_weights()
        missing = sorted(set(own) - set(tensors))
        unknown = sorted(set(tensors) - set(own))
        if missing or unknown:
            raise KeyError(f"weights do not fit the model: missing {missing}, unknown {unknown}")
        with torch.no_grad():
            for name, p in own.items():
                if tuple(tensors[name].shape) != tuple(p.shape):
                    raise ValueError(f"{name}: {tuple(tensors[name].shape)} != {tuple(p.shape)}")
                p.copy_(tensors[name])

    # -- forward ------------------------------------------------------------------------------

    def encode(self, src, src_mask):
        h = self.encoder_embedding(src)
        mask = padding_mask(src_mask)
        for layer in self.encoder.layers:
            h = layer(h, mask)
        return self.encoder.finish(h)

    def logits(self, h):
        return F.linear(h, self.encoder_embedding.token_embedding.weight,
                        self.log_softmax.mlp.layer0.bias)

    def log_probs(self, tgt, tgt_mask, enc, src_mask):
        """Teacher forcing: (B, T, V) log-probabilities after each target position."""
        h = self.decoder_embedding(tgt)
        self_mask, enc_mask = causal_mask(tgt_mask), padding_mask(src_mask)
        for layer in self.decoder.layers:
            h = layer(h, h, self_mask, enc, enc_mask)
        return torch.log_softmax(self.logits(self.decoder.finish(h)), dim=-1)

    def nemo_step(self, ids, enc, enc_mask_add, mems, pos, pad):
        """NeMo's `_forward`: embed `ids` (N, 1) at `pos`, run the decoder over its per-layer
        memory `mems` (inputs of each layer at past positions, then the last output; None at
        the start), return (N, V) log-probabilities and the grown memory. A PAD input masks
        every key of its step (NeMo's form_attention_mask of the step's mask)."""
        h = self.decoder_embedding(ids, start_pos=pos)
        self_mask = ((ids == pad).float() * NEG_INF)[:, None, :, None]  # (N, 1, 1, 1)
        memory = h if mems is None else torch.cat((mems[0], h), 1)
        new_mems = [memory]
        for i, layer in enumerate(self.decoder.layers):
            h = layer(h, memory, self_mask, enc, enc_mask_add)
            memory = h if mems is None else torch.cat((mems[i + 1], h), 1)
            new_mems.append(memory)
        out = self.decoder.finish(h[:, -1])
        return torch.log_softmax(self.logits(out), dim=-1), new_mems

    def kv_start(self, enc):
        return [layer.second_sub_layer.key_values(enc, enc) for layer in self.decoder.layers]

    def kv_step(self, ids, cache, cross, enc_mask_add, pos):
        """One step over key/value caches: (N, V) log-probabilities and the grown cache."""
        h = self.decoder_embedding(ids, start_pos=pos)
        new = []
        for i, layer in enumerate(self.decoder.layers):
            h, kv = layer.step_kv(h, None if cache is None else cache[i], None, cross[i],
                                  enc_mask_add)
            new.append(kv)
        out = self.decoder.finish(h[:, -1])
        return torch.log_softmax(self.logits(out), dim=-1), new


def smoothed_loss(log_probs, labels, mask, label_smoothing):
    """NeMo's SmoothedCrossEntropyLoss: smoothing s = V·eps/(V−1),
    loss = −Σ mask·((1−s)·logp[y] + s·mean_v logp[v]) / (Σ mask + 1e-6)."""
    v = log_probs.shape[-1]
    s = label_smoothing * v / (v - 1)
    target = log_probs.gather(2, labels.unsqueeze(2)).squeeze(2)
    nll = (1.0 - s) * target + s * log_probs.mean(dim=-1)
    mask = mask.to(log_probs.dtype)
    return -(nll * mask).sum() / (mask.sum() + 1e-6)


# ---------------------------------------------------------------------------------------------
# Search: NeMo 0.x's generators.

def max_length(src_len, max_seq_length, max_delta_length):
    """NeMo's bound on the generated prefix: min(max_sequence_length, src_len + delta), where
    src_len is the batch's padded source length (BOS and EOS included)."""
    return min(max_seq_length, src_len + max_delta_length)


@torch.no_grad()
def nemo_greedy_search(model, src, src_mask, bos, eos, pad, max_seq_length=512,
                       max_delta_length=20):
    """GreedySequenceGenerator.forward: (B, 1 + n) ids, BOS first, PAD after EOS."""
    enc, enc_mask = model.encode(src, src_mask), padding_mask(src_mask)
    b = src.shape[0]
    tgt = torch.full((b, 1), bos, dtype=torch.long)
    steps = max_length(src.shape[1], max_seq_length, max_delta_length) - 1
    pad_profile = torch.zeros(b, 1, dtype=torch.long)
    mems = None
    for i in range(steps):
        log_probs, mems = model.nemo_step(tgt[:, -1:], enc, enc_mask, mems, i, pad)
        nxt = torch.argmax(log_probs, dim=-1, keepdim=True)
        nxt = pad * pad_profile + nxt * (1 - pad_profile)
        pad_profile = torch.max(pad_profile, (nxt == eos).long())
        tgt = torch.cat((tgt, nxt), dim=-1)
        if pad_profile.sum() == b:
            break
    return tgt


@torch.no_grad()
def nemo_beam_search(model, src, src_mask, bos, eos, pad, beam_size=4, len_pen=0.0,
                     max_seq_length=512, max_delta_length=20, fed_pad=None):
    """BeamSearchSequenceGenerator.forward over NeMo's memory of hidden states: (B, 1 + n) ids
    of the best hypotheses, BOS first, EOS and PAD inside. `fed_pad`, a list, receives an entry
    whenever a live hypothesis is fed PAD (NeMo masks every key of such a step; nemo-core does
    not, so parity fixtures avoid it)."""
    k = beam_size
    enc, enc_mask = model.encode(src, src_mask), padding_mask(src_mask)
    b, s, d = enc.shape
    tgt = torch.full((b, 1), bos, dtype=torch.long)
    steps = max_length(s, max_seq_length, max_delta_length) - 1

    log_probs, mems = model.nemo_step(tgt, enc, enc_mask, None, 0, pad)
    scores, prefixes = torch.topk(log_probs, k, dim=-1)
    scores, prefixes = scores.reshape(-1, 1), prefixes.reshape(-1, 1)
    prefixes = torch.cat((tgt.repeat(1, k).view(-1, 1), prefixes), dim=1)
    mems = [m.repeat_interleave(k, dim=0) for m in mems]  # NeMo: .repeat(k, 1, 1), see above
    enc = enc.repeat_interleave(k, dim=0)
    enc_mask = enc_mask.repeat_interleave(k, dim=0)

    pad_profile = torch.zeros_like(scores).long()
    prefixes_len = torch.zeros_like(scores).fill_(prefixes.shape[1] + 1)
    for i in range(steps):
        pad_mask = pad_profile.repeat(1, k)
        if fed_pad is not None and bool(((prefixes[:, -1:] == pad) & (pad_profile == 0)).any()):
            fed_pad.append(i)
        log_probs, mems = model.nemo_step(prefixes[:, -1:], enc, enc_mask, mems, i + 1, pad)
        scores_i, prefixes_i = torch.topk(log_probs, k, dim=-1)
        prefixes_i = pad * pad_mask + prefixes_i * (1 - pad_mask)
        pad_mask[:, 1:] = pad_mask[:, 1:] * NEG_INF
        scores = scores + scores_i * (1 - pad_mask).to(scores.dtype)
        scores = scores / prefixes_len.pow(len_pen)
        scores, indices_i = torch.topk(scores.view(-1, k ** 2), k, dim=1)
        scores = scores.view(-1, 1) * prefixes_len.pow(len_pen)
        prefixes = prefixes.unsqueeze(1).repeat(1, k, 1)
        prefixes = torch.cat((prefixes, prefixes_i.unsqueeze(2)), dim=2)
        prefixes = prefixes.view(b, k ** 2, -1)
        p_len = prefixes.shape[2]
        prefixes = prefixes.gather(1, indices_i.unsqueeze(2).repeat(1, 1, p_len)).view(-1, p_len)
        parents = (indices_i // k + torch.arange(b).unsqueeze(1) * k).view(-1)
        mems = [m[parents] for m in mems]
        not_eos_pad = prefixes.ne(eos) & prefixes.ne(pad)
        prefixes_len = 1 + not_eos_pad.sum(dim=1, keepdim=True).to(scores.dtype)
        pad_profile = (~not_eos_pad[:, -1:]).long()
        if pad_profile.sum() == b * k:
            break
    scores = scores / prefixes_len.pow(len_pen)
    best = torch.argmax(scores.view(-1, k), dim=1, keepdim=True)
    best = best.repeat(1, prefixes.shape[1]).unsqueeze(1)
    return prefixes.view(b, k, -1).gather(1, best).squeeze(1)


@torch.no_grad()
def beam_search_kv(model, src, src_mask, bos, eos, pad, beam_size=4, len_pen=0.0,
                   max_seq_length=512, max_delta_length=20):
    """The search of `nemo_beam_search` over key/value caches: the same tokens, faster (one
    projection per new position instead of re-projecting the whole memory each step)."""
    k = beam_size
    enc, enc_mask = model.encode(src, src_mask), padding_mask(src_mask)
    b, s, d = enc.shape
    tgt = torch.full((b, 1), bos, dtype=torch.long)
    steps = max_length(s, max_seq_length, max_delta_length) - 1
    cross = model.kv_start(enc)
    log_probs, cache = model.kv_step(tgt, None, cross, enc_mask, 0)
    scores, prefixes = torch.topk(log_probs, k, dim=-1)
    scores, prefixes = scores.reshape(-1, 1), prefixes.reshape(-1, 1)
    prefixes = torch.cat((tgt.repeat(1, k).view(-1, 1), prefixes), dim=1)
    cache = [(kk.repeat_interleave(k, 0), vv.repeat_interleave(k, 0)) for kk, vv in cache]
    cross = [(kk.repeat_interleave(k, 0), vv.repeat_interleave(k, 0)) for kk, vv in cross]
    enc_mask = enc_mask.repeat_interleave(k, dim=0)
    pad_profile = torch.zeros_like(scores).long()
    prefixes_len = torch.zeros_like(scores).fill_(prefixes.shape[1] + 1)
    for i in range(steps):
        pad_mask = pad_profile.repeat(1, k)
        log_probs, cache = model.kv_step(prefixes[:, -1:], cache, cross, enc_mask, i + 1)
        scores_i, prefixes_i = torch.topk(log_probs, k, dim=-1)
        prefixes_i = pad * pad_mask + prefixes_i * (1 - pad_mask)
        pad_mask[:, 1:] = pad_mask[:, 1:] * NEG_INF
        scores = scores + scores_i * (1 - pad_mask).to(scores.dtype)
        scores = scores / prefixes_len.pow(len_pen)
        scores, indices_i = torch.topk(scores.view(-1, k ** 2), k, dim=1)
        scores = scores.view(-1, 1) * prefixes_len.pow(len_pen)
        prefixes = prefixes.unsqueeze(1).repeat(1, k, 1)
        prefixes = torch.cat((prefixes, prefixes_i.unsqueeze(2)), dim=2)
        prefixes = prefixes.view(b, k ** 2, -1)
        p_len = prefixes.shape[2]
        prefixes = prefixes.gather(1, indices_i.unsqueeze(2).repeat(1, 1, p_len)).view(-1, p_len)
        parents = (indices_i // k + torch.arange(b).unsqueeze(1) * k).view(-1)
        cache = [(kk[parents], vv[parents]) for kk, vv in cache]
        not_eos_pad = prefixes.ne(eos) & prefixes.ne(pad)
        prefixes_len = 1 + not_eos_pad.sum(dim=1, keepdim=True).to(scores.dtype)
        pad_profile = (~not_eos_pad[:, -1:]).long()
        if pad_profile.sum() == b * k:
            break
    scores = scores / prefixes_len.pow(len_pen)
    best = torch.argmax(scores.view(-1, k), dim=1, keepdim=True)
    best = best.repeat(1, prefixes.shape[1]).unsqueeze(1)
    return prefixes.view(b, k, -1).gather(1, best).squeeze(1)


def strip(ids, eos, pad):
    """A generated row as nemo-core returns it: the leading BOS dropped, EOS and PAD removed
    (NeMo's ids_to_text drops them)."""
    return [int(t) for t in ids[1:] if int(t) not in (eos, pad)]


def batch(rows, pad):
    """Rows of ids -> (B, T) ids padded with `pad` and their (B, T) validity."""
    t = max(len(r) for r in rows)
    ids = torch.full((len(rows), t), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return ids, (ids != pad).long()
