//! The textual form of runtime neural types and its parser: every spelling, parameters, flags,
//! whitespace, canonical display, and parse errors that name the problem and its position.

mod common;

use common::{BarkBand, BarkSpectrogram, Image, LoudBark, TestResult, info, ty};
use nemo_core::Error;
use nemo_core::typed::Element;
use nemo_core::typed::elements::Void;
use nemo_core::types::{AxisKind, AxisType, ElementInfo, ElementType, NeuralType};

/// The message of the `Error::ParseType` that parsing `text` must give.
fn parse_error(text: &str) -> String {
    match text.parse::<NeuralType>() {
        Err(Error::ParseType { input, msg }) => {
            assert_eq!(input, text, "the error must quote the input as given");
            msg
        }
        Err(other) => panic!("`{text}`: expected Error::ParseType, got {other:?}"),
        Ok(t) => panic!("`{text}` should not parse, but gave `{t}`"),
    }
}

/// Asserts that parsing `text` fails with a message containing every one of `needles`.
fn assert_parse_error(text: &str, needles: &[&str]) {
    let msg = parse_error(text);
    for needle in needles {
        assert!(
            msg.contains(needle),
            "error for `{text}` should mention `{needle}`, got: {msg}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing: spellings, parameters, flags, whitespace.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_axis_spelling_parses() -> TestResult {
    let spellings = [
        ("B", AxisKind::Batch),
        ("N", AxisKind::Batch),
        ("batch", AxisKind::Batch),
        ("Batch", AxisKind::Batch),
        ("BATCH", AxisKind::Batch),
        ("T", AxisKind::Time),
        ("time", AxisKind::Time),
        ("Time", AxisKind::Time),
        ("D", AxisKind::Dimension),
        ("C", AxisKind::Dimension),
        ("dimension", AxisKind::Dimension),
        ("channel", AxisKind::Dimension),
        ("Channel", AxisKind::Dimension),
        ("W", AxisKind::Width),
        ("width", AxisKind::Width),
        ("H", AxisKind::Height),
        ("height", AxisKind::Height),
        ("Any", AxisKind::Any),
        ("any", AxisKind::Any),
        ("seq", AxisKind::Sequence),
        ("sequence", AxisKind::Sequence),
        ("flowgroup", AxisKind::FlowGroup),
        ("FlowGroup", AxisKind::FlowGroup),
        ("singleton", AxisKind::Singleton),
        ("S", AxisKind::Singleton),
        ("bark", AxisKind::User("bark")),
    ];
    for (label, kind) in spellings {
        assert_eq!(AxisKind::from_label(label), Some(kind), "label `{label}`");
        let t = ty(&format!("({label}) Channel"))?;
        assert_eq!(
            t.axes(),
            Some(&[AxisType::new(kind)][..]),
            "label `{label}`"
        );
        // Display writes the canonical label, which parses back to the same kind.
        let canonical = kind.label();
        assert_eq!(AxisKind::from_label(canonical), Some(kind));
        assert_eq!(t.to_string(), format!("({canonical}) Channel"));
    }
    let canon: Vec<_> = [
        AxisKind::Batch,
        AxisKind::Time,
        AxisKind::Dimension,
        AxisKind::Width,
        AxisKind::Height,
        AxisKind::Any,
        AxisKind::Sequence,
        AxisKind::FlowGroup,
        AxisKind::Singleton,
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    assert_eq!(
        canon,
        [
            "B",
            "T",
            "D",
            "W",
            "H",
            "Any",
            "seq",
            "flowgroup",
            "singleton"
        ]
    );
    // One-letter labels are case-sensitive.
    for label in ["b", "t", "d", "n", "c", "s", "w", "h"] {
        assert_eq!(AxisKind::from_label(label), None, "label `{label}`");
    }
    Ok(())
}

#[test]
fn every_element_name_and_alias_parses() -> TestResult {
    let all = ElementInfo::all();
    assert!(
        all.len() >= 40,
        "only {} element types registered",
        all.len()
    );
    for info in &all {
        let by_name = ty(&format!("(B) {}", info.name))?;
        assert_eq!(by_name.element().info(), *info);
        for alias in info.aliases {
            let by_alias = ty(&format!("(B) {alias}"))?;
            assert_eq!(by_alias, by_name, "alias `{alias}` of `{}`", info.name);
        }
        assert!(info.is_a(info));
        assert!(
            info.is_a(Void::info()),
            "{} is not a kind of Void",
            info.name
        );
    }
    for (short, long) in [
        ("Spectrogram", "SpectrogramType"),
        ("MelSpectrogram", "MelSpectrogramType"),
        ("Lengths", "LengthsType"),
        ("Length", "LengthType"),
        ("Loss", "LossType"),
        ("AudioSignal", "AudioSignalType"),
        ("Channel", "ChannelType"),
        ("void", "VoidType"),
    ] {
        assert_eq!(ty(short)?, ty(long)?, "`{short}` vs `{long}`");
    }
    assert_eq!(ty("StringType")?.element().name(), "StringType");
    assert_eq!(
        ty("(B, T) SpectrogramType")?.to_string(),
        "(B, T) Spectrogram"
    );
    Ok(())
}

#[test]
fn element_tree_is_nemos() -> TestResult {
    let pairs = [
        ("EmbeddedText", "Channel"),
        ("EncodedRepresentation", "Channel"),
        ("AcousticEncodedRepresentation", "EncodedRepresentation"),
        ("Spectrogram", "Channel"),
        ("MelSpectrogram", "Spectrogram"),
        ("MFCCSpectrogram", "Spectrogram"),
        ("Hypothesis", "Labels"),
        ("Predictions", "Labels"),
        ("RegressionValues", "Predictions"),
        ("CategoricalValues", "Predictions"),
        ("Mask", "Predictions"),
        ("ClassificationTarget", "Target"),
        ("NormalizedImageValue", "ImageValue"),
        ("ImageFeatureValue", "ImageValue"),
        ("StringLabel", "StringType"),
        ("TokenIndex", "IntType"),
        ("Length", "IntType"),
        (
            "NormalDistributionSamples",
            "ProbabilityDistributionSamples",
        ),
    ];
    for (child, parent) in pairs {
        let c = info(child)?;
        assert_eq!(
            c.parent().map(|p| p.name),
            Some(parent),
            "parent of {child}"
        );
    }
    for top in [
        "Channel",
        "Logits",
        "Probs",
        "Logprobs",
        "Lengths",
        "Loss",
        "Labels",
        "AudioSignal",
        "VideoSignal",
        "Index",
        "Target",
        "ImageValue",
        "StringType",
        "BoolType",
        "FloatType",
        "IntType",
        "ProbabilityDistributionSamples",
        "SequenceToSequenceAlignment",
        "NormalDistributionMean",
        "NormalDistributionLogVariance",
        "TokenDuration",
        "TokenLogDuration",
        "LogDeterminant",
    ] {
        let t = info(top)?;
        assert!(
            t.parent().is_some_and(|p| p.is_void()),
            "{top} hangs off Void"
        );
    }
    assert!(Void::info().is_void());
    assert_eq!(Void::info().parent(), None);
    assert_eq!(info("AudioSignal")?.params, ["freq"]);
    assert_eq!(info("VideoSignal")?.params, ["fps"]);
    let lineage = info("MelSpectrogram")?.lineage();
    let (head, root) = lineage
        .rsplit_once(" < ")
        .ok_or_else(|| format!("lineage without a parent: {lineage}"))?;
    assert_eq!(head, "MelSpectrogram < Spectrogram < Channel");
    assert!(root.eq_ignore_ascii_case("void"), "root: {root}");
    Ok(())
}

#[test]
fn parameters_parse() -> TestResult {
    let t = ty("(B, T) AudioSignal{freq=16000}")?;
    assert_eq!(t.element().param("freq"), Some(16000.0));
    assert_eq!(t.to_string(), "(B, T) AudioSignal{freq=16000}");
    let t = ty("(B, T) AudioSignalType { freq = 22050.5 }")?;
    assert_eq!(t.element().param("freq"), Some(22050.5));
    assert_eq!(
        t.element().params().collect::<Vec<_>>(),
        [("freq", Some(22050.5))]
    );
    let t = ty("(B, T, H, W) VideoSignal{fps=30}")?;
    assert_eq!(t.element().param("fps"), Some(30.0));
    assert_eq!(t.element().param("freq"), None);
    assert_eq!(
        ty("(B, T) AudioSignal{freq=1.6e4}")?,
        ty("(B, T) AudioSignal{freq=16000}")?
    );
    // Built by hand, the same.
    let built = ElementType::new(info("AudioSignal")?)
        .with_param("freq", 16000.0)
        .ok_or("AudioSignal has no `freq`")?;
    assert_eq!(ty("(B, T) AudioSignal{freq=16000}")?.element(), &built);
    assert!(
        ElementType::new(info("Spectrogram")?)
            .with_param("freq", 1.0)
            .is_none()
    );
    Ok(())
}

#[test]
fn optional_flag_parses() -> TestResult {
    let t = ty("(B) Lengths?")?;
    assert!(t.is_optional());
    assert_eq!(t.to_string(), "(B) Lengths?");
    assert!(!ty("(B) Lengths")?.is_optional());
    assert!(ty("Loss?")?.is_optional());
    assert!(ty("(B, T) AudioSignal{freq=8000}?")?.is_optional());
    assert_eq!(ty("(B) Lengths?")?, ty("(B) Lengths")?.optional());
    Ok(())
}

#[test]
fn list_axes_and_sizes_parse() -> TestResult {
    let t = ty("([B], T) Labels")?;
    assert_eq!(
        t.axes(),
        Some(
            &[
                AxisType::list(AxisKind::Batch),
                AxisType::new(AxisKind::Time)
            ][..]
        )
    );
    assert_eq!(t.rank(), Some(1));
    assert_eq!(t.to_string(), "([B], T) Labels");
    let t = ty("(B, D:64, T) MelSpectrogram")?;
    assert_eq!(
        t.axes(),
        Some(
            &[
                AxisType::new(AxisKind::Batch),
                AxisType::sized(AxisKind::Dimension, 64),
                AxisType::new(AxisKind::Time),
            ][..]
        )
    );
    assert_eq!(t.rank(), Some(3));
    assert_eq!(ty("Loss")?.axes(), None);
    assert_eq!(ty("Loss")?.rank(), None);
    assert_eq!(
        ty("(B, D:0) Channel")?
            .axes()
            .and_then(|a| a.get(1))
            .and_then(|a| a.size),
        Some(0)
    );
    assert_eq!(
        AxisType::new(AxisKind::Dimension).with_size(7),
        AxisType::sized(AxisKind::Dimension, 7)
    );
    assert_eq!(
        AxisType::from(AxisKind::Time),
        AxisType::new(AxisKind::Time)
    );
    Ok(())
}

#[test]
fn whitespace_is_tolerated() -> TestResult {
    let canonical = ty("([B], D:64, T) AudioSignal{freq=16000}?")?;
    for text in [
        "([B],D:64,T)AudioSignal{freq=16000}?",
        "  (  [ B ] ,  D : 64 , T  )   AudioSignal { freq = 16000 } ?  ",
        "(\t[B],\nD:64,\r\nT)\tAudioSignal{freq=16000}\n?\n",
        "\u{3000}([B], D:64, T) AudioSignal{freq=16000}?",
    ] {
        assert_eq!(ty(text)?, canonical, "`{text}`");
    }
    assert_eq!(
        canonical.to_string(),
        "([B], D:64, T) AudioSignal{freq=16000}?"
    );
    Ok(())
}

#[test]
fn display_is_canonical_and_parses_back() -> TestResult {
    for (text, canonical) in [
        (
            "(N, C:64, time) MelSpectrogramType",
            "(B, D:64, T) MelSpectrogram",
        ),
        (
            "(batch, channel) EncodedRepresentationType",
            "(B, D) EncodedRepresentation",
        ),
        ("( [ N ] , S ) VoidType ?", "([B], singleton) void?"),
        ("LossType", "Loss"),
        (
            "(sequence, FLOWGROUP, any) LogDeterminant",
            "(seq, flowgroup, Any) LogDeterminant",
        ),
        ("(B, bark) LoudBark{phon=60}", "(B, bark) LoudBark{phon=60}"),
    ] {
        let t = ty(text)?;
        assert_eq!(t.to_string(), canonical, "`{text}`");
        assert_eq!(ty(canonical)?, t, "`{canonical}`");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Parse errors: each an Error::ParseType naming the problem.
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_axis_lists_the_known_ones() {
    assert_parse_error(
        "(B, Q) Channel",
        &[
            "unknown axis `Q`",
            "known axes: B, T, D, W, H, Any, seq, flowgroup, singleton",
            "bark",
            "(at character 5)",
        ],
    );
    assert_parse_error("(b) Channel", &["unknown axis `b`", "known axes"]);
    assert_parse_error("(B2) Channel", &["unknown axis `B2`"]);
}

#[test]
fn unknown_element_suggests_the_nearest() {
    assert_parse_error(
        "(B) Spectrogrm",
        &[
            "unknown element type `Spectrogrm`",
            "did you mean `Spectrogram`?",
        ],
    );
    assert_parse_error(
        "(B, D, T) melspectrogram",
        &["did you mean `MelSpectrogram`?", "(at character 11)"],
    );
    assert_parse_error("(B) BarkSpectrogrm", &["did you mean `BarkSpectrogram`?"]);
    let msg = parse_error("(B) Zyzzyvaqqqqqqq");
    assert!(
        msg.contains("unknown element type `Zyzzyvaqqqqqqq`"),
        "{msg}"
    );
    assert!(!msg.contains("did you mean"), "{msg}");
}

#[test]
fn structural_errors_name_the_problem() {
    let cases: &[(&str, &[&str])] = &[
        ("([B:3]) Labels", &["a list axis cannot have a size"]),
        (
            "() Loss",
            &["empty axis list", "write the element type alone"],
        ),
        ("( ) Loss", &["empty axis list"]),
        (
            "(B, T",
            &["expected `,` or `)` between axes", "the end of the text"],
        ),
        (
            "(B, T Spectrogram",
            &["expected `,` or `)` between axes", "found `S`"],
        ),
        (
            "(B, [T) Labels",
            &["expected `]` to close the list axis", "found `)`"],
        ),
        ("(B, , T) Channel", &["expected an axis", "found `,`"]),
        (
            "(B, D:x) Channel",
            &["expected a size after `:`", "found `x`"],
        ),
        (
            "(B, D:) Channel",
            &["expected a size after `:`", "found `)`"],
        ),
        (
            "(B, D:-3) Channel",
            &["axis size `-3` is not a non-negative integer"],
        ),
        (
            "(B, D:1.5) Channel",
            &["axis size `1.5` is not a non-negative integer"],
        ),
        (
            "(B, D:99999999999999999999999) Channel",
            &["axis size `99999999999999999999999`"],
        ),
        (
            "(B, T) AudioSignal{rate=16000}",
            &["`AudioSignal` has no parameter `rate`", "it has freq"],
        ),
        (
            "(B) Spectrogram{freq=1}",
            &["`Spectrogram` has no parameter `freq`", "it has none"],
        ),
        (
            "(B) AudioSignal{freq=abc}",
            &["expected a number", "found `a`"],
        ),
        ("(B) AudioSignal{freq=1.2.3}", &["`1.2.3` is not a number"]),
        (
            "(B) AudioSignal{freq 1}",
            &["expected `=` after the parameter name"],
        ),
        (
            "(B) AudioSignal{freq=1",
            &[
                "expected `,` or `}` after a parameter",
                "the end of the text",
            ],
        ),
        (
            "(B) AudioSignal{}",
            &["expected a parameter name", "found `}`"],
        ),
        (
            "(B) AudioSignal{freq=1,}",
            &["expected a parameter name", "found `}`"],
        ),
        (
            "(B) Channel junk",
            &["unexpected `j` after the type", "(at character 13)"],
        ),
        ("(B) Channel??", &["unexpected `?` after the type"]),
        ("(B) Channel)", &["unexpected `)` after the type"]),
        ("", &["expected an element type", "the end of the text"]),
        ("   ", &["expected an element type", "the end of the text"]),
        ("(B)", &["expected an element type", "the end of the text"]),
        ("[B] Labels", &["expected an element type", "found `[`"]),
        ("?", &["expected an element type", "found `?`"]),
        ("(B) Spectrogramé", &["unexpected `é` after the type"]),
    ];
    for (text, needles) in cases {
        assert_parse_error(text, needles);
    }
}

#[test]
fn error_display_quotes_the_input() {
    let err = ty("(B, Q) Channel")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("cannot parse neural type `(B, Q) Channel`: unknown axis `Q`"),
        "{err}"
    );
}

/// Parameter values must be finite numbers: `1e400` overflows to infinity, and the parsed type's
/// own textual form (`freq=inf`) does not parse back.
#[test]
fn non_finite_parameters_are_rejected() {
    assert_parse_error("(B, T) AudioSignal{freq=1e400}", &["1e400"]);
    assert_parse_error("(B, T) AudioSignal{freq=-1e400}", &["-1e400"]);
}

/// Positions are counted in characters, as the messages say ("at character N").
#[test]
fn error_positions_count_characters() {
    // `junk` starts at character 14 (the ideographic space is one character, three bytes).
    assert_parse_error("\u{3000}Spectrogram junk", &["(at character 14)"]);
    // `Q` is character 5 (after an ideographic space).
    assert_parse_error(
        "(B,\u{3000}Q) Channel",
        &["unknown axis `Q`", "(at character 5)"],
    );
}

#[test]
fn no_pathological_input_panics() {
    let inputs = [
        "(",
        ")",
        "((",
        "(()",
        "[",
        "]",
        "[[B]]",
        "{",
        "}",
        ":",
        ",",
        "?",
        "??",
        "(:)",
        "(B:)",
        "(B:9:9) X",
        "(B,)",
        "(,)",
        "([])",
        "([B]:3) X",
        "(B) {freq=1}",
        "(B) AudioSignal{=1}",
        "(B) AudioSignal{freq==1}",
        "(B) AudioSignal{freq=}",
        "(B) AudioSignal{freq=e}",
        "(B) AudioSignal{freq=-}",
        "(B) AudioSignal{freq=+-.eE}",
        "é",
        "(é)",
        "(Bé) X",
        "(B) é",
        "\u{0}",
        "(B)\u{0}Channel",
        "(\u{10FFFF}) X",
        "𝔅",
        "(B) Channel\u{200B}",
        "ⅠⅡ",
        "(B, T) AudioSignal{freq=1e400}",
        "(B, T) AudioSignal{freq=NaN}",
        "(B, T) AudioSignal{freq=inf}",
        "(B, D:18446744073709551616) X",
    ];
    for text in inputs {
        if let Err(e) = text.parse::<NeuralType>() {
            assert!(matches!(e, Error::ParseType { .. }), "`{text}`: {e:?}");
        }
    }
    let long = format!("({}B) Channel", "B, ".repeat(10_000));
    assert!(ty(&long).is_ok());
    let deep = "(".repeat(10_000);
    assert!(ty(&deep).is_err());
}

// ---------------------------------------------------------------------------------------------
// Element types and axis kinds declared outside nemo-core.
// ---------------------------------------------------------------------------------------------

#[test]
fn user_types_parse_by_name() -> TestResult {
    assert_eq!(
        ElementInfo::lookup("BarkSpectrogram"),
        Some(BarkSpectrogram::info())
    );
    assert_eq!(
        ElementInfo::lookup("BarkSpectrogramType"),
        Some(BarkSpectrogram::info())
    );
    assert_eq!(ElementInfo::lookup("LoudBark"), Some(LoudBark::info()));
    let t = ty("(B, bark, T) LoudBark{phon=60}")?;
    assert_eq!(t.element().info(), LoudBark::info());
    assert_eq!(t.element().param("phon"), Some(60.0));
    assert_eq!(
        t.axes().and_then(|a| a.get(1)).map(|a| a.kind),
        Some(AxisKind::User("bark"))
    );
    assert_eq!(AxisKind::from_label("bark"), Some(AxisKind::User("bark")));
    assert_eq!(
        <BarkBand as nemo_core::typed::Axis>::KIND,
        AxisKind::User("bark")
    );
    assert_eq!(
        <Image as nemo_core::typed::Axis>::KIND,
        AxisKind::User("image")
    );
    assert!(AxisKind::known_labels().contains(&"bark"));
    assert!(AxisKind::known_labels().contains(&"image"));
    assert_eq!(AxisKind::User("bark").to_string(), "bark");
    Ok(())
}
