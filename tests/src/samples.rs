//! Named installations used by the demo and the tests.

use crate::spec::{CollectionSpec, PartitionSpec, SegmentSpec, Spec};

/// Float (HNSW-indexed, two live segments, unsorted and repeated deletions, a partition whose tag
/// is not a valid 2.x name, an empty partition, a stale segment) and binary (JACCARD) collections,
/// plus a dropped collection.
pub fn sample() -> Spec {
    let seg = |rows, deleted: &[i32]| SegmentSpec { rows, deleted: deleted.to_vec(), ..Default::default() };
    Spec {
        seed: 7,
        collections: vec![
            CollectionSpec {
                name: "books".into(),
                dim: 8,
                metric: 1,
                engine_type: 11,
                index_params: r#"{"M":16,"efConstruction":200}"#.into(),
                dropped: false,
                segments: vec![
                    SegmentSpec { indexed: true, ..seg(1000, &[17, 3, 999, 17, 500]) },
                    seg(250, &[]),
                    SegmentSpec { stale: true, ..seg(40, &[]) },
                ],
                partitions: vec![
                    PartitionSpec { tag: "2024 Q1/sales".into(), dropped: false, segments: vec![seg(300, &[0, 299])] },
                    PartitionSpec { tag: "empty".into(), dropped: false, segments: vec![] },
                ],
            },
            CollectionSpec {
                name: "fingerprints".into(),
                dim: 64,
                metric: 4,
                engine_type: 10,
                index_params: r#"{"nlist":16}"#.into(),
                dropped: false,
                segments: vec![seg(400, &[5, 1, 5])],
                partitions: vec![],
            },
            CollectionSpec {
                name: "old".into(),
                dim: 4,
                metric: 2,
                engine_type: 1,
                index_params: "{}".into(),
                dropped: true,
                segments: vec![seg(10, &[])],
                partitions: vec![],
            },
        ],
    }
}

