//! The JSON report: totals (with HTTP and validation time measured apart), then every
//! scenario and step with its violations, each naming scenario, step, operation, pointer
//! and reason so a tool needs no context to act on one.

use std::path::Path;

use serde::Serialize;

use crate::contract::check::Kind;
use crate::contract::runner::RunReport;

#[derive(Serialize)]
struct Json<'a> {
    spec: String,
    base_url: &'a str,
    passed: bool,
    summary: Summary,
    scenarios: Vec<Scenario<'a>>,
}

#[derive(Serialize)]
struct Summary {
    scenarios: usize,
    steps: usize,
    passed_steps: usize,
    failed_steps: usize,
    violations: usize,
    elapsed_ms: f64,
    http_ms: f64,
    check_ms: f64,
    /// check_ms / (http_ms + check_ms).
    validation_share: f64,
    steps_per_second: f64,
}

#[derive(Serialize)]
struct Scenario<'a> {
    name: &'a str,
    file: String,
    passed: bool,
    steps: Vec<Step<'a>>,
}

#[derive(Serialize)]
struct Step<'a> {
    index: usize,
    name: &'a str,
    operation: &'a str,
    method: &'a str,
    path: &'a str,
    status: Option<u16>,
    passed: bool,
    http_ms: f64,
    check_ms: f64,
    violations: Vec<Violation<'a>>,
}

#[derive(Serialize)]
struct Violation<'a> {
    scenario: &'a str,
    step: usize,
    operation: &'a str,
    kind: Kind,
    pointer: &'a str,
    message: &'a str,
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn render(report: &RunReport) -> Result<String, String> {
    let json = Json {
        spec: report.spec.to_string_lossy().into_owned(),
        base_url: &report.base_url,
        passed: report.passed(),
        summary: Summary {
            scenarios: report.scenarios.len(),
            steps: report.step_count(),
            passed_steps: report.step_count() - report.failed_steps(),
            failed_steps: report.failed_steps(),
            violations: report.violation_count(),
            elapsed_ms: ms(report.elapsed),
            http_ms: ms(report.http_time()),
            check_ms: ms(report.check_time()),
            validation_share: report.validation_share(),
            steps_per_second: report.steps_per_second(),
        },
        scenarios: report
            .scenarios
            .iter()
            .map(|s| Scenario {
                name: &s.name,
                file: s.file.to_string_lossy().into_owned(),
                passed: s.passed(),
                steps: s
                    .steps
                    .iter()
                    .map(|st| Step {
                        index: st.index,
                        name: &st.name,
                        operation: &st.operation,
                        method: &st.method,
                        path: &st.path,
                        status: st.status,
                        passed: st.passed(),
                        http_ms: ms(st.http),
                        check_ms: ms(st.check),
                        violations: st
                            .findings
                            .iter()
                            .map(|f| Violation {
                                scenario: &s.name,
                                step: st.index,
                                operation: &st.operation,
                                kind: f.kind,
                                pointer: &f.pointer,
                                message: &f.message,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&json).map_err(|e| e.to_string())
}

pub fn write(report: &RunReport, path: &Path) -> Result<(), String> {
    let text = render(report)?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
