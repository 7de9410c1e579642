//! `switchyard-orchestrator`: the use cases, performed with the adapters.
//!
//! Layout:
//! - [`error`]: [`RouteError`] and the typed [`Rejection`]s of bad input.
//! - [`route`]: DESIGN §2.1 — authorise, thread, idempotency, session + seq, queue set,
//!   container, one `SendMessageBatch`.
//! - [`config`]: settings read once from the environment.
//! - [`containers`]: ensure a queue set and a running (or starting) container.
//! - [`projects`]: project administration.
//! - [`respond`]: outcomes recorded and answered (threaded email replies, DLQ'd commands).
//! - [`reconcile`]: task-state changes and the reaper.
//! - [`sessions`]: session control (interrupt, cancel, close) and API keys.

pub mod config;
pub mod containers;
pub mod error;
pub mod projects;
pub mod reconcile;
pub mod respond;
pub mod route;
pub mod sessions;

use std::sync::Arc;

use switchyard_aws::launcher::Launcher;
use switchyard_aws::queues::Queues;
use switchyard_aws::store::Store;
use switchyard_aws::subscriptions::ResponderMappings;

pub use error::{Rejection, RouteError};
pub use route::{RouteOutcome, RouteStatus};

/// The adapters every use case works with, built once per process.
#[derive(Debug, Clone)]
pub struct Orchestrator {
    /// The table.
    pub store: Store,
    /// Queue sets.
    pub queues: Queues,
    /// The container launcher (ECS or local processes).
    pub launcher: Arc<dyn Launcher>,
    /// In AWS, the responder's event source mappings on each queue set (the local runtime
    /// polls the queues instead and leaves this `None`).
    pub responder_mappings: Option<ResponderMappings>,
}

impl Orchestrator {
    /// Assembles the orchestrator.
    pub fn new(store: Store, queues: Queues, launcher: Arc<dyn Launcher>) -> Self {
        Self { store, queues, launcher, responder_mappings: None }
    }

    /// Subscribes the responder to every queue set this orchestrator creates.
    pub fn with_responder_mappings(mut self, mappings: ResponderMappings) -> Self {
        self.responder_mappings = Some(mappings);
        self
    }
}
