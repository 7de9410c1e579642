//! The session policy a worker puts on the credentials it uses (issue 10): the task role
//! may only assume the scoped worker role, and the worker assumes it with this policy, so
//! what it (and anything that steals its credentials) can touch is its own queue set and
//! its own client's items — never another tenant's.
//!
//! IAM evaluates the intersection of the role's policy and the session policy
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session>);
//! a packed session policy may not exceed 2,048 characters.

use serde_json::json;

use crate::ids::ContainerId;

/// Longest packed session policy AWS STS accepts.
pub const MAX_SESSION_POLICY_CHARS: usize = 2048;

/// `arn:{partition}:sqs:{region}:{account}:{name}` of a queue URL (`…/{account}/{name}`).
pub fn queue_arn(partition: &str, region: &str, url: &str) -> Option<String> {
    let mut parts = url.trim_end_matches('/').rsplitn(3, '/');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let account = parts.next().filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))?;
    Some(format!("arn:{partition}:sqs:{region}:{account}:{name}"))
}

/// What the worker's credentials are scoped to.
#[derive(Debug, Clone)]
pub struct WorkerScope<'a> {
    /// ARN of the table.
    pub table_arn: &'a str,
    /// ARNs of its `in`, `out` and DLQ queues.
    pub queue_arns: [&'a str; 3],
    /// Its container.
    pub container: &'a ContainerId,
    /// Its client.
    pub client: &'a str,
    /// Its project.
    pub project: &'a str,
    /// `arn:{partition}:ssm:{region}:{account}` (the prefix of its client's parameter ARNs).
    pub ssm_prefix: &'a str,
    /// The bucket of email attachments, if any (read under `attachments/{client}/` only).
    pub attachments_bucket: Option<&'a str>,
    /// The AWS partition (`aws`, `aws-us-gov`, …).
    pub partition: &'a str,
}

/// The partition keys of a client's sessions: `SESSION#{client}-` and exactly the eight
/// characters of a thread id (`?` matches one), so client `acme` never matches the sessions
/// of client `acme-corp` (`SESSION#acme-corp-abcdefgh` has ten characters after `acme-`).
pub fn session_keys(client: &str) -> String {
    format!("SESSION#{client}-{}", "?".repeat(crate::ids::THREAD_ID_LEN))
}

/// The session policy (packed JSON): SQS on its three queues; DynamoDB `GetItem` and
/// `UpdateItem` only on its container item and its client's sessions and commands, `GetItem`
/// only on its project item (`dynamodb:LeadingKeys`); `ssm:GetParameter` only under its
/// client's path; `s3:GetObject` only under its client's attachments.
pub fn worker_session_policy(s: &WorkerScope<'_>) -> String {
    let mut policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage", "sqs:GetQueueAttributes"],
                "Resource": s.queue_arns,
            },
            {
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                "Resource": s.table_arn,
                "Condition": {
                    "ForAllValues:StringLike": {
                        "dynamodb:LeadingKeys": [format!("CONTAINER#{}", s.container), session_keys(s.client)]
                    }
                }
            },
            {
                // The project (its job command, its secrets' names) is read, never written.
                "Effect": "Allow",
                "Action": "dynamodb:GetItem",
                "Resource": s.table_arn,
                "Condition": {
                    "ForAllValues:StringEquals": {
                        "dynamodb:LeadingKeys": [format!("PROJECT#{}#{}", s.client, s.project)]
                    }
                }
            },
            {
                "Effect": "Allow",
                "Action": "ssm:GetParameter",
                "Resource": format!("{}:parameter/switchyard/{}/*", s.ssm_prefix, s.client),
            }
        ]
    });
    if let Some(bucket) = s.attachments_bucket {
        if let Some(statements) = policy["Statement"].as_array_mut() {
            statements.push(json!({
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": format!("arn:{}:s3:::{bucket}/attachments/{}/*", s.partition, s.client),
            }));
        }
    }
    policy.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_arns_come_from_urls() {
        let table = [
            (
                "https://sqs.eu-west-1.amazonaws.com/123456789012/sy-in-x-g1.fifo",
                Some("arn:aws:sqs:eu-west-1:123456789012:sy-in-x-g1.fifo"),
            ),
            (
                "http://127.0.0.1:4566/123456789012/sy-out-x-g1.fifo",
                Some("arn:aws:sqs:eu-west-1:123456789012:sy-out-x-g1.fifo"),
            ),
            ("http://127.0.0.1:4566/queue/", None),
            ("garbage", None),
        ];
        for (url, want) in table {
            assert_eq!(queue_arn("aws", "eu-west-1", url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn the_longest_session_policy_fits_sts() {
        let c = ContainerId::new(&"c".repeat(32), &"p".repeat(32), &format!("{}@{}", "u".repeat(64), "d".repeat(180)));
        let q = format!("arn:aws-us-gov:sqs:us-gov-west-1:123456789012:{}", "q".repeat(80));
        let table = format!("arn:aws-us-gov:dynamodb:us-gov-west-1:123456789012:table/{}", "t".repeat(255));
        let policy = worker_session_policy(&WorkerScope {
            table_arn: &table,
            queue_arns: [&q, &q, &q],
            container: &c,
            client: &"c".repeat(32),
            project: &"p".repeat(32),
            ssm_prefix: "arn:aws-us-gov:ssm:us-gov-west-1:123456789012",
            attachments_bucket: Some(&"b".repeat(63)),
            partition: "aws-us-gov",
        });
        assert!(policy.len() <= MAX_SESSION_POLICY_CHARS, "{} chars", policy.len());
        let v: serde_json::Value = serde_json::from_str(&policy).unwrap();
        let keys = &v["Statement"][1]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
        assert_eq!(keys[0].as_str(), Some(format!("CONTAINER#{c}").as_str()));
        assert_eq!(keys[1].as_str(), Some(format!("SESSION#{}-????????", "c".repeat(32)).as_str()));
        assert_eq!(v["Statement"][0]["Resource"], serde_json::json!([q, q, q]));
        let project = &v["Statement"][2];
        assert_eq!(project["Action"], "dynamodb:GetItem", "the project item is read-only");
        assert_eq!(
            project["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"][0],
            format!("PROJECT#{}#{}", "c".repeat(32), "p".repeat(32))
        );
        assert!(v["Statement"][3]["Resource"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/switchyard/{}/*", "c".repeat(32))));
    }

    /// IAM's `StringLike`: `*` any run, `?` one character.
    fn like(pattern: &str, value: &str) -> bool {
        match (pattern.chars().next(), value.chars().next()) {
            (None, None) => true,
            (Some('*'), _) => {
                like(&pattern[1..], value)
                    || (!value.is_empty() && like(pattern, &value[value.chars().next().unwrap().len_utf8()..]))
            }
            (Some('?'), Some(v)) => like(&pattern[1..], &value[v.len_utf8()..]),
            (Some(p), Some(v)) if p == v => like(&pattern[p.len_utf8()..], &value[v.len_utf8()..]),
            _ => false,
        }
    }

    #[test]
    fn a_client_never_matches_another_clients_sessions() {
        let acme = session_keys("acme");
        let t = crate::ids::ThreadId::from_seed("x");
        assert!(like(&acme, &format!("SESSION#{}", crate::ids::SessionId::new("acme", &t))));
        for other in ["acme-corp", "acme-c", "acm", "acmex", "a"] {
            let key = format!("SESSION#{}", crate::ids::SessionId::new(other, &t));
            assert!(!like(&acme, &key), "{acme} matched {key}");
        }
        // The old pattern did match a neighbour: the reason for the exact length.
        assert!(like("SESSION#acme-*", &format!("SESSION#{}", crate::ids::SessionId::new("acme-corp", &t))));
    }
}
