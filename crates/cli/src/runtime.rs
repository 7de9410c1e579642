//! The local runtime (`switchyard dev`): the Lambda handlers hosted in-process against the
//! emulator — the HTTP API on 127.0.0.1, a poller for the inbound queue, pollers for every
//! container's `out` queue and DLQ, a reaper timer — and containers as local worker
//! processes whose exits are fed to task-events as ECS task-state changes would be.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use http_body_util::{BodyExt, Full};
use lambda_runtime::LambdaEvent;
use switchyard_aws::mailer::Mailer;
use switchyard_aws::queues::Queues;
use switchyard_aws::Clients;
use switchyard_orchestrator::reconcile::ReaperSettings;
use switchyard_orchestrator::Orchestrator;
use switchyard_worker::local::LocalLauncher;
use tokio::task::JoinSet;
use tracing::{info, warn};

/// Settings of the local runtime.
#[derive(Debug, Clone)]
pub(crate) struct DevSettings {
    /// Table name.
    pub(crate) table: String,
    /// Queue-name prefix.
    pub(crate) prefix: String,
    /// Domain of the inbound addresses (`client.project@domain`).
    pub(crate) domain: String,
    /// API listen address (port 0 = any free port).
    pub(crate) api_addr: SocketAddr,
    /// Where containers, logs and the outbox live.
    pub(crate) data_dir: PathBuf,
    /// Worker binary.
    pub(crate) worker_bin: PathBuf,
    /// Extra env for workers.
    pub(crate) worker_env: Vec<(String, String)>,
    /// Reaper interval.
    pub(crate) reap_every: Duration,
}

/// A local runtime on fresh resources for one scripted run (demo, chaos, load): table
/// `{kind}-{id}`, queue prefix `{k}{id}`, data under `{data_dir}/{kind}-{id}` with a bare git
/// remote to serve as every project's repository.
pub(crate) struct Scratch {
    /// The runtime.
    pub(crate) rt: Runtime,
    /// Its data directory (removed by the caller when done).
    pub(crate) data: PathBuf,
    /// The bare remote.
    pub(crate) remote: PathBuf,
    /// The run's unique id (lower-case ULID).
    pub(crate) id: String,
}

impl Scratch {
    /// Starts a scratch runtime; `worker_env` are the workers' timings.
    pub(crate) async fn start(
        config: &crate::config::CliConfig,
        kind: &str,
        domain: &str,
        worker_env: &[(&str, String)],
        reap_every: Duration,
    ) -> anyhow::Result<Self> {
        let id = ulid::Ulid::new().to_string().to_ascii_lowercase();
        let data = config.data_dir.join(format!("{kind}-{}", &id[20..]));
        std::fs::create_dir_all(&data)?;
        let data = data.canonicalize()?;
        let remote = crate::demo_git::bare_remote(&data)?;
        let sdk = switchyard_aws::clients::load_sdk_config().await;
        let clients = Clients::new(&sdk, None);
        let settings = DevSettings {
            table: format!("{kind}-{}", &id[20..]),
            prefix: format!("{}{}", &kind[..1], &id[20..]),
            domain: domain.into(),
            api_addr: "127.0.0.1:0".parse()?,
            data_dir: data.clone(),
            worker_bin: config.worker_binary()?,
            worker_env: worker_env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            reap_every,
        };
        let rt = Runtime::start(&clients, settings).await?;
        Ok(Self { rt, data, remote, id })
    }
}

/// A running local runtime.
pub(crate) struct Runtime {
    /// Use cases.
    pub(crate) orchestrator: Orchestrator,
    /// The launcher (to stop workers at the end).
    pub(crate) launcher: Arc<LocalLauncher>,
    /// Inbound queue URL (where `switchyard send` puts SES notifications).
    pub(crate) inbound_url: String,
    /// Where local mail arrives (the inbound queue, and the bucket for large messages).
    pub(crate) inbox: crate::inbound::Inbox,
    /// The API's bound address.
    pub(crate) api_addr: SocketAddr,
    /// Copies of every reply email sent.
    pub(crate) outbox: PathBuf,
    tasks: JoinSet<()>,
}

/// Concurrent pollers of the inbound queue (Lambda scales intake with the queue's depth).
const INTAKE_POLLERS: usize = 4;

/// The inbound queue name of a prefix.
pub(crate) fn inbound_queue(prefix: &str) -> String {
    format!("{prefix}-inbound")
}

fn queue_arn(url: &str) -> String {
    format!("arn:aws:sqs:local:000000000000:{}", url.rsplit('/').next().unwrap_or(""))
}

fn sqs_event(url: &str, msgs: &[switchyard_aws::queues::Received]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for m in msgs {
        let mut r = SqsMessage::default();
        r.message_id = Some(m.id.clone());
        r.receipt_handle = Some(m.receipt.clone());
        r.body = Some(m.body.clone());
        r.event_source = Some("aws:sqs".into());
        r.event_source_arn = Some(queue_arn(url));
        event.records.push(r);
    }
    event
}

/// Polls a queue and hands batches to a handler that returns the ids that failed; the
/// others are deleted (what a Lambda event source mapping with partial batch responses does).
async fn poll<F, Fut>(queues: Queues, url: String, handler: F)
where
    F: Fn(SqsEvent) -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    loop {
        let msgs = match queues.receive(&url, 10, 5, Some(60)).await {
            Ok(m) => m,
            Err(switchyard_aws::AwsError::Service { code, .. }) if code.contains("NonExistentQueue") => return,
            Err(e) => {
                warn!(queue = %url, error = %e, "poll failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if msgs.is_empty() {
            continue;
        }
        let failed: HashSet<String> = handler(sqs_event(&url, &msgs)).await.into_iter().collect();
        for m in msgs.iter().filter(|m| !failed.contains(&m.id)) {
            if let Err(e) = queues.delete(&url, &m.receipt).await {
                warn!(queue = %url, error = %e, "delete failed");
            }
        }
    }
}

impl Runtime {
    /// Provisions and starts everything.
    pub(crate) async fn start(clients: &Clients, s: DevSettings) -> anyhow::Result<Self> {
        let store = crate::provision::table(clients, &s.table).await?;
        let queues = Queues::new(clients.sqs.clone(), &s.prefix);
        let inbound_url = clients
            .sqs
            .create_queue()
            .queue_name(inbound_queue(&s.prefix))
            .send()
            .await
            .context("create inbound queue")?
            .queue_url
            .context("inbound queue url")?;
        let mailer = Mailer::new(clients.ses.clone());
        mailer.ensure_identity(&s.domain).await.context("verify SES identity")?;
        let bucket = crate::inbound::mail_bucket(&s.prefix);
        crate::provision::bucket(clients, &bucket).await?;
        let inbox = crate::inbound::Inbox {
            sqs: clients.sqs.clone(),
            s3: clients.s3.clone(),
            url: inbound_url.clone(),
            bucket: bucket.clone(),
        };
        std::fs::create_dir_all(&s.data_dir)?;
        let outbox = s.data_dir.join("outbox");
        std::fs::create_dir_all(&outbox)?;
        let (launcher, mut exits) =
            LocalLauncher::new(s.worker_bin.clone(), s.data_dir.join("containers"), s.worker_env.clone());
        let launcher = Arc::new(launcher);
        let orchestrator = Orchestrator::new(store, queues.clone(), launcher.clone());
        let mut tasks = JoinSet::new();

        // HTTP API.
        let listener =
            tokio::net::TcpListener::bind(s.api_addr).await.with_context(|| format!("bind {}", s.api_addr))?;
        let api_addr = listener.local_addr()?;
        let api_state = Arc::new(api::State { orchestrator: orchestrator.clone() });
        tasks.spawn(serve_api(listener, api_state));

        // Inbound email → intake-email.
        let intake = Arc::new(intake_email::State {
            orchestrator: orchestrator.clone(),
            s3: clients.s3.clone(),
            mailer: mailer.clone(),
            inbound_domain: s.domain.clone(),
            attachments_bucket: Some(bucket.clone()),
        });
        // Several pollers, as Lambda runs several intake instances on a busy queue.
        for _ in 0..INTAKE_POLLERS {
            let intake = intake.clone();
            tasks.spawn(poll(queues.clone(), inbound_url.clone(), move |event| {
                let intake = intake.clone();
                async move {
                    match intake_email::handle(&intake, LambdaEvent::new(event, Default::default())).await {
                        Ok(r) => r.batch_item_failures.into_iter().map(|f| f.item_identifier).collect(),
                        Err(e) => {
                            warn!(error = %e, "intake failed");
                            Vec::new()
                        }
                    }
                }
            }));
        }

        // out queues and DLQs → responder (a poller per queue, discovered from the table).
        let responder = Arc::new(responder::State { orchestrator: orchestrator.clone(), mailer });
        let (o2, q2, outbox2) = (orchestrator.clone(), queues.clone(), outbox.clone());
        tasks.spawn(async move {
            let mut polled: HashSet<String> = HashSet::new();
            loop {
                if let Ok(all) = o2.store.all_containers().await {
                    for url in all.iter().flat_map(|c| [c.out_url.clone(), c.dlq_url.clone()]).flatten() {
                        if polled.insert(url.clone()) {
                            let (r, outbox) = (responder.clone(), outbox2.clone());
                            tokio::spawn(poll(q2.clone(), url, move |event| {
                                let (r, outbox) = (r.clone(), outbox.clone());
                                async move { respond_batch(&r, event, &outbox).await }
                            }));
                        }
                    }
                }
                // Discovery reads the status index (a full scan in the emulator): not too often.
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });

        // Reaper timer.
        let (o3, every) = (orchestrator.clone(), s.reap_every);
        tasks.spawn(async move {
            let settings = ReaperSettings::default();
            loop {
                tokio::time::sleep(every).await;
                match o3.reap(&settings).await {
                    Ok(r) if r != Default::default() => info!(?r, "reaper pass"),
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "reaper failed"),
                }
            }
        });

        // Local task exits → task-events.
        let te = task_events::State { orchestrator: orchestrator.clone() };
        tasks.spawn(async move {
            while let Some(exit) = exits.recv().await {
                let change = task_events::TaskStateChange {
                    task_arn: exit.task_arn.clone(),
                    last_status: "STOPPED".into(),
                    stopped_reason: Some(exit.reason.clone()),
                    overrides: task_events::Overrides {
                        container_overrides: vec![task_events::ContainerOverride {
                            environment: vec![task_events::NameValue {
                                name: switchyard_aws::launcher::env::CONTAINER_ID.into(),
                                value: exit.container_id.clone(),
                            }],
                        }],
                    },
                };
                match task_events::apply(&te, &change).await {
                    Ok(r) => info!(task = %exit.task_arn, ?r, "task stopped"),
                    Err(e) => warn!(task = %exit.task_arn, error = %e, "task-events failed"),
                }
            }
        });
        Ok(Self { orchestrator, launcher, inbound_url, inbox, api_addr, outbox, tasks })
    }

    /// Stops every worker (SIGTERM) and waits briefly for them to exit.
    pub(crate) async fn shutdown(mut self) {
        for t in self.launcher.running() {
            let _ = switchyard_aws::launcher::Launcher::stop(self.launcher.as_ref(), &t, "runtime stopping").await;
        }
        for _ in 0..100 {
            if self.launcher.running().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.tasks.abort_all();
    }
}

async fn respond_batch(state: &responder::State, event: SqsEvent, outbox: &std::path::Path) -> Vec<String> {
    let keep_copy = |r: &switchyard_orchestrator::respond::Responded| {
        if let Some(mail) = &r.email {
            let name = outbox.join(format!("{}.eml", mail.message_id.replace(['/', '@'], "_")));
            if let Err(e) = std::fs::write(&name, &mail.raw) {
                warn!(error = %e, "outbox copy not written");
            }
        }
    };
    let out = responder::handle_batch(state, &event.records, keep_copy).await;
    out.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
}

/// Serves the API handler over HTTP/1.1 (requests converted to `lambda_http` requests).
async fn serve_api(listener: tokio::net::TcpListener, state: Arc<api::State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let state = state.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    let body = if bytes.is_empty() {
                        lambda_http::Body::Empty
                    } else {
                        match String::from_utf8(bytes.to_vec()) {
                            Ok(s) => lambda_http::Body::Text(s),
                            Err(e) => lambda_http::Body::Binary(e.into_bytes()),
                        }
                    };
                    let resp = api::handle(&state, lambda_http::Request::from_parts(parts, body))
                        .await
                        .unwrap_or_else(|e| api::Problem::new(500, "internal", e.to_string()).into_response());
                    let (parts, body) = resp.into_parts();
                    let bytes = match body {
                        lambda_http::Body::Text(t) => bytes::Bytes::from(t),
                        lambda_http::Body::Binary(b) => bytes::Bytes::from(b),
                        _ => bytes::Bytes::new(),
                    };
                    Ok::<_, std::convert::Infallible>(hyper::Response::from_parts(parts, Full::new(bytes)))
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await {
                tracing::debug!(error = %e, "api connection ended");
            }
        });
    }
}
