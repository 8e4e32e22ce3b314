/// What an invalidation covers: one key, every entry carrying a tag, a namespace, or everything.
public enum InvalidationScope: Sendable, Hashable, Codable, CustomStringConvertible {
    case key(CacheKey)
    case tag(String)
    case namespace(String)
    case all

    /// Whether an entry with these attributes falls under the scope.
    public func covers(key: CacheKey, namespace: String, tags: [String]) -> Bool {
        switch self {
        case .key(let k): return k == key
        case .tag(let t): return tags.contains(t)
        case .namespace(let n): return n == namespace
        case .all: return true
        }
    }

    public var description: String {
        switch self {
        case .key(let k): return "key \(k.hex)"
        case .tag(let t): return "tag \(t)"
        case .namespace(let n): return "namespace \(n)"
        case .all: return "all"
        }
    }
}

/// A durable record that everything under `scope` stamped at or before `hlc` is gone; fills
/// stamped at or before it are discarded wherever they are met (queue, memory, SQL upsert).
public struct Tombstone: Sendable, Hashable, Codable {
    public let scope: InvalidationScope
    public let hlc: HLCTimestamp

    public init(scope: InvalidationScope, hlc: HLCTimestamp) {
        self.scope = scope
        self.hlc = hlc
    }
}
