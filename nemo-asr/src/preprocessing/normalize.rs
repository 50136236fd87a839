//! Feature normalization of the mel preprocessor (NeMo's `normalize_batch`): the mean and inverse
//! standard deviation of each mel band (`per_feature`) or of all features (`all_features`) over a
//! row's valid frames, with the unbiased variance and `1e-5` added to the deviation, as NeMo.

/// NeMo's `CONSTANT`: added to the standard deviation in normalization.
const NORMALIZE_EPS: f64 = 1e-5;

/// Mean and `1 / (unbiased std + 1e-5)` of `n` values (std 0 for fewer than two values).
pub(crate) fn mean_inv_std(values: impl Iterator<Item = f32> + Clone, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let mean = values.clone().map(f64::from).sum::<f64>() / n as f64;
    let std = if n > 1 {
        let ss: f64 = values.map(|v| (f64::from(v) - mean).powi(2)).sum();
        (ss / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    (mean, 1.0 / (std + NORMALIZE_EPS))
}

/// Per-band mean and inverse std over the valid frames of a frame-major `(frames, D)` buffer.
pub(crate) fn per_feature_stats(feats: &[f32], n_mels: usize, frames: usize) -> Vec<(f64, f64)> {
    let mut mean = vec![0f64; n_mels];
    for frame in feats.chunks_exact(n_mels) {
        for (m, &v) in mean.iter_mut().zip(frame) {
            *m += f64::from(v);
        }
    }
    let n = frames.max(1) as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    let mut ss = vec![0f64; n_mels];
    for frame in feats.chunks_exact(n_mels) {
        for ((s, &v), &m) in ss.iter_mut().zip(frame).zip(&mean) {
            *s += (f64::from(v) - m).powi(2);
        }
    }
    mean.into_iter()
        .zip(ss)
        .map(|(m, s)| {
            let std = if frames > 1 {
                (s / (frames - 1) as f64).sqrt()
            } else {
                0.0
            };
            (m, 1.0 / (std + NORMALIZE_EPS))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_inv_std_is_unbiased() {
        let (m, inv) = mean_inv_std([1.0f32, 2.0, 3.0, 4.0].into_iter(), 4);
        assert!((m - 2.5).abs() < 1e-12);
        let std = (5.0f64 / 3.0).sqrt();
        assert!((inv - 1.0 / (std + 1e-5)).abs() < 1e-9);
        assert_eq!(mean_inv_std([7.0f32].into_iter(), 1), (7.0, 1.0 / 1e-5));
    }
}
