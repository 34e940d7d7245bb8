//! tramontane: GitOps for Mistral AI organizations.
//!
//! One policy, two ways out. The pipe runs one way; each stage imports only the ones before
//! it ([`model`] is the floor every stage stands on):
//!
//! ```text
//! policy ─> model::DesiredOrg ─┬─> plan::diff ─> plan::Change ─> apply ─> provider::Operation ─> Admin API
//!                 provider::read ┘        (live org)
//!                              └─> runtime::Runtime ─> plan's `runtime` section, access (diff)
//!                                                  └─> tramontane-gateway: access::Grant ─> enforce
//! ```
//!
//! - **A policy line becomes an Admin API call**: [`policy`] loads and checks the YAML into a
//!   [`model::DesiredOrg`]; [`org`] opens the organization a command chooses and [`planning`]
//!   reads it ([`provider`]) and diffs the two into a plan ([`plan`]) of typed changes;
//!   [`apply`] turns each change into [`provider::Operation`]s, one per Admin API write, which
//!   `provider::mistral::operations` sends (or `provider::sandbox` records).
//! - **A policy line becomes a gateway decision**: what the platform cannot enforce (model
//!   lists, rates, token budgets, spend guards) is resolved once into each caller's effective
//!   access, [`runtime::Runtime`]. The plan carries it in its `runtime` section and shows
//!   changes to it, [`access`] words it for `tramontane diff`, and the `tramontane-gateway`
//!   crate turns each gateway key's limits into the rules it judges every request by.
//!
//! [`render`] shows every result. The library never prints: the `tramontane-cli` crate is the
//! thin command line over all of it, turning flags into configuration and results into text.

pub mod access;
pub mod apply;
pub mod clock;
pub mod gateway_key;
pub mod github;
pub mod hygiene;
pub mod model;
pub mod org;
pub mod plan;
pub mod planning;
pub mod policy;
pub mod provider;
pub mod render;
pub mod repository;
pub mod runtime;
pub mod scaffold;
pub mod scan;
pub mod tls;
pub mod usage;
