//! Runtime neural types of `nemo_core::types`: the comparison rules, with element types and axis
//! kinds declared outside the crate. (The textual form and its parser: `type_parse.rs`.)
//!
//! Every comparison reads `output.compare(&input)`: the type of an output port connected to the
//! type of an input port, the direction of the NeMo paper's Table 1. NeMo's own code compares the
//! other way round (`expected.compare(found)`, i.e. `input.compare(output)`); the scenarios taken
//! from NeMo's `tests/core/test_neural_types.py` are translated to our direction and say so.

mod common;

use common::{BarkSpectrogram, BoundingBox, LoudBark, TestResult, info, ty};
use nemo_core::typed::Element;
use nemo_core::typed::elements::{Spectrogram, Void};
use nemo_core::types::{AxisKind, AxisType, Comparison, ElementInfo, ElementType, NeuralType};

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
// Element types and axis kinds declared outside nemo-core.
// ---------------------------------------------------------------------------------------------

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
