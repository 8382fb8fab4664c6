//! `amorsize run` over real ssh: two OpenSSH servers on 127.0.0.1 (each on a free port, with
//! its own host key and an authorized test key) are the hosts `h1` and `h2` of an ssh
//! configuration that both `amorsize run` and GNU parallel use through `--ssh 'ssh -F cfg'`.
//! A stand-in for ssh (a shell script passed as `--ssh`) makes a host fail for the fault cases.
//!
//! `.ci/run` installs Debian's `openssh-server` when `/usr/sbin/sshd` is missing; without sshd,
//! ssh or ssh-keygen, each test prints why and checks nothing. No test depends on timing:
//! where a test waits for something, the wait is bounded and only a failure reaches the bound.

#![allow(clippy::print_stderr)] // The skip reason is printed for people.

use std::collections::BTreeMap;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

const SSHD: &str = "/usr/sbin/sshd";

/// Two sshd instances and an ssh configuration naming them; the servers end on drop.
struct Lab {
    dir: tempfile::TempDir,
    servers: Vec<Child>,
    config: PathBuf,
    ports: Vec<u16>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs")
        .success();
    assert!(ok, "ssh-keygen failed");
}

/// Starts the servers, or says why it cannot (and the test checks nothing).
fn lab() -> Option<Lab> {
    if !Path::new(SSHD).exists() || !have("ssh") || !have("ssh-keygen") {
        eprintln!(
            "skipped: OpenSSH's sshd, ssh or ssh-keygen is missing (Debian: apt-get install \
             openssh-server; .ci/run installs it)"
        );
        return None;
    }
    // sshd wants its privilege-separation directory; as root it may be made here.
    let _ = fs::create_dir_all("/run/sshd");
    if !Path::new("/run/sshd").is_dir() {
        eprintln!("skipped: /run/sshd (sshd's privilege-separation directory) is missing");
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("amz-ssh")
        .tempdir()
        .unwrap();
    let d = dir.path();
    keygen(&d.join("host_key"));
    keygen(&d.join("client_key"));
    fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mut servers = Vec::new();
    let mut ports = Vec::new();
    let mut config = String::new();
    for k in 1..=2 {
        let port = free_port();
        let cfg = d.join(format!("sshd{k}.conf"));
        fs::write(
            &cfg,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                 PidFile {pid}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin {root}\n",
                hk = d.join("host_key").display(),
                ak = d.join("authorized_keys").display(),
                pid = d.join(format!("sshd{k}.pid")).display(),
                root = if root { "yes" } else { "no" },
            ),
        )
        .unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(d.join(format!("sshd{k}.log"))).unwrap())
            .spawn()
            .expect("sshd starts");
        servers.push(child);
        ports.push(port);
        config += &format!("Host h{k}\n  HostName 127.0.0.1\n  Port {port}\n");
    }
    // `down` names a port where nothing listens: ssh exits with 255.
    config += &format!(
        "Host down\n  HostName 127.0.0.1\n  Port {}\n\
         Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  \
         UserKnownHostsFile /dev/null\n  BatchMode yes\n  LogLevel ERROR\n  ConnectTimeout 30\n",
        free_port(),
        d.join("client_key").display()
    );
    let config_path = d.join("ssh_config");
    fs::write(&config_path, config).unwrap();
    let lab = Lab {
        dir,
        servers,
        config: config_path,
        ports,
    };
    for &port in &lab.ports {
        let began = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "sshd on port {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Some(lab)
}

impl Lab {
    fn ssh(&self) -> String {
        format!("ssh -F {}", self.config.display())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `amorsize run --ssh 'ssh -F cfg' ARGS`, in `cwd`.
    fn amorsize(&self, args: &[&str], cwd: &Path) -> Output {
        let mut cmd = Command::cargo_bin("amorsize").unwrap();
        cmd.arg("run")
            .arg("--ssh")
            .arg(self.ssh())
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null());
        cmd.output().unwrap()
    }

    /// A stand-in for ssh: it passes everything to `ssh -F cfg`, except that on host `host`
    /// once `after` jobs have run there, every command but the master's fails with 255, as
    /// when a host drops.
    fn failing_ssh(&self, host: &str, after: usize) -> String {
        let script = self.path(&format!("ssh-fail-{host}-{after}"));
        let count = self.path(&format!("count-{host}-{after}"));
        fs::write(
            &script,
            format!(
                "#!/bin/sh\n\
                 host={host}\n\
                 case \" $* \" in *\" $host \"*) ;; *) exec ssh -F {cfg} \"$@\";; esac\n\
                 case \" $* \" in *\" -M \"*|*\" -O \"*) exec ssh -F {cfg} \"$@\";; esac\n\
                 n=$(cat {count} 2>/dev/null || echo 0)\n\
                 if [ \"$n\" -ge {after} ]; then echo \"ssh: connect to host $host: Connection refused\" >&2; exit 255; fi\n\
                 case \"$*\" in *'exec sh -c'*) echo $((n + 1)) > {count};; esac\n\
                 exec ssh -F {cfg} \"$@\"\n",
                cfg = self.config.display(),
                count = count.display(),
            ),
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        script.display().to_string()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The job log's Host column, by job number.
fn hosts_of(log: &Path) -> BTreeMap<usize, String> {
    fs::read_to_string(log)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].parse().unwrap(), f[1].to_owned())
        })
        .collect()
}

fn gnu_parallel_present() -> bool {
    Command::new("parallel")
        .arg("--version")
        .output()
        .is_ok_and(|o| text(&o.stdout).starts_with("GNU parallel"))
}

#[test]
fn gnu_parallel_and_amorsize_agree_over_ssh() {
    let Some(lab) = lab() else { return };
    if !gnu_parallel_present() {
        eprintln!("skipped: GNU parallel is missing (.ci/run installs it)");
        return;
    }
    let slf = lab.path("hosts");
    fs::write(&slf, "# the two test hosts\nh1\n\nh2\n").unwrap();
    let slf = slf.display().to_string();
    let cases: &[&[&str]] = &[
        &[
            "-k", "-S", "h1,h2", "echo", "{}", ":::", "a", "b c", "d'e", "f\"g", "$HOME",
        ],
        &[
            "-k",
            "-S",
            "h1",
            "-S",
            "h2",
            "echo {} | tr a-z A-Z",
            ":::",
            "x y",
            "it's",
        ],
        &[
            "-k", "--slf", &slf, "echo", "{#}", "{/.}", ":::", "d/a.b", "c",
        ],
        &[
            "-k", "-S", "1/h1,:", "-j", "1", "echo", "{}", ":::", "1", "2", "3",
        ],
    ];
    for case in cases {
        let gnu = Command::new("parallel")
            .arg("--ssh")
            .arg(lab.ssh())
            .args(*case)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let ours = lab.amorsize(case, lab.dir.path());
        assert_eq!(
            (text(&ours.stdout), ours.status.code()),
            (text(&gnu.stdout), gnu.status.code()),
            "{case:?}\namorsize stderr: {}\nGNU stderr: {}",
            text(&ours.stderr),
            text(&gnu.stderr)
        );
    }
}

#[test]
fn the_job_log_names_each_jobs_host() {
    let Some(lab) = lab() else { return };
    let log = lab.path("joblog");
    let out = lab.amorsize(
        &[
            "-S",
            "h1,h2,:",
            "--joblog",
            log.to_str().unwrap(),
            "echo",
            ":::",
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
        ],
        lab.dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hosts = hosts_of(&log);
    assert_eq!(
        hosts.keys().copied().collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    // The sample runs on every host.
    for h in ["h1", "h2", ":"] {
        assert!(hosts.values().any(|v| v == h), "{h} ran nothing: {hosts:?}");
    }
}

#[test]
fn the_plan_shows_each_host() {
    let Some(lab) = lab() else { return };
    let out = lab.amorsize(
        &[
            "--plan",
            "-S",
            "2/h1,h2,:",
            "echo",
            ":::",
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "8",
        ],
        lab.dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(plan.contains("hosts:"), "{plan}");
    assert!(plan.contains("round trip"), "{plan}");
    for row in ["  h1 ", "  h2 ", "  : "] {
        assert!(plan.contains(row), "{row:?} missing from\n{plan}");
    }
    assert!(plan.contains("(* cores given as N/host)"), "{plan}");
    let json = lab.amorsize(
        &["--plan", "--json", "-S", "h1", "echo", ":::", "1", "2"],
        lab.dir.path(),
    );
    let text = text(&json.stdout);
    assert!(
        text.contains("\"hosts\"") && text.contains("\"round_trip\""),
        "{text}"
    );
}

#[test]
fn files_travel_there_and_back_and_are_cleaned_up() {
    let Some(lab) = lab() else { return };
    let home = text(
        &Command::new("ssh")
            .args(["-F", lab.config.to_str().unwrap(), "h1", "pwd"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_owned();
    let work = lab.path("work");
    // A name of its own, relative: it lands in the remote login directory.
    let sub = format!("amz-trc-{}", std::process::id());
    fs::create_dir_all(work.join(&sub)).unwrap();
    fs::write(work.join("base.txt"), "base\n").unwrap();
    let inputs: Vec<String> = (1..=4).map(|k| format!("{sub}/in {k}.txt")).collect();
    for (k, i) in inputs.iter().enumerate() {
        fs::write(work.join(i), format!("input {k}\n")).unwrap();
    }
    let mut args = vec![
        "-S",
        "h1,h2",
        "--basefile",
        "base.txt",
        "--trc",
        "{}.out",
        "cat base.txt {} > {}.out",
        ":::",
    ];
    args.extend(inputs.iter().map(String::as_str));
    let out = lab.amorsize(&args, &work);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (k, i) in inputs.iter().enumerate() {
        let back = fs::read_to_string(work.join(format!("{i}.out"))).unwrap();
        assert_eq!(back, format!("base\ninput {k}\n"));
        let there = Path::new(&home).join(i);
        assert!(!there.exists(), "{} was not cleaned up", there.display());
        assert!(!Path::new(&format!("{}.out", there.display())).exists());
    }
    assert!(!Path::new(&home).join("base.txt").exists() || home == work.display().to_string());
    let _ = fs::remove_dir_all(Path::new(&home).join(&sub));
}

#[test]
fn a_host_down_from_the_start_leaves_its_jobs_to_the_others() {
    let Some(lab) = lab() else { return };
    let out = lab.amorsize(
        &[
            "-k", "-S", "h1,down", "echo", ":::", "1", "2", "3", "4", "5",
        ],
        lab.dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "1\n2\n3\n4\n5\n");
    let err = text(&out.stderr);
    assert!(err.contains("host down is down"), "{err}");
    assert!(err.contains("255"), "{err}");

    // With no host left: a clear error, nothing run.
    let out = lab.amorsize(&["-S", "down", "echo", ":::", "1"], lab.dir.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no host can be reached"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_host_that_drops_mid_run_leaves_its_jobs_to_the_others() {
    let Some(lab) = lab() else { return };
    let ssh = lab.failing_ssh("h2", 2);
    let log = lab.path("joblog-drop");
    let inputs: Vec<String> = (1..=12).map(|k| k.to_string()).collect();
    let mut args = vec![
        "--ssh",
        &ssh,
        "-k",
        "-j",
        "1",
        "--joblog",
        log.to_str().unwrap(),
        "-S",
        "h1,h2",
        "echo",
        ":::",
    ];
    args.extend(inputs.iter().map(String::as_str));
    let out = lab.amorsize(&args, lab.dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Every input ran exactly once, in order.
    let expected: String = inputs.iter().map(|i| format!("{i}\n")).collect();
    assert_eq!(text(&out.stdout), expected);
    let err = text(&out.stderr);
    assert!(err.contains("host h2 is down"), "{err}");
    let hosts = hosts_of(&log);
    assert_eq!(hosts.len(), 12, "{hosts:?}");
    assert!(
        hosts.values().filter(|h| *h == "h2").count() <= 2,
        "{hosts:?}"
    );

    // Every host dropping: a clear error naming the inputs not run.
    let ssh1 = lab.failing_ssh("h1", 1);
    let out = lab.amorsize(
        &[
            "--ssh", &ssh1, "-j", "1", "-S", "h1", "echo", ":::", "1", "2", "3", "4",
        ],
        lab.dir.path(),
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("every host is down"), "{err}");
    assert!(err.contains("inputs were not run"), "{err}");
    assert_eq!(text(&out.stdout), "1\n");
}

/// Processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = fs::read(entry.path().join("cmdline")) {
            let cmd = text(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{}: {cmd}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn an_interruption_ends_remote_jobs_and_leaves_no_ssh_behind() {
    let Some(lab) = lab() else { return };
    let pids = lab.path("pids");
    fs::create_dir_all(&pids).unwrap();
    let script = format!("echo $$ > {}/{{}}; exec sleep 1000", pids.display());
    let mut child = Command::cargo_bin("amorsize")
        .unwrap()
        .args([
            "run",
            "--ssh",
            &lab.ssh(),
            "-j",
            "1",
            "-S",
            "h1,h2",
            &script,
        ])
        .args([":::", "a", "b"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let began = Instant::now();
    let read = |name: &str| -> Option<i32> {
        fs::read_to_string(pids.join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    while read("a").is_none() || read("b").is_none() {
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "the jobs did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let remote = [read("a").unwrap(), read("b").unwrap()];
    assert!(remote.iter().all(|&p| alive(p)));
    // SAFETY-free: `kill` the program, as a terminal's Ctrl-C would signal it.
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    // The remote side ends when its session closes; give it a bounded while.
    let began = Instant::now();
    while remote.iter().any(|&p| alive(p)) {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "remote jobs outlived the run"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = processes_with(lab.config.to_str().unwrap());
    assert!(left.is_empty(), "ssh processes left: {left:?}");
}

#[test]
fn the_sshlogin_file_is_read_again_when_it_changes() {
    let Some(lab) = lab() else { return };
    let slf = lab.path("slf");
    fs::write(&slf, "h1\n").unwrap();
    let seen = lab.path("h2-seen");
    let log = lab.path("joblog-slf");
    // Job 1 (on h1) replaces the file with one listing h2 only, then waits (a bounded while)
    // until a job has run on h2; every job on h2 marks that it ran there.
    let script = format!(
        "case \"$SSH_CONNECTION\" in *' {p2}') touch {seen};; esac; \
         if [ {{}} = 1 ]; then echo h2 > {slf}.new && mv {slf}.new {slf}; n=0; \
         while [ ! -e {seen} ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done; fi; echo {{}}",
        p2 = lab.ports[1],
        seen = seen.display(),
        slf = slf.display(),
    );
    let out = lab.amorsize(
        &[
            "-k",
            "-j",
            "1",
            "--slf",
            slf.to_str().unwrap(),
            "--joblog",
            log.to_str().unwrap(),
            &script,
            ":::",
            "1",
            "2",
            "3",
            "4",
        ],
        lab.dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "1\n2\n3\n4\n");
    assert!(seen.exists(), "no job ran on h2");
    let hosts = hosts_of(&log);
    assert_eq!(hosts[&1], "h1");
    // h1 is no longer listed: every later job runs on h2.
    for k in 2..=4 {
        assert_eq!(hosts[&k], "h2", "{hosts:?}");
    }
}
