//! `loop serve` under a small open-file limit: idle connections cannot starve real requests.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Server;

/// A plain `GET /health`, answered within `timeout` or not at all.
fn health(addr: &str, timeout: Duration) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: loop\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

#[test]
fn idle_connections_are_closed_before_real_requests_starve() {
    let server = Server::start_with_file_limit(128, &[]);
    let addr = server.url.strip_prefix("http://").unwrap().to_owned();
    // Far more connections than the server has file descriptors, none of them saying anything.
    let idle: Vec<TcpStream> = (0..300).map(|_| TcpStream::connect(&addr).expect("connect")).collect();
    for _ in 0..3 {
        let answer = health(&addr, Duration::from_secs(10)).expect("a real request is answered while idle ones wait");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    assert!(server.log().contains("closing idle ones"), "the shedding is logged:\n{}", server.log());
    drop(idle);
}
