//! The nesting check of `mosaik.codec.MSGPACK`: one pass over msgpack
//! bytes, with an explicit stack instead of recursion, that refuses a value
//! nested deeper than the codec's bound before Python decodes it (decoding a
//! tuple recurses through `msgpack.unpackb` once per level, each level
//! taking tens of KiB of C stack). The bound is defined here (a constant
//! argument would cost every call its conversion) and is
//! `mosaik.codec.MAX_DEPTH` in Python.
//!
//! A tuple travels as extension 1 holding the msgpack of a list; the
//! extension and that list count as one level, and the extension must hold
//! exactly one array (which is all the encoder ever writes).

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::codec_error;

/// How many containers (lists, tuples, dicts) deep a value may nest.
pub const MSGPACK_MAX_DEPTH: usize = 32;

/// The msgpack extension type of a tuple (`_TUPLE` in `mosaik/codec.py`).
const TUPLE_EXT: i8 = 1;

/// Why bytes were refused.
enum Refusal {
    TooDeep,
    Malformed(&'static str, usize),
}

/// What the header at some offset announces.
enum Item {
    /// A value without children, `len` bytes long header included.
    Scalar(usize),
    /// An array of `len` values after `header` bytes.
    Array { header: usize, len: u64 },
    /// A map of `len` key-value pairs after `header` bytes.
    Map { header: usize, len: u64 },
    /// An extension: `header` bytes (type code last), then `len` bytes.
    Ext { header: usize, len: usize, code: i8 },
}

/// A container being read: values still to come, and for a tuple the
/// offset its extension's payload ends at.
struct Open {
    left: u64,
    end: Option<usize>,
}

/// The big-endian unsigned integer of `N` bytes at `at`.
fn be<const N: usize>(data: &[u8], at: usize) -> Result<u64, Refusal> {
    let bytes = data
        .get(at..at + N)
        .ok_or(Refusal::Malformed("truncated", at))?;
    Ok(bytes.iter().fold(0, |n, b| (n << 8) | u64::from(*b)))
}

/// A length as an offset (saturating: it is checked against the data).
fn offset(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The item whose header starts at `at`.
fn item(data: &[u8], at: usize) -> Result<Item, Refusal> {
    let Some(&b) = data.get(at) else {
        return Err(Refusal::Malformed("truncated", at));
    };
    let sized = |header: usize, len: u64| Item::Scalar(header.saturating_add(offset(len)));
    let ext = |header: usize, len: u64| match data.get(at + header - 1) {
        Some(&code) => Ok(Item::Ext {
            header,
            len: offset(len),
            code: i8::from_be_bytes([code]),
        }),
        None => Err(Refusal::Malformed("truncated", at)),
    };
    Ok(match b {
        0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => Item::Scalar(1),
        0x80..=0x8f => Item::Map {
            header: 1,
            len: u64::from(b & 0x0f),
        },
        0x90..=0x9f => Item::Array {
            header: 1,
            len: u64::from(b & 0x0f),
        },
        0xa0..=0xbf => sized(1, u64::from(b & 0x1f)),
        0xc1 => return Err(Refusal::Malformed("the reserved byte 0xc1", at)),
        0xc4 | 0xd9 => sized(2, be::<1>(data, at + 1)?),
        0xc5 | 0xda => sized(3, be::<2>(data, at + 1)?),
        0xc6 | 0xdb => sized(5, be::<4>(data, at + 1)?),
        0xc7 => ext(3, be::<1>(data, at + 1)?)?,
        0xc8 => ext(4, be::<2>(data, at + 1)?)?,
        0xc9 => ext(6, be::<4>(data, at + 1)?)?,
        0xcc | 0xd0 => Item::Scalar(2),
        0xcd | 0xd1 => Item::Scalar(3),
        0xca | 0xce | 0xd2 => Item::Scalar(5),
        0xcb | 0xcf | 0xd3 => Item::Scalar(9),
        0xd4..=0xd8 => ext(2, 1 << (b - 0xd4))?,
        0xdc => Item::Array {
            header: 3,
            len: be::<2>(data, at + 1)?,
        },
        0xdd => Item::Array {
            header: 5,
            len: be::<4>(data, at + 1)?,
        },
        0xde => Item::Map {
            header: 3,
            len: be::<2>(data, at + 1)?,
        },
        0xdf => Item::Map {
            header: 5,
            len: be::<4>(data, at + 1)?,
        },
    })
}

/// Checks that `data` is exactly one msgpack value nested at most
/// `max_depth` containers deep. Every value takes at least one byte, so the
/// work is linear in `data.len()` whatever the headers announce.
fn check(data: &[u8], max_depth: usize) -> Result<(), Refusal> {
    let mut open: Vec<Open> = Vec::new();
    let mut at = 0;
    loop {
        let start = at;
        let opened = match item(data, start)? {
            Item::Scalar(len) => {
                at = start.saturating_add(len);
                None
            }
            Item::Array { header, len } => {
                at = start + header;
                Some(Open {
                    left: len,
                    end: None,
                })
            }
            Item::Map { header, len } => {
                at = start + header;
                Some(Open {
                    left: 2 * len,
                    end: None,
                })
            }
            Item::Ext { header, len, code } if code == TUPLE_EXT => {
                let payload = start + header;
                let end = payload.saturating_add(len);
                let Item::Array { header, len } = item(data, payload)? else {
                    return Err(Refusal::Malformed("a tuple not holding an array", start));
                };
                at = payload + header;
                Some(Open {
                    left: len,
                    end: Some(end),
                })
            }
            Item::Ext { header, len, .. } => {
                at = (start + header).saturating_add(len);
                None
            }
        };
        if at > data.len() {
            return Err(Refusal::Malformed("truncated", start));
        }
        if let Some(container) = opened {
            if open.len() >= max_depth {
                return Err(Refusal::TooDeep);
            }
            if container.left > 0 {
                open.push(container);
                continue;
            }
            closed(&container, at)?;
        }
        // A value ended at `at`: so did every container it was the last of.
        loop {
            let Some(top) = open.last_mut() else {
                return if at == data.len() {
                    Ok(())
                } else {
                    Err(Refusal::Malformed("extra data", at))
                };
            };
            if top.left > 1 {
                top.left -= 1;
                break;
            }
            closed(top, at)?;
            open.pop();
        }
    }
}

/// A tuple must end where its extension's payload does.
fn closed(container: &Open, at: usize) -> Result<(), Refusal> {
    match container.end {
        Some(end) if end != at => Err(Refusal::Malformed("a tuple of the wrong length", at)),
        _ => Ok(()),
    }
}

/// Raises `mosaik.CodecError` unless `data` (bytes, or any buffer) is one
/// msgpack value nested at most `MSGPACK_MAX_DEPTH` containers deep.
#[pyfunction]
pub fn check_msgpack_depth(data: &Bound<'_, PyAny>) -> PyResult<()> {
    let checked = match data.cast::<PyBytes>() {
        Ok(bytes) => check(bytes.as_bytes(), MSGPACK_MAX_DEPTH),
        Err(_) => check(
            &PyBuffer::<u8>::get(data)?.to_vec(data.py())?,
            MSGPACK_MAX_DEPTH,
        ),
    };
    checked.map_err(|refusal| {
        let message = match refusal {
            Refusal::TooDeep => format!("nested deeper than {MSGPACK_MAX_DEPTH} containers"),
            Refusal::Malformed(what, at) => format!("malformed msgpack: {what} at byte {at}"),
        };
        codec_error(message)
    })
}
