//! Manifests edited by someone who can write the repository (issue 13, defect 3): the envelope
//! checksum is recomputed, so the manifest loads, and its numbers are what an attacker chose.
//! A bundled entry claiming an impossible size or offset must make restore and verify fail with
//! a one-line error naming the bundle and the value, never panic (exit 102) or abort (SIGABRT),
//! and a refused restore must not write `pg_control`. Real PostgreSQL 15 cluster, bundle=y.

use crate::common::pgkeep::{Run, Stanza, empty_dir};
use serde_json::Value;
use sha2::Digest;

/// The label a backup printed.
fn label_of(run: &Run) -> String {
    run.stdout
        .lines()
        .find_map(|l| l.split("new backup label = ").nth(1))
        .expect("new backup label")
        .trim()
        .to_string()
}

/// Rewrites the manifest of `label` (and its copy) with `edit` applied to its content and the
/// envelope checksum recomputed, as the repository's own writer computes it.
fn tamper(s: &Stanza, label: &str, original: &Value, edit: impl FnOnce(&mut Value)) {
    let mut content = original.clone();
    edit(&mut content);
    let canonical = serde_json::to_vec(&content).unwrap();
    let checksum: String = sha2::Sha256::digest(&canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let envelope = serde_json::json!({ "format": 1, "checksum": checksum, "content": content });
    let text = serde_json::to_vec_pretty(&envelope).unwrap();
    for name in ["backup.manifest", "backup.manifest.copy"] {
        std::fs::write(s.repo.join(format!("backup/demo/{label}/{name}")), &text).unwrap();
    }
}

fn manifest(s: &Stanza, label: &str) -> Value {
    let path = s.repo.join(format!("backup/demo/{label}/backup.manifest"));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["content"].clone()
}

/// Asserts a run failed the way a damaged repository must: `code`, the expected text, and no
/// panic or abort.
#[track_caller]
fn refused(run: &Run, code: i32, texts: &[&str]) {
    let output = run.output();
    assert_eq!(run.code, code, "{output}");
    assert!(!output.contains("panicked"), "{output}");
    for text in texts {
        assert!(output.contains(text), "expected {text:?} in:\n{output}");
    }
}

#[test]
fn impossible_bundle_sizes_and_offsets_are_refused_by_restore_and_verify() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster
        .psql("create table t as select g as id from generate_series(1, 1000) g; checkpoint");
    let label = label_of(
        &s.pgkeep(&["--log-level-console=info", "--type=full", "backup"])
            .ok(),
    );
    s.cluster.stop();
    let original = manifest(&s, &label);
    // A bundled file with content: the target of every edit.
    let files = original["files"].as_array().unwrap();
    let (index, entry) = files
        .iter()
        .enumerate()
        .find(|(_, f)| f["bundle_id"].is_u64() && f["repo_size"].as_u64().unwrap() > 0)
        .expect("a bundled file");
    let bundle = format!("{label}/bundle/{}", entry["bundle_id"].as_u64().unwrap());
    let bundle_size = std::fs::metadata(s.repo.join(format!("backup/demo/{bundle}")))
        .unwrap()
        .len();
    let offset = entry["bundle_offset"].as_u64().unwrap_or(0);

    let cases: Vec<(&str, Value)> = vec![
        ("repo_size", Value::from((1u64 << 63) + 5)),
        ("repo_size", Value::from(1u64 << 62)),
        ("repo_size", Value::from(bundle_size - offset + 1)),
        ("bundle_offset", Value::from(bundle_size + 10)),
        ("bundle_offset", Value::from(u64::MAX)),
    ];
    for (field, value) in cases {
        let what = format!("{field}={value}");
        tamper(&s, &label, &original, |m| {
            m["files"][index][field] = value.clone()
        });

        let run = s.pgkeep(&["verify"]);
        refused(&run, 104, &[&bundle, "is truncated"]);

        empty_dir(s.data_dir());
        let run = s.pgkeep(&["restore"]);
        refused(&run, 28, &[&bundle, "is truncated"]);
        let shown = if field == "repo_size" {
            format!("{value} bytes expected")
        } else {
            format!("at offset {value}")
        };
        assert!(run.output().contains(&shown), "{what}: {}", run.output());
        assert!(
            !s.data_dir().join("global/pg_control").exists(),
            "{what}: a refused restore wrote pg_control"
        );
    }

    // A file whose stored data decompresses to more than the size the manifest records (a
    // compression bomb, or a size edited down): the restore stops at the recorded size instead
    // of writing all of it and only then finding the checksum wrong.
    assert!(entry["size"].as_u64().unwrap() > 1, "{entry}");
    tamper(&s, &label, &original, |m| {
        m["files"][index]["size"] = Value::from(1u64)
    });
    empty_dir(s.data_dir());
    let run = s.pgkeep(&["restore"]);
    refused(
        &run,
        28,
        &["decompresses to more than the 1 bytes it may hold"],
    );
    assert!(!s.data_dir().join("global/pg_control").exists());

    // The untouched manifest still restores and verifies: the repository itself was fine.
    tamper(&s, &label, &original, |_| {});
    s.pgkeep(&["verify"]).ok();
    empty_dir(s.data_dir());
    s.pgkeep(&["restore"]).ok();
    assert!(s.data_dir().join("global/pg_control").exists());
}
