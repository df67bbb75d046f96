//! Request heads over the HTTP parser's limits answered with the JSON error every other refusal
//! has, instead of the parser's bodiless `400` or `431`.
//!
//! actix-http refuses a request target of 65,534 bytes or more (`http::Uri` cannot hold it), a
//! head with more than 96 header fields, and a head of 128 KiB without its end, before any
//! route or middleware sees the request, with a hard-coded response that has no body. So the
//! check is made one level below, on the bytes of the connection: [`HeadGuard`] wraps each
//! accepted TCP stream, follows its requests with a [`HeadWatch`], and when a head crosses a
//! limit it passes the parser only the bytes within the limit, then the end of the stream. The
//! parser closes the connection as it does for any client that hangs up mid-request; closing,
//! the guard writes the JSON error (`414` or `431`) after whatever the parser wrote for earlier
//! requests, and reads what the client still sends until it closes, so that the client reads
//! the answer rather than a reset. Request heads are also held to `--request-head-timeout` the
//! same way (408 in JSON): the first from the moment the connection opens, each later one on a
//! kept-alive connection from its first byte (the parser times only the first, and without a
//! body; its timer, a second later than the guard's, is a backstop). Everything else passes
//! through untouched.

mod watch;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use actix_web::http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::api_error::ApiError;
pub use watch::{HeadWatch, MAX_HEAD_BYTES, MAX_HEADERS, MAX_TARGET_BYTES, Overrun};

/// Bytes of the client's further sending read and discarded after a refusal, at most (the
/// server's client disconnect timeout bounds the time).
const DRAIN_LIMIT: usize = 1 << 20;

/// The error answered for a head over a limit.
pub fn overrun_error(overrun: Overrun) -> ApiError {
    match overrun {
        Overrun::Target => ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!(
                "the request target (path and query) is longer than {MAX_TARGET_BYTES} bytes; \
                 accepted: at most {MAX_TARGET_BYTES} bytes"
            ),
        )
        .with("limit_bytes", json!(MAX_TARGET_BYTES)),
        Overrun::HeaderCount => ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request has more than {MAX_HEADERS} header fields; accepted: at most \
                 {MAX_HEADERS}"
            ),
        )
        .with("max_headers", json!(MAX_HEADERS)),
        Overrun::HeadSize => ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request line and headers are longer than {MAX_HEAD_BYTES} bytes; accepted: \
                 at most {MAX_HEAD_BYTES} bytes"
            ),
        )
        .with("limit_bytes", json!(MAX_HEAD_BYTES)),
    }
}

/// The error answered when the first request's head does not arrive within `timeout`.
pub fn head_timeout_error(timeout: Duration) -> ApiError {
    ApiError::request_timeout(format!(
        "the request line and headers did not arrive within {} s; accepted: a whole request \
         head in time",
        timeout.as_secs_f64()
    ))
    .with("timeout_seconds", json!(timeout.as_secs_f64()))
}

/// The whole HTTP/1.1 response for `error`; the connection closes after it.
fn closing_response(error: &ApiError) -> Vec<u8> {
    let status = error.status();
    let body = serde_json::to_vec(error.body()).unwrap_or_default();
    let mut response = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response
}

/// Where a refused connection is in answering and closing.
#[derive(Debug)]
enum Closing {
    /// Writing the answer; the bytes written so far.
    Answer(usize),
    /// Shutting the write side down.
    Shutdown,
    /// Reading what the client still sends; the bytes read so far.
    Drain(usize),
    /// Closed.
    Done,
}

#[derive(Debug)]
struct Refusal {
    response: Vec<u8>,
    closing: Closing,
}

/// A connection whose request heads are held to the parser's limits (see the module's notes).
#[derive(Debug)]
pub struct HeadGuard<T> {
    inner: T,
    watch: HeadWatch,
    refusal: Option<Refusal>,
    /// While a request head is awaited: its deadline.
    head_deadline: Option<Pin<Box<Sleep>>>,
    /// How long a request head may take (zero: no limit).
    head_timeout: Duration,
}

impl<T> HeadGuard<T> {
    /// Wraps a newly accepted connection whose first request head must arrive within
    /// `head_timeout` (zero: no limit).
    pub fn new(inner: T, head_timeout: Duration) -> Self {
        Self {
            inner,
            watch: HeadWatch::new(),
            refusal: None,
            head_deadline: (!head_timeout.is_zero())
                .then(|| Box::pin(tokio::time::sleep(head_timeout))),
            head_timeout,
        }
    }

    /// Arms the head deadline when a head starts, disarms it when the head is in.
    fn follow_head_deadline(&mut self) {
        if self.watch.in_head() {
            if self.head_deadline.is_none() && !self.head_timeout.is_zero() {
                self.head_deadline = Some(Box::pin(tokio::time::sleep(self.head_timeout)));
            }
        } else if self.watch.first_head_done() {
            self.head_deadline = None;
        }
    }

    fn refuse(&mut self, error: &ApiError) {
        self.refusal = Some(Refusal {
            response: closing_response(error),
            closing: Closing::Answer(0),
        });
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> HeadGuard<T> {
    /// Answers the refusal, shuts the write side and drains the read side.
    fn poll_refuse(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(refusal) = self.refusal.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        loop {
            match &mut refusal.closing {
                Closing::Answer(written) => {
                    if *written == refusal.response.len() {
                        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
                        refusal.closing = Closing::Shutdown;
                        continue;
                    }
                    let n = ready!(
                        Pin::new(&mut self.inner).poll_write(cx, &refusal.response[*written..])
                    )?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    *written += n;
                }
                Closing::Shutdown => {
                    ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
                    refusal.closing = Closing::Drain(0);
                }
                Closing::Drain(drained) => {
                    let mut scratch = [0u8; 8192];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf)) {
                        Ok(()) if !buf.filled().is_empty() && *drained < DRAIN_LIMIT => {
                            *drained += buf.filled().len();
                        }
                        _ => refusal.closing = Closing::Done,
                    }
                }
                Closing::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeadGuard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refusal.is_some() {
            // The parser sees the end of the stream and closes the connection.
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => result?,
            Poll::Pending => {
                if let Some(deadline) = this.head_deadline.as_mut()
                    && deadline.as_mut().poll(cx).is_ready()
                {
                    let error = head_timeout_error(this.head_timeout);
                    this.head_deadline = None;
                    log::debug!("Refused a connection: its request head did not arrive in time.");
                    this.refuse(&error);
                    return Poll::Ready(Ok(()));
                }
                return Poll::Pending;
            }
        }
        if let Err((at, overrun)) = this.watch.feed(&buf.filled()[before..]) {
            buf.set_filled(before + at);
            log::debug!("overrun={overrun:?} Refused a request head over the parser's limits.");
            this.refuse(&overrun_error(overrun));
        } else {
            this.follow_head_deadline();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for HeadGuard<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refusal.is_some() {
            return this.poll_refuse(cx);
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
