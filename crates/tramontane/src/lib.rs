//! tramontane: GitOps for Mistral AI organizations.
//!
//! The pipeline runs one way: [`policy`] loads and checks the YAML into a [`model::DesiredOrg`];
//! later stages diff it against the live organization into a plan and apply it; [`render`]
//! shows every result; the `tramontane-cli` crate is the thin command line over all of it.

pub mod access;
pub mod apply;
pub mod gateway_key;
pub mod github;
pub mod model;
pub mod org;
pub mod plan;
pub mod policy;
pub mod provider;
pub mod render;
pub mod repository;
pub mod runtime;
pub mod scaffold;
pub mod scan;
