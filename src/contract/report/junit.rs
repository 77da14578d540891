//! JUnit XML: one testsuite per scenario, one testcase per step, a failure per failing step
//! listing its violations. Written with `quick-junit`, which CI systems read.

use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::contract::runner::RunReport;

pub fn render(report: &RunReport) -> Result<String, String> {
    let mut junit = Report::new("sandbox contract-test");
    junit.set_time(report.elapsed);
    for scenario in &report.scenarios {
        let mut suite = TestSuite::new(scenario.name.as_str());
        for step in &scenario.steps {
            let status = if step.passed() {
                TestCaseStatus::success()
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let first = &step.findings[0];
                s.set_message(format!(
                    "{} violation(s); first: [{}] {}{}",
                    step.findings.len(),
                    first.kind.as_str(),
                    if first.pointer.is_empty() {
                        String::new()
                    } else {
                        format!("{}: ", first.pointer)
                    },
                    first.message
                ));
                s.set_type(first.kind.as_str());
                let lines: Vec<String> = step
                    .findings
                    .iter()
                    .map(|f| format!("[{}] {} {}", f.kind.as_str(), f.pointer, f.message))
                    .collect();
                s.set_description(lines.join("\n"));
                s
            };
            // Names must be stable across runs (CI tracks tests by name): no concrete ids.
            let name = format!("{:02} {} ({})", step.index, step.name, step.operation);
            let mut case = TestCase::new(name, status);
            case.set_classname(scenario.file.to_string_lossy().replace('\\', "/"));
            case.set_time(step.http + step.check);
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    junit.to_string().map_err(|e| e.to_string())
}

pub fn write(report: &RunReport, path: &Path) -> Result<(), String> {
    let text = render(report)?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
