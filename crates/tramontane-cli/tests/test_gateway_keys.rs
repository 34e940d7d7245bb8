//! `tramontane gateway issue` and `revoke`: a key minted, delivered once, written into the
//! policy as a digest that matches it, and removed again, with the secret nowhere else.

use std::path::Path;

use jiff::civil::Date;
use tramontane::gateway_key::{self, VerifyError};
use tramontane::model::{GatewayKeyId, Holder};
use tramontane::policy::{self, LoadOptions, LoadedPolicy};

use crate::common::{Run, TODAY, TestEnv};

const KEYS_FILE: &str = "policies/gateway-keys.yaml";

fn today() -> Date {
    TODAY.parse().unwrap()
}

fn load(env: &TestEnv) -> LoadedPolicy {
    policy::load(&env.root().join("policies"), &LoadOptions::new(today()))
}

fn read(env: &TestEnv, relative: &str) -> String {
    std::fs::read_to_string(env.root().join(relative)).unwrap()
}

/// The key a file sink received, without the line break the sink adds.
fn delivered(env: &TestEnv, relative: &str) -> String {
    read(env, relative).trim_end().to_owned()
}

/// Neither stream of a run shows the key, nor any long stretch of its secret.
fn assert_secret_absent(run: &Run, key: &str) {
    let (_, secret) = gateway_key::parse(key).unwrap();
    for stream in [&run.stdout, &run.stderr] {
        assert!(!stream.contains(key), "the key leaked: {stream}");
        assert!(
            !stream.contains(&secret.expose()[..16]),
            "part of the secret leaked: {stream}"
        );
    }
}

/// The public id in `Issued gateway key `<id>` ...`.
fn issued_id(run: &Run) -> GatewayKeyId {
    let rest = run
        .stdout
        .strip_prefix("Issued gateway key `")
        .unwrap_or_else(|| panic!("unexpected output: {}{}", run.stdout, run.stderr));
    GatewayKeyId::parse(&rest[..rest.find('`').unwrap()]).unwrap()
}

#[test]
fn issue_validate_match_revoke_validate() {
    let env = TestEnv::with_example_policies();
    let original = read(&env, KEYS_FILE);

    let run = env.run(&[
        "gateway",
        "issue",
        "--member",
        "erin.walsh@acme.example",
        "--workspace",
        "dev-workspace",
        "--description",
        "Erin's laptop: IDE",
        "--sink",
        "file:secrets/gateway/erin.key",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let id = issued_id(&run);
    let key = delivered(&env, "secrets/gateway/erin.key");
    assert!(key.starts_with(&format!("tmt_{id}_")));
    assert_secret_absent(&run, &key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.root().join("secrets/gateway/erin.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    insta::assert_snapshot!(run.stdout.replace(id.as_str(), "<id>"), @r#"
    Issued gateway key `<id>` for erin.walsh@acme.example in workspace `dev-workspace`, delivered to `secrets/gateway/erin.key`; it stops working on 2026-08-30 (UTC).
    Its digest is now in policies/gateway-keys.yaml. The key works once that change is merged and the gateway has reloaded the policy:
      git add policies/gateway-keys.yaml
      git commit -m "Gateway key <id> for erin.walsh@acme.example in dev-workspace"
    "#);

    // The file gained the entry and nothing else changed.
    let with_entry = read(&env, KEYS_FILE);
    assert!(with_entry.starts_with(&original), "{with_entry}");
    let added = &with_entry[original.len()..];
    assert!(!added.contains(&key));
    let digest = tramontane::model::KeyDigest::of(&key);
    assert_eq!(
        added,
        format!(
            "  {id}:\n    digest: {digest}\n    holder: erin.walsh@acme.example\n    workspace: dev-workspace\n    expires: 2026-08-30\n    description: \"Erin's laptop: IDE\"\n"
        )
    );

    let validate = env.run(&["validate"]);
    assert_eq!(validate.code, 0, "{}", validate.stdout);

    // The digest in the policy is the delivered key's: the gateway's check accepts it.
    let loaded = load(&env);
    let (found, entry) = gateway_key::verify(&loaded.desired.gateway_keys, &key, today()).unwrap();
    assert_eq!(found, &id);
    assert_eq!(
        entry.holder,
        Holder::Member("erin.walsh@acme.example".into())
    );
    assert_eq!(entry.workspace, "dev-workspace");

    let revoke = env.run(&["gateway", "revoke", id.as_str()]);
    assert_eq!(revoke.code, 0, "{}", revoke.stderr);
    insta::assert_snapshot!(revoke.stdout.replace(id.as_str(), "<id>"), @r#"
    Removed gateway key `<id>` (erin.walsh@acme.example in workspace `dev-workspace`) from policies/gateway-keys.yaml.
    The key stops working once this change is merged and the gateway has reloaded the policy:
      git add policies/gateway-keys.yaml
      git commit -m "Revoke gateway key <id>"
    "#);
    assert_eq!(read(&env, KEYS_FILE), original);
    let validate = env.run(&["validate"]);
    assert_eq!(validate.code, 0, "{}", validate.stdout);
    assert_eq!(
        gateway_key::verify(&load(&env).desired.gateway_keys, &key, today()),
        Err(VerifyError::UnknownId(id))
    );
}

#[test]
fn a_service_key_is_issued_through_a_command_sink() {
    let env = TestEnv::with_example_policies();
    let run = env.run(&[
        "gateway",
        "issue",
        "--key",
        "workspace.prod-workspace.key.ci-deploy",
        "--days",
        "30",
        "--sink",
        "command:sh -c cat>service.key",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let id = issued_id(&run);
    let key = delivered(&env, "service.key");
    assert_secret_absent(&run, &key);
    assert!(run.stdout.contains("delivered to the stdin of `sh`"));
    let loaded = load(&env);
    assert!(loaded.is_valid());
    let (_, entry) = gateway_key::verify(&loaded.desired.gateway_keys, &key, today()).unwrap();
    assert_eq!(
        entry.holder,
        Holder::service_key("prod-workspace", "ci-deploy")
    );
    assert_eq!(entry.expires, Date::constant(2026, 7, 1));
    assert_eq!(loaded.desired.gateway_keys.len(), 3, "{id}");
}

#[test]
fn a_policy_without_the_section_gets_a_new_file_and_an_empty_section_takes_entries() {
    let env = TestEnv::with_example_policies();
    std::fs::remove_file(env.root().join(KEYS_FILE)).unwrap();
    let run = env.run(&[
        "gateway",
        "issue",
        "--member",
        "bob.stone@acme.example",
        "--workspace",
        "dev-workspace",
        "--expires",
        "2026-12-01",
        "--sink",
        "file:bob.key",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let id = issued_id(&run);
    assert!(read(&env, KEYS_FILE).contains(&format!("gateway_keys:\n  {id}:\n")));
    assert_eq!(env.run(&["validate"]).code, 0);

    // Revoking the only key leaves `gateway_keys: {}`, still valid, and issuing fills it.
    assert_eq!(env.run(&["gateway", "revoke", id.as_str()]).code, 0);
    assert!(read(&env, KEYS_FILE).contains("gateway_keys: {}\n"));
    assert_eq!(env.run(&["validate"]).code, 0);
    let again = env.run(&[
        "gateway",
        "issue",
        "--member",
        "bob.stone@acme.example",
        "--workspace",
        "dev-workspace",
        "--sink",
        "file:bob.key",
    ]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(load(&env).desired.gateway_keys.len(), 1);
}

/// Runs a refused issue and checks that nothing happened: no key delivered, policy untouched.
fn refused_issue(env: &TestEnv, args: &[&str]) -> Run {
    let before = read(env, KEYS_FILE);
    let mut full = vec!["gateway", "issue"];
    full.extend_from_slice(args);
    let run = env.run(&full);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(read(env, KEYS_FILE), before);
    assert!(!env.root().join("refused.key").exists());
    run
}

#[test]
fn without_a_sink_the_key_is_shown_only_to_a_terminal() {
    let env = TestEnv::with_example_policies();
    let run = refused_issue(
        &env,
        &[
            "--member",
            "bob.stone@acme.example",
            "--workspace",
            "dev-workspace",
        ],
    );
    insta::assert_snapshot!(run.stderr, @r"
    error: stdout is not a terminal, and the key is printed only to a terminal
    help: give --sink file:PATH (written with mode 0600) or --sink 'command:PROGRAM ARGS...' (the key on its stdin), so the key is not left in a log or a pipe
    ");
}

#[test]
fn a_key_the_policy_would_refuse_is_never_issued() {
    let env = TestEnv::with_example_policies();
    let sink = ["--sink", "file:refused.key"];

    // A member outside the workspace.
    let mut args = vec![
        "--member",
        "jon.berg@acme.example",
        "--workspace",
        "dev-workspace",
    ];
    args.extend(sink);
    let run = refused_issue(&env, &args);
    assert!(run.stderr.contains("error[E045]"), "{}", run.stderr);
    assert!(run.stderr.ends_with(
        "error: a gateway key for `jon.berg@acme.example` in workspace `dev-workspace` would not be valid\nhelp: no key was issued; fix what the errors above say and run the command again\n"
    ), "{}", run.stderr);

    // Someone who is not a member, and a workspace that does not exist.
    let mut args = vec![
        "--member",
        "eve@acme.example",
        "--workspace",
        "dev-workspace",
    ];
    args.extend(sink);
    assert!(refused_issue(&env, &args).stderr.contains("error[E030]"));
    let mut args = vec![
        "--member",
        "bob.stone@acme.example",
        "--workspace",
        "staging",
    ];
    args.extend(sink);
    assert!(refused_issue(&env, &args).stderr.contains("error[E031]"));

    // A service key that does not exist.
    let mut args = vec!["--key", "workspace.prod-workspace.key.nope"];
    args.extend(sink);
    assert!(refused_issue(&env, &args).stderr.contains("error[E044]"));

    // A member's key in a workspace that has no upstream key to forward with.
    let mut args = vec![
        "--member",
        "carol.nguyen@acme.example",
        "--workspace",
        "ml-workspace",
    ];
    args.extend(sink);
    assert!(refused_issue(&env, &args).stderr.contains("error[E047]"));
}

#[test]
fn arguments_are_checked_before_a_key_exists() {
    let env = TestEnv::with_example_policies();
    let member = [
        "--member",
        "bob.stone@acme.example",
        "--workspace",
        "dev-workspace",
    ];
    let cases: &[(&[&str], &str)] = &[
        (
            &["--expires", "2026-06-01", "--sink", "file:refused.key"],
            "error: --expires 2026-06-01 is not after today (2026-06-01, UTC)\nhelp: give a future day, or --days N\n",
        ),
        (
            &["--sink", "vault:secret/x"],
            "error: `vault:secret/x` is not a sink\nhelp: write --sink file:PATH or --sink 'command:PROGRAM ARGS...'\n",
        ),
        (
            &["--sink", "file:"],
            "error: `--sink file:` names no file\nhelp: write --sink file:PATH\n",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = member.to_vec();
        args.extend_from_slice(extra);
        assert_eq!(refused_issue(&env, &args).stderr, *expected);
    }
    let run = refused_issue(
        &env,
        &[
            "--key",
            "workspace.prod-workspace.key.ci-deploy",
            "--workspace",
            "dev-workspace",
            "--sink",
            "file:refused.key",
        ],
    );
    insta::assert_snapshot!(run.stderr, @r"
    error: `workspace.prod-workspace.key.ci-deploy` is a key of workspace `prod-workspace`, not of `dev-workspace`
    help: a service calls in its own key's workspace: drop --workspace, or give --workspace prod-workspace
    ");
    let run = refused_issue(
        &env,
        &[
            "--member",
            "bob.stone@acme.example",
            "--sink",
            "file:refused.key",
        ],
    );
    assert!(run.stderr.contains("--workspace"), "{}", run.stderr);
}

#[test]
fn an_invalid_policy_is_fixed_before_keys_are_issued() {
    let env = TestEnv::with_example_policies();
    env.write(
        "policies/broken.yaml",
        "version: 1\nteams:\n  ops:\n    members: [nobody@acme.example]\n",
    );
    let run = refused_issue(
        &env,
        &[
            "--member",
            "bob.stone@acme.example",
            "--workspace",
            "dev-workspace",
            "--sink",
            "file:refused.key",
        ],
    );
    assert!(run.stderr.contains("error[E030]"), "{}", run.stderr);
    assert!(run.stderr.ends_with(
        "error: the policies under `policies` are not valid\nhelp: fix the errors above first, so that the new key's entry is reviewed on a valid policy\n"
    ));
}

#[test]
fn a_failed_delivery_writes_no_entry() {
    let env = TestEnv::with_example_policies();
    let run = refused_issue(
        &env,
        &[
            "--member",
            "bob.stone@acme.example",
            "--workspace",
            "dev-workspace",
            "--sink",
            "command:false",
        ],
    );
    assert!(
        run.stderr
            .starts_with("error: the key could not be delivered: "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.ends_with(
        "help: no entry was written and the key is void; fix the sink and run the command again\n"
    ));
    assert!(!run.stderr.contains("tmt_"), "{}", run.stderr);
}

#[test]
fn revoking_an_unknown_id_suggests_the_closest() {
    let env = TestEnv::with_example_policies();
    let before = read(&env, KEYS_FILE);
    let run = env.run(&["gateway", "revoke", "b7k2m9q4x1zb"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stderr, @r"
    error: no gateway key `b7k2m9q4x1zb` under `policies`
    help: did you mean `b7k2m9q4x1za`?
    ");
    let run = env.run(&["gateway", "revoke", "Not_An_Id"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("error: `Not_An_Id` is not a gateway key id")
    );
    assert_eq!(read(&env, KEYS_FILE), before);
}

#[test]
fn revoking_keeps_the_rest_of_the_file_and_works_on_a_broken_policy() {
    let env = TestEnv::with_example_policies();
    // Unrelated errors elsewhere must not keep access from being taken away.
    env.write(
        "policies/broken.yaml",
        "version: 1\nteams:\n  ops:\n    members: [nobody@acme.example]\n",
    );
    let run = env.run(&["gateway", "revoke", "b7k2m9q4x1za"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = read(&env, KEYS_FILE);
    assert!(!text.contains("b7k2m9q4x1za"));
    // The entry's own comment went with it; the file's header and the other entry stayed.
    assert!(!text.contains("# A person"));
    assert!(!text.contains("alice.martin"));
    assert!(text.starts_with("# yaml-language-server: $schema=../schema/policy.schema.json\n"));
    assert!(text.contains("  # A service: forwarded with its own platform key"));
    assert!(text.contains("  s4t8w1n6c3pe:\n"));
}

#[test]
fn a_flow_style_section_is_refused_rather_than_rewritten() {
    let env = TestEnv::with_example_policies();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let flow = format!(
        "version: 1\ngateway_keys: {{ bo-laptop: {{ digest: \"{digest}\", holder: bob.stone@acme.example, workspace: dev-workspace, expires: 2027-01-01 }} }}\n"
    );
    env.write(KEYS_FILE, &flow);
    assert_eq!(env.run(&["validate"]).code, 0);
    let run = env.run(&["gateway", "revoke", "bo-laptop"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stderr, @r"
    error: the `gateway_keys` section of `policies/gateway-keys.yaml` is not written in block style
    help: write `gateway_keys:` with one entry per indented block, as `tramontane gateway issue` writes them, or edit the entry by hand
    ");
    assert_eq!(read(&env, KEYS_FILE), flow);
    let issue = env.run(&[
        "gateway",
        "issue",
        "--member",
        "bob.stone@acme.example",
        "--workspace",
        "dev-workspace",
        "--sink",
        "file:refused.key",
    ]);
    assert_eq!(issue.code, 1);
    assert!(!Path::new(&env.root().join("refused.key")).exists());
    assert_eq!(read(&env, KEYS_FILE), flow);
}

#[test]
fn the_entry_goes_to_whichever_file_holds_the_section() {
    let env = TestEnv::with_example_policies();
    let moved = "policies/access/keys.yaml";
    std::fs::create_dir_all(env.root().join("policies/access")).unwrap();
    std::fs::rename(env.root().join(KEYS_FILE), env.root().join(moved)).unwrap();
    let run = env.run(&[
        "gateway",
        "issue",
        "--member",
        "alice.martin@acme.example",
        "--workspace",
        "dev-workspace",
        "--sink",
        "file:alice.key",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = issued_id(&run);
    assert!(run.stdout.contains("  git add policies/access/keys.yaml\n"));
    assert!(read(&env, moved).contains(&format!("  {id}:\n")));
    assert!(!env.root().join(KEYS_FILE).exists());
    assert_eq!(env.run(&["validate"]).code, 0);
}
