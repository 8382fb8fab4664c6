//! One module per subcommand.

pub mod cache;
pub mod info;
pub mod run;
