//! Runtime neural types of `nemo_core::types`: the comparison rules, the textual form and its
//! parser, and element types and axis kinds declared outside the crate.
//!
//! Every comparison reads `output.compare(&input)`: the type of an output port connected to the
//! type of an input port, the direction of the NeMo paper's Table 1. NeMo's own code compares the
//! other way round (`expected.compare(found)`, i.e. `input.compare(output)`); the scenarios taken
//! from NeMo's `tests/core/test_neural_types.py` are translated to our direction and say so.

use nemo_core::Error;
use nemo_core::typed::Element;
use nemo_core::typed::elements::{Spectrogram, Void};
use nemo_core::types::{AxisKind, AxisType, Comparison, ElementInfo, ElementType, NeuralType};

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

nemo_core::axis_kind! {
    /// Bark bands: an axis kind declared outside `nemo-core`.
    pub BarkBand = "bark"
}

nemo_core::axis_kind! {
    /// Images of a detection batch (NeMo's `AxisKind2.Image` in `test_struct`).
    pub Image = "image"
}

/// A Bark-scale spectrogram: an element type declared outside `nemo-core`.
#[nemo_core::element_type(parent = Spectrogram, alias = "BarkSpectrogramType")]
pub struct BarkSpectrogram;

/// A loudness-weighted Bark spectrogram at a loudness level `phon`: the second level of a
/// user-declared chain, with a parameter.
#[nemo_core::element_type(parent = BarkSpectrogram, params(phon))]
pub struct LoudBark;

/// A bounding box from a detection model (NeMo's `test_struct`).
#[nemo_core::element_type(parent = Void)]
pub struct BoundingBox;

/// A bounding box with a field missing (NeMo's `test_struct`): unrelated to [`BoundingBox`].
#[nemo_core::element_type(parent = Void)]
pub struct BadBoundingBox;

/// Parses the textual form of a neural type.
fn ty(text: &str) -> Result<NeuralType, Error> {
    text.parse()
}

/// Checks `output.compare(&input)` on two textual types.
fn check(output: &str, input: &str, expected: Comparison) -> TestResult {
    let got = ty(output)?.compare(&ty(input)?);
    assert_eq!(
        got, expected,
        "output `{output}` into input `{input}`: got {got}, expected {expected}"
    );
    Ok(())
}

/// Checks the comparison both ways round.
fn check_both(a: &str, b: &str, a_into_b: Comparison, b_into_a: Comparison) -> TestResult {
    check(a, b, a_into_b)?;
    check(b, a, b_into_a)
}

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

fn info(name: &str) -> Result<&'static ElementInfo, String> {
    ElementInfo::lookup(name).ok_or_else(|| format!("element type `{name}` is not registered"))
}

// ---------------------------------------------------------------------------------------------
// The paper's Table 1, row by row (Spectrogram and EncodedRepresentation inherit Channel).
// ---------------------------------------------------------------------------------------------

#[test]
fn table1_row1_general_output_into_specific_input_is_greater() -> TestResult {
    check("(B, D) Channel", "(B, D) Spectrogram", Comparison::Greater)?;
    assert!(!Comparison::Greater.is_compatible());
    Ok(())
}

#[test]
fn table1_row2_specific_output_into_general_input_is_less() -> TestResult {
    check("(B, D) Spectrogram", "(B, D) Channel", Comparison::Less)?;
    assert!(Comparison::Less.is_compatible());
    Ok(())
}

#[test]
fn table1_row3_siblings_are_incompatible() -> TestResult {
    check(
        "(B, D) Spectrogram",
        "(B, D) EncodedRepresentation",
        Comparison::Incompatible,
    )?;
    assert!(!Comparison::Incompatible.is_compatible());
    Ok(())
}

#[test]
fn table1_row4_swapped_axes_are_transpose_same() -> TestResult {
    check(
        "(B, D) Spectrogram",
        "(D, B) Spectrogram",
        Comparison::TransposeSame,
    )?;
    assert!(!Comparison::TransposeSame.is_compatible());
    Ok(())
}

#[test]
fn table1_row5_size_mismatch_with_compatible_subtype_is_dim_incompatible() -> TestResult {
    check(
        "(B, D:64) Spectrogram",
        "(B, D:40) Channel",
        Comparison::DimIncompatible,
    )?;
    assert!(!Comparison::DimIncompatible.is_compatible());
    Ok(())
}

#[test]
fn table1_row6_root_input_accepts_anything() -> TestResult {
    check("(B, D:64) Spectrogram", "void", Comparison::Same)?;
    assert!(Comparison::Same.is_compatible());
    Ok(())
}

#[test]
fn comparison_names_are_nemos() {
    let all = [
        (Comparison::Same, "SAME"),
        (Comparison::Less, "LESS"),
        (Comparison::Greater, "GREATER"),
        (Comparison::DimIncompatible, "DIM_INCOMPATIBLE"),
        (Comparison::TransposeSame, "TRANSPOSE_SAME"),
        (Comparison::ContainerSizeMismatch, "CONTAINER_SIZE_MISMATCH"),
        (Comparison::Incompatible, "INCOMPATIBLE"),
        (
            Comparison::SameTypeIncompatibleParams,
            "SAME_TYPE_INCOMPATIBLE_PARAMS",
        ),
    ];
    for (c, name) in all {
        assert_eq!(c.nemo_name(), name);
        assert_eq!(c.to_string(), name);
        assert!(!c.explain().is_empty());
        assert_eq!(
            c.is_compatible(),
            matches!(c, Comparison::Same | Comparison::Less),
            "{c}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// NeMo's tests/core/test_neural_types.py, translated: NeMo's `x.compare(y)` checks `y` flowing
// into a port of type `x`, which is our `y.compare(&x)`.
// ---------------------------------------------------------------------------------------------

/// NeMo `test_short_vs_long_version`: the struct form and the textual form are one type.
#[test]
fn nemo_short_vs_long_version() -> TestResult {
    let long = NeuralType::new(
        Some(vec![
            AxisType::new(AxisKind::Batch),
            AxisType::new(AxisKind::Dimension),
            AxisType::new(AxisKind::Time),
        ]),
        ElementType::new(info("AcousticEncodedRepresentation")?),
    );
    let short = ty("(B, D, T) AcousticEncodedRepresentation")?;
    assert_eq!(long, short);
    assert_eq!(long.compare(&short), Comparison::Same);
    assert_eq!(short.compare(&long), Comparison::Same);
    Ok(())
}

/// NeMo `test_parameterized_type_audio_sampling_frequency`.
#[test]
fn nemo_audio_sampling_frequency() -> TestResult {
    let a16 = "(B, T) AudioSignal{freq=16000}";
    let a8 = "(B, T) AudioSignal{freq=8000}";
    let any = "(B, T) AudioSignal";
    check_both(
        a16,
        a8,
        Comparison::SameTypeIncompatibleParams,
        Comparison::SameTypeIncompatibleParams,
    )?;
    check_both(a16, a16, Comparison::Same, Comparison::Same)?;
    // A parameter left unset matches any value, on either side.
    check_both(any, a16, Comparison::Same, Comparison::Same)?;
    check_both(any, a8, Comparison::Same, Comparison::Same)?;
    assert!(!Comparison::SameTypeIncompatibleParams.is_compatible());
    let t = ty(a16)?;
    assert_eq!(t.element().param("freq"), Some(16000.0));
    assert_eq!(ty(any)?.element().param("freq"), None);
    Ok(())
}

/// NeMo `test_transpose_same_1`: `NeuralType(axes=...)` has the element type `VoidType`.
#[test]
fn nemo_transpose_same_void_elements() -> TestResult {
    check_both(
        "(B, T, C) void",
        "(T, B, C) void",
        Comparison::TransposeSame,
        Comparison::TransposeSame,
    )
}

/// NeMo `test_transpose_same_2`.
#[test]
fn nemo_transpose_same_audio() -> TestResult {
    check_both(
        "(B, T) AudioSignal{freq=16000}",
        "(T, B) AudioSignal{freq=16000}",
        Comparison::TransposeSame,
        Comparison::TransposeSame,
    )
}

/// NeMo `test_inheritance_spec_augment_example`: MelSpectrogram < Spectrogram, MFCCSpectrogram <
/// Spectrogram, and the two siblings are unrelated.
#[test]
fn nemo_inheritance_spec_augment() -> TestResult {
    let spec = "(B, D, T) Spectrogram";
    let mel = "(B, D, T) MelSpectrogram";
    let mfcc = "(B, D, T) MFCCSpectrogram";
    check_both(
        mel,
        mfcc,
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    check_both(mel, spec, Comparison::Less, Comparison::Greater)?;
    check_both(mfcc, spec, Comparison::Less, Comparison::Greater)?;
    // The chain goes on up: MelSpectrogram < Spectrogram < Channel.
    check_both(
        mel,
        "(B, D, T) Channel",
        Comparison::Less,
        Comparison::Greater,
    )?;
    Ok(())
}

/// NeMo `test_singletone`: two types without axes (NeMo's default element is `VoidType`).
#[test]
fn nemo_no_axes_types() -> TestResult {
    check_both("void", "void", Comparison::Same, Comparison::Same)?;
    check_both("Loss", "Loss", Comparison::Same, Comparison::Same)?;
    check_both(
        "Loss",
        "Labels",
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    Ok(())
}

/// NeMo `test_list_of_lists` (which asserts only truthiness): list axes nested to a different
/// depth are a container mismatch.
#[test]
fn nemo_list_of_lists_is_container_mismatch() -> TestResult {
    check_both(
        "([B], [T], D:32, D:128, D:256) Channel",
        "(B, T, D:32, D:128, D:256) Channel",
        Comparison::ContainerSizeMismatch,
        Comparison::ContainerSizeMismatch,
    )?;
    check_both(
        "([B], [T], D:32) Channel",
        "([B], D:32) Channel",
        Comparison::ContainerSizeMismatch,
        Comparison::ContainerSizeMismatch,
    )?;
    check(
        "([B], [T], D:32, D:128, D:256) Channel",
        "([B], [T], D:32, D:128, D:256) Channel",
        Comparison::Same,
    )?;
    Ok(())
}

/// NeMo `test_void`: an input of element type void with axes accepts any element type on the
/// same axes, and nothing of another rank.
#[test]
fn nemo_void_with_axes() -> TestResult {
    let btc_void = "(B, T, C) void";
    check("(B, T, C) Spectrogram", btc_void, Comparison::Same)?;
    check("(B, T) Spectrogram", btc_void, Comparison::Incompatible)?;
    // A void output into a Spectrogram input: NeMo says INCOMPATIBLE; here Void is the root of the
    // tree, so the output is a more general kind than the input accepts. Incompatible either way.
    let got = ty(btc_void)?.compare(&ty("(B, T, C) Spectrogram")?);
    assert_eq!(got, Comparison::Greater);
    assert!(!got.is_compatible());
    Ok(())
}

/// NeMo `test_big_void`: `void` without axes accepts anything, lists, scalars and other ranks
/// included.
#[test]
fn nemo_big_void_accepts_everything() -> TestResult {
    for output in [
        "(B, T, C) Spectrogram",
        "(B, T) Spectrogram",
        "([B], [T], D:32, D:128, D:256) Channel",
        "(B, T, D:32, D:128, D:256) Channel",
        "Loss",
        "void",
        "(B, T) AudioSignal{freq=16000}",
        "(B) Lengths?",
    ] {
        check(output, "void", Comparison::Same)?;
        check(output, "VoidType", Comparison::Same)?;
        assert_eq!(ty(output)?.compare(&NeuralType::void()), Comparison::Same);
    }
    assert_eq!(NeuralType::void(), ty("void")?);
    assert_eq!(NeuralType::void(), ty("VoidType")?);
    assert_eq!(NeuralType::void(), ty("Void")?);
    assert_eq!(NeuralType::void().to_string(), "void");
    Ok(())
}

/// NeMo `test_unspecified_dimensions`: an input without sizes accepts any size; an input with
/// sizes rejects an output whose sizes are unknown.
#[test]
fn nemo_unspecified_dimensions() -> TestResult {
    check_both(
        "(B:64, T:10, D:128) Spectrogram",
        "(B, T, C) Spectrogram",
        Comparison::Same,
        Comparison::DimIncompatible,
    )
}

/// NeMo `test_any_axis`, and the docs' example (which claims INCOMPATIBLE where NeMo's code says
/// SAME; SAME is right).
#[test]
fn nemo_any_axis() -> TestResult {
    let t0 = "(B, Any, Any) void";
    let t1 = "(B, Any, Any) Spectrogram";
    let t2 = "(B, T, C) Spectrogram";
    check(t1, t0, Comparison::Same)?;
    check(t2, t0, Comparison::Same)?;
    check(t2, t1, Comparison::Same)?;
    check("(B, C, T) Spectrogram", t1, Comparison::Same)?;
    // A void output into a Spectrogram input (NeMo: INCOMPATIBLE): a more general kind.
    check(t0, t1, Comparison::Greater)?;
    // `Any` matches only on the input side, as in NeMo: an output axis of unknown kind does not
    // satisfy a port that needs `T` (the compile-time `AxisMatches` agrees).
    check(t1, t2, Comparison::Incompatible)?;
    Ok(())
}

/// NeMo `test_struct`: user element types on list axes of a user axis kind.
#[test]
fn nemo_struct_user_types() -> TestResult {
    let good = "([B], [image]) BoundingBox";
    let bad = "([B], [image]) BadBoundingBox";
    check_both(
        good,
        bad,
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    check(good, good, Comparison::Same)?;
    check(good, "([B], [Any]) void", Comparison::Same)?;
    Ok(())
}

#[test]
fn scalars_never_match_axes() -> TestResult {
    check_both(
        "Loss",
        "(B) Loss",
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    check_both(
        "Loss",
        "(Any) Loss",
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    // Only `void` *without* axes is the big void.
    check("Loss", "(B) void", Comparison::Incompatible)?;
    check("Loss", "void", Comparison::Same)?;
    Ok(())
}

#[test]
fn different_ranks_are_incompatible() -> TestResult {
    check_both(
        "(B, T) Spectrogram",
        "(B, T, D) Spectrogram",
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    check_both(
        "(B, Any) Spectrogram",
        "(B, T, D) Spectrogram",
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    check_both(
        "(B) Lengths",
        "(B, T) Lengths",
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    Ok(())
}

#[test]
fn output_without_size_into_fixed_size_input_is_dim_incompatible() -> TestResult {
    check(
        "(B, D) Spectrogram",
        "(B, D:64) Spectrogram",
        Comparison::DimIncompatible,
    )?;
    check(
        "(B, D:64) Spectrogram",
        "(B, D) Spectrogram",
        Comparison::Same,
    )?;
    check(
        "(B, D:64) Spectrogram",
        "(B, D:64) Spectrogram",
        Comparison::Same,
    )?;
    check(
        "(B, D:64) MelSpectrogram",
        "(B, D) Spectrogram",
        Comparison::Less,
    )?;
    check(
        "(B, D:64) MelSpectrogram",
        "(B, D:64) Spectrogram",
        Comparison::Less,
    )?;
    // An `Any` output axis has no known kind: it does not fit a `D` input.
    check(
        "(B, Any) Spectrogram",
        "(B, D:64) Spectrogram",
        Comparison::Incompatible,
    )?;
    Ok(())
}

#[test]
fn incompatible_elements_dominate_axis_results() -> TestResult {
    // Size mismatch with unrelated or more general elements.
    check(
        "(B, D:64) Spectrogram",
        "(B, D:40) EncodedRepresentation",
        Comparison::Incompatible,
    )?;
    check(
        "(B, D:64) Channel",
        "(B, D:40) Spectrogram",
        Comparison::Incompatible,
    )?;
    // Transposition with a more general output, or with a parameter clash.
    check(
        "(B, D) Channel",
        "(D, B) Spectrogram",
        Comparison::Incompatible,
    )?;
    check(
        "(B, T) AudioSignal{freq=16000}",
        "(T, B) AudioSignal{freq=8000}",
        Comparison::Incompatible,
    )?;
    // Transposition with a more specific output is still a transposition.
    check(
        "(B, D) MelSpectrogram",
        "(D, B) Spectrogram",
        Comparison::TransposeSame,
    )?;
    // Different list nesting is reported whatever the elements.
    check(
        "([B], T) Labels",
        "(B, T) Labels",
        Comparison::ContainerSizeMismatch,
    )?;
    Ok(())
}

#[test]
fn transposition_carries_sizes_that_agree() -> TestResult {
    check(
        "(B, D:64) Spectrogram",
        "(D:64, B) Spectrogram",
        Comparison::TransposeSame,
    )?;
    check(
        "(B, D:64) Spectrogram",
        "(D, B) Spectrogram",
        Comparison::TransposeSame,
    )?;
    check(
        "([B], T, D) Channel",
        "([B], D, T) Channel",
        Comparison::TransposeSame,
    )?;
    Ok(())
}

/// A transposition whose sizes disagree after the permute is not valid by a permute, which is what
/// `TransposeSame` promises. NeMo's `__compare_axes` returns DIM_INCOMPATIBLE here (it compares
/// the size per kind); ours ignores sizes once the kinds are a permutation.
#[test]
fn transposition_with_disagreeing_sizes_is_dim_incompatible() -> TestResult {
    check(
        "(B, D:64) Spectrogram",
        "(D:40, B) Spectrogram",
        Comparison::DimIncompatible,
    )?;
    check(
        "(B, D) Spectrogram",
        "(D:40, B) Spectrogram",
        Comparison::DimIncompatible,
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// NeMo's quirks, fixed.
// ---------------------------------------------------------------------------------------------

/// NeMo keeps only the last position's verdict, so a later `Any` cancels an earlier mismatch.
#[test]
fn later_any_does_not_cancel_a_mismatch() -> TestResult {
    check_both(
        "(T, Any) Spectrogram",
        "(B, Any) Spectrogram",
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    check_both(
        "(T, D, Any) Spectrogram",
        "(B, D, Any) Spectrogram",
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    check("(T, Any) void", "(B, Any) void", Comparison::Incompatible)?;
    Ok(())
}

/// NeMo detects transposition on the *set* of kinds.
#[test]
fn transposition_compares_multisets_of_kinds() -> TestResult {
    check_both(
        "(B, D, D) Spectrogram",
        "(D, B, B) Spectrogram",
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    check_both(
        "(B, D, D) Spectrogram",
        "(D, B, D) Spectrogram",
        Comparison::TransposeSame,
        Comparison::TransposeSame,
    )?;
    check_both(
        "(B, T, T, D) Spectrogram",
        "(T, B, D, D) Spectrogram",
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    Ok(())
}

/// NeMo's `NeuralType.__eq__` returns the comparison enum, so `==` is always truthy.
#[test]
fn equality_is_real() -> TestResult {
    let base = ty("(B, T) Spectrogram")?;
    assert_eq!(base, ty("(B, T) Spectrogram")?);
    assert_eq!(base, ty("(N, time) SpectrogramType")?);
    assert_ne!(base, ty("(T, B) Spectrogram")?);
    assert_ne!(base, ty("(B, T) MelSpectrogram")?);
    assert_ne!(base, ty("(B, T:5) Spectrogram")?);
    assert_ne!(base, ty("(B, T, D) Spectrogram")?);
    assert_ne!(base, ty("([B], T) Spectrogram")?);
    assert_ne!(base, ty("(B, T) Spectrogram?")?);
    assert_ne!(ty("Loss")?, ty("(B) Loss")?);
    // Comparison SAME does not make types equal: an unset parameter matches any value.
    let any = ty("(B, T) AudioSignal")?;
    let a16 = ty("(B, T) AudioSignal{freq=16000}")?;
    assert_eq!(any.compare(&a16), Comparison::Same);
    assert_ne!(any, a16);
    assert_ne!(a16, ty("(B, T) AudioSignal{freq=8000}")?);
    // The optional flag is part of the type but not of the comparison.
    assert_eq!(
        ty("(B) Lengths?")?.compare(&ty("(B) Lengths")?),
        Comparison::Same
    );
    Ok(())
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

#[test]
fn user_types_compare_with_builtins() -> TestResult {
    let loud = "(B, D, T) LoudBark";
    let bark = "(B, D, T) BarkSpectrogram";
    check_both(loud, bark, Comparison::Less, Comparison::Greater)?;
    check_both(
        loud,
        "(B, D, T) Spectrogram",
        Comparison::Less,
        Comparison::Greater,
    )?;
    check_both(
        bark,
        "(B, D, T) Spectrogram",
        Comparison::Less,
        Comparison::Greater,
    )?;
    check_both(
        loud,
        "(B, D, T) Channel",
        Comparison::Less,
        Comparison::Greater,
    )?;
    check_both(
        bark,
        "(B, D, T) MelSpectrogram",
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    check_both(
        loud,
        "(B, D, T) EncodedRepresentation",
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    check(loud, "(B, D, T) void", Comparison::Same)?;
    check(loud, "void", Comparison::Same)?;
    check_both(
        "(B, D, T) LoudBark{phon=60}",
        "(B, D, T) LoudBark{phon=80}",
        Comparison::SameTypeIncompatibleParams,
        Comparison::SameTypeIncompatibleParams,
    )?;
    check("(B, D, T) LoudBark{phon=60}", loud, Comparison::Same)?;
    // A subtype with a parameter into its parent without one.
    check("(B, D, T) LoudBark{phon=60}", bark, Comparison::Less)?;
    Ok(())
}

#[test]
fn user_axis_kinds_compare() -> TestResult {
    check(
        "(B, bark) BarkSpectrogram",
        "(B, bark) BarkSpectrogram",
        Comparison::Same,
    )?;
    check_both(
        "(B, bark, T) BarkSpectrogram",
        "(B, T, bark) BarkSpectrogram",
        Comparison::TransposeSame,
        Comparison::TransposeSame,
    )?;
    check_both(
        "(B, bark) BarkSpectrogram",
        "(B, D) BarkSpectrogram",
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    check_both(
        "(B, bark) BarkSpectrogram",
        "(B, image) BarkSpectrogram",
        Comparison::Incompatible,
        Comparison::Incompatible,
    )?;
    check(
        "(B, bark) BarkSpectrogram",
        "(B, Any) Spectrogram",
        Comparison::Less,
    )?;
    check(
        "(B, bark:24) LoudBark",
        "(B, bark:18) Spectrogram",
        Comparison::DimIncompatible,
    )?;
    Ok(())
}

#[test]
fn user_types_are_listed_with_their_lineage() -> TestResult {
    let all = ElementInfo::all();
    let names: Vec<&str> = all.iter().map(|i| i.name).collect();
    for name in [
        "BarkSpectrogram",
        "LoudBark",
        "BoundingBox",
        "BadBoundingBox",
        "Spectrogram",
    ] {
        assert!(
            names.contains(&name),
            "{name} missing from ElementInfo::all()"
        );
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        names, sorted,
        "ElementInfo::all() is sorted and without duplicates"
    );

    let lineage = LoudBark::info().lineage();
    let (head, root) = lineage
        .rsplit_once(" < ")
        .ok_or_else(|| format!("lineage without a parent: {lineage}"))?;
    assert_eq!(head, "LoudBark < BarkSpectrogram < Spectrogram < Channel");
    assert!(root.eq_ignore_ascii_case("void"), "root: {root}");
    assert_eq!(LoudBark::info().parent(), Some(BarkSpectrogram::info()));
    assert_eq!(BarkSpectrogram::info().parent(), Some(Spectrogram::info()));
    assert!(LoudBark::info().is_a(Spectrogram::info()));
    assert!(!Spectrogram::info().is_a(LoudBark::info()));
    assert_eq!(LoudBark::info().params, ["phon"]);
    assert_eq!(BarkSpectrogram::info().aliases, ["BarkSpectrogramType"]);
    assert!(
        BoundingBox::info()
            .parent()
            .is_some_and(ElementInfo::is_void)
    );
    assert_eq!(Void::info().lineage(), "Void");
    Ok(())
}
