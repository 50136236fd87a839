#!/usr/bin/env bash
# The NMT demo: builds the English->Spanish Bible corpus (scripts/make_bible_corpus.sh, installing
# the SWORD modules if missing), trains the paper's Transformer NMT on it for a time budget, averages
# the last checkpoints, and prints dev and test BLEU (SacreBLEU's defaults; beam 4). Dev and test
# books are never trained on; the reserved books (Ruth, Jonah, Philemon, James, Titus) are in no split.
#
# usage: scripts/nmt_demo.sh [--minutes M] [--config YAML] [--out DIR] [--corpus DIR]
#   --minutes M   training budget (default: $NMT_MINUTES, else 20); the learning-rate schedule
#                 follows the clock, so the run ends annealed
#   --config      run config (default configs/nmt_bible.yaml)
#   --out DIR     model directory (default runs/nmt_bible)
#   --corpus DIR  where the corpus goes (default corpus/bible)
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES="${NMT_MINUTES:-20}"
CONFIG=configs/nmt_bible.yaml
OUT=runs/nmt_bible
CORPUS=corpus/bible
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) MINUTES="${2:?}"; shift 2 ;;
        --config) CONFIG="${2:?}"; shift 2 ;;
        --out) OUT="${2:?}"; shift 2 ;;
        --corpus) CORPUS="${2:?}"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "nmt_demo.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

echo "== corpus ($CORPUS)"
scripts/make_bible_corpus.sh "$CORPUS"

echo "== build"
cargo build --release -p nemo-cli --bin nemo-nlp
NEMO_NLP="${CARGO_TARGET_DIR:-target}/release/nemo-nlp"

echo "== train ($MINUTES min, $CONFIG)"
"$NEMO_NLP" train --config "$CONFIG" \
    --train-src "$CORPUS/train.en" --train-tgt "$CORPUS/train.es" \
    --val-src "$CORPUS/dev.en" --val-tgt "$CORPUS/dev.es" \
    --out "$OUT" --minutes "$MINUTES"

echo "== average the last checkpoints"
MODEL="$OUT"
if "$NEMO_NLP" average --model "$OUT" --last 3 --out "$OUT/averaged"; then
    MODEL="$OUT/averaged"
fi

echo "== dev BLEU ($MODEL; beam search as its decoding: section says)"
"$NEMO_NLP" eval --model "$MODEL" --src "$CORPUS/dev.en" --ref "$CORPUS/dev.es" \
    --hyp-out "$OUT/dev.hyp" | tail -n 2 | sed 's/^BLEU:/dev BLEU:/'

echo "== test BLEU ($MODEL)"
"$NEMO_NLP" eval --model "$MODEL" --src "$CORPUS/test.en" --ref "$CORPUS/test.es" \
    --hyp-out "$OUT/test.hyp" | tail -n 2 | sed 's/^BLEU:/test BLEU:/'
