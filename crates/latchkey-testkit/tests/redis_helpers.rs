//! The private redis-server helpers themselves: they must start, isolate, fault and cluster.
use latchkey_testkit::redis::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn single_node_starts_answers_and_stops() {
    let mut server = RedisServer::start().unwrap();
    assert_ne!(server.port(), 6379);
    assert_eq!(
        server.command(&["SET", "k", "v"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    assert_eq!(
        server.command(&["GET", "k"]).unwrap(),
        RespValue::Bulk(Some("v".into()))
    );
    server.stop();
    assert!(
        server.command(&["PING"]).is_err(),
        "a stopped server must refuse connections"
    );
    server.restart().unwrap();
    assert_eq!(
        server.command(&["GET", "k"]).unwrap(),
        RespValue::Bulk(None),
        "nothing persisted"
    );
}

#[test]
fn two_servers_in_parallel_get_distinct_ports() {
    let a = RedisServer::start().unwrap();
    let b = RedisServer::start().unwrap();
    assert_ne!(a.port(), b.port());
    a.command(&["SET", "k", "a"]).unwrap();
    assert_eq!(b.command(&["GET", "k"]).unwrap(), RespValue::Bulk(None));
}

#[test]
fn paused_server_accepts_but_never_answers() {
    let server = RedisServer::start().unwrap();
    server.pause().unwrap();
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s.write_all(b"PING\r\n").unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    assert!(s.read(&mut buf).is_err(), "paused server answered");
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.resume().unwrap();
    assert_eq!(
        server.command(&["PING"]).unwrap(),
        RespValue::Simple("PONG".into())
    );
}

#[test]
fn cluster_forms_and_serves_every_slot() {
    let cluster = RedisCluster::start().unwrap();
    assert_eq!(cluster.urls().len(), 3);
    for node in cluster.nodes() {
        match node.command(&["CLUSTER", "INFO"]).unwrap() {
            RespValue::Bulk(Some(info)) => {
                assert!(info.contains("cluster_known_nodes:3"), "{info}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_private_postgres_starts_answers_and_stops() {
    let pg = latchkey_testkit::postgres::PostgresServer::start().unwrap_or_else(|e| panic!("{e}"));
    let port = pg.port();
    assert_ne!(port, 5432, "never the machine's own server");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    drop(pg);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "stopped on drop"
    );
}
