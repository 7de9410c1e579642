//! The deploy template agrees with the code: env vars, table schema, IAM least privilege.

use std::collections::BTreeSet;

use serde_yaml::Value;
use switchyard_aws::store::TableSchema;
use switchyard_orchestrator::config::RouterConfig;
use switchyard_tests::template::{list, load as template, text};

fn resources(t: &Value) -> Vec<(String, &Value)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v))
        .collect()
}

fn of_type<'a>(t: &'a Value, ty: &str) -> Vec<(String, &'a Value)> {
    resources(t).into_iter().filter(|(_, r)| r["Type"].as_str() == Some(ty)).collect()
}

#[test]
fn every_function_gets_every_variable_its_config_reads() {
    let t = template();
    let globals: BTreeSet<String> =
        t["Globals"]["Function"]["Environment"]["Variables"].as_mapping().expect("globals").keys().map(text).collect();
    let functions = of_type(&t, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 5);
    for (name, f) in functions {
        let own: BTreeSet<String> = f["Properties"]["Environment"]["Variables"]
            .as_mapping()
            .map(|m| m.keys().map(text).collect())
            .unwrap_or_default();
        for var in RouterConfig::VARS {
            assert!(globals.contains(var) || own.contains(var), "{name} lacks {var}");
        }
        assert_eq!(f["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{name}");
    }
    // Functions that create (or retire) queue sets subscribe the responder to them.
    for name in ["IntakeEmailFunction", "ApiFunction", "ReaperFunction", "TaskEventsFunction"] {
        let v = &t["Resources"][name]["Properties"]["Environment"]["Variables"]["SWITCHYARD_RESPONDER_FUNCTION"];
        assert!(text(v).contains("ResponderFunction"), "{name} lacks SWITCHYARD_RESPONDER_FUNCTION");
    }
    assert_eq!(t["Globals"]["Function"]["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(text(&t["Globals"]["Function"]["Architectures"]), "arm64");
    // The worker: the launcher sets its queue/table/identity vars at RunTask; the task
    // definition sets the rest.
    let (_, td) = of_type(&t, "AWS::ECS::TaskDefinition").pop().expect("task definition");
    let env: BTreeSet<String> =
        list(&td["Properties"]["ContainerDefinitions"][0]["Environment"]).iter().map(|e| text(&e["Name"])).collect();
    assert!(env.contains("SWITCHYARD_WORKSPACE"));
    // Fargate needs the task-level memory; RunTask (and moto) need a container-level one too.
    assert!(!td["Properties"]["Memory"].is_null());
    assert!(td["Properties"]["ContainerDefinitions"][0]["MemoryReservation"].as_u64().is_some());
    assert_eq!(text(&td["Properties"]["NetworkMode"]), "awsvpc");
    assert_eq!(text(&td["Properties"]["RequiresCompatibilities"]), "FARGATE");
    assert!(!td["Properties"]["TaskRoleArn"].is_null(), "moto drops the task role: checked here");
    assert_eq!(text(&td["Properties"]["Volumes"][0]["Name"]), "workspace");
}

#[test]
fn table_matches_the_store() {
    let t = template();
    let schema = TableSchema::current();
    let (_, table) = of_type(&t, "AWS::DynamoDB::Table").pop().expect("table");
    let p = &table["Properties"];
    let keys: Vec<(String, String)> =
        list(&p["KeySchema"]).iter().map(|k| (text(&k["AttributeName"]), text(&k["KeyType"]))).collect();
    assert_eq!(
        keys,
        vec![(schema.keys.0.to_string(), "HASH".to_string()), (schema.keys.1.to_string(), "RANGE".to_string())]
    );
    let gsis: Vec<(String, String, String)> = list(&p["GlobalSecondaryIndexes"])
        .iter()
        .map(|g| {
            let ks = list(&g["KeySchema"]);
            (text(&g["IndexName"]), text(&ks[0]["AttributeName"]), text(&ks[1]["AttributeName"]))
        })
        .collect();
    let want: Vec<(String, String, String)> =
        schema.gsis.iter().map(|(n, h, r)| (n.to_string(), h.to_string(), r.to_string())).collect();
    assert_eq!(gsis, want);
    assert_eq!(text(&p["TimeToLiveSpecification"]["AttributeName"]), schema.ttl);
    assert_eq!(p["TimeToLiveSpecification"]["Enabled"].as_bool(), Some(true));
}

/// IAM access level "Read"/"List" by operation prefix (ecr:BatchCheckLayerAvailability is Read).
const READ_PREFIXES: &[&str] = &["Get", "List", "Describe", "BatchGet", "BatchCheck", "Query", "Scan"];

fn is_write(action: &str) -> bool {
    let op = action.split(':').nth(1).unwrap_or(action);
    !READ_PREFIXES.iter().any(|p| op.starts_with(p))
}

fn allowed(file: &str) -> BTreeSet<String> {
    let path = format!("{}/../{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .expect("action list")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn policies_are_least_privilege() {
    let t = template();
    let lists = [
        ("IntakeEmailRole", "functions/intake-email/iam-actions.txt"),
        ("ApiRole", "functions/api/iam-actions.txt"),
        ("ResponderRole", "functions/responder/iam-actions.txt"),
        ("ReaperRole", "functions/reaper/iam-actions.txt"),
        ("TaskEventsRole", "functions/task-events/iam-actions.txt"),
        ("WorkerTaskRole", "crates/worker/iam-actions-task.txt"),
        ("WorkerScopedRole", "crates/worker/iam-actions.txt"),
    ];
    let roles = of_type(&t, "AWS::IAM::Role");
    assert_eq!(roles.len(), 8, "five functions, worker task, scoped worker and execution roles");
    for (name, role) in &roles {
        let mut actions = BTreeSet::new();
        for policy in list(&role["Properties"]["Policies"]) {
            for st in list(&policy["PolicyDocument"]["Statement"]) {
                let acts: Vec<String> = list(&st["Action"]).iter().map(|a| text(a)).collect();
                let resources: Vec<String> = list(&st["Resource"]).iter().map(|r| text(r)).collect();
                // No "*" resource on any write action. One exception, forced by IAM:
                // lambda:CreateEventSourceMapping has no resource type, so it takes "*" and
                // must then be pinned to the responder by a lambda:FunctionArn condition.
                if resources.iter().any(|r| r == "*") {
                    for a in &acts {
                        let pinned = a == "lambda:CreateEventSourceMapping"
                            && text(&st["Condition"]["StringEquals"]["lambda:FunctionArn"])
                                .contains("ResponderFunction");
                        assert!(!is_write(a) || pinned, "{name}: write action {a} on \"*\"");
                    }
                }
                // PassRole only for the worker task roles.
                if acts.iter().any(|a| a == "iam:PassRole") {
                    for r in &resources {
                        assert!(
                            r.contains("WorkerTaskRole") || r.contains("WorkerExecutionRole"),
                            "{name}: PassRole on {r}"
                        );
                    }
                }
                // Queue access only under the stack's queue-set prefixes.
                if acts.iter().any(|a| a.starts_with("sqs:") && a != "sqs:ListQueues") {
                    for r in &resources {
                        assert!(r.contains("${QueuePrefix}-") || r.contains("InboundQueue"), "{name}: sqs on {r}");
                    }
                }
                actions.extend(acts);
            }
        }
        if let Some((_, file)) = lists.iter().find(|(r, _)| r == name) {
            let allowed = allowed(file);
            let extra: Vec<_> = actions.difference(&allowed).collect();
            assert!(extra.is_empty(), "{name} grants actions its code does not call: {extra:?}");
        }
    }
    // SAM's implicit roles would bring managed policies with "*" resources: every function
    // names its own role.
    for (name, f) in of_type(&t, "AWS::Serverless::Function") {
        assert!(!f["Properties"]["Role"].is_null(), "{name} has no explicit role");
        assert!(f["Properties"]["Policies"].is_null(), "{name} uses SAM policy templates");
    }
}

/// Valid Fargate (Linux) memory sizes per CPU value.
fn fargate_memory(cpu: u32) -> Vec<u32> {
    match cpu {
        256 => vec![512, 1024, 2048],
        512 => (1..=4).map(|g| g * 1024).collect(),
        1024 => (2..=8).map(|g| g * 1024).collect(),
        2048 => (4..=16).map(|g| g * 1024).collect(),
        4096 => (8..=30).map(|g| g * 1024).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn worker_cpu_and_memory_are_checked_as_fargate_pairs() {
    let t = template();
    let cpus: Vec<u32> =
        list(&t["Parameters"]["WorkerCpu"]["AllowedValues"]).iter().map(|v| text(v).parse().unwrap()).collect();
    let default = (text(&t["Parameters"]["WorkerCpu"]["Default"]), text(&t["Parameters"]["WorkerMemory"]["Default"]));
    assert!(fargate_memory(default.0.parse().unwrap()).contains(&default.1.parse().unwrap()), "{default:?}");
    for cpu in cpus {
        let rule = &t["Rules"][format!("WorkerSize{cpu}").as_str()];
        assert_eq!(
            text(&rule["RuleCondition"]),
            format!("!Equals Ref WorkerCpu,{cpu}").replace("Ref ", "!Ref "),
            "{cpu}"
        );
        let allowed: Vec<u32> = list(&rule["Assertions"][0]["Assert"])
            .iter()
            .flat_map(|v| match v {
                Value::Tagged(t) => list(&t.value)
                    .first()
                    .map(|l| list(l).iter().map(|x| text(x).parse().unwrap()).collect::<Vec<u32>>())
                    .unwrap_or_default(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(allowed, fargate_memory(cpu), "WorkerSize{cpu}");
    }
}

#[test]
fn the_reaper_never_overlaps_itself() {
    let t = template();
    let f = &t["Resources"]["ReaperFunction"]["Properties"];
    let timeout: u64 = text(&f["Timeout"]).parse().unwrap();
    assert!(timeout < 60, "the reaper runs every minute; its timeout is {timeout} s");
    assert_eq!(text(&f["ReservedConcurrentExecutions"]), "1");
    assert_eq!(text(&f["EventInvokeConfig"]["MaximumRetryAttempts"]), "0");
    let budget: u64 = text(&f["Environment"]["Variables"]["SWITCHYARD_REAPER_BUDGET_SECS"]).parse().unwrap();
    assert!(budget + 10 <= timeout, "budget {budget} s leaves no time to finish within {timeout} s");
}

#[test]
fn queue_visibility_fits_the_responder_timeout() {
    // Lambda refuses a mapping from a queue whose visibility timeout is below the function
    // timeout (AWS recommends 6x): the code's constants must match the template.
    let t = template();
    let own = &t["Resources"]["ResponderFunction"]["Properties"]["Timeout"];
    let timeout = if own.is_null() { &t["Globals"]["Function"]["Timeout"] } else { own };
    let responder: i32 = text(timeout).parse().unwrap();
    assert_eq!(responder, switchyard_aws::queues::RESPONDER_TIMEOUT_S);
    assert!(switchyard_aws::queues::RESPONDER_VISIBILITY_S >= 6 * responder);
}

#[test]
fn inbound_mail_is_activated_and_its_dns_records_are_given() {
    let t = template();
    assert_eq!(t["Resources"]["InboundDomainIdentity"]["Type"].as_str(), Some("AWS::SES::EmailIdentity"));
    for output in ["ReceiptRuleSetName", "InboundMxRecord", "InboundDkimRecords"] {
        assert!(!t["Outputs"][output].is_null(), "output {output}");
    }
    let makefile = std::fs::read_to_string(format!("{}/../Makefile", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let deploy: String = makefile.split("\ndeploy:").nth(1).unwrap().split("\n\n").next().unwrap().to_string();
    assert!(deploy.contains("scripts/activate-receipt-rules.py"), "make deploy must activate the rule set:\n{deploy}");
    let readme = std::fs::read_to_string(format!("{}/../README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert!(readme.contains("inbound-smtp.") && readme.contains("DKIM"), "README documents the DNS records");
}

#[test]
fn the_workspace_volume_is_writable_by_the_worker_user() {
    // Fargate makes a task volume root-owned unless the image declares it (VOLUME) after
    // giving it to the worker user.
    let dockerfile =
        std::fs::read_to_string(format!("{}/../infra/worker.Dockerfile", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let chown = dockerfile.find("chown switchyard:switchyard /workspace").expect("chown of /workspace");
    let volume = dockerfile.find("VOLUME [\"/workspace\"]").expect("VOLUME /workspace");
    assert!(volume > chown, "VOLUME must come after the chown");
    let t = template();
    let c = &t["Resources"]["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"][0];
    assert_eq!(text(&c["MountPoints"][0]["ContainerPath"]), "/workspace");
}

#[test]
fn the_worker_can_only_reach_its_own_resources() {
    let t = template();
    // The task role may only assume the scoped role…
    let task = &t["Resources"]["WorkerTaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    assert_eq!(list(task).len(), 1);
    assert_eq!(text(&task[0]["Action"]), "sts:AssumeRole");
    assert!(text(&task[0]["Resource"]).contains("-worker-scoped"));
    // …which trusts only the task role and limits table keys to the worker's item kinds…
    let scoped = &t["Resources"]["WorkerScopedRole"]["Properties"];
    assert_eq!(text(&scoped["RoleName"]), "!Sub ${AWS::StackName}-worker-scoped");
    assert_eq!(
        text(&scoped["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"]),
        "!GetAtt WorkerTaskRole.Arn"
    );
    let statements = &scoped["Policies"][0]["PolicyDocument"]["Statement"];
    let table = &statements[1];
    let keys = text(&table["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]);
    assert_eq!(keys, "CONTAINER#*,SESSION#*");
    // …and projects (a tenant's job command) are read-only: a stolen worker credential can
    // never rewrite what another tenant's container runs.
    let projects = &statements[2];
    assert_eq!(text(&projects["Sid"]), "ProjectsReadOnly");
    assert_eq!(text(&projects["Action"]), "dynamodb:GetItem");
    assert_eq!(text(&projects["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]), "PROJECT#*");
    for s in list(statements) {
        let actions = text(&s["Action"]);
        if text(&s["Condition"]).contains("PROJECT#") {
            assert!(!actions.contains("UpdateItem") && !actions.contains("PutItem"), "{actions}");
        }
    }
    // …and the worker is told to assume it (it then narrows it to its own queues and client).
    let c = &t["Resources"]["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"][0];
    let env: Vec<String> = list(&c["Environment"]).iter().map(|e| text(&e["Name"])).collect();
    assert!(env.contains(&"SWITCHYARD_WORKER_ROLE_ARN".to_string()), "{env:?}");
}

#[test]
fn a_container_that_gives_up_launching_raises_the_alarm() {
    // Every handler that launches counts `ContainersGaveUp` under its own `Source`; the
    // alarm must sum them all, or a give-up seen by one of them goes unnoticed.
    let t = template();
    let alarm = &t["Resources"]["ContainersGaveUpAlarm"]["Properties"];
    let metrics = list(&alarm["Metrics"]);
    let sources: BTreeSet<String> = metrics
        .iter()
        .filter(|m| text(&m["MetricStat"]["Metric"]["MetricName"]) == "ContainersGaveUp")
        .map(|m| text(&m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]))
        .collect();
    let launchers: BTreeSet<String> =
        ["api", "intake-email", "task-events", "reaper"].iter().map(|s| s.to_string()).collect();
    assert_eq!(sources, launchers);
    let expression = metrics.iter().find(|m| !m["Expression"].is_null()).map(|m| text(&m["Expression"])).unwrap();
    for m in metrics.iter().filter(|m| m["Expression"].is_null()) {
        let id = text(&m["Id"]);
        assert!(expression.contains(&id), "{id} is not in {expression}");
    }
    assert_eq!(text(&alarm["ComparisonOperator"]), "GreaterThanThreshold");
    assert!(!text(&alarm["AlarmActions"]).is_empty());
}

/// The capabilities a template needs, as CloudFormation documents them
/// (<https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html>,
/// `Capabilities`): any IAM resource needs `CAPABILITY_IAM`; one with a custom name (a
/// Role's `RoleName`, a User's `UserName`, a Group's `GroupName`, a ManagedPolicy's
/// `ManagedPolicyName`, an InstanceProfile's `InstanceProfileName`) needs
/// `CAPABILITY_NAMED_IAM`. `CAPABILITY_AUTO_EXPAND` is for macros (the SAM transform among
/// them) only when a stack is created directly, which `sam deploy` (change sets) and
/// `stack_emulator.py` (it transforms first) never do; nested applications are asked for it
/// by SAM, so one in the template counts. No engine checks this (moto and fakecloud both
/// create the stack), so it is derived here from the template.
fn capabilities_needed(t: &Value) -> BTreeSet<&'static str> {
    let named = [
        ("AWS::IAM::Role", "RoleName"),
        ("AWS::IAM::User", "UserName"),
        ("AWS::IAM::Group", "GroupName"),
        ("AWS::IAM::ManagedPolicy", "ManagedPolicyName"),
        ("AWS::IAM::InstanceProfile", "InstanceProfileName"),
    ];
    let mut need = BTreeSet::new();
    for (_, r) in resources(t) {
        let ty = r["Type"].as_str().unwrap_or_default();
        if ty.starts_with("AWS::IAM::") {
            need.insert("CAPABILITY_IAM");
            if named.iter().any(|(t, n)| *t == ty && !r["Properties"][n].is_null()) {
                need.insert("CAPABILITY_NAMED_IAM");
            }
        }
        if ty == "AWS::CloudFormation::Stack" || ty == "AWS::Serverless::Application" {
            need.insert("CAPABILITY_AUTO_EXPAND");
        }
    }
    need
}

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).expect(path)
}

#[test]
fn make_deploy_acknowledges_every_capability_the_template_needs() {
    let need = capabilities_needed(&template());
    assert!(need.contains("CAPABILITY_NAMED_IAM"), "WorkerScopedRole is named: {need:?}");
    // The Makefile's list, passed to both sam deploy lines (guided and not).
    let makefile = repo_file("Makefile");
    let line = makefile.lines().find(|l| l.starts_with("CAPABILITIES :=")).expect("CAPABILITIES in the Makefile");
    let given: BTreeSet<&str> = line.trim_start_matches("CAPABILITIES :=").split_whitespace().collect();
    let deploys: Vec<&str> = makefile.lines().filter(|l| l.contains("=0 sam deploy")).collect();
    assert_eq!(deploys.len(), 2, "guided and saved");
    for d in deploys {
        assert!(d.contains("--capabilities $(CAPABILITIES)"), "sam deploy without the capabilities: {d}");
    }
    // samconfig.toml's saved answer, and what the stack tests deploy with, say the same.
    let samconfig = repo_file("infra/samconfig.toml");
    let saved = samconfig.lines().find(|l| l.starts_with("capabilities")).expect("capabilities in samconfig");
    let saved: BTreeSet<&str> = saved.split('"').nth(1).unwrap_or_default().split_whitespace().collect();
    let script = repo_file("scripts/stack_emulator.py");
    let stack = script.lines().find(|l| l.starts_with("CAPABILITIES =")).expect("CAPABILITIES in stack_emulator.py");
    let stack: BTreeSet<&str> = stack.split('"').skip(1).step_by(2).collect();
    for (what, set) in [("Makefile", &given), ("samconfig.toml", &saved), ("stack_emulator.py", &stack)] {
        let missing: Vec<_> = need.iter().filter(|c| !set.contains(*c)).collect();
        assert!(missing.is_empty(), "{what} does not acknowledge {missing:?} (InsufficientCapabilities on AWS)");
    }
}

/// The worker's start-up calls (`sts:AssumeRole` of its scoped role, `ssm:GetParameter` of
/// project secrets) need their endpoints in private subnets: the deploy parameter says so.
#[test]
fn private_subnets_are_told_every_endpoint_the_worker_calls() {
    let t = template();
    let help = text(&t["Parameters"]["AssignPublicIp"]["Description"]);
    for service in ["SQS", "DynamoDB", "ECR", "S3", "CloudWatch Logs", "STS", "SSM"] {
        assert!(help.contains(service), "AssignPublicIp does not name {service}: {help}");
    }
}
