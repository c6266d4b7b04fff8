//! Progress bars on stderr, hidden when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A spinner with a message and the elapsed time, for steps of unknown length.
pub fn spinner(msg: impl Into<String>) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, target());
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(msg.into());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// One bar per build stage (projection, trees, graph seeding, NN-descent rounds,
/// pruning) with its count, percentage and ETA, fed by the core's progress reports.
#[derive(Default)]
pub struct Stages {
    current: std::sync::Mutex<Option<(panns_core::Stage, ProgressBar)>>,
}

impl Stages {
    /// Shows report `p` (called from any build thread).
    pub fn report(&self, p: panns_core::Progress) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if cur.as_ref().map(|c| c.0) != Some(p.stage) {
            if let Some((_, pb)) = cur.take() {
                pb.finish_and_clear();
            }
            let pb = ProgressBar::with_draw_target(Some(p.total as u64), target());
            pb.set_style(
                ProgressStyle::with_template(
                    "{msg:>13} [{bar:40}] {pos}/{len} {percent:>3}% [{elapsed}, eta {eta}]",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            pb.set_message(p.stage.name());
            *cur = Some((p.stage, pb));
        }
        if let Some((_, pb)) = cur.as_ref() {
            pb.set_position(p.done as u64);
        }
        if mem_tracing() {
            mem_trace(&format!("{} {}/{}", p.stage.name(), p.done, p.total));
        }
    }

    /// Clears the last bar.
    pub fn finish(&self) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, pb)) = cur.take() {
            pb.finish_and_clear();
        }
    }
}

/// Whether `PANNS_MEM_TRACE` is set (to anything): then [`mem_trace`] prints.
fn mem_tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("PANNS_MEM_TRACE").is_some())
}

/// With `PANNS_MEM_TRACE` set, prints `label` with the resident set now and its peak
/// so far (`VmRSS`, `VmHWM` of `/proc/self/status`, Linux) on stderr: where a build's
/// memory goes, stage by stage; also the user CPU time so far and the wall time since
/// the first trace. Does nothing otherwise.
pub fn mem_trace(label: &str) {
    if !mem_tracing() {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or_else(
                || "?".to_string(),
                |kb| format!("{:.1}", kb as f64 / 1024.0),
            )
    };
    // User CPU so far: field 14 of /proc/self/stat (after the parenthesised name), in
    // clock ticks of (on Linux, nearly always) 1/100 s.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let user = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(11))
        .and_then(|t| t.parse::<u64>().ok())
        .map_or_else(|| "?".to_string(), |t| format!("{:.2}", t as f64 / 100.0));
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let wall = START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64();
    eprintln!(
        "mem {label}: rss {} MiB, peak {} MiB, user {user} s, wall {wall:.2} s",
        field("VmRSS:"),
        field("VmHWM:")
    );
}
