//! Running many live scripts at once (`--jobs`) and splitting a suite
//! across machines (`--shard`).
//!
//! A live script spends almost all of its wall time asleep on its own
//! timeline, so scripts on `linux`, `own-tun` and `exec:` targets run side
//! by side, each on a fresh target: its own namespace
//! `tcpconform-<pid>-<n>` (a process-wide counter keeps the names
//! distinct), its own `tun0`/`tun1` (device names and the documentation
//! addresses are per namespace, so concurrent scripts cannot see each
//! other's packets), its own reader and socket threads. Results come back
//! in script order whatever order the scripts finished in, so the output is
//! the serial run's.
//!
//! Scripts start longest first (their timeline on the virtual `own`
//! target, which costs milliseconds to measure): with `jobs` workers the
//! wall time tends to the larger of the longest timeline and the sum of the
//! timelines over `jobs`. The default number of workers is that sum over
//! the longest timeline, so the suite's wall time approaches its longest
//! script, capped at [`MAX_DEFAULT_JOBS`] (where the measured scheduling
//! lag stays well inside the live tolerance; README, "Parallel live
//! runs").
//!
//! `--shard I/N` keeps the scripts whose position in the sorted script list
//! is `I-1` modulo `N` (I counts from 1): the N shards of a suite are
//! disjoint and together are the suite, on every machine that sees the
//! same files.

use super::diff::{self, DiffOptions, ScriptDiff};
use super::runner::{RunOptions, RunReport};
use super::suite;
use super::target::Micros;
use super::OwnTarget;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tcp_spec::Profile;

/// The most workers the default picks: on the project's 2-core machine,
/// loaded by other builds, the scheduling lag stayed within the live
/// tolerance up to 24 workers (p99 ≤ 4.6 ms, max ≤ 11 ms) and its tail
/// grew beyond (README, "Parallel live runs and shards").
pub const MAX_DEFAULT_JOBS: usize = 24;
/// The most workers `--jobs` accepts: every worker holds a namespace, two
/// TUN devices and two or three threads.
pub const MAX_JOBS: usize = 256;

/// `--jobs` and `--shard`, shared by `run`, `diff` and `check`.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct ParallelArgs {
    /// Live scripts run at once, each on a fresh target in its own
    /// namespace; output stays in script order (default: enough that the
    /// wall time approaches the longest script's timeline, at most 24;
    /// in-memory targets always run one at a time).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=MAX_JOBS as i64))]
    pub jobs: Option<u16>,
    /// Run only shard I of N (1 <= I <= N): the scripts whose position in
    /// the sorted list is I-1 modulo N, so N machines split a suite
    /// deterministically and disjointly.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
}

impl ParallelArgs {
    /// The scripts of this shard (all of them without `--shard`).
    pub fn select(&self, scripts: Vec<PathBuf>) -> Vec<PathBuf> {
        match self.shard {
            Some(s) => s.select(&scripts),
            None => scripts,
        }
    }

    /// The number of workers for live jobs whose costs are `estimates`.
    pub fn jobs_for(&self, estimates: &[Micros]) -> usize {
        match self.jobs {
            Some(n) => usize::from(n),
            None => default_jobs(estimates),
        }
    }
}

/// One shard of a suite: `index` of `count`, counting from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, 1 ..= `count`.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}`: expected I/N with 1 <= I <= N, e.g. 2/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// The items at positions `index - 1`, `index - 1 + count`, … of
    /// `sorted` (a sorted script list, as [`suite::discover`] returns it).
    pub fn select<T: Clone>(&self, sorted: &[T]) -> Vec<T> {
        sorted
            .iter()
            .skip(self.index - 1)
            .step_by(self.count)
            .cloned()
            .collect()
    }
}

/// Workers for jobs costing `estimates`: their sum over the largest
/// (rounded up), so the wall time can approach the longest job, within
/// 1 ..= [`MAX_DEFAULT_JOBS`].
pub fn default_jobs(estimates: &[Micros]) -> usize {
    let longest = estimates.iter().copied().max().unwrap_or(0).max(1);
    let sum: u128 = estimates.iter().map(|&e| u128::from(e.max(1))).sum();
    let n = sum.div_ceil(u128::from(longest));
    usize::try_from(n)
        .unwrap_or(MAX_DEFAULT_JOBS)
        .clamp(1, MAX_DEFAULT_JOBS)
}

/// Each script's timeline on the virtual `own` target (µs), an estimate of
/// its cost on a real clock; a script that does not run there counts 0.
pub fn estimate_timelines(scripts: &[PathBuf], profile: Profile, opts: &RunOptions) -> Vec<Micros> {
    scripts
        .iter()
        .map(|p| suite::run_file(p, &mut OwnTarget::new(profile), opts).end_time)
        .collect()
}

/// Indices of `estimates`, most expensive first (ties in index order).
pub fn longest_first(estimates: &[Micros]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..estimates.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(estimates[i]));
    order
}

/// `f` over every item on `jobs` worker threads, starting items in the
/// order `schedule` gives (indices into `items`; any missing index runs
/// after them); the results in item order. `announce` is called as each
/// item starts (e.g. for a progress line).
pub fn map_ordered<T, R>(
    items: &[T],
    jobs: usize,
    schedule: &[usize],
    announce: &(dyn Fn(&T) + Sync),
    f: &(dyn Fn(&T) -> R + Sync),
) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let mut order: Vec<usize> = schedule
        .iter()
        .copied()
        .filter(|&i| i < items.len())
        .collect();
    let mut seen = vec![false; items.len()];
    order.retain(|&i| !std::mem::replace(&mut seen[i], true));
    order.extend((0..items.len()).filter(|&i| !seen[i]));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let workers = jobs.clamp(1, items.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = order.get(k) else {
                    return;
                };
                // Namespace set-ups of earlier (longer) jobs go first.
                crate::live::set_setup_rank(k);
                announce(&items[i]);
                let r = f(&items[i]);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        // Every index is in `order` exactly once and every worker ran to
        // the end (a panicking worker re-panics at the end of the scope).
        .map(|r| r.expect("every item ran"))
        .collect()
}

/// `f` over live jobs whose costs are `estimates` (one per item): on the
/// `--jobs` workers (or the default for these costs), longest first, with
/// a progress line; results in item order.
pub fn map_live<T, R>(
    items: &[T],
    estimates: &[Micros],
    par: &ParallelArgs,
    label: &(dyn Fn(&T) -> String + Sync),
    f: &(dyn Fn(&T) -> R + Sync),
) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let progress = Mutex::new(crate::progress::Progress::new(items.len()));
    let announce = |t: &T| {
        let what = label(t);
        progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next(&what);
    };
    let jobs = par.jobs_for(estimates);
    if !super::phases::enabled() {
        return map_ordered(items, jobs, &longest_first(estimates), &announce, f);
    }
    // With TCPCONFORM_TIMINGS: each job's start and end in the pool.
    let pool = std::time::Instant::now();
    let timed = |t: &T| {
        let from = pool.elapsed();
        let r = f(t);
        let ms = super::phases::ms;
        eprintln!(
            "timing: job {} {:.0}..{:.0} ms ({} workers)",
            label(t),
            ms(from),
            ms(pool.elapsed()),
            jobs
        );
        r
    };
    map_ordered(items, jobs, &longest_first(estimates), &announce, &timed)
}

/// `f` over `scripts`: on a live target as [`map_live`] does (costs
/// estimated on `own`), otherwise one at a time in order; results in
/// script order.
pub fn map_scripts<R: Send>(
    scripts: &[PathBuf],
    live: bool,
    par: &ParallelArgs,
    profile: Profile,
    opts: &RunOptions,
    label: &str,
    f: &(dyn Fn(&PathBuf) -> R + Sync),
) -> Vec<R> {
    let estimates = if live {
        estimate_timelines(scripts, profile, opts)
    } else {
        vec![0; scripts.len()]
    };
    let serial = ParallelArgs {
        jobs: Some(1),
        ..*par
    };
    let par = if live { par } else { &serial };
    map_live(
        scripts,
        &estimates,
        par,
        &|p| format!("{label} {}", p.display()),
        f,
    )
}

/// A live job of `check`: a script on `own-tun`, or compared on `linux`.
enum CheckJob<'a> {
    OwnTun(&'a PathBuf),
    Linux(&'a PathBuf),
}

/// What a [`CheckJob`] gives.
enum CheckResult {
    OwnTun(Result<RunReport, String>),
    Linux(ScriptDiff),
}

/// `check`'s live part in one pool of workers: every script whose
/// timeline on `own` (`timelines`, in script order) is within
/// `dopts.max_timeline_us` on `own-tun`, and every script compared on
/// the targets of `dopts` (which skips the long ones itself). Returns the
/// `own-tun` reports and the diffs, each in script order; `Err` when
/// `own-tun` cannot start.
pub fn check_live(
    scripts: &[PathBuf],
    timelines: &[Micros],
    dopts: &DiffOptions,
    par: &ParallelArgs,
) -> Result<(Vec<RunReport>, Vec<ScriptDiff>), String> {
    let max = dopts.max_timeline_us.unwrap_or(Micros::MAX);
    let short = |i: usize| timelines.get(i).is_some_and(|&t| t <= max);
    let mut jobs = Vec::new();
    let mut estimates = Vec::new();
    for (i, p) in scripts.iter().enumerate() {
        if short(i) {
            jobs.push(CheckJob::OwnTun(p));
            estimates.push(timelines[i]);
        }
    }
    for (i, p) in scripts.iter().enumerate() {
        jobs.push(CheckJob::Linux(p));
        estimates.push(if short(i) { timelines[i] } else { 0 });
    }
    let label = |j: &CheckJob<'_>| match j {
        CheckJob::OwnTun(p) => format!("own-tun {}", p.display()),
        CheckJob::Linux(p) => format!("linux {}", p.display()),
    };
    let run = |j: &CheckJob<'_>| match j {
        CheckJob::OwnTun(p) => CheckResult::OwnTun(suite::run_script_file(
            p,
            "own-tun",
            dopts.profile,
            &dopts.run,
        )),
        CheckJob::Linux(p) => CheckResult::Linux(diff::diff_file(p, dopts)),
    };
    let mut reports = Vec::new();
    let mut diffs = Vec::new();
    for r in map_live(&jobs, &estimates, par, &label, &run) {
        match r {
            CheckResult::OwnTun(r) => reports.push(r?),
            CheckResult::Linux(d) => diffs.push(d),
        }
    }
    Ok((reports, diffs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite() -> Vec<PathBuf> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/scripts");
        suite::discover(&[dir]).expect("the bundled suite")
    }

    #[test]
    fn shards_are_disjoint_and_their_union_is_the_suite() {
        let all = suite();
        assert!(all.len() > 10);
        for count in 1..=7 {
            let shards: Vec<Vec<PathBuf>> = (1..=count)
                .map(|index| Shard { index, count }.select(&all))
                .collect();
            let mut union: Vec<PathBuf> = shards.iter().flatten().cloned().collect();
            assert_eq!(union.len(), all.len(), "{count} shards overlap or miss");
            union.sort();
            assert_eq!(union, all, "{count} shards");
            // Sizes differ by at most one: the split is even.
            let sizes: Vec<usize> = shards.iter().map(Vec::len).collect();
            let (lo, hi) = (sizes.iter().min(), sizes.iter().max());
            assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1), "{sizes:?}");
        }
    }

    #[test]
    fn a_shard_is_the_same_on_every_call() {
        let all = suite();
        let s: Shard = "2/3".parse().unwrap();
        assert_eq!(s.select(&all), s.select(&all));
        assert_eq!(s.select(&all)[0], all[1]);
        assert_eq!(s.select(&all)[1], all[4]);
    }

    #[test]
    fn bad_shards_are_refused_with_the_expected_form() {
        for bad in ["0/3", "4/3", "1", "a/2", "1/0", "/", "1/2/3", ""] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("expected I/N"), "{bad}: {e}");
        }
        assert_eq!(" 3 / 3 ".parse::<Shard>(), Ok(Shard { index: 3, count: 3 }));
    }

    #[test]
    fn the_default_approaches_the_longest_job() {
        assert_eq!(default_jobs(&[]), 1);
        assert_eq!(default_jobs(&[5_000_000]), 1);
        // 10 s over jobs of at most 4 s: three workers.
        assert_eq!(
            default_jobs(&[4_000_000, 3_000_000, 2_000_000, 1_000_000]),
            3
        );
        assert_eq!(default_jobs(&[1_000_000; 100]), MAX_DEFAULT_JOBS);
        assert_eq!(default_jobs(&[0, 0]), 2);
        assert_eq!(longest_first(&[1, 3, 2, 3]), vec![1, 3, 2, 0]);
    }

    #[test]
    fn results_come_back_in_item_order_whatever_the_schedule() {
        let items: Vec<u64> = (0..40).collect();
        let started = Mutex::new(Vec::new());
        let announce = |i: &u64| started.lock().unwrap().push(*i);
        // Later items sleep less, so they finish first.
        let f = |i: &u64| {
            std::thread::sleep(std::time::Duration::from_micros(40 - i));
            i * 10
        };
        let schedule: Vec<usize> = (0..40).rev().chain([99, 3]).collect();
        for jobs in [1, 3, 64] {
            started.lock().unwrap().clear();
            let out = map_ordered(&items, jobs, &schedule, &announce, &f);
            assert_eq!(out, items.iter().map(|i| i * 10).collect::<Vec<_>>());
            let mut s = started.lock().unwrap().clone();
            assert_eq!(s.len(), 40, "each item runs once");
            if jobs == 1 {
                assert_eq!(
                    s,
                    (0..40).rev().collect::<Vec<_>>(),
                    "one worker follows the schedule"
                );
            }
            s.sort();
            assert_eq!(s, items);
        }
        let none: Vec<u64> = Vec::new();
        assert!(map_ordered(&none, 4, &[], &announce, &f).is_empty());
    }
}
