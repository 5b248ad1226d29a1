//! version: print the version.

use crate::VERSION;
use crate::error::Result;

pub fn run() -> Result<i32> {
    println!("pgkeep {VERSION}");
    Ok(0)
}
