//! The greeting and request loop over a socket pair: both halves of the real code, no ssh.

use std::os::unix::net::UnixStream;

use super::server::{self, Handled};
use super::*;

fn pair() -> (Conn, Conn) {
    let (a, b) = UnixStream::pair().unwrap();
    let local = Conn::new(
        Box::new(a.try_clone().unwrap()),
        Box::new(a),
        "'postgres@db1'",
    );
    let remote = Conn::new(Box::new(b.try_clone().unwrap()), Box::new(b), "'local'");
    (local, remote)
}

#[test]
fn greeting_accepts_the_same_version_and_carries_the_welcome() {
    let (mut local, mut remote) = pair();
    let far = std::thread::spawn(move || {
        server::greet(&mut remote, serde_json::json!({"root": "/repo"})).unwrap();
    });
    let welcome = client::greet(&mut local).unwrap();
    assert_eq!(welcome["root"], "/repo");
    far.join().unwrap();
}

#[test]
fn local_side_refuses_another_protocol_version() {
    let (mut local, mut remote) = pair();
    let far = std::thread::spawn(move || {
        let old = Greeting {
            protocol: PROTOCOL_VERSION + 1,
            version: "9.9.9".into(),
            ..Greeting::ours()
        };
        remote.send(&old).unwrap();
    });
    let err = client::greet(&mut local).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert_eq!(
        err.message(),
        format!(
            "remote pgkeep protocol version {} does not match local version {PROTOCOL_VERSION}",
            PROTOCOL_VERSION + 1
        )
    );
    assert!(err.hint().unwrap().contains("'postgres@db1' runs 9.9.9"));
    far.join().unwrap();
}

#[test]
fn far_side_refuses_another_protocol_version_and_says_so() {
    let (mut local, mut remote) = pair();
    let far = std::thread::spawn(move || server::greet(&mut remote, serde_json::Value::Null));
    let theirs: Greeting = local.recv_message().unwrap();
    assert_eq!(theirs, Greeting::ours());
    local
        .send(&Greeting {
            protocol: 0,
            ..Greeting::ours()
        })
        .unwrap();
    let err = local.response().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert!(
        err.message()
            .starts_with("raised from remote on 'postgres@db1': remote pgkeep protocol version 0"),
        "{}",
        err.message()
    );
    assert!(far.join().unwrap().is_err());
}

#[test]
fn not_pgkeep_is_refused() {
    let greeting = Greeting {
        name: "pgbackrest".into(),
        ..Greeting::ours()
    };
    let err = greeting.check("'db1'").unwrap_err();
    assert_eq!(
        err.message(),
        "'db1' is not pgkeep: it greeted as 'pgbackrest'"
    );
}

#[test]
fn requests_are_answered_and_errors_keep_their_kind_and_hint() {
    let (mut local, mut remote) = pair();
    let far = std::thread::spawn(move || {
        server::serve(&mut remote, |_, request| {
            Ok(Handled::Reply(match request.op.as_str() {
                "echo" => Ok(request.args),
                _ => Err(Error::new(ErrorKind::FileMissing, "no such thing").with_hint("look")),
            }))
        })
    });
    assert_eq!(
        local.call("echo", serde_json::json!([1, 2])).unwrap(),
        serde_json::json!([1, 2])
    );
    let err = local.call("other", serde_json::Value::Null).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileMissing);
    assert_eq!(
        err.message(),
        "raised from remote on 'postgres@db1': no such thing"
    );
    assert_eq!(err.hint(), Some("look"));
    drop(local);
    // The local side closing the connection ends the far side cleanly.
    far.join().unwrap().unwrap();
}

#[test]
fn shell_quoting_keeps_arguments_whole() {
    use client::shell_quote;
    assert_eq!(shell_quote("--stanza=demo"), "--stanza=demo");
    assert_eq!(shell_quote("a b"), "'a b'");
    assert_eq!(shell_quote("it's"), "'it'\\''s'");
    assert_eq!(shell_quote(""), "''");
}
