//! The one integration test binary: every module here runs the real `tramontane` binary
//! (through `tramontane_testkit::Test`) or the library's public API.

mod test_action;
mod test_apply;
mod test_audit;
mod test_audit_activity;
mod test_audit_findings;
mod test_audit_unmetered;
mod test_comment;
mod test_diff;
mod test_example;
mod test_exit_codes;
mod test_explain;
mod test_fixtures;
mod test_gateway;
mod test_gateway_alerts;
mod test_gateway_hardening;
mod test_gateway_keys;
mod test_gateway_money;
mod test_gateway_paths;
mod test_gateway_replicas;
mod test_hostile;
mod test_init;
mod test_mistral;
mod test_models;
mod test_pacing;
mod test_paths;
mod test_plan;
mod test_readme;
mod test_roundtrip;
mod test_sandbox;
mod test_scan;
mod test_schema;
mod test_validate;
mod test_workflows;
