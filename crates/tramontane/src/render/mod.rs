//! Stage: rendering, at the end of every command (policy diagnostics, plans, apply
//! reports). Everything tramontane shows people, in every format it shows it.

pub mod apply;
pub mod diagnostics;
pub mod models;
pub mod plan;
pub mod untrusted;
