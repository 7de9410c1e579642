//! Injected AWS faults for the load suite (`switchyard load --aws-faults RATE`): an SDK
//! interceptor that, at `RATE`, makes a call fail in one of the two ways real AWS calls do —
//! before it reached the service (a connection refused: nothing happened, as with a
//! throttled call), or after the service executed it (the response replaced by a 500: the
//! call happened and its answer was lost, the case that makes systems do work twice). The
//! SDK's standard retry then repeats the call, so every conditional write, claim and send
//! must be safe to repeat.
//!
//! Active only when `SWITCHYARD_AWS_FAULTS` is set (a rate in `(0, 1]`); the clients log a
//! warning when it is. Never set it in a deployment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;

/// The variable that turns fault injection on.
pub const ENV: &str = "SWITCHYARD_AWS_FAULTS";

/// Calls of this process failed before they reached the service.
static REFUSED: AtomicU64 = AtomicU64::new(0);
/// Calls of this process executed whose response was replaced by a 500.
static LOST: AtomicU64 = AtomicU64::new(0);

/// Faults injected in this process so far: (refused before the service, responses lost).
pub fn injected() -> (u64, u64) {
    (REFUSED.load(Ordering::Relaxed), LOST.load(Ordering::Relaxed))
}

/// Injects faults into a share of calls. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct FaultInjector {
    rate: f64,
    state: Arc<AtomicU64>,
}

impl FaultInjector {
    /// An injector failing `rate` of the calls (half before, half after the service).
    pub fn new(rate: f64, seed: u64) -> Self {
        Self { rate: rate.clamp(0.0, 1.0), state: Arc::new(AtomicU64::new(seed | 1)) }
    }

    /// The injector `SWITCHYARD_AWS_FAULTS` asks for, if any.
    pub fn from_env() -> Option<Self> {
        let rate: f64 = std::env::var(ENV).ok()?.parse().ok()?;
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        (rate > 0.0).then(|| Self::new(rate, seed ^ u64::from(std::process::id())))
    }

    /// A uniform draw in `[0, 1)` (splitmix64; no cryptographic needs here).
    fn draw(&self) -> f64 {
        let mut z = self.state.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Intercept for FaultInjector {
    fn name(&self) -> &'static str {
        "switchyard-fault-injector"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.draw() < self.rate / 2.0 {
            // Port 9 (discard) is closed on loopback: the connection is refused at once and
            // the service never sees the call.
            context.request_mut().set_uri("http://127.0.0.1:9/")?;
            REFUSED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let executed = context.response().status().is_success();
        if executed && self.draw() < self.rate / 2.0 {
            *context.response_mut() = Response::new(StatusCode::try_from(500)?, SdkBody::from(""));
            LOST.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_uniform_enough_for_a_rate() {
        let f = FaultInjector::new(0.1, 42);
        let n = 100_000;
        let hits = (0..n).filter(|_| f.draw() < 0.1).count();
        assert!((9_000..11_000).contains(&hits), "{hits}");
        assert!((0..1000).map(|_| f.draw()).all(|x| (0.0..1.0).contains(&x)));
    }
}
