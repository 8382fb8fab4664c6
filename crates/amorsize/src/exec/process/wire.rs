//! The wire protocol between the parent and a worker: length-prefixed frames over pipes, each a
//! postcard-encoded header followed by the postcard encodings of the items (or results), one
//! after the other.
//!
//! ```text
//! frame    = length: u32 little-endian, then `length` bytes of payload
//! hello    = Hello                                     (worker → parent, once, at start)
//! request  = Request::Chunk, then `count` encoded items (parent → worker)
//! response = Response::Chunk, then `count` slots       (worker → parent)
//! slot     = 0u8 then the encoded result | 1u8 then an encoded ItemFailure
//! ```
//!
//! Postcard is self-delimiting for a known type, so items need no length of their own
//! (postcard wire format: <https://postcard.jamesmunns.com/wire-format>).

use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

/// Identifies an amorsize worker's first frame ("amorsize" in ASCII), so that an executable
/// that does not call `init` is recognised instead of misread.
pub(super) const MAGIC: u64 = u64::from_le_bytes(*b"amorsize");

/// Protocol version; parent and worker are the same executable, so this guards only against
/// a stale binary replaced on disk between two starts.
pub(super) const VERSION: u32 = 2;

/// Frames above this size are refused: a corrupt length must not make us allocate gigabytes.
pub(super) const MAX_FRAME: usize = 1 << 31;

/// A worker's first frame.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Hello {
    pub magic: u64,
    pub version: u32,
    pub pid: u32,
}

/// What the parent asks of a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Request<'a> {
    /// Run the registered function `function` on `count` items, the first being input item
    /// `first`; the items follow the header.
    Chunk {
        function: &'a str,
        first: u64,
        count: u32,
    },
}

/// What a worker answers.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Response {
    /// `count` slots follow, for the first `count` items of the request; `busy_nanos` is the
    /// time the worker spent decoding, running the function and encoding. When `stopped` says
    /// why, item `first + count` could not be decoded and the items after it were not run
    /// (their position in the request is unknown once one item's bytes are unusable).
    ///
    /// `peak_rss` is the worker's peak resident set after the chunk, in bytes (its
    /// `getrusage` `ru_maxrss`; 0 when it could not be read): over the worker's whole life,
    /// so a worker that ran a larger function before reports that one's.
    Chunk {
        count: u32,
        busy_nanos: u64,
        stopped: Option<String>,
        peak_rss: u64,
    },
    /// The worker has no function of that name.
    Unknown { function: String },
    /// The request could not be decoded.
    Malformed { message: String },
}

/// Why one item failed inside a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ItemFailure {
    pub kind: FailureKind,
    pub message: String,
}

/// The category of an [`ItemFailure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum FailureKind {
    /// The function panicked.
    Panicked,
    /// The item could not be decoded or the result could not be encoded.
    Serialization,
}

/// Slot tag of a result.
pub(super) const SLOT_OK: u8 = 0;
/// Slot tag of an [`ItemFailure`].
pub(super) const SLOT_FAILED: u8 = 1;

/// A postcard output that appends to a borrowed `Vec`, so that many values share one buffer.
pub(super) struct Append<'a>(pub &'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Appends the encoding of `value` to `buf`; on failure `buf` is left as it was.
pub(super) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
) -> postcard::Result<()> {
    let len = buf.len();
    let result = postcard::serialize_with_flavor(value, Append(buf));
    if result.is_err() {
        buf.truncate(len);
    }
    result
}

/// Writes one frame made of `parts` laid end to end.
pub(super) fn write_frame(w: &mut impl Write, parts: &[&[u8]]) -> io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a frame of {len} bytes is above the limit of {MAX_FRAME} bytes; use smaller chunks"),
        ));
    }
    w.write_all(&(len as u32).to_le_bytes())?;
    for part in parts {
        w.write_all(part)?;
    }
    w.flush()
}

/// Reads one frame into `buf` (replacing its contents). End of file before the first byte is
/// `UnexpectedEof` like any other truncation: a peer that goes away mid-conversation is an
/// error either way.
pub(super) fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame length {len} is above the limit of {MAX_FRAME} bytes"),
        ));
    }
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_back_to_back() {
        let mut pipe = Vec::new();
        write_frame(&mut pipe, &[b"ab", b"", b"cde"]).unwrap();
        write_frame(&mut pipe, &[]).unwrap();
        let mut r = &pipe[..];
        let mut buf = Vec::new();
        read_frame(&mut r, &mut buf).unwrap();
        assert_eq!(buf, b"abcde");
        read_frame(&mut r, &mut buf).unwrap();
        assert!(buf.is_empty());
        let err = read_frame(&mut r, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_truncated_frame_is_an_error() {
        let mut pipe = Vec::new();
        write_frame(&mut pipe, &[b"abcdef"]).unwrap();
        pipe.truncate(7);
        let err = read_frame(&mut &pipe[..], &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_huge_length_is_refused_without_allocating() {
        let pipe = u32::MAX.to_le_bytes();
        let err = read_frame(&mut &pipe[..], &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn values_appended_to_one_buffer_decode_in_turn() {
        let mut buf = Vec::new();
        encode_into(&(7u32, "x"), &mut buf).unwrap();
        encode_into(&vec![1u8, 2, 3], &mut buf).unwrap();
        let (a, rest): ((u32, String), _) = postcard::take_from_bytes(&buf).unwrap();
        let (b, rest): (Vec<u8>, _) = postcard::take_from_bytes(rest).unwrap();
        assert_eq!(a, (7, "x".to_owned()));
        assert_eq!(b, [1, 2, 3]);
        assert!(rest.is_empty());
    }

    #[test]
    fn a_failed_encoding_leaves_the_buffer_as_it_was() {
        struct Refuses;
        impl Serialize for Refuses {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let mut buf = vec![9u8];
        assert!(encode_into(&(1u8, Refuses), &mut buf).is_err());
        assert_eq!(buf, [9]);
    }
}
