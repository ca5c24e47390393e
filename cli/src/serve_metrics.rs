//! `boundflow demo --metrics-addr`: `metrics-exporter-prometheus` installed as the recorder and
//! served at `/metrics` by a listener of our own (the exporter's built-in one cannot say which
//! port it got for `:0`), on a thread that lives as long as the process.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the recorder (before the registry builds its publisher) and starts serving; the
/// address bound, which differs from `addr` when it asked for port 0.
pub(crate) fn start(addr: SocketAddr) -> Result<SocketAddr, String> {
    let listener =
        TcpListener::bind(addr).map_err(|err| format!("--metrics-addr {addr}: {err}"))?;
    let bound = listener
        .local_addr()
        .map_err(|err| format!("--metrics-addr {addr}: {err}"))?;
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|err| format!("the Prometheus recorder: {err}"))?;
    std::thread::Builder::new()
        .name("boundflow-metrics".to_owned())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                // A client that hangs up mid-request costs only its own answer.
                let _ = respond(stream, &handle);
            }
        })
        .map_err(|err| format!("the metrics thread: {err}"))?;
    Ok(bound)
}

/// Answers one request: the exporter's rendering for `GET /metrics`, 404 otherwise.
fn respond(mut stream: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // The rest of the head: up to the empty line.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let (status, body) = if request_line.starts_with("GET /metrics") {
        ("200 OK", handle.render())
    } else {
        ("404 Not Found", "try /metrics\n".to_owned())
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
