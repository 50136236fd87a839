//! Typed axis operations on graph handles — `permute_to`, `sum_over`, `mean_over`, `max_over`,
//! `cat` — recorded as nodes, so the fix a wiring error suggests (`.permute_to::<(B, D, T)>()`)
//! applies on the lazy path exactly as on eager values. The compiler checks the axes with the
//! same bounds as [`NTensor`](crate::NTensor)'s operations; the node carries the runtime type,
//! sizes included.

use std::sync::Arc;

use candle_core::Tensor;

use super::graph::LazyCall;
use super::handle::Handle;
use crate::module::{DynModule, ModuleKind, NamedTensors, PortTypes};
use crate::typed::{Axes, Element, HasAxis, IsA, PermuteFrom, WithoutAxis};
use crate::types::NeuralType;
use crate::{Error, ForwardCtx, Result};

/// What an axis node computes.
#[derive(Debug, Clone)]
enum Op {
    /// Output axis `i` is input axis `perm[i]`.
    Permute(Vec<usize>),
    Sum(usize),
    Mean(usize),
    Max(usize),
    /// Concatenation of the inputs `x0, x1, ..` along an axis.
    Cat(usize, usize),
}

/// A graph node applying one axis operation.
#[derive(Debug)]
struct AxisOp {
    op: Op,
    inputs: PortTypes,
    output: NeuralType,
}

impl AxisOp {
    fn name(&self) -> &'static str {
        match self.op {
            Op::Permute(_) => "permute_to",
            Op::Sum(_) => "sum_over",
            Op::Mean(_) => "mean_over",
            Op::Max(_) => "max_over",
            Op::Cat(..) => "cat",
        }
    }
}

impl DynModule for AxisOp {
    fn type_name(&self) -> &'static str {
        self.name()
    }

    fn kind(&self) -> ModuleKind {
        ModuleKind::Module
    }

    fn dyn_input_types(&self) -> PortTypes {
        self.inputs.clone()
    }

    fn dyn_output_types(&self) -> PortTypes {
        PortTypes::new(vec![("y".to_string(), self.output.clone())])
    }

    fn forward_dyn(&self, mut inputs: NamedTensors, _ctx: &ForwardCtx) -> Result<NamedTensors> {
        let mut take = |port: &str| {
            inputs.remove(port).ok_or_else(|| Error::Config {
                key: format!("{}.{port}", self.name()),
                msg: "the input is missing".into(),
            })
        };
        let y = match &self.op {
            Op::Permute(perm) => take("x")?.permute(perm.clone())?,
            Op::Sum(axis) => take("x")?.sum(*axis)?,
            Op::Mean(axis) => take("x")?.mean(*axis)?,
            Op::Max(axis) => take("x")?.max(*axis)?,
            Op::Cat(axis, n) => {
                let parts = (0..*n)
                    .map(|i| take(&format!("x{i}")))
                    .collect::<Result<Vec<Tensor>>>()?;
                Tensor::cat(&parts, *axis)?
            }
        };
        Ok(NamedTensors::from([("y".to_string(), y)]))
    }
}

/// `ty` with its axes rearranged by `f` (the element type, parameters and sizes kept).
fn reshaped(ty: &NeuralType, f: impl FnOnce(&mut Vec<crate::types::AxisType>)) -> NeuralType {
    let mut axes = ty.axes().map(<[_]>::to_vec).unwrap_or_default();
    f(&mut axes);
    NeuralType::new((!axes.is_empty()).then_some(axes), ty.element().clone())
}

fn record<A2: Axes, E2: Element>(
    op: AxisOp,
    inputs: Vec<(String, super::DynHandle)>,
) -> Result<Handle<A2, E2>> {
    let mut call = LazyCall::new(Arc::new(op));
    for (port, h) in inputs {
        call.input(&port, h);
    }
    call.finish()?.take("y")
}

impl<A: Axes, E: Element> Handle<A, E> {
    fn unary<A2: Axes>(&self, op: Op, output: NeuralType) -> Result<Handle<A2, E>> {
        let inputs = PortTypes::new(vec![("x".to_string(), self.neural_type().clone())]);
        record(
            AxisOp { op, inputs, output },
            vec![("x".to_string(), self.as_dyn().clone())],
        )
    }

    /// Reorders the axes to `Target` (a node of the graph), e.g. `(B, T, D)` →
    /// `.permute_to::<(B, D, T)>()`. The compiler checks that `Target` holds the same axes.
    pub fn permute_to<Target>(&self) -> Result<Handle<Target, E>>
    where
        Target: PermuteFrom<A>,
    {
        let perm = Target::source_positions();
        let output = reshaped(self.neural_type(), |axes| {
            let old = axes.clone();
            *axes = perm.iter().filter_map(|&p| old.get(p).cloned()).collect();
        });
        self.unary(Op::Permute(perm), output)
    }

    fn reduce<X>(&self, op: fn(usize) -> Op) -> Result<Handle<<A as WithoutAxis<X>>::Rest, E>>
    where
        A: WithoutAxis<X>,
    {
        let pos = <A as WithoutAxis<X>>::POS;
        let output = reshaped(self.neural_type(), |axes| {
            if pos < axes.len() {
                axes.remove(pos);
            }
        });
        self.unary(op(pos), output)
    }

    /// Sums over axis `X`, removing it from the type: `(B, D, T)` → `sum_over::<T>()` → `(B, D)`.
    pub fn sum_over<X>(&self) -> Result<Handle<<A as WithoutAxis<X>>::Rest, E>>
    where
        A: WithoutAxis<X>,
    {
        self.reduce::<X>(Op::Sum)
    }

    /// Averages over axis `X`, removing it from the type.
    pub fn mean_over<X>(&self) -> Result<Handle<<A as WithoutAxis<X>>::Rest, E>>
    where
        A: WithoutAxis<X>,
    {
        self.reduce::<X>(Op::Mean)
    }

    /// The maximum over axis `X`, removing it from the type.
    pub fn max_over<X>(&self) -> Result<Handle<<A as WithoutAxis<X>>::Rest, E>>
    where
        A: WithoutAxis<X>,
    {
        self.reduce::<X>(Op::Max)
    }

    /// Concatenates handles of the same type along axis `X` (a node of the graph).
    ///
    /// # Errors
    /// No handles, or handles of different graphs.
    pub fn cat<X>(values: &[&Self]) -> Result<Self>
    where
        A: HasAxis<X>,
    {
        let Some(first) = values.first() else {
            return Err(Error::Config {
                key: "cat".into(),
                msg: "concatenating needs at least one handle".into(),
            });
        };
        let pos = <A as HasAxis<X>>::POS;
        let output = reshaped(first.neural_type(), |axes| {
            if let Some(a) = axes.get_mut(pos) {
                a.size = None;
            }
        });
        let named: Vec<(String, super::DynHandle)> = values
            .iter()
            .enumerate()
            .map(|(i, h)| (format!("x{i}"), h.as_dyn().clone()))
            .collect();
        let inputs = PortTypes::new(
            named
                .iter()
                .map(|(p, h)| (p.clone(), h.neural_type().clone()))
                .collect(),
        );
        record(
            AxisOp {
                op: Op::Cat(pos, values.len()),
                inputs,
                output,
            },
            named,
        )
    }

    /// The same handle seen as a more general element type (`MelSpectrogram` → `Spectrogram`);
    /// the compiler checks the direction. Nothing is recorded.
    pub fn upcast<P: Element>(self) -> Handle<A, P>
    where
        E: IsA<P>,
    {
        Handle::from_dyn_unchecked(self.into_dyn())
    }
}
