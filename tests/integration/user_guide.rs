//! docs/user-guide.md is executed: every ```sh block runs in order, as the postgres user, in one
//! shell environment carried from block to block, against a real PostgreSQL 15 cluster in a
//! temp dir. `exit=N` in the fence gives the expected exit code (default 0); an ```output block
//! right after lists lines that must appear in the output, with `<...>` matching anything.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::TempDir;
use crate::common::pgkeep::pgkeep_bin;

/// One runnable block of the guide.
#[derive(Debug)]
struct Block {
    line: usize,
    script: String,
    exit: i32,
    expected: Vec<String>,
}

fn parse_guide(text: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut body = String::new();
        for (_, inner) in lines.by_ref() {
            if inner.starts_with("```") {
                break;
            }
            body.push_str(inner);
            body.push('\n');
        }
        let mut words = info.split_whitespace();
        match words.next() {
            Some("sh") => {
                let exit = words
                    .find_map(|w| w.strip_prefix("exit="))
                    .map(|code| code.parse().expect("exit code in fence"))
                    .unwrap_or(0);
                blocks.push(Block {
                    line: number + 1,
                    script: body,
                    exit,
                    expected: Vec::new(),
                });
            }
            Some("output") => {
                let block = blocks
                    .last_mut()
                    .expect("an output block follows a sh block");
                block.expected.extend(
                    body.lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(str::to_string),
                );
            }
            _ => {}
        }
    }
    blocks
}

/// Whether `output` has a line containing `pattern`, where `<...>` matches any text.
fn matches(output: &str, pattern: &str) -> bool {
    let parts: Vec<&str> = split_placeholders(pattern.trim());
    output.lines().any(|line| {
        let mut rest = line;
        for part in &parts {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        true
    })
}

fn split_placeholders(pattern: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('<') {
        match rest[open..].find('>') {
            Some(close) => {
                parts.push(&rest[..open]);
                rest = &rest[open + close + 1..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// Stops the guide's clusters (primary and standby) if a failed block left them running.
struct ClusterGuard(Vec<PathBuf>);

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        for data in &self.0 {
            if !data.join("postmaster.pid").exists() {
                continue;
            }
            let _ = Command::new("runuser")
                .args([
                    "-u",
                    "postgres",
                    "--",
                    "/usr/lib/postgresql/15/bin/pg_ctl",
                    "-D",
                ])
                .arg(data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

#[test]
fn the_user_guide_runs_as_written() {
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/user-guide.md"))
            .unwrap();
    let blocks = parse_guide(&guide);
    assert!(
        blocks.len() > 20,
        "the guide has {} runnable blocks",
        blocks.len()
    );

    // The dedicated-backup-host section reaches 127.0.0.2 and 127.0.0.3 over this sshd.
    let sshd = common::sshd::Sshd::start();
    let dir = TempDir::new();
    let demo = dir.path().join("demo-root");
    std::fs::create_dir(&demo).unwrap();
    common::give_to_postgres(&demo);
    let _guard = ClusterGuard(vec![demo.join("demo"), demo.join("standby")]);
    let state = dir.path().join("env.sh");
    let bin_dir = pgkeep_bin().parent().unwrap().to_path_buf();
    std::fs::write(
        &state,
        format!(
            "export DEMO={}\nexport PGPORT={}\nexport PATH={}:/usr/bin:/bin\n\
             export SSH={}\nexport SSH_PORT={}\nexport STANDBY_PORT={}\n",
            demo.display(),
            common::free_port(),
            bin_dir.display(),
            sshd.ssh().display(),
            sshd.port(),
            common::free_port(),
        ),
    )
    .unwrap();
    common::pgkeep::chown_postgres(&state);

    for block in &blocks {
        // Each block starts from the environment the previous one left, and saves its own.
        let script = format!(
            "set -e\n. {state}\ncd {demo}\n{body}\nexport -p > {state}.next\n",
            state = state.display(),
            demo = demo.display(),
            body = block.script
        );
        let output = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                "env",
                "-i",
                "HOME=/var/lib/postgresql",
                "LC_ALL=C",
                "bash",
                "-c",
                &script,
            ])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let code = output.status.code().unwrap_or(-1);
        assert_eq!(
            code, block.exit,
            "guide line {}: exit {code}, expected {}\n{}\noutput:\n{text}",
            block.line, block.exit, block.script
        );
        if code == 0 {
            std::fs::rename(format!("{}.next", state.display()), &state).unwrap();
        }
        for pattern in &block.expected {
            assert!(
                matches(&text, pattern),
                "guide line {}: expected {pattern:?} in output:\n{text}",
                block.line
            );
        }
    }
}

#[test]
fn placeholders_match_any_text() {
    assert!(matches(
        "P00   INFO: new backup label = 20261124-010203F",
        "INFO: new backup label = <label>F"
    ));
    assert!(!matches(
        "P00   INFO: new backup label = 20261124-010203D",
        "INFO: new backup label = <label>F"
    ));
    assert!(matches("x\npgkeep 0.1.0\n", "pgkeep <version>"));
    assert!(!matches("pgkeep", "stanza: demo"));
}
