use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::IdError;

/// A 16-byte trace identifier, shown as 32 lowercase hex digits.
///
/// The all-zero id is invalid in W3C trace context and OTLP; [`TraceId::random`] never returns
/// it and parsing rejects it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId([u8; 16]);

/// An 8-byte span identifier, shown as 16 lowercase hex digits.
///
/// The all-zero id is invalid; [`SpanId::random`] never returns it and parsing rejects it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId([u8; 8]);

/// Random bytes from this thread's id generator.
fn random_bytes<const N: usize>() -> [u8; N] {
    thread_local! {
        static IDS: RefCell<SmallRng> = RefCell::new(SmallRng::from_rng(&mut rand::rng()));
    }
    // Filled from whole 64-bit draws, not one draw per byte: ids are 8 or 16 bytes.
    const { assert!(N.is_multiple_of(8)) };
    let mut bytes = [0; N];
    IDS.with(|generator| {
        let mut generator = generator.borrow_mut();
        for chunk in bytes.chunks_exact_mut(8) {
            chunk.copy_from_slice(&generator.next_u64().to_le_bytes());
        }
    });
    bytes
}

/// The two lowercase hex digits of every byte value.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [HEX[byte >> 4], HEX[byte & 0x0f]];
        byte += 1;
    }
    pairs
};

macro_rules! hex_id {
    ($name:ident, $len:expr, $what:expr) => {
        impl $name {
            /// The length of the id in bytes.
            pub const LEN: usize = $len;

            /// Wraps raw bytes. The all-zero value is accepted here; see [`Self::is_valid`].
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// Copies an id out of a byte slice of exactly the right length, as OTLP carries it.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
                let array: [u8; $len] = bytes.try_into().map_err(|_| IdError::Length {
                    what: $what,
                    expected: $len * 2,
                    actual: bytes.len() * 2,
                })?;
                let id = Self(array);
                if id.is_valid() {
                    Ok(id)
                } else {
                    Err(IdError::Zero { what: $what })
                }
            }

            /// A random, never all-zero id.
            ///
            /// Drawn from a fast per-thread generator seeded from the operating system's
            /// entropy: ids are unique with overwhelming probability, as trace context asks,
            /// but not secret (the same trade as OpenTelemetry's SDKs make).
            pub fn random() -> Self {
                loop {
                    let bytes: [u8; $len] = random_bytes();
                    if bytes != [0; $len] {
                        return Self(bytes);
                    }
                }
            }

            /// The raw bytes.
            pub const fn to_bytes(self) -> [u8; $len] {
                self.0
            }

            /// The raw bytes, borrowed.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// True unless every byte is zero.
            pub fn is_valid(&self) -> bool {
                self.0 != [0; $len]
            }

            /// Parses exactly `2 * LEN` lowercase hex digits; rejects upper case and all zeros.
            pub fn from_hex(text: &str) -> Result<Self, IdError> {
                let mut bytes = [0u8; $len];
                decode_lower_hex(text, &mut bytes, $what)?;
                let id = Self(bytes);
                if id.is_valid() {
                    Ok(id)
                } else {
                    Err(IdError::Zero { what: $what })
                }
            }
        }

        impl $name {
            /// Lowercase hex digits, encoded on the stack (ids are formatted on the request
            /// path, into `traceparent` and `x-trace-id` headers).
            pub fn to_hex_bytes(&self) -> [u8; $len * 2] {
                let mut text = [0u8; $len * 2];
                for (pair, byte) in text.chunks_exact_mut(2).zip(self.0) {
                    pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
                }
                text
            }
        }

        impl fmt::Display for $name {
            /// Lowercase hex, written at once.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let text = self.to_hex_bytes();
                // Only ASCII hex digits were written.
                f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, IdError> {
                Self::from_hex(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::from_hex(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_id!(TraceId, 16, "trace id");
hex_id!(SpanId, 8, "span id");

/// Decodes lowercase hex into `out`, which fixes the expected length.
pub(crate) fn decode_lower_hex(
    text: &str,
    out: &mut [u8],
    what: &'static str,
) -> Result<(), IdError> {
    let digits = text.as_bytes();
    if digits.len() != out.len() * 2 {
        return Err(IdError::Length {
            what,
            expected: out.len() * 2,
            actual: digits.len(),
        });
    }
    for (slot, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *slot = (lower_hex_value(pair[0], what)? << 4) | lower_hex_value(pair[1], what)?;
    }
    Ok(())
}

fn lower_hex_value(digit: u8, what: &'static str) -> Result<u8, IdError> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        _ => Err(IdError::Digit {
            what,
            digit: char::from(digit),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_round_trips_through_lowercase_hex() {
        let id = TraceId::random();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text, text.to_lowercase());
        assert_eq!(text.parse::<TraceId>(), Ok(id));
    }

    #[test]
    fn span_id_round_trips_through_serde_as_a_hex_string() {
        let id = SpanId::from_hex("00f067aa0ba902b7").expect("valid id");
        let json = serde_json::to_string(&id).expect("serializes");
        assert_eq!(json, "\"00f067aa0ba902b7\"");
        assert_eq!(
            serde_json::from_str::<SpanId>(&json).expect("deserializes"),
            id
        );
    }

    #[test]
    fn parsing_rejects_upper_case_wrong_length_and_zero() {
        assert_eq!(
            SpanId::from_hex("00F067AA0BA902B7"),
            Err(IdError::Digit {
                what: "span id",
                digit: 'F'
            })
        );
        assert_eq!(
            TraceId::from_hex("abc"),
            Err(IdError::Length {
                what: "trace id",
                expected: 32,
                actual: 3
            })
        );
        assert_eq!(
            SpanId::from_hex("0000000000000000"),
            Err(IdError::Zero { what: "span id" })
        );
    }

    #[test]
    fn from_slice_checks_length_and_zero() {
        assert!(SpanId::from_slice(&[1; 8]).is_ok());
        assert!(matches!(
            SpanId::from_slice(&[1; 7]),
            Err(IdError::Length { .. })
        ));
        assert!(matches!(
            TraceId::from_slice(&[0; 16]),
            Err(IdError::Zero { .. })
        ));
    }

    #[test]
    fn random_ids_are_valid_and_distinct() {
        let a = TraceId::random();
        let b = TraceId::random();
        assert!(a.is_valid() && b.is_valid());
        assert_ne!(a, b);
    }

    #[test]
    fn every_thread_draws_its_own_ids() {
        // Each thread seeds its own generator: the first ids of fresh threads must differ.
        let firsts: Vec<TraceId> = (0..8)
            .map(|_| std::thread::spawn(TraceId::random).join().expect("draws"))
            .collect();
        for (i, a) in firsts.iter().enumerate() {
            assert!(firsts[i + 1..].iter().all(|b| a != b), "{firsts:?}");
        }
        let spans: std::collections::HashSet<SpanId> =
            (0..10_000).map(|_| SpanId::random()).collect();
        assert_eq!(spans.len(), 10_000);
    }
}
