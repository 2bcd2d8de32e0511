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
    // Big enough that the dump (~50 ms here) outlasts many 1 ms periods.
    let seg = || mm_tests::SegmentSpec { rows: 60_000, ..Default::default() };
    let g = mm_tests::generate(&mm_tests::Spec::one_collection(3, "big", 128, vec![seg(), seg(), seg()]), &dir.path().join("src"), true).await.unwrap();
    let cfg = dump_config(dir.path(), &format!("  mode: sqlite\n  sqliteFile: {}", s(&g.meta_sqlite)), &g.tables, &dir.path().join("out"), "");
    let o = Command::new(binary())
        .current_dir(dir.path())
        .args(["dump", &format!("--config={}", s(&cfg))])
        .env("MILVUS_MIGRATION_PROGRESS_SECONDS", "0.001")
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

/// The key table of `dump --help` as printed at `width`: every line within it, every key at the
/// start of a line, the checkBucket row's text in the text column (the table the issue saw torn).
fn assert_key_table_intact(help: &str, width: usize) {
    for line in help.lines() {
        assert!(line.chars().count() <= width, "{width} columns: {line:?}\n{help}");
    }
    for key in ["dumper.worker.limit", "*.remote.checkBucket", "target.milvus2x.endpoint", "migration.loadMode", "migration.badData"] {
        assert!(help.lines().any(|l| l.starts_with(&format!("  {key} "))), "{width}: no row for {key}:\n{help}");
    }
    let lines: Vec<&str> = help.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("  *.remote.checkBucket ")).unwrap();
    let column = lines[at].find("true: create").expect("the text beside the key");
    let mut row = lines[at][column..].to_string();
    for l in &lines[at + 1..] {
        if l.len() <= column || !l[..column].trim().is_empty() {
            break;
        }
        row = format!("{row} {}", l.trim());
    }
    assert_eq!(row, "true: create the bucket when missing (S3); false: fail when missing", "{width}:\n{help}");
}

#[test]
fn help_key_tables_fit_80_columns_and_a_wide_terminal() {
    // Piped: clap and the tables take $COLUMNS.
    for (columns, width) in [("80", 80), ("200", 100)] {
        let o = Command::new(binary()).args(["dump", "--help"]).env("COLUMNS", columns).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert_key_table_intact(&String::from_utf8_lossy(&o.stdout), width);
    }
    // On a terminal of 80 columns (the pseudo-terminal's own size, not $COLUMNS).
    let cmd = format!("stty cols 80 rows 50; {} dump --help", s(&binary()));
    let o = Command::new("script").args(["-qec", &cmd, "/dev/null"]).env_remove("COLUMNS").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let help = String::from_utf8_lossy(&o.stdout).replace("\r\n", "\n");
    assert_key_table_intact(&without_styles(&help), 80);
}

/// `text` without colour and style codes (clap styles headings on a terminal).
fn without_styles(text: &str) -> String {
    let mut parts = text.split(ESC);
    let mut out = parts.next().unwrap_or("").to_string();
    for rest in parts {
        let n = rest.chars().take_while(|c| c.is_ascii_digit() || *c == ';').count();
        out.push_str(rest[n..].strip_prefix('m').unwrap_or(&rest[n..]));
    }
    out
}
