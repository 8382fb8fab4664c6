//! One module per subcommand.

pub mod bench;
pub mod cache;
pub mod info;
pub mod run;
