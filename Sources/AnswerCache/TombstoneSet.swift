import OutpostCore

/// The tombstones in force, newest reading per scope, for checks without I/O.
struct TombstoneSet: Sendable {
    private(set) var keys: [CacheKey: HLCTimestamp] = [:]
    private(set) var tags: [String: HLCTimestamp] = [:]
    private(set) var namespaces: [String: HLCTimestamp] = [:]
    private(set) var all: HLCTimestamp?

    var count: Int { keys.count + tags.count + namespaces.count + (all == nil ? 0 : 1) }

    mutating func apply(_ tombstone: Tombstone) {
        let hlc = tombstone.hlc
        switch tombstone.scope {
        case .key(let k): keys[k] = max(keys[k] ?? .zero, hlc)
        case .tag(let t): tags[t] = max(tags[t] ?? .zero, hlc)
        case .namespace(let n): namespaces[n] = max(namespaces[n] ?? .zero, hlc)
        case .all: all = max(all ?? .zero, hlc)
        }
    }

    /// The newest tombstone reading that covers an entry with these attributes, if any.
    func newestCovering(key: CacheKey, namespace: String, tags entryTags: [String]) -> HLCTimestamp? {
        var newest = all
        if let t = keys[key] { newest = max(newest ?? t, t) }
        if let t = namespaces[namespace] { newest = max(newest ?? t, t) }
        if !tags.isEmpty {
            for tag in entryTags {
                if let t = tags[tag] { newest = max(newest ?? t, t) }
            }
        }
        return newest
    }

    /// Whether a fill stamped `hlc` is dead: some covering tombstone is at least as new.
    func covers(key: CacheKey, namespace: String, tags entryTags: [String], hlc: HLCTimestamp) -> Bool {
        guard let newest = newestCovering(key: key, namespace: namespace, tags: entryTags) else { return false }
        return newest >= hlc
    }

    /// Forgets tombstones older than `horizon` (their wall time is before it).
    mutating func expire(before horizon: HLCTimestamp) {
        keys = keys.filter { $0.value >= horizon }
        tags = tags.filter { $0.value >= horizon }
        namespaces = namespaces.filter { $0.value >= horizon }
        if let a = all, a < horizon { all = nil }
    }
}
