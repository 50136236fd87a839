#!/usr/bin/env python3
"""Reference numbers for nemo-nlp's BLEU from SacreBLEU 2.6.0 (its parity test).

usage:
  scripts/sacrebleu_fixtures.py [--make-text CORPUS_DIR] [--out DIR]

  --make-text CORPUS_DIR  first (re)write the hypothesis/reference text pairs into DIR from the
                          DEV split of the Bible corpus (scripts/make_bible_corpus.sh writes it
                          to corpus/bible): verses of Joshua, Hosea, Ecclesiastes and Hebrews
                          (KJV English, RV1909 Spanish; public domain), perturbed systematically
                          with a fixed seed. Without it the committed pairs are scored as they are.
  --out DIR               the fixture folder (default nemo-nlp/tests/fixtures/bleu)

Then scores every pair with the sacrebleu Python API (default BLEU and variants: lowercase,
tokenize none, each smoothing, effective order, two references), sentence BLEU of some lines,
the exact 13a tokenisation of every line and of a list of tricky strings, and the text and JSON
lines the `sacrebleu` command prints, and writes DIR/expected.json. Needs `pip install
sacrebleu==2.6.0` (checked). The reserved evaluation books (Ruth, Jonah, Philemon, James, Titus)
are never read: only dev verses are used, and the script fails if a reserved book shows up.
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import zlib

import sacrebleu
from sacrebleu.metrics import BLEU
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

VERSION = "2.6.0"
DEV_BOOKS = {"Joshua", "Hosea", "Ecclesiastes", "Hebrews"}
RESERVED = re.compile(r"^(Ruth|Jonah|Philemon|James|Titus)\b")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(ROOT, "nemo-nlp", "tests", "fixtures", "bleu")

# Strings whose 13a tokenisation is easy to get wrong: overlapping regex matches, digits around
# separators, HTML entities, Python-only whitespace, unicode punctuation (left alone by 13a).
TRICKY = [
    "",
    " ",
    "a..",
    "a...b",
    "1.,a",
    ",.,.",
    "3.14 and 1,000 and 1,000.50 and .5 and 5.",
    "1-2 a-b 3--4 -5 x-1",
    "U.S.A. e.g. i.e.",
    "$5.00, 10% off; (really?) [yes] {no} <tag> a|b ~c ^d _e `f",
    "don't won't 'quoted' \"double\"",
    "&quot;x&quot; &amp; &lt;y&gt; &amp;amp; &apos;",
    "line one-\nline two\nthree",
    "<skipped> word <skipped>",
    "a\tb\u00a0c\u2009d\u3000e\u200bf",
    "x\u001cy\u001dz\u001eq\u001fw",
    "“Curly” ‘quotes’ — dashes – and… ellipsis",
    "¿Qué? ¡Sí! «comillas» dijo él.",
    "Moses’ minister, saying,",
    "end.",
    "1.a a.1 1.1 a.a",
    "@#$%^&*()+=:;<>?/\\",
    "trailing spaces   \u00a0 ",
    "ΣΊΣΥΦΟΣ İstanbul straße",
]


def die(msg):
    print(f"sacrebleu_fixtures.py: {msg}", file=sys.stderr)
    sys.exit(1)


def read_lines(path):
    # As nemo-nlp's read_lines: split at \n, drop one \r before it, keep empty lines.
    with open(path, encoding="utf-8", newline="") as f:
        data = f.read()
    if data == "":
        return []
    if data.endswith("\n"):
        data = data[:-1]
    return [line[:-1] if line.endswith("\r") else line for line in data.split("\n")]


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            assert "\n" not in line and "\r" not in line, line
            f.write(line + "\n")


# --- text pairs ---------------------------------------------------------------------------------
def dev_verses(corpus):
    refs = read_lines(os.path.join(corpus, "dev.ref"))
    en = read_lines(os.path.join(corpus, "dev.en"))
    es = read_lines(os.path.join(corpus, "dev.es"))
    if not (len(refs) == len(en) == len(es)) or not refs:
        die(f"{corpus}: dev.ref/en/es are missing or of different lengths")
    for r in refs:
        if RESERVED.match(r):
            die(f"FATAL: reserved book in the dev split: {r}")
        if r.rsplit(" ", 1)[0] not in DEV_BOOKS:
            die(f"{r} is not in a dev book {sorted(DEV_BOOKS)}")
    return refs, en, es


def drop_words(rng, line, p):
    words = line.split(" ")
    kept = [w for w in words if rng.random() >= p]
    return " ".join(kept if kept else words[:1])


def swap_words(rng, line, p):
    words = line.split(" ")
    i = 0
    while i + 1 < len(words):
        if rng.random() < p:
            words[i], words[i + 1] = words[i + 1], words[i]
            i += 2
        else:
            i += 1
    return " ".join(words)


def punctuation(rng, line):
    out = []
    for w in line.split(" "):
        r = rng.random()
        if r < 0.15:
            w = w.rstrip(",;:.")
        elif r < 0.25:
            w = w + rng.choice([",", ";", " ,", " .", "!", "?", ":", "..."])
        elif r < 0.3:
            w = rng.choice(["(", "\"", "'", "["]) + w + rng.choice([")", "\"", "'", "]"])
        out.append(w)
    return " ".join(out)


def casing(rng, line):
    out = []
    for w in line.split(" "):
        r = rng.random()
        out.append(w.upper() if r < 0.15 else w.lower() if r < 0.45 else w.capitalize() if r < 0.55 else w)
    return " ".join(out)


UNICODE_SWAPS = [
    (",", "，"), (";", " ;"), ("'", "’"), ("’", "'"), (":", "\u00a0:"), (".", " ."),
    (" ", "\u2009"), (" ", "\u00a0"), ("-", "—"), ("the", "“the”"), ("and", "and\u200b"),
]


def unicode_punct(rng, line):
    for a, b in UNICODE_SWAPS:
        if a in line and rng.random() < 0.35:
            i = line.index(a)
            line = line[:i] + b + line[i + len(a):]
    if rng.random() < 0.2:
        line = "« " + line + " »"
    if rng.random() < 0.15:
        line = line + "…"
    return line


NUMBERS = ["1,000", "3.14", "12-15", "$5.00", "2,500.75", "10.", "7,", "1.5%", "99-100", "0.5"]


def numbers(rng, line, hyp):
    words = line.split(" ")
    r = random.Random(zlib.crc32(line.encode()))  # same positions on both sides
    for _ in range(2):
        i = r.randrange(len(words) + 1)
        n = r.choice(NUMBERS)
        if hyp and rng.random() < 0.4:
            n = n.replace(",", "").replace(".", ",", 1)
        words.insert(i, n)
    return " ".join(words)


def make_text(corpus, out):
    refs, en, es = dev_verses(corpus)
    rng = random.Random(20240917)
    os.makedirs(out, exist_ok=True)

    def pick(start, n, step):
        idx = [start + i * step for i in range(n)]
        if idx[-1] >= len(en):
            die("not enough dev verses")
        return idx

    pairs = {}
    i = pick(0, 20, 7)
    pairs["perfect"] = ([en[k] for k in i], [en[k] for k in i])
    i = pick(3, 20, 11)
    pairs["dropped_words"] = ([drop_words(rng, en[k], 0.15) for k in i], [en[k] for k in i])
    i = pick(5, 20, 13)
    pairs["swapped_words"] = ([swap_words(rng, en[k], 0.2) for k in i], [en[k] for k in i])
    i = pick(7, 20, 9)
    pairs["punctuation"] = ([punctuation(rng, en[k]) for k in i], [en[k] for k in i])
    i = pick(11, 20, 17)
    pairs["casing"] = ([casing(rng, en[k]) for k in i], [en[k] for k in i])
    i = pick(13, 20, 19)
    hyp = [drop_words(rng, en[k], 0.1) for k in i]
    ref = [en[k] for k in i]
    for k in range(0, 20, 5):
        hyp[k] = ""
    ref[7] = ""  # an empty reference too
    hyp[9] = "   "
    pairs["empty_lines"] = (hyp, ref)
    i = pick(17, 20, 23)
    pairs["unicode_punct"] = ([unicode_punct(rng, en[k]) for k in i], [en[k] for k in i])
    i = pick(19, 20, 29)
    pairs["numbers"] = ([numbers(rng, en[k], True) for k in i], [numbers(rng, en[k], False) for k in i])
    i = pick(23, 20, 31)
    pairs["short_hyps"] = ([" ".join(en[k].split(" ")[: 2 + k % 4]) for k in i], [en[k] for k in i])
    i = pick(29, 20, 14)
    pairs["spanish"] = ([swap_words(rng, drop_words(rng, es[k], 0.1), 0.1) for k in i], [es[k] for k in i])
    i = pick(31, 20, 37)
    pairs["unrelated"] = ([en[k + 1] for k in i], [en[k] for k in i])
    # Fewer than four tokens: no 4-gram at all, so the score is 0 without effective order.
    k = pick(43, 1, 1)[0]
    words = en[k].split(" ")
    pairs["tiny"] = ([" ".join(words[:3])], [" ".join(words[:4])])
    i = pick(37, 20, 41)
    hyp = [swap_words(rng, drop_words(rng, en[k], 0.1), 0.1) for k in i]
    pairs["two_refs"] = (hyp, [en[k] for k in i], [casing(rng, punctuation(rng, en[k])) for k in i])

    for name, (hyp, *streams) in pairs.items():
        write_lines(os.path.join(out, f"{name}.hyp"), hyp)
        for r, stream in enumerate(streams):
            suffix = "ref" if r == 0 else f"ref{r + 1}"
            write_lines(os.path.join(out, f"{name}.{suffix}"), stream)
    print(f"wrote {len(pairs)} pairs to {out}")


# --- scoring ------------------------------------------------------------------------------------
VARIANTS = {
    "default": {},
    "lowercase": {"lowercase": True},
    "tok_none": {"tokenize": "none"},
    "smooth_none": {"smooth_method": "none"},
    "smooth_floor": {"smooth_method": "floor"},
    "smooth_add_k": {"smooth_method": "add-k"},
    "effective_order": {"effective_order": True},
}


def score_dict(score, sig):
    return {
        "score": score.score,
        "counts": [int(c) for c in score.counts],
        "totals": [int(t) for t in score.totals],
        "precisions": score.precisions,
        "bp": score.bp,
        "ratio": score.ratio,
        "sys_len": score.sys_len,
        "ref_len": score.ref_len,
        "signature": sig,
    }


def cli(args):
    return subprocess.run(
        [sys.executable, "-m", "sacrebleu", *args], check=True, capture_output=True, text=True
    ).stdout.rstrip("\n")


def score_all(out):
    if sacrebleu.__version__ != VERSION:
        die(f"sacrebleu {sacrebleu.__version__} is installed; pip install sacrebleu=={VERSION}")
    names = sorted(f[: -len(".hyp")] for f in os.listdir(out) if f.endswith(".hyp"))
    if not names:
        die(f"no *.hyp files in {out} (run with --make-text first)")
    tok = Tokenizer13a()
    cases = []
    for name in names:
        hyp_file = f"{name}.hyp"
        ref_files = sorted(f for f in os.listdir(out) if re.fullmatch(rf"{re.escape(name)}\.ref\d*", f))
        hyps = read_lines(os.path.join(out, hyp_file))
        refs = [read_lines(os.path.join(out, f)) for f in ref_files]
        case = {"name": name, "hyp": hyp_file, "refs": ref_files, "variants": {}}
        for vname, kwargs in VARIANTS.items():
            bleu = BLEU(**kwargs)
            s = bleu.corpus_score(hyps, refs)
            case["variants"][vname] = score_dict(s, str(bleu.get_signature()))
        # What the command prints (its default width is 1).
        paths = [os.path.join(out, f) for f in ref_files]
        case["cli_text"] = cli([*paths, "-i", os.path.join(out, hyp_file), "-f", "text"])
        case["cli_json"] = cli([*paths, "-i", os.path.join(out, hyp_file)])
        # Sentence BLEU (sacrebleu.sentence_bleu: effective order) of the first lines.
        case["sentence"] = []
        for k in range(min(5, len(hyps))):
            line_refs = [r[k] for r in refs]
            s = sacrebleu.sentence_bleu(hyps[k], line_refs)
            case["sentence"].append({"line": k, **score_dict(s, "")})
        # The exact 13a tokenisation of every line of every file of the case.
        case["tokenize_13a"] = {hyp_file: [tok(l) for l in hyps]}
        for f, r in zip(ref_files, refs):
            case["tokenize_13a"][f] = [tok(l) for l in r]
        cases.append(case)
    expected = {
        "sacrebleu_version": sacrebleu.__version__,
        "cases": cases,
        "tricky_13a": [{"text": s, "tokens": tok(s), "lower": s.lower()} for s in TRICKY],
    }
    path = os.path.join(out, "expected.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
        f.write("\n")
    for c in cases:
        print(f"  {c['name']:<14} {c['variants']['default']['score']:8.4f}  {c['cli_text']}")
    print(f"wrote {path}: {len(cases)} cases, {len(TRICKY)} tricky strings")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--make-text", metavar="CORPUS_DIR")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    if args.make_text:
        make_text(args.make_text, args.out)
    score_all(args.out)


if __name__ == "__main__":
    main()
