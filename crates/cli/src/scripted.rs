//! What the demo, `make bench` and `switchyard dev` share to run a real agent CLI here: the
//! CLIs `make agents` installed, and the scripted model provider (`scripts/scripted_model.py`)
//! standing in for the model this machine cannot reach.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use switchyard_core::agent::{AgentConfig, AgentKind};

/// The repository's root (beside `examples/`).
fn repo_root() -> PathBuf {
    crate::demo::examples_dir().join("..")
}

/// `.agents/bin`, where `scripts/install-agents.sh` put the CLIs, if it did.
pub(crate) fn agents_bin() -> Option<PathBuf> {
    repo_root().join(".agents/bin").canonicalize().ok()
}

/// The scripted model provider, stopped when dropped.
pub(crate) struct ScriptedModel {
    child: std::process::Child,
    port: String,
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ScriptedModel {
    /// Starts it (its port and request log under `dir`) and waits until it listens.
    pub(crate) async fn start(dir: &Path) -> anyhow::Result<Self> {
        let port_file = dir.join("model.port");
        let child = std::process::Command::new("python3")
            .arg(repo_root().join("scripts/scripted_model.py"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(dir.join("model-requests.jsonl"))
            .spawn()
            .context("python3 scripts/scripted_model.py")?;
        let mut model = Self { child, port: String::new() };
        let deadline = Instant::now() + Duration::from_secs(10);
        model.port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p;
            }
            anyhow::ensure!(Instant::now() < deadline, "the scripted model did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Ok(model)
    }

    /// Its port.
    pub(crate) fn port(&self) -> &str {
        &self.port
    }

    /// A project's `agent` running `kind` against this model, and the project's `secrets`
    /// with the provider key: an SSM `SecureString` under the client's path, like any secret.
    pub(crate) async fn agent(
        &self,
        sdk: &aws_config::SdkConfig,
        client: &str,
        kind: AgentKind,
    ) -> anyhow::Result<(AgentConfig, std::collections::BTreeMap<String, String>)> {
        let parameter = format!("/switchyard/{client}/model-provider-key");
        aws_sdk_ssm::Client::new(sdk)
            .put_parameter()
            .name(&parameter)
            .value("sk-scripted")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await?;
        let model = match kind {
            AgentKind::ClaudeCode => "claude-sonnet-4-5",
            AgentKind::Aider => "openai/scripted",
        };
        let base_url = kind.base_url(&format!("http://127.0.0.1:{}", self.port));
        let agent = AgentConfig { kind, model: model.into(), args: Vec::new(), base_url: Some(base_url) };
        Ok((agent, [(kind.key_variable().to_string(), parameter)].into()))
    }
}
