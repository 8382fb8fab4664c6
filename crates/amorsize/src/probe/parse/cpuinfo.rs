//! `/proc/cpuinfo`: one block of `key : value` lines per logical CPU, blocks separated by
//! blank lines (`proc_cpuinfo(5)`). On x86 each block names its `physical id` (package) and
//! `core id`; other architectures may leave them out, which the caller treats as unknown.

use super::ParseError;

/// What `/proc/cpuinfo` says about one logical CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CpuInfoEntry {
    /// The logical CPU number (`processor`).
    pub processor: u32,
    /// The package (socket) number (`physical id`), when given.
    pub physical_id: Option<u32>,
    /// The core number within the package (`core id`), when given.
    pub core_id: Option<u32>,
}

/// Parses `/proc/cpuinfo` into one entry per `processor` block. Blocks without a `processor`
/// line (ARM's trailing `Hardware` block) and lines without a colon are skipped: the format
/// differs by architecture and only the three keys above matter here.
///
/// # Errors
///
/// A [`ParseError`] when `processor`, `physical id` or `core id` is not a number.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::cpuinfo::parse_cpuinfo;
///
/// let text = "processor\t: 0\nphysical id\t: 0\ncore id\t\t: 3\n\nprocessor\t: 1\n";
/// let cpus = parse_cpuinfo(text).unwrap();
/// assert_eq!((cpus[0].processor, cpus[0].core_id), (0, Some(3)));
/// assert_eq!(cpus[1].physical_id, None);
/// ```
pub fn parse_cpuinfo(text: &str) -> Result<Vec<CpuInfoEntry>, ParseError> {
    let mut entries = Vec::new();
    let mut current: Option<CpuInfoEntry> = None;
    let mut pending_ids: (Option<u32>, Option<u32>) = (None, None);
    for line in text.lines() {
        if line.trim().is_empty() {
            entries.extend(current.take());
            pending_ids = (None, None);
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let number = || {
            value.trim().parse::<u32>().map_err(|_| {
                ParseError::new(
                    "a number after \"processor\", \"physical id\" or \"core id\"",
                    line,
                )
            })
        };
        match key.trim() {
            "processor" => {
                entries.extend(current.take());
                current = Some(CpuInfoEntry {
                    processor: number()?,
                    physical_id: pending_ids.0,
                    core_id: pending_ids.1,
                });
            }
            "physical id" => match current.as_mut() {
                Some(cpu) => cpu.physical_id = Some(number()?),
                None => pending_ids.0 = Some(number()?),
            },
            "core id" => match current.as_mut() {
                Some(cpu) => cpu.core_id = Some(number()?),
                None => pending_ids.1 = Some(number()?),
            },
            _ => {}
        }
    }
    entries.extend(current);
    Ok(entries)
}

/// The CPU model: the first `model name` line (x86, `show_cpuinfo` in the kernel's
/// `arch/x86/kernel/cpu/proc.c`), else the first `Model`, `cpu model` or `uarch` line other
/// architectures print (arm64 boards, mips, riscv); `None` when there is none or it is empty.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::cpuinfo::parse_cpu_model;
///
/// let text = "processor\t: 0\nmodel name\t: Example CPU @ 3.00GHz\n";
/// assert_eq!(parse_cpu_model(text).as_deref(), Some("Example CPU @ 3.00GHz"));
/// assert_eq!(parse_cpu_model("processor : 0\n"), None);
/// ```
pub fn parse_cpu_model(text: &str) -> Option<String> {
    ["model name", "Model", "cpu model", "uarch"]
        .into_iter()
        .find_map(|wanted| {
            text.lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(key, _)| key.trim() == wanted)
                .map(|(_, value)| value.trim().to_owned())
        })
        .filter(|model| !model.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn x86_blocks() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nphysical id\t: 1\nsiblings\t: 2\n\
                    core id\t\t: 0\nflags\t\t: fpu vme\n\nprocessor\t: 1\nphysical id\t: 1\n\
                    core id\t\t: 0\n\n";
        let cpus = parse_cpuinfo(text).unwrap();
        assert_eq!(cpus.len(), 2);
        assert!(cpus
            .iter()
            .all(|c| c.physical_id == Some(1) && c.core_id == Some(0)));
    }

    #[test]
    fn arm_blocks_without_ids() {
        let text = "processor\t: 0\nBogoMIPS\t: 48.00\n\nprocessor\t: 1\nBogoMIPS\t: 48.00\n\n\
                    Hardware\t: BCM2835\n";
        let cpus = parse_cpuinfo(text).unwrap();
        assert_eq!(cpus.len(), 2);
        assert!(cpus.iter().all(|c| c.core_id.is_none()));
    }

    #[test]
    fn cpu_model_by_architecture() {
        assert_eq!(
            parse_cpu_model("processor : 0\nmodel name : A\n\nprocessor : 1\nmodel name : B\n")
                .as_deref(),
            Some("A")
        );
        assert_eq!(
            parse_cpu_model("Hardware : x\nModel : Raspberry Pi 4\n").as_deref(),
            Some("Raspberry Pi 4")
        );
        assert_eq!(parse_cpu_model("model name :   \n"), None);
    }

    #[test]
    fn rejects_bad_numbers() {
        assert!(parse_cpuinfo("processor : x\n").is_err());
        assert!(parse_cpuinfo("processor : 0\ncore id : -1\n").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse_cpuinfo(&text);
            let _ = parse_cpu_model(&text);
        }

        #[test]
        fn never_panics_on_near_misses(text in "((processor|core id|physical id|x) ?: ?[0-9a]{0,3}\n{1,2}){0,8}") {
            let _ = parse_cpuinfo(&text);
        }
    }
}
