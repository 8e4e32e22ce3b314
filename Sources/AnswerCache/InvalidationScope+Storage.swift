import OutpostCore

// How scopes are stored in SQLite and checked before use (the type itself lives in OutpostCore,
// since PeerSync and the doors carry scopes too).
extension InvalidationScope {
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
