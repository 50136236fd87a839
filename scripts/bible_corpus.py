#!/usr/bin/env python3
"""English->Spanish verse-aligned corpus from two SWORD Bible modules (helper of make_bible_corpus.sh).

usage: bible_corpus.py --en KJV.imp --es RV.imp --en-conf KJV.conf --es-conf RV.conf --out DIR

The inputs are `mod2imp` exports ("$$$Book Chapter:Verse" then the verse's OSIS text) of
engKJV2006eb (King James Version, 1769 text) and spaRV1909eb (Reina-Valera 1909). Writes
{train,dev,test}.{en,es,ref} and README.md into DIR (which must exist and be empty: the caller
renames it into place). Python 3 standard library only. See make_bible_corpus.sh for the rules;
every rule below says which artefact of the real exports it is for.
"""
import argparse
import collections
import html
import os
import re
import sys

# --- split ----------------------------------------------------------------------------------------
# Whole books, so no dev/test verse (nor its neighbours) is seen in training. Chosen for mixed genre
# from both testaments and to keep the long near-verbatim parallels out of the held-out books (the
# synoptic gospels, Samuel/Kings vs Chronicles, Isaiah 36-39 vs 2 Kings 18-20, Micah 4 vs Isaiah 2,
# Ephesians vs Colossians and 2 Peter vs Jude all stay together in train; short quotations, such
# as Jeremiah 31:31-34 in Hebrews 8, remain). Each held-out split is one OT narrative book + one
# prophet + one poetic/wisdom book + one epistle, about 4.5% of the verses each.
DEV_BOOKS = ["Joshua", "Hosea", "Ecclesiastes", "Hebrews"]
TEST_BOOKS = ["Judges", "Amos", "Lamentations", "I Corinthians"]

# Left out of every split and never read past the book name: no text of theirs is cleaned, counted,
# aligned or used for any statistic. A module's book name is matched, whole (lower case, letters and
# digits only: "Jas", "Phlm") or by one of its words ("The Book of Ruth", "Epistle of James",
# "Santiago"), against English, OSIS, Latin and Spanish spellings, so a module that names them
# otherwise is still caught; the build fails if one of them is not found at all.
RESERVED = {
    "Ruth": {"ruth", "rut"},
    "Jonah": {"jonah", "jonas", "jonás", "jon", "jnh"},
    "Philemon": {"philemon", "filemon", "filemón", "phlm", "phm", "philem"},
    "James": {"james", "santiago", "jacobo", "iacobi", "jacobi", "jas", "jam"},
    "Titus": {"titus", "tito", "tit"},
}
RESERVED_BOOKS = list(RESERVED)


def norm_book(name):
    return re.sub(r"[^0-9a-záéíóúñ]", "", name.lower())


def reserved_as(book):
    """The reserved book that `book` names, or None."""
    whole = norm_book(book)
    words = set(re.findall(r"[a-záéíóúñ]+", book.lower()))
    for name, aliases in RESERVED.items():
        if whole in aliases or words & {a for a in aliases if len(a) >= 4}:
            return name
    return None


def is_reserved(book):
    return reserved_as(book) is not None


# --- reading --------------------------------------------------------------------------------------
HEADER = re.compile(r"^\$\$\$(.+?) (\d+):(\d+)\s*$")


def read_imp(path):
    """(book, chapter, verse) -> raw OSIS text, in module order; verse 0 (book and chapter
    introductions: titles, milestones) and reserved books are skipped."""
    verses, order, books, reserved_seen = {}, [], [], set()
    key = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("$$$"):
                m = HEADER.match(line)
                key = None
                if m:
                    book, ch, v = m.group(1), int(m.group(2)), int(m.group(3))
                    if book not in books:
                        books.append(book)
                    if is_reserved(book):
                        reserved_seen.add(book)
                    elif v > 0:
                        key = (book, ch, v)
                        verses[key] = ""
                        order.append(key)
                continue
            if key is not None:  # mod2imp writes one line per entry; join any continuation
                verses[key] = (verses[key] + " " + line) if verses[key] else line
    return verses, order, books, reserved_seen


# --- cleaning -------------------------------------------------------------------------------------
NOTE = re.compile(r"<note\b[^>]*/>|<note\b[^>]*>.*?</note>", re.S)
# Psalm 119's acrostic headings (<title><foreign>א ALEPH.</foreign></title>): a heading, not text.
ACROSTIC_TITLE = re.compile(r"<title\b[^>]*>\s*<foreign\b.*?</title>", re.S)
# USFM character-style markers left in the KJV export, e.g. "the \nd LORD</divineName>", "\+nd*".
USFM = re.compile(r"\\\+?[a-z]+[0-9]*\*? ?")
INLINE_TAGS = {"w", "transChange", "divineName", "seg", "foreign", "hi", "q", "name", "rdg", "catchWord"}
TAG = re.compile(r"</?([A-Za-z]+)\b[^>]*>")
SPACES = re.compile(r"\s+")

# RV1909: the words the translators supplied (<transChange type="added">) often abut the tagged word
# before or after without a space ("hay allí</w><transChange>también</transChange><w>bdelio"). When
# the supplied word is an enclitic pronoun after a verb it belongs to that verb ("sáca"+"lo"), else
# it is a separate word.
ENCLITIC = re.compile(r"^(?:me|te|se|nos|os|lo|la|los|las|le|les)$")
SHORT_VERBS = {"di", "da", "haz", "he", "ve", "vi", "pon", "ten", "sal", "ven", "dé", "id"}
NOT_VERBS = {"jehová", "josué", "cuánto", "cuánta", "él", "allí", "aquí", "así", "más", "también"}
W_THEN_ADDED = re.compile(r"([^\s<>]*)</w><transChange\b[^>]*>([^<]*)</transChange>")
ADDED_THEN_W = re.compile(r"</transChange>(?=<w\b)")


def _looks_verbal(word):
    w = re.sub(r"[^a-záéíóúñü]", "", word.lower())
    if not w or w in NOT_VERBS:
        return False
    return w in SHORT_VERBS or w.endswith(("r", "d", "ndo")) or bool(re.search(r"[áéíóú]", w))


def _join_added(m, counts):
    before, added = m.group(1), m.group(2)
    if ENCLITIC.match(added.strip()) and _looks_verbal(before):
        counts["es: enclitic supplied pronoun joined to its verb"] += 1
        return f"{before}</w>{added.strip()}"
    counts["es: space restored before a supplied word"] += 1
    return f"{before}</w> {added}"


def strip_markup(s, counts, lang):
    n_notes = len(NOTE.findall(s))
    if n_notes:
        counts[f"{lang}: notes removed"] += n_notes
        s = NOTE.sub(" ", s)
    if ACROSTIC_TITLE.search(s):
        counts[f"{lang}: Psalm 119 acrostic headings removed"] += 1
        s = ACROSTIC_TITLE.sub(" ", s)
    n = len(USFM.findall(s))
    if n:
        counts[f"{lang}: USFM markers removed"] += n
        s = USFM.sub("", s)
    if lang == "es":
        n = len(ADDED_THEN_W.findall(s))
        if n:
            counts["es: space restored after a supplied word"] += n
            s = ADDED_THEN_W.sub("</transChange> ", s)
        s = W_THEN_ADDED.sub(lambda m: _join_added(m, counts), s)
    # Word-level tags (<w>, <transChange>, <divineName>, ...) go without a trace: the KJV splits
    # words across them ("tear</w>s"). Structural ones (<div>, <l>, <lg>, <lb>, <chapter>,
    # <milestone>, <title>) become a space.
    s = TAG.sub(lambda m: "" if m.group(1) in INLINE_TAGS else " ", s)
    if "<" in s or ">" in s:
        raise SystemExit(f"bible_corpus.py: markup left after stripping: {s[:200]!r}")
    n = s.count("\u00b6")
    if n:
        counts[f"{lang}: pilcrows removed"] += n
        s = s.replace("\u00b6", " ")
    n = s.count("[")
    if n:  # 1 John 2:23 "[but] he that acknowledgeth": the brackets only, the word stays
        counts[f"{lang}: editorial brackets removed (words kept)"] += n
        s = s.replace("[", "").replace("]", "")
    s = html.unescape(s)
    s = SPACES.sub(" ", s).strip()
    s = re.sub(r" ([,.;:?!)])", r"\1", s)  # a space a removed tag left before punctuation
    return s


# Reina-Valera's Psalm 119 puts the stanza letter in the text: "ALEPH. BIENAVENTURADOS ...".
HEBREW_LETTERS = ("ALEPH BETH GIMEL DALETH HE VAU ZAIN CHETH HETH TETH JOD YOD CAPH LAMED MEM NUN "
                  "SAMECH AIN PE TZADDI COPH KOPH RESH SIN SCHIN SHIN TAU").split()
ACROSTIC_PREFIX = re.compile(r"^(?:%s)\.?\s+" % "|".join(HEBREW_LETTERS))

UPPER_WORD = re.compile(r"^([¡¿(\"'«]*)([^\W\d_]+)([^\w]*)$")


def _all_caps(word):
    letters = [c for c in word if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


class DropCaps:
    """RV1909 sets each chapter's first word in capitals ("EN el principio", "Y ACONTECIÓ",
    "¡AY de", "EL HOMBRE nacido", after a psalm's title "... Salmo de David. SÁLVAME, oh Dios").
    The capitalised run is written back in the case the rest of the module uses for that word
    (from counts of its mid-sentence occurrences), capitalised at a sentence start: "Y JEHOVÁ habló"
    -> "Y Jehová habló", "Y ACONTECIÓ" -> "Y aconteció". Capitals elsewhere ("JEHOVÁ TU DIOS",
    "MENE, MENE, TEKEL") are the text's own and stay."""

    def __init__(self, texts):
        self.freq = collections.Counter()
        for s in texts:
            toks = s.split()
            for i, t in enumerate(toks):
                if i == 0 or toks[i - 1][-1:] in ".:;?!":
                    continue
                m = UPPER_WORD.match(t)
                if m:
                    self.freq[m.group(2)] += 1

    def _case(self, word, sentence_start):
        lower = word.lower()
        title = lower[:1].upper() + lower[1:]
        if sentence_start or self.freq[title] > self.freq[lower]:
            return title
        return lower

    def fix(self, s, first_of_chapter):
        """Returns (text, fixed?)."""
        toks = s.split(" ")
        start = None
        if first_of_chapter:
            for i, t in enumerate(toks):
                m = UPPER_WORD.match(t)
                if m and _all_caps(m.group(2)):
                    start = i
                    break
            if start is None:
                # A short capitalised tail: "Y El ángel de Jehová subió" (Judges 2:1).
                if len(toks) > 1 and toks[0] in ("Y", "E", "O") and UPPER_WORD.match(toks[1]):
                    w = UPPER_WORD.match(toks[1]).group(2)
                    if w[:1].isupper() and (w[1:] == "" or w[1:].islower()) and self._case(w, False) != w:
                        toks[1] = toks[1].replace(w, self._case(w, False), 1)
                        return " ".join(toks), True
                return s, False
        else:
            # Elsewhere only a verse that opens with a capitalised word run straight into lower
            # case ("HUBO en los días de Herodes", Luke 1:5, a drop cap after the prologue).
            i = 1 if toks and toks[0] in ("Y", "E") else 0
            if (len(toks) > i + 1 and re.fullmatch(r"[^\W\d_]+", toks[i]) and _all_caps(toks[i])
                    and toks[i + 1][:1].islower()):
                start = i
            else:
                return s, False
        # A one-letter word inside the run ("Y Á SUS discípulos", Luke 17:1) belongs to it.
        first_caps = start
        while start > 1 and re.fullmatch(r"[^\W\d_]", toks[start - 1]) and toks[start - 1].isupper():
            start -= 1
        i = start
        while i < len(toks):
            m = UPPER_WORD.match(toks[i])
            if not (m and (_all_caps(m.group(2)) or (i < first_caps and m.group(2).isupper()))):
                break
            prev = toks[i - 1] if i > 0 else ""
            sentence_start = i == 0 or prev[-1:] in ".:?!" or m.group(1) != ""
            toks[i] = m.group(1) + self._case(m.group(2), sentence_start) + m.group(3)
            if m.group(3):  # punctuation ends the run ("ASIMISMO, hermanos")
                break
            i += 1
        out = " ".join(toks)
        return out, out != s


# --- alignment ------------------------------------------------------------------------------------
def strongs(raw):
    """Strong's numbers of a verse's tagged words (notes excluded): both modules tag their words
    with them, so they tell whether two verses translate the same Hebrew/Greek."""
    raw = NOTE.sub(" ", raw)
    out = set()
    for m in re.finditer(r'lemma="([^"]*)"', raw):
        for letter, num in re.findall(r"([HG])0*(\d+)", m.group(1)):
            out.add(letter + num)
    return out


def dice(a, b):
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


def align(order, en, es, s_en, s_es, counts, window=8):
    """Pairs KJV verse keys with RV verse keys. By key, except where the RV module's numbering
    departs from the KJV's (Spanish versification: Numbers 13, 1 Samuel 24, Job 39-41, Hosea 12,
    ...): a KJV verse whose Strong's numbers match, clearly better, the RV verse a few places away
    that in turn matches it best is paired with that one; a pair that a better match elsewhere shows
    to be wrong is dropped. Returns [(en_key, es_key)] in KJV order."""
    pos = {k: i for i, k in enumerate(order)}

    def near(i):
        b = order[i][0]
        for j in range(max(0, i - window), min(len(order), i + window + 1)):
            if order[j][0] == b:
                yield j

    def best_es(i):
        c = [(dice(s_en[order[i]], s_es[order[j]]) - 0.01 * abs(i - j), j)
             for j in near(i) if es.get(order[j])]
        return max(c) if c else (0.0, None)

    def best_en(j):
        c = [(dice(s_en[order[i]], s_es[order[j]]) - 0.01 * abs(i - j), i)
             for i in near(j) if en.get(order[i])]
        return max(c) if c else (0.0, None)

    moved = {}  # en index -> es index
    for i, k in enumerate(order):
        if not en.get(k):
            continue
        score, j = best_es(i)
        if j is None or j == i:
            continue
        same = dice(s_en[k], s_es[k]) if es.get(k) else 0.0
        real = dice(s_en[k], s_es[order[j]])
        if real >= 0.5 and real >= same + 0.2 and best_en(j)[1] == i:
            moved[i] = j
    taken = set(moved.values())
    pairs = []
    for i, k in enumerate(order):
        if not en.get(k):
            continue
        if i in moved:
            pairs.append((k, order[moved[i]]))
            counts["align: pairs re-aligned across RV verse numbering"] += 1
            continue
        if not es.get(k):
            counts["align: KJV verse with no RV text at its number (dropped)"] += 1
            continue
        if i in taken:
            counts["align: RV verse belongs to another KJV verse (dropped)"] += 1
            continue
        # The RV verse at this number is the clear mutual best match of another KJV verse.
        sb, ib = best_en(i)
        if ib is not None and ib != i and ib not in moved:
            other = dice(s_en[order[ib]], s_es[k])
            if other >= 0.5 and other >= dice(s_en[k], s_es[k]) + 0.2 and best_es(ib)[1] == i:
                counts["align: RV verse belongs to another KJV verse (dropped)"] += 1
                continue
        # The next KJV verse has no RV text anywhere, and the RV verse here matches the two KJV
        # verses together better than this one alone: the RV merged them (Acts 19:40-41).
        nxt = order[i + 1] if i + 1 < len(order) else None
        if (nxt and nxt[:2] == k[:2] and en.get(nxt) and not es.get(nxt) and i + 1 not in moved
                and dice(s_en[k] | s_en[nxt], s_es[k]) > dice(s_en[k], s_es[k])):
            counts["align: RV verse holds two KJV verses (dropped)"] += 1
            continue
        pairs.append((k, k))
    # Other verses the RV merged with a neighbour (its numbering has fewer verses there:
    # 2 Corinthians 13:12-14, Job 39:30 + 40:1-5, ...) make one side far longer than the other.
    # A faithful pair can still be short on one side (the RV's "que fué de X" for the KJV's "which
    # was the son of X"), so a length ratio past 0.5-2 only drops a pair whose Strong's numbers
    # differ too (dice < 0.8), and past 1/3-3 any pair.
    kept = []
    for ke, ks in pairs:
        le, ls = len(en[ke]), len(es[ks])
        r = ls / le if le else 0.0
        if min(le, ls) >= 20 and (not (1 / 3 <= r <= 3) or
                                  (not (0.5 <= r <= 2) and dice(s_en[ke], s_es[ks]) < 0.8)):
            counts["align: length ratio out of range (merged verse, dropped)"] += 1
            continue
        kept.append((ke, ks))
    return kept


# --- output ---------------------------------------------------------------------------------------
def conf_field(path, field):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(field + "="):
                return line.split("=", 1)[1].strip()
    return "?"


def conf_module(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^\[(.+)\]\s*$", line)
            if m:
                return m.group(1)
    return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--en", required=True)
    ap.add_argument("--es", required=True)
    ap.add_argument("--en-conf", required=True)
    ap.add_argument("--es-conf", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    counts = collections.Counter()

    en_raw, en_order, en_books, en_res = read_imp(args.en)
    es_raw, es_order, es_books, es_res = read_imp(args.es)
    print("books (mod2imp names, %d): %s" % (len(en_books), ", ".join(en_books)))
    if en_books != es_books:
        print("warning: the modules name their books differently", file=sys.stderr)
    missing = [b for b in RESERVED_BOOKS if not any(reserved_as(x) == b for x in en_res)
               or not any(reserved_as(x) == b for x in es_res)]
    print("reserved books left out: %s (module names: %s)" % (", ".join(RESERVED_BOOKS), ", ".join(sorted(en_res | es_res))))
    if missing:
        raise SystemExit("bible_corpus.py: reserved books not found under any name: %s" % ", ".join(missing))
    for split_books in (DEV_BOOKS, TEST_BOOKS):
        for b in split_books:
            if b not in en_books:
                raise SystemExit(f"bible_corpus.py: split book {b!r} not in the module")

    en = {k: strip_markup(v, counts, "en") for k, v in en_raw.items()}
    es = {k: strip_markup(v, counts, "es") for k, v in es_raw.items()}
    for k in es:
        if k[0] == "Psalms" and k[1] == 119 and ACROSTIC_PREFIX.match(es[k]):
            es[k] = ACROSTIC_PREFIX.sub("", es[k], count=1)
            counts["es: Psalm 119 acrostic letters removed"] += 1

    dc = DropCaps(t for k, t in es.items() if k[2] != 1)
    examples = []
    for k in es_order:
        fixed, did = dc.fix(es[k], k[2] == 1)
        if did:
            counts["es: drop capitals fixed (first verse of a chapter)" if k[2] == 1
                   else "es: drop capitals fixed (other verse)"] += 1
            if len(examples) < 400:
                examples.append((k, es[k], fixed))
            es[k] = fixed

    s_en = collections.defaultdict(set, {k: strongs(v) for k, v in en_raw.items()})
    s_es = collections.defaultdict(set, {k: strongs(v) for k, v in es_raw.items()})
    pairs = align(en_order, en, es, s_en, s_es, counts)

    split_of = {}
    for b in en_books:
        split_of[b] = "dev" if b in DEV_BOOKS else "test" if b in TEST_BOOKS else "train"
    out = {s: [] for s in ("train", "dev", "test")}
    for ke, ks in pairs:
        e, s = en[ke], es[ks]
        if not e or not s:
            counts["align: empty after cleaning (dropped)"] += 1
            continue
        if "\t" in e + s or "\n" in e + s:
            raise SystemExit(f"bible_corpus.py: control character in {ke}")
        ref = "%s %d:%d" % ke
        out[split_of[ke[0]]].append((ref, e, s))

    # The reserved books must appear nowhere: not as a reference, not as a book.
    for split, rows in out.items():
        for ref, _, _ in rows:
            book = ref.rsplit(" ", 1)[0]
            if is_reserved(book):
                raise SystemExit(f"bible_corpus.py: reserved book {book!r} in {split}")

    for split, rows in out.items():
        for ext, col in (("ref", 0), ("en", 1), ("es", 2)):
            with open(os.path.join(args.out, f"{split}.{ext}"), "w", encoding="utf-8") as f:
                for row in rows:
                    f.write(row[col] + "\n")

    stats = {}
    for split, rows in out.items():
        stats[split] = (len(rows), sum(len(r[1].split()) for r in rows), sum(len(r[2].split()) for r in rows))

    print("cleaning and alignment:")
    for k in sorted(counts):
        print(f"  {k}: {counts[k]}")
    print("drop-capital fixes, a few:")
    for k, b, a in examples[:: max(1, len(examples) // 6)][:6]:
        print(f"  {k[0]} {k[1]}:{k[2]}: {b[:60]!r} -> {a[:60]!r}")

    books_in = {s: [b for b in en_books if split_of.get(b) == s and not is_reserved(b)]
                for s in out}
    write_readme(args, out, stats, books_in, counts, len(pairs))
    print("summary (verses, English words, Spanish words; words = whitespace-separated tokens):")
    for split in ("train", "dev", "test"):
        n, we, ws = stats[split]
        print(f"  {split:5s} {n:6d} verses  {we:8d} en words  {ws:8d} es words")
    total = sum(v[0] for v in stats.values())
    print(f"  total {total:6d} verses")


def write_readme(args, out, stats, books_in, counts, n_pairs):
    total = sum(v[0] for v in stats.values())
    lines = []
    add = lines.append
    add("# English-Spanish Bible corpus (KJV -> Reina-Valera 1909)")
    add("")
    add("Made by `scripts/make_bible_corpus.sh`; do not edit by hand. One verse per line, the lines of")
    add("`X.en`, `X.es` and `X.ref` aligned. Plain UTF-8 text, *not* tokenised (no 13a or other")
    add("tokenisation, original case and punctuation): the NMT pipeline applies BPE itself.")
    add("")
    add("## Sources")
    add("")
    for path, lang in ((args.en_conf, "English"), (args.es_conf, "Spanish")):
        add("- %s: SWORD module `%s` (%s, version %s), Debian package `%s`; Copyright: %s; "
            "DistributionLicense: **%s**." % (
                lang, conf_module(path), conf_field(path, "Description"), conf_field(path, "Version"),
                "sword-text-kjv" if lang == "English" else "sword-text-sparv",
                conf_field(path, "Copyright"), conf_field(path, "DistributionLicense")))
    add("")
    add("Both are public domain (the KJV's Crown patent applies only in the United Kingdom; see the")
    add("module's About text). Exported with `mod2imp` (Debian package `libsword-utils`).")
    add("")
    add("`.ref` lines are `Book chapter:verse` in the KJV's numbering and the module's English book")
    add("names. Where the RV numbers a verse differently it was paired by content (see below), so the")
    add("Spanish verse number can differ from the reference there.")
    add("")
    add("## Split (by whole book)")
    add("")
    add("| split | verses | % | English words | Spanish words | books |")
    add("| --- | ---: | ---: | ---: | ---: | --- |")
    for s in ("train", "dev", "test"):
        n, we, ws = stats[s]
        books = ", ".join(books_in[s]) if s != "train" else "all other books (%d)" % len(books_in[s])
        add(f"| {s} | {n} | {100 * n / total:.1f} | {we} | {ws} | {books} |")
    add(f"| total | {total} | 100 | {sum(v[1] for v in stats.values())} | "
        f"{sum(v[2] for v in stats.values())} | |")
    add("")
    add("Words are whitespace-separated tokens (punctuation attached). Dev and test are whole books")
    add("of mixed genre from both testaments (OT narrative, prophet, poetry/wisdom, epistle), so no")
    add("held-out verse is seen in training; books with long near-verbatim parallels (the synoptic")
    add("gospels, Samuel/Kings and Chronicles, Isaiah 36-39 and 2 Kings 18-20, Ephesians and")
    add("Colossians, 2 Peter and Jude) stay together in train. Short quotations remain (Jeremiah")
    add("31:31-34 in Hebrews 8; Judges 1:10-15 retells Joshua 15:14-19, dev and test alike).")
    add("")
    add("**Reserved books, left out of every split** (never written here, nor used for any statistic,")
    add("case table or alignment): " + ", ".join(RESERVED_BOOKS) + ". The build fails if one appears.")
    add("")
    add("## Cleaning")
    add("")
    add("- Only verses (verse 0, the book and chapter introductions, is skipped); verses present and")
    add("  non-empty in both modules after cleaning.")
    add("- Footnotes removed with their whole content (`<note>...</note>`, nested tags included:")
    add("  the KJV's \"Heb. ...\", \"or, ...\" marginal notes).")
    add("- All markup stripped: Strong's/morphology word tags (`<w lemma=...>`), `<divineName>` (its")
    add("  text, LORD, kept), red-letter `<q>`, poetry `<lg>/<l>/<lb>`, paragraph and milestone `<div>`,")
    add("  `<chapter>`, `<milestone>`. The KJV's italic supplied words (`<transChange type=\"added\">`)")
    add("  are kept as plain words; so are the Psalm superscriptions (in the verse text in both) and the")
    add("  epistles' closing subscriptions (\"Written to the Romans from Corinthus...\"; the RV has them")
    add("  in the text too).")
    add("- Psalm 119's stanza headings dropped on both sides (KJV `<title><foreign>א ALEPH.</foreign>")
    add("  </title>`, RV \"ALEPH. BIENAVENTURADOS...\" letter names at the stanza's first verse).")
    add("- KJV: pilcrows (¶) removed; stray USFM markers (`\\nd `, `\\+nd*`) removed; the editorial")
    add("  brackets of 1 John 2:23 \"[but]\" removed, the word kept.")
    add("- RV: supplied words that abut the tagged word without a space get the space back (\"hay allí")
    add("  también bdelio\", not \"alltambiénbdelio\"), except an enclitic pronoun after a verb, which")
    add("  joins it (\"sácalo\", \"júramelo\").")
    add("- RV: drop capitals at chapter starts written back in normal case (\"EN el principio\" ->")
    add("  \"En el principio\", \"Y ACONTECIÓ\" -> \"Y aconteció\", \"Y JEHOVÁ habló\" -> \"Y Jehová habló\",")
    add("  also after a psalm's title), using the case the word has elsewhere in the module; the")
    add("  text's own capitals (\"JEHOVÁ TU DIOS\", \"MENE, MENE, TEKEL\", titles on the cross) stay.")
    add("- XML entities decoded, whitespace collapsed, no space before , . ; : ? ! )")
    add("- Alignment checked with the Strong's numbers both modules tag their words with. Where the")
    add("  RV numbers verses differently from the KJV (Numbers 13 and 30, 1 Samuel 24, 1 Kings 22,")
    add("  1 Chronicles 21, 2 Chronicles 33, Job 39-40, Hosea 12, ...) a KJV verse is paired with the")
    add("  RV verse a few places away that is its clear mutual best match. Dropped: pairs whose RV")
    add("  verse clearly belongs to another KJV verse; an RV verse that holds two KJV verses; pairs")
    add("  whose length ratio (Spanish/English characters) is outside 0.5-2 with a Strong's overlap")
    add("  (Dice) under 0.8, or outside 1/3-3 (verses the RV merged or split differently).")
    add("")
    add("Counts from the build that wrote these files:")
    add("")
    for k in sorted(counts):
        add(f"- {k}: {counts[k]}")
    add(f"- aligned pairs before filtering empties: {n_pairs}")
    add("")
    with open(os.path.join(args.out, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
