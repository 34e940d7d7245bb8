//! tramontane: GitOps for Mistral AI organizations.
//!
//! The pipeline runs one way: [`policy`] loads and checks the YAML into a [`model::DesiredOrg`];
//! [`org`] opens the organization a command chooses and [`planning`] reads it and diffs the
//! two into a plan ([`plan`]), which [`apply`] carries out; [`render`] shows every result.
//! The library never prints: the `tramontane-cli` crate is the thin command line over all
//! of it, turning flags into configuration and results into text.

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
