//! The processor cores Windows lists: the buffer `GetLogicalProcessorInformationEx` fills for
//! `RelationProcessorCore`, a run of `SYSTEM_LOGICAL_PROCESSOR_INFORMATION_EX` records, one per
//! physical core. Read here as bytes, so that the parser is pure and tested on every platform.
//!
//! Layout (Microsoft's documentation of `SYSTEM_LOGICAL_PROCESSOR_INFORMATION_EX` and
//! `PROCESSOR_RELATIONSHIP`, little-endian): `Relationship: u32` at 0, `Size: u32` at 4 (the
//! whole record's length, to the next record), then the `PROCESSOR_RELATIONSHIP`: `Flags: u8`
//! at 8 (`LTP_PC_SMT` when the core runs several logical processors), `EfficiencyClass: u8`
//! at 9 (higher is faster; all 0 where the cores are of one kind).

use super::ParseError;

/// `LOGICAL_PROCESSOR_RELATIONSHIP::RelationProcessorCore`.
const RELATION_PROCESSOR_CORE: u32 = 0;

/// The bytes a core record has at least: the header and the two fields read.
const MIN_RECORD: usize = 10;

/// What the records say about the cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cores {
    /// Physical cores (records).
    pub cores: usize,
    /// Cores of the highest efficiency class, when the classes differ (cores of two kinds).
    pub performance: Option<usize>,
}

/// Counts the core records of `buf`.
///
/// # Errors
///
/// When a record's size runs past the buffer or is too small to hold a core, or a record is
/// not a core's.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::processor_cores::parse_processor_cores;
///
/// // Two cores of one kind, 48 bytes each.
/// let mut buf = Vec::new();
/// for _ in 0..2 {
///     let mut record = vec![0u8; 48];
///     record[4..8].copy_from_slice(&48u32.to_le_bytes());
///     buf.extend(record);
/// }
/// let cores = parse_processor_cores(&buf).unwrap();
/// assert_eq!((cores.cores, cores.performance), (2, None));
/// ```
pub fn parse_processor_cores(buf: &[u8]) -> Result<Cores, ParseError> {
    let mut classes = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        let u32_at = |i: usize| {
            rest.get(i..i + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let short =
            || ParseError::new("a whole processor record", &format!("{} bytes", rest.len()));
        let (Some(relation), Some(size)) = (u32_at(0), u32_at(4)) else {
            return Err(short());
        };
        let size = size as usize;
        if size < MIN_RECORD || size > rest.len() {
            return Err(short());
        }
        if relation != RELATION_PROCESSOR_CORE {
            return Err(ParseError::new(
                "a processor core record (relationship 0)",
                &relation.to_string(),
            ));
        }
        classes.push(rest[9]);
        at += size;
    }
    let fastest = classes.iter().copied().max();
    let slowest = classes.iter().copied().min();
    let performance = match (fastest, slowest) {
        (Some(f), Some(s)) if f != s => Some(classes.iter().filter(|&&c| c == f).count()),
        _ => None,
    };
    Ok(Cores {
        cores: classes.len(),
        performance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(class: u8, size: u32) -> Vec<u8> {
        let mut r = vec![0u8; size as usize];
        r[4..8].copy_from_slice(&size.to_le_bytes());
        r[9] = class;
        r
    }

    #[test]
    fn cores_of_two_kinds_count_the_faster() {
        let buf: Vec<u8> = [1, 1, 0, 0, 0, 0]
            .iter()
            .flat_map(|&c| record(c, 48))
            .collect();
        assert_eq!(
            parse_processor_cores(&buf),
            Ok(Cores {
                cores: 6,
                performance: Some(2)
            })
        );
    }

    #[test]
    fn records_of_other_sizes_are_stepped_over_by_their_size() {
        let buf: Vec<u8> = [record(0, 48), record(0, 80), record(0, 48)].concat();
        assert_eq!(parse_processor_cores(&buf).map(|c| c.cores), Ok(3));
        assert_eq!(parse_processor_cores(&[]).map(|c| c.cores), Ok(0));
    }

    #[test]
    fn a_bad_buffer_is_an_error_not_a_panic() {
        assert!(parse_processor_cores(&[0u8; 5]).is_err());
        let mut too_small = record(0, 48);
        too_small[4..8].copy_from_slice(&4u32.to_le_bytes());
        assert!(parse_processor_cores(&too_small).is_err());
        let mut past_the_end = record(0, 48);
        past_the_end[4..8].copy_from_slice(&64u32.to_le_bytes());
        assert!(parse_processor_cores(&past_the_end).is_err());
        let mut numa = record(0, 48);
        numa[0] = 1;
        assert!(parse_processor_cores(&numa).is_err());
    }
}
