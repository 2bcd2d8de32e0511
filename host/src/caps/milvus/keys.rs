//! Reading and deleting by primary key, for `verify --full` and `repair`: count(*) and queries
//! over key ranges and key lists, and deletes of key lists. Expressions are built here from
//! numbers only, never from text the engine passes through.

use crate::bindings::{target as wit, types};
use crate::pb::api;

use super::client::{ids_expr, MilvusConn};

/// The server's query window (offset + limit) on 2.3 through 2.6.
const MAX_QUERY: u32 = 16_384;

/// The filter of a key range. Milvus reads `-9223372036854775808` as minus an out-of-range
/// literal, so a range from i64::MIN has no lower bound (and is never empty as a filter, which
/// lite would apply to every partition).
fn range_expr(id_field: &str, r: &wit::KeyRange) -> String {
    if r.low == i64::MIN {
        format!("{id_field} <= {}", r.high)
    } else {
        format!("{id_field} >= {} and {id_field} <= {}", r.low, r.high)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_from_the_smallest_key_have_no_lower_bound() {
        let e = |low, high| range_expr("id", &wit::KeyRange { low, high });
        assert_eq!(e(i64::MIN, i64::MAX), "id <= 9223372036854775807");
        assert_eq!(e(i64::MIN, -3), "id <= -3");
        assert_eq!(e(-9223372036854775807, 5), "id >= -9223372036854775807 and id <= 5");
    }
}

impl MilvusConn {
    pub async fn count_in_range(&self, collection: &str, partition: Option<&str>, id_field: &str, range: &wit::KeyRange) -> Result<u64, types::Error> {
        self.count_where(collection, range_expr(id_field, range), partition).await
    }

    pub async fn count_ids(&self, collection: &str, partition: Option<&str>, id_field: &str, ids: &[i64]) -> Result<u64, types::Error> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.count_where(collection, ids_expr(id_field, ids), partition).await
    }

    pub async fn query_range(
        &self,
        collection: &str,
        partition: Option<&str>,
        id_field: &str,
        vector_field: &str,
        range: &wit::KeyRange,
        limit: u32,
    ) -> Result<Vec<wit::Entity>, types::Error> {
        let limit = limit.clamp(1, MAX_QUERY);
        let fields = vec![id_field.to_string(), vector_field.to_string()];
        let data = self.query_limited(collection, range_expr(id_field, range), fields, partition, Some(limit)).await?;
        self.entities(data, id_field, vector_field)
    }

    pub async fn delete_ids(&self, collection: &str, partition: &str, id_field: &str, ids: &[i64]) -> Result<u64, types::Error> {
        if ids.is_empty() {
            return Ok(0);
        }
        let req = api::DeleteRequest {
            db_name: self.db.clone(),
            collection_name: collection.into(),
            partition_name: partition.into(),
            expr: ids_expr(id_field, ids),
            ..Default::default()
        };
        let r = self.client.clone().delete(req).await.map_err(|e| self.grpc_error("Delete", e))?.into_inner();
        self.check("Delete", r.status)?;
        self.wrote(collection, r.timestamp);
        Ok(r.delete_cnt.max(0) as u64)
    }
}
