#!/usr/bin/env bash
# Builds a synthetic English ASR corpus from Debian's TTS engines.
#
# usage: scripts/make_corpus.sh OUT_DIR [--sentences N] [--voices K] [--vocabulary V] [--quick]
#                                       [--jobs P] [--seed S]
#
#   OUT_DIR          where wav/{train,dev,test}/*.wav and train.json/dev.json/test.json go
#   --sentences N    number of WordNet example sentences to synthesize (default 0 = all: ~2.3k)
#   --voices K       voices per sentence, drawn from the 8 below per sentence (default 8)
#   --vocabulary V   closed vocabulary: only sentences made of the V most frequent words of the
#                    examples (default 1000: ~2.3k such sentences; 0 = open vocabulary, ~41k)
#   --quick          a smoke-test corpus: 40 sentences (all 32 kept are train: dev and test
#                    need words heard in train; with --vocabulary 0: 32 / 4 / 4)
#   --jobs P         parallel synthesis processes (default: nproc)
#   --seed S         seed of the sentence shuffle and the per-utterance speed/pitch (default 1234)
#
# Steps: installs flite, espeak-ng, sox, wordnet-base, python3 and fonts-dejavu-core with apt-get
# when one is missing (root or sudo; nothing is installed when all are present); takes the
# quoted example sentences of WordNet's glosses, normalizes them to a-z, space and apostrophe, drops
# what TTS would read differently from the text (digits, acronyms, abbreviations), dedups, keeps 3-15
# words made of the V most frequent words (a closed-vocabulary task, like AN4: a character model
# cannot be expected to spell words it never heard; with V = 0 a third of the dev words are unseen),
# shuffles with a fixed seed and splits BY SENTENCE 80/10/10 into train/dev/test (so no test
# sentence is heard in training, in any voice; dev/test sentences with a word no train sentence has
# are dropped); then synthesizes every sentence with K of 8 voices:
# flite kal16, awb, rms (duration_stretch 0.85-1.2, sox pitch shift -150..150 cents) and espeak-ng
# en-us+m3, en+f2, en-gb-scotland+m5, en-029+f4, en-us-nyc+m7 (-s 130-190 wpm, -p 25-75), converted
# to 16 kHz mono 16-bit PCM with sox; and writes NeMo manifests (paths relative to OUT_DIR).
#
# Idempotent: existing WAVs are kept (unless cut short: `prune`; each is written to a temporary name and renamed; its name
# carries a digest of the text and voice settings), so an interrupted run resumes; the sentence
# list and the voice parameters depend only on --sentences, --vocabulary and --seed. Prints the counts and hours per split at the end.
#
# Cost on the idle 2-core build machine: the default (all 2270 closed-vocabulary sentences x 8 voices
# = 18160 utterances, 9.2 h of audio; train 14672 / dev 1776 / test 1712) takes 214-386 s of
# synthesis (docs/benchmarks.md).
set -euo pipefail

usage() { sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

OUT=""
SENTENCES=0
VOICES=8
VOCABULARY=1000
SEED=1234
JOBS=$(nproc)
while [ $# -gt 0 ]; do
    case "$1" in
        --sentences) SENTENCES="${2:?--sentences needs a number}"; shift 2 ;;
        --voices) VOICES="${2:?--voices needs a number}"; shift 2 ;;
        --vocabulary) VOCABULARY="${2:?--vocabulary needs a number}"; shift 2 ;;
        --quick) SENTENCES=40; shift ;;
        --jobs) JOBS="${2:?--jobs needs a number}"; shift 2 ;;
        --seed) SEED="${2:?--seed needs a number}"; shift 2 ;;
        -h|--help) usage ;;
        -*) echo "make_corpus.sh: unknown option $1" >&2; usage ;;
        *) [ -z "$OUT" ] || { echo "make_corpus.sh: more than one OUT_DIR" >&2; usage; }; OUT="$1"; shift ;;
    esac
done
[ -n "$OUT" ] || usage
case "$SENTENCES$VOICES$VOCABULARY$JOBS$SEED" in *[!0-9]*) echo "make_corpus.sh: numbers expected" >&2; exit 2 ;; esac

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=/usr/bin/python3
WORDNET=/usr/share/wordnet

# --- tools ------------------------------------------------------------------------------------
need=()
command -v flite >/dev/null || need+=(flite)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null || need+=(sox)
[ -f "$WORDNET/data.noun" ] || need+=(wordnet-base)
[ -x "$PY" ] || need+=(python3)
# Not for the corpus: the font the trainer's curves.png labels are drawn with.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "make_corpus.sh: need root or sudo to install ${need[*]}" >&2; exit 1; }
        SUDO="sudo"
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
for v in kal16 awb rms; do
    flite -lv | grep -qw "$v" || { echo "make_corpus.sh: flite voice $v is missing (flite -lv)" >&2; exit 1; }
done

# --- sentences and jobs -----------------------------------------------------------------------
mkdir -p "$OUT"/wav/train "$OUT"/wav/dev "$OUT"/wav/test "$OUT"/tmp
OUT="$(cd "$OUT" && pwd)"
$PY "$HERE/corpus_sentences.py" sentences "$WORDNET" "$OUT" --sentences "$SENTENCES" \
    --vocabulary "$VOCABULARY" --seed "$SEED"
$PY "$HERE/corpus_sentences.py" jobs "$OUT" --seed "$SEED" --voices "$VOICES"
# WAVs an earlier, interrupted run left cut short are made again.
$PY "$HERE/corpus_sentences.py" prune "$OUT"

# --- synthesis ----------------------------------------------------------------------------------
# One job: "wav engine voice rate pitch text" (tab-separated), run from OUT.
synth_one() {
    local wav engine voice rate pitch text
    IFS=$'\t' read -r wav engine voice rate pitch text <<<"$1"
    [ -s "$wav" ] && return 0
    local tmp
    tmp="tmp/$(basename "$wav" .wav).$$"
    case "$engine" in
        flite)
            printf '%s\n' "$text" >"$tmp.txt" &&
                flite -voice "$voice" --setf duration_stretch="$rate" -f "$tmp.txt" -o "$tmp.raw.wav" &&
                sox -V1 -G "$tmp.raw.wav" -r 16000 -c 1 -b 16 -e signed-integer "$tmp.wav" pitch "$pitch"
            ;;
        espeak)
            printf '%s\n' "$text" | espeak-ng --stdin -v "$voice" -s "$rate" -p "$pitch" -w "$tmp.raw.wav" &&
                sox -V1 -G "$tmp.raw.wav" -r 16000 -c 1 -b 16 -e signed-integer "$tmp.wav"
            ;;
        *) echo "unknown engine $engine" >&2; false ;;
    esac
    local rc=$?
    # A full disk can leave a header without samples, or a cut-short engine output that sox turns
    # into a complete-looking WAV, behind a zero exit status: keep only WAVs whose data is all
    # there and long enough for the text (0.025 s = 400 samples per character; the slowest voice
    # setting reads ~0.038 s per character).
    if [ $rc -eq 0 ]; then
        local n
        n=$(sox --i -s "$tmp.wav" 2>/dev/null) && [ "${n:-0}" -ge $((400 * ${#text})) ] &&
            [ "$(stat -c %s "$tmp.wav")" -ge $((44 + 2 * n)) ] || {
            echo "make_corpus.sh: $wav: output truncated or cut short (${n:-0} samples for ${#text} characters; disk full?)" >&2
            rc=1
        }
    fi
    [ $rc -eq 0 ] && mv -f "$tmp.wav" "$wav"
    rc=$?
    rm -f "$tmp.txt" "$tmp.raw.wav" "$tmp.wav"
    return $rc
}
export -f synth_one

cd "$OUT"
total=$(wc -l <jobs.tsv)
todo=$(cut -f1 jobs.tsv | while IFS= read -r w; do [ -s "$w" ] || echo; done | wc -l)
echo "synthesizing: $total utterances ($todo to do) with $JOBS processes" >&2
start=$(date +%s.%N)
# Batches of 25 jobs per bash process keep the process-start cost small.
xargs -d '\n' -n 25 -P "$JOBS" bash -c 'for j in "$@"; do synth_one "$j" || { echo "failed: $j" >&2; exit 255; }; done' _ <jobs.tsv
end=$(date +%s.%N)
rmdir tmp 2>/dev/null || true
awk -v s="$start" -v e="$end" 'BEGIN { printf "synthesis: %.1f s\n", e - s }' >&2

# --- manifests ----------------------------------------------------------------------------------
$PY "$HERE/corpus_sentences.py" manifests "$OUT"
