//! A little HTTP/1 serving on loopback with hyper: a streaming response body fed from a channel,
//! and an accept loop. Used by the simulated model server, the `/metrics` endpoint of
//! `run --metrics-listen`, and the load generator's tests.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

/// A response body whose pieces arrive through a channel: each piece goes out as soon as it is
/// sent (one chunk of the chunked encoding). An `Err` piece aborts the connection mid-body, as a
/// crashing server would; dropping the sender ends the body cleanly.
pub struct ChannelBody {
    rx: Option<mpsc::UnboundedReceiver<Result<Bytes, std::io::Error>>>,
    whole: Option<Bytes>,
}

/// The sending end of a [`ChannelBody`].
pub type BodySender = mpsc::UnboundedSender<Result<Bytes, std::io::Error>>;

impl ChannelBody {
    /// A streaming body and the sender that feeds it.
    pub fn channel() -> (BodySender, ChannelBody) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            tx,
            ChannelBody {
                rx: Some(rx),
                whole: None,
            },
        )
    }

    /// A body sent whole.
    pub fn full(bytes: impl Into<Bytes>) -> ChannelBody {
        ChannelBody {
            rx: None,
            whole: Some(bytes.into()),
        }
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(bytes) = self.whole.take() {
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        match self.rx.as_mut() {
            None => Poll::Ready(None),
            Some(rx) => rx
                .poll_recv(cx)
                .map(|piece| piece.map(|p| p.map(Frame::data))),
        }
    }
}

/// A response with a status, a content type and a whole body.
pub fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<ChannelBody> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(ChannelBody::full(body))
        .expect("a valid response")
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<ChannelBody> {
    respond(status, "application/json", value.to_string())
}

/// A server-sent-events response fed by the returned sender.
pub fn event_stream() -> (BodySender, Response<ChannelBody>) {
    let (tx, body) = ChannelBody::channel();
    let response = Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(body)
        .expect("a valid response");
    (tx, response)
}

/// The request's body, read whole (empty if the connection broke while sending it).
pub async fn read_body(request: Request<Incoming>) -> Bytes {
    match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    }
}

/// Bounds on the connections a server keeps open: an endpoint anyone on the network can reach
/// (`/metrics`) must neither hold the file descriptors its run needs (1,100 idle connections
/// under `ulimit -n 1024` made a run fail to write its tables) nor be held by idle or slow
/// clients (one sending a byte a second was never dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; one more is closed as soon as it is accepted.
    pub connections: usize,
    /// How long a client may take to send the headers of a request.
    pub header_timeout: Duration,
    /// How long a connection may stay open at all, keep-alive included.
    pub lifetime: Duration,
}

/// Serves every connection to `listener` with `handle`, each on a task of its own, forever.
pub async fn serve<H, F>(listener: TcpListener, handle: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Response<ChannelBody>> + Send + 'static,
{
    serve_within(listener, handle, None).await
}

/// [`serve`], keeping to `limits` when given.
pub async fn serve_within<H, F>(listener: TcpListener, handle: H, limits: Option<Limits>)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Response<ChannelBody>> + Send + 'static,
{
    let slots = limits.map(|l| Arc::new(Semaphore::new(l.connections)));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors, or a connection reset before it was accepted: wait a
            // moment rather than spin on the error.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = match &slots {
            Some(slots) => match Arc::clone(slots).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => continue, // dropped: closed at once
            },
            None => None,
        };
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |request| {
                let response = handle(request);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            if let Some(l) = limits {
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(l.header_timeout);
            }
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            // A client that goes away mid-response is its own business.
            match limits {
                Some(l) => drop(tokio::time::timeout(l.lifetime, connection).await),
                None => drop(connection.await),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// A server under `limits` on its own thread, answering `ok`; its address.
    fn start(limits: Limits) -> std::net::SocketAddr {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                let ok = |_| async { respond(StatusCode::OK, "text/plain", "ok") };
                serve_within(listener, ok, Some(limits)).await;
            });
        });
        addr
    }

    /// What the server sent on `stream` before it closed it, if it did within a minute (however
    /// loaded the machine: the limits below are far shorter; without them it is never closed).
    fn closed_by_server(stream: &mut TcpStream) -> Option<String> {
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let (mut got, mut buf) = (Vec::new(), [0u8; 256]);
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(_) => return None,
            }
        }
        Some(String::from_utf8_lossy(&got).into_owned())
    }

    fn get(addr: std::net::SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn connections_over_the_cap_are_closed_unanswered() {
        let hour = Duration::from_secs(3600);
        let addr = start(Limits {
            connections: 2,
            header_timeout: hour,
            lifetime: hour,
        });
        assert!(get(addr).starts_with("HTTP/1.1 200"));
        // Two idle connections hold both places (accepted in order, before the third).
        let _idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut third = TcpStream::connect(addr).unwrap();
        let _ = third.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!(
            closed_by_server(&mut third).as_deref(),
            Some(""),
            "over the cap"
        );
    }

    #[test]
    fn an_idle_connection_ends_with_its_lifetime_and_frees_its_place() {
        let addr = start(Limits {
            connections: 1,
            header_timeout: Duration::from_secs(3600),
            lifetime: Duration::from_millis(300),
        });
        let mut idle = TcpStream::connect(addr).unwrap();
        assert_eq!(closed_by_server(&mut idle).as_deref(), Some(""));
        assert!(get(addr).starts_with("HTTP/1.1 200"));
    }

    #[test]
    fn a_client_that_sends_its_headers_a_byte_at_a_time_is_dropped() {
        let addr = start(Limits {
            connections: 4,
            header_timeout: Duration::from_millis(200),
            lifetime: Duration::from_secs(3600),
        });
        let mut slow = TcpStream::connect(addr).unwrap();
        let writer = {
            let mut s = slow.try_clone().unwrap();
            std::thread::spawn(move || {
                for b in b"GET / HTTP/1.1\r\nhost: slowly-slowly-slowly\r\n"
                    .iter()
                    .cycle()
                    .take(2000)
                {
                    if s.write_all(&[*b]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(30));
                }
            })
        };
        assert!(closed_by_server(&mut slow).is_some());
        let _ = slow.shutdown(std::net::Shutdown::Both);
        writer.join().unwrap();
    }
}
