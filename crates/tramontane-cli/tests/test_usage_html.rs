//! The HTML usage report as a browser renders it: headless Chromium (from
//! `TRAMONTANE_TEST_CHROMIUM`, else `chromium` on the PATH; the test fails if there is none)
//! loads the file with nothing fetched and dumps the DOM it built; the numbers in it must be
//! the JSON report's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("TRAMONTANE_TEST_CHROMIUM") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no Chromium to render the HTML report: install Debian's `chromium` package (scripts/test does), or set TRAMONTANE_TEST_CHROMIUM"
            )
        })
}

/// The DOM Chromium built from `file`, serialized.
pub(crate) fn dump_dom(file: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("Chromium starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("Chromium did not render the report within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "Chromium failed: {}",
        output.status
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The `data-` attributes of every element whose class is `class`, in document order.
fn elements(dom: &str, class: &str) -> Vec<Vec<(String, String)>> {
    let marker = format!("class=\"{class}\"");
    dom.match_indices(&marker)
        .map(|(at, _)| {
            let tag = &dom[at..at + dom[at..].find('>').unwrap()];
            tag.split(" data-")
                .skip(1)
                .filter_map(|attribute| {
                    let (name, value) = attribute.split_once("=\"")?;
                    Some((name.to_owned(), value.split('"').next()?.to_owned()))
                })
                .collect()
        })
        .collect()
}

fn get<'a>(attributes: &'a [(String, String)], name: &str) -> &'a str {
    attributes
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no data-{name} in {attributes:?}"))
}

/// Every rule's burn-down row and every day's bar hold the JSON report's numbers.
pub(crate) fn assert_dom_matches(dom: &str, report: &Value) {
    assert!(dom.contains("<svg"), "the page has its charts: {dom}");
    let rows = elements(dom, "rule");
    let rules = report["rules"].as_array().unwrap();
    assert_eq!(rows.len(), rules.len(), "one row per rule");
    for (row, rule) in rows.iter().zip(rules) {
        assert_eq!(get(row, "id"), rule["id"].as_str().unwrap());
        for field in ["used", "limit", "left"] {
            assert_eq!(
                get(row, field),
                rule[field].to_string(),
                "{field} of {}",
                rule["id"]
            );
        }
        assert_eq!(
            get(row, "percent").parse::<f64>().unwrap(),
            rule["percent"].as_f64().unwrap()
        );
    }
    let bars = elements(dom, "day");
    let days = report["days"].as_array().unwrap();
    assert_eq!(bars.len(), days.len(), "one bar per day");
    for (bar, day) in bars.iter().zip(days) {
        assert_eq!(get(bar, "day"), day["day"].as_str().unwrap());
        assert_eq!(get(bar, "spend-micros"), day["spend_micros"].to_string());
    }
}
