//! The HTML report: one self-contained page (inline CSS, no script, nothing fetched) for a CI
//! artifact. Totals first, then every scenario with pass or fail per step; a failing step
//! lists its violations with kind, JSON pointer and reason (for `--compare` and snapshots,
//! the reason is the difference: what was recorded and what came back). Failing scenarios
//! are open, passing ones folded. Written with maud, as the dashboard is.

use std::path::Path;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::contract::runner::{RunReport, ScenarioResult, StepResult};

const CSS: &str = "
body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:72rem;padding:1.5rem;color:#1f2328;background:#fff}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin:0;display:inline}
.meta{color:#57606a;margin:0 0 1rem}
.totals{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0 1.5rem;padding:0;list-style:none}
.totals li{border:1px solid #d0d7de;border-radius:6px;padding:.5rem .9rem}
.totals b{display:block;font-size:1.3rem}
details{border:1px solid #d0d7de;border-radius:6px;margin:.75rem 0;padding:.5rem .9rem}
summary{cursor:pointer}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eaeef2;vertical-align:top}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;padding:0 .2rem;border-radius:3px}
.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}
ul.findings{margin:.25rem 0 .5rem;padding-left:1.2rem}
ul.findings li{margin:.15rem 0}
";

fn mark(passed: bool) -> Markup {
    if passed {
        html! { span.pass { "PASS" } }
    } else {
        html! { span.fail { "FAIL" } }
    }
}

/// The page.
pub fn render(report: &RunReport) -> String {
    let title = format!("Contract test of {}", report.spec.display());
    let failed = report.failed_steps();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { (mark(report.passed())) " " (title) }
                p.meta { "against " code { (report.base_url) } " in " (format!("{:.2}", report.elapsed.as_secs_f64())) " s" }
                ul.totals {
                    li { b { (report.scenarios.len()) } "scenarios" }
                    li { b { (report.step_count()) } "steps" }
                    li { b.pass { (report.step_count() - failed) } "passed" }
                    li { b.fail[failed > 0] { (failed) } "failed" }
                    li { b { (report.violation_count()) } "violations" }
                }
                @for scenario in &report.scenarios { (scenario_section(scenario)) }
            }
        }
    };
    page.into_string()
}

fn scenario_section(scenario: &ScenarioResult) -> Markup {
    let failed = scenario.steps.iter().filter(|s| !s.passed()).count();
    html! {
        details open[failed > 0] {
            summary {
                (mark(failed == 0)) " " h2 { (scenario.name) }
                " " code { (scenario.file.display()) }
                " · " (scenario.steps.len()) " steps"
                @if failed > 0 { ", " (failed) " failed" }
            }
            table {
                thead { tr { th scope="col" { "#" } th scope="col" { "Step" } th scope="col" { "Request" }
                             th scope="col" { "Status" } th scope="col" { "Result" } } }
                tbody { @for step in &scenario.steps { (step_row(step)) } }
            }
        }
    }
}

fn step_row(step: &StepResult) -> Markup {
    html! {
        tr {
            td { (step.index) }
            td { (step.name) br; code { (step.operation) } }
            td { code { (step.method) " " (step.path) } }
            td { (step.status.map_or_else(|| "-".to_owned(), |s| s.to_string())) }
            td {
                (mark(step.passed()))
                @if !step.passed() {
                    ul.findings {
                        @for f in &step.findings {
                            li {
                                code { (f.kind.as_str()) }
                                @if !f.pointer.is_empty() { " at " code { (f.pointer) } }
                                ": " (f.message)
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn write(report: &RunReport, path: &Path) -> Result<(), String> {
    std::fs::write(path, render(report)).map_err(|e| format!("{}: {e}", path.display()))
}
