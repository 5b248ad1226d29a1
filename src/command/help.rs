//! help: usage, a command's options, or one option, generated from the option table.

use crate::config::{Config, help};
use crate::error::Result;

pub fn run(cfg: &Config) -> Result<i32> {
    print!("{}", help::render(cfg.help_topic())?);
    Ok(0)
}
