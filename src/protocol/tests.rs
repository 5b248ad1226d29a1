//! The greeting and request loop over a socket pair: both halves of the real code, no ssh.

use std::os::unix::net::UnixStream;

use serde_json::Value;

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

/// A request enum of its own, declared the way storage and SQL requests are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", content = "args")]
enum TestRequest {
    #[serde(rename = "test.echo")]
    Echo(Echo),
    #[serde(rename = "test.fail")]
    Fail(Fail),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Echo {
    values: Vec<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Fail;

calls!(TestRequest {
    Echo => Vec<u32>,
    Fail => (),
});

/// The far side of a test conversation: greets, then answers `TestRequest`s until the local
/// side closes the connection.
fn serve_test_requests(mut remote: Conn) -> Result<()> {
    server::greet(&mut remote, serde_json::Value::Null)?;
    server::serve(&mut remote, |_, request: TestRequest| {
        Ok(Handled::Reply(match request {
            TestRequest::Echo(call) => server::answer(call, |Echo { values }| Ok(values)),
            TestRequest::Fail(call) => server::answer(call, |Fail| {
                Err(Error::new(ErrorKind::FileMissing, "no such thing").with_hint("look"))
            }),
        }))
    })
}

#[test]
fn requests_are_answered_and_errors_keep_their_kind_and_hint() {
    let (local, remote) = pair();
    let far = std::thread::spawn(move || serve_test_requests(remote));
    let mut channel = Channel::over(local).unwrap();
    assert_eq!(
        channel.call(Echo { values: vec![1, 2] }).unwrap(),
        vec![1, 2]
    );
    let err = channel.call(Fail).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileMissing);
    assert_eq!(
        err.message(),
        "raised from remote on 'postgres@db1': no such thing"
    );
    assert_eq!(err.hint(), Some("look"));
    assert!(!channel.is_broken());
    drop(channel);
    // The local side closing the connection ends the far side cleanly.
    far.join().unwrap().unwrap();
}

#[test]
fn requests_travel_tagged_with_their_name_and_arguments() {
    let request = TestRequest::from(Echo { values: vec![7] });
    assert_eq!(
        serde_json::to_value(&request).unwrap(),
        serde_json::json!({ "op": "test.echo", "args": { "values": [7] } })
    );
    assert_eq!(name_of(&request), "test.echo");
    assert_eq!(
        serde_json::to_value(TestRequest::from(Fail)).unwrap(),
        serde_json::json!({ "op": "test.fail", "args": null })
    );
}

#[test]
fn unknown_and_malformed_requests_are_answered_with_an_error_and_serving_goes_on() {
    let (local, remote) = pair();
    let far = std::thread::spawn(move || serve_test_requests(remote));
    let mut channel = Channel::over(local).unwrap();
    let conn = channel.conn();
    let hostile = [
        ("test.nothing", serde_json::json!({})),
        ("test.echo", serde_json::json!({ "values": "many" })),
        ("test.echo", serde_json::json!({ "values": [-1] })),
        ("test.echo", serde_json::Value::Null),
        ("test.fail", serde_json::json!([1, 2, 3])),
        ("", serde_json::Value::Null),
    ];
    for (op, args) in hostile {
        let err = conn.call(op, args.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{op} {args}");
        assert!(
            err.message().starts_with(&format!(
                "raised from remote on 'postgres@db1': invalid request '{op}' from 'local': "
            )),
            "{}",
            err.message()
        );
    }
    assert_eq!(
        conn.call("test.echo", serde_json::json!({ "values": [3] }))
            .unwrap(),
        serde_json::json!([3])
    );
    assert_eq!(channel.call(Echo { values: vec![4] }).unwrap(), vec![4]);
    drop(channel);
    far.join().unwrap().unwrap();
}

#[test]
fn a_message_that_is_no_request_ends_the_conversation_without_a_panic() {
    let (mut local, mut remote) = pair();
    let far = std::thread::spawn(move || {
        server::serve(&mut remote, |_, _: TestRequest| {
            Ok(Handled::Reply(Ok(Value::Null)))
        })
    });
    local.send(&serde_json::json!({ "args": {} })).unwrap();
    let err = far.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert!(
        err.message().contains("missing field `op`"),
        "{}",
        err.message()
    );
}

#[test]
fn shell_quoting_keeps_arguments_whole() {
    use client::shell_quote;
    assert_eq!(shell_quote("--stanza=demo"), "--stanza=demo");
    assert_eq!(shell_quote("a b"), "'a b'");
    assert_eq!(shell_quote("it's"), "'it'\\''s'");
    assert_eq!(shell_quote(""), "''");
}
