//! The container state machine and health rules of DESIGN §2.3, as pure functions.
//!
//! States: `absent → starting → running ↔ idle → stopping → stopped` and `failed` from
//! any state. `absent` is the absence of the container item (`Option::None`).

use serde::{Deserialize, Serialize};

/// A container's lifecycle state (the item's `container_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerStatus {
    /// A launch won the conditional write; the task is being started.
    Starting,
    /// The worker registered and serves its queue.
    Running,
    /// Running with no job for a while (still serving).
    Idle,
    /// Asked to stop (SIGTERM sent or idle stop in progress).
    Stopping,
    /// No task runs.
    Stopped,
    /// Health or launch failed.
    Failed,
    /// Stopped, and its queue set is being deleted by the reaper: no launch may be claimed
    /// and no router may send until it is `stopped` again (on the next generation).
    Retiring,
}

impl ContainerStatus {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Idle => "idle",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Retiring => "retiring",
        }
    }

    /// Every status, for queries over the status index.
    pub const ALL: [Self; 7] =
        [Self::Starting, Self::Running, Self::Idle, Self::Stopping, Self::Stopped, Self::Failed, Self::Retiring];
}

/// Something that happens to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerEvent {
    /// A router won the launch claim.
    LaunchClaimed,
    /// The worker registered.
    Registered,
    /// No job for `idle_timeout`.
    WentIdle,
    /// A job started on an idle container.
    Activity,
    /// A stop was requested (idle stop, SIGTERM, reaper).
    StopRequested,
    /// The task stopped.
    TaskStopped,
    /// Health check or launch failed.
    Failed,
    /// The reaper begins retiring a stopped container's queue set.
    RetireStarted,
    /// Retirement is over (queue set deleted) or abandoned (work arrived).
    RetireEnded,
}

/// An event that does not apply in a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {event:?} does not apply to a container in state {from:?}")]
pub struct InvalidTransition {
    /// State before (None = absent).
    pub from: Option<ContainerStatus>,
    /// The event.
    pub event: ContainerEvent,
}

/// Whether a container in this state needs a launch before it can serve.
pub fn needs_launch(status: Option<ContainerStatus>) -> bool {
    matches!(status, None | Some(ContainerStatus::Stopped | ContainerStatus::Failed))
}

/// Whether a router may send work to the container's recorded queue set now. A retiring
/// set is about to be deleted: the router waits for the next generation instead.
pub fn accepts_work(status: Option<ContainerStatus>) -> bool {
    status != Some(ContainerStatus::Retiring)
}

/// Whether a worker serves (or is about to serve) the container's queue: only then is a
/// control message worth sending (otherwise it would only wake a task for nothing).
pub fn has_worker(status: Option<ContainerStatus>) -> bool {
    matches!(status, Some(ContainerStatus::Starting | ContainerStatus::Running | ContainerStatus::Idle))
}

/// The next state, or why the event does not apply.
pub fn transition(from: Option<ContainerStatus>, event: ContainerEvent) -> Result<ContainerStatus, InvalidTransition> {
    use ContainerEvent as E;
    use ContainerStatus as S;
    let next = match (from, event) {
        (Some(S::Retiring), E::Failed) => return Err(InvalidTransition { from, event }),
        (_, E::Failed) => S::Failed,
        (Some(S::Stopped), E::RetireStarted) => S::Retiring,
        (Some(S::Retiring), E::RetireEnded) => S::Stopped,
        (s, E::LaunchClaimed) if needs_launch(s) => S::Starting,
        (Some(S::Starting | S::Running | S::Idle | S::Stopped), E::Registered) => S::Running,
        (Some(S::Running), E::WentIdle) => S::Idle,
        (Some(S::Idle | S::Running), E::Activity) => S::Running,
        (Some(S::Starting | S::Running | S::Idle | S::Stopping), E::StopRequested) => S::Stopping,
        (Some(S::Retiring), E::TaskStopped) => S::Retiring,
        (Some(_), E::TaskStopped) => S::Stopped,
        _ => return Err(InvalidTransition { from, event }),
    };
    Ok(next)
}

/// The states from which `event` leads to `to` (`None`: no item yet): the condition of
/// the store's write that records the move, derived from [`transition`], never restated.
pub fn sources_to(event: ContainerEvent, to: ContainerStatus) -> Vec<Option<ContainerStatus>> {
    std::iter::once(None)
        .chain(ContainerStatus::ALL.into_iter().map(Some))
        .filter(|s| transition(*s, event) == Ok(to))
        .collect()
}

/// Consecutive failed launches (RunTask refused, task stopped before it registered, stuck
/// starting) after which a container gives up: it stays `failed`, its waiting work is
/// answered as failed, and an alarm fires.
pub const MAX_LAUNCH_FAILURES: u32 = 5;

/// What to do after a container's `n`-th consecutive failed launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchRetry {
    /// Launch again, not before this many ms have passed.
    After(u64),
    /// Stop trying: answer the waiting work as failed; a new message may try again after
    /// this cool-down (ms), with a fresh budget.
    GiveUp(u64),
}

/// Exponential back-off between failed launches (15 s, 30 s, 60 s, 120 s), then give up
/// for an hour.
pub fn launch_retry(consecutive_failures: u32) -> LaunchRetry {
    if consecutive_failures >= MAX_LAUNCH_FAILURES {
        LaunchRetry::GiveUp(3_600_000)
    } else {
        LaunchRetry::After(15_000 << consecutive_failures.saturating_sub(1).min(10))
    }
}

/// Health derived from heartbeat age.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Heartbeat within 2 intervals.
    Healthy,
    /// Heartbeat older than 2 intervals.
    Degraded,
    /// Heartbeat older than 4 intervals: stop and relaunch if backlog.
    Failed,
}

impl Health {
    /// The health as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
        }
    }
}

/// Heartbeat age > 2 intervals ⇒ degraded; > 4 ⇒ failed.
pub fn health(heartbeat_age_ms: u64, interval_ms: u64) -> Health {
    if heartbeat_age_ms > 4 * interval_ms {
        Health::Failed
    } else if heartbeat_age_ms > 2 * interval_ms {
        Health::Degraded
    } else {
        Health::Healthy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContainerEvent as E;
    use ContainerStatus as S;

    #[test]
    fn lifecycle() {
        let table: &[(Option<S>, E, Option<S>)] = &[
            (None, E::LaunchClaimed, Some(S::Starting)),
            (Some(S::Stopped), E::LaunchClaimed, Some(S::Starting)),
            (Some(S::Failed), E::LaunchClaimed, Some(S::Starting)),
            (Some(S::Running), E::LaunchClaimed, None),
            (Some(S::Starting), E::LaunchClaimed, None),
            (Some(S::Starting), E::Registered, Some(S::Running)),
            (Some(S::Stopped), E::Registered, Some(S::Running)),
            (Some(S::Running), E::WentIdle, Some(S::Idle)),
            (Some(S::Idle), E::Activity, Some(S::Running)),
            (Some(S::Idle), E::StopRequested, Some(S::Stopping)),
            (Some(S::Stopping), E::TaskStopped, Some(S::Stopped)),
            (None, E::TaskStopped, None),
            (None, E::Registered, None),
            (Some(S::Stopped), E::WentIdle, None),
            (Some(S::Running), E::Failed, Some(S::Failed)),
            (None, E::Failed, Some(S::Failed)),
            (Some(S::Stopped), E::RetireStarted, Some(S::Retiring)),
            (Some(S::Running), E::RetireStarted, None),
            (Some(S::Failed), E::RetireStarted, None),
            (Some(S::Retiring), E::RetireEnded, Some(S::Stopped)),
            (Some(S::Stopped), E::RetireEnded, None),
            (Some(S::Retiring), E::LaunchClaimed, None),
            (Some(S::Retiring), E::Registered, None),
            (Some(S::Retiring), E::Failed, None),
            (Some(S::Retiring), E::TaskStopped, Some(S::Retiring)),
        ];
        for (from, ev, want) in table {
            assert_eq!(transition(*from, *ev).ok(), *want, "{from:?} + {ev:?}");
        }
    }

    #[test]
    fn store_conditions_come_from_the_table() {
        assert_eq!(sources_to(E::LaunchClaimed, S::Starting), [None, Some(S::Stopped), Some(S::Failed)]);
        assert_eq!(
            sources_to(E::Registered, S::Running),
            [Some(S::Starting), Some(S::Running), Some(S::Idle), Some(S::Stopped)]
        );
        assert_eq!(sources_to(E::RetireStarted, S::Retiring), [Some(S::Stopped)]);
        assert_eq!(sources_to(E::RetireEnded, S::Stopped), [Some(S::Retiring)]);
        // A retiring set stays retiring when a task stops; nothing absent can stop.
        let stops = sources_to(E::TaskStopped, S::Stopped);
        assert!(!stops.contains(&None) && !stops.contains(&Some(S::Retiring)), "{stops:?}");
        assert!(!sources_to(E::Failed, S::Failed).contains(&Some(S::Retiring)));
        assert!(sources_to(E::WentIdle, S::Running).is_empty());
    }

    #[test]
    fn failed_launches_back_off_then_give_up() {
        let table = [
            (1, LaunchRetry::After(15_000)),
            (2, LaunchRetry::After(30_000)),
            (3, LaunchRetry::After(60_000)),
            (4, LaunchRetry::After(120_000)),
            (5, LaunchRetry::GiveUp(3_600_000)),
            (9, LaunchRetry::GiveUp(3_600_000)),
        ];
        for (n, want) in table {
            assert_eq!(launch_retry(n), want, "{n}");
        }
    }

    #[test]
    fn only_a_retiring_queue_set_refuses_work() {
        assert!(accepts_work(None));
        for s in S::ALL {
            assert_eq!(accepts_work(Some(s)), s != S::Retiring, "{s:?}");
        }
    }

    #[test]
    fn launch_only_from_absent_stopped_failed() {
        assert!(needs_launch(None));
        for s in S::ALL {
            assert_eq!(needs_launch(Some(s)), matches!(s, S::Stopped | S::Failed), "{s:?}");
        }
    }

    #[test]
    fn health_thresholds() {
        assert_eq!(health(0, 30_000), Health::Healthy);
        assert_eq!(health(60_000, 30_000), Health::Healthy);
        assert_eq!(health(60_001, 30_000), Health::Degraded);
        assert_eq!(health(120_001, 30_000), Health::Failed);
    }
}
