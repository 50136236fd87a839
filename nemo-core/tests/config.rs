//! Models from YAML: test modules registered in this file, a good config that builds and runs, and
//! each way a config can be wrong — unknown type, unknown key and wrong value type at a nested
//! path, YAML syntax, miswired and unconnected ports, cycles — caught at build time with the key
//! path, the line and what was expected. Module order in the YAML does not matter (proptest).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use nemo_core::config::{BuildOptions, ConfigError, ConfigProblem, ModelConfig};
use nemo_core::params::Parameters;
use nemo_core::prelude::*;
use nemo_core::registry::ModuleFactory;
use nemo_core::{Error, Result};
use proptest::prelude::*;
use serde::Deserialize;

// ---------------------------------------------------------------- test modules and registrations

/// One layer of [`Affine`]'s config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerConfig {
    scale: f64,
    #[serde(default)]
    shift: f64,
}

/// `y = (x * weight) * Π scale + Σ shift`, weight `(dim)` initialized to ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AffineConfig {
    dim: usize,
    #[serde(default)]
    layers: Vec<LayerConfig>,
}

#[neural_module(
    inputs(x: (B, D = dim) Channel),
    outputs(y: (B, D = dim) Channel),
)]
struct Affine {
    dim: usize,
    weight: Tensor,
    scale: f64,
    shift: f64,
}

impl Affine {
    fn new(config: AffineConfig, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(config.dim, "weight", candle_nn::init::ONE)?;
        Ok(Affine {
            dim: config.dim,
            weight,
            scale: config.layers.iter().map(|l| l.scale).product(),
            shift: config.layers.iter().map(|l| l.shift).sum(),
        })
    }
}

impl Forward for Affine {
    fn forward_tensors(
        &self,
        x: AffineInputTensors,
        _ctx: &ForwardCtx,
    ) -> Result<AffineOutputTensors> {
        let y =
            x.x.broadcast_mul(&self.weight)?
                .affine(self.scale, self.shift)?;
        Ok(AffineOutputTensors { y })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoConfig {}

/// `y = a + b`, `b` optional.
#[neural_module(
    inputs(a: (B, D) Channel, b: (B, D) Channel?),
    outputs(y: (B, D) Channel),
)]
struct Add;

impl Forward for Add {
    fn forward_tensors(&self, x: AddInputTensors, _ctx: &ForwardCtx) -> Result<AddOutputTensors> {
        let y = match &x.b {
            Some(b) => (&x.a + b)?,
            None => x.a,
        };
        Ok(AddOutputTensors { y })
    }
}

/// Mean squared error.
#[neural_module(
    kind = loss,
    inputs(predictions: (B, D) Channel, target: (B, D) Labels),
    outputs(loss: Loss),
)]
struct Mse;

impl Forward for Mse {
    fn forward_tensors(&self, x: MseInputTensors, _ctx: &ForwardCtx) -> Result<MseOutputTensors> {
        let loss = (x.predictions - x.target)?.sqr()?.mean_all()?;
        Ok(MseOutputTensors { loss })
    }
}

nemo_core::register_module!("TestAffine" | "Affine", |config: AffineConfig, ctx| {
    Affine::new(config, ctx.vb())
});
nemo_core::register_module!("TestAdd", |_config: NoConfig, _ctx| Ok::<_, Error>(Add));
nemo_core::register_module!("TestMSELoss", |_config: NoConfig, _ctx| Ok::<_, Error>(Mse));

// ---------------------------------------------------------------------------------- helpers

const GOOD: &str = "\
name: Tiny
inputs:
  x: \"(B, D: 2) Channel\"
  t: \"(B, D: 2) Labels\"
modules:
  affine:
    type: TestAffine
    config:
      dim: 2
      layers:
        - {scale: 2.0}
        - {scale: 1.5, shift: 1.0}
  add: {type: TestAdd}
  loss: {type: TestMSELoss}
connections:
  - x -> affine.x
  - affine.y -> add.a
  - x -> add.b
  - add.y -> loss.predictions
  - t -> loss.target
outputs: [loss.loss, add.y]
";

use nemo_core::testing::TestResult;

/// A built chain's node order and output.
type ChainRun = (Vec<String>, Vec<Vec<f32>>);

/// Builds `text`; the error, if any, as a [`ConfigError`].
fn build_err(text: &str) -> TestResult<Box<ConfigError>> {
    let params = Parameters::new();
    let built = ModelConfig::from_yaml_str(text).and_then(|c| c.build(&params, &Device::Cpu));
    match built {
        Ok(_) => Err("the config was accepted".into()),
        Err(Error::ModelConfig(e)) => Ok(e),
        Err(other) => Err(format!("not a config error: {other}").into()),
    }
}

fn inputs() -> Result<HashMap<String, Tensor>> {
    let dev = Device::Cpu;
    Ok(HashMap::from([
        ("x".to_string(), Tensor::new(&[[1f32, 2.], [3., 4.]], &dev)?),
        ("t".to_string(), Tensor::new(&[[0f32, 0.], [0., 0.]], &dev)?),
    ]))
}

// ------------------------------------------------------------------------------------ tests

#[test]
fn a_good_config_builds_and_runs() -> TestResult {
    let config = ModelConfig::from_yaml_str(GOOD)?;
    assert_eq!(config.name.as_deref(), Some("Tiny"));
    let params = Parameters::new();
    let model = config.build(&params, &Device::Cpu)?;
    assert_eq!(model.node_names(), ["affine", "add", "loss"]);
    assert_eq!(
        params.num_weights("affine"),
        2,
        "weights live under the node name"
    );
    assert!(
        params
            .named_vars()
            .iter()
            .any(|(n, _)| n == "affine.weight")
    );
    let out = model.forward(&inputs()?)?;
    // y = x * 3 + 1 + x = 4x + 1
    let y = out.get("add.y").ok_or("no add.y")?.to_vec2::<f32>()?;
    assert_eq!(y, vec![vec![5., 9.], vec![13., 17.]]);
    let loss = out.get("loss.loss").ok_or("no loss")?.to_scalar::<f32>()?;
    assert_eq!(loss, (25. + 81. + 169. + 289.) / 4.);
    assert_eq!(out.len(), 2, "only the declared outputs");
    Ok(())
}

#[test]
fn every_test_module_is_registered() {
    for name in ["TestAffine", "TestAdd", "TestMSELoss"] {
        assert!(ModuleFactory::type_names().contains(&name), "{name}");
    }
    assert_eq!(
        ModuleFactory::lookup("Affine").map(|f| f.type_name),
        Some("TestAffine")
    );
}

#[test]
fn unknown_type_lists_the_known_and_suggests_the_closest() -> TestResult {
    let e = build_err(&GOOD.replace("type: TestAffine", "type: TestAfine"))?;
    assert_eq!(e.key, "modules.affine.type");
    assert_eq!(e.location.map(|l| l.line), Some(7));
    let msg = e.to_string();
    assert!(msg.contains("unknown module type `TestAfine`"), "{msg}");
    assert!(msg.contains("did you mean `TestAffine`?"), "{msg}");
    assert!(
        msg.contains("known types:") && msg.contains("TestMSELoss"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn unknown_key_at_a_nested_path() -> TestResult {
    let e = build_err(&GOOD.replace("{scale: 1.5, shift: 1.0}", "{scale: 1.5, shfit: 1.0}"))?;
    assert!(
        e.key.starts_with("modules.affine.config.layers[1]"),
        "{}",
        e.key
    );
    assert_eq!(e.location.map(|l| l.line), Some(12));
    let msg = e.to_string();
    assert!(msg.contains("unknown field `shfit`"), "{msg}");
    assert!(msg.contains("expected `scale` or `shift`"), "{msg}");
    assert_eq!(e.key, "modules.affine.config.layers[1].shfit");
    assert!(msg.starts_with("line 12, column"), "{msg}");
    Ok(())
}

#[test]
fn wrong_value_type_names_path_value_and_expectation() -> TestResult {
    let e = build_err(&GOOD.replace("{scale: 2.0}", "{scale: big}"))?;
    assert_eq!(e.key, "modules.affine.config.layers[0].scale");
    assert_eq!(e.location.map(|l| (l.line, l.column)), Some((11, 19)));
    let msg = e.to_string();
    assert!(
        msg.contains("`modules.affine.config.layers[0].scale`") && msg.contains("\"big\""),
        "{msg}"
    );
    assert!(msg.contains("expected f64"), "{msg}");
    let e = build_err(&GOOD.replace("dim: 2", "dim: -2"))?;
    assert_eq!(e.key, "modules.affine.config.dim");
    assert!(e.to_string().contains("-2"), "{e}");
    Ok(())
}

#[test]
fn yaml_syntax_error_gives_line_and_column() -> TestResult {
    let bad = GOOD.replace("- x -> affine.x", "- x -> affine.x\n  - [unclosed");
    let e = build_err(&bad)?;
    assert!(matches!(e.problem, ConfigProblem::Syntax { .. }), "{e}");
    let loc = e.location.ok_or("no location")?;
    assert!(loc.line >= 18, "line {}", loc.line);
    assert!(
        e.to_string()
            .starts_with(&format!("line {}, column {}", loc.line, loc.column))
    );
    Ok(())
}

#[test]
fn errors_from_files_name_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("model.yaml");
    std::fs::write(&path, GOOD.replace("dim: 2", "dim: two"))?;
    let params = Parameters::new();
    let err = ModelConfig::from_yaml_file(&path)
        .and_then(|c| c.build(&params, &Device::Cpu))
        .err()
        .ok_or("accepted")?;
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{}:9:", path.display())), "{msg}");
    assert!(msg.contains("modules.affine.config.dim"), "{msg}");
    Ok(())
}

#[test]
fn a_miswired_connection_names_both_ports_and_types() -> TestResult {
    let e = build_err(&GOOD.replace("- t -> loss.target", "- affine.y -> loss.target"))?;
    assert_eq!(e.key, "connections[4]");
    assert_eq!(e.location.map(|l| l.line), Some(20));
    let msg = e.to_string();
    for part in [
        "`loss` input `target`",
        "`affine.y` of type `(B, D:2) Channel`",
        "port type: (B, D) Labels",
        "INCOMPATIBLE",
    ] {
        assert!(msg.contains(part), "missing {part:?} in\n{msg}");
    }
    Ok(())
}

#[test]
fn connections_to_missing_things_are_named() -> TestResult {
    let e = build_err(&GOOD.replace("- affine.y -> add.a", "- afine.y -> add.a"))?;
    assert_eq!(e.key, "connections[1]");
    assert!(e.to_string().contains("did you mean `affine`?"), "{e}");
    let e = build_err(&GOOD.replace("- affine.y -> add.a", "- affine.why -> add.a"))?;
    assert!(
        e.to_string().contains("no such port; the ports are y"),
        "{e}"
    );
    let e = build_err(&GOOD.replace("- x -> add.b", "- x -> add.a"))?;
    assert!(e.to_string().contains("already fed from `affine.y`"), "{e}");
    let e = build_err(&GOOD.replace("[loss.loss, add.y]", "[loss.los]"))?;
    assert_eq!(e.key, "outputs[0]");
    assert!(e.to_string().contains("did you mean `loss.loss`?"), "{e}");
    let e = build_err(&GOOD.replace("- x -> affine.x", "- x => affine.x"))?;
    assert_eq!(e.key, "connections[0]");
    assert!(e.to_string().contains("`producer -> node.port`"), "{e}");
    Ok(())
}

#[test]
fn an_unconnected_mandatory_input_is_an_error_but_an_optional_one_is_not() -> TestResult {
    let e = build_err(&GOOD.replace("  - t -> loss.target\n", ""))?;
    assert_eq!(e.key, "modules.loss");
    let msg = e.to_string();
    assert!(
        msg.contains("mandatory input `loss.target` of type `(B, D) Labels` is not connected"),
        "{msg}"
    );
    assert!(msg.contains("fitting producers: t"), "{msg}");
    // `add.b` is optional.
    let config = ModelConfig::from_yaml_str(&GOOD.replace("  - x -> add.b\n", ""))?;
    let model = config.build(&Parameters::new(), &Device::Cpu)?;
    let y = model.forward(&inputs()?)?;
    let y = y.get("add.y").ok_or("no add.y")?.to_vec2::<f32>()?;
    assert_eq!(y, vec![vec![4., 7.], vec![10., 13.]]);
    Ok(())
}

#[test]
fn a_cycle_is_an_error_naming_it() -> TestResult {
    let text = "\
inputs: {x: \"(B, D) Channel\"}
modules:
  b: {type: TestAdd}
  a: {type: TestAdd}
  c: {type: TestAdd}
connections:
  - x -> c.a
  - c.y -> a.b
  - a.y -> b.a
  - b.y -> a.a
outputs: [a.y]
";
    let e = build_err(text)?;
    assert_eq!(e.key, "connections");
    assert!(
        e.to_string()
            .contains("the connections form a cycle: a -> b -> a"),
        "{e}"
    );
    Ok(())
}

#[test]
fn modules_written_out_of_order_are_sorted() -> TestResult {
    let reversed = "\
inputs:
  x: \"(B, D: 2) Channel\"
  t: \"(B, D: 2) Labels\"
modules:
  loss: {type: TestMSELoss}
  add: {type: TestAdd}
  affine: {type: Affine, config: {dim: 2, layers: [{scale: 3.0, shift: 1.0}]}}
connections:
  - add.y -> loss.predictions
  - t -> loss.target
  - affine.y -> add.a
  - x -> add.b
  - x -> affine.x
outputs: [loss.loss]
";
    let model = ModelConfig::from_yaml_str(reversed)?.build(&Parameters::new(), &Device::Cpu)?;
    assert_eq!(model.node_names(), ["affine", "add", "loss"]);
    let loss = model.forward(&inputs()?)?;
    let loss = loss.get("loss.loss").ok_or("no loss")?.to_scalar::<f32>()?;
    assert_eq!(loss, (25. + 81. + 169. + 289.) / 4.);
    Ok(())
}

#[test]
fn build_options_set_dtype() -> TestResult {
    let params = Parameters::new();
    let options = BuildOptions { dtype: DType::F64 };
    ModelConfig::from_yaml_str(GOOD)?.build_with(&params, &Device::Cpu, &options)?;
    let dtypes: Vec<DType> = params.named_vars().iter().map(|(_, v)| v.dtype()).collect();
    assert_eq!(dtypes, [DType::F64]);
    Ok(())
}

/// A chain of `n` affine modules behind an adder, as a config with modules in the given order.
fn chain_config(order: &[usize]) -> TestResult<ModelConfig> {
    let mut text = String::from("inputs: {x: \"(B, D: 2) Channel\"}\nmodules:\n");
    for &i in order {
        text.push_str(&format!(
            "  m{i}: {{type: TestAffine, config: {{dim: 2, layers: [{{scale: {}, shift: 0.5}}]}}}}\n",
            i + 1
        ));
    }
    text.push_str("  sum: {type: TestAdd}\nconnections:\n  - x -> m0.x\n");
    for i in 1..order.len() {
        text.push_str(&format!("  - m{}.y -> m{i}.x\n", i - 1));
    }
    text.push_str(&format!(
        "  - m{}.y -> sum.a\n  - m0.y -> sum.b\noutputs: [sum.y]\n",
        order.len() - 1
    ));
    Ok(ModelConfig::from_yaml_str(&text)?)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_module_order_builds_the_same_graph(
        order in Just((0..6).collect::<Vec<usize>>()).prop_shuffle()
    ) {
        let run = |order: &[usize]| -> TestResult<ChainRun> {
            let model = chain_config(order)?.build(&Parameters::new(), &Device::Cpu)?;
            let names = model.node_names().iter().map(|s| s.to_string()).collect();
            let out = model.forward(&inputs()?)?;
            let y = out.get("sum.y").ok_or("no sum.y")?.to_vec2::<f32>()?;
            Ok((names, y))
        };
        let reference = run(&(0..6).collect::<Vec<_>>()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let shuffled = run(&order).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&shuffled, &reference);
        prop_assert_eq!(&reference.0, &["m0", "m1", "m2", "m3", "m4", "m5", "sum"]);
    }
}
