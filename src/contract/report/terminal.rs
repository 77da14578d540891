//! The terminal summary: one line per scenario, every violation under its step, then totals
//! with throughput and the share of time spent validating.

use std::fmt::Write as _;
use std::io::Write;

use crate::contract::runner::RunReport;

/// A one-line progress bar redrawn in place; only used when stdout is a terminal.
pub struct Progress {
    enabled: bool,
    last: usize,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        Self { enabled, last: 0 }
    }

    pub fn update(&mut self, done: usize, total: usize) {
        if !self.enabled || total == 0 {
            return;
        }
        const WIDTH: usize = 30;
        let filled = done * WIDTH / total;
        // Redraw at most once per percent: terminals are slow.
        if done != total && filled == self.last && !done.is_multiple_of((total / 100).max(1)) {
            return;
        }
        self.last = filled;
        let mut out = std::io::stdout().lock();
        let _ = write!(
            out,
            "\r[{}{}] {done}/{total} steps",
            "#".repeat(filled),
            " ".repeat(WIDTH - filled)
        );
        let _ = out.flush();
    }

    pub fn finish(&mut self) {
        if self.enabled {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r{}\r", " ".repeat(60));
            let _ = out.flush();
        }
    }
}

/// The summary text.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "contract test of {} against {}",
        report.spec.display(),
        report.base_url
    );
    for scenario in &report.scenarios {
        let failed = scenario.steps.iter().filter(|s| !s.passed()).count();
        let mark = if failed == 0 { "PASS" } else { "FAIL" };
        let _ = writeln!(
            out,
            "{mark} {} ({}, {} steps{})",
            scenario.name,
            scenario.file.display(),
            scenario.steps.len(),
            if failed == 0 {
                String::new()
            } else {
                format!(", {failed} failed")
            }
        );
        for step in scenario.steps.iter().filter(|s| !s.passed()) {
            let status = step.status.map(|s| s.to_string()).unwrap_or("-".into());
            let _ = writeln!(
                out,
                "  step {} '{}' {} {} {} -> {status}",
                step.index, step.name, step.operation, step.method, step.path
            );
            for f in &step.findings {
                let at = if f.pointer.is_empty() {
                    String::new()
                } else {
                    format!(" at {}", f.pointer)
                };
                let _ = writeln!(out, "    [{}]{at}: {}", f.kind.as_str(), f.message);
            }
        }
    }
    let _ = writeln!(
        out,
        "{} scenarios, {} steps: {} passed, {} failed, {} violations in {:.2} s ({:.0} steps/s, {:.1}% of the time validating)",
        report.scenarios.len(),
        report.step_count(),
        report.step_count() - report.failed_steps(),
        report.failed_steps(),
        report.violation_count(),
        report.elapsed.as_secs_f64(),
        report.steps_per_second(),
        report.validation_share() * 100.0
    );
    out
}
