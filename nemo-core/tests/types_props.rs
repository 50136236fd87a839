//! Properties of runtime neural types over random types: the textual form round-trips, comparison
//! is reflexive and consistent in both directions, permutations are transpositions, and no input
//! text makes the parser panic.
//!
//! Random types draw axes from every built-in kind (with random sizes and list flags), elements
//! from every registered element type (`ElementInfo::all()`) with random finite parameter values,
//! and a random optional flag.

use nemo_core::Error;
use nemo_core::types::{AxisKind, AxisType, Comparison, ElementInfo, ElementType, NeuralType};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};

/// Every built-in axis kind.
const KINDS: [AxisKind; 9] = [
    AxisKind::Batch,
    AxisKind::Time,
    AxisKind::Dimension,
    AxisKind::Width,
    AxisKind::Height,
    AxisKind::Any,
    AxisKind::Sequence,
    AxisKind::FlowGroup,
    AxisKind::Singleton,
];

/// A finite parameter value: mostly plausible rates, sometimes any finite `f64`.
fn finite() -> impl Strategy<Value = f64> {
    use proptest::num::f64 as f;
    prop_oneof![
        3 => (0u32..200_000).prop_map(f64::from),
        1 => f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO,
    ]
}

/// One axis: any kind, sometimes a fixed size, sometimes a list axis (never both).
fn axis() -> impl Strategy<Value = AxisType> {
    (
        select(KINDS.to_vec()),
        prop::option::of(0usize..100_000),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(kind, size, is_list)| {
            if is_list {
                AxisType::list(kind)
            } else {
                AxisType {
                    kind,
                    size,
                    is_list: false,
                }
            }
        })
}

/// `info` with each of its parameters set or not.
fn with_params(info: &'static ElementInfo) -> impl Strategy<Value = ElementType> {
    prop::collection::vec(prop::option::of(finite()), info.params.len()).prop_map(move |values| {
        let mut element = ElementType::new(info);
        for (key, value) in info.params.iter().zip(values) {
            if let Some(v) = value {
                element = match element.clone().with_param(key, v) {
                    Some(e) => e,
                    None => element,
                };
            }
        }
        element
    })
}

/// Any registered element type, with random parameters where it has some.
fn element() -> impl Strategy<Value = ElementType> {
    select(ElementInfo::all()).prop_flat_map(with_params)
}

/// A type and one of its ancestors (itself included), parameters unset.
fn lineage_pair() -> impl Strategy<Value = (ElementType, ElementType)> {
    select(ElementInfo::all()).prop_flat_map(|info| {
        let mut chain = vec![info];
        let mut cur = info.parent();
        while let Some(p) = cur {
            chain.push(p);
            cur = p.parent();
        }
        select(chain).prop_map(move |anc| (ElementType::new(info), ElementType::new(anc)))
    })
}

/// Axes: none (a scalar type) sometimes, else one to six random axes.
fn axes() -> impl Strategy<Value = Option<Vec<AxisType>>> {
    prop::option::weighted(0.85, prop::collection::vec(axis(), 1..=6))
}

/// A random neural type.
fn neural_type() -> impl Strategy<Value = NeuralType> {
    (axes(), element(), prop::bool::weighted(0.2)).prop_map(|(axes, element, optional)| {
        let t = NeuralType::new(axes, element);
        if optional { t.optional() } else { t }
    })
}

/// Whether `t` carries a non-finite parameter (which the parser currently accepts; see the ignored
/// `non_finite_parameters_are_rejected` in `tests/type_parse.rs`).
fn has_non_finite_param(t: &NeuralType) -> bool {
    t.element()
        .params()
        .any(|(_, v)| v.is_some_and(|v| !v.is_finite()))
}

/// Parses `text`: any error must be a `ParseType` naming a position; a success must print to text
/// that parses back to the same type.
fn parse_never_panics(text: &str) -> Result<(), TestCaseError> {
    match text.parse::<NeuralType>() {
        Ok(t) => {
            if !has_non_finite_param(&t) {
                let shown = t.to_string();
                let back: NeuralType = shown.parse().map_err(|e: Error| {
                    TestCaseError::fail(format!("`{text}` parsed, its form `{shown}` did not: {e}"))
                })?;
                prop_assert_eq!(back, t, "`{}` -> `{}`", text, shown);
            }
        }
        Err(Error::ParseType { input, msg }) => {
            prop_assert_eq!(input, text);
            prop_assert!(msg.contains("(at character "), "no position in: {}", msg);
        }
        Err(other) => prop_assert!(false, "`{}`: not a ParseType error: {:?}", text, other),
    }
    Ok(())
}

/// Tokens of the textual form, and a few that do not belong, for near-valid random texts.
const TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "=",
    "?",
    " ",
    "\t",
    "B",
    "T",
    "D",
    "C",
    "N",
    "Any",
    "seq",
    "S",
    "D:64",
    ":64",
    "-3",
    "1.5",
    "1e400",
    "16000",
    "freq",
    "fps",
    "Spectrogram",
    "AudioSignal",
    "VoidType",
    "void",
    "Loss",
    "Lengths",
    "é",
    "\u{3000}",
    "\u{0}",
    "x",
];

/// Characters mutations insert or substitute.
const MUTATION_CHARS: &[char] = &[
    '(', ')', '[', ']', '{', '}', ',', ':', '=', '?', ' ', 'B', 'T', 'x', '0', '9', '.', '-', 'e',
    'é', '\u{3000}', '𝔅',
];

/// Applies `(op, position, char)` edits: 0 inserts, 1 deletes, 2 replaces.
fn mutate(text: &str, edits: &[(u8, usize, char)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for &(op, at, c) in edits {
        match op {
            0 => chars.insert(at % (chars.len() + 1), c),
            _ if chars.is_empty() => {}
            1 => {
                chars.remove(at % chars.len());
            }
            _ => {
                let i = at % chars.len();
                if let Some(slot) = chars.get_mut(i) {
                    *slot = c;
                }
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #[test]
    fn display_parse_round_trip(t in neural_type()) {
        let shown = t.to_string();
        let back: NeuralType = shown
            .parse()
            .map_err(|e: Error| TestCaseError::fail(format!("`{shown}`: {e}")))?;
        prop_assert_eq!(&back, &t, "via `{}`", shown);
        prop_assert_eq!(back.to_string(), shown);
    }

    #[test]
    fn compare_with_itself_is_same(t in neural_type()) {
        prop_assert_eq!(t.compare(&t), Comparison::Same, "`{}`", t);
        prop_assert!(t.compare(&t).is_compatible());
        prop_assert!(t.compare(&t.clone().optional()).is_compatible());
        prop_assert_eq!(t.element().compare(t.element()), Comparison::Same);
    }

    #[test]
    fn identical_axes_give_the_element_result(
        axes in axes(),
        (e1, e2) in prop_oneof![
            (element(), element()),
            lineage_pair(),
            lineage_pair().prop_map(|(a, b)| (b, a)),
        ],
    ) {
        let a = NeuralType::new(axes.clone(), e1.clone());
        let b = NeuralType::new(axes, e2.clone());
        let ab = a.compare(&b);
        let ba = b.compare(&a);
        prop_assert_eq!(ab, e1.compare(&e2), "`{}` into `{}`", a, b);
        prop_assert_eq!(ba, e2.compare(&e1), "`{}` into `{}`", b, a);
        if ab == Comparison::Less {
            prop_assert_eq!(ba, Comparison::Greater, "`{}` vs `{}`", a, b);
        }
        if ab == Comparison::Greater {
            // A void output is accepted by any void input; otherwise the reverse is Less.
            let expected = if e1.info().is_void() { Comparison::Same } else { Comparison::Less };
            prop_assert_eq!(ba, expected, "`{}` vs `{}`", a, b);
        }
        let neither_void = !e1.info().is_void() && !e2.info().is_void();
        if neither_void {
            prop_assert_eq!(ab == Comparison::Same, ba == Comparison::Same);
            prop_assert_eq!(
                ab == Comparison::SameTypeIncompatibleParams,
                ba == Comparison::SameTypeIncompatibleParams
            );
            prop_assert_eq!(ab == Comparison::Incompatible, ba == Comparison::Incompatible);
        }
    }

    #[test]
    fn transposition_is_symmetric(
        (axes, permuted) in prop::collection::vec(axis(), 1..=6)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        element in element(),
        optional in any::<bool>(),
    ) {
        let a = NeuralType::new(Some(axes), element.clone());
        let b = NeuralType::new(Some(permuted), element);
        let b = if optional { b.optional() } else { b };
        let ab = a.compare(&b);
        prop_assert_eq!(ab, b.compare(&a), "`{}` vs `{}`", a, b);
        prop_assert!(
            matches!(
                ab,
                Comparison::Same | Comparison::TransposeSame | Comparison::DimIncompatible
            ),
            "`{}` vs `{}`: {}", a, b, ab
        );
    }

    #[test]
    fn permuting_distinct_kinds_is_transpose_same(
        (axes, permuted) in subsequence(
            KINDS.iter().copied().filter(|k| *k != AxisKind::Any).collect::<Vec<_>>(),
            2..=8,
        )
        .prop_flat_map(|kinds| {
            let n = kinds.len();
            (Just(kinds), prop::collection::vec(axis(), n))
        })
        .prop_map(|(kinds, shapes)| {
            kinds
                .into_iter()
                .zip(shapes)
                .map(|(kind, shape)| AxisType { kind, ..shape })
                .collect::<Vec<_>>()
        })
        .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
        .prop_map(|(v, mut p)| {
            // The kinds are distinct, so a rotation of an unmoved list moves every axis.
            if p == v {
                p.rotate_left(1);
            }
            (v, p)
        }),
        element in element(),
    ) {
        let kinds = |v: &[AxisType]| v.iter().map(|a| a.kind).collect::<Vec<_>>();
        prop_assert_ne!(kinds(&axes), kinds(&permuted));
        let a = NeuralType::new(Some(axes), element.clone());
        let b = NeuralType::new(Some(permuted), element);
        prop_assert_eq!(a.compare(&b), Comparison::TransposeSame, "`{}` into `{}`", a, b);
        prop_assert_eq!(b.compare(&a), Comparison::TransposeSame, "`{}` into `{}`", b, a);
    }

    #[test]
    fn parser_never_panics_on_arbitrary_text(text in any::<String>()) {
        parse_never_panics(&text)?;
    }

    #[test]
    fn parser_never_panics_on_token_soup(tokens in prop::collection::vec(select(TOKENS), 0..24)) {
        parse_never_panics(&tokens.concat())?;
    }

    #[test]
    fn parser_never_panics_on_mutated_types(
        t in neural_type(),
        edits in prop::collection::vec((0u8..3, any::<usize>(), select(MUTATION_CHARS)), 1..5),
    ) {
        parse_never_panics(&mutate(&t.to_string(), &edits))?;
    }
}
