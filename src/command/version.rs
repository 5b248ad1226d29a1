//! version: print the version.

use crate::error::Result;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn run() -> Result<i32> {
    println!("pgkeep {VERSION}");
    Ok(0)
}
