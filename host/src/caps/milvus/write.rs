//! Writing rows over gRPC (`loadMode: insert`): Insert, and Upsert for batches whose earlier
//! reply was lost. The rows arrive as the engine read them from the dump: keys, and vectors'
//! bytes back to back.

use crate::bindings::{target as wit, types};
use crate::pb::{api, schema};

use super::client::MilvusConn;

/// The proxy refuses requests over 64 MiB (`proxy.grpc.serverMaxRecvSize`, 2.2 through 2.6).
pub const SERVER_MAX_RECV: usize = 64 << 20;

/// The two columns of a write request.
fn fields(rows: &wit::Rows) -> Result<Vec<schema::FieldData>, types::Error> {
    let width = if rows.binary { rows.dim as usize / 8 } else { rows.dim as usize * 4 };
    if width == 0 || rows.vectors.len() != rows.ids.len() * width {
        return Err(types::Error::Other(format!(
            "{} ids and {} vector bytes do not make rows of {width} bytes",
            rows.ids.len(),
            rows.vectors.len()
        )));
    }
    let ids = schema::FieldData {
        r#type: schema::DataType::Int64 as i32,
        field_name: rows.id_field.clone(),
        field: Some(schema::field_data::Field::Scalars(schema::ScalarField {
            data: Some(schema::scalar_field::Data::LongData(schema::LongArray { data: rows.ids.clone() })),
        })),
        ..Default::default()
    };
    let data = if rows.binary {
        schema::vector_field::Data::BinaryVector(rows.vectors.clone())
    } else {
        let floats = rows.vectors.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        schema::vector_field::Data::FloatVector(schema::FloatArray { data: floats })
    };
    let vectors = schema::FieldData {
        r#type: if rows.binary { schema::DataType::BinaryVector } else { schema::DataType::FloatVector } as i32,
        field_name: rows.vector_field.clone(),
        field: Some(schema::field_data::Field::Vectors(schema::VectorField { dim: rows.dim as i64, data: Some(data) })),
        ..Default::default()
    };
    Ok(vec![ids, vectors])
}

/// Refuses a request the server would refuse for its size, before sending it.
fn check_size(len: usize, call: &str) -> Result<(), types::Error> {
    if len > SERVER_MAX_RECV - (1 << 20) {
        // Not sent: a refusal, not a batch in doubt.
        return Err(types::Error::Unsupported(format!(
            "{call} of {len} bytes is over what Milvus accepts in one request (64 MiB): lower migration.insertBatchMiB"
        )));
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Write {
    Insert,
    Upsert,
}

impl MilvusConn {
    pub async fn insert(&self, collection: &str, partition: &str, rows: &wit::Rows) -> Result<u64, types::Error> {
        self.write(Write::Insert, collection, partition, rows).await
    }

    pub async fn upsert(&self, collection: &str, partition: &str, rows: &wit::Rows) -> Result<u64, types::Error> {
        self.write(Write::Upsert, collection, partition, rows).await
    }

    async fn write(&self, kind: Write, collection: &str, partition: &str, rows: &wit::Rows) -> Result<u64, types::Error> {
        use prost::Message;
        let (db_name, collection_name, partition_name) = (self.db.clone(), collection.to_string(), partition.to_string());
        let (fields_data, num_rows) = (fields(rows)?, rows.ids.len() as u32);
        let mut client = self.client.clone();
        let (call, sent) = match kind {
            Write::Insert => {
                let req = api::InsertRequest { db_name, collection_name, partition_name, fields_data, num_rows, ..Default::default() };
                check_size(req.encoded_len(), "an Insert")?;
                ("Insert", client.insert(req).await)
            }
            Write::Upsert => {
                let req = api::UpsertRequest { db_name, collection_name, partition_name, fields_data, num_rows, ..Default::default() };
                check_size(req.encoded_len(), "an Upsert")?;
                ("Upsert", client.upsert(req).await)
            }
        };
        let r = sent.map_err(|e| self.grpc_error(call, e))?.into_inner();
        self.check(call, r.status)?;
        self.wrote(collection, r.timestamp);
        // Stored, and nobody has recorded it yet: where the tests kill a run.
        crate::crash::point(match kind {
            Write::Insert => "insert-sent",
            Write::Upsert => "upsert-sent",
        });
        Ok(match kind {
            Write::Insert => r.insert_cnt,
            Write::Upsert => r.upsert_cnt,
        }
        .max(0) as u64)
    }
}
