//! Emits EMF metric lines on stdout — only in processes that turned it on (the Lambdas and
//! the worker in AWS), so tests and the CLI keep a clean stdout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use switchyard_core::metrics::{emf_line, Metric};

static ENABLED: AtomicBool = AtomicBool::new(false);
static SOURCE: OnceLock<String> = OnceLock::new();

/// Turns emission on for this process; `source` becomes the `Source` dimension.
pub fn enable(source: &str) {
    let _ = SOURCE.set(source.to_string());
    ENABLED.store(true, Ordering::Relaxed);
}

/// Emits one EMF line (a no-op unless [`enable`] was called).
pub fn emit(metrics: &[Metric<'_>]) {
    if ENABLED.load(Ordering::Relaxed) {
        let source = SOURCE.get().map_or("unknown", String::as_str);
        println!("{}", emf_line(&[("Source", source)], metrics, crate::now_ms()));
    }
}

/// Emits a count of 1 for `name`.
pub fn count(name: &str) {
    emit(&[Metric { name, value: 1.0, unit: "Count" }]);
}
