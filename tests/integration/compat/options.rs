//! Options pgBackRest acts on and pgkeep does not have yet: pgkeep refuses them instead of
//! accepting and ignoring them (issue 14, item 8).
//!
//! Difference allowed here, listed in docs/compatibility.md ("repo2-* and pg2-* options"):
//! pgBackRest 2.45 has up to 256 repositories and 8 PostgreSQL hosts; pgkeep has one of each,
//! and refuses `repo2-path` (and every other index but 1) with OptionInvalid (31), wherever it
//! is given, rather than exit 0 having written to one repository only.

use std::path::Path;

use crate::common::pgkeep::{Run, chown_postgres};
use crate::common::reference::Pair;
use crate::common::run_as_postgres;

const REFUSED: &str =
    "ERROR: [031]: option 'repo2-path' is not supported yet: pgkeep has one repository (repo1)";

/// pgkeep run as postgres with `args` and the environment `env`.
fn pgkeep_with_env(pair: &Pair, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = run_as_postgres(&pair.pgkeep.bin, args, env);
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

/// Asserts the run was refused with exit 31 and `message`, and that it wrote nothing to the
/// second repository.
#[track_caller]
fn assert_refused(run: &Run, message: &str, repo2: &Path) {
    assert_eq!(run.code, 31, "{}", run.output());
    assert!(run.stderr.contains(message), "{}", run.output());
    let written: Vec<_> = std::fs::read_dir(repo2).unwrap().collect();
    assert!(written.is_empty(), "{written:?}");
}

#[test]
fn a_second_repository_is_refused_by_pgkeep_where_pgbackrest_uses_it() {
    let pair = Pair::new();
    pair.stanza_create();
    // Each tool's second repository: `<side>/repo2`, beside its repo1.
    let repo2 = |repo: &Path| repo.with_file_name("repo2");
    for repo in [&pair.pgkeep.repo, &pair.pgbackrest.repo] {
        std::fs::create_dir_all(repo2(repo)).unwrap();
    }
    chown_postgres(pair.dir.path());
    // pgBackRest's archive_command must push to both of its repositories for its check to
    // pass on repo2: its config file gets repo2-path too (pgkeep's is left alone).
    let conf = std::fs::read_to_string(&pair.pgbackrest.conf).unwrap();
    let line = format!("repo2-path={}\n", repo2(&pair.pgbackrest.repo).display());
    std::fs::write(
        &pair.pgbackrest.conf,
        conf.replacen("[global]\n", &format!("[global]\n{line}"), 1),
    )
    .unwrap();

    for command in ["stanza-create", "check"] {
        let both = pair.both_raw(&[
            "--config={conf}",
            "--stanza=demo",
            "--repo2-path={repo}2",
            command,
        ]);
        // pgBackRest acts on both repositories.
        assert_eq!(both.pgbackrest.code, 0, "{command}\n{}", both.shown());
        assert!(
            both.pgbackrest.stdout.contains("on repo2"),
            "{command}\n{}",
            both.shown()
        );
        // pgkeep refuses, and writes nothing anywhere.
        assert_refused(&both.pgkeep, REFUSED, &repo2(&pair.pgkeep.repo));
        assert!(
            !both
                .pgkeep
                .output()
                .contains(&format!("{command} command begin")),
            "{}",
            both.shown()
        );
    }
    assert!(
        repo2(&pair.pgbackrest.repo)
            .join("backup/demo/backup.info")
            .is_file()
    );

    // The same from pgkeep's environment and from its config file.
    let config = format!("--config={}", pair.pgkeep.conf.display());
    let run = pgkeep_with_env(
        &pair,
        &[&config, "--stanza=demo", "check"],
        &[(
            "PGKEEP_REPO2_PATH",
            &repo2(&pair.pgkeep.repo).display().to_string(),
        )],
    );
    assert_refused(
        &run,
        "ERROR: [031]: option 'repo2-path' in environment variable 'PGKEEP_REPO2_PATH' is not \
         supported yet: pgkeep has one repository (repo1)",
        &repo2(&pair.pgkeep.repo),
    );
    let copy = pair.pgkeep.conf.with_file_name("repo2.conf");
    let conf = std::fs::read_to_string(&pair.pgkeep.conf).unwrap();
    let line = format!("repo2-path={}\n", repo2(&pair.pgkeep.repo).display());
    std::fs::write(
        &copy,
        conf.replacen("[global]\n", &format!("[global]\n{line}"), 1),
    )
    .unwrap();
    chown_postgres(&copy);
    let run = pgkeep_with_env(
        &pair,
        &[
            &format!("--config={}", copy.display()),
            "--stanza=demo",
            "stanza-create",
        ],
        &[],
    );
    assert_refused(
        &run,
        &format!(
            "ERROR: [031]: option 'repo2-path' at line 2 of '{}' is not supported yet: pgkeep has \
             one repository (repo1)",
            copy.display()
        ),
        &repo2(&pair.pgkeep.repo),
    );

    // repo1 alone still works, spelled either way.
    pair.pgkeep.run("demo", &["check"]).ok();
    pair.pgkeep
        .run(
            "demo",
            &[
                "--repo1-path",
                &pair.pgkeep.repo.display().to_string(),
                "check",
            ],
        )
        .ok();
}
