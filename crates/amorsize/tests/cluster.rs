//! The cluster backend on 2–4 processes of this machine, on free ports: this test binary is
//! every process (`main` registers the functions and calls `cluster::init` first, so a copy
//! started as a process serves the dataflow instead of running the tests). Hence
//! `harness = false`.
#![cfg(feature = "cluster")]
#![allow(clippy::print_stdout)]

use amorsize::cluster::{self, Choice, Cluster, Hosts};
use amorsize::exec::process::{self, Function};
use amorsize::model::network::{predict_network, Shape};
use amorsize::model::Workload;
use amorsize::{ErrorKind, Options};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The item the failing functions fail on.
const BAD: u64 = 13;

fn square(x: &u64) -> u64 {
    x * x
}

fn panics(x: &u64) -> u64 {
    assert!(*x != BAD, "no thirteen here");
    square(x)
}

/// Kills the process it runs in when that is not process 0 (the processes process 0 starts
/// know their number from the environment), as a crashed host would end.
fn kills_its_process(x: &u64) -> u64 {
    if *x == BAD && std::env::var_os("AMORSIZE_CLUSTER_PROCESS").is_some() {
        // SAFETY: raising a signal at this process touches no memory of ours.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
    square(x)
}

/// Stops the process it runs in when that is not process 0, as a host that hangs would: its
/// connections stay open, and only the missing heartbeats tell.
fn stops_its_process(x: &u64) -> u64 {
    if *x == BAD && std::env::var_os("AMORSIZE_CLUSTER_PROCESS").is_some() {
        // SAFETY: raising a signal at this process touches no memory of ours.
        unsafe {
            libc::raise(libc::SIGSTOP);
        }
    }
    square(x)
}

/// About `x` microseconds of spinning; returns `x`.
fn spins(x: &u64) -> u64 {
    let until = Instant::now() + Duration::from_micros(*x);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    *x
}

struct Functions {
    square: Function<u64, u64>,
    panics: Function<u64, u64>,
    kills: Function<u64, u64>,
    stops: Function<u64, u64>,
    spins: Function<u64, u64>,
}

/// Free ports of 127.0.0.1, chosen by the system (never the fixed default ports, so that tests
/// running side by side do not collide).
fn free_addresses(n: usize) -> Vec<String> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect()
}

fn start(processes: usize, workers: usize) -> Cluster {
    cluster::init(Hosts::local(processes).workers(workers)).expect("the cluster starts")
}

fn results_equal_the_serial_map(f: &Functions) {
    for (processes, workers) in [(2, 2), (4, 1)] {
        let mut cluster = start(processes, workers);
        assert_eq!(cluster.processes(), processes);
        assert_eq!(cluster.calibration().links.len(), processes);
        let items: Vec<u64> = (0..2000).collect();
        let expected: Vec<u64> = items.iter().map(square).collect();
        for chunk in [1, 7, 5000] {
            let shape = Shape {
                hosts: processes,
                workers,
                chunk,
            };
            assert_eq!(
                cluster.run(f.square, &items, shape).unwrap(),
                expected,
                "{shape}"
            );
        }
        let empty: Vec<u64> = Vec::new();
        let shape = Shape {
            hosts: processes,
            workers,
            chunk: 3,
        };
        assert!(cluster.run(f.square, &empty, shape).unwrap().is_empty());
        let planned = cluster.execute(f.square, &items, &Options::new()).unwrap();
        assert_eq!(planned.results, expected, "{}", planned.plan);
        let planned = cluster.execute(f.square, &empty, &Options::new()).unwrap();
        assert!(planned.results.is_empty());
        cluster.shutdown().expect("a clean end");
    }
}

fn a_stream_hands_out_large_outputs_in_order(f: &Functions) {
    let mut cluster = start(3, 1);
    let n = 50_000u64;
    let shape = Shape {
        hosts: 3,
        workers: 1,
        chunk: 100,
    };
    let mut count = 0u64;
    for (i, r) in cluster.stream(f.square, 0..n, shape).unwrap().enumerate() {
        assert_eq!(r.unwrap(), (i as u64) * (i as u64));
        count += 1;
    }
    assert_eq!(count, n);
    // A stream dropped half-way leaves the cluster usable.
    let taken: Vec<u64> = cluster
        .stream(f.square, 0..n, shape)
        .unwrap()
        .take(10)
        .map(Result::unwrap)
        .collect();
    assert_eq!(taken, (0..10).map(|i| i * i).collect::<Vec<_>>());
    let items: Vec<u64> = (0..500).collect();
    let again = cluster.run(f.square, &items, shape).unwrap();
    assert_eq!(again, items.iter().map(square).collect::<Vec<_>>());
    cluster.shutdown().unwrap();
}

fn a_panic_names_its_item_and_the_cluster_goes_on(f: &Functions) {
    let mut cluster = start(2, 1);
    let items: Vec<u64> = (0..100).collect();
    let shape = Shape {
        hosts: 2,
        workers: 1,
        chunk: 4,
    };
    let e = cluster.run(f.panics, &items, shape).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Panicked, "{e}");
    assert_eq!(e.item(), Some(BAD as usize), "{e}");
    assert!(e.to_string().contains("no thirteen here"), "{e}");
    let fine: Vec<u64> = (20..40).collect();
    assert_eq!(
        cluster.run(f.panics, &fine, shape).unwrap(),
        fine.iter().map(square).collect::<Vec<_>>()
    );
    cluster.shutdown().unwrap();
}

fn a_killed_process_is_an_error_that_names_it(f: &Functions) {
    let mut cluster = start(3, 1);
    // Every item is the fatal one, in chunks of one: the processes other than 0 get some.
    let items = vec![BAD; 300];
    let began = Instant::now();
    let e = cluster
        .run(
            f.kills,
            &items,
            Shape {
                hosts: 3,
                workers: 1,
                chunk: 1,
            },
        )
        .unwrap_err();
    let took = began.elapsed();
    println!(
        "    a killed process was reported after {:.2} s: {e}",
        took.as_secs_f64()
    );
    assert_eq!(e.kind(), ErrorKind::WorkerFailed, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("process 1") || text.contains("process 2"),
        "the error names the process: {text}"
    );
    assert!(text.contains("fail-stop"), "{text}");
    // Not a hang: the bound is far above the heartbeat deadline, so load cannot reach it.
    assert!(took < Duration::from_secs(60), "{took:?}");
    // Fail-stop: the cluster stays failed, and ends without waiting on the lost process.
    let again = cluster.run(
        f.square,
        &[1, 2, 3],
        Shape {
            hosts: 3,
            workers: 1,
            chunk: 1,
        },
    );
    assert_eq!(again.unwrap_err().kind(), ErrorKind::WorkerFailed);
    assert_eq!(
        cluster.shutdown().unwrap_err().kind(),
        ErrorKind::WorkerFailed
    );
}

fn a_hung_process_is_lost_at_the_heartbeat_deadline(f: &Functions) {
    let lost_after = Duration::from_secs(1);
    let mut cluster = cluster::init(Hosts::local(2).lost_after(lost_after)).unwrap();
    let items = vec![BAD; 100];
    let began = Instant::now();
    let e = cluster
        .run(
            f.stops,
            &items,
            Shape {
                hosts: 2,
                workers: 1,
                chunk: 1,
            },
        )
        .unwrap_err();
    let took = began.elapsed();
    println!(
        "    a stopped process was reported after {:.2} s: {e}",
        took.as_secs_f64()
    );
    assert_eq!(e.kind(), ErrorKind::WorkerFailed, "{e}");
    assert!(e.to_string().contains("process 1"), "{e}");
    assert!(e.to_string().contains("no heartbeat"), "{e}");
    // The stopped process is killed with the cluster, not left behind.
    assert_eq!(
        cluster.shutdown().unwrap_err().kind(),
        ErrorKind::WorkerFailed
    );
}

/// A TCP proxy to `target` that holds every byte for `one_way` in each direction: latency
/// without `tc netem`.
fn delaying_proxy(target: String, one_way: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            pump(
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                one_way,
            );
            pump(server, client, one_way);
        }
    });
    address
}

fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = crossbeam_channel::unbounded::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0
                || tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
            {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

fn added_latency_is_measured_predicted_and_refused(f: &Functions) {
    let one_way = Duration::from_millis(5);
    let addresses = free_addresses(2);
    let proxy = delaying_proxy(addresses[0].clone(), one_way);
    let hosts = Hosts::local_on(addresses).reach(0, proxy.to_string());
    let mut cluster = cluster::init(hosts).unwrap();
    let links = cluster.calibration().links.clone();
    println!(
        "    {}",
        cluster
            .calibration()
            .to_string()
            .trim_end()
            .replace('\n', "\n    ")
    );
    // The calibration sees the round trip the proxy adds.
    assert!(
        links[1].round_trip >= 2.0 * one_way.as_secs_f64(),
        "measured {} s",
        links[1].round_trip
    );
    assert!(links[1].round_trip > links[0].round_trip);

    // Chunks of one short item: every chunk waits for a round trip. The prediction and the
    // run side by side; the run cannot beat the floor the delay sets.
    let items: Vec<u64> = vec![100; 400];
    let shape = Shape {
        hosts: 2,
        workers: 1,
        chunk: 1,
    };
    let work = Workload::new(items.len(), 100e-6);
    let predicted = predict_network(&work, &links, shape, cluster::FLOW, true);
    let began = Instant::now();
    let results = cluster.run(f.spins, &items, shape).unwrap();
    let measured = began.elapsed().as_secs_f64();
    assert_eq!(results, items);
    println!(
        "    {shape}, {} items of 100 µs, {:.0} ms added each way: predicted {:.3} s (round trips {:.3} s, compute {:.3} s), measured {:.3} s, measured/predicted {:.2}",
        items.len(),
        one_way.as_secs_f64() * 1e3,
        predicted.total(),
        predicted.latency,
        predicted.compute,
        measured,
        measured / predicted.total()
    );
    // The remote worker's items each wait a full round trip: the run takes at least the
    // slowest trip.
    assert!(measured >= 2.0 * one_way.as_secs_f64());

    // For such items the planner keeps them on this machine, with the figures.
    let planned = cluster.execute(f.spins, &items, &Options::new()).unwrap();
    println!("    {}", planned.plan.to_string().replace('\n', "\n    "));
    assert_eq!(planned.plan.choice, Choice::Threads, "{}", planned.plan);
    assert!(planned.plan.to_string().contains("cannot beat"));
    assert_eq!(planned.results, items);
    cluster.shutdown().unwrap();
}

type Test = (&'static str, fn(&Functions));

fn main() {
    let functions = Functions {
        square: process::register("square", square),
        panics: process::register("panics", panics),
        kills: process::register("kills_its_process", kills_its_process),
        stops: process::register("stops_its_process", stops_its_process),
        spins: process::register("spins", spins),
    };
    // A copy started as a cluster process serves here and exits.
    if std::env::var_os("AMORSIZE_CLUSTER_PROCESS").is_some() {
        let _ = cluster::init(Hosts::local(1));
        unreachable!("a cluster process exits in init");
    }
    let tests: &[Test] = &[
        ("results_equal_the_serial_map", results_equal_the_serial_map),
        (
            "a_stream_hands_out_large_outputs_in_order",
            a_stream_hands_out_large_outputs_in_order,
        ),
        (
            "a_panic_names_its_item_and_the_cluster_goes_on",
            a_panic_names_its_item_and_the_cluster_goes_on,
        ),
        (
            "a_killed_process_is_an_error_that_names_it",
            a_killed_process_is_an_error_that_names_it,
        ),
        (
            "a_hung_process_is_lost_at_the_heartbeat_deadline",
            a_hung_process_is_lost_at_the_heartbeat_deadline,
        ),
        (
            "added_latency_is_measured_predicted_and_refused",
            added_latency_is_measured_predicted_and_refused,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut ran = 0;
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        println!("test {name} ...");
        let began = Instant::now();
        test(&functions);
        println!(
            "test {name} ... ok ({:.1} s)",
            began.elapsed().as_secs_f64()
        );
        ran += 1;
    }
    println!("test result: ok. {ran} passed");
}
