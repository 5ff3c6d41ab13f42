//! What a timer probe runs, and how: the [`Plan`] says how many scenarios
//! of each kind, [`run`] runs them — one after another on a virtual clock
//! (they take no real time), side by side on a real clock, where nearly
//! all of a scenario is waiting for the target's timers and the wall time
//! of the whole probe becomes that of its longest scenario.

use super::estimate::Observations;
use super::probe::{ProbeError, StackSetup};
use super::scenarios::{self, DelAck, Isns, Outcome, RtoScenario, Trim};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How many scenarios of each kind a probe runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Generated RTO scenarios beside the fixed shapes.
    pub generated: usize,
    /// Expiries observed in the back-off scenario (9 reach a 120 s cap
    /// from an RTO near 1 s; fewer leave the cap unobserved).
    pub backoff_expiries: usize,
    /// Zero-window probes observed.
    pub persist_probes: usize,
    /// Delayed-ACK trials (a lone segment and a pair each).
    pub delack_trials: usize,
    /// Connections per ISN series (distinct 4-tuples, then the same one).
    pub isn_connections: usize,
    /// On a real clock, scenarios running at once.
    pub workers: usize,
}

impl Plan {
    /// Everything: the fingerprint the README shows.
    pub fn full() -> Plan {
        Plan {
            generated: 12,
            backoff_expiries: 9,
            persist_probes: 5,
            delack_trials: 3,
            isn_connections: 16,
            workers: 32,
        }
    }

    /// Fewer generated samples, the back-off stopped before a 120 s cap
    /// and shorter series: every parameter but the RTO cap, in about a
    /// quarter of the real time.
    pub fn quick() -> Plan {
        Plan {
            generated: 4,
            backoff_expiries: 6,
            persist_probes: 4,
            delack_trials: 2,
            isn_connections: 8,
            workers: 32,
        }
    }
}

/// One scenario to run.
enum Job {
    Rto(RtoScenario),
    Syn,
    SynAck,
    Persist(usize),
    DelAck(usize),
    Isn(usize),
    Trim,
}

impl Job {
    fn name(&self) -> String {
        match self {
            Job::Rto(sc) => sc.name.clone(),
            Job::Syn => "SYN unanswered".into(),
            Job::SynAck => "SYN-ACK unacknowledged".into(),
            Job::Persist(_) => "zero window".into(),
            Job::DelAck(_) => "delayed ACK".into(),
            Job::Isn(_) => "ISNs".into(),
            Job::Trim => "window trimming".into(),
        }
    }

    /// Whether the job waits for long timers (back-off, SYN and SYN-ACK
    /// give-up, persist): side by side, these start first.
    fn slow(&self) -> bool {
        match self {
            Job::Rto(sc) => sc.family == scenarios::Family::Backoff,
            Job::Syn | Job::SynAck | Job::Persist(_) | Job::Isn(_) => true,
            Job::DelAck(_) | Job::Trim => false,
        }
    }

    fn run(&self, setup: StackSetup) -> Result<Done, ProbeError> {
        Ok(match self {
            Job::Rto(sc) => Done::Outcome(scenarios::run_rto(setup, sc)?),
            Job::Syn => Done::Outcome(scenarios::run_syn(setup)?),
            Job::SynAck => Done::Outcome(scenarios::run_synack(setup)?),
            Job::Persist(n) => Done::Outcome(scenarios::run_persist(setup, *n)?),
            Job::DelAck(n) => Done::DelAck(scenarios::run_delack(setup, *n)?.0),
            Job::Isn(n) => Done::Isns(scenarios::run_isn(setup, *n)?),
            Job::Trim => Done::Trim(scenarios::run_trim(setup)?.0),
        })
    }
}

/// What a job gave.
enum Done {
    Outcome(Outcome),
    DelAck(DelAck),
    Isns(Isns),
    Trim(Trim),
}

/// The jobs of a plan, in the order their outcomes are reported.
fn jobs(plan: &Plan, seed: u64) -> Vec<Job> {
    let rto = scenarios::rto_scenarios(seed, plan.generated, plan.backoff_expiries);
    let mut v: Vec<Job> = rto.into_iter().map(Job::Rto).collect();
    v.extend([
        Job::Syn,
        Job::SynAck,
        Job::Persist(plan.persist_probes),
        Job::DelAck(plan.delack_trials),
        Job::Isn(plan.isn_connections),
        Job::Trim,
    ]);
    v
}

/// Runs `plan` against the target of `setup`; `progress` hears the name
/// of every scenario that ends (real clocks only: on a virtual one the
/// whole plan takes well under a second).
pub fn run(
    setup: StackSetup,
    plan: &Plan,
    progress: impl Fn(&str) + Sync,
) -> Result<Observations, ProbeError> {
    let jobs = jobs(plan, setup.seed);
    let results: Vec<Result<Done, ProbeError>> = if setup.target == super::TimerTarget::Linux {
        side_by_side(setup, &jobs, plan.workers.max(1), &progress)
    } else {
        jobs.iter().map(|j| j.run(setup)).collect()
    };
    let mut obs = Observations {
        outcomes: Vec::new(),
        delack: None,
        isns: None,
        trim: None,
        failed: Vec::new(),
    };
    for (job, r) in jobs.iter().zip(results) {
        match r {
            Ok(Done::Outcome(o)) => obs.outcomes.push(o),
            Ok(Done::DelAck(d)) => obs.delack = Some(d),
            Ok(Done::Isns(i)) => obs.isns = Some(i),
            Ok(Done::Trim(t)) => obs.trim = Some(t),
            Err(e) => obs.failed.push((job.name(), e.to_string())),
        }
    }
    // A target that cannot be built fails every scenario alike: that is
    // an error of the whole probe, not a fingerprint.
    if obs.outcomes.is_empty() && obs.delack.is_none() && obs.isns.is_none() && obs.trim.is_none() {
        let why = obs.failed.first().map_or("", |(_, e)| e.as_str());
        return Err(ProbeError::Target(format!("no scenario ran: {why}")));
    }
    Ok(obs)
}

/// Runs the jobs on `workers` threads; results in the jobs' order.
fn side_by_side(
    setup: StackSetup,
    jobs: &[Job],
    workers: usize,
    progress: &(impl Fn(&str) + Sync),
) -> Vec<Result<Done, ProbeError>> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| !jobs[i].slow());
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<Done, ProbeError>>>> =
        Mutex::new(jobs.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers.min(jobs.len()) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = order.get(k) else { break };
                let job = &jobs[i];
                let r = job.run(setup);
                let n = finished.fetch_add(1, Ordering::SeqCst) + 1;
                let status = match &r {
                    Ok(_) => "done".to_string(),
                    Err(e) => format!("failed: {e}"),
                };
                progress(&format!("[{n}/{}] {}: {status}", jobs.len(), job.name()));
                if let Ok(mut s) = slots.lock() {
                    s[i] = Some(r);
                }
            });
        }
    });
    let slots = slots.into_inner().unwrap_or_else(|p| p.into_inner());
    slots
        .into_iter()
        .map(|s| s.unwrap_or_else(|| Err(ProbeError::Stuck("the scenario did not run".into()))))
        .collect()
}
