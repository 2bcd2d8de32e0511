//! The WIT adapter: converts between generated types and the engine's own, and implements the
//! engine's IO traits over the imports. No logic lives here.
use crate::prelude::*;

wit_bindgen::generate!({ world: "migrator", path: "../wit" });

use exports::milvus::migration::engine as wit;
use milvus::migration::{blob_store, meta_db, milvus as mv, report, types};

use crate::bad_data::Policy;
use crate::error::Error;
use crate::io::{self, Level, Role};
use crate::meta::{self, rows, Installation, VectorKind};
use crate::plan::{self, CollectionPlan, DumpOptions, DumpPlan, PackPlan, PartitionPlan, SegmentUnit};
use crate::index::{IndexMode, IndexSpec};
use crate::load::{CollectionLoad, FileGroup, GroupMember, LoadOptions, PartitionLoad};
use crate::reconcile;
use crate::{dump, duplicates, load, manifest, preflight, verify};

struct Component;
export!(Component);

// memcpy, memcmp and friends: std gets them from wasi-libc; so do we. They are plain functions
// that import nothing.
#[link(name = "c")]
unsafe extern "C" {}

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// The canonical ABI's allocator, over ours. Written here because on wasm32-wasip2 wit-bindgen
/// leaves it to wasi-libc, whose `malloc` is not the allocator that later frees what the host
/// passed in (strings and lists become our `String`s and `Vec`s).
#[unsafe(no_mangle)]
unsafe extern "C" fn cabi_realloc(old: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8 {
    use alloc::alloc::{alloc, handle_alloc_error, realloc, Layout};
    let ptr = unsafe {
        if old_len == 0 {
            if new_len == 0 {
                return align as *mut u8;
            }
            alloc(Layout::from_size_align_unchecked(new_len, align))
        } else {
            realloc(old, Layout::from_size_align_unchecked(old_len, align), new_len)
        }
    };
    if ptr.is_null() {
        handle_alloc_error(unsafe { Layout::from_size_align_unchecked(new_len, align) });
    }
    ptr
}

/// A panic is a bug: say so through `report.log` (hosts need not capture anything else); std
/// then aborts, which traps. Installed by each export on its first call (a component has no
/// start hook); a panic while reporting one (out of memory again, say) aborts at once.
fn report_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(alloc::boxed::Box::new(|info| {
            static PANICKING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
            if !PANICKING.swap(true, core::sync::atomic::Ordering::Relaxed) {
                report::log(report::Level::Error, &format!("engine panic (a bug, please report it): {info}"));
            }
        }))
    });
}

impl wit::Guest for Component {
    fn export_meta() -> Result<String, types::Error> {
        report_panics();
        let inst = read_database()?;
        Ok(meta::json::to_json(&inst))
    }

    fn plan_dump(meta: wit::MetaSource, options: wit::DumpOptions) -> Result<wit::DumpPlan, types::Error> {
        report_panics();
        let inst = match meta {
            wit::MetaSource::Database => read_database()?,
            wit::MetaSource::Json(text) => meta::json::from_json(&text, "meta.json")?,
        };
        Ok(plan::plan_dump(inst, &options.into())?.into())
    }

    fn invalidate_manifest() -> Result<(), types::Error> {
        report_panics();
        Ok(manifest::invalidate_manifest(&Imports)?)
    }

    fn dump_segment(unit: wit::SegmentUnit, options: wit::DumpOptions) -> Result<wit::SegmentReport, types::Error> {
        report_panics();
        Ok(dump::dump_segment(&Imports, &Imports, &unit.into(), &options.into())?.into())
    }

    fn dump_pack(units: Vec<wit::SegmentUnit>, output_dir: String, options: wit::DumpOptions) -> Result<wit::PackReport, types::Error> {
        report_panics();
        let units: Vec<SegmentUnit> = units.into_iter().map(Into::into).collect();
        let (segments, files) = dump::dump_pack(&Imports, &Imports, &units, &output_dir, &options.into())?;
        Ok(wit::PackReport { segments: segments.into_iter().map(Into::into).collect(), files: files.into_iter().map(Into::into).collect() })
    }

    fn find_duplicates(units: Vec<wit::SegmentUnit>, options: wit::DumpOptions) -> Result<wit::DuplicateReport, types::Error> {
        report_panics();
        let units: Vec<SegmentUnit> = units.into_iter().map(Into::into).collect();
        let r = duplicates::find_duplicates(&Imports, &Imports, &units, &DumpOptions::from(options))?;
        Ok(wit::DuplicateReport {
            ids: r.ids,
            repeated_ids: r.repeated_ids,
            extra_copies: r.extra_copies,
            examples: r.examples,
            drops: r.drops,
        })
    }

    fn write_manifest(
        plan: wit::DumpPlan,
        options: wit::DumpOptions,
        reports: Vec<wit::SegmentReport>,
        pack_files: Vec<Vec<wit::Written>>,
    ) -> Result<wit::Written, types::Error> {
        report_panics();
        let reports: Vec<dump::SegmentReport> = reports.into_iter().map(Into::into).collect();
        let pack_files: Vec<Vec<io::Written>> = pack_files.into_iter().map(|f| f.into_iter().map(Into::into).collect()).collect();
        Ok(manifest::write_manifest(&Imports, &plan.into(), &options.into(), &reports, &pack_files)?.into())
    }

    fn plan_early_load(
        plan: wit::DumpPlan,
        dump_options: wit::DumpOptions,
        reports: Vec<Option<wit::SegmentReport>>,
        pack_files: Vec<Option<Vec<wit::Written>>>,
        load_options: wit::LoadOptions,
    ) -> Result<wit::LoadPlan, types::Error> {
        report_panics();
        let reports: Vec<Option<dump::SegmentReport>> = reports.into_iter().map(|r| r.map(Into::into)).collect();
        let pack_files: Vec<Option<Vec<io::Written>>> = pack_files.into_iter().map(|f| f.map(|f| f.into_iter().map(Into::into).collect())).collect();
        let plan = load::plan_early_load(&Imports, &plan.into(), &dump_options.into(), &reports, &pack_files, &load_options.into())?;
        Ok(plan.into())
    }

    fn plan_load(options: wit::LoadOptions) -> Result<wit::LoadPlan, types::Error> {
        report_panics();
        let plan = load::plan_load(&Imports, &Imports, &options.into())?;
        Ok(plan.into())
    }

    fn cleanup_collection(collection: wit::CollectionLoad) -> Result<u32, types::Error> {
        report_panics();
        Ok(load::cleanup_collection(&Imports, &Imports, &collection.into())?)
    }

    fn plan_migration(
        meta: wit::MetaSource,
        dump_options: wit::DumpOptions,
        load_options: wit::LoadOptions,
    ) -> Result<wit::MigrationPlan, types::Error> {
        report_panics();
        let inst = match meta {
            wit::MetaSource::Database => read_database()?,
            wit::MetaSource::Json(text) => meta::json::from_json(&text, "meta.json")?,
        };
        let p = preflight::plan_migration(&Imports, &Imports, inst, &dump_options.into(), &load_options.into())?;
        Ok(wit::MigrationPlan {
            dump: p.dump.into(),
            load: p.load.into(),
            checks: p.checks.into_iter().map(|c| wit::Check { ok: c.ok, what: c.what, detail: c.detail }).collect(),
            json: p.json,
        })
    }

    fn load_collection(collection: wit::CollectionLoad) -> Result<wit::LoadReport, types::Error> {
        report_panics();
        let r = load::load_collection(&Imports, &Imports, &Imports, &collection.into())?;
        Ok(wit::LoadReport { imported: r.imported, skipped: r.skipped, rows: r.rows, partition_rows: r.partition_rows })
    }

    fn reconcile_collection(collection: wit::CollectionLoad, o: wit::ReconcileOptions) -> Result<wit::ReconcileReport, types::Error> {
        report_panics();
        let options = reconcile::Options { max_listed: o.max_listed, repair: o.repair, delete_extra: o.delete_extra, batch_rows: o.batch_rows };
        let r = reconcile::reconcile_collection(&Imports, &Imports, &Imports, &collection.into(), &options)?;
        let finding = |f: reconcile::Finding| wit::IdFinding { count: f.count, first: f.first };
        Ok(wit::ReconcileReport {
            rows_elsewhere: r.rows_elsewhere,
            partitions: r
                .partitions
                .into_iter()
                .map(|p| wit::PartitionReconcile {
                    name: p.name,
                    expected_rows: p.expected_rows,
                    milvus_rows: p.milvus_rows,
                    missing: finding(p.missing),
                    duplicated: finding(p.duplicated),
                    extra: finding(p.extra),
                    differing: finding(p.differing),
                    repaired: p.repaired,
                    deleted: p.deleted,
                })
                .collect(),
        })
    }

    fn verify_collection(collection: wit::CollectionLoad) -> Result<wit::VerifyReport, types::Error> {
        report_panics();
        let r = verify::verify_collection(&Imports, &Imports, &Imports, &collection.into())?;
        Ok(wit::VerifyReport {
            expected_rows: r.expected_rows,
            actual_rows: r.actual_rows,
            partitions: r
                .partitions
                .into_iter()
                .map(|p| wit::PartitionCheck {
                    name: p.name,
                    expected_rows: p.expected_rows,
                    actual_rows: p.actual_rows,
                    sampled: p.sampled,
                    deleted_checked: p.deleted_checked,
                    problems: p.problems,
                })
                .collect(),
        })
    }
}

impl io::Milvus for Imports {
    fn server_version(&self) -> Result<String, Error> {
        Ok(mv::server_version()?)
    }
    fn describe_collection(&self, name: &str) -> Result<Option<io::CollectionInfo>, Error> {
        Ok(mv::describe_collection(name)?.map(|c| io::CollectionInfo {
            id: c.id,
            fields: c
                .fields
                .into_iter()
                .map(|f| io::FieldInfo {
                    name: f.name,
                    field_type: match f.field_type {
                        mv::FieldType::Int64 => io::FieldType::Int64,
                        mv::FieldType::FloatVector => io::FieldType::FloatVector,
                        mv::FieldType::BinaryVector => io::FieldType::BinaryVector,
                        mv::FieldType::Other(n) => io::FieldType::Other(n),
                    },
                    is_primary: f.is_primary,
                    auto_id: f.auto_id,
                    dim: f.dim,
                })
                .collect(),
            partitions: c.partitions,
        }))
    }
    fn create_collection(&self, c: &io::NewCollection) -> Result<(), Error> {
        Ok(mv::create_collection(&mv::NewCollection {
            name: c.name.clone(),
            description: c.description.clone(),
            id_field: c.id_field.clone(),
            vector_field: c.vector_field.clone(),
            binary: c.binary,
            dim: c.dim,
            shards: c.shards,
            consistency: c.consistency.clone(),
        })?)
    }
    fn create_partition(&self, collection: &str, partition: &str) -> Result<(), Error> {
        Ok(mv::create_partition(collection, partition)?)
    }
    fn describe_indexes(&self, collection: &str) -> Result<Vec<io::IndexInfo>, Error> {
        Ok(mv::describe_indexes(collection)?
            .into_iter()
            .map(|i| io::IndexInfo { field: i.field, index_type: i.index_type, metric: i.metric, params: i.params })
            .collect())
    }
    fn create_index(&self, collection: &str, i: &io::IndexInfo) -> Result<(), Error> {
        let index = mv::IndexInfo {
            field: i.field.clone(),
            index_type: i.index_type.clone(),
            metric: i.metric.clone(),
            params: i.params.clone(),
        };
        Ok(mv::create_index(collection, &index)?)
    }
    fn load(&self, collection: &str) -> Result<(), Error> {
        Ok(mv::load(collection)?)
    }
    fn import_files(&self, collection: &str, partition: &str, files: &[String]) -> Result<i64, Error> {
        Ok(mv::import_files(collection, partition, files)?)
    }
    fn await_import(&self, task: i64) -> Result<io::ImportOutcome, Error> {
        let o = mv::await_import(task)?;
        Ok(io::ImportOutcome { completed: o.completed, rows: o.rows, reason: o.reason })
    }
    fn list_imports(&self, collection: &str) -> Result<Vec<io::ImportTask>, Error> {
        Ok(mv::list_imports(collection)?
            .into_iter()
            .map(|t| io::ImportTask {
                id: t.id,
                state: match t.state {
                    mv::ImportState::Pending => io::ImportState::Pending,
                    mv::ImportState::Running => io::ImportState::Running,
                    mv::ImportState::Completed => io::ImportState::Completed,
                    mv::ImportState::Failed => io::ImportState::Failed,
                },
                files: t.files,
            })
            .collect())
    }
    fn insert(&self, collection: &str, partition: &str, rows: &io::Rows) -> Result<u64, Error> {
        Ok(mv::insert(collection, partition, &wit_rows(rows))?)
    }
    fn upsert(&self, collection: &str, partition: &str, rows: &io::Rows) -> Result<u64, Error> {
        Ok(mv::upsert(collection, partition, &wit_rows(rows))?)
    }
    fn flush(&self, collection: &str) -> Result<(), Error> {
        Ok(mv::flush(collection)?)
    }
    fn count_rows(&self, collection: &str, partition: Option<&str>) -> Result<u64, Error> {
        Ok(mv::count_rows(collection, partition)?)
    }
    fn stored_rows(&self, collection: &str, partition: Option<&str>) -> Result<u64, Error> {
        Ok(mv::stored_rows(collection, partition)?)
    }
    fn get_entities(&self, collection: &str, id_field: &str, vector_field: &str, ids: &[i64]) -> Result<Vec<io::Entity>, Error> {
        Ok(mv::get_entities(collection, id_field, vector_field, ids)?
            .into_iter()
            .map(|e| io::Entity { id: e.id, vector: e.vector })
            .collect())
    }
    fn count_in_range(&self, collection: &str, partition: Option<&str>, id_field: &str, low: i64, high: i64) -> Result<u64, Error> {
        Ok(mv::count_in_range(collection, partition, id_field, mv::KeyRange { low, high })?)
    }
    fn count_ids(&self, collection: &str, partition: Option<&str>, id_field: &str, ids: &[i64]) -> Result<u64, Error> {
        Ok(mv::count_ids(collection, partition, id_field, ids)?)
    }
    fn query_range(&self, collection: &str, partition: Option<&str>, id_field: &str, vector_field: &str, low: i64, high: i64, limit: u32) -> Result<Vec<io::Entity>, Error> {
        Ok(mv::query_range(collection, partition, id_field, vector_field, mv::KeyRange { low, high }, limit)?
            .into_iter()
            .map(|e| io::Entity { id: e.id, vector: e.vector })
            .collect())
    }
    fn delete_ids(&self, collection: &str, partition: &str, id_field: &str, ids: &[i64]) -> Result<u64, Error> {
        Ok(mv::delete_ids(collection, partition, id_field, ids)?)
    }
}

fn wit_rows(r: &io::Rows) -> mv::Rows {
    mv::Rows {
        id_field: r.id_field.clone(),
        vector_field: r.vector_field.clone(),
        binary: r.binary,
        dim: r.dim,
        ids: r.ids.clone(),
        vectors: r.vectors.clone(),
    }
}

fn read_database() -> Result<Installation, Error> {
    rows::check_tables(&meta_db::list_tables()?)?;
    let tables = rows::table_rows(&query(rows::TABLES_QUERY)?)?;
    let files = rows::file_rows(&query(rows::FILES_QUERY)?)?;
    Installation::from_rows(&tables, &files)
}

fn query(sql: &str) -> Result<Vec<Vec<rows::SqlValue>>, Error> {
    let result = meta_db::query(sql, &[])?;
    Ok(result
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|v| match v {
                    types::SqlValue::Null => rows::SqlValue::Null,
                    types::SqlValue::Int(i) => rows::SqlValue::Int(i),
                    types::SqlValue::Real(f) => rows::SqlValue::Real(f),
                    types::SqlValue::Text(s) => rows::SqlValue::Text(s),
                    types::SqlValue::Blob(b) => rows::SqlValue::Blob(b),
                })
                .collect()
        })
        .collect())
}

/// The imports, as the engine's IO traits.
struct Imports;
struct Reader(blob_store::Reader);
struct Writer(blob_store::Writer);

fn role(r: Role) -> blob_store::Role {
    match r {
        Role::Source => blob_store::Role::Source,
        Role::Target => blob_store::Role::Target,
    }
}

impl io::Reader for Reader {
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn read(&self, max: u32) -> Result<Vec<u8>, Error> {
        Ok(self.0.read(max)?)
    }
    fn seek(&self, offset: u64) -> Result<(), Error> {
        Ok(self.0.seek(offset)?)
    }
}

impl io::Writer for Writer {
    fn write(&self, bytes: &[u8]) -> Result<(), Error> {
        Ok(self.0.write(bytes)?)
    }
    fn finish(self) -> Result<io::Written, Error> {
        Ok(self.0.finish()?.into())
    }
}

impl io::Store for Imports {
    type R = Reader;
    type W = Writer;
    fn append(&self, dst: &Writer, src: &Reader, offset: u64, len: u64, finite_f32: bool) -> Result<Option<u64>, Error> {
        let check = if finite_f32 { blob_store::ValueCheck::FiniteF32 } else { blob_store::ValueCheck::None };
        Ok(dst.0.append_from(&src.0, offset, len, check)?)
    }
    fn open(&self, r: Role, path: &str) -> Result<Reader, Error> {
        Ok(Reader(blob_store::open(role(r), path)?))
    }
    fn create(&self, r: Role, path: &str) -> Result<Writer, Error> {
        Ok(Writer(blob_store::create(role(r), path)?))
    }
    fn stat(&self, r: Role, path: &str) -> Result<Option<u64>, Error> {
        Ok(blob_store::stat(role(r), path)?)
    }
    fn list(&self, r: Role, prefix: &str) -> Result<Vec<String>, Error> {
        Ok(blob_store::list_dir(role(r), prefix)?)
    }
    fn delete(&self, r: Role, path: &str) -> Result<(), Error> {
        Ok(blob_store::delete(role(r), path)?)
    }
    fn checksum(&self, r: Role, path: &str) -> Result<io::Written, Error> {
        Ok(blob_store::checksum(role(r), path)?.into())
    }
}

impl io::Report for Imports {
    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Debug => report::Level::Debug,
            Level::Info => report::Level::Info,
            Level::Warn => report::Level::Warn,
            Level::Error => report::Level::Error,
        };
        report::log(level, message);
    }
    fn progress(&self, rows: u64, bytes: u64) {
        report::progress(rows, bytes);
    }
}

impl From<types::Error> for Error {
    fn from(e: types::Error) -> Self {
        match e {
            types::Error::NotFound(m) => Error::NotFound(m),
            types::Error::InvalidInput(i) => Error::InvalidInput { file: i.file, offset: i.offset, reason: i.reason },
            types::Error::Unsupported(m) => Error::Unsupported(m),
            types::Error::Limit(m) => Error::Limit(m),
            types::Error::AccessDenied(m) => Error::AccessDenied(m),
            types::Error::Unavailable(m) => Error::Unavailable(m),
            types::Error::Remote(r) => Error::Remote { code: r.code, reason: r.reason },
            types::Error::AlreadyExists(m) => Error::AlreadyExists(m),
            types::Error::Other(m) => Error::Other(m),
        }
    }
}

impl From<Error> for types::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(m) => types::Error::NotFound(m),
            Error::InvalidInput { file, offset, reason } => {
                types::Error::InvalidInput(types::InvalidInput { file, offset, reason })
            }
            Error::Unsupported(m) => types::Error::Unsupported(m),
            Error::Limit(m) => types::Error::Limit(m),
            Error::AccessDenied(m) => types::Error::AccessDenied(m),
            Error::Unavailable(m) => types::Error::Unavailable(m),
            Error::Remote { code, reason } => types::Error::Remote(types::RemoteError { code, reason }),
            Error::AlreadyExists(m) => types::Error::AlreadyExists(m),
            Error::Other(m) => types::Error::Other(m),
        }
    }
}

impl From<blob_store::Written> for io::Written {
    fn from(w: blob_store::Written) -> Self {
        io::Written { path: w.path, bytes: w.bytes, crc32c: w.crc32c }
    }
}

impl From<io::Written> for blob_store::Written {
    fn from(w: io::Written) -> Self {
        blob_store::Written { path: w.path, bytes: w.bytes, crc32c: w.crc32c }
    }
}

impl From<wit::VectorKind> for VectorKind {
    fn from(v: wit::VectorKind) -> Self {
        match v {
            wit::VectorKind::Float => VectorKind::Float,
            wit::VectorKind::Binary => VectorKind::Binary,
        }
    }
}

impl From<VectorKind> for wit::VectorKind {
    fn from(v: VectorKind) -> Self {
        match v {
            VectorKind::Float => wit::VectorKind::Float,
            VectorKind::Binary => wit::VectorKind::Binary,
        }
    }
}

impl From<wit::DumpOptions> for DumpOptions {
    fn from(o: wit::DumpOptions) -> Self {
        DumpOptions {
            collections: o.collections,
            id_field: o.id_field,
            vector_field: o.vector_field,
            read_chunk: o.read_chunk,
            max_group_bytes: o.max_group_bytes,
            bad_data: match o.bad_data {
                wit::BadData::Fail => Policy::Fail,
                wit::BadData::Skip => Policy::Skip,
                wit::BadData::Reject => Policy::Reject,
            },
            keep_last: o.keep_last,
            pack: o.pack,
            format: match o.format {
                wit::FileFormat::Numpy => crate::plan::FileFormat::Numpy,
                wit::FileFormat::Parquet => crate::plan::FileFormat::Parquet,
            },
        }
    }
}

impl From<dump::SegmentReport> for wit::SegmentReport {
    fn from(r: dump::SegmentReport) -> Self {
        wit::SegmentReport {
            rows_in: r.rows_in,
            deleted: r.deleted,
            rows_out: r.rows_out,
            bytes_in: r.bytes_in,
            files: r.files.into_iter().map(Into::into).collect(),
            dropped_rows: r.dropped_rows,
            ignored_deletes: r.ignored_deletes,
            rejects: r.rejects.map(Into::into),
            duplicates_dropped: r.duplicates_dropped,
        }
    }
}

impl From<wit::SegmentReport> for dump::SegmentReport {
    fn from(r: wit::SegmentReport) -> Self {
        dump::SegmentReport {
            rows_in: r.rows_in,
            deleted: r.deleted,
            rows_out: r.rows_out,
            bytes_in: r.bytes_in,
            files: r.files.into_iter().map(Into::into).collect(),
            dropped_rows: r.dropped_rows,
            ignored_deletes: r.ignored_deletes,
            rejects: r.rejects.map(Into::into),
            duplicates_dropped: r.duplicates_dropped,
        }
    }
}

impl From<wit::SegmentUnit> for SegmentUnit {
    fn from(u: wit::SegmentUnit) -> Self {
        SegmentUnit {
            collection: u.collection,
            partition_tag: u.partition_tag,
            table_id: u.table_id,
            segment_id: u.segment_id,
            vector: u.vector.into(),
            dim: u.dim,
            rows: u.rows,
            file_size: u.file_size,
            output_dir: u.output_dir,
            drop_rows: u.drop_rows,
        }
    }
}

impl From<SegmentUnit> for wit::SegmentUnit {
    fn from(u: SegmentUnit) -> Self {
        wit::SegmentUnit {
            collection: u.collection,
            partition_tag: u.partition_tag,
            table_id: u.table_id,
            segment_id: u.segment_id,
            vector: u.vector.into(),
            dim: u.dim,
            rows: u.rows,
            file_size: u.file_size,
            output_dir: u.output_dir,
            drop_rows: u.drop_rows,
        }
    }
}

impl From<DumpPlan> for wit::DumpPlan {
    fn from(p: DumpPlan) -> Self {
        wit::DumpPlan {
            collections: p
                .collections
                .into_iter()
                .map(|c| wit::CollectionPlan {
                    name: c.name,
                    vector: c.vector.into(),
                    dim: c.dim,
                    metric: c.metric,
                    engine_type: c.engine_type,
                    index_params: c.index_params,
                    partitions: c
                        .partitions
                        .into_iter()
                        .map(|p| wit::PartitionPlan { tag: p.tag, table_id: p.table_id, segments: p.segments, rows: p.rows })
                        .collect(),
                })
                .collect(),
            units: p.units.into_iter().map(Into::into).collect(),
            packs: p.packs.into_iter().map(|k| wit::PackPlan { output_dir: k.output_dir, units: k.units }).collect(),
            warnings: p.warnings,
        }
    }
}

impl From<wit::DumpPlan> for DumpPlan {
    fn from(p: wit::DumpPlan) -> Self {
        DumpPlan {
            collections: p
                .collections
                .into_iter()
                .map(|c| CollectionPlan {
                    name: c.name,
                    vector: c.vector.into(),
                    dim: c.dim,
                    metric: c.metric,
                    engine_type: c.engine_type,
                    index_params: c.index_params,
                    partitions: c
                        .partitions
                        .into_iter()
                        .map(|p| PartitionPlan { tag: p.tag, table_id: p.table_id, segments: p.segments, rows: p.rows })
                        .collect(),
                })
                .collect(),
            units: p.units.into_iter().map(Into::into).collect(),
            packs: p.packs.into_iter().map(|k| PackPlan { output_dir: k.output_dir, units: k.units }).collect(),
            warnings: p.warnings,
        }
    }
}

impl From<CollectionLoad> for wit::CollectionLoad {
    fn from(c: CollectionLoad) -> Self {
        wit::CollectionLoad {
            name: c.name,
            source_name: c.source_name,
            shards: c.shards,
            consistency: c.consistency,
            description: c.description,
            vector: c.vector.into(),
            dim: c.dim,
            metric: c.metric,
            id_field: c.id_field,
            vector_field: c.vector_field,
            exists: c.exists,
            index: c.index.map(|i| wit::IndexSpec { index_type: i.index_type, metric: i.metric, params: i.params }),
            load_after: c.load_after,
            partitions: c
                .partitions
                .into_iter()
                .map(|p| wit::PartitionLoad {
                    tag: p.tag,
                    name: p.name,
                    table_id: p.table_id,
                    rows: p.rows,
                    groups: p
                        .groups
                        .into_iter()
                        .map(|g| wit::FileGroup {
                            dir: g.dir,
                            unit_dir: g.unit_dir,
                            files: g.files,
                            sizes: g.sizes,
                            checksums: g.checksums,
                            rows: g.rows,
                            members: g
                                .members
                                .into_iter()
                                .map(|m| wit::GroupMember {
                                    segment_id: m.segment_id,
                                    segment_dir: m.segment_dir,
                                    first_row: m.first_row,
                                    rows: m.rows,
                                    segment_rows_in: m.segment_rows_in,
                                    segment_deleted: m.segment_deleted,
                                    segment_rows: m.segment_rows,
                                    meta_rows: m.meta_rows,
                                    dropped_rows: m.dropped_rows,
                                })
                                .collect(),
                        })
                        .collect(),
                    meta_rows: p.meta_rows,
                })
                .collect(),
            target: c.target,
            imports_in_flight: c.imports_in_flight,
            load_mode: c.load_mode.into(),
        }
    }
}

impl From<load::LoadMode> for wit::LoadMode {
    fn from(m: load::LoadMode) -> Self {
        match m {
            load::LoadMode::Import => wit::LoadMode::BulkImport,
            load::LoadMode::Insert { batch_bytes } => wit::LoadMode::Insert(batch_bytes),
        }
    }
}

impl From<wit::LoadMode> for load::LoadMode {
    fn from(m: wit::LoadMode) -> Self {
        match m {
            wit::LoadMode::BulkImport => load::LoadMode::Import,
            wit::LoadMode::Insert(batch_bytes) => load::LoadMode::Insert { batch_bytes },
        }
    }
}

impl From<wit::CollectionLoad> for CollectionLoad {
    fn from(c: wit::CollectionLoad) -> Self {
        CollectionLoad {
            name: c.name,
            source_name: c.source_name,
            shards: c.shards,
            consistency: c.consistency,
            description: c.description,
            vector: c.vector.into(),
            dim: c.dim,
            metric: c.metric,
            id_field: c.id_field,
            vector_field: c.vector_field,
            exists: c.exists,
            index: c.index.map(|i| IndexSpec { index_type: i.index_type, metric: i.metric, params: i.params }),
            load_after: c.load_after,
            partitions: c
                .partitions
                .into_iter()
                .map(|p| PartitionLoad {
                    tag: p.tag,
                    name: p.name,
                    table_id: p.table_id,
                    rows: p.rows,
                    groups: p
                        .groups
                        .into_iter()
                        .map(|g| FileGroup {
                            dir: g.dir,
                            unit_dir: g.unit_dir,
                            files: g.files,
                            sizes: g.sizes,
                            checksums: g.checksums,
                            rows: g.rows,
                            members: g
                                .members
                                .into_iter()
                                .map(|m| GroupMember {
                                    segment_id: m.segment_id,
                                    segment_dir: m.segment_dir,
                                    first_row: m.first_row,
                                    rows: m.rows,
                                    segment_rows_in: m.segment_rows_in,
                                    segment_deleted: m.segment_deleted,
                                    segment_rows: m.segment_rows,
                                    meta_rows: m.meta_rows,
                                    dropped_rows: m.dropped_rows,
                                })
                                .collect(),
                        })
                        .collect(),
                    meta_rows: p.meta_rows,
                })
                .collect(),
            target: c.target,
            imports_in_flight: c.imports_in_flight,
            load_mode: c.load_mode.into(),
        }
    }
}

impl From<wit::LoadOptions> for LoadOptions {
    fn from(o: wit::LoadOptions) -> Self {
        let index_mode = match o.index_mode {
            wit::IndexMode::Keep => IndexMode::Keep,
            wit::IndexMode::Autoindex => IndexMode::AutoIndex,
            wit::IndexMode::None => IndexMode::None,
        };
        LoadOptions {
            collections: o.collections,
            index_mode,
            load_after: o.load_after,
            renames: o.renames,
            shards: o.shards,
            consistency: o.consistency,
            description: o.description,
            on_exists: match o.on_exists {
                wit::OnExists::Fail => load::OnExists::Fail,
                wit::OnExists::Append => load::OnExists::Append,
                wit::OnExists::Skip => load::OnExists::Skip,
            },
            target: o.target,
            imports_in_flight: o.imports_in_flight,
            load_mode: o.load_mode.into(),
        }
    }
}

impl From<load::LoadPlan> for wit::LoadPlan {
    fn from(p: load::LoadPlan) -> Self {
        wit::LoadPlan { collections: p.collections.into_iter().map(Into::into).collect(), warnings: p.warnings }
    }
}
