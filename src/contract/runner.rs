//! Replays scenarios against a base URL, one step after another, and checks each answer.
//! The time spent waiting for HTTP and the time spent checking are measured separately, so
//! reports can say how much of a run is validation.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::check::{Checker, Finding, Kind};
use super::client::{Answer, Client, ClientError, Outgoing};
use super::error::ContractError;
use super::fixture::{
    FixtureError, Scenario, Step, Vars, scalar_text, substitute, substitute_value,
};
use super::{normalise, snapshot};

/// How to replay.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub base_url: String,
    /// `--header NAME: VALUE`, applied to every request (replacing the fixture's own).
    pub headers: Vec<(String, String)>,
    pub compare: bool,
    pub snapshot: Option<PathBuf>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct StepResult {
    /// 1-based.
    pub index: usize,
    pub name: String,
    pub operation: String,
    pub method: String,
    /// The path actually requested.
    pub path: String,
    pub status: Option<u16>,
    pub findings: Vec<Finding>,
    pub http: Duration,
    pub check: Duration,
}

impl StepResult {
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: String,
    pub file: PathBuf,
    pub steps: Vec<StepResult>,
}

impl ScenarioResult {
    pub fn passed(&self) -> bool {
        self.steps.iter().all(StepResult::passed)
    }
}

/// Everything a report needs.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub spec: PathBuf,
    pub base_url: String,
    pub scenarios: Vec<ScenarioResult>,
    pub elapsed: Duration,
}

impl RunReport {
    pub fn steps(&self) -> impl Iterator<Item = (&ScenarioResult, &StepResult)> {
        self.scenarios
            .iter()
            .flat_map(|s| s.steps.iter().map(move |st| (s, st)))
    }
    pub fn step_count(&self) -> usize {
        self.scenarios.iter().map(|s| s.steps.len()).sum()
    }
    pub fn failed_steps(&self) -> usize {
        self.steps().filter(|(_, s)| !s.passed()).count()
    }
    pub fn violation_count(&self) -> usize {
        self.steps().map(|(_, s)| s.findings.len()).sum()
    }
    pub fn passed(&self) -> bool {
        self.failed_steps() == 0
    }
    pub fn http_time(&self) -> Duration {
        self.steps().map(|(_, s)| s.http).sum()
    }
    pub fn check_time(&self) -> Duration {
        self.steps().map(|(_, s)| s.check).sum()
    }
    /// Share of the measured time (HTTP + checks) spent checking, 0..=1.
    pub fn validation_share(&self) -> f64 {
        let (h, c) = (
            self.http_time().as_secs_f64(),
            self.check_time().as_secs_f64(),
        );
        if h + c > 0.0 { c / (h + c) } else { 0.0 }
    }
    pub fn steps_per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.step_count() as f64 / s
        } else {
            0.0
        }
    }
}

/// Every step's operation, found before anything is sent: a step the spec does not serve
/// is a fixture error, not a server's fault.
pub fn plan(checker: &Checker, scenarios: &[Scenario]) -> Result<Vec<Vec<usize>>, FixtureError> {
    scenarios
        .iter()
        .map(|s| {
            s.fixture
                .steps
                .iter()
                .enumerate()
                .map(|(i, step)| {
                    let method = http::Method::from_bytes(step.request.method.as_bytes())
                        .unwrap_or(http::Method::GET);
                    checker
                        .operation(&method, &step.request.path)
                        .ok_or_else(|| FixtureError {
                            file: s.file.clone(),
                            step: Some(i + 1),
                            reason: format!(
                                "{} {} matches no operation of {}",
                                step.request.method,
                                step.request.path,
                                checker.spec().file.display()
                            ),
                        })
                })
                .collect()
        })
        .collect()
}

fn encode_segment(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// What one scenario has bound so far.
#[derive(Default)]
struct Bindings {
    vars: Vars,
    /// (value, name) of every capture, as recorded.
    recorded: Vec<(String, String)>,
    /// (value, name) of every capture, as bound in this run.
    actual: Vec<(String, String)>,
}

/// Replays every scenario; `progress` is told after each step (done, total).
pub async fn run(
    checker: &mut Checker,
    scenarios: &[Scenario],
    options: &RunOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RunReport, ContractError> {
    let plan = plan(checker, scenarios)?;
    let client = Client::new(&options.base_url, &options.headers, options.timeout)?;
    let total: usize = scenarios.iter().map(|s| s.fixture.steps.len()).sum();
    let started = Instant::now();
    let mut done = 0;
    let mut answered_once = false;
    let mut results = Vec::with_capacity(scenarios.len());
    for (scenario, ops) in scenarios.iter().zip(&plan) {
        let mut bound = Bindings::default();
        let mut steps = Vec::with_capacity(ops.len());
        for (i, (step, &op)) in scenario.fixture.steps.iter().zip(ops).enumerate() {
            let mut result = StepResult {
                index: i + 1,
                name: step
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{} {}", step.request.method, step.request.path)),
                operation: checker.op(op).id.clone(),
                method: step.request.method.to_ascii_uppercase(),
                path: step.request.path.clone(),
                status: None,
                findings: Vec::new(),
                http: Duration::ZERO,
                check: Duration::ZERO,
            };
            match prepare(step, &bound.vars) {
                Err(missing) => result.findings.push(Finding::new(
                    Kind::Capture,
                    "",
                    format!("uses {{{{{missing}}}}}, which an earlier step did not capture"),
                )),
                Ok(outgoing) => {
                    result.path = outgoing.path.clone();
                    let t = Instant::now();
                    let sent = client.send(&outgoing).await;
                    result.http = t.elapsed();
                    match sent {
                        Err(ClientError::Connect { url, reason }) if !answered_once => {
                            return Err(ContractError::Unreachable { url, reason });
                        }
                        Err(e) => {
                            result
                                .findings
                                .push(Finding::new(Kind::Transport, "", e.to_string()))
                        }
                        Ok(answer) => {
                            answered_once = true;
                            let replay = Replay { checker, options };
                            replay.judge(scenario, step, op, &answer, &mut bound, &mut result)?;
                        }
                    }
                }
            }
            done += 1;
            progress(done, total);
            steps.push(result);
        }
        results.push(ScenarioResult {
            name: scenario.name.clone(),
            file: scenario.file.clone(),
            steps,
        });
    }
    Ok(RunReport {
        spec: checker.spec().file.clone(),
        base_url: client.base().to_owned(),
        scenarios: results,
        elapsed: started.elapsed(),
    })
}

/// What judging an answer needs beyond the step itself.
struct Replay<'a> {
    checker: &'a mut Checker,
    options: &'a RunOptions,
}

impl Replay<'_> {
    /// Checks one answer, binds its captures and compares its snapshot; the findings go
    /// into `result`.
    fn judge(
        self,
        scenario: &Scenario,
        step: &Step,
        op: usize,
        answer: &Answer,
        bound: &mut Bindings,
        result: &mut StepResult,
    ) -> Result<(), ContractError> {
        let t = Instant::now();
        result.status = Some(answer.status);
        let body: Option<Value> = if answer.body.is_empty() {
            None
        } else {
            serde_json::from_slice(&answer.body).ok()
        };
        let compare = self
            .options
            .compare
            .then_some((bound.recorded.as_slice(), bound.actual.as_slice()));
        result.findings = self.checker.check(op, step, answer, body.as_ref(), compare);
        capture(step, answer, body.as_ref(), bound, &mut result.findings);
        if let Some(dir) = &self.options.snapshot {
            snapshot_step(
                dir,
                scenario,
                step,
                result,
                &answer.body,
                body.as_ref(),
                &bound.actual,
            )
            .map(|f| result.findings.extend(f))
            .map_err(|e| ContractError::Io {
                path: dir.clone(),
                reason: e.to_string(),
            })?;
        }
        result.check = t.elapsed();
        Ok(())
    }
}

/// Binds the step's captures from the answer (and notes what the recording held there).
fn capture(
    step: &Step,
    answer: &Answer,
    body: Option<&Value>,
    bound: &mut Bindings,
    findings: &mut Vec<Finding>,
) {
    for (var, source) in &step.capture {
        let header = source.strip_prefix("header:").map(str::trim);
        let value = match header {
            Some(h) => answer
                .headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(|v| Value::String(v.to_owned())),
            None => body.and_then(|b| b.pointer(source)).cloned(),
        };
        let recorded = match header {
            Some(h) => step
                .response
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(h))
                .map(|(_, v)| Value::String(v.clone())),
            None => step
                .response
                .body
                .as_ref()
                .and_then(|b| b.pointer(source))
                .cloned(),
        };
        if let Some(r) = recorded {
            bound.recorded.push((scalar_text(&r), var.clone()));
        }
        match value {
            Some(v) => {
                bound.actual.push((scalar_text(&v), var.clone()));
                bound.vars.insert(var.clone(), v);
            }
            None => findings.push(Finding::new(
                Kind::Capture,
                source.clone(),
                format!("capture '{var}': nothing at '{source}'"),
            )),
        }
    }
}

/// The request with every placeholder substituted; `Err` names an unbound variable.
fn prepare(step: &super::fixture::Step, vars: &Vars) -> Result<Outgoing, String> {
    let req = &step.request;
    let path = substitute(&req.path, vars, encode_segment)?;
    let mut query = Vec::new();
    for (k, v) in &req.query {
        let k = substitute(k, vars, str::to_owned)?;
        let values = match v {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        for item in values {
            query.push((k.clone(), scalar_text(&substitute_value(&item, vars)?)));
        }
    }
    let headers = req
        .headers
        .iter()
        .map(|(k, v)| Ok((k.clone(), substitute(v, vars, str::to_owned)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let body = req
        .body
        .as_ref()
        .map(|b| substitute_value(b, vars))
        .transpose()?;
    Ok(Outgoing {
        method: http::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| req.method.clone())?,
        path,
        query,
        headers,
        body,
    })
}

fn snapshot_step(
    dir: &Path,
    scenario: &Scenario,
    step: &super::fixture::Step,
    result: &StepResult,
    raw: &[u8],
    body: Option<&Value>,
    captured: &[(String, String)],
) -> std::io::Result<Vec<Finding>> {
    let contents = match body {
        Some(v) => serde_json::to_string_pretty(&normalise::normalise(v, &step.ignore, captured))
            .unwrap_or_default(),
        None if raw.is_empty() => "(empty body)".into(),
        None => String::from_utf8_lossy(raw).into_owned(),
    };
    let path = snapshot::path_for(dir, &scenario.name, result.index, &result.name);
    let expression = format!("{} {}", result.method, step.request.path);
    let source = scenario.file.to_string_lossy().replace('\\', "/");
    Ok(
        match snapshot::check(&path, &source, &expression, &contents)? {
            snapshot::Outcome::Changed(new) => vec![Finding::new(
                Kind::Snapshot,
                "",
                format!(
                    "the body differs from {}; review {} with `cargo insta review`",
                    path.display(),
                    new.display()
                ),
            )],
            _ => Vec::new(),
        },
    )
}
