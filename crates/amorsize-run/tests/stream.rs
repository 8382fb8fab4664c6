//! Inputs are streamed: jobs start before the source ends, and a source is read only as far as
//! the jobs need it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amorsize_run::{
    self as command, Halt, Inputs, JobRecord, Jobs, Observer, RunOptions, Template,
};

struct Signal(Sender<()>);

impl Observer for Signal {
    fn finished(&mut self, _: &JobRecord) -> std::io::Result<()> {
        let _ = self.0.send(());
        Ok(())
    }
}

struct Count;

impl Observer for Count {
    fn finished(&mut self, _: &JobRecord) -> std::io::Result<()> {
        Ok(())
    }
}

/// A source that gives one input, then a second only once the observer has seen a finished
/// job (or a generous bound has passed, which the returned flag records).
fn gated_source() -> (
    impl Iterator<Item = std::io::Result<Vec<std::ffi::OsString>>> + Send,
    Sender<()>,
    Arc<AtomicUsize>,
) {
    let (tx, rx) = channel::<()>();
    let rx = Mutex::new(rx);
    let waited_in_vain = Arc::new(AtomicUsize::new(0));
    let flag = Arc::clone(&waited_in_vain);
    let mut given = 0;
    let source = std::iter::from_fn(move || {
        given += 1;
        match given {
            1 => Some(Ok(vec!["a".into()])),
            2 => {
                let rx: &Receiver<()> = &rx.lock().unwrap();
                if rx.recv_timeout(Duration::from_secs(120)).is_err() {
                    flag.store(1, Ordering::SeqCst);
                }
                Some(Ok(vec!["b".into()]))
            }
            _ => None,
        }
    });
    (source, tx, waited_in_vain)
}

/// A runner that read its whole input before starting would wait for the second input until
/// the bound passed: the first job must finish first.
#[test]
fn the_first_job_finishes_before_the_source_ends() {
    let template = Template::parse(["true"]).unwrap();
    let (source, tx, waited_in_vain) = gated_source();
    let options = RunOptions::new().job_count(Jobs::Fixed(1.try_into().unwrap()));
    let summary = command::run(
        &template,
        Inputs::new(source, None),
        &options,
        &AtomicUsize::new(0),
        &mut Signal(tx),
    )
    .unwrap();
    assert_eq!(summary.succeeded, 2);
    assert_eq!(
        waited_in_vain.load(Ordering::SeqCst),
        0,
        "the job waited for the source"
    );
}

/// An endless source: the run halts at the first failure, having read only what its jobs
/// needed (a runner that read its input whole would never return).
#[test]
fn an_endless_source_is_read_only_as_far_as_jobs_need() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let template = Template::parse(["sh", "-c", "test $0 -lt 50"]).unwrap();
    let halt: Halt = "now,fail=1".parse().unwrap();
    for jobs in [Jobs::Fixed(2.try_into().unwrap()), Jobs::Auto] {
        pulled.store(0, Ordering::SeqCst);
        let counter = Arc::clone(&pulled);
        let source = std::iter::from_fn(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            Some(Ok(vec![n.to_string().into()]))
        });
        let options = RunOptions::new().job_count(jobs).halt(halt);
        let summary = command::run(
            &template,
            Inputs::new(source, None),
            &options,
            &AtomicUsize::new(0),
            &mut Count,
        )
        .unwrap();
        assert!(summary.halted);
        assert!(summary.failed >= 1);
        // Jobs past the 50th fail; what was read is bounded by the jobs that could start
        // before the halt, far below any "whole input".
        let read = pulled.load(Ordering::SeqCst);
        assert!(read < 50 + 64 * 1024, "-j {jobs}: {read} inputs read");
    }
}
