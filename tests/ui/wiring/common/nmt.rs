// The NLP collection's translation modules, built as examples/nmt.rs builds them: a data layer on
// the committed Genesis fixture with a BPE tokenizer trained on it, the Transformer encoder and
// decoder, the tied log-softmax and the label-smoothed loss. The wiring cases connect them wrongly.
#![allow(dead_code)]

use std::sync::Arc;

use nemo::dag::Graph;
use nemo::nlp::data::{TranslationDataLayer, TranslationDataLayerConfig, TranslationDataLayerOutputs};
use nemo::nlp::losses::{PaddedSmoothedCrossEntropyLossNm, PaddedSmoothedCrossEntropyLossNmConfig};
use nemo::nlp::modules::*;
use nemo::nlp::tokenizer::TranslationTokenizersConfig;
use nemo::prelude::*;

pub struct Nmt {
    pub graph: Graph,
    pub data: Arc<TranslationDataLayer>,
    pub encoder: Arc<TransformerEncoderNm>,
    pub decoder: Arc<TransformerDecoderNm>,
    pub log_softmax: Arc<TransformerLogSoftmaxNm>,
    pub loss: Arc<PaddedSmoothedCrossEntropyLossNm>,
}

pub fn nmt() -> nemo::Result<Nmt> {
    let graph = Graph::new();
    let params = graph.params();
    let vb = params.var_builder(DType::F32, &Device::Cpu);
    let root = std::env::var("NEMO_REPO_ROOT").unwrap_or_else(|_| ".".into());
    let en = format!("{root}/nemo-nlp/tests/fixtures/text/genesis.en");
    let es = format!("{root}/nemo-nlp/tests/fixtures/text/genesis.es");
    let tokenizers = TranslationTokenizersConfig { vocab_size: 300, ..Default::default() }
        .train(&[&en], &[&es])?;
    let vocab = tokenizers.target().vocab_size();
    let data = TranslationDataLayer::new(TranslationDataLayerConfig::new(&en, &es), &tokenizers)?;
    let encoder = TransformerEncoderNmConfig::new(vocab, 32, 64, 1, 2).init(vb.pp("encoder"))?;
    let decoder = TransformerDecoderNmConfig::new(vocab, 32, 64, 1, 2).init(vb.pp("decoder"))?;
    let log_softmax = TransformerLogSoftmaxNmConfig::new(vocab, 32).init(vb.pp("log_softmax"))?;
    let loss = PaddedSmoothedCrossEntropyLossNmConfig::from(0.1).init()?;
    Ok(Nmt {
        graph,
        data: Arc::new(data),
        encoder: Arc::new(encoder),
        decoder: Arc::new(decoder),
        log_softmax: Arc::new(log_softmax),
        loss: Arc::new(loss),
    })
}

impl Nmt {
    /// The data layer's first batch, typed (the eager path).
    pub fn batch(&self) -> nemo::Result<TranslationDataLayerOutputs> {
        let batch = self.data.epoch(0, &Device::Cpu).next().transpose()?;
        let batch = batch.ok_or_else(|| nemo::Error::Config { key: "data".into(), msg: "empty".into() })?;
        Ok(self.data.wrap_outputs(batch)?)
    }
}
