//! Terminal hygiene: piped into a file or a CI log, the output carries no ANSI escapes and shows
//! progress as plain lines (rate and ETA, one at the end); on a terminal (a pseudo-terminal made
//! by util-linux `script`) log lines are coloured unless NO_COLOR is set.

use std::path::Path;
use std::process::Command;

use mm_tests::samples::sample;
use mm_tests::tool::{binary, dump_config, text};

const ESC: &str = "\x1b[";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A dump config of the sample installation (one collection is enough to log and progress).
async fn config(dir: &Path) -> std::path::PathBuf {
    let g = mm_tests::generate(&sample(), &dir.join("src"), true).await.unwrap();
    dump_config(dir, &format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite)), &g.tables, &dir.join("out"), "")
}

#[tokio::test]
async fn piped_log_lines_have_no_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path()).await;
    let o = Command::new(binary()).current_dir(dir.path()).args(["dump", &format!("--config={}", s(&cfg))]).env_remove("NO_COLOR").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    // The sample's dropped collection is skipped with a warning: a log line to colour or not.
    assert!(err.contains(" WARN ") && err.contains("dropped collection"), "{err}");
    assert!(!err.contains(ESC) && !String::from_utf8_lossy(&o.stdout).contains(ESC), "{}", text(&o));
}

#[tokio::test]
async fn piped_output_has_no_escapes_and_plain_progress_lines() {
    let dir = tempfile::tempdir().unwrap();
    // Big enough that the dump outlasts a few 10 ms periods.
    let seg = || mm_tests::SegmentSpec { rows: 60_000, ..Default::default() };
    let g = mm_tests::generate(&mm_tests::Spec::one_collection(3, "big", 128, vec![seg(), seg(), seg()]), &dir.path().join("src"), true).await.unwrap();
    let cfg = dump_config(dir.path(), &format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite)), &g.tables, &dir.path().join("out"), "");
    let o = Command::new(binary())
        .current_dir(dir.path())
        .args(["dump", &format!("--config={}", s(&cfg))])
        .env("MILVUS_MIGRATION_PROGRESS_SECONDS", "0.01")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(!out.contains(ESC) && !err.contains(ESC), "escapes in piped output: {}", text(&o));
    let done: Vec<&str> = err.lines().filter(|l| l.starts_with("dump: done, ")).collect();
    assert_eq!(done.len(), 1, "one closing progress line: {err}");
    assert!(done[0].contains("rows in") && done[0].contains("rows/s"), "{}", done[0]);
    let periodic: Vec<&str> = err.lines().filter(|l| l.starts_with("dump: ") && l.contains(" of ") && l.contains("rows/s")).collect();
    assert!(!periodic.is_empty(), "a periodic line with rate: {err}");
}

/// Holds a colour or style code (ESC [ digits ; ... m); the progress bar may still move the cursor.
fn styled(text: &str) -> bool {
    text.split(ESC).skip(1).any(|rest| {
        let n = rest.chars().take_while(|c| c.is_ascii_digit() || *c == ';').count();
        rest[n..].starts_with('m')
    })
}

/// Runs the dump on a pseudo-terminal; returns everything it wrote there.
fn on_terminal(dir: &Path, cfg: &Path, no_color: bool) -> String {
    let cmd = format!("{} dump --config={}", s(&binary()), s(cfg));
    let mut c = Command::new("script");
    c.current_dir(dir).args(["-qec", &cmd, "/dev/null"]).env_remove("NO_COLOR");
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let o = c.output().expect("util-linux script (a pseudo-terminal)");
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn a_terminal_gets_colour_unless_no_color_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path()).await;
    let coloured = on_terminal(dir.path(), &cfg, false);
    assert!(styled(&coloured), "log levels are coloured on a terminal: {coloured:?}");
    let plain = on_terminal(dir.path(), &cfg, true);
    assert!(!styled(&plain), "NO_COLOR: no colour codes: {plain:?}");
    assert!(plain.contains("WARN"), "{plain}");
}
