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
//! the answer rather than a reset. Everything else passes through untouched.

mod watch;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use actix_web::http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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

/// The whole HTTP/1.1 response for a head over a limit; the connection closes after it.
fn overrun_response(overrun: Overrun) -> Vec<u8> {
    let error = overrun_error(overrun);
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
}

impl<T> HeadGuard<T> {
    /// Wraps a newly accepted connection.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            watch: HeadWatch::new(),
            refusal: None,
        }
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
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if let Err((at, overrun)) = this.watch.feed(&buf.filled()[before..]) {
            buf.set_filled(before + at);
            log::debug!("overrun={overrun:?} Refused a request head over the parser's limits.");
            this.refusal = Some(Refusal {
                response: overrun_response(overrun),
                closing: Closing::Answer(0),
            });
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
