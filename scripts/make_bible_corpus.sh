#!/usr/bin/env bash
# Builds an English->Spanish verse-aligned parallel corpus (for NMT) from Debian's public-domain
# SWORD Bibles. Installs with apt-get, when missing: sword-text-kjv (King James Version, module
# engKJV2006eb), sword-text-sparv (Reina-Valera 1909, module spaRV1909eb), libsword-utils (mod2imp)
# and python3; that needs root or sudo (nothing is installed when all are present).
#
# usage: scripts/make_bible_corpus.sh [OUT_DIR] [--force]
#
#   OUT_DIR   where {train,dev,test}.{en,es,ref} and README.md go (default: corpus/bible under the
#             repository root; corpus/ is git-ignored)
#   --force   rebuild even when OUT_DIR already holds a complete corpus
#
# Steps: exports both modules with mod2imp ("$$$Book Chapter:Verse" + OSIS text), and
# scripts/bible_corpus.py (Python 3 standard library) parses the verses, cleans them (notes removed
# with their content, all markup stripped, the KJV's italic supplied words kept as words, pilcrows and
# stray USFM markers removed, the RV's chapter drop capitals "EN el principio" -> "En el principio"
# and its run-together supplied words fixed, Psalm 119 stanza letters dropped, entities decoded,
# whitespace collapsed), pairs verses by (book, chapter, verse) and checks each pair with the Strong's
# numbers both modules carry (re-pairing where the RV numbers verses differently, dropping merged
# verses), and splits BY BOOK:
#   dev:   Joshua, Hosea, Ecclesiastes, Hebrews              (~4.5% of the verses)
#   test:  Judges, Amos, Lamentations, I Corinthians          (~4.4%)
#   train: every other book
# Each held-out split mixes genres from both testaments (OT narrative, prophet, poetry/wisdom,
# epistle) and avoids the long near-verbatim parallels (synoptic gospels, Samuel/Kings vs Chronicles,
# Ephesians vs Colossians, 2 Peter vs Jude all stay in train; short quotations such as Jeremiah
# 31:31-34 in Hebrews 8 remain). RESERVED, in no split and never used
# for anything: Ruth, Jonah, Philemon, James, Titus; the build fails if one reaches an output.
# The text is plain and untokenised (no 13a or any other tokenisation; the NMT pipeline applies BPE).
#
# Idempotent: a complete OUT_DIR is left as it is (exit 0) unless --force; files are written to a
# temporary folder beside OUT_DIR and renamed into place. About 6 s on the 2-core build machine once
# the packages are installed (10 s with the apt install). Prints verse and word counts per split.
set -euo pipefail

usage() { sed -n '7,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
OUT=""
FORCE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --force) FORCE=1; shift ;;
        -h|--help) usage ;;
        -*) echo "make_bible_corpus.sh: unknown option $1" >&2; usage ;;
        *) [ -z "$OUT" ] || { echo "make_bible_corpus.sh: more than one OUT_DIR" >&2; usage; }; OUT="$1"; shift ;;
    esac
done
OUT="${OUT:-$ROOT/corpus/bible}"
SPLITS=(train dev test)
RESERVED_RE='^(Ruth|Jonah|Philemon|James|Titus) [0-9]+:[0-9]+$'
START=$(date +%s)

# A corpus is complete when every file is there, the three files of each split have the same
# (non-zero) number of lines, and no reserved book is in a reference file.
complete() {
    local d="$1" s n
    [ -f "$d/README.md" ] || return 1
    for s in "${SPLITS[@]}"; do
        for e in en es ref; do [ -s "$d/$s.$e" ] || return 1; done
        n=$(wc -l <"$d/$s.ref")
        [ "$n" -gt 0 ] && [ "$(wc -l <"$d/$s.en")" -eq "$n" ] && [ "$(wc -l <"$d/$s.es")" -eq "$n" ] || return 1
        ! grep -Eq "$RESERVED_RE" "$d/$s.ref" || return 1
    done
}

summary() {
    local d="$1" s
    echo "corpus in $d (plain untokenised text, one verse per line):"
    for s in "${SPLITS[@]}"; do
        printf '  %-5s %6d verses  %8d en words  %8d es words\n' "$s" \
            "$(wc -l <"$d/$s.ref")" "$(wc -w <"$d/$s.en")" "$(wc -w <"$d/$s.es")"
    done
}

if [ "$FORCE" -eq 0 ] && complete "$OUT"; then
    echo "make_bible_corpus.sh: $OUT is complete; nothing to do (--force rebuilds)"
    summary "$OUT"
    exit 0
fi

# --- tools and modules ------------------------------------------------------------------------
need=()
command -v mod2imp >/dev/null || need+=(libsword-utils)
dpkg -s sword-text-kjv >/dev/null 2>&1 || need+=(sword-text-kjv)
dpkg -s sword-text-sparv >/dev/null 2>&1 || need+=(sword-text-sparv)
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import html, argparse' 2>/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "make_bible_corpus.sh: need root or sudo to install ${need[*]}" >&2; exit 1; }
        SUDO="sudo"
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Module names and .conf files as the packages installed them (not assumed).
module_conf() {  # package expected-module
    local conf name
    conf=$(dpkg -L "$1" | grep -E '/mods\.d/[^/]+\.conf$' | head -n 1)
    [ -n "$conf" ] && [ -f "$conf" ] || { echo "make_bible_corpus.sh: $1 installed no mods.d/*.conf" >&2; exit 1; }
    name=$(sed -n 's/^\[\(.*\)\][[:space:]]*$/\1/p' "$conf" | head -n 1)
    [ "$name" = "$2" ] || echo "make_bible_corpus.sh: note: $1 ships module $name (expected $2)" >&2
    printf '%s %s\n' "$name" "$conf"
}
EN=$(module_conf sword-text-kjv engKJV2006eb)
ES=$(module_conf sword-text-sparv spaRV1909eb)
EN_MOD=${EN%% *}; EN_CONF=${EN#* }
ES_MOD=${ES%% *}; ES_CONF=${ES#* }
echo "modules: $EN_MOD ($EN_CONF, $(grep -m1 '^DistributionLicense=' "$EN_CONF"))," \
     "$ES_MOD ($ES_CONF, $(grep -m1 '^DistributionLicense=' "$ES_CONF"))"

# --- build --------------------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
TMP=$(mktemp -d "$(dirname "$OUT")/.$(basename "$OUT").tmp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
mkdir "$TMP/out"
mod2imp "$EN_MOD" >"$TMP/en.imp"
mod2imp "$ES_MOD" >"$TMP/es.imp"
for f in en es; do
    n=$(grep -c '^\$\$\$' "$TMP/$f.imp" || true)
    [ "$n" -gt 30000 ] || { echo "make_bible_corpus.sh: mod2imp exported only $n entries of $f" >&2; exit 1; }
done
/usr/bin/python3 "$HERE/bible_corpus.py" --en "$TMP/en.imp" --es "$TMP/es.imp" \
    --en-conf "$EN_CONF" --es-conf "$ES_CONF" --out "$TMP/out"

# Fail loudly if a reserved book got through, whatever the Python side checked.
for s in "${SPLITS[@]}"; do
    if grep -Eq "$RESERVED_RE" "$TMP/out/$s.ref"; then
        echo "make_bible_corpus.sh: FATAL: a reserved book is in $s:" >&2
        grep -E "$RESERVED_RE" "$TMP/out/$s.ref" | head -n 3 >&2
        exit 1
    fi
done
complete "$TMP/out" || { echo "make_bible_corpus.sh: the build is incomplete (see $TMP/out)" >&2; trap - EXIT; exit 1; }

# Into place: data files first, README.md (the completeness marker read first) last.
mkdir -p "$OUT"
rm -f "$OUT/README.md"
for s in "${SPLITS[@]}"; do
    for e in en es ref; do mv -f "$TMP/out/$s.$e" "$OUT/$s.$e"; done
done
mv -f "$TMP/out/README.md" "$OUT/README.md"

echo "sample pairs (plain text, as written; reference / English / Spanish):"
for s in "${SPLITS[@]}"; do
    n=$(wc -l <"$OUT/$s.ref")
    for i in 1 $((n / 2)); do
        printf '  [%s] %s\n    en: %s\n    es: %s\n' "$s" "$(sed -n "${i}p" "$OUT/$s.ref")" \
            "$(sed -n "${i}p" "$OUT/$s.en")" "$(sed -n "${i}p" "$OUT/$s.es")"
    done
done
summary "$OUT"
echo "done in $(( $(date +%s) - START )) s"
