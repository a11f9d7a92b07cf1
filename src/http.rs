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
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

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

/// Serves every connection to `listener` with `handle`, each on a task of its own, forever.
pub async fn serve<H, F>(listener: TcpListener, handle: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Response<ChannelBody>> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = handle(request);
                async move { Ok::<_, Infallible>(response.await) }
            });
            // A client that goes away mid-response is its own business.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
