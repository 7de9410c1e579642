//! Container items: the launch claim, queue-set record, registration, heartbeats, stops.
//!
//! Each transition of DESIGN §2.3 that has a rule is one conditional `UpdateItem`.

use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use switchyard_core::container::{sources_to, ContainerEvent, ContainerStatus, Health};
use switchyard_core::ids::ContainerId;

use super::items::ContainerItem;
use super::keys::{container_pk, META};
use super::{conflict, is_ccf, n, one_of, s, won, Store};
use crate::error::{classify, AwsError};

type UpdateItem = aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;

/// Adds the condition that the container is in a state from which `event` leads to `to`
/// (core's transition table), minus `except`. Returns the request and the condition.
fn moving(
    req: UpdateItem,
    event: ContainerEvent,
    to: ContainerStatus,
    except: &[ContainerStatus],
) -> (UpdateItem, String) {
    let from = sources_to(event, to);
    let allowed =
        from.iter().filter(|s| !s.is_some_and(|s| except.contains(&s))).map(|s| s.map(ContainerStatus::as_str));
    one_of(req, "container_status", "from", allowed)
}

/// The queue URLs of a generation of a container's queue set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrls {
    /// `in` queue.
    pub in_url: String,
    /// `out` queue.
    pub out_url: String,
    /// DLQ.
    pub dlq_url: String,
}

/// Result of a launch claim.
#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    /// We won: we must launch. The item as written.
    Won(ContainerItem),
    /// Someone else launched, or it is running: the item as it is.
    Lost(Option<ContainerItem>),
}

impl Store {
    fn update_container(&self, id: &ContainerId) -> UpdateItem {
        self.client.update_item().table_name(&self.table).key("pk", s(container_pk(id))).key("sk", s(META))
    }

    /// Reads a container item.
    pub async fn get_container(&self, id: &ContainerId) -> Result<Option<ContainerItem>, AwsError> {
        self.get(&container_pk(id), META).await
    }

    /// Claims the launch: `absent | stopped | failed → starting` with our token. Exactly one
    /// concurrent caller wins.
    pub async fn claim_launch(
        &self,
        id: &ContainerId,
        client: &str,
        project: &str,
        user: &str,
        token: &str,
    ) -> Result<ClaimOutcome, AwsError> {
        let (req, allowed) =
            moving(self.update_container(id), ContainerEvent::LaunchClaimed, ContainerStatus::Starting, &[]);
        let res = req
            .update_expression(
                "SET container_status = :starting, launch_token = :token, launched_ms = :now, container_id = :id, \
                 #c = :client, #p = :project, #u = :user, generation = if_not_exists(generation, :one), \
                 active_jobs = :zero, launches = if_not_exists(launches, :zero) + :one REMOVE task_arn, heartbeat_ms",
            )
            .condition_expression(format!(
                "{allowed} AND (attribute_not_exists(next_launch_ms) OR next_launch_ms <= :now)"
            ))
            .expression_attribute_names("#u", "user")
            .expression_attribute_names("#c", "client")
            .expression_attribute_names("#p", "project")
            .expression_attribute_values(":starting", s(ContainerStatus::Starting.as_str()))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":now", n(crate::now_ms()))
            .expression_attribute_values(":id", s(id.as_str()))
            .expression_attribute_values(":client", s(client))
            .expression_attribute_values(":project", s(project))
            .expression_attribute_values(":user", s(user))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(out) => Ok(ClaimOutcome::Won(serde_dynamo::from_item(out.attributes.unwrap_or_default())?)),
            Err(e) if is_ccf(&e) => {
                let old = e.into_service_error();
                let item: Option<ContainerItem> = match old {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => {
                        c.item.map(serde_dynamo::from_item).transpose()?
                    }
                    _ => None,
                };
                match item {
                    // An SDK retry of our own claim whose response was lost: we won.
                    Some(i) if i.launch_token.as_deref() == Some(token) => Ok(ClaimOutcome::Won(i)),
                    other => Ok(ClaimOutcome::Lost(other)),
                }
            }
            Err(e) => Err(classify("dynamodb", e)),
        }
    }

    /// Records a queue set of `generation` on the container item (creating the item if
    /// needed). Refused if the item already records another generation.
    pub async fn record_queue_set(&self, id: &ContainerId, generation: u32, urls: &QueueUrls) -> Result<(), AwsError> {
        self.update_container(id)
            .update_expression("SET generation = :g, in_url = :in, out_url = :out, dlq_url = :dlq, container_id = :id")
            .condition_expression("attribute_not_exists(generation) OR generation = :g")
            .expression_attribute_values(":g", n(generation))
            .expression_attribute_values(":in", s(&urls.in_url))
            .expression_attribute_values(":out", s(&urls.out_url))
            .expression_attribute_values(":dlq", s(&urls.dlq_url))
            .expression_attribute_values(":id", s(id.as_str()))
            .send()
            .await
            .map_err(conflict("queue set generation"))?;
        Ok(())
    }

    /// Records the task of the launch that holds `token`.
    pub async fn record_task(&self, id: &ContainerId, token: &str, task_arn: &str) -> Result<(), AwsError> {
        self.update_container(id)
            .update_expression("SET task_arn = :arn")
            .condition_expression("launch_token = :token")
            .expression_attribute_values(":arn", s(task_arn))
            .expression_attribute_values(":token", s(token))
            .send()
            .await
            .map_err(conflict("record task"))?;
        Ok(())
    }

    /// Records `event` moving the container to `to`, if the item still holds `token` (when
    /// given) and is in a state from which core's table allows that move.
    pub async fn set_status(
        &self,
        id: &ContainerId,
        token: Option<&str>,
        event: ContainerEvent,
        to: ContainerStatus,
        reason: Option<&str>,
    ) -> Result<(), AwsError> {
        let (mut req, allowed) = moving(self.update_container(id), event, to, &[]);
        let mut conds = vec!["attribute_exists(pk)".to_string(), allowed];
        if let Some(t) = token {
            conds.push("launch_token = :token".into());
            req = req.expression_attribute_values(":token", s(t));
        }
        let mut update = "SET container_status = :to, updated_ms = :now".to_string();
        if let Some(r) = reason {
            update.push_str(", last_reason = :reason");
            req = req.expression_attribute_values(":reason", s(r));
        }
        if to == ContainerStatus::Running {
            // A worker that registers ends a run of failed launches.
            update.push_str(
                ", heartbeat_ms = :now, last_activity_ms = :now, launch_failures = :zero REMOVE next_launch_ms",
            );
            req = req.expression_attribute_values(":zero", n(0));
        }
        req.update_expression(update)
            .condition_expression(conds.join(" AND "))
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":now", n(crate::now_ms()))
            .send()
            .await
            .map_err(conflict("container status"))?;
        Ok(())
    }

    /// Worker heartbeat: only while our launch holds the item.
    pub async fn heartbeat(
        &self,
        id: &ContainerId,
        token: &str,
        active_jobs: u32,
        last_activity_ms: u64,
    ) -> Result<(), AwsError> {
        self.update_container(id)
            .update_expression(
                "SET heartbeat_ms = :now, active_jobs = :jobs, last_activity_ms = :act, health = :healthy",
            )
            .condition_expression("launch_token = :token")
            .expression_attribute_values(":now", n(crate::now_ms()))
            .expression_attribute_values(":jobs", n(active_jobs))
            .expression_attribute_values(":act", n(last_activity_ms))
            .expression_attribute_values(":healthy", s(Health::Healthy.as_str()))
            .expression_attribute_values(":token", s(token))
            .send()
            .await
            .map_err(conflict("heartbeat"))?;
        Ok(())
    }

    /// Records health as judged by the reaper.
    pub async fn set_health(&self, id: &ContainerId, health: Health) -> Result<(), AwsError> {
        self.update_container(id)
            .update_expression("SET health = :h")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":h", s(health.as_str()))
            .send()
            .await
            .map_err(conflict("health"))?;
        Ok(())
    }

    /// Container items in a status (the `by-status` GSI).
    pub async fn containers_by_status(&self, status: ContainerStatus) -> Result<Vec<ContainerItem>, AwsError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(super::GSI_BY_STATUS)
            .key_condition_expression("container_status = :s")
            .expression_attribute_values(":s", s(status.as_str()));
        self.query_all(query).await
    }
}

impl Store {
    /// Marks the container stopped if `task_arn` is still its task. `Ok(false)` if a newer
    /// launch (or nothing) holds the item.
    pub async fn mark_stopped_if_task(&self, id: &ContainerId, task_arn: &str, reason: &str) -> Result<bool, AwsError> {
        // Not already stopped: the result says whether this call recorded the stop.
        let (req, allowed) = moving(
            self.update_container(id),
            ContainerEvent::TaskStopped,
            ContainerStatus::Stopped,
            &[ContainerStatus::Stopped],
        );
        let res = req
            .update_expression("SET container_status = :stopped, last_reason = :reason, active_jobs = :zero")
            .condition_expression(format!("task_arn = :arn AND {allowed}"))
            .expression_attribute_values(":stopped", s(ContainerStatus::Stopped.as_str()))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":arn", s(task_arn))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        won(res)
    }

    /// Records a failed launch of the launch holding `token`: `failed`, `failures` in a row,
    /// and no new claim before `next_launch_ms`. `Ok(false)` if another launch holds the
    /// item now.
    pub async fn record_launch_failure(
        &self,
        id: &ContainerId,
        token: &str,
        reason: &str,
        failures: u32,
        next_launch_ms: u64,
    ) -> Result<bool, AwsError> {
        let reason: String = reason.chars().take(super::MAX_REASON_CHARS).collect();
        let (req, allowed) = moving(self.update_container(id), ContainerEvent::Failed, ContainerStatus::Failed, &[]);
        let res = req
            .update_expression(
                "SET container_status = :failed, last_reason = :reason, next_launch_ms = :next, updated_ms = :now, \
                 launch_failures = :failures",
            )
            .condition_expression(format!("launch_token = :token AND {allowed}"))
            .expression_attribute_values(":failed", s(ContainerStatus::Failed.as_str()))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":next", n(next_launch_ms))
            .expression_attribute_values(":now", n(crate::now_ms()))
            .expression_attribute_values(":failures", n(failures))
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        won(res)
    }

    /// `stopped → retiring` for `generation`: blocks every launch claim (and every router)
    /// before the queue set is deleted. `Ok(false)` if the container moved on.
    pub async fn begin_retire(&self, id: &ContainerId, generation: u32) -> Result<bool, AwsError> {
        let (req, allowed) =
            moving(self.update_container(id), ContainerEvent::RetireStarted, ContainerStatus::Retiring, &[]);
        let res = req
            .update_expression("SET container_status = :retiring, updated_ms = :now")
            .condition_expression(format!("generation = :g AND {allowed}"))
            .expression_attribute_values(":g", n(generation))
            .expression_attribute_values(":retiring", s(ContainerStatus::Retiring.as_str()))
            .expression_attribute_values(":now", n(crate::now_ms()))
            .send()
            .await;
        won(res)
    }

    /// `retiring → stopped`: with `deleted`, the queue set is gone and the next launch uses
    /// `generation + 1`; without, retirement was abandoned (work arrived) and the set stays.
    pub async fn end_retire(&self, id: &ContainerId, generation: u32, deleted: bool) -> Result<(), AwsError> {
        let (req, allowed) =
            moving(self.update_container(id), ContainerEvent::RetireEnded, ContainerStatus::Stopped, &[]);
        let mut req = req
            .condition_expression(format!("generation = :g AND {allowed}"))
            .expression_attribute_values(":g", n(generation))
            .expression_attribute_values(":stopped", s(ContainerStatus::Stopped.as_str()));
        req = if deleted {
            req.update_expression("SET container_status = :stopped, generation = :next REMOVE in_url, out_url, dlq_url")
                .expression_attribute_values(":next", n(generation + 1))
        } else {
            req.update_expression("SET container_status = :stopped")
        };
        req.send().await.map_err(conflict("end retire"))?;
        Ok(())
    }

    /// Every container item (all statuses).
    pub async fn all_containers(&self) -> Result<Vec<ContainerItem>, AwsError> {
        let mut out = Vec::new();
        for st in ContainerStatus::ALL {
            out.extend(self.containers_by_status(st).await?);
        }
        Ok(out)
    }
}
