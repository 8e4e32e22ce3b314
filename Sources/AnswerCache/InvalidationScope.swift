import OutpostCore

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

    /// Storage form: a kind number and a text value (the key in hex; empty for `all`).
    var storageKind: Int64 {
        switch self {
        case .key: return 0
        case .tag: return 1
        case .namespace: return 2
        case .all: return 3
        }
    }

    var storageValue: String {
        switch self {
        case .key(let k): return k.hex
        case .tag(let t): return t
        case .namespace(let n): return n
        case .all: return ""
        }
    }

    init(storageKind: Int64, value: String) throws(AnswerCacheError) {
        switch storageKind {
        case 0:
            do { self = .key(try CacheKey(hex: value)) } catch { throw .corruptValue("tombstone key \(value)") }
        case 1: self = .tag(value)
        case 2: self = .namespace(value)
        case 3: self = .all
        default: throw .corruptValue("tombstone kind \(storageKind)")
        }
    }

    func validate() throws(AnswerCacheError) {
        switch self {
        case .tag(let label), .namespace(let label):
            do { try Query.validateLabel(label, field: "scope") } catch {
                throw .invalidConfiguration("invalidation \(error.message)")
            }
        case .key, .all: break
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
