//! Block-level incremental over ssh: the block filter runs on the database host with the prior
//! map's hashes sent in its spec, and restore on the database host reassembles the file from
//! the backup host's repository.

use std::time::Duration;

use pgkeep::repo::Manifest;
use pgkeep::storage::PosixStorage;

use super::Deployment;
use crate::common;

#[test]
fn remote_incremental_stores_changed_blocks_and_restores() {
    let d = Deployment::new();
    d.on_backup(&["stanza-create"]).ok();
    d.db.psql(
        "create table big as select g, md5(g::text) as v from generate_series(1, 300000) g; \
         vacuum (freeze) big; checkpoint",
    );
    let name = format!(
        "pg_data/{}",
        d.db.psql("select pg_relation_filepath('big')")
    );
    d.on_backup(&["--type=full", "backup"]).ok();
    d.db.psql("update big set v = 'changed' where g % 1500 = 0; checkpoint");
    d.on_backup(&["--type=incr", "backup"]).ok();
    let labels = d.labels(d.on_backup(&["info", "--output=json"]).ok());
    let manifest = Manifest::load(&PosixStorage::new(d.repo.clone()), "demo", &labels[1])
        .unwrap()
        .unwrap();
    let entry = manifest.file(&name).unwrap();
    let block = entry.block.as_ref().expect("stored block-incrementally");
    assert!(entry.reference.is_none());
    assert!(
        block.stored_size * 10 < entry.size,
        "stored {} of {}",
        block.stored_size,
        entry.size
    );
    assert!(block.holders.contains(&labels[0]));

    let expected = Deployment::digest(&d.db, "big");
    d.db.stop();
    std::fs::remove_dir_all(d.db.data_dir()).unwrap();
    std::fs::create_dir(d.db.data_dir()).unwrap();
    common::give_to_postgres(d.db.data_dir());
    d.on_db(&["restore"]).ok();
    d.db.start();
    d.db.wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(120));
    assert_eq!(Deployment::digest(&d.db, "big"), expected);
}
