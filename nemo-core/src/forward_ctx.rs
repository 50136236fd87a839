//! [`ForwardCtx`]: what a call needs besides its inputs — whether it trains, and where its random
//! draws come from — handed to every module through the call, as candle's `ModuleT::forward_t`
//! hands it the train flag.
//!
//! Training mode switches on dropout, batch statistics, dither and augmentation. The random
//! stream of a module is a pure function of the context's seed, the module's name (the path of
//! [`for_module`](ForwardCtx::for_module) calls that led to it) and how many generators it has
//! drawn before, so a seeded step replays bit for bit whatever else ran, and a resumed run
//! replays the steps of an uninterrupted one. A frozen module (NeMo's `freeze()`) runs in eval
//! mode.
//!
//! ```
//! use nemo_core::ForwardCtx;
//! let ctx = ForwardCtx::train(7).with_frozen(["encoder"]);
//! assert!(ctx.is_training());
//! assert!(!ctx.for_module("encoder").is_training());
//! let (a, b) = (ctx.for_module("decoder").rng(), ctx.for_module("decoder").rng());
//! # use rand::Rng;
//! # let (mut a, mut b) = (a, b);
//! assert_eq!(a.random::<u64>(), b.random::<u64>());  // same module, same stream
//! ```

use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Training or evaluation, a seed, and the frozen modules; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ForwardCtx {
    training: bool,
    seed: u64,
    draws: Cell<u64>,
    frozen: Arc<BTreeSet<String>>,
    /// The dotted path of `for_module` names that led here (empty at the top).
    path: String,
}

impl Default for ForwardCtx {
    /// [`ForwardCtx::eval`].
    fn default() -> Self {
        Self::eval()
    }
}

/// SplitMix64's finaliser: spreads a seed and a name hash over all bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash_name(name: &str) -> u64 {
    name.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

impl ForwardCtx {
    /// Evaluation: no dropout, running statistics, no dither or augmentation.
    pub fn eval() -> Self {
        ForwardCtx {
            training: false,
            seed: 0,
            draws: Cell::new(0),
            frozen: Arc::default(),
            path: String::new(),
        }
    }

    /// Training, with random draws seeded by `seed` (one seed per step gives each step its own
    /// draws).
    pub fn train(seed: u64) -> Self {
        ForwardCtx {
            training: true,
            seed,
            ..Self::eval()
        }
    }

    /// The same context with the modules `names` frozen: they run in eval mode.
    pub fn with_frozen<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        let mut frozen = (*self.frozen).clone();
        frozen.extend(names.into_iter().map(Into::into));
        self.frozen = Arc::new(frozen);
        self
    }

    /// Whether this call trains.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// The seed of this context's draws.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The context of the sub-module (or graph node) `name`: its own random stream, derived from
    /// this one's seed and the name, and eval mode if `name` is frozen. A frozen name matches the
    /// module and everything under it (`encoder` freezes `encoder.blocks.0`).
    pub fn for_module(&self, name: &str) -> ForwardCtx {
        let path = if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        };
        let frozen = self.frozen.iter().any(|f| {
            path == *f
                || path
                    .strip_prefix(f.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        });
        ForwardCtx {
            training: self.training && !frozen,
            seed: mix(self.seed ^ hash_name(name)),
            draws: Cell::new(0),
            frozen: self.frozen.clone(),
            path,
        }
    }

    /// The dotted path of module names from the top context to this one.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A generator for one random draw site: the n-th call on this context gets the n-th stream of
    /// its seed. A module takes one per forward pass and draws everything from it.
    pub fn rng(&self) -> ChaCha8Rng {
        let n = self.draws.get();
        self.draws.set(n + 1);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(n);
        rng
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    #[test]
    fn streams_depend_on_seed_name_and_draw_order_only() {
        let first = |ctx: &ForwardCtx| ctx.for_module("aug").rng().random::<u64>();
        let a = ForwardCtx::train(1);
        let b = ForwardCtx::train(1);
        // Other modules drawing first change nothing.
        let _ = b.for_module("dither").rng();
        assert_eq!(first(&a), first(&b));
        assert_ne!(first(&a), first(&ForwardCtx::train(2)));
        let m = a.for_module("aug");
        let (x, y) = (m.rng().random::<u64>(), m.rng().random::<u64>());
        assert_ne!(x, y);
    }

    #[test]
    fn frozen_modules_and_their_children_run_in_eval_mode() {
        let ctx = ForwardCtx::train(0).with_frozen(["encoder", "decoder.rnn"]);
        assert!(!ctx.for_module("encoder").is_training());
        assert!(
            !ctx.for_module("encoder")
                .for_module("blocks.0")
                .is_training()
        );
        assert!(!ctx.for_module("decoder").for_module("rnn").is_training());
        assert!(
            ctx.for_module("decoder")
                .for_module("attention")
                .is_training()
        );
        assert!(ctx.for_module("encoder_2").is_training());
        assert!(ctx.for_module("decoder").is_training());
        assert!(!ForwardCtx::eval().for_module("decoder").is_training());
    }
}
