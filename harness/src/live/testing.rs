//! Helpers for the live test suites and benchmarks (they share one rule:
//! live runs take turns, and none may leave a namespace behind).

use std::sync::{Mutex, MutexGuard};

use super::cleanup::{list_namespaces, NAME_PREFIX};

/// One live run at a time within a process: two real-time runs side by side
/// on a 2-core machine would only disturb each other's timing.
static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the process-wide live lock, or prints `skipped: <reason>` and
/// returns `None` when live targets cannot run here (see
/// [`super::available`]). Under `CI=true` a live test that cannot run is a
/// failure, not a skip: CI runs as root, and a missing privilege there
/// must not pass the suite unseen.
pub fn guard() -> Option<MutexGuard<'static, ()>> {
    if let Err(e) = super::available() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and this live test cannot run: {e}");
        }
        println!("skipped: {e}");
        return None;
    }
    Some(SERIAL.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The `tcpconform-<this pid>-*` namespaces that exist now.
pub fn namespaces_of_this_process() -> Vec<String> {
    let prefix = format!("{NAME_PREFIX}{}-", std::process::id());
    match list_namespaces() {
        Ok(all) => all.into_iter().filter(|n| n.starts_with(&prefix)).collect(),
        Err(e) => panic!("listing namespaces: {e}"),
    }
}

/// Panics when a namespace of this process still exists.
pub fn assert_no_namespace_of_ours() {
    let left = namespaces_of_this_process();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}
