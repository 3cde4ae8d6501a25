//! The `weir` command line: argument parsing and one module per command group. The binary
//! (`src/main.rs`) parses the arguments and runs the command it names.

pub mod arguments;
pub mod commands;
#[cfg(fuzzing)]
pub mod fuzzing;
