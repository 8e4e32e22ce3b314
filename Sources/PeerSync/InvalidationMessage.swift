import Foundation
import OutpostCore

/// The payload on `…/cache/invalidate`:
/// `{"origin":"gw-1","hlc":"1732530000123.4","scope":{"tag":"prices"}}`.
/// The clock reading travels as the string `wallMillis.logical`, since a 64-bit reading does not
/// fit a JSON number exactly. `scope` holds exactly one of `key` (64 hex digits), `tag`,
/// `namespace` (strings) or `all` (`true`).
public struct InvalidationMessage: Sendable, Hashable {
    public let origin: String
    public let tombstone: Tombstone

    public init(origin: String, tombstone: Tombstone) {
        self.origin = origin
        self.tombstone = tombstone
    }

    public func encoded() -> [UInt8] {
        let scope: [String: JSONValue]
        switch tombstone.scope {
        case .key(let k): scope = ["key": .string(k.hex)]
        case .tag(let t): scope = ["tag": .string(t)]
        case .namespace(let n): scope = ["namespace": .string(n)]
        case .all: scope = ["all": .bool(true)]
        }
        return JSONValue.object([
            "origin": .string(origin), "hlc": .string(tombstone.hlc.description), "scope": .object(scope),
        ]).encoded()
    }

    /// Parses and validates a received payload; throws `QueryError` naming what is wrong.
    public init(payload: [UInt8]) throws(QueryError) {
        guard case .object(let o) = try JSONValue.parse(Data(payload)) else {
            throw .malformed("an invalidation must be a JSON object")
        }
        guard case .string(let origin)? = o["origin"] else { throw .invalidParameter("origin", "must be a string") }
        do { try FleetTopics.validateName(origin, what: "origin") } catch {
            throw .invalidParameter("origin", "must be a gateway id (1 to 128 bytes, no /, +, #, $)")
        }
        guard case .string(let hlcText)? = o["hlc"], let hlc = HLCTimestamp(hlcText), hlc != .zero else {
            throw .invalidParameter("hlc", "must be a clock reading \"wallMillis.logical\"")
        }
        guard case .object(let s)? = o["scope"], s.count == 1, let (kind, value) = s.first else {
            throw .invalidParameter("scope", "must be an object with exactly one of key, tag, namespace, all")
        }
        let scope: InvalidationScope
        switch (kind, value) {
        case ("key", .string(let hex)): scope = .key(try CacheKey(hex: hex))
        case ("tag", .string(let t)):
            try Query.validateLabel(t, field: "scope.tag")
            scope = .tag(t)
        case ("namespace", .string(let n)):
            try Query.validateLabel(n, field: "scope.namespace")
            scope = .namespace(n)
        case ("all", .bool(true)): scope = .all
        default:
            throw .invalidParameter("scope", "must be {\"key\":hex} or {\"tag\":s} or {\"namespace\":s} or {\"all\":true}")
        }
        self.origin = origin
        tombstone = Tombstone(scope: scope, hlc: hlc)
    }
}
