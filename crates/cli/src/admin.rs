//! Operator commands on the configured table and queues (`SWITCHYARD_TABLE`, …).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchyard_aws::launcher::{EcsLauncher, Launcher};
use switchyard_aws::queues::{OutgoingMessage, Queues};
use switchyard_aws::Clients;
use switchyard_core::ids::SessionId;
use switchyard_core::project::ProjectConfig;
use switchyard_orchestrator::sessions::SessionControl;
use switchyard_orchestrator::Orchestrator;

use crate::config::CliConfig;
use crate::runtime::{inbound_queue, DevSettings, Runtime};

/// Clients and use cases on the configured table (the launcher is ECS; admin never launches).
pub(crate) async fn connect(config: &CliConfig) -> anyhow::Result<(Clients, Orchestrator)> {
    let sdk = switchyard_aws::clients::load_sdk_config().await;
    let clients = Clients::new(&sdk, None);
    let store = crate::provision::table(&clients, &config.table).await?;
    let ecs = switchyard_aws::launcher::EcsSettings {
        cluster: "switchyard".into(),
        task_definition: "switchyard-worker".into(),
        container_name: "worker".into(),
        subnets: config.subnets.clone(),
        security_groups: config.security_groups.clone(),
        assign_public_ip: false,
    };
    let launcher: Arc<dyn Launcher> = Arc::new(EcsLauncher::new(clients.ecs.clone(), ecs));
    let o = Orchestrator::new(store, Queues::new(clients.sqs.clone(), &config.prefix), launcher);
    Ok((clients, o))
}

/// `switchyard dev`: the local runtime until Ctrl-C.
pub(crate) async fn dev(config: &CliConfig) -> anyhow::Result<()> {
    let sdk = switchyard_aws::clients::load_sdk_config().await;
    let clients = Clients::new(&sdk, None);
    // The local runtime: webhooks may go to a receiver on this machine (plain HTTP to
    // loopback), and workers find the agent CLIs `make agents` installed.
    std::env::set_var("SWITCHYARD_ALLOW_HTTP_WEBHOOKS", "1");
    let worker_env: Vec<(String, String)> = match (std::env::var("SWITCHYARD_AGENT_BIN"), crate::scripted::agents_bin())
    {
        (Err(_), Some(bin)) => vec![("SWITCHYARD_AGENT_BIN".into(), bin.to_string_lossy().into_owned())],
        _ => Vec::new(),
    };
    let rt = Runtime::start(
        &clients,
        DevSettings {
            table: config.table.clone(),
            prefix: config.prefix.clone(),
            domain: config.domain.clone(),
            api_addr: std::net::SocketAddr::from(([127, 0, 0, 1], config.api_port)),
            data_dir: config.data_dir.clone(),
            worker_bin: config.worker_binary()?,
            worker_env,
            reap_every: Duration::from_secs(30),
        },
    )
    .await?;
    println!("switchyard dev: API on http://{}  inbound queue {}", rt.api_addr, rt.inbound_url);
    println!("send mail with `switchyard send FILE.eml`; Ctrl-C stops (workers get SIGTERM)");
    tokio::signal::ctrl_c().await?;
    rt.shutdown().await;
    Ok(())
}

/// `switchyard project add FILE.json`.
pub(crate) async fn project_add(config: &CliConfig, file: &std::path::Path) -> anyhow::Result<()> {
    let p: ProjectConfig = serde_json::from_slice(&std::fs::read(file)?)
        .with_context(|| format!("{} is not a project", file.display()))?;
    let (_, o) = connect(config).await?;
    o.put_project(p.clone()).await?;
    println!("project {}/{} saved; mail it at {}.{}@{}", p.client, p.project, p.client, p.project, config.domain);
    Ok(())
}

/// `switchyard project list`.
pub(crate) async fn project_list(config: &CliConfig) -> anyhow::Result<()> {
    let (clients, _) = connect(config).await?;
    let resp = clients
        .dynamo
        .scan()
        .table_name(&config.table)
        .filter_expression("begins_with(pk, :p)")
        .expression_attribute_values(":p", aws_sdk_dynamodb::types::AttributeValue::S("PROJECT#".into()))
        .send()
        .await?;
    for item in resp.items() {
        let p: switchyard_aws::store::ProjectItem = serde_dynamo::from_item(item.clone())?;
        println!(
            "{}/{}  repo={}  senders={}  job={:?}",
            p.config.client,
            p.config.project,
            p.config.repo_url,
            p.config.allowed_senders.join(","),
            p.config.job_command
        );
    }
    Ok(())
}

/// `switchyard apikey create`.
pub(crate) async fn apikey_create(
    config: &CliConfig,
    client: &str,
    user: &str,
    projects: &[String],
    operator: bool,
) -> anyhow::Result<()> {
    let (_, o) = connect(config).await?;
    let mut scopes = vec!["sessions".to_string()];
    if operator {
        scopes.push("operator".into());
    }
    let secret = o.create_api_key(client, user, projects, &scopes).await?;
    println!("{secret}");
    let name: String = secret.chars().take(switchyard_orchestrator::sessions::KEY_PREFIX_CHARS).collect();
    eprintln!("(shown once; only its hash is stored; revoke with `switchyard apikey revoke --client {client} --prefix {name}`)");
    if let Some(webhook) = o.authenticate(&secret).await?.and_then(|k| k.webhook_secret) {
        eprintln!("webhook signing secret (verify `Switchyard-Signature` with it): {webhook}");
    }
    Ok(())
}

/// `switchyard apikey revoke`: the key stops authenticating at once.
pub(crate) async fn apikey_revoke(config: &CliConfig, client: &str, prefix: &str) -> anyhow::Result<()> {
    let (_, o) = connect(config).await?;
    let n = o.revoke_api_key(client, prefix).await?;
    anyhow::ensure!(n > 0, "no active key of {client} starts with {prefix}");
    println!("revoked {n} key(s)");
    Ok(())
}

/// `switchyard send`: an .eml file, or an instruction wrapped in a minimal email.
pub(crate) async fn send(
    config: &CliConfig,
    file: Option<&std::path::Path>,
    instruction: Option<&str>,
    from: &str,
    to: &str,
) -> anyhow::Result<()> {
    let raw = match (file, instruction) {
        (Some(f), _) => std::fs::read(f)?,
        (None, Some(i)) => format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {}\r\nMessage-ID: <{}@switchyard.cli>\r\n\r\n{i}\r\n",
            i.lines().next().unwrap_or("").chars().take(60).collect::<String>(),
            ulid::Ulid::new()
        )
        .into_bytes(),
        (None, None) => anyhow::bail!("give an .eml file or --instruction"),
    };
    let (clients, _) = connect(config).await?;
    let url = clients
        .sqs
        .get_queue_url()
        .queue_name(inbound_queue(&config.prefix))
        .send()
        .await
        .context("inbound queue (is `switchyard dev` running?)")?
        .queue_url
        .unwrap_or_default();
    let inbox = crate::inbound::Inbox {
        sqs: clients.sqs.clone(),
        s3: clients.s3.clone(),
        url: url.clone(),
        bucket: crate::inbound::mail_bucket(&config.prefix),
    };
    inbox.send(&raw).await?;
    println!("queued on {url}");
    Ok(())
}

/// `switchyard sessions [SESSION]`.
pub(crate) async fn sessions(config: &CliConfig, session: Option<&str>) -> anyhow::Result<()> {
    let (_, o) = connect(config).await?;
    let ids: Vec<SessionId> = match session {
        Some(s) => vec![SessionId::parse(s)?],
        None => {
            let mut v = Vec::new();
            for c in o.store.all_containers().await? {
                v.extend(o.store.sessions_of_container(&c.container_id).await?.into_iter().map(|s| s.session_id));
            }
            v
        }
    };
    for sid in ids {
        let Some(s) = o.store.get_session(&sid).await? else { continue };
        println!("{}  {}  {}  {}  {:?}", s.session_id, s.user, s.branch, s.status, s.subject);
        for c in o.store.list_commands(&sid).await? {
            println!(
                "   {:>3} {:<12} attempts={} {}",
                c.seq,
                c.status,
                c.attempts,
                c.instruction.lines().next().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// `switchyard containers`.
pub(crate) async fn containers(config: &CliConfig) -> anyhow::Result<()> {
    let (_, o) = connect(config).await?;
    for c in o.store.all_containers().await? {
        println!(
            "{:<48} {:<9} health={:<9} jobs={} gen={} task={}",
            c.container_id,
            c.container_status.map_or("-", |s| s.as_str()),
            c.health.map_or("-", |h| h.as_str()),
            c.active_jobs,
            c.generation,
            c.task_arn.unwrap_or_else(|| "-".into())
        );
    }
    Ok(())
}

/// `switchyard redrive CONTAINER`: moves the DLQ's messages back to `in`.
pub(crate) async fn redrive(config: &CliConfig, container: &str) -> anyhow::Result<()> {
    let (_, o) = connect(config).await?;
    let c = o
        .store
        .get_container(&switchyard_core::ids::ContainerId::parse(container)?)
        .await?
        .context("no such container")?;
    let (Some(dlq), Some(inq)) = (c.dlq_url, c.in_url) else { anyhow::bail!("container has no queue set") };
    let mut moved = 0;
    loop {
        let msgs = o.queues.receive(&dlq, 10, 1, Some(60)).await?;
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            let group = m.group.clone().unwrap_or_else(|| "redrive".into());
            o.queues
                .send_batch(
                    &inq,
                    &[OutgoingMessage { group, dedup: format!("redrive-{}", m.id), body: m.body.clone() }],
                )
                .await?;
            o.queues.delete(&dlq, &m.receipt).await?;
            moved += 1;
        }
    }
    println!("{moved} message(s) moved back to {inq}");
    Ok(())
}

/// `switchyard cancel SESSION` or `--container ID`.
pub(crate) async fn cancel(config: &CliConfig, session: Option<&str>, container: Option<&str>) -> anyhow::Result<()> {
    let (_, o) = connect(config).await?;
    let sessions = match (session, container) {
        (Some(s), _) => vec![o.store.get_session(&SessionId::parse(s)?).await?.context("no such session")?],
        (None, Some(c)) => o.store.sessions_of_container(&switchyard_core::ids::ContainerId::parse(c)?).await?,
        (None, None) => anyhow::bail!("give a session or --container"),
    };
    for s in &sessions {
        o.control_session(s, SessionControl::Cancel).await?;
        println!("cancel sent to {}", s.session_id);
    }
    Ok(())
}
