//! `/proc/loadavg`, autogrouping and this process's own threads: the load other programs put on
//! the cores, and what a plan makes of it.

use amorsize::model::Sharing;
use amorsize::plan::Caps;
use amorsize::probe::{read_cpu_load, Machine, Source};

use crate::support::Tree;

#[test]
fn runnable_threads_less_the_reader_compete() {
    let tree = Tree::host(4, 1);
    tree.file("proc/loadavg", "3.10 2.00 1.00 4/310 4242\n");
    let load = read_cpu_load(tree.root());
    // No task directory in the fixture: only the reader is this process's.
    assert_eq!(load.competing().get(), Some(3));
    assert!(matches!(
        load.competing().source(),
        Source::Runnable { tasks: None, .. }
    ));
    assert_eq!(load.sharing().get(), Sharing::PerThread);
}

#[test]
fn this_process_runnable_threads_do_not_compete() {
    let tree = Tree::host(4, 1);
    tree.file("proc/loadavg", "3.10 2.00 1.00 4/310 4242\n");
    // The reader and a pool worker still spinning are runnable; a third thread sleeps.
    tree.file("proc/self/task/100/stat", "100 (main) R 1 100 100 0 -1\n");
    tree.file(
        "proc/self/task/101/stat",
        "101 (pool (1)) R 1 100 100 0 -1\n",
    );
    tree.file("proc/self/task/102/stat", "102 (pool 2) S 1 100 100 0 -1\n");
    let load = read_cpu_load(tree.root());
    assert_eq!(load.competing().get(), Some(2));
    assert!(matches!(
        load.competing().source(),
        Source::Runnable { tasks: Some(_), .. }
    ));
}

#[test]
fn autogrouping_shares_per_session() {
    let tree = Tree::host(2, 1);
    tree.file("proc/loadavg", "1.00 1.00 1.00 2/100 1\n");
    tree.file("proc/sys/kernel/sched_autogroup_enabled", "1\n");
    let load = read_cpu_load(tree.root());
    assert_eq!(load.sharing().get(), Sharing::PerSession);
    tree.file("proc/sys/kernel/sched_autogroup_enabled", "0\n");
    assert_eq!(
        read_cpu_load(tree.root()).sharing().get(),
        Sharing::PerThread
    );
}

#[test]
fn missing_or_malformed_files_leave_the_load_unknown() {
    let tree = Tree::host(2, 1);
    let load = read_cpu_load(tree.root());
    assert_eq!(load.competing().get(), None);
    assert_eq!(load.sharing().source(), &Source::Absent);
    tree.file("proc/loadavg", "garbage\n");
    tree.file("proc/sys/kernel/sched_autogroup_enabled", "maybe\n");
    let load = read_cpu_load(tree.root());
    assert_eq!(load.competing().get(), None);
    assert_eq!(load.sharing().get(), Sharing::PerThread);
    // Unknown load: the caps count every usable core.
    let caps = Caps::from_machine(&Machine::read(tree.root()));
    assert_eq!(caps.load, None);
    assert_eq!(caps.capacity().relative_cores(2), caps.usable_cores());
}

#[test]
fn the_caps_count_only_the_share_on_this_process_cpus() {
    let tree = Tree::host(8, 1);
    tree.file("proc/loadavg", "5.00 5.00 5.00 5/300 1\n");
    // Allowed on 2 of the 8 CPUs: a quarter of the 4 other runnable threads compete.
    tree.file("proc/self/status", "Name:\tt\nCpus_allowed_list:\t0-1\n");
    let caps = Caps::from_machine(&Machine::read(tree.root()));
    let load = caps.load.clone().expect("load read");
    assert_eq!(load.competing, 1.0);
    assert!(load.source.contains("/proc/loadavg"), "{}", load.source);
    assert!(caps.capacity().relative_cores(2) < caps.usable_cores());
}

#[test]
fn fixed_machines_have_no_load() {
    let caps = Caps::from_machine(&Machine::fixed(8, 4));
    assert_eq!(caps.load, None);
    assert_eq!(caps.capacity().relative_cores(4), 4.0);
}
