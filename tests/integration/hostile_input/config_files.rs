//! Configuration files: the INI grammar and the options they set (`config::parse`).

use super::*;

const CONFIG: &str = "[global]\nrepo1-path=/var/lib/pgkeep\nrepo1-retention-full=2\n\
    process-max=4\nbuffer-size=1MiB\nlog-level-console=info\nstart-fast=y\n\
    compress-type=zst\nrecovery-option=a=b\n\n[demo]\npg1-path=/var/lib/postgresql/15/main\n\
    pg1-port=5432\n\n[demo:backup]\ntype=full\n";

fn parse_config(dir: &Path, bytes: &[u8]) {
    let file = dir.join("pgkeep.conf");
    std::fs::write(&file, bytes).unwrap();
    let args: Vec<String> = [
        format!("--config={}", file.display()),
        "--stanza=demo".to_string(),
        "backup".to_string(),
    ]
    .into();
    let _ = bounded("config", || pgkeep::config::parse(&args, &[]).map(drop));
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_files_never_panic(
        edits in edits(),
        random in random_bytes(),
        pick in 0..3u8,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let bytes = match pick {
            0 => apply(CONFIG.as_bytes(), &edits),
            1 => random,
            // Valid text lines in a random order and number: grammar, not bytes.
            _ => {
                let lines: Vec<&str> = CONFIG.lines().collect();
                random
                    .iter()
                    .map(|b| lines[usize::from(*b) % lines.len()])
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes()
            }
        };
        parse_config(dir.path(), &bytes);
    }
}

/// The seed is a configuration pgkeep accepts: the mutations start from valid input.
#[test]
fn the_seed_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgkeep.conf");
    std::fs::write(&file, CONFIG).unwrap();
    let args: Vec<String> = [
        format!("--config={}", file.display()),
        "--stanza=demo".to_string(),
        "backup".to_string(),
    ]
    .into();
    pgkeep::config::parse(&args, &[]).unwrap();
}
