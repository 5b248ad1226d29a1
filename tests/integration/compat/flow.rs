//! The user-guide flow run by both tools.

use crate::common::reference::{Pair, missing_key_paths};

#[test]
fn user_guide_flow_by_both() {
    let pair = Pair::new();
    pair.stanza_create();
    pair.both(&["check"]).code(0);
    let backup = pair.both(&["--type=full", "backup"]).code(0);
    eprintln!("{}", backup.shown());
    let info = pair.both(&["info"]).code(0);
    eprintln!("{}", info.shown());
    let json = pair.both(&["info", "--output=json"]).code(0);
    let ours: serde_json::Value = serde_json::from_str(&json.pgkeep.stdout).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&json.pgbackrest.stdout).unwrap();
    eprintln!("missing: {:#?}", missing_key_paths(&ours, &theirs));
    eprintln!("{}", pair.normalise(&backup.pgkeep.output()));
    eprintln!("{}", pair.normalise(&backup.pgbackrest.output()));
}
