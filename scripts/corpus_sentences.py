#!/usr/bin/python3
"""Sentence selection, job planning and manifest writing for scripts/make_corpus.sh.

Three subcommands, all deterministic given their arguments:

  sentences WORDNET_DIR OUT_DIR [--sentences N] [--vocabulary K] [--seed S] [--min-words A]
            [--max-words B]
      Extracts the quoted English example sentences from WordNet's glosses
      (data.noun/verb/adj/adv: the text after " | ", between double quotes), normalizes them to
      the 28-character ASR label set (a-z, space, apostrophe), drops the ones a TTS engine would
      read differently from their text (digits, acronyms, abbreviations, symbols, non-ASCII),
      dedups, keeps A..B words; with K > 0 keeps only sentences made of the K most frequent
      words of those examples (a closed-vocabulary task like AN4; K = 0: open vocabulary);
      shuffles with a fixed seed, keeps the first N and splits them BY SENTENCE into
      train/dev/test (80/10/10, by position: stable across N). With K > 0, a dev/test sentence
      with a word that no train sentence has is dropped, so every evaluated word was heard in
      training (in other sentences). Writes OUT_DIR/sentences.tsv (id, split, text).

  jobs OUT_DIR [--seed S] [--voices K]
      One line per (sentence, voice), K voices per sentence drawn without replacement from the
      8 below by a generator seeded by (seed, sentence id) (all 8 when K >= 8): tab-separated
      `wav_path  engine  voice  rate  pitch  text` with per-utterance speed/pitch drawn from a
      generator seeded by (seed, sentence id, voice), written to OUT_DIR/jobs.tsv.

  prune OUT_DIR
      Deletes synthesized WAVs that are cut short (see MIN_SECONDS_PER_CHAR) or whose header
      promises more samples than the file holds, so the synthesis step makes them again; prints
      how many.

  manifests OUT_DIR
      Reads jobs.tsv, measures each synthesized WAV from its header and writes NeMo manifests
      OUT_DIR/{train,dev,test}.json (`audio_filepath` relative to OUT_DIR, `duration` in seconds,
      `text`), then prints counts and hours per split. Fails when a WAV is missing or cut short.
"""

import argparse
from collections import Counter
import hashlib
import json
import os
import random
import re
import sys
import wave

SPLITS = (("train", 0.8), ("dev", 0.1), ("test", 0.1))


def split_of(i):
    """Sentence i of the shuffled list: positions 8 and 9 of every 10 go to dev and test, so a
    sentence keeps its split whatever --sentences is (a larger corpus extends a smaller one)."""
    return {8: "dev", 9: "test"}.get(i % 10, "train")

# (engine, voice): flite's clustergen/diphone voices shipped in Debian's `flite` package (slt is
# deliberately not used), and espeak-ng English voices with variants.
VOICES = (
    ("flite", "kal16"),
    ("flite", "awb"),
    ("flite", "rms"),
    ("espeak", "en-us+m3"),
    ("espeak", "en+f2"),
    ("espeak", "en-gb-scotland+m5"),
    ("espeak", "en-029+f4"),
    ("espeak", "en-us-nyc+m7"),
)

ABBREVIATION = re.compile(r"\b(mr|mrs|ms|dr|st|jr|sr|vs|etc|prof|gen|col|lt|sgt|capt|mt|ft|no)\.", re.I)
ALLOWED = re.compile(r"^[A-Za-z \t'\-,.;:!?()]+$")
ACRONYM = re.compile(r"\b[A-Z]{2,}\b|\b(?:[A-Za-z]\.){2,}")


def normalize(sentence):
    """Maps an English sentence to `a-z`, single spaces and in-word apostrophes, or None."""
    s = sentence.strip()
    if not s or not ALLOWED.match(s) or ACRONYM.search(s) or ABBREVIATION.search(s):
        return None
    s = s.lower()
    s = re.sub(r"[-,.;:!?()\t]", " ", s)
    words = []
    for w in s.split():
        # Keep apostrophes inside a word ("don't") and the plural possessive ("boys'");
        # quotes opening or closing a word are typographic, not spoken.
        w = w.lstrip("'")
        if w.endswith("'") and not w.rstrip("'").endswith("s"):
            w = w.rstrip("'")
        w = re.sub(r"'{2,}", "'", w)
        if w:
            words.append(w)
    if not words:
        return None
    return " ".join(words)


def extract(wordnet_dir):
    """Yields the quoted examples of every gloss, file by file in a fixed order."""
    for pos in ("noun", "verb", "adj", "adv"):
        path = os.path.join(wordnet_dir, "data." + pos)
        with open(path, encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):  # license header
                    continue
                _, sep, gloss = line.partition(" | ")
                if not sep:
                    continue
                yield from re.findall(r'"([^"]+)"', gloss)


def cmd_sentences(args):
    seen = set()
    kept = []
    total = 0
    for example in extract(args.wordnet_dir):
        total += 1
        text = normalize(example)
        if text is None or text in seen:
            continue
        n = len(text.split())
        if args.min_words <= n <= args.max_words:
            seen.add(text)
            kept.append(text)
    kept.sort()  # independent of file order before the seeded shuffle
    usable = len(kept)
    if args.vocabulary > 0:
        freq = Counter(w for text in kept for w in text.split())
        # Ties broken alphabetically so the vocabulary does not depend on dict order.
        ranked = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))
        vocab = {w for w, _ in ranked[: args.vocabulary]}
        kept = [t for t in kept if all(w in vocab for w in t.split())]
    random.Random(args.seed).shuffle(kept)
    if args.sentences > 0:
        kept = kept[: args.sentences]
    rows = [(i, split_of(i), text) for i, text in enumerate(kept)]
    dropped = 0
    if args.vocabulary > 0:
        heard = {w for _, split, text in rows if split == "train" for w in text.split()}
        before = len(rows)
        rows = [r for r in rows if r[1] == "train" or all(w in heard for w in r[2].split())]
        dropped = before - len(rows)
    counts = {name: 0 for name, _ in SPLITS}
    os.makedirs(args.out_dir, exist_ok=True)
    tmp = os.path.join(args.out_dir, "sentences.tsv.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for i, split, text in rows:
            counts[split] += 1
            f.write(f"{i:06d}\t{split}\t{text}\n")
    os.replace(tmp, os.path.join(args.out_dir, "sentences.tsv"))
    vocab_note = f"{usable} usable unique, "
    if args.vocabulary > 0:
        vocab_note += f"closed vocabulary of {args.vocabulary} words, "
    print(
        f"sentences: {total} quoted examples, {vocab_note}kept {len(rows)} "
        f"(train {counts['train']}, dev {counts['dev']}, test {counts['test']}; "
        f"{dropped} dev/test sentences with words unheard in train dropped)",
        file=sys.stderr,
    )


def utterance_rng(seed, sid, voice):
    digest = hashlib.sha256(f"{seed}/{sid}/{voice}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def cmd_jobs(args):
    lines = []
    with open(os.path.join(args.out_dir, "sentences.tsv"), encoding="utf-8") as f:
        for row in f:
            sid, split, text = row.rstrip("\n").split("\t")
            voices = list(VOICES)
            if args.voices < len(VOICES):
                voices = utterance_rng(args.seed, sid, "voices").sample(voices, args.voices)
            for engine, voice in voices:
                rng = utterance_rng(args.seed, sid, voice)
                if engine == "flite":
                    rate = f"{rng.uniform(0.85, 1.2):.3f}"  # duration_stretch
                    pitch = str(rng.randint(-150, 150))  # cents, applied with sox
                else:
                    rate = str(rng.randint(130, 190))  # words per minute
                    pitch = str(rng.randint(25, 75))  # espeak-ng 0..99
                tag = voice.replace("+", "_")
                # The name carries a digest of what is spoken and how, so a WAV left by an
                # earlier corpus with other sentences or settings is never taken for this one.
                key = hashlib.sha256(f"{engine}/{voice}/{rate}/{pitch}/{text}".encode()).hexdigest()
                wav = os.path.join("wav", split, f"{sid}_{tag}_{key[:8]}.wav")
                lines.append("\t".join((wav, engine, voice, rate, pitch, text)))
    tmp = os.path.join(args.out_dir, "jobs.tsv.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + ("\n" if lines else ""))
    os.replace(tmp, os.path.join(args.out_dir, "jobs.tsv"))
    k = min(args.voices, len(VOICES))
    print(f"jobs: {len(lines)} utterances ({k} of {len(VOICES)} voices per sentence)", file=sys.stderr)


# The slowest voice setting reads ~0.038 s of audio per character; less than 0.025 s means the
# engine's output was cut short (a full disk truncates flite's output behind a zero exit status,
# and sox then writes a complete-looking WAV of the part it got). A CTC model with a 20 ms step
# cannot align such an utterance at all.
MIN_SECONDS_PER_CHAR = 0.025


def wav_problem(path, text):
    """Why the WAV at `path` cannot be the reading of `text` (None when it can)."""
    try:
        with wave.open(path, "rb") as w:
            frames, rate = w.getnframes(), w.getframerate()
            width, channels = w.getsampwidth(), w.getnchannels()
    except (OSError, EOFError, wave.Error) as e:
        return f"unreadable ({e})"
    if os.path.getsize(path) < 44 + frames * width * channels:
        return "truncated (the header promises more samples than the file holds)"
    seconds = frames / rate
    if seconds < MIN_SECONDS_PER_CHAR * len(text):
        return f"cut short ({seconds:.3f} s for {len(text)} characters)"
    return None


def jobs_of(out_dir):
    with open(os.path.join(out_dir, "jobs.tsv"), encoding="utf-8") as f:
        for row in f:
            wav, _engine, _voice, _rate, _pitch, text = row.rstrip("\n").split("\t")
            yield wav, text


def cmd_prune(args):
    pruned = 0
    for wav, text in jobs_of(args.out_dir):
        path = os.path.join(args.out_dir, wav)
        if not os.path.exists(path):
            continue
        why = wav_problem(path, text)
        if why is not None:
            if pruned < 10:
                print(f"prune: {wav}: {why}", file=sys.stderr)
            os.remove(path)
            pruned += 1
    if pruned:
        print(f"pruned {pruned} bad WAVs (made again below)", file=sys.stderr)


def cmd_manifests(args):
    by_split = {name: [] for name, _ in SPLITS}
    missing = 0
    for wav, text in jobs_of(args.out_dir):
        path = os.path.join(args.out_dir, wav)
        why = wav_problem(path, text)
        if why is not None:
            if missing < 10:
                print(f"manifests: {wav}: {why}", file=sys.stderr)
            missing += 1
            continue
        with wave.open(path, "rb") as w:
            duration = w.getnframes() / w.getframerate()
        split = wav.split(os.sep)[1]
        by_split[split].append(
            {"audio_filepath": wav, "duration": round(duration, 4), "text": text}
        )
    grand = 0.0
    for split, entries in by_split.items():
        tmp = os.path.join(args.out_dir, split + ".json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for e in entries:
                f.write(json.dumps(e) + "\n")
        os.replace(tmp, os.path.join(args.out_dir, split + ".json"))
        hours = sum(e["duration"] for e in entries) / 3600
        grand += hours
        sentences = len({e["text"] for e in entries})
        print(f"{split}: {len(entries)} utterances, {sentences} sentences, {hours:.2f} h")
    print(f"total: {sum(map(len, by_split.values()))} utterances, {grand:.2f} h")
    if missing:
        print(f"missing, unreadable or cut-short wavs: {missing} (run make_corpus.sh again: it makes them anew)", file=sys.stderr)
        sys.exit(1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sentences")
    s.add_argument("wordnet_dir")
    s.add_argument("out_dir")
    s.add_argument("--sentences", type=int, default=0, help="keep the first N (0: all)")
    s.add_argument("--vocabulary", type=int, default=0,
                   help="closed vocabulary of the K most frequent words (0: open)")
    s.add_argument("--seed", type=int, default=1234)
    s.add_argument("--min-words", type=int, default=3)
    s.add_argument("--max-words", type=int, default=15)
    j = sub.add_parser("jobs")
    j.add_argument("out_dir")
    j.add_argument("--seed", type=int, default=1234)
    j.add_argument("--voices", type=int, default=len(VOICES), help="voices per sentence")
    m = sub.add_parser("manifests")
    m.add_argument("out_dir")
    r = sub.add_parser("prune")
    r.add_argument("out_dir")
    args = p.parse_args()
    commands = {"sentences": cmd_sentences, "jobs": cmd_jobs, "prune": cmd_prune,
                "manifests": cmd_manifests}
    commands[args.cmd](args)


if __name__ == "__main__":
    main()
