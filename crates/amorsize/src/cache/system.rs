//! The two system figures the fingerprint needs that [`probe`](crate::probe) does not report:
//! the CPU model and the kernel release. They are read here, in one small function over a root
//! directory, until `probe` reports them; parsing is pure.

use std::path::Path;

/// The CPU model and kernel release, empty where unreadable.
pub(crate) struct System {
    pub(crate) cpu_model: String,
    pub(crate) kernel: String,
}

/// Reads them under `/`.
pub(crate) fn read() -> System {
    read_under(Path::new("/"))
}

/// Reads `proc/cpuinfo` and `proc/sys/kernel/osrelease` under `root`; a missing file gives an
/// empty figure (a fingerprint with less detail, never an error).
pub(crate) fn read_under(root: &Path) -> System {
    let text = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_default();
    System {
        cpu_model: cpu_model(&text("proc/cpuinfo")),
        kernel: text("proc/sys/kernel/osrelease").trim().to_owned(),
    }
}

/// The first `model name` line of `/proc/cpuinfo` (x86; see `show_cpuinfo` in the kernel's
/// arch/x86/kernel/cpu/proc.c), else the first `Model`, `cpu model` or `uarch` line other
/// architectures print (arm64, mips, riscv).
pub(crate) fn cpu_model(cpuinfo: &str) -> String {
    for wanted in ["model name", "Model", "cpu model", "uarch"] {
        for line in cpuinfo.lines() {
            if let Some((k, v)) = line.split_once(':') {
                if k.trim() == wanted {
                    return v.trim().to_owned();
                }
            }
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_name_comes_from_the_first_x86_line() {
        let text = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R)\n\nprocessor\t: 1\nmodel name\t: Other\n";
        assert_eq!(cpu_model(text), "Intel(R) Xeon(R)");
    }

    #[test]
    fn other_architectures_and_missing_text() {
        assert_eq!(
            cpu_model("Hardware\t: x\nModel\t: Raspberry Pi 4\n"),
            "Raspberry Pi 4"
        );
        assert_eq!(cpu_model(""), "");
        let sys = read_under(Path::new("/nonexistent-root-for-amorsize"));
        assert_eq!((sys.cpu_model.as_str(), sys.kernel.as_str()), ("", ""));
    }
}
