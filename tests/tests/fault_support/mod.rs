//! Helpers shared by faults_e2e.rs and sandbox_e2e.rs: small installations, SQL edits of their
//! meta, runs of the binary with peak memory, and checks of what a failed run left behind.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mm_tests::tool::{binary, dump_config, run, text};
use mm_tests::{generate, CollectionSpec, Generated, SegmentSpec, Spec};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A collection `name` with `segments` segments of `rows` rows each.
pub fn collection(name: &str, dim: u32, metric: i64, segments: usize, rows: u64) -> CollectionSpec {
    CollectionSpec {
        name: name.into(),
        dim,
        metric,
        engine_type: 1,
        index_params: "{}".into(),
        dropped: false,
        segments: vec![SegmentSpec { rows, ..Default::default() }; segments],
        partitions: vec![],
    }
}

/// Two float segments of 10 rows, dim 4, in collection "c" (under `dir/src`).
pub async fn install(dir: &Path) -> Generated {
    install_spec(dir, vec![collection("c", 4, 1, 2, 10)]).await
}

pub async fn install_spec(dir: &Path, collections: Vec<CollectionSpec>) -> Generated {
    generate(&Spec { seed: 9, collections }, &dir.join("src"), true).await.unwrap()
}

/// Segment `i` of the first collection's default partition: its id and its directory.
pub fn segment(g: &Generated, i: usize) -> (String, PathBuf) {
    let c = &g.expected.collections[0];
    let id = c.partitions[0].segments[i].segment_id.clone();
    (id.clone(), g.tables.join(&c.name).join(&id))
}

/// Runs statements on a SQLite file (the generated meta, or a new one).
pub async fn sql(db: &Path, statements: &[&str]) {
    let opts = SqliteConnectOptions::new().filename(db).create_if_missing(true);
    let pool = SqlitePool::connect_with(opts).await.unwrap();
    for st in statements {
        sqlx::query(st).execute(&pool).await.unwrap_or_else(|e| panic!("{st}: {e}"));
    }
    pool.close().await;
}

/// A migration.yaml for a local dump of `g` into `dir/out`, read from meta.sqlite.
/// A dump config whose segments are dumped alone (`packSegments: false`): these tests look at
/// each segment's own output and failure. `extra` may hold a `migration:` section of its own.
pub fn sqlite_config(dir: &Path, g: &Generated, extra: &str) -> PathBuf {
    dump_config(dir, &format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite)), &g.tables, &dir.join("out"), &unpacked(extra))
}

/// `extra` with `migration.packSegments: false`.
pub fn unpacked(extra: &str) -> String {
    match extra.strip_prefix("migration:\n") {
        Some(rest) => format!("migration:\n  packSegments: false\n{rest}"),
        None => format!("migration:\n  packSegments: false\n{extra}"),
    }
}

pub fn dump(dir: &Path, cfg: &Path) -> Output {
    run(dir, &["dump", "--config", s(cfg)])
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code `code` and every needle in stderr. `MM_SHOW_ERRORS=1` prints every checked
/// message (with `--nocapture`), to review them.
pub fn assert_exit(o: &Output, code: i32, needles: &[&str]) {
    if std::env::var_os("MM_SHOW_ERRORS").is_some() {
        eprintln!("=== exit {:?}\n{}", o.status.code(), stderr(o));
    }
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
    let err = stderr(o);
    for n in needles {
        assert!(err.contains(n), "missing {n:?} in:\n{}", text(o));
    }
}

/// None of `secrets` in stdout or stderr.
pub fn assert_no_secret(o: &Output, secrets: &[&str]) {
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(o));
    for sec in secrets {
        assert!(!all.contains(sec), "secret {sec:?} printed:\n{}", text(o));
    }
}

/// Every file under `dir` (relative paths, sorted); empty when `dir` is missing.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// A failed dump: no manifest, and nothing (not even a partial file) in the segment's output dir.
pub fn assert_no_output_for(out: &Path, collection: &str, segment: &str) {
    assert!(!out.join("manifest.json").exists(), "a manifest claims a complete dump");
    let left = files_under(&out.join(collection).join("_default").join(segment));
    assert!(left.is_empty(), "files left for the failed segment: {left:?}");
}

/// A port on 127.0.0.1 that refuses connections for as long as this lives: bound (so nothing
/// else gets it) but not listening.
pub struct ClosedPort {
    fd: libc::c_int,
    pub port: u16,
}

impl ClosedPort {
    pub fn new() -> Self {
        // SAFETY: plain socket calls on a fresh descriptor with a zeroed, filled-in sockaddr_in.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            assert_eq!(libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len), 0, "bind: {}", std::io::Error::last_os_error());
            let mut len = len;
            assert_eq!(libc::getsockname(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len), 0);
            ClosedPort { fd, port: u16::from_be(addr.sin_port) }
        }
    }
}

impl Drop for ClosedPort {
    fn drop(&mut self) {
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(self.fd) };
    }
}

/// Runs the binary and measures it: the output, the child's peak resident set (KiB, from
/// wait4's rusage) and the wall time.
pub fn run_measured(cwd: &Path, args: &[&str]) -> (Output, u64, Duration) {
    let started = Instant::now();
    let mut child = Command::new(binary())
        .current_dir(cwd)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run milvus-migration");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).unwrap();
        v
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let elapsed = started.elapsed();
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    };
    (output, usage.ru_maxrss as u64, elapsed)
}

/// Makes `path` a sparse file of `payload + 8` bytes whose u64 header says `payload`.
pub fn sparse_counted_file(path: &Path, payload: u64) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(path).unwrap();
    f.write_all(&payload.to_le_bytes()).unwrap();
    f.set_len(payload + 8).unwrap();
}
