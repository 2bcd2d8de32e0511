//! `plan`: reads everything, writes nothing; prints the inventory, the 2.x mapping, warnings
//! and preflight checks. Exit 0 only when nothing blocks the migration.

use std::sync::Arc;

use crate::bindings::engine;
use crate::caps::blob_store::Grants;
use crate::caps::milvus::ImportPaths;
use crate::exit::Failure;
use crate::sandbox::{Caps, Sandbox};
use crate::job::model::{Job, StoreSpec};
use crate::stores;

pub async fn run(s: &Job, json: bool) -> Result<(), Failure> {
    // Host-side checks: the stores and the server. A failure is recorded, not fatal.
    let mut checks: Vec<(bool, String, String)> = Vec::new();
    let source = match stores::grant(&s.source, false).await {
        Ok(g) => {
            checks.push((true, "source store".into(), g.display.clone()));
            Some(g)
        }
        Err(e) => {
            checks.push((false, "source store".into(), format!("{e:#}")));
            None
        }
    };
    let target = match &s.target {
        StoreSpec::Local(dir) if dir.is_dir() => Ok(format!("{} exists", dir.display())),
        StoreSpec::Local(dir) => Ok(format!("{} will be created", dir.display())),
        StoreSpec::Remote(r) => stores::probe_remote(r).await,
    };
    checks.push(match target {
        Ok(d) => (true, "target store".into(), d),
        Err(d) => (false, "target store".into(), d),
    });
    let conn = match &s.milvus {
        Some(_) => match s.milvus_conn(ImportPaths::Bucket { prefix: String::new() }).await {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                checks.push((false, "target Milvus".into(), format!("{e:#}")));
                None
            }
        },
        None => {
            checks.push((true, "target Milvus".into(), "not configured (target.milvus2x.endpoint): not checked".into()));
            None
        }
    };

    let meta = s.meta.as_ref().expect("plan settings carry the meta");
    let (meta_source, db) = super::dump::meta_source(meta, &s.source).await?;
    let sandbox = Sandbox::new(s.limits).map_err(Failure::Run)?;
    let caps = Caps { meta: db, grants: Grants { source, target: None }, milvus: conn.clone(), unit: "plan".into(), ..Default::default() };
    let dopts = super::dump::dump_options(s);
    let lopts = super::load::load_options(s);
    let plan = sandbox
        .plan_migration(caps, &meta_source, &dopts, &lopts)
        .await
        .map_err(|e| Failure::Run(anyhow::anyhow!("planning failed: {e}")))?;
    // Without a connection the engine's own "target Milvus" check repeats ours; keep one.
    let engine_checks = plan.checks.iter().filter(|c| !(conn.is_none() && c.what == "target Milvus"));
    let all: Vec<(bool, String, String)> =
        checks.into_iter().chain(engine_checks.map(|c| (c.ok, c.what.clone(), c.detail.clone()))).collect();
    let ok = all.iter().all(|c| c.0);

    if json {
        let mut doc: serde_json::Value = serde_json::from_str(&plan.json).map_err(|e| Failure::Run(e.into()))?;
        doc["checks"] = all.iter().map(|(ok, what, detail)| serde_json::json!({"ok": ok, "what": what, "detail": detail})).collect();
        doc["ok"] = ok.into();
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
    } else {
        print_plan(&plan, &all);
    }
    if ok {
        Ok(())
    } else {
        Err(Failure::Run(anyhow::anyhow!("{} check(s) failed: the migration would not complete", all.iter().filter(|c| !c.0).count())))
    }
}

fn print_plan(plan: &engine::MigrationPlan, checks: &[(bool, String, String)]) {
    let rows: u64 = plan.dump.units.iter().map(|u| u.rows).sum();
    let bytes: u64 = plan.dump.units.iter().map(|u| u.file_size).sum();
    println!(
        "inventory: {} collection(s), {} segment(s), {rows} live rows, {:.1} MB of vectors and ids",
        plan.dump.collections.len(),
        plan.dump.units.len(),
        bytes as f64 / 1e6
    );
    println!("mapping:");
    for c in &plan.load.collections {
        let index = c.index.as_ref().map_or("none".to_string(), |i| format!("{} {} {}", i.index_type, i.metric, i.params));
        let kind = match c.vector {
            engine::VectorKind::Float => "FloatVector",
            engine::VectorKind::Binary => "BinaryVector",
        };
        println!(
            "  {}: {} Int64 primary key, {} {kind}({}); index {index}{}",
            c.name,
            c.id_field,
            c.vector_field,
            c.dim,
            if c.exists { "; exists" } else { "" }
        );
        for p in &c.partitions {
            let from = if p.tag.is_empty() { "(default)".to_string() } else { format!("{:?}", p.tag) };
            println!("    partition {from} -> {} ({} rows)", p.name, p.rows);
        }
    }
    let warnings: Vec<&String> = plan.dump.warnings.iter().chain(plan.load.warnings.iter()).collect();
    if !warnings.is_empty() {
        println!("warnings:");
        for w in warnings {
            println!("  {w}");
        }
    }
    println!("checks:");
    for (ok, what, detail) in checks {
        println!("  [{}] {what}: {detail}", if *ok { " ok " } else { "FAIL" });
    }
}
