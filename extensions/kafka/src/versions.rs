//! The APIs this broker implements and the versions of each it speaks: exactly what
//! ApiVersions advertises, so a client never picks something that is not real here.
//!
//! Upper bounds stop before versions that identify topics by UUID only (Fetch 13,
//! Produce 13, Metadata 13 top-level errors) or need features we lack (ListOffsets 7's
//! max-timestamp lookup, tiered storage offsets).

use kafka_protocol::messages::ApiKey;

/// (API, lowest version, highest version).
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 6),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
];

/// The version range of `key`, if it is implemented.
pub fn range(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED.iter().find(|(k, _, _)| *k == key).map(|(_, lo, hi)| (*lo, *hi))
}

pub fn is_supported(key: ApiKey, version: i16) -> bool {
    range(key).is_some_and(|(lo, hi)| (lo..=hi).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_the_codec_range() {
        for (key, lo, hi) in SUPPORTED {
            let codec = key.valid_versions();
            assert!(*lo >= codec.min && *hi <= codec.max, "{key:?} {lo}..={hi} outside the codec's {codec:?}");
        }
    }
}
