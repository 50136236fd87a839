//! BPE tokenizers trained on a small committed text (Genesis 1:1–8:16, English and Spanish):
//! exact round trips, save/load equality, a shared vocabulary against one per language, and
//! errors that name the file.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use nemo_nlp::text_file::read_lines;
use nemo_nlp::tokenizer::{
    BOS_ID, BpeTokenizer, BpeTokenizerConfig, EOS_ID, PAD_ID, SHARED_TOKENIZER_FILE,
    SOURCE_TOKENIZER_FILE, TARGET_TOKENIZER_FILE, TranslationTokenizers,
    TranslationTokenizersConfig, UNK_ID,
};
use proptest::prelude::*;

use nemo_core::testing::TestResult;

fn text(lang: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/text/genesis.{lang}"))
}

fn config(shared: bool) -> TranslationTokenizersConfig {
    TranslationTokenizersConfig {
        shared_tokenizer: shared,
        vocab_size: 1000,
        min_frequency: 2,
    }
}

static SHARED: LazyLock<TranslationTokenizers> = LazyLock::new(|| {
    config(true)
        .train(&[text("en")], &[text("es")])
        .unwrap_or_else(|e| panic!("training failed: {e}"))
});

#[test]
fn every_line_round_trips_exactly() -> TestResult {
    let tok = SHARED.source();
    for lang in ["en", "es"] {
        for line in read_lines(text(lang))? {
            let ids = tok.text_to_ids(&line)?;
            assert!(
                ids.iter().all(|&id| id > UNK_ID),
                "{line}: special id in {ids:?}"
            );
            assert_eq!(tok.ids_to_text(&ids)?, line);
        }
    }
    // Padding, BOS and EOS around a sentence decode to the sentence.
    let mut ids = vec![BOS_ID];
    ids.extend(tok.text_to_ids("Y dijo Dios: Sea la luz: y fué la luz.")?);
    ids.extend([EOS_ID, PAD_ID, PAD_ID]);
    assert_eq!(
        tok.ids_to_text(&ids)?,
        "Y dijo Dios: Sea la luz: y fué la luz."
    );
    // Characters never seen in training are spelt with byte symbols, not `<UNK>`.
    let unseen = "日本語 ½ → 🦀";
    assert_eq!(tok.ids_to_text(&tok.text_to_ids(unseen)?)?, unseen);
    Ok(())
}

#[test]
fn the_vocabulary_is_learnt_and_compresses() -> TestResult {
    let tok = SHARED.source();
    assert_eq!(tok.vocab_size(), 1000);
    let line = "In the beginning God created the heaven and the earth.";
    let ids = tok.text_to_ids(line)?;
    // 10 words and a period in at most 16 tokens (frequent words are single tokens).
    assert!(ids.len() <= 16, "{:?}", tok.text_to_tokens(line)?);
    assert_eq!(tok.text_to_tokens("the earth")?, ["Ġthe", "Ġearth"]);
    // Batch encoding is the same as one by one.
    let lines = read_lines(text("en"))?;
    let batch = tok.batch_text_to_ids(&lines)?;
    for (line, ids) in lines.iter().zip(&batch) {
        assert_eq!(&tok.text_to_ids(line)?, ids);
    }
    Ok(())
}

#[test]
fn training_is_deterministic() -> TestResult {
    let again = config(true).train(&[text("en")], &[text("es")])?;
    assert_eq!(again.source().to_json()?, SHARED.source().to_json()?);
    Ok(())
}

#[test]
fn saved_and_loaded_tokenizers_are_equal() -> TestResult {
    let dir = tempfile::tempdir()?;
    SHARED.save(dir.path())?;
    assert!(dir.path().join(SHARED_TOKENIZER_FILE).is_file());
    let loaded = TranslationTokenizers::load(dir.path())?;
    assert!(loaded.is_shared());
    assert_eq!(loaded.source().to_json()?, SHARED.source().to_json()?);
    for line in read_lines(text("es"))? {
        assert_eq!(
            loaded.target().text_to_ids(&line)?,
            SHARED.target().text_to_ids(&line)?
        );
    }
    // One tokenizer on its own, through its file.
    let path = dir.path().join("one.json");
    SHARED.source().save(&path)?;
    assert_eq!(
        BpeTokenizer::from_file(&path)?.to_json()?,
        SHARED.source().to_json()?
    );
    Ok(())
}

#[test]
fn shared_and_separate_vocabularies() -> TestResult {
    let separate = config(false).train(&[text("en")], &[text("es")])?;
    assert!(!separate.is_shared() && SHARED.is_shared());
    // Each language's own tokenizer spells its words in fewer pieces than the other
    // language's; the shared one is as good as the better of the two.
    let pieces = |t: &BpeTokenizer, w: &str| t.text_to_ids(w).map(|ids| ids.len());
    for (word, own, other) in [
        ("Jehová Dios", separate.target(), separate.source()),
        ("the LORD said", separate.source(), separate.target()),
    ] {
        assert!(pieces(own, word)? < pieces(other, word)?, "{word}");
        assert!(
            pieces(SHARED.source(), word)? < pieces(other, word)?,
            "{word}"
        );
    }
    assert_ne!(separate.source().to_json()?, separate.target().to_json()?);

    // Saving one layout over the other leaves only the new layout's files.
    let dir = tempfile::tempdir()?;
    SHARED.save(dir.path())?;
    separate.save(dir.path())?;
    assert!(!dir.path().join(SHARED_TOKENIZER_FILE).exists());
    let loaded = TranslationTokenizers::load(dir.path())?;
    assert!(!loaded.is_shared());
    assert_eq!(loaded.source().to_json()?, separate.source().to_json()?);
    assert_eq!(loaded.target().to_json()?, separate.target().to_json()?);
    SHARED.save(dir.path())?;
    assert!(!dir.path().join(SOURCE_TOKENIZER_FILE).exists());
    assert!(TranslationTokenizers::load(dir.path())?.is_shared());
    Ok(())
}

#[test]
fn load_errors_name_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path().display().to_string();
    let err = |r: nemo_nlp::Result<TranslationTokenizers>| {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    };

    let e = err(TranslationTokenizers::load(dir.path()));
    assert!(
        e.contains(&d) && e.contains("no tokenizer: expected `tokenizer.json`"),
        "{e}"
    );

    SHARED
        .source()
        .save(dir.path().join(SOURCE_TOKENIZER_FILE))?;
    let e = err(TranslationTokenizers::load(dir.path()));
    assert!(
        e.contains("`tokenizer.source.json` without `tokenizer.target.json`"),
        "{e}"
    );

    SHARED
        .source()
        .save(dir.path().join(TARGET_TOKENIZER_FILE))?;
    SHARED
        .source()
        .save(dir.path().join(SHARED_TOKENIZER_FILE))?;
    let e = err(TranslationTokenizers::load(dir.path()));
    assert!(e.contains("keep one layout"), "{e}");

    // A tokenizer.json that is not JSON, and one whose special tokens moved.
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{ not json")?;
    let e = BpeTokenizer::from_file(&broken)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.starts_with(&format!("tokenizer {}: ", broken.display())),
        "{e}"
    );
    let moved = dir.path().join("moved.json");
    std::fs::write(&moved, SHARED.source().to_json()?.replace("<PAD>", "<pad>"))?;
    let e = BpeTokenizer::from_file(&moved)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        e,
        format!(
            "tokenizer {}: special token `<PAD>` (id 0) is missing",
            moved.display()
        )
    );
    let missing = dir.path().join("missing/tokenizer.json");
    let e = BpeTokenizer::from_file(&missing)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.starts_with(&format!("tokenizer {}: ", missing.display())),
        "{e}"
    );
    // A training file that does not exist.
    let e = BpeTokenizerConfig::new(500)
        .train(&[dir.path().join("nope.txt")])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("nope.txt"), "{e}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any text that does not start with a space (the one added before encoding is removed
    /// after decoding) and does not spell a special token decodes to itself.
    #[test]
    fn decode_inverts_encode(text in "\\PC{0,40}") {
        prop_assume!(!text.starts_with(' '));
        prop_assume!(!["<PAD>", "<UNK>", "<BOS>", "<EOS>"].iter().any(|s| text.contains(s)));
        let tok = SHARED.source();
        let ids = tok.text_to_ids(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(tok.ids_to_text(&ids).map_err(|e| TestCaseError::fail(e.to_string()))?, text);
    }
}
