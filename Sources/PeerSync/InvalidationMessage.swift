import FoundationEssentials
import OutpostCore

/// The payload on `…/cache/invalidate`:
/// `{"origin":"gw-1","hlc":"1732530000123.4","scope":{"tag":"prices"}}`.
/// The clock reading travels as the string `wallMillis.logical`, since a 64-bit reading does not
/// fit a JSON number exactly. `scope` holds exactly one of `key` (64 hex digits), `tag`,
/// `namespace` (strings) or `all` (`true`). Optional `epoch` and `seq` place it in the origin's
/// outbox, so a receiver can tell a gap (something missed) from a duplicate. Optional `auth`
/// (`MessageSignature`) signs `signedMessage(fleet:)`: a gateway's member key or a fleet key.
public struct InvalidationMessage: SignedPeerMessage, Sendable, Hashable {
    public static let domain = "outpost-invalidation-v1"
    public let origin: String
    public let tombstone: Tombstone
    public let position: PeerPosition?
    public var signature: MessageSignature?

    public init(origin: String, tombstone: Tombstone, position: PeerPosition? = nil, signature: MessageSignature? = nil) {
        self.origin = origin
        self.tombstone = tombstone
        self.position = position
        self.signature = signature
    }

    /// After the domain, fleet and origin (`SignedPeerMessage`): `u64 hlc | u8 scope kind (0 key,
    /// 1 tag, 2 namespace, 3 all) | scope value | u8 has position, epoch, u64 seq`.
    public func appendSignedFields(to m: inout SignedBytes) {
        m.u64(tombstone.hlc.rawValue)
        switch tombstone.scope {
        case .key(let k): m.u8(0); m.string(k.hex)
        case .tag(let t): m.u8(1); m.string(t)
        case .namespace(let n): m.u8(2); m.string(n)
        case .all: m.u8(3); m.string("")
        }
        if let position {
            m.u8(1)
            m.string(position.epoch)
            m.u64(UInt64(position.sequence))
        } else {
            m.u8(0)
        }
    }

    /// This message signed by a fleet key (an operator's invalidation).
    public func signed(byFleetKey key: Ed25519.PrivateKey, keyID: String, fleet: String) throws(Ed25519.KeyError) -> InvalidationMessage {
        var copy = self
        copy.signature = .fleet(keyID: keyID, signature: try key.signature(for: signedMessage(fleet: fleet)))
        return copy
    }

    public func encoded() -> [UInt8] {
        let scope: [String: JSONValue]
        switch tombstone.scope {
        case .key(let k): scope = ["key": .string(k.hex)]
        case .tag(let t): scope = ["tag": .string(t)]
        case .namespace(let n): scope = ["namespace": .string(n)]
        case .all: scope = ["all": .bool(true)]
        }
        var o: [String: JSONValue] = [
            "origin": .string(origin), "hlc": .string(tombstone.hlc.description), "scope": .object(scope),
        ]
        if let position {
            o["epoch"] = .string(position.epoch)
            o["seq"] = .number(Double(position.sequence))
        }
        if let signature { o["auth"] = signature.json }
        return JSONValue.object(o).encoded()
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
        position = try Self.position(o)
        signature = try o["auth"].map { v throws(QueryError) in try MessageSignature(json: v) }
    }

    /// `epoch` and `seq`, both or neither.
    static func position(_ o: [String: JSONValue]) throws(QueryError) -> PeerPosition? {
        switch (o["epoch"], o["seq"]) {
        case (nil, nil): return nil
        case (.string(let epoch)?, .number(let seq)?):
            guard !epoch.isEmpty, epoch.utf8.count <= 64, !epoch.contains(where: { $0 == " " || $0.isNewline }) else {
                throw .invalidParameter("epoch", "must be 1 to 64 characters without spaces")
            }
            guard seq >= 1, seq <= 9_007_199_254_740_992, seq == seq.rounded() else {
                throw .invalidParameter("seq", "must be a positive integer")
            }
            return PeerPosition(epoch: epoch, sequence: Int64(seq))
        default:
            throw .invalidParameter("epoch", "and seq go together: a string and a positive integer")
        }
    }
}

/// The retained payload on `…/cache/watermark/<gateway>`: the last sequence of the gateway's
/// outbox that the broker acknowledged, `{"origin":"gw-1","epoch":"…","seq":42}`. A peer that
/// applied less from that epoch missed something and drops what it cannot vouch for.
public struct WatermarkMessage: SignedPeerMessage, Sendable, Hashable {
    public static let domain = "outpost-watermark-v1"
    public let origin: String
    public let position: PeerPosition
    public var signature: MessageSignature?

    public init(origin: String, position: PeerPosition, signature: MessageSignature? = nil) {
        self.origin = origin
        self.position = position
        self.signature = signature
    }

    /// After the domain, fleet and origin (`SignedPeerMessage`): `epoch | u64 seq`.
    public func appendSignedFields(to m: inout SignedBytes) {
        m.string(position.epoch)
        m.u64(UInt64(position.sequence))
    }

    public func encoded() -> [UInt8] {
        var o: [String: JSONValue] = [
            "origin": .string(origin), "epoch": .string(position.epoch), "seq": .number(Double(position.sequence)),
        ]
        if let signature { o["auth"] = signature.json }
        return JSONValue.object(o).encoded()
    }

    public init(payload: [UInt8]) throws(QueryError) {
        guard case .object(let o) = try JSONValue.parse(Data(payload)) else {
            throw .malformed("a watermark must be a JSON object")
        }
        guard case .string(let origin)? = o["origin"], (try? FleetTopics.validateName(origin, what: "origin")) != nil else {
            throw .invalidParameter("origin", "must be a gateway id")
        }
        guard let position = try InvalidationMessage.position(o) else {
            throw .invalidParameter("seq", "is required")
        }
        self.origin = origin
        self.position = position
        signature = try o["auth"].map { v throws(QueryError) in try MessageSignature(json: v) }
    }
}
