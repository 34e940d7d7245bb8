//! The checks of the `alerts:` section the schema cannot make: thresholds in ascending
//! order, and no URL written in the policy (the schema lets a string through so that this
//! check, not a type error, says where the URL belongs).

use super::diagnostic::{Code, Diagnostic};
use super::yaml::{Node, Value};

/// Problems of one `alerts:` section, with where they are written.
pub(super) fn check(section: &Node) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    if let Some(thresholds) = section.get("thresholds") {
        let mut previous: Option<i64> = None;
        for item in thresholds.value.items() {
            let Value::Int(percent) = item.value else {
                continue;
            };
            // Repeats and values out of 1..=100 are the schema's to report.
            if let Some(before) = previous
                && percent < before
            {
                found.push(
                    Diagnostic::new(
                        Code::AlertThresholdOrder,
                        format!("alert threshold {percent} comes after {before}"),
                    )
                    .at(item.span)
                    .label("out of order")
                    .help("list the thresholds in ascending order, such as `[50, 80, 95]`"),
                );
            }
            previous = Some(previous.map_or(percent, |before| before.max(percent)));
        }
    }
    if let Some(destinations) = section.get("destinations") {
        for destination in destinations.value.entries() {
            let Some(url) = destination.value.get("url") else {
                continue;
            };
            if let Value::Str(_) = url.value.value {
                let variable = format!(
                    "ALERT_{}_URL",
                    destination
                        .key
                        .to_uppercase()
                        .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                );
                // The URL itself is never repeated: the diagnostic may end up in a CI log.
                found.push(
                    Diagnostic::new(
                        Code::SecretInPolicy,
                        format!(
                            "alert destination `{}` has its URL written in the policy; a webhook URL is a secret",
                            destination.key
                        ),
                    )
                    .at(url.value.span)
                    .label("a secret in the policy")
                    .help(format!(
                        "give the gateway the URL in an environment variable and write `url: {{ env: {variable} }}` (or keep it in a file and write `url: {{ file: /path/to/file }}`); rotate the URL committed here"
                    )),
                );
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use crate::model::{AlertKind, SecretSource};
    use crate::policy::diagnostic::Code;
    use crate::policy::{LoadOptions, LoadedPolicy, PolicyText, load_texts};

    fn load(yaml: &str) -> LoadedPolicy {
        let options = LoadOptions::new("2026-11-26".parse().unwrap());
        load_texts(
            "policies",
            vec![PolicyText {
                display: "policies/alerts.yaml".into(),
                bytes: format!("version: 1\n{yaml}").into_bytes(),
            }],
            &options,
        )
    }

    fn codes(loaded: &LoadedPolicy) -> Vec<&str> {
        loaded.diagnostics.iter().map(|d| d.code.as_str()).collect()
    }

    #[test]
    fn a_valid_section_loads() {
        let loaded = load(
            "alerts:\n  thresholds: [25, 90]\n  destinations:\n    ops:\n      kind: webhook\n      url: { env: OPS_ALERTS_URL }\n    chat:\n      kind: slack\n      url: { file: /run/secrets/slack-url }\n",
        );
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        let alerts = &loaded.desired.alerts;
        assert_eq!(alerts.thresholds(), vec![25, 90]);
        assert_eq!(alerts.destinations["chat"].kind, AlertKind::Slack);
        assert_eq!(
            alerts.destinations["ops"].url,
            SecretSource::Env("OPS_ALERTS_URL".into())
        );
    }

    #[test]
    fn a_url_in_the_policy_is_refused_with_where_to_put_it() {
        let loaded = load(
            "alerts:\n  destinations:\n    ops:\n      kind: webhook\n      url: https://hooks.example/T000/secret\n",
        );
        assert_eq!(codes(&loaded), vec!["E053"]);
        let diagnostic = &loaded.diagnostics[0];
        let help = diagnostic.help.as_deref().unwrap_or_default();
        assert!(help.contains("env: ALERT_OPS_URL"), "{help}");
        assert!(!format!("{diagnostic:?}").contains("T000/secret"));
        let span = diagnostic.span.expect("a place");
        assert_eq!((span.start.line, span.start.column), (6, 12));
    }

    #[test]
    fn thresholds_are_checked() {
        let unsorted = load("alerts:\n  thresholds: [80, 50, 95]\n");
        assert_eq!(codes(&unsorted), vec!["E052"]);
        assert_eq!(unsorted.diagnostics[0].code, Code::AlertThresholdOrder);
        assert_eq!(
            codes(&load("alerts:\n  thresholds: [50, 50]\n")),
            vec!["E013"]
        );
        assert_eq!(
            codes(&load("alerts:\n  thresholds: [0, 50]\n")),
            vec!["E013"]
        );
        assert_eq!(
            codes(&load("alerts:\n  thresholds: [50, 101]\n")),
            vec!["E013"]
        );
        let twice = load_texts(
            "policies",
            vec![
                PolicyText {
                    display: "policies/a.yaml".into(),
                    bytes: b"version: 1\nalerts: {}\n".to_vec(),
                },
                PolicyText {
                    display: "policies/b.yaml".into(),
                    bytes: b"version: 1\nalerts: {}\n".to_vec(),
                },
            ],
            &LoadOptions::new("2026-11-26".parse().unwrap()),
        );
        assert_eq!(codes(&twice), vec!["E020"]);
    }
}
