//! Everything tramontane shows people, in every format it shows it.

pub mod apply;
pub mod diagnostics;
pub mod plan;
pub mod untrusted;
