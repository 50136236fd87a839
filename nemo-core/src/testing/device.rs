//! [`test_device!`](crate::test_device): one test body for every device.

/// Defines a test module `name` whose body runs once per device: a `cpu` test always, and a
/// `cuda` test (GPU 0) in a build of the calling crate with its `cuda` feature. The body gets
/// `&Device` and returns a [`TestResult`](crate::testing::TestResult):
///
/// ```
/// use nemo_core::testing::TestResult;
///
/// nemo_core::test_device!(fn adds_on_the_device(dev) {
///     let x = candle_core::Tensor::new(&[1f32, 2.0], dev)?;
///     assert_eq!((&x + &x)?.to_vec1::<f32>()?, vec![2.0, 4.0]);
///     Ok(())
/// });
/// # fn main() {}
/// ```
///
/// The tests are `adds_on_the_device::cpu` and `adds_on_the_device::cuda`, so a filter picks a
/// device (`cargo test cuda`).
#[macro_export]
macro_rules! test_device {
    ($(#[$meta:meta])* fn $name:ident($dev:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($dev: &::candle_core::Device) -> $crate::testing::TestResult $body

            #[test]
            fn cpu() -> $crate::testing::TestResult {
                body(&::candle_core::Device::Cpu)
            }

            #[cfg(feature = "cuda")]
            #[test]
            fn cuda() -> $crate::testing::TestResult {
                body(&::candle_core::Device::new_cuda(0)?)
            }
        }
    };
}
