//! The pgkeep binary: parse the command line, set up logging, run the command, and turn the
//! outcome into an exit code. Nothing else lives here, except, in test builds with the
//! `failpoints` feature, arming the failpoint that `PGKEEP_FAILPOINT` names.

use pgkeep::config;
use pgkeep::log;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(key, _)| key != failpoint::ENV)
        .collect();
    let code = match config::parse(&args, &env) {
        Ok(cfg) => {
            log::init(cfg.log_settings());
            for warning in cfg.warnings() {
                log::log(log::Level::Warn, 0, warning);
            }
            failpoint::arm();
            pgkeep::command::main(&cfg)
        }
        Err(err) => {
            log::init(log::LogSettings::default());
            log::log_error_value(&err);
            err.kind().exit_code()
        }
    };
    std::process::exit(code);
}

/// Crash tests: `PGKEEP_FAILPOINT=<name>[:<hit>]` makes the process kill itself with SIGKILL
/// the `<hit>`th time (default the first) it passes `fail::fail_point!("<name>")`, as `kill -9`
/// would at that instant: no destructor, no cleanup, no buffered write. The variable is kept
/// out of the option parser (it is not an option, and would be warned about as one).
mod failpoint {
    /// The variable that names the failpoint to die at.
    pub const ENV: &str = "PGKEEP_FAILPOINT";

    /// Without the `failpoints` feature the macros compile to nothing: there is nothing to arm.
    #[cfg(not(feature = "failpoints"))]
    pub fn arm() {}

    #[cfg(feature = "failpoints")]
    pub fn arm() {
        use std::sync::atomic::{AtomicU64, Ordering};

        let Ok(spec) = std::env::var(ENV) else {
            return;
        };
        let (name, hit) = match spec.split_once(':') {
            Some((name, hit)) => (name.to_string(), hit.parse::<u64>().unwrap_or(1)),
            None => (spec.clone(), 1),
        };
        let seen = AtomicU64::new(0);
        let shown = name.clone();
        let armed = fail::cfg_callback(name, move || {
            if seen.fetch_add(1, Ordering::SeqCst) + 1 < hit {
                return;
            }
            // The line a test looks for to know the process died here and not elsewhere.
            pgkeep::log::log(
                pgkeep::log::Level::Warn,
                0,
                &format!("failpoint '{shown}' reached (hit {hit}): killing the process"),
            );
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        });
        if let Err(err) = armed {
            pgkeep::log::log(
                pgkeep::log::Level::Warn,
                0,
                &format!("unable to arm failpoint '{spec}': {err}"),
            );
        }
    }
}
