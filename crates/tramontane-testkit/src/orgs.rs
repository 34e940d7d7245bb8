//! Organizations the tests start from, built through the sandbox's own operations so they
//! keep every rule the API keeps.

use tramontane::provider::sandbox::{SandboxOrg, demo_org};
use tramontane::provider::{Operation, Outcome};

use crate::test::TODAY;

/// The demo org on [`TODAY`].
pub fn demo() -> SandboxOrg {
    demo_org(TODAY.parse().expect("TODAY is a date"))
}

/// The demo org grown past every page size the API allows, so every list takes several
/// pages: 2,100 more members (150 of them in one team), 130 more teams and 1,050 keys.
pub fn demo_past_every_page_size() -> SandboxOrg {
    let mut org = demo();
    let now = "2026-05-01T12:00:00Z";
    let workspace = org
        .workspaces
        .iter()
        .find(|(_, w)| w.name == "ml-workspace")
        .map(|(id, _)| id.clone())
        .expect("the demo org has ml-workspace");
    let mut people = Vec::new();
    for i in 0..2_100 {
        let outcome = org.perform(
            Operation::CreateUser {
                email: format!("p{i}@bulk.example"),
                first_name: "P".into(),
                last_name: format!("{i}"),
                roles: vec!["member".into()],
            },
            now,
        );
        if let Ok(Outcome::Created(id)) = outcome {
            people.push(id);
        }
    }
    let mut first_team = String::new();
    for i in 0..130 {
        if let Ok(Outcome::Created(id)) = org.perform(
            Operation::CreateGroup {
                name: format!("bulk-{i:03}"),
                description: String::new(),
            },
            now,
        ) && first_team.is_empty()
        {
            first_team = id;
        }
    }
    org.perform(
        Operation::AddGroupMembers {
            group: first_team,
            users: people[..150].to_vec(),
        },
        now,
    )
    .expect("the bulk team takes its members");
    for i in 0..1_050 {
        org.perform(
            Operation::CreateKey {
                workspace: workspace.clone(),
                user: people[0].clone(),
                name: format!("bulk-{i}"),
                expiration: None,
                known: Vec::new(),
            },
            now,
        )
        .expect("the bulk keys are created");
    }
    org
}

/// The user ids of [`three_people`]'s members.
pub struct People {
    pub alice: String,
    pub bob: String,
    pub carol: String,
}

/// An org made at `now` by alice@acme.example (Alice Martin, its admin), with
/// bob@acme.example (Bob Stone) and carol@acme.example (Carol Diaz) as members.
pub fn three_people(now: &str) -> (SandboxOrg, People) {
    let mut org = SandboxOrg::new("alice@acme.example", "Alice Martin", now);
    let mut user = |email: &str, first: &str, last: &str| match org
        .perform(
            Operation::CreateUser {
                email: email.into(),
                first_name: first.into(),
                last_name: last.into(),
                roles: vec!["member".into()],
            },
            now,
        )
        .expect("a new member is created")
    {
        Outcome::Created(id) => id,
        other => panic!("creating {email} answered {other:?}"),
    };
    let bob = user("bob@acme.example", "Bob", "Stone");
    let carol = user("carol@acme.example", "Carol", "Diaz");
    let alice = org
        .users
        .iter()
        .find(|(_, user)| user.email == "alice@acme.example")
        .map(|(id, _)| id.clone())
        .expect("the org's maker is a member");
    (org, People { alice, bob, carol })
}
