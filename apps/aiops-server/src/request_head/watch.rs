//! [`HeadWatch`]: follows the HTTP/1.1 requests of one connection through the bytes the
//! client sends, and says where a request head crosses a limit of the HTTP parser's.
//!
//! It reads only what it needs: the request line's target length, the number and total size of
//! header lines, and `Content-Length` / `Transfer-Encoding: chunked` to skip each body and find
//! the next request. Anything it does not follow (an upgrade, `CONNECT`, a framing it cannot
//! read) turns it off for the rest of the connection, leaving the parser's own answers.

/// The longest request target (path and query) the parser takes: `http::Uri` refuses 65,534
/// bytes and more.
pub const MAX_TARGET_BYTES: usize = 65_533;
/// The most header fields a request may have (actix-http's parser has room for 96).
pub const MAX_HEADERS: usize = 96;
/// The largest request head, request line and headers, the parser takes: it refuses a head it
/// holds 131,072 bytes of without its end.
pub const MAX_HEAD_BYTES: usize = 131_071;

/// Bytes of a header line kept to read the framing headers (the rest are only counted).
const KEPT_LINE: usize = 128;

/// A limit a request head crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overrun {
    /// The request target is longer than [`MAX_TARGET_BYTES`].
    Target,
    /// More than [`MAX_HEADERS`] header fields.
    HeaderCount,
    /// The head is longer than [`MAX_HEAD_BYTES`].
    HeadSize,
}

#[derive(Clone, Debug)]
enum State {
    /// Before or in a request line.
    RequestLine {
        started: bool,
        bytes: usize,
        spaces: u8,
        target: usize,
        method_connect: bool,
        method: Vec<u8>,
    },
    /// In the header lines.
    Headers(Head),
    /// In a body of known length.
    Body(u64),
    /// In a chunked body.
    Chunked(Chunk),
    /// Not following the connection any more.
    Off,
}

#[derive(Clone, Debug, Default)]
struct Head {
    bytes: usize,
    headers: usize,
    line: Vec<u8>,
    line_len: usize,
    content_length: Option<u64>,
    chunked: bool,
    unreadable: bool,
    upgrade: bool,
}

#[derive(Clone, Copy, Debug)]
enum Chunk {
    Size {
        size: u64,
        digits: u8,
        extension: bool,
    },
    Data(u64),
    DataEnd,
    Trailer {
        line_len: usize,
    },
}

impl State {
    fn request_line() -> Self {
        State::RequestLine {
            started: false,
            bytes: 0,
            spaces: 0,
            target: 0,
            method_connect: false,
            method: Vec::new(),
        }
    }
}

/// Follows the requests of one connection.
#[derive(Clone, Debug)]
pub struct HeadWatch {
    state: State,
    heads: u64,
}

impl Default for HeadWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl HeadWatch {
    /// A watch at the start of a connection.
    pub fn new() -> Self {
        Self {
            state: State::request_line(),
            heads: 0,
        }
    }

    /// Whether a whole request head has arrived on the connection (or the watch stopped
    /// following it).
    pub fn first_head_done(&self) -> bool {
        self.heads > 0 || matches!(self.state, State::Off)
    }

    /// Whether the connection is inside a request head: its first byte has arrived, its end
    /// not yet.
    pub fn in_head(&self) -> bool {
        matches!(
            self.state,
            State::RequestLine { started: true, .. } | State::Headers(_)
        )
    }

    /// Reads the next bytes of the connection. `Err((at, overrun))`: the byte at `at` is the
    /// first past the limit; the bytes before it are within every limit.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), (usize, Overrun)> {
        let mut at = 0;
        while at < bytes.len() {
            at += self
                .step(&bytes[at..])
                .map_err(|(offset, overrun)| (at + offset, overrun))?;
        }
        Ok(())
    }

    /// Reads from the start of `bytes`; the number of bytes read.
    fn step(&mut self, bytes: &[u8]) -> Result<usize, (usize, Overrun)> {
        match &mut self.state {
            State::Off => Ok(bytes.len()),
            State::Body(remaining) => {
                let taken = (*remaining).min(bytes.len() as u64);
                *remaining -= taken;
                if *remaining == 0 {
                    self.state = State::request_line();
                }
                Ok(taken as usize)
            }
            State::Chunked(Chunk::Data(remaining)) => {
                let taken = (*remaining).min(bytes.len() as u64);
                *remaining -= taken;
                if *remaining == 0 {
                    self.state = State::Chunked(Chunk::DataEnd);
                }
                Ok(taken as usize)
            }
            State::Chunked(_) => {
                self.chunk_byte(bytes[0]);
                Ok(1)
            }
            State::RequestLine { .. } | State::Headers(_) => {
                self.head_byte(bytes[0]).map_err(|overrun| (0, overrun))?;
                Ok(1)
            }
        }
    }

    fn head_byte(&mut self, byte: u8) -> Result<(), Overrun> {
        match &mut self.state {
            State::RequestLine {
                started,
                bytes,
                spaces,
                target,
                method_connect,
                method,
            } => {
                if !*started && (byte == b'\r' || byte == b'\n') {
                    return Ok(()); // empty lines before a request line are allowed
                }
                *started = true;
                *bytes += 1;
                if *bytes > MAX_HEAD_BYTES {
                    return Err(Overrun::HeadSize);
                }
                match byte {
                    b'\n' => {
                        let connect = *method_connect;
                        let line = *bytes;
                        self.state = State::Headers(Head {
                            bytes: line,
                            upgrade: connect,
                            ..Head::default()
                        });
                    }
                    b' ' => *spaces = spaces.saturating_add(1),
                    _ if *spaces == 0 => {
                        method.push(byte);
                        *method_connect = method.eq_ignore_ascii_case(b"CONNECT");
                        if method.len() > 32 {
                            self.state = State::Off; // not a method the parser takes
                        }
                    }
                    _ if *spaces == 1 => {
                        *target += 1;
                        if *target > MAX_TARGET_BYTES {
                            return Err(Overrun::Target);
                        }
                    }
                    _ => {}
                }
                Ok(())
            }
            State::Headers(head) => {
                head.bytes += 1;
                if head.bytes > MAX_HEAD_BYTES {
                    return Err(Overrun::HeadSize);
                }
                if byte == b'\n' {
                    let head = std::mem::take(head);
                    self.end_of_line(head);
                    return Ok(());
                }
                if byte != b'\r' {
                    if head.line_len == 0 {
                        head.headers += 1;
                        if head.headers > MAX_HEADERS {
                            return Err(Overrun::HeaderCount);
                        }
                    }
                    head.line_len += 1;
                    if head.line.len() < KEPT_LINE {
                        head.line.push(byte);
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A header line ended, or the head did (an empty line).
    fn end_of_line(&mut self, mut head: Head) {
        if head.line_len > 0 {
            head.read_line();
            head.line.clear();
            head.line_len = 0;
            self.state = State::Headers(head);
            return;
        }
        self.heads += 1;
        self.state = if head.unreadable || head.upgrade {
            State::Off
        } else if head.chunked {
            State::Chunked(Chunk::Size {
                size: 0,
                digits: 0,
                extension: false,
            })
        } else {
            match head.content_length {
                Some(length) if length > 0 => State::Body(length),
                _ => State::request_line(),
            }
        };
    }

    fn chunk_byte(&mut self, byte: u8) {
        let State::Chunked(chunk) = &mut self.state else {
            return;
        };
        let next = match *chunk {
            Chunk::Size {
                size,
                digits,
                extension,
            } => match byte {
                b'\n' if digits == 0 => None,
                b'\n' if size == 0 => Some(Chunk::Trailer { line_len: 0 }),
                b'\n' => Some(Chunk::Data(size)),
                b'\r' => Some(*chunk),
                _ if extension => Some(*chunk),
                b';' | b' ' | b'\t' => Some(Chunk::Size {
                    size,
                    digits,
                    extension: true,
                }),
                _ => match (byte as char).to_digit(16) {
                    Some(digit) if digits < 15 => Some(Chunk::Size {
                        size: size * 16 + u64::from(digit),
                        digits: digits + 1,
                        extension,
                    }),
                    _ => None,
                },
            },
            Chunk::DataEnd => match byte {
                b'\r' => Some(Chunk::DataEnd),
                b'\n' => Some(Chunk::Size {
                    size: 0,
                    digits: 0,
                    extension: false,
                }),
                _ => None,
            },
            Chunk::Trailer { line_len } => match byte {
                b'\r' => Some(*chunk),
                b'\n' if line_len == 0 => {
                    self.state = State::request_line();
                    return;
                }
                b'\n' => Some(Chunk::Trailer { line_len: 0 }),
                _ => Some(Chunk::Trailer {
                    line_len: line_len + 1,
                }),
            },
            Chunk::Data(_) => Some(*chunk),
        };
        self.state = next.map_or(State::Off, State::Chunked);
    }
}

impl Head {
    /// Reads a header line's framing: `Content-Length`, `Transfer-Encoding`, `Upgrade`.
    fn read_line(&mut self) {
        if self.line_len > self.line.len() {
            // Longer than kept: not a framing header the watch can read whole.
            if self.line.len() >= 15 && self.line[..15].eq_ignore_ascii_case(b"content-length:")
                || self.line.len() >= 18
                    && self.line[..18].eq_ignore_ascii_case(b"transfer-encoding:")
            {
                self.unreadable = true;
            }
            return;
        }
        let Some(colon) = self.line.iter().position(|&byte| byte == b':') else {
            return;
        };
        let name = &self.line[..colon];
        let value = String::from_utf8_lossy(&self.line[colon + 1..]);
        let value = value.trim();
        if name.eq_ignore_ascii_case(b"content-length") {
            match value.parse::<u64>() {
                Ok(length) if self.content_length.is_none_or(|known| known == length) => {
                    self.content_length = Some(length);
                }
                _ => self.unreadable = true,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or("").trim();
            if last.eq_ignore_ascii_case("chunked") {
                self.chunked = true;
            } else {
                self.unreadable = true;
            }
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.upgrade = true;
        }
    }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
