#!/usr/bin/env bash
# The README's main job: builds the TTS corpus (installing the TTS tools if missing), trains the
# small separable QuartzNet on it for a time budget, and prints the dev-set CER and WER: greedy,
# then by CTC beam search with a trigram language model of the training transcripts and its
# lexicon (the task has a closed vocabulary, like AN4).
#
# usage: scripts/asr_demo.sh [--minutes M] [--max-steps N] [--config YAML] [--out DIR] [--corpus DIR]
#   --minutes M   training budget (default 8; the 30-minute target run: --minutes 30); the
#                 learning-rate schedule follows the clock, so the run ends annealed
#   --max-steps N upper bound on the steps (default: nemo-asr's, 600 per minute, more than the
#                 2-core build machine runs)
#   --config      run config (default configs/an4_small.yaml; configs/quartznet_5x5.yaml is the
#                 paper's 5x5, slower per step)
#   --out DIR     model directory (default runs/quartznet)
#   --corpus DIR  where the corpus goes (default corpus)
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=8
MAX_STEPS=""
CONFIG=configs/an4_small.yaml
OUT=runs/quartznet
CORPUS=corpus
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) MINUTES="${2:?}"; shift 2 ;;
        --max-steps) MAX_STEPS="${2:?}"; shift 2 ;;
        --config) CONFIG="${2:?}"; shift 2 ;;
        --out) OUT="${2:?}"; shift 2 ;;
        --corpus) CORPUS="${2:?}"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "asr_demo.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

echo "== corpus ($CORPUS)"
scripts/make_corpus.sh "$CORPUS"

echo "== build"
cargo build --release -p nemo-cli --bin nemo-asr
NEMO_ASR="${CARGO_TARGET_DIR:-target}/release/nemo-asr"

echo "== train ($MINUTES min, $CONFIG)"
# The binary tunes the process itself (glibc keeps freed activation buffers mapped; candle's
# element-wise ops leave the cores to the convolution kernels): crate nemo-host.
"$NEMO_ASR" train --config "$CONFIG" \
    --train-manifest "$CORPUS/train.json" --val-manifest "$CORPUS/dev.json" \
    --out "$OUT" --minutes "$MINUTES" ${MAX_STEPS:+--max-steps "$MAX_STEPS"}

echo "== evaluate on dev (held-out sentences, training voices): greedy decoding"
"$NEMO_ASR" eval --model "$OUT" --manifest "$CORPUS/dev.json"

echo "== language model: Kneser-Ney trigram of the training transcripts"
"$NEMO_ASR" lm --manifest "$CORPUS/train.json" --order 3 --out "$OUT/lm.arpa"

echo "== evaluate on dev: CTC beam search with the language model and its lexicon"
# nemo-asr's defaults with --lm: 16 prefixes, LM weight --beam-alpha 1.0 and word bonus
# --beam-beta 0.5, tuned on dev for an LM with its lexicon (docs/benchmarks.md#word-error-rate).
"$NEMO_ASR" eval --model "$OUT" --manifest "$CORPUS/dev.json" \
    --lm "$OUT/lm.arpa" --lexicon
