//! The pgkeep binary: parse the command line, set up logging, run the command, and turn the
//! outcome into an exit code. Nothing else lives here.

use pgkeep::config;
use pgkeep::log;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let code = match config::parse(&args, &env) {
        Ok(cfg) => {
            log::init(cfg.log_settings());
            for warning in cfg.warnings() {
                log::log(log::Level::Warn, 0, warning);
            }
            match pgkeep::command::run(&cfg) {
                Ok(code) => code,
                Err(err) => {
                    log::log_error_value(&err);
                    err.kind().exit_code()
                }
            }
        }
        Err(err) => {
            log::init(log::LogSettings::default());
            log::log_error_value(&err);
            err.kind().exit_code()
        }
    };
    std::process::exit(code);
}
