//! What a plan change is about and who can make it true: shared by the planner, the apply
//! engine and the providers, so none of them has to import another to name a kind.

use serde::{Deserialize, Serialize};

/// The kind of object a change or an unmanaged entry is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Organization,
    Member,
    Workspace,
    Team,
    ApiKey,
    /// What the gateway enforces for one caller: no object on the platform.
    Runtime,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Organization => "organization",
            Kind::Member => "member",
            Kind::Workspace => "workspace",
            Kind::Team => "team",
            Kind::ApiKey => "api_key",
            Kind::Runtime => "runtime",
        }
    }
}

/// Who can make an attribute true (DESIGN §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Applied through the Admin API.
    Platform,
    /// Readable through the API but set only in the console, by a person.
    Console,
    /// No such setting on the platform: enforced by the gateway.
    Runtime,
}

impl Enforcement {
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Platform => "platform",
            Enforcement::Console => "console",
            Enforcement::Runtime => "runtime",
        }
    }
}
