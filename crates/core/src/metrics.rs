//! CloudWatch Embedded Metric Format (EMF) lines: one JSON object per line on stdout,
//! turned into metrics by CloudWatch Logs (Lambda and awslogs both forward stdout).

use serde_json::{json, Map, Value};

/// The namespace of every Switchyard metric (the template's alarms use it).
pub const NAMESPACE: &str = "Switchyard";

/// One metric value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric<'a> {
    /// Name (`RoutedMessages`, `JobDuration`, …).
    pub name: &'a str,
    /// Value.
    pub value: f64,
    /// CloudWatch unit (`Count`, `Milliseconds`).
    pub unit: &'a str,
}

/// An EMF log line with the given dimensions and metrics.
pub fn emf_line(dimensions: &[(&str, &str)], metrics: &[Metric<'_>], timestamp_ms: u64) -> String {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": metrics.iter().map(|m| json!({"Name": m.name, "Unit": m.unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (k, v) in dimensions {
        root.insert((*k).into(), Value::String((*v).into()));
    }
    for m in metrics {
        root.insert(m.name.into(), json!(m.value));
    }
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_shape() {
        let line =
            emf_line(&[("Function", "intake")], &[Metric { name: "RoutedMessages", value: 1.0, unit: "Count" }], 7);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0], "Function");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "RoutedMessages");
        assert_eq!(
            (v["Function"].as_str(), v["RoutedMessages"].as_f64(), v["_aws"]["Timestamp"].as_u64()),
            (Some("intake"), Some(1.0), Some(7))
        );
    }
}
