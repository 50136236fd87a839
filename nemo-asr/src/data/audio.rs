//! WAV decoding to mono `f32` samples in [-1, 1), and band-limited resampling.
//!
//! [`AudioSegment::from_file`] reads a RIFF/WAVE file: hound parses and checks the header (plain
//! or `WAVE_FORMAT_EXTENSIBLE`), and the data chunk is converted here in one pass (hound's
//! per-sample iterator is generic, so it is compiled at this crate's optimization level and was
//! 10x slower in debug builds). 8-bit (unsigned), 16/24/32-bit integer PCM are scaled by
//! `1 / 2^(8 * bytes - 1)` as libsndfile does for NeMo; a container wider than its valid bits
//! (24 bits in 4 bytes) is read left-justified, as the WAVE_FORMAT_EXTENSIBLE spec and libsndfile
//! have it (hound's own writer right-justifies such files: those decode wrong). 32/64-bit float
//! is taken as is. Several channels are averaged to one. Like NeMo's
//! `AudioSegment.from_file`, it seeks to `int(offset * rate)` frames and, when `duration > 0`,
//! reads at most `int(duration * rate)` frames, both at the file's rate. The result is then
//! resampled to the target rate with [`resample`].
//!
//! [`resample`] uses rubato's synchronous FFT resampler (`FftFixedInOut`: a windowed-sinc
//! anti-aliasing filter applied in the frequency domain, exact for any rational ratio). Its filter
//! delay is removed and the output has `ceil(n * to / from)` samples, librosa's length.
//!
//! Every error names the file: [`Error::Io`] when it cannot be opened or read,
//! [`Error::Audio`] when it is not a WAV hound can decode or the request does not fit it.
//!
//! ```no_run
//! # fn main() -> nemo_asr::Result<()> {
//! use nemo_asr::data::AudioSegment;
//! let seg = AudioSegment::from_file("utt.wav", Some(16_000), 0.0, 0.0)?;
//! println!("{} samples, {:.2} s", seg.num_samples(), seg.duration());
//! # Ok(())
//! # }
//! ```

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use rubato::{FftFixedInOut, Resampler};

use crate::{Error, Result};

/// Smallest input block of the FFT resampler, in frames (rounded up to an even number of the
/// ratio's input periods).
const RESAMPLE_CHUNK: usize = 1024;

/// Mono audio at a known sample rate.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSegment {
    samples: Vec<f32>,
    sample_rate: u32,
}

/// How a WAV file stores its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavSampleFormat {
    /// Signed integer PCM (8-bit files are unsigned on disk; hound recenters them).
    Int,
    /// IEEE float.
    Float,
}

/// The header of a WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavInfo {
    /// Frames per second.
    pub sample_rate: u32,
    /// Interleaved channels per frame.
    pub channels: u16,
    /// Bits per sample.
    pub bits_per_sample: u16,
    /// Integer or float samples.
    pub sample_format: WavSampleFormat,
    /// Frames in the file.
    pub num_frames: u32,
}

impl WavInfo {
    /// Length in seconds.
    pub fn duration(&self) -> f64 {
        f64::from(self.num_frames) / f64::from(self.sample_rate)
    }
}

fn audio_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Audio {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

fn hound_err(path: &Path, e: hound::Error) -> Error {
    match e {
        hound::Error::IoError(source) if source.kind() == std::io::ErrorKind::UnexpectedEof => {
            audio_err(
                path,
                "cannot decode WAV: the file ends early (truncated or not a WAV file)",
            )
        }
        hound::Error::IoError(source) => Error::Io {
            path: path.to_path_buf(),
            source,
        },
        other => audio_err(path, format!("cannot decode WAV: {other}")),
    }
}

/// An opened WAV file, positioned at the first sample of its data chunk.
struct OpenWav {
    info: WavInfo,
    /// Bytes that store one sample (the container; `bits_per_sample` may use fewer).
    width: usize,
    reader: BufReader<File>,
}

/// Parses the RIFF/WAVE header with hound (PCM, IEEE float and `WAVE_FORMAT_EXTENSIBLE`; it
/// leaves the reader at the first byte of the data chunk) and reads the data chunk's length from
/// the 8-byte chunk header just before, which gives the container width of a sample (hound keeps
/// it private). The samples themselves are converted by [`samples_to_f32`].
fn open(path: &Path) -> Result<OpenWav> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let wav = hound::WavReader::new(BufReader::new(file)).map_err(|e| hound_err(path, e))?;
    let spec = wav.spec();
    let num_samples = wav.len() as usize;
    let mut reader = wav.into_inner();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut chunk = [0u8; 8];
    reader.seek_relative(-8).map_err(io)?;
    reader.read_exact(&mut chunk).map_err(io)?;
    let [d, a, t, a2, l0, l1, l2, l3] = chunk;
    if [d, a, t, a2] != *b"data" {
        return Err(audio_err(path, "cannot locate the data chunk"));
    }
    let data_len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    let bits_width = usize::from(spec.bits_per_sample).div_ceil(8);
    let width = data_len.checked_div(num_samples).unwrap_or(bits_width);
    let block = width * usize::from(spec.channels);
    if spec.channels == 0 || spec.sample_rate == 0 || block == 0 {
        return Err(audio_err(
            path,
            format!(
                "invalid header: {} channels of {width} bytes at {} Hz",
                spec.channels, spec.sample_rate
            ),
        ));
    }
    if !data_len.is_multiple_of(block) {
        return Err(audio_err(
            path,
            format!("data chunk of {data_len} bytes is not a whole number of {block}-byte frames"),
        ));
    }
    let info = WavInfo {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        bits_per_sample: spec.bits_per_sample,
        sample_format: match spec.sample_format {
            hound::SampleFormat::Int => WavSampleFormat::Int,
            hound::SampleFormat::Float => WavSampleFormat::Float,
        },
        // data_len < 2^32 and block >= 1
        num_frames: u32::try_from(data_len / block).unwrap_or(u32::MAX),
    };
    Ok(OpenWav {
        info,
        width,
        reader,
    })
}

/// Reads the header of the WAV file at `path`.
pub fn wav_info(path: impl AsRef<Path>) -> Result<WavInfo> {
    open(path.as_ref()).map(|w| w.info)
}

/// Little-endian samples of `width` bytes to `f32` in [-1, 1): integers are scaled by their
/// container, `1 / 2^(8 * width - 1)` (samples with fewer valid bits are stored left-justified,
/// so this is right for them too), 8-bit samples are unsigned around 128.
fn samples_to_f32(bytes: &[u8], format: WavSampleFormat, width: usize) -> Option<Vec<f32>> {
    let out = match (format, width) {
        (WavSampleFormat::Int, 1) => bytes
            .iter()
            .map(|&b| (f32::from(b) - 128.0) * (1.0 / 128.0))
            .collect(),
        (WavSampleFormat::Int, 2) => bytes
            .as_chunks::<2>()
            .0
            .iter()
            .map(|&b| f32::from(i16::from_le_bytes(b)) * (1.0 / 32_768.0))
            .collect(),
        (WavSampleFormat::Int, 3) => bytes
            .as_chunks::<3>()
            .0
            .iter()
            .map(|&[a, b, c]| (i32::from_le_bytes([0, a, b, c]) >> 8) as f32 * (1.0 / 8_388_608.0))
            .collect(),
        (WavSampleFormat::Int, 4) => bytes
            .as_chunks::<4>()
            .0
            .iter()
            .map(|&b| i32::from_le_bytes(b) as f32 * (1.0 / 2_147_483_648.0))
            .collect(),
        (WavSampleFormat::Float, 4) => bytes
            .as_chunks::<4>()
            .0
            .iter()
            .map(|&b| f32::from_le_bytes(b))
            .collect(),
        (WavSampleFormat::Float, 8) => bytes
            .as_chunks::<8>()
            .0
            .iter()
            .map(|&b| f64::from_le_bytes(b) as f32)
            .collect(),
        _ => return None,
    };
    Some(out)
}

/// Averages interleaved frames of `channels` samples to one channel.
fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    let inv = 1.0 / channels as f32;
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() * inv)
        .collect()
}

/// Seconds to whole frames at `rate`, truncating as NeMo's `int(seconds * rate)` does.
fn frames_of(seconds: f64, rate: u32) -> u64 {
    // Finite, non-negative inputs are checked by the caller; `as` saturates anything else.
    (seconds * f64::from(rate)) as u64
}

impl AudioSegment {
    /// A segment from mono samples at `sample_rate` Hz.
    pub fn new(samples: Vec<f32>, sample_rate: u32) -> Self {
        Self {
            samples,
            sample_rate,
        }
    }

    /// Decodes `path` to mono, from `offset` seconds for `duration` seconds (`0` = to the end),
    /// resampled to `target_sr` when given and different from the file's rate.
    pub fn from_file(
        path: impl AsRef<Path>,
        target_sr: Option<u32>,
        offset: f64,
        duration: f64,
    ) -> Result<Self> {
        let path = path.as_ref();
        if !(offset.is_finite() && offset >= 0.0) {
            return Err(audio_err(
                path,
                format!("offset must be >= 0 s, got {offset}"),
            ));
        }
        if !(duration.is_finite() && duration >= 0.0) {
            return Err(audio_err(
                path,
                format!("duration must be >= 0 s, got {duration}"),
            ));
        }
        let OpenWav {
            info,
            width,
            mut reader,
        } = open(path)?;
        let rate = info.sample_rate;
        let channels = usize::from(info.channels);
        let block = (width * channels) as u64;
        let start = frames_of(offset, rate);
        let total = u64::from(info.num_frames);
        if start > total || (start == total && total > 0 && offset > 0.0) {
            return Err(audio_err(
                path,
                format!(
                    "offset {offset} s is past the end of the file ({:.3} s)",
                    info.duration()
                ),
            ));
        }
        if start > 0 {
            // start <= total < 2^32 and block <= 2^16 * 2^16: no overflow in i64.
            let skip = i64::try_from(start * block).unwrap_or(i64::MAX);
            reader.seek_relative(skip).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let available = total - start;
        let frames = if duration > 0.0 {
            available.min(frames_of(duration, rate))
        } else {
            available
        };
        let want = frames * block;
        let mut bytes = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
        reader
            .take(want)
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if (bytes.len() as u64) < want {
            return Err(audio_err(
                path,
                format!(
                    "file is truncated: the header promises {total} frames, only {} of the {frames} from frame {start} are there",
                    bytes.len() as u64 / block
                ),
            ));
        }
        let interleaved = samples_to_f32(&bytes, info.sample_format, width).ok_or_else(|| {
            audio_err(
                path,
                format!(
                    "unsupported sample format: {:?} in {width} bytes",
                    info.sample_format
                ),
            )
        })?;
        let mono = downmix(&interleaved, channels);
        if mono.is_empty() {
            return Err(audio_err(path, "no audio samples"));
        }
        let seg = Self::new(mono, rate);
        match target_sr {
            Some(to) if to != rate => seg.resample(to).map_err(|e| match e {
                Error::Config { msg, .. } => audio_err(path, msg),
                other => other,
            }),
            _ => Ok(seg),
        }
    }

    /// This segment at `target_sr` Hz (see [`resample`]).
    pub fn resample(self, target_sr: u32) -> Result<Self> {
        if target_sr == self.sample_rate {
            return Ok(self);
        }
        let samples = resample(&self.samples, self.sample_rate, target_sr)?;
        Ok(Self::new(samples, target_sr))
    }

    /// The samples.
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    /// The samples, by value.
    pub fn into_samples(self) -> Vec<f32> {
        self.samples
    }

    /// Samples per second.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Number of samples.
    pub fn num_samples(&self) -> usize {
        self.samples.len()
    }

    /// Length in seconds.
    pub fn duration(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }
}

/// Resamples mono `samples` from `from` Hz to `to` Hz with a band-limited FFT resampler.
///
/// The output has `ceil(len * to / from)` samples, aligned with the input (the filter delay is
/// removed). Rates of 0 are a [`Error::Config`] error.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    let bad = |msg: String| Error::Config {
        key: "sample_rate".into(),
        msg,
    };
    if from == 0 || to == 0 {
        return Err(bad(format!("cannot resample from {from} Hz to {to} Hz")));
    }
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let (from_u, to_u) = (from as usize, to as usize);
    let expected = (samples.len() as u128 * to_u as u128).div_ceil(from_u as u128);
    let expected = usize::try_from(expected)
        .map_err(|_| bad(format!("{} samples at {to} Hz overflow", samples.len())))?;
    // rubato centres its sinc filter on input sample floor(n / 2) of an n-point block but reports
    // a delay of n / 2: with an odd n the output would lead by a fraction of a sample. An even
    // number of ratio periods per block makes n even and the delay exact.
    let gcd = gcd(from_u, to_u);
    let period_in = from_u / gcd;
    let mut periods = RESAMPLE_CHUNK.div_ceil(period_in);
    if !period_in.is_multiple_of(2) && !periods.is_multiple_of(2) {
        periods += 1;
    }
    let chunk = periods * period_in;
    let mut r = FftFixedInOut::<f32>::new(from_u, to_u, chunk, 1)
        .map_err(|e| bad(format!("cannot resample {from} Hz -> {to} Hz: {e}")))?;
    let delay = r.output_delay();
    let chunk_in = r.input_frames_next();
    let chunk_out = r.output_frames_next();
    let want = expected + delay;
    let mut out = Vec::with_capacity(want + chunk_out);
    let mut input = vec![vec![0f32; chunk_in]];
    let mut output = vec![vec![0f32; chunk_out]];
    let mut pos = 0usize;
    while out.len() < want {
        let end = samples.len().min(pos + chunk_in);
        let frame = samples.get(pos..end).unwrap_or(&[]);
        // input has exactly one channel of chunk_in frames.
        for (dst, src) in input
            .iter_mut()
            .flat_map(|c| c.iter_mut())
            .zip(frame.iter().copied().chain(std::iter::repeat(0.0)))
        {
            *dst = src;
        }
        pos = end;
        let (_, written) = r
            .process_into_buffer(&input, &mut output, None)
            .map_err(|e| bad(format!("resampling {from} Hz -> {to} Hz failed: {e}")))?;
        out.extend(output.iter().flat_map(|c| c.iter().take(written)));
    }
    out.drain(..delay.min(out.len()));
    out.truncate(expected);
    Ok(out)
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downmix_averages() {
        assert_eq!(downmix(&[1.0, 0.0, 0.5, 0.5], 2), vec![0.5, 0.5]);
        assert_eq!(downmix(&[0.25, 0.5], 1), vec![0.25, 0.5]);
    }

    #[test]
    fn resample_lengths() -> Result<()> {
        for (n, from, to) in [
            (22050, 22050, 16000),
            (1, 44100, 16000),
            (1000, 8000, 16000),
            (7, 16000, 48000),
        ] {
            let x = vec![0.1f32; n];
            let y = resample(&x, from, to)?;
            assert_eq!(
                y.len(),
                (n * to as usize).div_ceil(from as usize),
                "{n} {from} {to}"
            );
        }
        assert!(resample(&[0.0], 0, 16000).is_err());
        Ok(())
    }

    #[test]
    fn sample_conversion() {
        let int = WavSampleFormat::Int;
        assert_eq!(
            samples_to_f32(&[0, 128, 192], int, 1),
            Some(vec![-1.0, 0.0, 0.5])
        );
        assert_eq!(
            samples_to_f32(&[0x00, 0x80, 0x00, 0x40], int, 2),
            Some(vec![-1.0, 0.5])
        );
        assert_eq!(
            samples_to_f32(&[0x00, 0x00, 0x80, 0xff, 0xff, 0xff], int, 3),
            Some(vec![-1.0, -1.0 / 8_388_608.0])
        );
        // 24 valid bits left-justified in a 4-byte container read as 32-bit.
        assert_eq!(samples_to_f32(&[0, 0, 0, 0xc0], int, 4), Some(vec![-0.5]));
        let f = 0.25f32.to_le_bytes();
        assert_eq!(
            samples_to_f32(&f, WavSampleFormat::Float, 4),
            Some(vec![0.25])
        );
        assert_eq!(samples_to_f32(&[0; 6], WavSampleFormat::Float, 3), None);
    }

    #[test]
    fn frames_truncate_like_nemo() {
        assert_eq!(frames_of(0.99999, 16000), 15999);
        assert_eq!(frames_of(1.5, 22050), 33075);
    }
}
