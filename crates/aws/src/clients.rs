//! SDK clients built once from the standard `aws-config` chain.
//!
//! `AWS_ENDPOINT_URL` points every client at an emulator; nothing here special-cases it
//! except S3's path-style addressing, which the standard `AWS_S3_FORCE_PATH_STYLE`-like
//! setting does not cover for custom endpoints.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Counts AWS operations (one per SDK call, retries not counted) by `Service.Operation`.
///
/// Installed as an SDK interceptor, so the benchmark counts what really went out.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    /// Every IAM action (and resource kind) the calls needed, for the least-privilege test.
    iam: Arc<Mutex<std::collections::BTreeSet<crate::iam::IamCall>>>,
}

impl CallCounter {
    /// Total calls so far.
    pub fn total(&self) -> u64 {
        self.counts.lock().map(|m| m.values().sum()).unwrap_or_default()
    }

    /// Calls by `Service.Operation`.
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// The IAM actions the calls so far needed, with the kind of resource each named.
    pub fn iam_calls(&self) -> std::collections::BTreeSet<crate::iam::IamCall> {
        self.iam.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Forgets all counts.
    pub fn reset(&self) {
        if let Ok(mut m) = self.counts.lock() {
            m.clear();
        }
        if let Ok(mut s) = self.iam.lock() {
            s.clear();
        }
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "switchyard-call-counter"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let meta = cfg.load::<Metadata>();
        let op = meta.map(|m| format!("{}.{}", m.service(), m.name())).unwrap_or_else(|| "unknown".into());
        if let Ok(mut m) = self.counts.lock() {
            *m.entry(op).or_default() += 1;
        }
        if let (Some(m), Ok(mut s)) = (meta, self.iam.lock()) {
            s.extend(crate::iam::calls_of(m.service(), m.name(), context.input()));
        }
        Ok(())
    }
}

/// The SDK clients Switchyard uses, sharing one configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    /// DynamoDB.
    pub dynamo: aws_sdk_dynamodb::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// SES v2.
    pub ses: aws_sdk_sesv2::Client,
    /// S3 (raw inbound emails).
    pub s3: aws_sdk_s3::Client,
    /// Lambda (the responder's event source mappings).
    pub lambda: aws_sdk_lambda::Client,
}

impl Clients {
    /// Builds every client from one `SdkConfig`; with a counter, every call is counted.
    /// With `SWITCHYARD_AWS_FAULTS` set (load testing only), faults are injected.
    pub fn new(sdk: &aws_config::SdkConfig, counter: Option<&CallCounter>) -> Self {
        let faults = crate::faults::FaultInjector::from_env();
        if faults.is_some() {
            tracing::warn!(var = crate::faults::ENV, "AWS fault injection is on: a share of AWS calls will fail");
        }
        macro_rules! build {
            ($krate:ident) => {{
                let mut b = $krate::config::Builder::from(sdk);
                if let Some(c) = counter {
                    b = b.interceptor(c.clone());
                }
                if let Some(f) = &faults {
                    b = b.interceptor(f.clone());
                }
                b
            }};
        }
        Self {
            dynamo: aws_sdk_dynamodb::Client::from_conf(build!(aws_sdk_dynamodb).build()),
            sqs: aws_sdk_sqs::Client::from_conf(build!(aws_sdk_sqs).build()),
            ecs: aws_sdk_ecs::Client::from_conf(build!(aws_sdk_ecs).build()),
            ses: aws_sdk_sesv2::Client::from_conf(build!(aws_sdk_sesv2).build()),
            s3: aws_sdk_s3::Client::from_conf(build!(aws_sdk_s3).force_path_style(true).build()),
            lambda: aws_sdk_lambda::Client::from_conf(build!(aws_sdk_lambda).build()),
        }
    }
}

/// Loads the standard `aws-config` chain (env, profile, IMDS; `AWS_ENDPOINT_URL`).
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}
