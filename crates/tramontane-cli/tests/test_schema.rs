use serde_json::Value;

use tramontane_testkit::{TestDir, repo_root};

#[test]
fn schema_prints_the_bundled_schema() {
    let run = TestDir::new().test().arg("schema").expect_code(0).run();
    let on_disk = std::fs::read_to_string(repo_root().join("schema/policy.schema.json")).unwrap();
    assert_eq!(run.stdout, on_disk);
    let schema: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

/// Editors show descriptions on hover and completion: every property must have one, and
/// every mapping must be closed so that typos are caught.
#[test]
fn every_property_is_described_and_every_object_closed() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("schema/policy.schema.json")).unwrap(),
    )
    .unwrap();
    let mut missing = Vec::new();
    let mut pending = vec![("#".to_owned(), &schema)];
    while let Some((path, node)) = pending.pop() {
        let Some(object) = node.as_object() else {
            continue;
        };
        if let Some(Value::Object(properties)) = object.get("properties") {
            if object.get("additionalProperties") != Some(&Value::Bool(false)) {
                missing.push(format!("{path}: not closed (additionalProperties: false)"));
            }
            for (name, property) in properties {
                if property.get("description").is_none() {
                    missing.push(format!("{path}/properties/{name}: no description"));
                }
            }
        }
        for (key, child) in object {
            pending.push((format!("{path}/{key}"), child));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// `store_failure` says what `fail_open` really does: requests are counted per replica in
/// memory while the shared store fails, not let through uncounted.
#[test]
fn store_failure_says_fail_open_counts_per_replica() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("schema/policy.schema.json")).unwrap(),
    )
    .unwrap();
    let mut pending = vec![&schema];
    let mut descriptions = Vec::new();
    while let Some(node) = pending.pop() {
        match node {
            Value::Object(object) => {
                if let Some(description) = object
                    .get("properties")
                    .and_then(|properties| properties.get("store_failure"))
                    .and_then(|property| property.get("description"))
                    .and_then(Value::as_str)
                {
                    descriptions.push(description.to_owned());
                }
                pending.extend(object.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    assert!(!descriptions.is_empty());
    for description in descriptions {
        assert!(
            description.contains("each replica's own memory"),
            "{description}"
        );
        assert!(!description.contains("through unmetered"), "{description}");
    }
}
