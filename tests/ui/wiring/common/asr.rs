// The ASR collection's real modules, built as the examples build them: a data layer on the
// committed WAV fixtures, the mel preprocessor, a small Jasper encoder, the CTC decoder and loss,
// and the attention decoder's connector and RNN. The wiring cases connect them wrongly.
#![allow(dead_code)]

use std::sync::Arc;

use nemo::asr::data::{AudioToTextDataLayer, AudioToTextDataLayerConfig, AudioToTextDataLayerOutputs};
use nemo::asr::losses::CtcLossConfig;
use nemo::asr::modules::*;
use nemo::asr::preprocessing::AudioToMelSpectrogramPreprocessorConfig;
use nemo::dag::Graph;
use nemo::prelude::*;

pub struct Asr {
    pub graph: Graph,
    pub data: Arc<AudioToTextDataLayer>,
    pub preprocessor: Arc<AudioToMelSpectrogramPreprocessor>,
    pub encoder: Arc<ConvAsrEncoder>,
    pub decoder: Arc<ConvAsrDecoder>,
    pub ctc: Arc<CtcLoss>,
    pub connector: Arc<JasperRnnConnector>,
    pub decoder_rnn: Arc<DecoderRnn>,
}

pub fn asr() -> nemo::Result<Asr> {
    let graph = Graph::new();
    let params = graph.params();
    let vb = params.var_builder(DType::F32, &Device::Cpu);
    let root = std::env::var("NEMO_REPO_ROOT").unwrap_or_else(|_| ".".into());
    let manifest = format!("{root}/nemo-asr/tests/fixtures/manifests/small.json");
    let data = AudioToTextDataLayer::new(AudioToTextDataLayerConfig::new(manifest, 4))?;
    let preprocessor = AudioToMelSpectrogramPreprocessorConfig::default().init()?;
    let encoder_config: ConvAsrEncoderConfig = serde_norway::from_str(
        "feat_in: 64\njasper:\n  - {filters: 128, kernel: [11], stride: [2], separable: true}",
    )
    .map_err(|e| nemo::Error::Config { key: "encoder".into(), msg: e.to_string() })?;
    let encoder = encoder_config.init(vb.pp("encoder"))?;
    let decoder = (ConvAsrDecoderConfig { feat_in: 128, num_classes: 28 }).init(vb.pp("decoder"))?;
    let ctc = CtcLossConfig::new(28).init()?;
    let connector = (JasperRnnConnectorConfig { in_channels: 128, out_channels: 128 }).init(vb.pp("connector"))?;
    let decoder_rnn = (DecoderRnnConfig::new(30, 28, 128)).init(vb.pp("decoder_rnn"))?;
    Ok(Asr {
        graph,
        data: Arc::new(data),
        preprocessor: Arc::new(preprocessor),
        encoder: Arc::new(encoder),
        decoder: Arc::new(decoder),
        ctc: Arc::new(ctc),
        connector: Arc::new(connector),
        decoder_rnn: Arc::new(decoder_rnn),
    })
}

impl Asr {
    /// The data layer's first batch, typed (the eager path).
    pub fn batch(&self) -> nemo::Result<AudioToTextDataLayerOutputs> {
        let batch = self.data.epoch(0, &Device::Cpu).next().transpose()?;
        let batch = batch.ok_or_else(|| nemo::Error::Config { key: "data".into(), msg: "empty".into() })?;
        self.data.wrap_outputs(batch)
    }
}
