//! `tcp-harness`: the script language, targets, runner, traces and the
//! `tcpconform` command-line tool.

pub mod cli;
pub mod delay;
pub mod drive;
pub mod fuzzing;
pub mod impair;
pub mod live;
pub mod pcap;
pub mod progress;
pub mod run;
pub mod script;
pub mod serve;
pub mod sim;
pub mod source;
pub mod spec_where;
pub mod timers;
pub mod verdict;
