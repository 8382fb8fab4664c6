//! Serialization cost per item, for backends that move items and results between processes:
//! encoded bytes and the time of an encode + decode round trip, with postcard (the encoding
//! the process backend uses).

use crate::units::Seconds;
use crate::{Error, ErrorKind, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde::Serialize;
use std::time::Instant;

/// Serialization figures per item (zero for the thread backend).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// Time to encode one input item and decode it on the other side.
    pub input_time: Seconds,
    /// Time to encode one result and decode it on the other side.
    pub output_time: Seconds,
    /// Encoded bytes of one input item.
    pub input_bytes: u64,
    /// Encoded bytes of one result.
    pub output_bytes: u64,
}

/// Measures the serialization of sampled `inputs` and `results` (each with its input index):
/// mean encoded bytes and mean encode + decode time per item, in and out.
///
/// # Errors
///
/// [`ErrorKind::Serialization`] naming the item when a value does not survive the round trip.
///
/// # Examples
///
/// ```
/// let inputs = [(0, &vec![1u8; 100]), (1, &vec![2u8; 100])];
/// let results = [(0, &1u64), (1, &2u64)];
/// let t = amorsize::sample::measure_transfer(inputs, results).unwrap();
/// assert!(t.input_bytes >= 100);
/// assert!(t.output_bytes >= 1);
/// ```
pub fn measure_transfer<'a, 'b, T, R>(
    inputs: impl IntoIterator<Item = (usize, &'a T)>,
    results: impl IntoIterator<Item = (usize, &'b R)>,
) -> Result<Transfer>
where
    T: Serialize + DeserializeOwned + 'a,
    R: Serialize + DeserializeOwned + 'b,
{
    let (input_time, input_bytes) = round_trips(inputs, "input")?;
    let (output_time, output_bytes) = round_trips(results, "result")?;
    Ok(Transfer {
        input_time,
        output_time,
        input_bytes,
        output_bytes,
    })
}

/// Mean round-trip time and mean encoded bytes of `values`.
fn round_trips<'a, V>(
    values: impl IntoIterator<Item = (usize, &'a V)>,
    what: &str,
) -> Result<(f64, u64)>
where
    V: Serialize + DeserializeOwned + 'a,
{
    let (mut time, mut bytes, mut count) = (0.0, 0u64, 0u64);
    for (index, value) in values {
        let start = Instant::now();
        let encoded = postcard::to_allocvec(value).map_err(|e| {
            Error::new(
                ErrorKind::Serialization,
                format!("the {what} of item {index} cannot be serialized: {e}"),
            )
            .with_item(index)
            .with_source(e)
        })?;
        let decoded: V = postcard::from_bytes(&encoded).map_err(|e| {
            Error::new(
                ErrorKind::Serialization,
                format!("the {what} of item {index} does not deserialize after encoding: {e}"),
            )
            .with_item(index)
            .with_source(e)
        })?;
        time += start.elapsed().as_secs_f64();
        drop(std::hint::black_box(decoded));
        bytes += encoded.len() as u64;
        count += 1;
    }
    if count == 0 {
        return Ok((0.0, 0));
    }
    Ok((time / count as f64, bytes.div_ceil(count)))
}
