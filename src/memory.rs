//! How much heap memory the process may still take, so that an input which would need more is
//! refused before anything is allocated, with the figure, instead of aborting half-way.
//!
//! The budget is the smallest of: the kernel's `MemAvailable`, what the cgroup (container) still
//! allows (`memory.max − memory.current`), and what `ulimit -d` / `ulimit -v` leave beyond the
//! process's current size. Memory-mapped files are not heap and are not counted against it.
use crate::error::{Error, Result};

/// Refuses `bytes` of new heap memory for `what` when the budget cannot hold it.
pub fn reserve(what: &str, bytes: u64) -> Result<()> {
    let available = available();
    if bytes > available {
        return Err(Error::Memory {
            what: what.to_string(),
            needed: bytes,
            available,
        });
    }
    Ok(())
}

/// The budget in bytes (u64::MAX when nothing can be read, as on non-Linux systems).
pub fn available() -> u64 {
    [meminfo_available(), cgroup_available(), rlimit_available()]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(u64::MAX)
}

/// A `key:  value kB` line of a /proc status-like file, in bytes.
fn kb_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb.saturating_mul(1024))
}

fn meminfo_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    kb_field(&text, "MemAvailable:")
}

fn cgroup_available() -> Option<u64> {
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let max = read("memory.max")?; // "max" (no limit) does not parse: None
    Some(max.saturating_sub(read("memory.current").unwrap_or(0)))
}

/// What RLIMIT_DATA and RLIMIT_AS leave beyond the process's current data and address space.
fn rlimit_available() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let limit = |resource| {
            let mut r = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes into the struct we own; no other memory is touched.
            let ok = unsafe { libc::getrlimit(resource, &mut r) } == 0;
            (ok && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur)
        };
        let data = limit(libc::RLIMIT_DATA)
            .map(|l| l.saturating_sub(kb_field(&status, "VmData:").unwrap_or(0)));
        let space = limit(libc::RLIMIT_AS)
            .map(|l| l.saturating_sub(kb_field(&status, "VmSize:").unwrap_or(0)));
        [data, space].into_iter().flatten().min()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_read_and_refuses_the_impossible() {
        let a = available();
        assert!(a > 1 << 20, "less than 1 MiB available? {a}");
        let e = reserve("a test", u64::MAX).unwrap_err().to_string();
        assert!(e.starts_with("a test needs 16384.0 PiB but only"), "{e}");
        reserve("a test", 1024).unwrap();
    }

    #[test]
    fn status_fields_parse() {
        let text = "Name:\tx\nVmData:\t  1234 kB\nMemAvailable:   10 kB\n";
        assert_eq!(kb_field(text, "VmData:"), Some(1234 * 1024));
        assert_eq!(kb_field(text, "MemAvailable:"), Some(10 * 1024));
        assert_eq!(kb_field(text, "Missing:"), None);
    }
}
