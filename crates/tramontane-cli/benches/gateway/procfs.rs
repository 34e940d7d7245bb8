//! What a process and the processes it started cost, read from `/proc`: CPU time from
//! `/proc/PID/stat` (utime + stime, every thread, in clock ticks), context switches from
//! each thread's status, and resident memory.
//! A whole tree rather than one process, because a peer proxy may serve from workers it
//! forks (a Python server's workers); the gateway and the mock are one process each, where
//! the tree is that process alone.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// One `/proc/PID/stat` line, the fields the bench reads.
struct Stat {
    parent: u32,
    /// utime + stime, in clock ticks.
    ticks: u64,
    /// Resident pages.
    resident_pages: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces or parentheses: the fields
    // that follow start after the last `)`, at field 3 (the state).
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |number: usize| fields.get(number - 3)?.parse::<u64>().ok();
    Some(Stat {
        parent: u32::try_from(field(4)?).ok()?,
        ticks: field(14)? + field(15)?,
        resident_pages: field(24)?,
    })
}

/// A `getconf` value (`CLK_TCK`, `PAGESIZE`), or `default` where it cannot be read.
fn getconf(name: &str, default: u64) -> u64 {
    std::process::Command::new("getconf")
        .arg(name)
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(default)
}

/// The processes that descend from `roots`, the roots included.
fn tree(roots: &[u32]) -> Vec<(u32, Stat)> {
    let all: Vec<(u32, Stat)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .collect();
    let parents: HashMap<u32, u32> = all.iter().map(|(pid, s)| (*pid, s.parent)).collect();
    let descends = |mut pid: u32| loop {
        if roots.contains(&pid) {
            return true;
        }
        match parents.get(&pid) {
            Some(&parent) if parent > 1 && parent != pid => pid = parent,
            _ => return false,
        }
    };
    all.into_iter().filter(|(pid, _)| descends(*pid)).collect()
}

/// Processes measured together: one gateway, replicas of it, or a peer and its workers.
#[derive(Clone)]
pub struct Processes {
    roots: Vec<u32>,
    tick: Duration,
    page_bytes: u64,
}

impl Processes {
    pub fn new(roots: Vec<u32>) -> Processes {
        Processes {
            roots,
            tick: Duration::from_secs(1) / getconf("CLK_TCK", 100) as u32,
            page_bytes: getconf("PAGESIZE", 4096),
        }
    }

    /// The processes of the tree now, the roots first.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = tree(&self.roots).into_iter().map(|(pid, _)| pid).collect();
        pids.sort_by_key(|pid| !self.roots.contains(pid));
        pids
    }

    /// CPU time (user + system) the processes have run for so far. The resolution is one
    /// clock tick (10 ms at the usual 100 Hz), hence the thousands of requests per mode.
    pub fn cpu_time(&self) -> Duration {
        let ticks: u64 = tree(&self.roots).iter().map(|(_, s)| s.ticks).sum();
        self.tick * ticks as u32
    }

    /// Context switches of every thread so far, voluntary (it slept: waited for a socket, a
    /// lock, a timer) and not: how often the processes went to sleep and were woken.
    pub fn context_switches(&self) -> u64 {
        tree(&self.roots)
            .iter()
            .flat_map(|(pid, _)| {
                std::fs::read_dir(format!("/proc/{pid}/task"))
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
            .flat_map(|status| {
                status
                    .lines()
                    .filter(|line| line.contains("ctxt_switches:"))
                    .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    }

    /// Resident memory now, in MiB.
    pub fn resident_mib(&self) -> f64 {
        let pages: u64 = tree(&self.roots)
            .iter()
            .map(|(_, s)| s.resident_pages)
            .sum();
        (pages * self.page_bytes) as f64 / (1024.0 * 1024.0)
    }

    /// Samples the resident memory every `period` until the sampler is stopped, keeping
    /// the highest: memory under load, of a tree where no single `VmHWM` covers it all.
    pub fn sample_peak(&self, period: Duration) -> PeakSampler {
        let peak_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (processes, peak_kib, stop) = (self.clone(), peak_kib.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let kib = (processes.resident_mib() * 1024.0) as u64;
                    peak_kib.fetch_max(kib, Ordering::Relaxed);
                    std::thread::sleep(period);
                }
            })
        };
        PeakSampler {
            peak_kib,
            stop,
            thread: Some(thread),
        }
    }
}

/// The highest resident memory seen while it ran.
pub struct PeakSampler {
    peak_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakSampler {
    /// Stops sampling; the peak in MiB.
    pub fn finish(mut self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }
}
